//! What decoding a CloudEvent can reject, shared by the HTTP and Kafka bindings, and the checks
//! every decoded event passes: the SDK's builder and JSON reader accept events the spec (and
//! Knative's Java and Go SDKs) refuse, such as an empty id or an extension named `Foo-Bar`.

use cloudevents::event::EventBuilderError;
use cloudevents::{AttributesReader, Event};

use super::percent::PercentDecodeError;

/// Why a message is not an acceptable CloudEvent. Messages are meant for a 400 response body.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("batched CloudEvents (application/cloudevents-batch) are not supported")]
    BatchUnsupported,
    #[error(
        "unsupported event format {content_type:?}: only application/cloudevents+json is supported"
    )]
    UnsupportedFormat { content_type: String },
    #[error("invalid structured CloudEvent: {0}")]
    InvalidJson(#[source] serde_json::Error),
    #[error("missing required attribute {0:?}")]
    MissingAttribute(&'static str),
    #[error("unknown specversion {0:?}: supported are 1.0 and 0.3")]
    UnknownSpecVersion(String),
    #[error("invalid attribute {name:?}: {reason}")]
    InvalidAttribute { name: String, reason: String },
    #[error("header {header:?}: {source}")]
    InvalidHeaderEncoding {
        header: String,
        #[source]
        source: PercentDecodeError,
    },
    #[error("invalid extension name {0:?}: names are lowercase letters a-z and digits 0-9")]
    InvalidExtensionName(String),
}

impl DecodeError {
    pub(crate) fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidAttribute {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

impl From<EventBuilderError> for DecodeError {
    fn from(err: EventBuilderError) -> Self {
        match err {
            EventBuilderError::MissingRequiredAttribute { attribute_name } => {
                Self::MissingAttribute(attribute_name)
            }
            EventBuilderError::ParseTimeError { attribute_name, .. }
            | EventBuilderError::ParseUrlError { attribute_name, .. }
            | EventBuilderError::InvalidUriRefError { attribute_name } => {
                Self::invalid(attribute_name, err.to_string())
            }
        }
    }
}

/// CloudEvents attribute names: lowercase ASCII letters and digits.
pub fn is_valid_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The checks the SDK leaves out: required string attributes are non-empty and extension names
/// are well formed.
pub(crate) fn validate(event: &Event) -> Result<(), DecodeError> {
    for (name, value) in [
        ("id", event.id()),
        ("source", event.source()),
        ("type", event.ty()),
    ] {
        if value.is_empty() {
            return Err(DecodeError::invalid(name, "must not be empty"));
        }
    }
    match event
        .iter_extensions()
        .find(|(name, _)| !is_valid_attribute_name(name))
    {
        Some((name, _)) => Err(DecodeError::InvalidExtensionName(name.to_owned())),
        None => Ok(()),
    }
}

/// Parses a structured-mode event (JSON format, specversion 1.0 or 0.3, `data` or `data_base64`).
pub(crate) fn parse_structured_json(bytes: &[u8]) -> Result<Event, DecodeError> {
    let event: Event = serde_json::from_slice(bytes).map_err(DecodeError::InvalidJson)?;
    validate(&event)?;
    Ok(event)
}

/// `s` starts with `prefix`, ignoring ASCII case (media types are case-insensitive).
pub(crate) fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

pub(crate) const STRUCTURED_PREFIX: &str = "application/cloudevents";
pub(crate) const STRUCTURED_JSON: &str = "application/cloudevents+json";
pub(crate) const BATCH_PREFIX: &str = "application/cloudevents-batch";

/// The content type names the JSON event format, with or without parameters.
pub(crate) fn is_structured_json(content_type: &str) -> bool {
    starts_with_ignore_case(content_type, STRUCTURED_JSON)
        && matches!(
            content_type.as_bytes().get(STRUCTURED_JSON.len()),
            None | Some(b';' | b' ' | b'\t')
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudevents::event::SpecVersion;
    use cloudevents::Data;

    #[test]
    fn structured_json_accepts_both_spec_versions_and_data_forms() {
        let v10 = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t",
            "datacontenttype":"application/json","data":{"a":1},"ext1":"x","ext2":5}"#;
        let ev = parse_structured_json(v10).unwrap();
        assert_eq!(ev.specversion(), SpecVersion::V10);
        assert_eq!(ev.data(), Some(&Data::Json(serde_json::json!({"a": 1}))));
        assert_eq!(ev.extension("ext2"), Some(&5i64.into()));

        let b64 = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t",
            "datacontenttype":"application/octet-stream","data_base64":"AAEC"}"#;
        let ev = parse_structured_json(b64).unwrap();
        assert_eq!(ev.data(), Some(&Data::Binary(vec![0, 1, 2])));

        let v03 = br#"{"specversion":"0.3","id":"1","source":"/s","type":"t",
            "schemaurl":"http://schema.example/x"}"#;
        let ev = parse_structured_json(v03).unwrap();
        assert_eq!(ev.specversion(), SpecVersion::V03);
        assert_eq!(
            ev.dataschema().map(|u| u.as_str()),
            Some("http://schema.example/x")
        );
    }

    #[test]
    fn structured_json_rejects_invalid_events() {
        let cases: [(&[u8], &str); 7] = [
            (b"not json", "InvalidJson"),
            (br#"{"id":"1","source":"/s","type":"t"}"#, "InvalidJson"),
            (
                br#"{"specversion":"2.0","id":"1","source":"/s","type":"t"}"#,
                "InvalidJson",
            ),
            (
                br#"{"specversion":"1.0","source":"/s","type":"t"}"#,
                "InvalidJson",
            ),
            (
                br#"{"specversion":"1.0","id":"","source":"/s","type":"t"}"#,
                "InvalidAttribute",
            ),
            (
                br#"{"specversion":"1.0","id":"1","source":"","type":"t"}"#,
                "InvalidAttribute",
            ),
            (
                br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","Bad_Ext":"x"}"#,
                "InvalidExtensionName",
            ),
        ];
        for (json, want) in cases {
            let err = parse_structured_json(json).unwrap_err();
            let got = format!("{err:?}");
            assert!(
                got.starts_with(want),
                "{}: got {got}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn content_type_classification() {
        let cases = [
            ("application/cloudevents+json", true),
            ("Application/CloudEvents+JSON; charset=utf-8", true),
            ("application/cloudevents+jsonx", false),
            ("application/cloudevents-batch+json", false),
            ("application/json", false),
        ];
        for (ct, want) in cases {
            assert_eq!(is_structured_json(ct), want, "{ct}");
        }
    }

    #[test]
    fn attribute_names() {
        let cases = [
            ("abc123", true),
            ("", false),
            ("Abc", false),
            ("a-b", false),
            ("a_b", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_valid_attribute_name(name), want, "{name:?}");
        }
    }
}
