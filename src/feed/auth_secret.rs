//! Knative's Kafka auth Secret (the one `kafka-channel-config` names) -> librdkafka properties.
//!
//! The Secret says its `protocol` (PLAINTEXT, SASL_PLAINTEXT, SSL, SASL_SSL) and carries what the
//! protocol needs: `sasl.mechanism` (PLAIN by default), `user`, `password` for SASL; `ca.crt`
//! (system roots when absent), `user.crt`, `user.key` for TLS, where SSL requires the client pair
//! unless `user.skip` is true. A Secret without `protocol` is in the older channel format, whose
//! protocol Knative infers from the keys present (`tls.enabled` or `ca.crt`; `password` with
//! `user` or `username`), as we do.

use std::collections::BTreeMap;

use super::resolve::FieldError;

pub const PROTOCOL_KEY: &str = "protocol";
pub const SASL_MECHANISM_KEY: &str = "sasl.mechanism";
pub const USER_KEY: &str = "user";
pub const PASSWORD_KEY: &str = "password";
pub const CA_CERT_KEY: &str = "ca.crt";
pub const USER_CERT_KEY: &str = "user.crt";
pub const USER_KEY_KEY: &str = "user.key";
pub const USER_SKIP_KEY: &str = "user.skip";

/// Keys of the legacy channel format.
const LEGACY_TLS_ENABLED_KEY: &str = "tls.enabled";
const LEGACY_USERNAME_KEY: &str = "username";
/// Where the legacy format may name the SASL mechanism, in Knative's order of precedence.
const LEGACY_MECHANISM_KEYS: [&str; 3] = ["saslType", "sasltype", SASL_MECHANISM_KEY];

const PROTOCOLS: [&str; 4] = ["PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL"];
const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// The librdkafka properties for a Secret's decoded values. Plaintext adds none. Errors name
/// the Secret key as `data.KEY`.
pub fn properties(
    values: &BTreeMap<String, Vec<u8>>,
) -> Result<BTreeMap<String, String>, FieldError> {
    let secret = Values(values);
    let (protocol, legacy) = match secret.text(PROTOCOL_KEY)?.filter(|p| !p.trim().is_empty()) {
        Some(given) => (protocol(given.trim())?, false),
        None => (secret.legacy_protocol()?, true),
    };
    let mut props = BTreeMap::new();
    let (sasl, tls) = match protocol {
        "PLAINTEXT" => return Ok(props),
        "SASL_PLAINTEXT" => (true, false),
        "SSL" => (false, true),
        _ => (true, true),
    };
    props.insert("security.protocol".to_owned(), protocol.to_owned());
    if sasl {
        sasl_properties(&secret, protocol, legacy, &mut props)?;
    }
    if tls {
        tls_properties(&secret, protocol, &mut props)?;
    }
    Ok(props)
}

fn protocol(given: &str) -> Result<&'static str, FieldError> {
    // Knative compares exactly; other letter cases are accepted here too.
    PROTOCOLS
        .into_iter()
        .find(|p| p.eq_ignore_ascii_case(given))
        .ok_or_else(|| {
            FieldError::new(
                data(PROTOCOL_KEY),
                format!("unsupported protocol {given:?}; use one of {PROTOCOLS:?}"),
            )
        })
}

