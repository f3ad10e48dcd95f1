//! The Kafka cluster every KafkaChannel uses: Knative's ConfigMap `kafka-channel-config` in
//! `knative-eventing`, with `bootstrap.servers` and, for a secured cluster, `auth.secret.ref.name`
//! (and optionally `auth.secret.ref.namespace`, else the ConfigMap's) naming the auth Secret
//! read by [`auth_secret`](super::auth_secret).
//!
//! Pure apart from the [`Lookup`] for that Secret, so any feed that has the ConfigMap resolves it
//! the same way.

use std::collections::BTreeMap;
use std::fmt;

use crate::engine::plan::{KafkaConnection, ResourceId};
use crate::resources::ConfigMap;

use super::auth_secret;
use super::resolve::{FieldError, Lookup};

pub const CONFIG_MAP_NAME: &str = "kafka-channel-config";
pub const CONFIG_MAP_NAMESPACE: &str = "knative-eventing";
pub const BOOTSTRAP_SERVERS_KEY: &str = "bootstrap.servers";
pub const AUTH_SECRET_NAME_KEY: &str = "auth.secret.ref.name";
pub const AUTH_SECRET_NAMESPACE_KEY: &str = "auth.secret.ref.namespace";

/// Which object a configuration problem is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The ConfigMap; the field is `data.KEY`.
    ConfigMap(FieldError),
    /// The auth Secret it names; the field is `data.KEY`.
    Secret { id: ResourceId, error: FieldError },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConfigMap(error) => write!(
                f,
                "ConfigMap {CONFIG_MAP_NAMESPACE}/{CONFIG_MAP_NAME}: {error}"
            ),
            Self::Secret { id, error } => write!(f, "Secret {id}: {error}"),
        }
    }
}

/// The connection the ConfigMap describes.
pub fn kafka_connection(
    config_map: &ConfigMap,
    lookup: &impl Lookup,
) -> Result<KafkaConnection, ConfigError> {
    let bootstrap_servers = bootstrap_servers(&config_map.data).map_err(ConfigError::ConfigMap)?;
    let properties = match auth_secret_id(config_map).map_err(ConfigError::ConfigMap)? {
        None => BTreeMap::new(),
        Some(id) => {
            let values = lookup.secret(&id.namespace, &id.name).ok_or_else(|| {
                ConfigError::ConfigMap(FieldError::new(
                    data(AUTH_SECRET_NAME_KEY),
                    format!("Secret {id} not found"),
                ))
            })?;
            auth_secret::properties(values).map_err(|error| ConfigError::Secret { id, error })?
        }
    };
    Ok(KafkaConnection {
        bootstrap_servers,
        properties,
    })
}

/// The auth Secret the ConfigMap names, if any.
pub fn auth_secret_id(config_map: &ConfigMap) -> Result<Option<ResourceId>, FieldError> {
    let Some(name) = config_map.data.get(AUTH_SECRET_NAME_KEY) else {
        return Ok(None);
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(FieldError::new(
            data(AUTH_SECRET_NAME_KEY),
            "must not be empty; remove the key when the cluster needs no authentication",
        ));
    }
    let non_empty = |value: &str| !value.trim().is_empty();
    let namespace = config_map
        .data
        .get(AUTH_SECRET_NAMESPACE_KEY)
        .map(|n| n.trim())
        .filter(|n| non_empty(n))
        .or(config_map
            .metadata
            .namespace
            .as_deref()
            .filter(|n| non_empty(n)))
        .unwrap_or(CONFIG_MAP_NAMESPACE);
    Ok(Some(ResourceId::new(namespace, name)))
}

/// `bootstrap.servers`: a comma-separated list (blanks dropped, as Knative does), or
/// [`KafkaConnection::EMBEDDED`] alone.
fn bootstrap_servers(data_map: &BTreeMap<String, String>) -> Result<String, FieldError> {
    let field = data(BOOTSTRAP_SERVERS_KEY);
    let Some(value) = data_map.get(BOOTSTRAP_SERVERS_KEY) else {
        return Err(FieldError::new(
            field,
            format!(
                "required: the Kafka bootstrap servers (comma-separated host:port), or {:?} for \
                 the in-process cluster",
                KafkaConnection::EMBEDDED
            ),
        ));
    };
    let servers: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if servers.is_empty() {
        return Err(FieldError::new(field, "must list at least one host:port"));
    }
    if servers.len() > 1 && servers.contains(&KafkaConnection::EMBEDDED) {
        return Err(FieldError::new(
            field,
            format!(
                "{:?} must be the only bootstrap server",
                KafkaConnection::EMBEDDED
            ),
        ));
    }
    Ok(servers.join(","))
}

