use std::collections::BTreeMap;

use chrono::DateTime;
use cloudevents::event::SpecVersion;
use cloudevents::{AttributesReader, EventBuilder, EventBuilderV10};
use url::Url;

use super::*;
use crate::delivery::policy::{DeliveryPolicy, Target};
use crate::engine::plan::{InitialOffset, KafkaConnection, Ordering, ResourceId};
use crate::event::kafka_binding;

pub(super) fn plan(key_type: KeyType, overrides: &[(&str, &str)]) -> SourcePlan {
    SourcePlan {
        id: ResourceId::new("ns", "src"),
        generation: 1,
        kafka: KafkaConnection::plaintext("localhost:9092"),
        topics: vec!["orders".to_owned(), "users".to_owned()],
        consumer_group: "group".to_owned(),
        initial_offset: InitialOffset::Latest,
        consumers: 1,
        ordering: Ordering::Ordered,
        sink: Target::new(Url::parse("http://sink.example/").unwrap()),
        delivery: DeliveryPolicy::source_default(),
        ce_overrides: overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        key_type,
    }
}

pub(super) fn record<'a>(headers: &'a [RecordHeader<'a>]) -> RecordView<'a> {
    RecordView {
        topic: "orders",
        partition: 3,
        offset: 1234,
        timestamp_ms: Some(1_700_000_000_123),
        key: None,
        headers,
        value: Some(b"payload"),
    }
}

fn string(v: &str) -> ExtensionValue {
    ExtensionValue::String(v.to_owned())
}

#[test]
fn plain_record_attributes() {
    let mapper = Mapper::new(&plan(KeyType::String, &[]));
    let ev = mapper.to_event(&RecordView {
        key: Some(b"k1"),
        ..record(&[])
    });

    assert_eq!(ev.specversion(), SpecVersion::V10);
    assert_eq!(ev.id(), "partition:3/offset:1234");
    assert_eq!(ev.ty(), "dev.knative.kafka.event");
    assert_eq!(
        ev.source(),
        "/apis/v1/namespaces/ns/kafkasources/src#orders"
    );
    assert_eq!(ev.subject(), Some("partition:3#1234"));
    assert_eq!(
        ev.time(),
        DateTime::from_timestamp_millis(1_700_000_000_123).as_ref()
    );
    assert_eq!(ev.datacontenttype(), None);
    assert_eq!(ev.dataschema(), None);
    assert_eq!(ev.data(), Some(&Data::Binary(b"payload".to_vec())));

    let mut extensions: Vec<(&str, &ExtensionValue)> = ev.iter_extensions().collect();
    extensions.sort_by_key(|(name, _)| *name);
    let want = [
        ("key", &string("k1")),
        ("knativekafkaoffset", &ExtensionValue::Integer(1234)),
        ("knativekafkapartition", &ExtensionValue::Integer(3)),
        ("partitionkey", &string("k1")),
    ];
    assert_eq!(extensions, want);
}

#[test]
fn source_depends_on_topic() {
    let plan = plan(KeyType::String, &[]);
    let mapper = Mapper::new(&plan);
    for topic in ["orders", "users", "not-in-plan"] {
        let ev = mapper.to_event(&RecordView {
            topic,
            ..record(&[])
        });
        assert_eq!(*ev.source(), plan.event_source(topic), "{topic}");
    }
}

#[test]
fn time_is_omitted_without_a_timestamp() {
    let mapper = Mapper::new(&plan(KeyType::String, &[]));
    let cases = [
        (Some(0), DateTime::from_timestamp_millis(0)),
        (Some(-1), None),
        (None, None),
    ];
    for (timestamp_ms, want) in cases {
        let ev = mapper.to_event(&RecordView {
            timestamp_ms,
            ..record(&[])
        });
        assert_eq!(ev.time(), want.as_ref(), "{timestamp_ms:?}");
    }
}

#[test]
fn key_and_partitionkey_follow_the_key_type() {
    type Case<'a> = (KeyType, Option<&'a [u8]>, Option<ExtensionValue>);
    let int = 7i32.to_be_bytes();
    let float = 2.5f64.to_be_bytes();
    let cases: [Case<'_>; 8] = [
        (KeyType::String, Some(b"abc"), Some(string("abc"))),
        (KeyType::Int, Some(&int), Some(ExtensionValue::Integer(7))),
        (KeyType::Int, Some(b"abc"), Some(string("abc"))),
        (KeyType::Float, Some(&float), Some(string("2.5"))),
        (KeyType::ByteArray, Some(b"\xff\x00"), Some(string("/wA="))),
        (KeyType::String, Some(b""), None),
        (KeyType::Int, Some(b""), None),
        (KeyType::String, None, None),
    ];
    for (key_type, key, want) in cases {
        let mapper = Mapper::new(&plan(key_type, &[]));
        let ev = mapper.to_event(&RecordView { key, ..record(&[]) });
        assert_eq!(ev.extension("key"), want.as_ref(), "{key_type:?} {key:?}");
        assert_eq!(
            ev.extension("partitionkey"),
            want.as_ref(),
            "{key_type:?} {key:?}"
        );
    }
}

