//! CloudEvents HTTP protocol binding: events out in binary mode (`ce-*` headers, percent-encoded,
//! data as body), events in from binary or structured (JSON) mode. Batch mode is refused.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::HeaderMap;

use super::binary_mode::{for_each_attribute, BinaryAttributes};
use super::decode::{
    is_structured_json, parse_structured_json, starts_with_ignore_case, DecodeError, BATCH_PREFIX,
    STRUCTURED_PREFIX,
};
use super::{percent, HttpMessage};
use cloudevents::{AttributesReader, AttributesWriter, Data, Event};

/// Encodes `event` in binary mode. The body is copied out of the event; when the event is not
/// needed afterwards, [`encode_binary_owned`] moves it instead.
pub fn encode_binary(event: &Event) -> HttpMessage {
    let body = match event.data() {
        None => Bytes::new(),
        Some(Data::Binary(b)) => Bytes::copy_from_slice(b),
        Some(Data::String(s)) => Bytes::copy_from_slice(s.as_bytes()),
        Some(Data::Json(j)) => Bytes::from(j.to_string()),
    };
    HttpMessage {
        headers: encode_headers(event),
        body,
    }
}

/// Encodes `event` in binary mode, moving its data into the body without a copy.
pub fn encode_binary_owned(mut event: Event) -> HttpMessage {
    let headers = encode_headers(&event);
    let (_, _, data) = event.take_data();
    let body = data.map(data_bytes).unwrap_or_default();
    HttpMessage { headers, body }
}

/// The bytes binary mode sends for `data`, moved out of it where it holds them already.
fn data_bytes(data: Data) -> Bytes {
    match data {
        Data::Binary(b) => Bytes::from(b),
        Data::String(s) => Bytes::from(s),
        Data::Json(j) => Bytes::from(j.to_string()),
    }
}

fn encode_headers(event: &Event) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(16);
    for_each_attribute(event, |name, value| {
        let Some(header) = header_name(name) else {
            // Only an extension name no header can carry gets here; decoders refuse such names,
            // so only a misconfigured override could produce one.
            tracing::debug!(
                extension = name,
                "extension name is not a valid header name; dropped"
            );
            return;
        };
        headers.append(header, visible_ascii_value(&percent::encode(&value)));
    });
    if let Some(content_type) = event.datacontenttype() {
        headers.insert(CONTENT_TYPE, content_type_value(content_type));
    }
    headers
}

/// Content-Type is not percent-encoded; a value no header can hold (control characters) is sent
/// percent-encoded rather than dropped.
pub(crate) fn content_type_value(content_type: &str) -> HeaderValue {
    HeaderValue::from_bytes(content_type.as_bytes())
        .unwrap_or_else(|_| visible_ascii_value(&percent::encode(content_type)))
}

/// `value` is percent-encoded, hence visible ASCII, which every header value may hold.
pub(crate) fn visible_ascii_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `ce-*` header of an attribute or extension; `None` for a name no header can carry.
pub(crate) fn header_name(attribute: &str) -> Option<HeaderName> {
    let known = match attribute {
        "specversion" => "ce-specversion",
        "id" => "ce-id",
        "source" => "ce-source",
        "type" => "ce-type",
        "subject" => "ce-subject",
        "time" => "ce-time",
        "dataschema" => "ce-dataschema",
        "schemaurl" => "ce-schemaurl",
        _ => return HeaderName::from_bytes(format!("ce-{attribute}").as_bytes()).ok(),
    };
    Some(HeaderName::from_static(known))
}

/// Decodes an HTTP request or response into an event: structured mode when the content type
/// says so, binary mode otherwise.
pub fn decode(headers: &HeaderMap, body: Bytes) -> Result<Event, DecodeError> {
    match mode(headers)? {
        Mode::Structured => parse_structured_json(&body),
        Mode::Binary { content_type } => {
            let mut event = decode_binary(headers, content_type)?;
            if !body.is_empty() {
                // Zero-copy when the body is the only handle on its buffer.
                event.set_data_unchecked(Data::Binary(Vec::from(body)));
            }
            Ok(event)
        }
    }
}

/// An event decoded with its data set apart, as the bytes a binary-mode message carries.
#[derive(Debug)]
pub struct DecodedEvent {
    /// Every attribute and extension; no data.
    pub event: Event,
    /// The data: in binary mode the body itself, not copied; in structured mode the event's
    /// data as binary mode would send it. `None` for an event without data.
    pub data: Option<Bytes>,
}