fn sasl_properties(
    secret: &Values<'_>,
    protocol: &str,
    legacy: bool,
    props: &mut BTreeMap<String, String>,
) -> Result<(), FieldError> {
    let (mechanism_key, mechanism) = if legacy {
        secret.first_text(&LEGACY_MECHANISM_KEYS)?
    } else {
        secret.first_text(&[SASL_MECHANISM_KEY])?
    };
    let mechanism = match mechanism.map(str::trim).filter(|m| !m.is_empty()) {
        None => "PLAIN",
        Some(given) => MECHANISMS
            .into_iter()
            .find(|m| m.eq_ignore_ascii_case(given))
            .ok_or_else(|| {
                let why = if given.eq_ignore_ascii_case("OAUTHBEARER") {
                    "OAUTHBEARER (AWS MSK IAM tokens) is not supported".to_owned()
                } else {
                    format!("unsupported SASL mechanism {given:?}")
                };
                FieldError::new(
                    data(mechanism_key),
                    format!("{why}; use one of {MECHANISMS:?}"),
                )
            })?,
    };
    // The dispatcher reads `user` first; the legacy format may say `username` instead.
    let user_keys: &[&str] = if legacy {
        &[USER_KEY, LEGACY_USERNAME_KEY]
    } else {
        &[USER_KEY]
    };
    let (_, user) = secret.first_text(user_keys)?;
    let required = |value: Option<&str>, key: &str| {
        value
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| FieldError::new(data(key), format!("required for protocol {protocol}")))
    };
    props.insert("sasl.mechanism".to_owned(), mechanism.to_owned());
    props.insert("sasl.username".to_owned(), required(user, USER_KEY)?);
    props.insert(
        "sasl.password".to_owned(),
        required(secret.text(PASSWORD_KEY)?, PASSWORD_KEY)?,
    );
    Ok(())
}

fn tls_properties(
    secret: &Values<'_>,
    protocol: &str,
    props: &mut BTreeMap<String, String>,
) -> Result<(), FieldError> {
    let pem = |key: &str| -> Result<Option<String>, FieldError> {
        Ok(secret
            .text(key)?
            .filter(|v| !v.trim().is_empty())
            .map(str::to_owned))
    };
    if let Some(ca) = pem(CA_CERT_KEY)? {
        props.insert("ssl.ca.pem".to_owned(), ca);
    }
    let skip_client_auth = match secret.text(USER_SKIP_KEY)? {
        None => false,
        Some(flag) => parse_bool(flag.trim()).ok_or_else(|| {
            FieldError::new(
                data(USER_SKIP_KEY),
                format!("{flag:?} is not true or false"),
            )
        })?,
    };
    // With SSL the client certificate is the authentication, so Knative requires it unless told
    // the brokers do not ask for one; with SASL_SSL it is optional.
    let required = protocol == "SSL" && !skip_client_auth;
    match (pem(USER_CERT_KEY)?, pem(USER_KEY_KEY)?) {
        (Some(cert), Some(key)) => {
            props.insert("ssl.certificate.pem".to_owned(), cert);
            props.insert("ssl.key.pem".to_owned(), key);
        }
        (None, None) if !required => {}
        (cert, _) => {
            let (missing, given) = if cert.is_none() {
                (USER_CERT_KEY, USER_KEY_KEY)
            } else {
                (USER_KEY_KEY, USER_CERT_KEY)
            };
            let problem = if required {
                format!(
                    "required for protocol SSL (client authentication); set {USER_SKIP_KEY}: \
                     \"true\" if the brokers do not require client certificates"
                )
            } else {
                format!("required when {given} is set (client authentication needs both)")
            };
            return Err(FieldError::new(data(missing), problem));
        }
    }
    Ok(())
}

/// Go's `strconv.ParseBool`, which Knative uses for its flags.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn data(key: &str) -> String {
    format!("data.{key}")
}

/// A Secret's decoded values, read as text.
struct Values<'a>(&'a BTreeMap<String, Vec<u8>>);

