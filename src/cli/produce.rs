//! `kafka-bridge produce`: writes records to a topic and waits for the broker to acknowledge
//! each, so a walkthrough needs no other Kafka tooling.

use std::time::Duration;

use anyhow::Context;
use kafka_bridge::engine::plan::KafkaConnection;
use kafka_bridge::kafka::client_config::{producer_config, ClientSettings};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// Kafka bootstrap servers (the embedded cluster logs its address at start).
    #[arg(long, short = 'b')]
    bootstrap_server: String,
    #[arg(long, short = 't')]
    topic: String,
    /// Record key.
    #[arg(long, short = 'k')]
    key: Option<String>,
    /// Record header. Repeatable.
    #[arg(long = "header", short = 'H', value_name = "NAME=VALUE", value_parser = super::parse_key_value)]
    headers: Vec<(String, String)>,
    /// Produce the value this many times; `{n}` in the value is replaced by the record's number.
    #[arg(long, short = 'n', default_value_t = 1)]
    count: u64,
    /// Record value.
    value: String,
}

pub async fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let connection = KafkaConnection::plaintext(args.bootstrap_server.clone());
    let producer: FutureProducer = producer_config(&connection, &ClientSettings::default())
        .create()
        .context("creating the producer")?;
    for n in 0..args.count {
        let value = args.value.replace("{n}", &n.to_string());
        let headers = args
            .headers
            .iter()
            .fold(OwnedHeaders::new(), |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                })
            });
        let mut record = FutureRecord::to(&args.topic)
            .payload(&value)
            .headers(headers);
        if let Some(key) = &args.key {
            record = record.key(key);
        }
        let delivery = producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(error, _)| error)
            .with_context(|| format!("producing to topic {:?}", args.topic))?;
        println!(
            "{}: partition {} offset {}",
            args.topic, delivery.partition, delivery.offset
        );
    }
    Ok(())
}
