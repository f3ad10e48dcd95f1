//! The KafkaSource hot path: a plain record (one that is not itself a CloudEvent) straight to the
//! binary-mode HTTP message of the event Knative maps it to, without building the CloudEvent in
//! between.
//!
//! Building the event and then encoding it cost some thirty allocations per record: a `String`
//! per attribute, a hash map of extensions with owned names, and a header value per attribute.
//! Here what every record of a topic shares (`ce-specversion`, `ce-type`, `ce-source`, the
//! `ceOverrides`) is encoded once in [`Mapper::new`](super::Mapper::new), and the per-record values
//! are written into one buffer whose slices become the header values.
//!
//! The result must be exactly what encoding [`Mapper::to_event`](super::Mapper::to_event)'s event
//! gives; the tests compare the two over a table of records.

use std::fmt::Write as _;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use chrono::DateTime;
use cloudevents::event::ExtensionValue;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::HeaderMap;

use super::{
    header_extension_name, lossy_text, RecordView, EVENT_TYPE, KEY_EXTENSION, OFFSET_EXTENSION,
    PARTITION_EXTENSION, PARTITION_KEY_EXTENSION,
};
use crate::engine::plan::{KeyType, SourcePlan};
use crate::event::binary_mode::time_text;
use crate::event::http_binding::{content_type_value, header_name, visible_ascii_value};
use crate::event::key::key_value;
use crate::event::{percent, HttpMessage};

const SPECVERSION: HeaderName = HeaderName::from_static("ce-specversion");
const ID: HeaderName = HeaderName::from_static("ce-id");
const SOURCE: HeaderName = HeaderName::from_static("ce-source");
const TYPE: HeaderName = HeaderName::from_static("ce-type");
const SUBJECT: HeaderName = HeaderName::from_static("ce-subject");
const TIME: HeaderName = HeaderName::from_static("ce-time");
const KEY: HeaderName = HeaderName::from_static("ce-key");
const PARTITION_KEY: HeaderName = HeaderName::from_static("ce-partitionkey");
const PARTITION: HeaderName = HeaderName::from_static("ce-knativekafkapartition");
const OFFSET: HeaderName = HeaderName::from_static("ce-knativekafkaoffset");
const V10: HeaderValue = HeaderValue::from_static("1.0");
const TYPE_VALUE: HeaderValue = HeaderValue::from_static(EVENT_TYPE);

/// Enough for the id, subject, time, partition and offset of any record without a reallocation;
/// a key adds its own length.
const VALUES_CAPACITY: usize = 160;

/// The headers every plain message of one source shares, encoded once.
#[derive(Debug, Clone)]
pub(super) struct SharedHeaders {
    /// Per topic of the plan, its `ce-source`.
    sources: Vec<(String, HeaderValue)>,
    source_prefix: String,
    overrides: Vec<Override>,
}

#[derive(Debug, Clone)]
struct Override {
    /// The extension name: an override replaces a record's extension of exactly this name.
    name: String,
    header: HeaderName,
    value: HeaderValue,
}

impl SharedHeaders {
    pub(super) fn new(plan: &SourcePlan) -> Self {
        let sources = plan
            .topics
            .iter()
            .map(|topic| (topic.clone(), source_value(&plan.event_source(topic))))
            .collect();
        let overrides = plan
            .ce_overrides
            .iter()
            // The binary-mode encoder leaves out an extension named `datacontenttype` (that
            // attribute travels as `content-type`), and one no header can name; so does this.
            .filter(|(name, _)| name.as_str() != "datacontenttype")
            .filter_map(|(name, value)| {
                Some(Override {
                    name: name.clone(),
                    header: header_name(name)?,
                    value: visible_ascii_value(&percent::encode(value)),
                })
            })
            .collect();
        Self {
            sources,
            source_prefix: plan.event_source(""),
            overrides,
        }
    }

    fn overridden(&self, extension: &str) -> bool {
        self.overrides.iter().any(|o| o.name == extension)
    }

    fn source(&self, topic: &str) -> HeaderValue {
        match self.sources.iter().find(|(t, _)| t == topic) {
            // A clone shares the encoded bytes.
            Some((_, value)) => value.clone(),
            None => source_value(&format!("{}{topic}", self.source_prefix)),
        }
    }

