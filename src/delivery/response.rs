//! What a sink's answer means: the pure rules that turn a status code into success, retry or
//! rejection, and a `Retry-After` header into a wait. No I/O here, so every rule is table-tested.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{header::RETRY_AFTER, HeaderMap, StatusCode};

/// A sink's response, its body read up to [`BODY_LIMIT`](super::BODY_LIMIT).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body was longer than the limit and `body` holds only its start. A caller reading a
    /// reply from it must not trust a truncated body.
    pub truncated: bool,
}

/// Why one attempt did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The sink answered with a status other than 2xx.
    Status(Response),
    /// No complete response: connection refused or reset, TLS failure, per-attempt timeout, or a
    /// body that could not be read.
    Transport { timeout: bool, message: String },
    /// The subscriber answered 2xx but its response could not be accepted: a body that is not a
    /// CloudEvent, or a reply that could not be forwarded. Retried like a transport failure.
    Response { status: StatusCode, message: String },
}

impl Failure {
    /// The failing status, `None` when there was no response.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Failure::Status(response) => Some(response.status),
            Failure::Transport { .. } | Failure::Response { .. } => None,
        }
    }

    /// Transport failures are always worth retrying: the sink may be restarting or scaling up.
    pub fn verdict(&self) -> Verdict {
        match self {
            Failure::Status(response) => classify(response.status),
            Failure::Transport { .. } | Failure::Response { .. } => Verdict::Retry,
        }
    }

    /// See [`retry_after`].
    pub fn retry_after(&self, now: SystemTime) -> Option<Duration> {
        match self {
            Failure::Status(response) => retry_after(response.status, &response.headers, now),
            Failure::Transport { .. } | Failure::Response { .. } => None,
        }
    }
}

/// What to do after one attempt, judged from its status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// The sink may accept the same event later.
    Retry,
    /// The sink will never accept this event: retrying only delays the dead letter.
    Reject,
}

/// Knative's data-plane rule: any 2xx succeeds; 5xx, 404 (not routed yet), 408, 409 and 429 are
/// worth retrying; every other status (other 4xx, and 1xx/3xx since redirects are not followed)
/// is final.
pub fn classify(status: StatusCode) -> Verdict {
    if status.is_success() {
        return Verdict::Success;
    }
    match status {
        StatusCode::NOT_FOUND
        | StatusCode::REQUEST_TIMEOUT
        | StatusCode::CONFLICT
        | StatusCode::TOO_MANY_REQUESTS => Verdict::Retry,
        s if s.is_server_error() => Verdict::Retry,
        _ => Verdict::Reject,
    }
}

/// The wait a sink asked for with `Retry-After`, relative to `now`. Only 429 and 503 carry a
/// meaningful one (RFC 9110); on any other status the header is ignored. A date in the past means
/// "now" (zero). Unparseable values are ignored rather than failing the delivery.
pub fn retry_after(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Delta-seconds too large for u64 saturate: the policy's retry_after_max bounds it anyway.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn classification_table() {
        use Verdict::*;
        let cases = [
            (200, Success),
            (201, Success),
            (202, Success),
            (204, Success),
            (299, Success),
            (100, Reject),
            (301, Reject),
            (307, Reject),
            (400, Reject),
            (401, Reject),
            (403, Reject),
            (404, Retry),
            (405, Reject),
            (408, Retry),
            (409, Retry),
            (410, Reject),
            (413, Reject),
            (415, Reject),
            (422, Reject),
            (429, Retry),
            (500, Retry),
            (502, Retry),
            (503, Retry),
            (504, Retry),
            (599, Retry),
        ];
        for (code, want) in cases {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(classify(status), want, "status {code}");
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_table() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let s = Duration::from_secs;
        let cases: [(u16, &str, Option<Duration>); 12] = [
            (429, "120", Some(s(120))),
            (503, "0", Some(s(0))),
            (503, " 7 ", Some(s(7))),
            (429, "99999999999999999999999", Some(s(u64::MAX))),
            (429, "Sun, 06 Nov 1994 08:50:37 GMT", Some(s(60))),
            (503, "Sun, 06 Nov 1994 08:49:37 GMT", Some(s(0))),
            (503, "Sun, 06 Nov 1994 08:00:00 GMT", Some(s(0))),
            (429, "-5", None),
            (429, "1.5", None),
            (429, "soon", None),
            (500, "120", None),
            (404, "Sun, 06 Nov 1994 08:50:37 GMT", None),
        ];
        for (code, value, want) in cases {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(
                retry_after(status, &headers(value), now),
                want,
                "{code} {value:?}"
            );
        }
    }

    #[test]
    fn retry_after_absent() {
        let now = SystemTime::now();
        assert_eq!(
            retry_after(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), now),
            None
        );
    }
}
