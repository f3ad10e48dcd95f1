//! KafkaSource record -> CloudEvent, as Knative's dispatcher maps them.
//!
//! A record that is a valid CloudEvent (Kafka binding) is delivered as that event. Any other
//! record, including one that claims to be a CloudEvent but is invalid, is mapped from its
//! metadata (Knative's `InvalidCloudEventInterceptor`). Every event then gets the
//! `knativekafkapartition`/`knativekafkaoffset` extensions and the source's `ceOverrides`
//! (Knative's `CloudEventOverridesMutator`, which applies the overrides after the Kafka metadata,
//! so an override wins over everything).
//!
//! This runs once per record: per-topic attributes are computed once in [`Mapper::new`], and a
//! record's bytes are copied once, into the event. [`Mapper::to_http`] goes further for the
//! KafkaSource's own delivery: a plain record becomes its HTTP message directly (see `to_http`).

use chrono::{DateTime, Utc};
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesWriter, Data, Event};

use super::http_binding::encode_binary_owned;
use super::kafka_binding::{self, RecordHeader};
use super::key::key_value;
use super::HttpMessage;
use crate::engine::plan::{KeyType, SourcePlan};

mod to_http;

/// The `type` of events mapped from plain records.
pub const EVENT_TYPE: &str = "dev.knative.kafka.event";
const KEY_EXTENSION: &str = "key";
const PARTITION_KEY_EXTENSION: &str = "partitionkey";
const PARTITION_EXTENSION: &str = "knativekafkapartition";
const OFFSET_EXTENSION: &str = "knativekafkaoffset";
const HEADER_EXTENSION_PREFIX: &str = "kafkaheader";

/// A consumed record, borrowed from the Kafka client's buffers.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub headers: &'a [RecordHeader<'a>],
    pub value: Option<&'a [u8]>,
}

/// Maps one KafkaSource's records to events. Built once per source.
#[derive(Debug, Clone)]
pub struct Mapper {
    /// Per topic, the attributes every plain event of that topic shares.
    templates: Vec<(String, Event)>,
    /// Template for a topic outside the plan: its source lacks the topic name.
    other_topic: Event,
    source_prefix: String,
    key_type: KeyType,
    overrides: Vec<(String, ExtensionValue)>,
    /// The same source's headers, encoded once, for [`Mapper::to_http`].
    headers: to_http::SharedHeaders,
}

impl Mapper {
    pub fn new(plan: &SourcePlan) -> Self {
        let templates = plan
            .topics
            .iter()
            .map(|t| (t.clone(), template(plan.event_source(t))))
            .collect();
        // The source attribute ends with the topic; records of a topic the plan does not list
        // (which the consumer should not deliver) still get a correct one.
        let source_prefix = plan.event_source("");
        Self {
            templates,
            other_topic: template(source_prefix.clone()),
            source_prefix,
            key_type: plan.key_type,
            overrides: plan
                .ce_overrides
                .iter()
                .map(|(name, value)| (name.clone(), ExtensionValue::String(value.clone())))
                .collect(),
            headers: to_http::SharedHeaders::new(plan),
        }
    }

    /// The event to deliver for `rec`.
    pub fn to_event(&self, rec: &RecordView<'_>) -> Event {
        match self.cloud_event(rec) {
            Some(event) => self.with_metadata(event, rec),
            None => self.with_metadata(self.plain_event(rec), rec),
        }
    }

    /// The binary-mode HTTP message of the event to deliver for `rec`: the same as encoding
    /// [`Mapper::to_event`]'s event, without building the event for a plain record.
    /// [`Mapper::to_http`] of a record as the Kafka client hands it over.
    pub fn message_to_http(&self, record: &impl rdkafka::Message) -> HttpMessage {
        use rdkafka::message::Headers;
        let headers: Vec<RecordHeader<'_>> = record
            .headers()
            .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
            .unwrap_or_default();
        self.to_http(&RecordView {
            topic: record.topic(),
            partition: record.partition(),
            offset: record.offset(),
            timestamp_ms: record.timestamp().to_millis(),
            key: record.key(),
            headers: &headers,
            value: record.payload(),
        })
    }

