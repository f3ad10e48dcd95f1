//! The message sent to a dead-letter sink: the original event plus Knative's error extensions
//! saying where and how delivery failed. Pure, so the header rules are table-tested.
//!
//! Extensions added (as `ce-` headers, values percent-encoded per the CloudEvents HTTP binding):
//! - `knativeerrordest`: the URL that failed;
//! - `knativeerrorcode`: the failing HTTP status, e.g. `"503"`. A transport failure (refused,
//!   reset, timeout) has no status; like Knative's Go dispatcher we report `"500"` and put
//!   `dispatch error: <cause>` in `knativeerrordata`, so a consumer can tell the two apart;
//! - `knativeerrordata`: base64 of the first 1024 bytes of the failing body, when it is not empty;
//! - every response header `kne-X` becomes extension `X` (Knative's Java dispatcher rule: prefix
//!   matched case-insensitively, name lowercased, value verbatim). Unlike Knative, names that are
//!   not valid extension names (lowercase a-z/0-9) or that would overwrite a core attribute or one
//!   of the three error extensions are skipped, so a sink cannot corrupt the event's identity.

use std::borrow::Cow;

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::response::Failure;
use crate::event::{is_valid_attribute_name, percent, HttpMessage};

/// Knative's `KN_ERROR_DATA_MAX_BYTES`: how much of the failing body the dead letter carries.
pub const ERROR_DATA_MAX_BYTES: usize = 1024;

const ERROR_DEST: HeaderName = HeaderName::from_static("ce-knativeerrordest");
const ERROR_CODE: HeaderName = HeaderName::from_static("ce-knativeerrorcode");
const ERROR_DATA: HeaderName = HeaderName::from_static("ce-knativeerrordata");
const ERROR_HEADER_PREFIX: &str = "kne-";

/// Names a sink's `kne-` header may not claim: the CloudEvents context attributes and the error
/// extensions this module sets itself.
const RESERVED: [&str; 12] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "knativeerrordest",
    "knativeerrorcode",
    "knativeerrordata",
];

/// The original message with the error extensions for `failure` at `destination` added.
/// Existing error extensions (an event dead-lettered before) are replaced, not duplicated.
pub fn dead_letter_message(
    original: &HttpMessage,
    destination: &Url,
    failure: &Failure,
) -> HttpMessage {
    let mut headers = original.headers.clone();
    let data: Cow<'_, [u8]> = match failure {
        Failure::Status(response) => {
            copy_error_headers(&response.headers, &mut headers);
            headers.insert(ERROR_CODE, HeaderValue::from(response.status.as_u16()));
            Cow::Borrowed(&response.body[..])
        }
        Failure::Transport { message, .. } => {
            headers.insert(ERROR_CODE, HeaderValue::from_static("500"));
            Cow::Owned(format!("dispatch error: {message}").into_bytes())
        }
        Failure::Response { status, message } => {
            headers.insert(ERROR_CODE, HeaderValue::from(status.as_u16()));
            Cow::Owned(format!("response error: {message}").into_bytes())
        }
    };
    headers.insert(ERROR_DEST, encode_value(destination.as_str()));
    if data.is_empty() {
        headers.remove(ERROR_DATA);
    } else {
        let cut = &data[..data.len().min(ERROR_DATA_MAX_BYTES)];
        let encoded = base64::engine::general_purpose::STANDARD.encode(cut);
        headers.insert(ERROR_DATA, encode_value(&encoded));
    }
    HttpMessage {
        headers,
        body: original.body.clone(),
    }
}

/// Copies each response header `kne-X` to the message as `ce-X`; the last value wins.
fn copy_error_headers(response: &HeaderMap, message: &mut HeaderMap) {
    for (name, value) in response {
        // HeaderName is always lowercase, so this prefix match is the case-insensitive one.
        let Some(extension) = name.as_str().strip_prefix(ERROR_HEADER_PREFIX) else {
            continue;
        };
        if !is_valid_attribute_name(extension) || RESERVED.contains(&extension) {
            tracing::debug!(
                header = name.as_str(),
                "ignoring kne- header: not a usable extension name"
            );
            continue;
        }
        let Ok(ce_name) = HeaderName::from_bytes(format!("ce-{extension}").as_bytes()) else {
            continue;
        };
        // A header value is bytes; CloudEvents values are strings. Non-UTF-8 bytes become U+FFFD
        // so the receiver's decoder (which must reject invalid UTF-8) still accepts the event.
        let text = String::from_utf8_lossy(value.as_bytes());
        message.insert(ce_name, encode_value(&text));
    }
}

