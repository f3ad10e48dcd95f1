//! `to_http` must give exactly what encoding `to_event`'s event gives, for every kind of record.

use cloudevents::{EventBuilder, EventBuilderV10};

use super::super::tests::{plan, record};
use super::super::{Mapper, RecordHeader, RecordView};
use crate::engine::plan::KeyType;
use crate::event::http_binding::encode_binary_owned;
use crate::event::kafka_binding;

fn assert_same(mapper: &Mapper, rec: &RecordView<'_>, case: &str) {
    let want = encode_binary_owned(mapper.to_event(rec));
    let got = mapper.to_http(rec);
    assert_eq!(got.headers, want.headers, "{case}");
    assert_eq!(got.body, want.body, "{case}");
}

#[test]
fn plain_records_match_the_encoded_event() {
    let int = 7i32.to_be_bytes();
    let long = (-9i64).to_be_bytes();
    let float = 2.5f32.to_be_bytes();
    let headers: [RecordHeader<'_>; 8] = [
        ("X-Trace-Id", Some(b"abc")),
        ("my_header.v2", Some(b"caf\xc3\xa9 100%")),
        ("bin", Some(b"\xff")),
        ("empty", None),
        ("Content-Type", Some(b"Text/Plain")),
        ("x_trace.id", Some(b"later wins")),
        ("content-type", Some(b"Application/JSON; charset=\"utf-8\"")),
        ("---", Some(b"no name")),
    ];
    let bad_content_type: [RecordHeader<'_>; 1] = [("content-type", Some(b"text/\x01plain"))];
    type Case<'a> = (&'a str, KeyType, RecordView<'a>);
    let base = record(&[]);
    let cases: Vec<Case<'_>> = vec![
        ("plain", KeyType::String, base),
        (
            "string key",
            KeyType::String,
            RecordView {
                key: Some("clé 1".as_bytes()),
                ..base
            },
        ),
        (
            "empty key",
            KeyType::String,
            RecordView {
                key: Some(b""),
                ..base
            },
        ),
        (
            "int key",
            KeyType::Int,
            RecordView {
                key: Some(&int),
                ..base
            },
        ),
        (
            "long key",
            KeyType::Int,
            RecordView {
                key: Some(&long),
                ..base
            },
        ),
        (
            "int key that is not one",
            KeyType::Int,
            RecordView {
                key: Some(b"abc"),
                ..base
            },
        ),
        (
            "float key",
            KeyType::Float,
            RecordView {
                key: Some(&float),
                ..base
            },
        ),
        (
            "byte-array key",
            KeyType::ByteArray,
            RecordView {
                key: Some(b"\xff\x00"),
                ..base
            },
        ),
        (
            "no timestamp",
            KeyType::String,
            RecordView {
                timestamp_ms: None,
                ..base
            },
        ),
        (
            "timestamp -1",
            KeyType::String,
            RecordView {
                timestamp_ms: Some(-1),
                ..base
            },
        ),
        (
            "epoch",
            KeyType::String,
            RecordView {
                timestamp_ms: Some(0),
                ..base
            },
        ),
        (
            "topic outside the plan",
            KeyType::String,
            RecordView {
                topic: "other topic",
                ..base
            },
        ),
        (
            "second topic, big numbers",
            KeyType::String,
            RecordView {
                topic: "users",
                partition: i32::MAX,
                offset: i64::MAX,
                ..base
            },
        ),
        (
            "no value",
            KeyType::String,
            RecordView {
                value: None,
                ..base
            },
        ),
        (
            "empty value",
            KeyType::String,
            RecordView {
                value: Some(b""),
                ..base
            },
        ),
        (
            "headers",
            KeyType::String,
            RecordView {
                key: Some(b"k"),
                headers: &headers,
                ..base
            },
        ),
        (
            "content type no header can hold",
            KeyType::String,
            RecordView {
                headers: &bad_content_type,
                ..base
            },
        ),
    ];
    let override_sets: [&[(&str, &str)]; 3] = [
        &[],
        &[("env", "prod"), ("team", "a b")],
        // Overrides replace the record's extensions of the same name; `datacontenttype` is
        // never sent as a `ce-` header.
        &[
            ("key", "forced"),
            ("knativekafkapartition", "x"),
            ("knativekafkaoffset", "y"),
            ("kafkaheaderxtraceid", "z"),
            ("datacontenttype", "text/csv"),
        ],
    ];
    for overrides in override_sets {
        for (name, key_type, rec) in &cases {
            let mapper = Mapper::new(&plan(*key_type, overrides));
            assert_same(&mapper, rec, &format!("{name}, overrides {overrides:?}"));
        }
    }
}

#[test]
fn cloudevent_records_match_the_encoded_event() {
    let event = EventBuilderV10::new()
        .id("original-id")
        .source("/producer")
        .ty("com.example.order")
        .data("application/json", serde_json::json!({"n": 1}))
        .extension("tenant", "acme")
        .build()
        .unwrap();
    let binary = kafka_binding::encode_binary(&event);
    let binary_headers: Vec<RecordHeader<'_>> = binary
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), Some(v.as_slice())))
        .collect();
    let structured = serde_json::to_vec(&event).unwrap();
    let structured_headers: [RecordHeader<'_>; 1] =
        [("content-type", Some(b"application/cloudevents+json"))];
    let invalid_headers: [RecordHeader<'_>; 2] =
        [("ce_specversion", Some(b"1.0")), ("ce_type", Some(b"t"))];
    let cases = [
        ("binary", binary_headers.as_slice(), binary.value.as_deref()),
        (
            "structured",
            &structured_headers,
            Some(structured.as_slice()),
        ),
        (
            "invalid structured",
            &structured_headers,
            Some(b"{no".as_slice()),
        ),
        ("invalid binary", &invalid_headers, Some(b"x".as_slice())),
    ];
    let mapper = Mapper::new(&plan(KeyType::String, &[("tenant", "override")]));
    for (name, headers, value) in cases {
        let rec = RecordView {
            key: Some(b"k"),
            headers,
            value,
            ..record(&[])
        };
        assert_same(&mapper, &rec, name);
    }
}

#[test]
fn a_plain_message_has_the_knative_headers() {
    let mapper = Mapper::new(&plan(KeyType::String, &[]));
    let msg = mapper.to_http(&RecordView {
        key: Some(b"k 1"),
        ..record(&[])
    });
    let header = |name: &str| msg.headers.get(name).map(|v| v.to_str().unwrap());
    let want = [
        ("ce-specversion", "1.0"),
        ("ce-id", "partition:3/offset:1234"),
        (
            "ce-source",
            "/apis/v1/namespaces/ns/kafkasources/src#orders",
        ),
        ("ce-type", "dev.knative.kafka.event"),
        ("ce-subject", "partition:3#1234"),
        ("ce-time", "2023-11-14T22:13:20.123Z"),
        ("ce-key", "k%201"),
        ("ce-partitionkey", "k%201"),
        ("ce-knativekafkapartition", "3"),
        ("ce-knativekafkaoffset", "1234"),
    ];
    for (name, value) in want {
        assert_eq!(header(name), Some(value), "{name}");
    }
    assert_eq!(msg.headers.len(), want.len());
    assert_eq!(&msg.body[..], b"payload");
}