    pub fn to_http(&self, rec: &RecordView<'_>) -> HttpMessage {
        match self.cloud_event(rec) {
            Some(event) => encode_binary_owned(self.with_metadata(event, rec)),
            None => self.headers.plain_message(rec, self.key_type),
        }
    }

    /// The CloudEvent `rec` carries; `None` when it is to be mapped as a plain record, including
    /// when it claims to be a CloudEvent but is not a valid one.
    fn cloud_event(&self, rec: &RecordView<'_>) -> Option<Event> {
        match kafka_binding::decode(rec.headers, rec.value)? {
            Ok(event) => Some(event),
            Err(err) => {
                tracing::debug!(
                    topic = rec.topic,
                    partition = rec.partition,
                    offset = rec.offset,
                    error = %err,
                    "invalid CloudEvent record, delivered as a plain record"
                );
                None
            }
        }
    }

    /// Adds the Kafka metadata and the overrides, which every event gets.
    fn with_metadata(&self, mut event: Event, rec: &RecordView<'_>) -> Event {
        event.set_extension(PARTITION_EXTENSION, i64::from(rec.partition));
        event.set_extension(OFFSET_EXTENSION, rec.offset);
        for (name, value) in &self.overrides {
            event.set_extension(name, value.clone());
        }
        event
    }

    fn plain_event(&self, rec: &RecordView<'_>) -> Event {
        let mut event = match self.templates.iter().find(|(topic, _)| topic == rec.topic) {
            Some((_, template)) => template.clone(),
            None => {
                let mut event = self.other_topic.clone();
                event.set_source(format!("{}{}", self.source_prefix, rec.topic));
                event
            }
        };
        event.set_id(format!("partition:{}/offset:{}", rec.partition, rec.offset));
        event.set_subject(Some(format!("partition:{}#{}", rec.partition, rec.offset)));
        // Kafka reports -1 when a record has no timestamp.
        let time = rec
            .timestamp_ms
            .filter(|ms| *ms >= 0)
            .and_then(DateTime::from_timestamp_millis);
        event.set_time(time);

        if let Some(key) = rec.key.filter(|k| !k.is_empty()) {
            let value = key_value(key, self.key_type);
            event.set_extension(PARTITION_KEY_EXTENSION, value.clone());
            event.set_extension(KEY_EXTENSION, value);
        }

        let mut content_type = None;
        for (name, value) in rec.headers {
            // Carried as datacontenttype instead; the last one wins, as in Knative.
            if name.eq_ignore_ascii_case("content-type") {
                content_type = Some(*value);
                continue;
            }
            event.set_extension(&header_extension_name(name), lossy_text(*value));
        }
        if let Some(value) = content_type {
            // Knative lowercases the content type.
            event.set_datacontenttype(Some(lossy_text(value).to_lowercase()));
        }
        if let Some(value) = rec.value {
            event.set_data_unchecked(Data::Binary(value.to_vec()));
        }
        event
    }
}

/// The attributes shared by every plain event of a topic; the per-record ones are set later.
fn template(source: String) -> Event {
    // `Event::default()` looks up the host name and draws a UUID: fine once per topic, which is
    // why templates are cloned rather than built per record.
    let mut event = Event::default();
    event.set_id(String::new());
    event.set_type(EVENT_TYPE);
    event.set_source(source);
    event.set_time(None::<DateTime<Utc>>);
    event
}

/// `kafkaheader` + the header name lowercased, keeping only `a-z0-9` (CloudEvents extension
/// names), as Knative names header extensions.
fn header_extension_name(header: &str) -> String {
    let mut name = String::with_capacity(HEADER_EXTENSION_PREFIX.len() + header.len());
    name.push_str(HEADER_EXTENSION_PREFIX);
    name.extend(
        header
            .chars()
            .flat_map(char::to_lowercase)
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
    );
    name
}

/// A header value as text; a null value is the empty string.
fn lossy_text(value: Option<&[u8]>) -> String {
    String::from_utf8_lossy(value.unwrap_or_default()).into_owned()
}

#[cfg(test)]
mod tests;
