//! Events: Kafka records to CloudEvents (Knative's KafkaSource mapping), and the CloudEvents
//! HTTP and Kafka protocol bindings.

mod binary_mode;
mod decode;
pub mod http_binding;
pub mod kafka_binding;
pub mod key;
pub mod mapping;
pub mod percent;

use bytes::Bytes;
use http::HeaderMap;

pub use cloudevents::event::ExtensionValue;
pub use cloudevents::{AttributesReader, AttributesWriter, Data, Event};
pub use decode::{is_valid_attribute_name, DecodeError};
pub use kafka_binding::{KafkaMessage, RecordHeader};
pub use key::key_value;
pub use mapping::{Mapper, RecordView, EVENT_TYPE};
pub use percent::PercentDecodeError;

/// An event encoded for HTTP (binary mode): `ce-*` headers, `content-type`, and the data as body.
/// Encoded once, then sent as many times as retries need.
#[derive(Debug, Clone, Default)]
pub struct HttpMessage {
    pub headers: HeaderMap,
    pub body: Bytes,
}
