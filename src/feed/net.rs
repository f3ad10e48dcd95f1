//! `spec.net` -> librdkafka security properties. The enable flags choose `security.protocol`
//! (SASL+TLS = SASL_SSL, SASL = SASL_PLAINTEXT, TLS = SSL); the Secret values become `sasl.*` and
//! PEM `ssl.*` properties. Plaintext adds nothing.

use std::collections::BTreeMap;

use crate::resources::{KafkaNetSpec, SecretValueFromSource};

use super::resolve::{FieldError, Lookup};

const FIELD: &str = "spec.net";

/// The mechanisms Knative accepts in the `type` Secret value, spelled as librdkafka wants them.
const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

pub(super) fn properties(
    net: &KafkaNetSpec,
    namespace: &str,
    lookup: &impl Lookup,
) -> Result<BTreeMap<String, String>, FieldError> {
    let mut props = BTreeMap::new();
    let protocol = match (net.sasl.enable, net.tls.enable) {
        (true, true) => "SASL_SSL",
        (true, false) => "SASL_PLAINTEXT",
        (false, true) => "SSL",
        (false, false) => return Ok(props),
    };
    props.insert("security.protocol".to_owned(), protocol.to_owned());
    let value = |source: &SecretValueFromSource, field: &str| {
        secret_value(source, &format!("{FIELD}.{field}"), namespace, lookup)
    };

    if net.sasl.enable {
        let mechanism = match value(&net.sasl.type_, "sasl.type")? {
            None => "PLAIN".to_owned(),
            Some(given) => mechanism(given.trim()).ok_or_else(|| {
                FieldError::new(
                    format!("{FIELD}.sasl.type"),
                    format!("unsupported SASL mechanism {given:?}; use one of {MECHANISMS:?}"),
                )
            })?,
        };
        let required = |source: &SecretValueFromSource, field: &str| {
            value(source, field)?.ok_or_else(|| {
                FieldError::new(
                    format!("{FIELD}.{field}.secretKeyRef"),
                    "required when sasl.enable is true",
                )
            })
        };
        let user = required(&net.sasl.user, "sasl.user")?;
        let password = required(&net.sasl.password, "sasl.password")?;
        props.insert("sasl.mechanism".to_owned(), mechanism);
        props.insert("sasl.username".to_owned(), user);
        props.insert("sasl.password".to_owned(), password);
    }

    if net.tls.enable {
        if let Some(ca) = value(&net.tls.ca_cert, "tls.caCert")? {
            props.insert("ssl.ca.pem".to_owned(), ca);
        }
        let cert = value(&net.tls.cert, "tls.cert")?;
        let key = value(&net.tls.key, "tls.key")?;
        match (cert, key) {
            (Some(cert), Some(key)) => {
                props.insert("ssl.certificate.pem".to_owned(), cert);
                props.insert("ssl.key.pem".to_owned(), key);
            }
            (None, None) => {}
            (Some(_), None) => return Err(pair_error("tls.key", "tls.cert")),
            (None, Some(_)) => return Err(pair_error("tls.cert", "tls.key")),
        }
    }
    Ok(props)
}

fn pair_error(missing: &str, given: &str) -> FieldError {
    FieldError::new(
        format!("{FIELD}.{missing}.secretKeyRef"),
        format!("required when {given} is set (client authentication needs both)"),
    )
}

/// Knative compares mechanisms exactly; we also accept other letter cases (`plain`).
fn mechanism(given: &str) -> Option<String> {
    MECHANISMS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(given))
        .map(|m| (*m).to_owned())
}

/// The value a `secretKeyRef` points at; `None` when there is no reference, or when an
/// `optional` one finds no Secret or key.
fn secret_value(
    source: &SecretValueFromSource,
    field: &str,
    namespace: &str,
    lookup: &impl Lookup,
) -> Result<Option<String>, FieldError> {
    let Some(selector) = &source.secret_key_ref else {
        return Ok(None);
    };
    let field = format!("{field}.secretKeyRef");
    if selector.name.is_empty() {
        return Err(FieldError::new(format!("{field}.name"), "required"));
    }
    if selector.key.is_empty() {
        return Err(FieldError::new(format!("{field}.key"), "required"));
    }
    let optional = selector.optional.unwrap_or(false);
    let shown = format!("Secret {namespace}/{}", selector.name);
    let Some(values) = lookup.secret(namespace, &selector.name) else {
        if optional {
            return Ok(None);
        }
        return Err(FieldError::new(field, format!("{shown} not found")));
    };
    let Some(bytes) = values.get(&selector.key) else {
        if optional {
            return Ok(None);
        }
        return Err(FieldError::new(
            field,
            format!("{shown} has no key {:?}", selector.key),
        ));
    };
    String::from_utf8(bytes.clone()).map(Some).map_err(|_| {
        FieldError::new(
            field,
            format!("{shown} key {:?} is not UTF-8 text", selector.key),
        )
    })
}