/// [`decode`] for a message that is passed on rather than read: the same checks and refusals,
/// but the data stays in the bytes it arrived in.
pub fn decode_detached(headers: &HeaderMap, body: Bytes) -> Result<DecodedEvent, DecodeError> {
    match mode(headers)? {
        Mode::Structured => {
            let mut event = parse_structured_json(&body)?;
            let (content_type, schema, data) = event.take_data();
            event.set_datacontenttype(content_type);
            event.set_dataschema(schema);
            Ok(DecodedEvent {
                event,
                data: data.map(data_bytes),
            })
        }
        Mode::Binary { content_type } => Ok(DecodedEvent {
            event: decode_binary(headers, content_type)?,
            data: Some(body).filter(|b| !b.is_empty()),
        }),
    }
}

/// How a message carries its event, by its content type.
enum Mode<'a> {
    Structured,
    Binary { content_type: Option<&'a str> },
}

fn mode(headers: &HeaderMap) -> Result<Mode<'_>, DecodeError> {
    let content_type = match headers.get(CONTENT_TYPE) {
        None => None,
        Some(v) => Some(
            std::str::from_utf8(v.as_bytes())
                .map_err(|_| DecodeError::invalid("datacontenttype", "not valid UTF-8"))?,
        ),
    };
    if let Some(ct) = content_type {
        if starts_with_ignore_case(ct, BATCH_PREFIX) {
            return Err(DecodeError::BatchUnsupported);
        }
        if starts_with_ignore_case(ct, STRUCTURED_PREFIX) {
            if !is_structured_json(ct) {
                return Err(DecodeError::UnsupportedFormat {
                    content_type: ct.to_owned(),
                });
            }
            return Ok(Mode::Structured);
        }
    }
    Ok(Mode::Binary { content_type })
}

