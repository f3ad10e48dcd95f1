//! Events: Kafka records to CloudEvents (Knative's KafkaSource mapping), and the CloudEvents
//! HTTP and Kafka protocol bindings.

use bytes::Bytes;
use http::HeaderMap;

pub use cloudevents::Event;

/// An event encoded for HTTP (binary mode): `ce-*` headers, `content-type`, and the data as body.
/// Encoded once, then sent as many times as retries need.
#[derive(Debug, Clone, Default)]
pub struct HttpMessage {
    pub headers: HeaderMap,
    pub body: Bytes,
}