    /// The message of the event a plain record maps to.
    pub(super) fn plain_message(&self, rec: &RecordView<'_>, key_type: KeyType) -> HttpMessage {
        let values = Values::write(rec, key_type);
        let mut headers = HeaderMap::with_capacity(12 + rec.headers.len() + self.overrides.len());
        headers.append(SPECVERSION, V10);
        headers.append(ID, values.get(&values.id));
        headers.append(SOURCE, self.source(rec.topic));
        headers.append(TYPE, TYPE_VALUE);
        headers.append(SUBJECT, values.get(&values.subject));
        if let Some(time) = &values.time {
            headers.append(TIME, values.get(time));
        }
        if let Some(key) = &values.key {
            for (extension, header) in [
                (KEY_EXTENSION, KEY),
                (PARTITION_KEY_EXTENSION, PARTITION_KEY),
            ] {
                if !self.overridden(extension) {
                    headers.append(header, values.get(key));
                }
            }
        }
        self.append_record_headers(rec, &mut headers);
        for (extension, header, range) in [
            (PARTITION_EXTENSION, PARTITION, &values.partition),
            (OFFSET_EXTENSION, OFFSET, &values.offset),
        ] {
            if !self.overridden(extension) {
                headers.append(header, values.get(range));
            }
        }
        for o in &self.overrides {
            headers.append(o.header.clone(), o.value.clone());
        }
        HttpMessage {
            headers,
            body: rec.value.map(Bytes::copy_from_slice).unwrap_or_default(),
        }
    }

    /// Record headers as `ce-kafkaheader*` extensions, the last `content-type` as `content-type`.
    /// Allocates per header: records of the benchmarked workloads carry none.
    fn append_record_headers(&self, rec: &RecordView<'_>, headers: &mut HeaderMap) {
        let mut content_type = None;
        for (i, (name, value)) in rec.headers.iter().enumerate() {
            if name.eq_ignore_ascii_case("content-type") {
                content_type = Some(*value);
                continue;
            }
            let extension = header_extension_name(name);
            // Extensions are keyed by name: a later header of the same extension name, or an
            // override, replaces this one.
            let replaced = rec.headers[i + 1..].iter().any(|(later, _)| {
                !later.eq_ignore_ascii_case("content-type")
                    && header_extension_name(later) == extension
            });
            if replaced || self.overridden(&extension) {
                continue;
            }
            if let Some(header) = header_name(&extension) {
                let text = lossy_text(*value);
                headers.append(header, visible_ascii_value(&percent::encode(&text)));
            }
        }
        if let Some(value) = content_type {
            // Knative lowercases the content type.
            let text = lossy_text(value).to_lowercase();
            headers.insert(CONTENT_TYPE, content_type_value(&text));
        }
    }
}

fn source_value(source: &str) -> HeaderValue {
    visible_ascii_value(&percent::encode(source))
}

/// A record's own attribute values, written into one buffer that their header values share.
struct Values {
    buf: Bytes,
    id: Range<usize>,
    subject: Range<usize>,
    time: Option<Range<usize>>,
    key: Option<Range<usize>>,
    partition: Range<usize>,
    offset: Range<usize>,
}

impl Values {
    fn write(rec: &RecordView<'_>, key_type: KeyType) -> Self {
        let key = rec.key.filter(|k| !k.is_empty());
        let mut buf = BytesMut::with_capacity(VALUES_CAPACITY + key.map_or(0, |k| 3 * k.len()));
        // Each number is formatted once; the id and the subject copy its digits.
        let (mut p, mut o) = (itoa::Buffer::new(), itoa::Buffer::new());
        let (p, o) = (
            p.format(rec.partition).as_bytes(),
            o.format(rec.offset).as_bytes(),
        );
        let id = appended(&mut buf, &[b"partition:", p, b"/offset:", o]);
        let subject = appended(&mut buf, &[b"partition:", p, b"#", o]);
        let partition = appended(&mut buf, &[p]);
        let offset = appended(&mut buf, &[o]);
        // Kafka reports -1 when a record has no timestamp.
        let time = rec
            .timestamp_ms
            .filter(|ms| *ms >= 0)
            .and_then(DateTime::from_timestamp_millis)
            .map(|t| written(&mut buf, |b| b.write_str(&time_text(&t))));
        let key = key.map(|key| {
            written(&mut buf, |b| match key_value(key, key_type) {
                ExtensionValue::String(s) => b.write_str(&percent::encode(&s)),
                ExtensionValue::Integer(n) => write!(b, "{n}"),
                ExtensionValue::Boolean(v) => write!(b, "{v}"),
            })
        });
        Self {
            buf: buf.freeze(),
            id,
            subject,
            time,
            key,
            partition,
            offset,
        }
    }

    /// The header value of one written range: it shares the buffer, no copy.
    fn get(&self, range: &Range<usize>) -> HeaderValue {
        // Every value written is percent-encoded or digits and punctuation: visible ASCII.
        HeaderValue::from_maybe_shared(self.buf.slice(range.clone()))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Appends `parts` to `buf` and returns the range they take.
fn appended(buf: &mut BytesMut, parts: &[&[u8]]) -> Range<usize> {
    let start = buf.len();
    for part in parts {
        buf.extend_from_slice(part);
    }
    start..buf.len()
}

/// Runs `write` on `buf` and returns the range it wrote.
fn written(
    buf: &mut BytesMut,
    write: impl FnOnce(&mut BytesMut) -> std::fmt::Result,
) -> Range<usize> {
    let start = buf.len();
    // fmt::Write for BytesMut never fails.
    let _ = write(buf);
    start..buf.len()
}

#[cfg(test)]
mod tests;