fn data(key: &str) -> String {
    format!("data.{key}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{Addressable, KReference};

    struct Secrets(BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>);

    impl Lookup for Secrets {
        fn secret(&self, namespace: &str, name: &str) -> Option<&BTreeMap<String, Vec<u8>>> {
            self.0.get(&(namespace.to_owned(), name.to_owned()))
        }
        fn address(&self, _: &KReference) -> Result<Addressable, String> {
            Err("not used".into())
        }
    }

    fn secrets() -> Secrets {
        let values = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect()
        };
        let sasl = values(&[
            ("protocol", "SASL_PLAINTEXT"),
            ("user", "u"),
            ("password", "p"),
        ]);
        let ssl = values(&[("protocol", "SSL"), ("user.skip", "true"), ("ca.crt", "CA")]);
        Secrets(
            [
                (("knative-eventing".into(), "kafka-auth".into()), sasl),
                (("kafka".into(), "kafka-tls".into()), ssl),
                (
                    ("knative-eventing".into(), "broken".into()),
                    values(&[("protocol", "X")]),
                ),
            ]
            .into(),
        )
    }

    fn config_map(pairs: &[(&str, &str)]) -> ConfigMap {
        let mut cm: ConfigMap = serde_yaml_ng::from_str(
            "metadata: {name: kafka-channel-config, namespace: knative-eventing}\n",
        )
        .unwrap();
        cm.data = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        cm
    }

    #[test]
    fn bootstrap_servers_and_auth_secret_make_the_connection() {
        let props = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let sasl = props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ]);
        let cases = [
            (
                vec![("bootstrap.servers", "k:9092")],
                "k:9092",
                BTreeMap::new(),
            ),
            // Knative's parsing: split on commas, trim, drop blanks.
            (
                vec![("bootstrap.servers", " a:9092, ,b:9092 ,")],
                "a:9092,b:9092",
                BTreeMap::new(),
            ),
            (
                vec![("bootstrap.servers", "embedded")],
                "embedded",
                BTreeMap::new(),
            ),
            // The Secret's namespace defaults to the ConfigMap's.
            (
                vec![
                    ("bootstrap.servers", "k:9092"),
                    ("auth.secret.ref.name", "kafka-auth"),
                ],
                "k:9092",
                sasl.clone(),
            ),
            (
                vec![
                    ("bootstrap.servers", "k:9092"),
                    ("auth.secret.ref.name", "kafka-auth"),
                    ("auth.secret.ref.namespace", ""),
                ],
                "k:9092",
                sasl,
            ),
            (
                vec![
                    ("bootstrap.servers", "k:9093"),
                    ("auth.secret.ref.name", "kafka-tls"),
                    ("auth.secret.ref.namespace", "kafka"),
                ],
                "k:9093",
                props(&[("security.protocol", "SSL"), ("ssl.ca.pem", "CA")]),
            ),
            // A namespace alone names no Secret.
            (
                vec![
                    ("bootstrap.servers", "k:9092"),
                    ("auth.secret.ref.namespace", "kafka"),
                ],
                "k:9092",
                BTreeMap::new(),
            ),
        ];
        for (data, servers, properties) in cases {
            let got = kafka_connection(&config_map(&data), &secrets());
            let want = KafkaConnection {
                bootstrap_servers: servers.to_owned(),
                properties,
            };
            assert_eq!(got, Ok(want), "{data:?}");
        }
    }

    #[test]
    fn errors_say_which_object_and_key() {
        let in_cm = |field: &str, problem: &str| (None, field.to_owned(), problem.to_owned());
        let cases = [
            (vec![], in_cm("data.bootstrap.servers", "required")),
            (
                vec![("bootstrap.servers", " , ")],
                in_cm("data.bootstrap.servers", "at least one"),
            ),
            (
                vec![("bootstrap.servers", "embedded,k:9092")],
                in_cm("data.bootstrap.servers", "only"),
            ),
            (
                vec![
                    ("bootstrap.servers", "k:9092"),
                    ("auth.secret.ref.name", " "),
                ],
                in_cm("data.auth.secret.ref.name", "must not be empty"),
            ),
            (
                vec![
                    ("bootstrap.servers", "k:9092"),
                    ("auth.secret.ref.name", "nope"),
                ],
                in_cm(
                    "data.auth.secret.ref.name",
                    "Secret knative-eventing/nope not found",
                ),
            ),
            // The SSL Secret exists, but in `kafka`, not the ConfigMap's namespace.
            (
                vec![
                    ("bootstrap.servers", "k:9092"),
                    ("auth.secret.ref.name", "kafka-tls"),
                ],
                in_cm(
                    "data.auth.secret.ref.name",
                    "Secret knative-eventing/kafka-tls not found",
                ),
            ),
            (
                vec![
                    ("bootstrap.servers", "k:9092"),
                    ("auth.secret.ref.name", "broken"),
                ],
                (
                    Some(ResourceId::new("knative-eventing", "broken")),
                    "data.protocol".to_owned(),
                    "unsupported protocol".to_owned(),
                ),
            ),
        ];
        for (data, (secret, field, problem)) in cases {
            let err = kafka_connection(&config_map(&data), &secrets()).expect_err(&field);
            let (got_secret, error) = match &err {
                ConfigError::ConfigMap(error) => (None, error),
                ConfigError::Secret { id, error } => (Some(id.clone()), error),
            };
            assert_eq!(
                (got_secret, error.field.as_str()),
                (secret, field.as_str()),
                "{err}"
            );
            assert!(error.problem.contains(&problem), "{err}");
        }
    }

    #[test]
    fn display_names_the_object() {
        let err = kafka_connection(&config_map(&[]), &secrets()).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "ConfigMap knative-eventing/kafka-channel-config: data.bootstrap.servers: required"
            ),
            "{err}"
        );
    }
}
