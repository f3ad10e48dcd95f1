//! CloudEvents Kafka protocol binding: events out as binary-mode records (`ce_*` headers in raw
//! UTF-8, `content-type` = datacontenttype, key = the `partitionkey` extension), records in from
//! binary or structured (`application/cloudevents+json`) mode.

use std::borrow::Cow;

use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Data, Event};

use super::binary_mode::{for_each_attribute, BinaryAttributes};
use super::decode::{is_structured_json, parse_structured_json, DecodeError};

const CONTENT_TYPE: &str = "content-type";
const SPECVERSION_HEADER: &str = "ce_specversion";
const PARTITION_KEY: &str = "partitionkey";

/// A consumed record's header: name and value, `None` for Kafka's null header values.
pub type RecordHeader<'a> = (&'a str, Option<&'a [u8]>);

/// A Kafka record to produce (topic and partition are the producer's choice).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KafkaMessage {
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub value: Option<Vec<u8>>,
}

/// Encodes `event` as a binary-mode record, copying its data into the value.
pub fn encode_binary(event: &Event) -> KafkaMessage {
    let value = event.data().map(|data| match data {
        Data::Binary(b) => b.clone(),
        Data::String(s) => s.as_bytes().to_vec(),
        Data::Json(j) => j.to_string().into_bytes(),
    });
    let mut headers = Vec::with_capacity(header_count(event));
    for_each_header(event, |name, value| {
        headers.push((name.to_owned(), value.to_vec()))
    });
    KafkaMessage {
        key: partition_key(event).map(|key| key.into_owned().into_bytes()),
        headers,
        value,
    }
}

/// The record key of `event`: its `partitionkey` extension as text, borrowed when it is a
/// string (always, for events read from binary-mode headers).
pub fn partition_key(event: &Event) -> Option<Cow<'_, str>> {
    event.extension(PARTITION_KEY).map(|v| match v {
        ExtensionValue::String(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(other.to_string()),
    })
}

/// How many headers [`for_each_header`] visits: one per attribute and extension.
pub fn header_count(event: &Event) -> usize {
    event.iter().count()
}

/// Visits the binary-mode headers of `event` as (name, value): `ce_*` per attribute and
/// extension, and `content-type` for `datacontenttype`. Producers copy each header as it comes,
/// so nothing here is allocated for the usual attributes: their names are constants, values are
/// borrowed from the event, and extension names share one buffer.
pub fn for_each_header(event: &Event, mut visit: impl FnMut(&str, &[u8])) {
    let mut extension_name = String::new();
    for_each_attribute(event, |name, value| match header_name(name) {
        Some(header) => visit(header, value.as_bytes()),
        None => {
            extension_name.clear();
            extension_name.push_str("ce_");
            extension_name.push_str(name);
            visit(&extension_name, value.as_bytes());
        }
    });
    if let Some(content_type) = event.datacontenttype() {
        visit(CONTENT_TYPE, content_type.as_bytes());
    }
}

/// The header of a context attribute, `None` for an extension.
fn header_name(attribute: &str) -> Option<&'static str> {
    Some(match attribute {
        "specversion" => SPECVERSION_HEADER,
        "id" => "ce_id",
        "source" => "ce_source",
        "type" => "ce_type",
        "subject" => "ce_subject",
        "time" => "ce_time",
        "dataschema" => "ce_dataschema",
        "schemaurl" => "ce_schemaurl",
        _ => return None,
    })
}