#[test]
fn headers_become_extensions_and_content_type_datacontenttype() {
    let headers: [RecordHeader<'_>; 6] = [
        ("X-Trace-Id", Some(b"abc")),
        ("my_header.v2", Some(b"caf\xc3\xa9")),
        ("bin", Some(b"\xff")),
        ("empty", None),
        ("Content-Type", Some(b"Application/JSON")),
        ("other", Some(b"x")),
    ];
    let mapper = Mapper::new(&plan(KeyType::String, &[]));
    let ev = mapper.to_event(&record(&headers));
    let cases = [
        ("kafkaheaderxtraceid", "abc"),
        ("kafkaheadermyheaderv2", "café"),
        ("kafkaheaderbin", "\u{FFFD}"),
        ("kafkaheaderempty", ""),
        ("kafkaheaderother", "x"),
    ];
    for (name, value) in cases {
        assert_eq!(ev.extension(name), Some(&string(value)), "{name}");
    }
    assert_eq!(ev.extension("kafkaheadercontenttype"), None);
    assert_eq!(ev.datacontenttype(), Some("application/json"));
    // Five header extensions plus partition and offset.
    assert_eq!(ev.iter_extensions().count(), 7);
}

#[test]
fn header_extension_names() {
    let cases = [
        ("abc", "kafkaheaderabc"),
        ("A-B_C.d", "kafkaheaderabcd"),
        ("ÄKelvin\u{212A}", "kafkaheaderkelvink"),
        ("---", "kafkaheader"),
    ];
    for (header, want) in cases {
        assert_eq!(header_extension_name(header), want, "{header}");
    }
}

#[test]
fn absent_value_means_no_data() {
    let mapper = Mapper::new(&plan(KeyType::String, &[]));
    let ev = mapper.to_event(&RecordView {
        value: None,
        ..record(&[])
    });
    assert_eq!(ev.data(), None);
    let ev = mapper.to_event(&RecordView {
        value: Some(b""),
        ..record(&[])
    });
    assert_eq!(ev.data(), Some(&Data::Binary(Vec::new())));
}

fn producer_event() -> Event {
    EventBuilderV10::new()
        .id("original-id")
        .source("/producer")
        .ty("com.example.order")
        .data("application/json", serde_json::json!({"n": 1}))
        .extension("tenant", "acme")
        .build()
        .unwrap()
}

fn with_metadata(mut ev: Event, partition: i64, offset: i64) -> Event {
    ev.set_extension("knativekafkapartition", partition);
    ev.set_extension("knativekafkaoffset", offset);
    ev
}

