//! Kafka clients: librdkafka configuration from resolved connections, and the embedded
//! development cluster.

pub mod client_config;
pub mod embedded;
pub mod offsets;
pub mod topics;