/// Decodes a consumed record. `None` when the record is not a CloudEvent at all (no
/// `ce_specversion` header and not structured JSON); `Some(Err)` when it claims to be one but is
/// invalid.
pub fn decode(
    headers: &[RecordHeader<'_>],
    value: Option<&[u8]>,
) -> Option<Result<Event, DecodeError>> {
    // Kafka allows repeated headers; the last one counts, as with Kafka's `lastHeader`.
    let content_type = headers
        .iter()
        .rev()
        .find(|(name, _)| name.eq_ignore_ascii_case(CONTENT_TYPE))
        .and_then(|(_, v)| *v);
    let structured = content_type
        .and_then(|ct| std::str::from_utf8(ct).ok())
        .is_some_and(is_structured_json);
    if structured {
        return Some(parse_structured_json(value.unwrap_or_default()));
    }
    if !headers.iter().any(|(name, _)| *name == SPECVERSION_HEADER) {
        return None;
    }
    Some(decode_binary(headers, content_type, value))
}

fn decode_binary(
    headers: &[RecordHeader<'_>],
    content_type: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<Event, DecodeError> {
    let mut attributes = BinaryAttributes::default();
    for (name, header_value) in headers {
        let Some(attribute) = name.strip_prefix("ce_") else {
            continue;
        };
        // A null header value carries nothing: treated as an absent attribute.
        let Some(bytes) = header_value else {
            continue;
        };
        attributes.set(attribute, utf8(attribute, bytes)?.to_owned())?;
    }
    if let Some(ct) = content_type {
        attributes.set_content_type(utf8("datacontenttype", ct)?.to_owned());
    }
    attributes.build(value.map(<[u8]>::to_vec))
}

fn utf8<'a>(attribute: &str, bytes: &'a [u8]) -> Result<&'a str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|_| DecodeError::invalid(attribute, "not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use cloudevents::event::SpecVersion;
    use cloudevents::{EventBuilder, EventBuilderV03, EventBuilderV10};

    fn event() -> Event {
        EventBuilderV10::new()
            .id("id-1")
            .source("/s")
            .ty("t")
            .subject("Euro € 😀")
            .time(DateTime::from_timestamp_millis(1_700_000_000_000).unwrap())
            .data("application/octet-stream", vec![9u8, 8, 7])
            .extension("partitionkey", "user-42")
            .extension("other", "100% raw")
            .build()
            .unwrap()
    }

    fn borrowed(msg: &KafkaMessage) -> Vec<RecordHeader<'_>> {
        msg.headers
            .iter()
            .map(|(n, v)| (n.as_str(), Some(v.as_slice())))
            .collect()
    }

    fn header<'a>(msg: &'a KafkaMessage, name: &str) -> Option<&'a str> {
        let (_, v) = msg.headers.iter().find(|(n, _)| n == name)?;
        Some(std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn encodes_raw_utf8_headers_key_and_value() {
        let msg = encode_binary(&event());
        let want = [
            ("ce_specversion", "1.0"),
            ("ce_id", "id-1"),
            ("ce_source", "/s"),
            ("ce_type", "t"),
            ("ce_subject", "Euro € 😀"),
            ("ce_time", "2023-11-14T22:13:20Z"),
            ("ce_partitionkey", "user-42"),
            ("ce_other", "100% raw"),
            ("content-type", "application/octet-stream"),
        ];
        for (name, value) in want {
            assert_eq!(header(&msg, name), Some(value), "{name}");
        }
        assert_eq!(msg.headers.len(), want.len());
        assert_eq!(msg.key.as_deref(), Some(&b"user-42"[..]));
        assert_eq!(msg.value.as_deref(), Some(&[9u8, 8, 7][..]));
        assert_eq!(header_count(&event()), want.len());
    }

    #[test]
    fn visits_each_header_once_with_its_value() {
        let mut seen = Vec::new();
        for_each_header(&event(), |name, value| {
            seen.push((name.to_owned(), String::from_utf8(value.to_vec()).unwrap()));
        });
        seen.sort();
        let mut want: Vec<(String, String)> = encode_binary(&event())
            .headers
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8(v).unwrap()))
            .collect();
        want.sort();
        assert_eq!(seen, want);
        assert_eq!(seen.len(), header_count(&event()));
        assert_eq!(partition_key(&event()).as_deref(), Some("user-42"));
    }

    #[test]
    fn key_is_absent_without_partitionkey_and_text_for_integers() {
        let base = || EventBuilderV10::new().id("1").source("/s").ty("t");
        assert_eq!(encode_binary(&base().build().unwrap()).key, None);
        let with_int = base().extension("partitionkey", 12i64).build().unwrap();
        assert_eq!(encode_binary(&with_int).key.as_deref(), Some(&b"12"[..]));
    }

    #[test]
    fn binary_round_trip() {
        let events = [
            event(),
            EventBuilderV10::new()
                .id("1")
                .source("/s")
                .ty("t")
                .build()
                .unwrap(),
            EventBuilderV03::new()
                .id("1")
                .source("/s")
                .ty("t")
                .data("text/plain", vec![1u8])
                .build()
                .unwrap(),
        ];
        for ev in events {
            let msg = encode_binary(&ev);
            let back = decode(&borrowed(&msg), msg.value.as_deref())
                .unwrap()
                .unwrap();
            assert_eq!(back, ev);
        }
    }

    #[test]
    fn decodes_structured_json_records() {
        let value = br#"{"specversion":"0.3","id":"1","source":"/s","type":"t","ext":true}"#;
        let headers = [(
            "Content-Type",
            Some(&b"application/cloudevents+json; charset=utf-8"[..]),
        )];
        let ev = decode(&headers, Some(value)).unwrap().unwrap();
        assert_eq!(ev.specversion(), SpecVersion::V03);
        assert_eq!(ev.extension("ext"), Some(&true.into()));
    }

    #[test]
    fn plain_records_are_not_cloudevents() {
        let json_ct: &[u8] = b"application/json";
        let cases: [&[RecordHeader<'_>]; 4] = [
            &[],
            &[("content-type", Some(json_ct))],
            &[("ce_id", Some(b"1")), ("x", None)],
            &[("CE_SPECVERSION", Some(b"1.0"))],
        ];
        for headers in cases {
            assert!(decode(headers, Some(b"{}")).is_none(), "{headers:?}");
        }
    }

    #[test]
    fn invalid_cloudevent_records_are_errors() {
        let structured: &[u8] = b"application/cloudevents+json";
        type Case<'a> = (&'a [RecordHeader<'a>], Option<&'a [u8]>, &'a str);
        let cases: [Case<'_>; 6] = [
            (
                &[("content-type", Some(structured))],
                Some(b"{}"),
                "InvalidJson",
            ),
            (&[("content-type", Some(structured))], None, "InvalidJson"),
            (
                &[("ce_specversion", Some(b"1.0"))],
                None,
                "MissingAttribute(\"id\")",
            ),
            (
                &[("ce_specversion", None)],
                None,
                "MissingAttribute(\"specversion\")",
            ),
            (
                &[("ce_specversion", Some(b"9.9"))],
                None,
                "UnknownSpecVersion",
            ),
            (
                &[("ce_specversion", Some(b"1.0")), ("ce_id", Some(b"\xff"))],
                None,
                "InvalidAttribute { name: \"id\"",
            ),
        ];
        for (headers, value, want) in cases {
            let err = decode(headers, value).unwrap().unwrap_err();
            assert!(
                format!("{err:?}").starts_with(want),
                "want {want}, got {err:?}"
            );
        }
    }
}