#[test]
fn binary_cloudevent_records_pass_through() {
    let msg = kafka_binding::encode_binary(&producer_event());
    let headers: Vec<RecordHeader<'_>> = msg
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), Some(v.as_slice())))
        .collect();
    let mapper = Mapper::new(&plan(KeyType::String, &[]));
    let ev = mapper.to_event(&RecordView {
        key: Some(b"record-key"),
        value: msg.value.as_deref(),
        ..record(&headers)
    });
    // Binary mode carries data as bytes; nothing of the record's own metadata is added.
    let mut want = producer_event();
    want.set_data("application/json", br#"{"n":1}"#.to_vec());
    assert_eq!(ev, with_metadata(want, 3, 1234));
}

#[test]
fn structured_cloudevent_records_pass_through() {
    let value = serde_json::to_vec(&producer_event()).unwrap();
    let headers: [RecordHeader<'_>; 1] = [("content-type", Some(b"application/cloudevents+json"))];
    let mapper = Mapper::new(&plan(KeyType::String, &[]));
    let ev = mapper.to_event(&RecordView {
        value: Some(&value),
        ..record(&headers)
    });
    assert_eq!(ev, with_metadata(producer_event(), 3, 1234));
}

#[test]
fn invalid_cloudevent_records_are_mapped_as_plain_records() {
    let cases: [(&[RecordHeader<'_>], &str); 2] = [
        (
            &[("ce_specversion", Some(b"1.0")), ("ce_type", Some(b"t"))],
            "kafkaheadercespecversion",
        ),
        (
            &[("content-type", Some(b"application/cloudevents+json"))],
            "key",
        ),
    ];
    let mapper = Mapper::new(&plan(KeyType::String, &[]));
    for (headers, extension) in cases {
        let ev = mapper.to_event(&RecordView {
            key: Some(b"k"),
            value: Some(b"{not json"),
            ..record(headers)
        });
        assert_eq!(ev.id(), "partition:3/offset:1234", "{headers:?}");
        assert_eq!(ev.ty(), EVENT_TYPE);
        assert!(
            ev.extension(extension).is_some(),
            "{headers:?}: {extension}"
        );
        assert_eq!(ev.data(), Some(&Data::Binary(b"{not json".to_vec())));
    }
}

#[test]
fn overrides_apply_last_to_every_event() {
    let overrides = [("tenant", "override"), ("key", "forced"), ("env", "prod")];
    let mapper = Mapper::new(&plan(KeyType::String, &overrides));

    let plain = mapper.to_event(&RecordView {
        key: Some(b"k"),
        ..record(&[])
    });
    assert_eq!(plain.extension("key"), Some(&string("forced")));
    assert_eq!(plain.extension("partitionkey"), Some(&string("k")));
    assert_eq!(plain.extension("env"), Some(&string("prod")));
    assert_eq!(plain.extension("tenant"), Some(&string("override")));

    let value = serde_json::to_vec(&producer_event()).unwrap();
    let headers: [RecordHeader<'_>; 1] = [("content-type", Some(b"application/cloudevents+json"))];
    let passthrough = mapper.to_event(&RecordView {
        value: Some(&value),
        ..record(&headers)
    });
    assert_eq!(passthrough.id(), "original-id");
    assert_eq!(passthrough.extension("tenant"), Some(&string("override")));
    assert_eq!(passthrough.extension("env"), Some(&string("prod")));
    assert_eq!(
        passthrough.extension("knativekafkaoffset"),
        Some(&ExtensionValue::Integer(1234))
    );
}

#[test]
fn overrides_win_over_kafka_metadata() {
    let mapper = Mapper::new(&plan(KeyType::String, &[("knativekafkapartition", "x")]));
    let ev = mapper.to_event(&record(&[]));
    assert_eq!(ev.extension("knativekafkapartition"), Some(&string("x")));
    assert_eq!(
        ev.extension("knativekafkaoffset"),
        Some(&ExtensionValue::Integer(1234))
    );
}
