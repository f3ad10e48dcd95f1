//! librdkafka client configuration, built from a resolved [`KafkaConnection`] and the operator's
//! overrides (`--kafka-config key=value`), applied last so a deployment can tune anything.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

use crate::engine::plan::{InitialOffset, KafkaConnection};

/// Settings shared by every client this process creates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSettings {
    /// librdkafka properties applied after ours to every consumer and producer.
    pub overrides: BTreeMap<String, String>,
}

/// A consumer that stores offsets only once their event is settled and lets librdkafka commit
/// the stored ones in the background (and on revoke and close).
pub fn consumer_config(
    conn: &KafkaConnection,
    group: &str,
    initial_offset: InitialOffset,
    settings: &ClientSettings,
) -> ClientConfig {
    let mut config = base_config(conn);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", "1000")
        .set(
            "auto.offset.reset",
            match initial_offset {
                InitialOffset::Earliest => "earliest",
                InitialOffset::Latest => "latest",
            },
        )
        // Bound pre-fetching so memory stays flat behind a slow sink: librdkafka's defaults
        // (100k messages, 64 MiB) are sized for throughput, not for a bridge. Each partition has
        // its own queue here, and with separate partition queues both limits apply per partition.
        .set("queued.min.messages", "1000")
        .set("queued.max.messages.kbytes", "4096")
        .set("fetch.wait.max.ms", "100")
        .set("statistics.interval.ms", "5000");
    apply_overrides(&mut config, settings);
    config
}

/// A producer that waits for every in-sync replica (used by the development tools and channels).
pub fn producer_config(conn: &KafkaConnection, settings: &ClientSettings) -> ClientConfig {
    let mut config = base_config(conn);
    config
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("linger.ms", "1");
    apply_overrides(&mut config, settings);
    config
}

/// An admin client (topic management).
pub fn admin_config(conn: &KafkaConnection, settings: &ClientSettings) -> ClientConfig {
    let mut config = base_config(conn);
    apply_overrides(&mut config, settings);
    config
}

fn base_config(conn: &KafkaConnection) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &conn.bootstrap_servers)
        .set("client.id", "kafka-bridge");
    for (key, value) in &conn.properties {
        config.set(key, value);
    }
    config
}

fn apply_overrides(config: &mut ClientConfig, settings: &ClientSettings) {
    for (key, value) in &settings.overrides {
        config.set(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_config_stores_offsets_manually_and_applies_overrides_last() {
        let mut conn = KafkaConnection::plaintext("b1:9092,b2:9092");
        conn.properties
            .insert("security.protocol".into(), "SASL_SSL".into());
        let settings = ClientSettings {
            overrides: BTreeMap::from([("queued.min.messages".to_string(), "10".to_string())]),
        };
        let config = consumer_config(&conn, "g1", InitialOffset::Earliest, &settings);
        let cases = [
            ("bootstrap.servers", "b1:9092,b2:9092"),
            ("group.id", "g1"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("security.protocol", "SASL_SSL"),
            ("queued.min.messages", "10"),
        ];
        for (key, want) in cases {
            assert_eq!(config.get(key), Some(want), "{key}");
        }
        let latest = consumer_config(
            &conn,
            "g1",
            InitialOffset::Latest,
            &ClientSettings::default(),
        );
        assert_eq!(latest.get("auto.offset.reset"), Some("latest"));
    }
}