impl<'a> Values<'a> {
    fn text(&self, key: &str) -> Result<Option<&'a str>, FieldError> {
        self.0
            .get(key)
            .map(|bytes| {
                std::str::from_utf8(bytes)
                    .map_err(|_| FieldError::new(data(key), "is not UTF-8 text"))
            })
            .transpose()
    }

    /// The first of `keys` present, and its value; the first key when none is.
    fn first_text<'k>(&self, keys: &[&'k str]) -> Result<(&'k str, Option<&'a str>), FieldError> {
        for key in keys {
            if let Some(value) = self.text(key)? {
                return Ok((key, Some(value)));
            }
        }
        Ok((keys[0], None))
    }

    /// The protocol of a Secret without `protocol`, inferred as Knative does for the legacy
    /// channel format.
    fn legacy_protocol(&self) -> Result<&'static str, FieldError> {
        let tls_flag = self.text(LEGACY_TLS_ENABLED_KEY)?.map(str::trim);
        let tls = tls_flag.and_then(parse_bool).unwrap_or(false)
            || self.text(CA_CERT_KEY)?.is_some_and(|ca| !ca.is_empty());
        let has = |key: &str| self.0.contains_key(key);
        let sasl = has(PASSWORD_KEY) && (has(USER_KEY) || has(LEGACY_USERNAME_KEY));
        Ok(match (sasl, tls) {
            (true, true) => "SASL_SSL",
            (true, false) => "SASL_PLAINTEXT",
            (false, true) => "SSL",
            (false, false) => "PLAINTEXT",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Secret keys and values, or property names and values.
    type Pairs = Vec<(&'static str, &'static str)>;

    const SASL: [(&str, &str); 2] = [("user", "u"), ("password", "p")];
    const PAIR: [(&str, &str); 2] = [("user.crt", "CERT"), ("user.key", "KEY")];

    #[test]
    fn each_protocol_maps_to_librdkafka_properties() {
        let with = |base: &[(&'static str, &'static str)],
                    more: &[(&'static str, &'static str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(more);
            all
        };
        let sasl_props = [
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ];
        let cases: Vec<(Pairs, Pairs)> = vec![
            (vec![("protocol", "PLAINTEXT")], vec![]),
            // Credentials given with PLAINTEXT are not used.
            (with(&[("protocol", "PLAINTEXT")], &SASL), vec![]),
            (
                with(&[("protocol", "SASL_PLAINTEXT")], &SASL),
                with(&[("security.protocol", "SASL_PLAINTEXT")], &sasl_props),
            ),
            (
                with(
                    &[
                        ("protocol", "SASL_PLAINTEXT"),
                        ("sasl.mechanism", "SCRAM-SHA-512"),
                    ],
                    &SASL,
                ),
                vec![
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanism", "SCRAM-SHA-512"),
                    ("sasl.username", "u"),
                    ("sasl.password", "p"),
                ],
            ),
            // Letter case and a trailing newline (from `--from-file`) are tolerated.
            (
                with(
                    &[
                        ("protocol", "sasl_ssl\n"),
                        ("sasl.mechanism", "scram-sha-256"),
                    ],
                    &SASL,
                ),
                vec![
                    ("security.protocol", "SASL_SSL"),
                    ("sasl.mechanism", "SCRAM-SHA-256"),
                    ("sasl.username", "u"),
                    ("sasl.password", "p"),
                ],
            ),
            (
                with(&[("protocol", "SSL"), ("ca.crt", "CA")], &PAIR),
                vec![
                    ("security.protocol", "SSL"),
                    ("ssl.ca.pem", "CA"),
                    ("ssl.certificate.pem", "CERT"),
                    ("ssl.key.pem", "KEY"),
                ],
            ),
            // No CA: the system roots; no client pair when the brokers do not ask for one.
            (
                vec![("protocol", "SSL"), ("user.skip", "true")],
                vec![("security.protocol", "SSL")],
            ),
            (
                with(&[("protocol", "SSL"), ("user.skip", "1")], &PAIR),
                vec![
                    ("security.protocol", "SSL"),
                    ("ssl.certificate.pem", "CERT"),
                    ("ssl.key.pem", "KEY"),
                ],
            ),
            (
                with(&[("protocol", "SASL_SSL"), ("ca.crt", "CA")], &SASL),
                with(
                    &[("security.protocol", "SASL_SSL"), ("ssl.ca.pem", "CA")],
                    &sasl_props,
                ),
            ),
            // SASL_SSL with a client pair as well (mutual TLS under SASL).
            (
                with(&with(&[("protocol", "SASL_SSL")], &SASL), &PAIR),
                with(
                    &[
                        ("security.protocol", "SASL_SSL"),
                        ("ssl.certificate.pem", "CERT"),
                        ("ssl.key.pem", "KEY"),
                    ],
                    &sasl_props,
                ),
            ),
            // Legacy format: no `protocol`; inferred from the keys present.
            (vec![], vec![]),
            (
                vec![("username", "u"), ("password", "p")],
                with(&[("security.protocol", "SASL_PLAINTEXT")], &sasl_props),
            ),
            (
                with(
                    &[("tls.enabled", "true"), ("saslType", "SCRAM-SHA-512")],
                    &SASL,
                ),
                vec![
                    ("security.protocol", "SASL_SSL"),
                    ("sasl.mechanism", "SCRAM-SHA-512"),
                    ("sasl.username", "u"),
                    ("sasl.password", "p"),
                ],
            ),
            (
                vec![("ca.crt", "CA"), ("user.skip", "true")],
                vec![("security.protocol", "SSL"), ("ssl.ca.pem", "CA")],
            ),
            (
                vec![
                    ("protocol", ""),
                    ("tls.enabled", "false"),
                    ("user.skip", "true"),
                ],
                vec![],
            ),
        ];
        for (given, want) in cases {
            let got = properties(&secret(&given)).unwrap_or_else(|e| panic!("{given:?}: {e}"));
            let want: BTreeMap<_, _> = props(&want).into_iter().collect();
            assert_eq!(got, want, "{given:?}");
        }
    }

    #[test]
    fn errors_name_the_secret_key() {
        let cases: Vec<(Pairs, &str, &str)> = vec![
            (
                vec![("protocol", "TLS")],
                "data.protocol",
                "unsupported protocol \"TLS\"",
            ),
            (
                vec![("protocol", "SASL_PLAINTEXT"), ("password", "p")],
                "data.user",
                "required for protocol SASL_PLAINTEXT",
            ),
            (
                vec![("protocol", "SASL_SSL"), ("user", "u")],
                "data.password",
                "required for protocol SASL_SSL",
            ),
            (
                vec![("protocol", "SASL_SSL"), ("user", ""), ("password", "p")],
                "data.user",
                "required",
            ),
            (
                vec![
                    ("protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanism", "GSSAPI"),
                    ("user", "u"),
                    ("password", "p"),
                ],
                "data.sasl.mechanism",
                "unsupported SASL mechanism \"GSSAPI\"",
            ),
            (
                vec![("protocol", "SASL_SSL"), ("sasl.mechanism", "OAUTHBEARER")],
                "data.sasl.mechanism",
                "OAUTHBEARER (AWS MSK IAM tokens) is not supported",
            ),
            (
                vec![("protocol", "SSL")],
                "data.user.crt",
                "set user.skip: \"true\"",
            ),
            (
                vec![("protocol", "SSL"), ("user.crt", "C")],
                "data.user.key",
                "required for protocol SSL",
            ),
            (
                vec![("protocol", "SSL"), ("user.skip", "yes")],
                "data.user.skip",
                "\"yes\" is not true or false",
            ),
            (
                vec![
                    ("protocol", "SASL_SSL"),
                    ("user", "u"),
                    ("password", "p"),
                    ("user.key", "K"),
                ],
                "data.user.crt",
                "required when user.key is set",
            ),
            (
                vec![
                    ("protocol", "SSL"),
                    ("user.skip", "true"),
                    ("user.crt", "C"),
                ],
                "data.user.key",
                "required when user.crt is set",
            ),
            // Legacy: SASL inferred, mechanism named by its legacy key.
            (
                vec![("user", "u"), ("password", "p"), ("sasltype", "GSSAPI")],
                "data.sasltype",
                "GSSAPI",
            ),
            (
                vec![("tls.enabled", "true")],
                "data.user.crt",
                "required for protocol SSL",
            ),
        ];
        for (given, field, problem) in cases {
            let err = properties(&secret(&given)).expect_err(field);
            assert_eq!(err.field, field, "{given:?}: {err}");
            assert!(err.problem.contains(problem), "{given:?}: {err}");
        }
        let binary: BTreeMap<_, _> = [("protocol".to_owned(), vec![0xff, 0xfe])].into();
        assert_eq!(
            properties(&binary).unwrap_err(),
            FieldError::new("data.protocol", "is not UTF-8 text")
        );
    }
}