fn encode_value(value: &str) -> HeaderValue {
    // The encoded form is visible ASCII only, which is always a valid header value.
    HeaderValue::from_str(&percent::encode(value)).unwrap_or(HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::response::Response;
    use bytes::Bytes;
    use http::StatusCode;

    fn original() -> HttpMessage {
        let mut headers = HeaderMap::new();
        headers.insert("ce-id", HeaderValue::from_static("1"));
        headers.insert("ce-type", HeaderValue::from_static("t"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        // Left over from an earlier dead letter: must be replaced or removed.
        headers.insert("ce-knativeerrordata", HeaderValue::from_static("old"));
        HttpMessage {
            headers,
            body: Bytes::from_static(b"{\"a\":1}"),
        }
    }

    fn failed(status: u16, headers: &[(&str, &[u8])], body: &[u8]) -> Failure {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        Failure::Status(Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: Bytes::copy_from_slice(body),
            truncated: false,
        })
    }

    fn header<'a>(m: &'a HttpMessage, name: &str) -> Option<&'a str> {
        m.headers.get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn status_failure_adds_the_three_extensions_and_kne_headers() {
        let url = Url::parse("http://sink.ns.svc/path?q=100%25").unwrap();
        let failure = failed(
            503,
            &[
                ("kne-reason", b"out of disk"),
                ("KNE-Code2", b"x"),
                ("kne-id", b"hijack"),
                ("kne-knativeerrorcode", b"200"),
                ("kne-bad-name", b"y"),
                ("kne-latin", &[0x63, 0x61, 0x66, 0xE9]),
                ("x-other", b"z"),
            ],
            b"disk full",
        );
        let dl = dead_letter_message(&original(), &url, &failure);
        assert_eq!(header(&dl, "ce-knativeerrorcode"), Some("503"));
        assert_eq!(
            header(&dl, "ce-knativeerrordest"),
            Some("http://sink.ns.svc/path?q=100%2525")
        );
        assert_eq!(header(&dl, "ce-knativeerrordata"), Some("ZGlzayBmdWxs"));
        assert_eq!(header(&dl, "ce-reason"), Some("out%20of%20disk"));
        assert_eq!(header(&dl, "ce-code2"), Some("x"));
        assert_eq!(header(&dl, "ce-latin"), Some("caf%EF%BF%BD"));
        assert_eq!(header(&dl, "ce-id"), Some("1"));
        assert_eq!(header(&dl, "ce-bad-name"), None);
        assert_eq!(header(&dl, "ce-other"), None);
        assert_eq!(header(&dl, "content-type"), Some("application/json"));
        assert_eq!(dl.body, original().body);
    }

    #[test]
    fn error_data_is_cut_to_1024_bytes_and_omitted_when_empty() {
        let url = Url::parse("http://sink/").unwrap();
        let long = vec![b'x'; 3000];
        let dl = dead_letter_message(&original(), &url, &failed(500, &[], &long));
        let data = header(&dl, "ce-knativeerrordata").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        assert_eq!(decoded, vec![b'x'; ERROR_DATA_MAX_BYTES]);

        let dl = dead_letter_message(&original(), &url, &failed(400, &[], b""));
        assert_eq!(header(&dl, "ce-knativeerrorcode"), Some("400"));
        assert_eq!(header(&dl, "ce-knativeerrordata"), None);
    }

    #[test]
    fn transport_failure_reports_500_and_the_cause() {
        let url = Url::parse("http://sink/").unwrap();
        let failure = Failure::Transport {
            timeout: false,
            message: "connection refused".into(),
        };
        let dl = dead_letter_message(&original(), &url, &failure);
        assert_eq!(header(&dl, "ce-knativeerrorcode"), Some("500"));
        let data = header(&dl, "ce-knativeerrordata").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        assert_eq!(decoded, b"dispatch error: connection refused");
    }
}