/// The event's attributes and extensions from `ce-*` headers and the content type; no data.
fn decode_binary(headers: &HeaderMap, content_type: Option<&str>) -> Result<Event, DecodeError> {
    let mut attributes = BinaryAttributes::default();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let text = percent::decode(value.as_bytes()).map_err(|source| {
            DecodeError::InvalidHeaderEncoding {
                header: name.as_str().to_owned(),
                source,
            }
        })?;
        attributes.set(attribute, text.into_owned())?;
    }
    if let Some(ct) = content_type {
        attributes.set_content_type(ct.to_owned());
    }
    attributes.build(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use cloudevents::event::SpecVersion;
    use cloudevents::{EventBuilder, EventBuilderV03, EventBuilderV10};

    fn full_event() -> Event {
        EventBuilderV10::new()
            .id("partition:0/offset:1")
            .source("/apis/v1/namespaces/ns/kafkasources/src#topic")
            .ty("dev.knative.kafka.event")
            .subject("Euro € 😀 \"quoted\" 100%")
            .time(DateTime::from_timestamp_millis(1_700_000_000_123).unwrap())
            .data_with_schema(
                "application/octet-stream",
                "http://schema.example/v1",
                vec![0u8, 1, 2, 255],
            )
            .extension("key", "café")
            .extension("partitionkey", "k")
            .build()
            .unwrap()
    }

    fn header<'a>(msg: &'a HttpMessage, name: &str) -> Option<&'a str> {
        msg.headers.get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn encodes_attributes_as_percent_encoded_headers() {
        let msg = encode_binary(&full_event());
        let want = [
            ("ce-specversion", "1.0"),
            ("ce-id", "partition:0/offset:1"),
            ("ce-source", "/apis/v1/namespaces/ns/kafkasources/src#topic"),
            ("ce-type", "dev.knative.kafka.event"),
            (
                "ce-subject",
                "Euro%20%E2%82%AC%20%F0%9F%98%80%20%22quoted%22%20100%25",
            ),
            ("ce-time", "2023-11-14T22:13:20.123Z"),
            ("ce-dataschema", "http://schema.example/v1"),
            ("ce-key", "caf%C3%A9"),
            ("ce-partitionkey", "k"),
            ("content-type", "application/octet-stream"),
        ];
        for (name, value) in want {
            assert_eq!(header(&msg, name), Some(value), "{name}");
        }
        assert_eq!(msg.headers.len(), want.len());
        assert_eq!(&msg.body[..], &[0u8, 1, 2, 255]);
    }

    #[test]
    fn encodes_each_data_kind_as_body() {
        let base = || EventBuilderV10::new().id("1").source("/s").ty("t");
        let cases = [
            (
                base().data("text/plain", "héllo").build().unwrap(),
                "héllo".as_bytes().to_vec(),
            ),
            (
                base()
                    .data("application/json", serde_json::json!({"a": [1, 2]}))
                    .build()
                    .unwrap(),
                br#"{"a":[1,2]}"#.to_vec(),
            ),
            (base().build().unwrap(), Vec::new()),
        ];
        for (event, body) in cases {
            assert_eq!(encode_binary(&event).body, body);
            assert_eq!(encode_binary_owned(event).body, body);
        }
    }

    #[test]
    fn encodes_v03_with_schemaurl() {
        let ev = EventBuilderV03::new()
            .id("1")
            .source("/s")
            .ty("t")
            .data_with_schema("text/plain", "http://schema.example/3", "x")
            .build()
            .unwrap();
        let msg = encode_binary(&ev);
        assert_eq!(header(&msg, "ce-specversion"), Some("0.3"));
        assert_eq!(
            header(&msg, "ce-schemaurl"),
            Some("http://schema.example/3")
        );
        assert_eq!(header(&msg, "ce-dataschema"), None);
        let back = decode(&msg.headers, msg.body).unwrap();
        assert_eq!(back.specversion(), SpecVersion::V03);
        assert_eq!(
            back.dataschema().unwrap().as_str(),
            "http://schema.example/3"
        );
    }

    #[test]
    fn binary_round_trip_preserves_the_event() {
        let events = [
            full_event(),
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
                .subject("s")
                .extension("ext", "x y")
                .data("text/plain", vec![1u8])
                .build()
                .unwrap(),
        ];
        for event in events {
            let msg = encode_binary(&event);
            assert_eq!(decode(&msg.headers, msg.body).unwrap(), event);
        }
    }

    #[test]
    fn binary_mode_extensions_come_back_as_strings() {
        let event = EventBuilderV10::new()
            .id("1")
            .source("/s")
            .ty("t")
            .extension("n", 7i64)
            .build()
            .unwrap();
        let msg = encode_binary(&event);
        let back = decode(&msg.headers, msg.body).unwrap();
        assert_eq!(back.extension("n"), Some(&"7".into()));
    }

    #[test]
    fn detached_decoding_keeps_the_data_apart_and_the_body_uncopied() {
        let binary = encode_binary(&full_event());
        let structured = |json: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/cloudevents+json"),
            );
            (headers, Bytes::from_static(json.as_bytes()))
        };
        let empty = encode_binary(
            &EventBuilderV03::new()
                .id("1")
                .source("/s")
                .ty("t")
                .build()
                .unwrap(),
        );
        // (headers, body) of a request, and the data it carries.
        type Case = ((HeaderMap, Bytes), Option<&'static [u8]>);
        let cases: [Case; 5] = [
            (
                (binary.headers.clone(), binary.body.clone()),
                Some(&[0, 1, 2, 255]),
            ),
            ((empty.headers.clone(), empty.body.clone()), None),
            (
                structured(
                    r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","dataschema":"http://s.example/1","data":"hi"}"#,
                ),
                Some(b"hi"),
            ),
            (
                structured(
                    r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}}"#,
                ),
                Some(br#"{"a":1}"#),
            ),
            (
                structured(
                    r#"{"specversion":"0.3","id":"1","source":"/s","type":"t","schemaurl":"http://s.example/3","datacontenttype":"application/octet-stream","datacontentencoding":"base64","data":"AQI="}"#,
                ),
                Some(&[1, 2]),
            ),
        ];
        for ((headers, body), want) in cases {
            let whole = decode(&headers, body.clone()).unwrap();
            let detached = decode_detached(&headers, body.clone()).unwrap();
            assert_eq!(detached.data.as_deref(), want, "{whole}");
            assert_eq!(detached.event.data(), None);
            // Everything but the data is the event `decode` reads.
            let mut attributes = whole.clone();
            let (content_type, schema, _) = attributes.take_data();
            attributes.set_datacontenttype(content_type);
            attributes.set_dataschema(schema);
            assert_eq!(detached.event, attributes);
            if headers
                .get(CONTENT_TYPE)
                .is_some_and(|ct| ct.as_bytes().starts_with(b"application/octet"))
            {
                // Binary mode: the value is the body's own buffer.
                assert_eq!(detached.data.unwrap().as_ptr(), body.as_ptr());
            }
        }
    }

    #[test]
    fn detached_decoding_refuses_what_decoding_refuses() {
        let mut headers = HeaderMap::new();
        headers.insert("ce-specversion", HeaderValue::from_static("1.0"));
        let err = decode_detached(&headers, Bytes::from_static(b"x")).unwrap_err();
        assert!(
            matches!(err, DecodeError::MissingAttribute("id")),
            "{err:?}"
        );
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/cloudevents-batch+json"),
        );
        let err = decode_detached(&headers, Bytes::from_static(b"[]")).unwrap_err();
        assert!(matches!(err, DecodeError::BatchUnsupported), "{err:?}");
    }

    #[test]
    fn decodes_structured_json() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/cloudevents+json"),
        );
        let body = Bytes::from_static(
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":"hi","datacontenttype":"text/plain"}"#,
        );
        let ev = decode(&headers, body).unwrap();
        assert_eq!(ev.data(), Some(&Data::String("hi".into())));
        assert_eq!(ev.datacontenttype(), Some("text/plain"));
    }

    #[test]
    fn decodes_lenient_header_values() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("ce-specversion", "\"1.0\""),
            ("ce-id", "a%2fb"),
            ("ce-source", "/s"),
            ("ce-type", "t"),
            ("ce-note", "caf%c3%a9"),
            ("content-type", "text/plain; charset=utf-8"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let ev = decode(&headers, Bytes::from_static(b"body")).unwrap();
        assert_eq!(ev.id(), "a/b");
        assert_eq!(ev.extension("note"), Some(&"café".into()));
        assert_eq!(ev.datacontenttype(), Some("text/plain; charset=utf-8"));
        assert_eq!(ev.data(), Some(&Data::Binary(b"body".to_vec())));
    }

    #[test]
    fn decode_errors() {
        let binary = |extra: &[(&'static str, &'static str)], drop: &str| {
            let mut h = HeaderMap::new();
            for (n, v) in [
                ("ce-specversion", "1.0"),
                ("ce-id", "1"),
                ("ce-source", "/s"),
                ("ce-type", "t"),
            ] {
                if n != drop {
                    h.insert(n, HeaderValue::from_static(v));
                }
            }
            for (n, v) in extra {
                h.insert(*n, HeaderValue::from_static(v));
            }
            h
        };
        let cases: Vec<(HeaderMap, &[u8], &str)> = vec![
            (
                binary(
                    &[("content-type", "application/cloudevents-batch+json")],
                    "",
                ),
                b"[]",
                "BatchUnsupported",
            ),
            (
                binary(&[("content-type", "application/cloudevents+avro")], ""),
                b"",
                "UnsupportedFormat",
            ),
            (
                binary(&[("content-type", "application/cloudevents+json")], ""),
                b"{",
                "InvalidJson",
            ),
            (
                binary(&[], "ce-specversion"),
                b"",
                "MissingAttribute(\"specversion\")",
            ),
            (binary(&[], "ce-id"), b"", "MissingAttribute(\"id\")"),
            (
                binary(&[], "ce-source"),
                b"",
                "MissingAttribute(\"source\")",
            ),
            (binary(&[], "ce-type"), b"", "MissingAttribute(\"type\")"),
            (
                binary(&[("ce-specversion", "0.2")], ""),
                b"",
                "UnknownSpecVersion(\"0.2\")",
            ),
            (
                binary(&[("ce-time", "noon")], ""),
                b"",
                "InvalidAttribute { name: \"time\"",
            ),
            (
                binary(&[("ce-id", "%E2")], ""),
                b"",
                "InvalidHeaderEncoding { header: \"ce-id\"",
            ),
            (
                binary(&[("ce-x", "%g0")], ""),
                b"",
                "InvalidHeaderEncoding { header: \"ce-x\"",
            ),
            (
                binary(&[("ce-bad_name", "x")], ""),
                b"",
                "InvalidExtensionName(\"bad_name\")",
            ),
            (
                HeaderMap::new(),
                b"plain body",
                "MissingAttribute(\"specversion\")",
            ),
        ];
        for (headers, body, want) in cases {
            let got = decode(&headers, Bytes::copy_from_slice(body)).unwrap_err();
            assert!(
                format!("{got:?}").starts_with(want),
                "want {want}, got {got:?}"
            );
            assert!(!got.to_string().is_empty());
        }
    }

    #[test]
    fn invalid_content_type_utf8_is_an_error() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_bytes(b"text/\xff").unwrap());
        let err = decode(&headers, Bytes::new()).unwrap_err();
        assert!(
            matches!(err, DecodeError::InvalidAttribute { ref name, .. } if name == "datacontenttype")
        );
    }
}
