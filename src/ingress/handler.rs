//! The request handler: one CloudEvent per POST, stored in the channel's topic before the 202.
//!
//! The order of checks decides what a client learns first: the method (405, or the webhook
//! handshake for OPTIONS), then the channel (404), the body size (413), the event (400), and
//! finally the produce (202, or 503 when the broker did not acknowledge it).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{ALLOW, CONTENT_LENGTH, HOST};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::routes::{Route, Routes};
use crate::event::http_binding;

const ALLOWED: HeaderValue = HeaderValue::from_static("POST, OPTIONS");
/// CloudEvents HTTP webhook handshake: events are accepted from any origin at any rate.
const WEBHOOK_ALLOWED_ORIGIN: HeaderName = HeaderName::from_static("webhook-allowed-origin");
const WEBHOOK_ALLOWED_RATE: HeaderName = HeaderName::from_static("webhook-allowed-rate");
const ANY: HeaderValue = HeaderValue::from_static("*");
const ZERO: HeaderValue = HeaderValue::from_static("0");

pub(super) struct Ingress {
    pub routes: Routes,
    pub max_body_bytes: usize,
}

pub(super) async fn receive(State(ingress): State<Arc<Ingress>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if parts.method == Method::OPTIONS {
        return (
            StatusCode::OK,
            [
                (ALLOW, ALLOWED),
                (WEBHOOK_ALLOWED_ORIGIN, ANY),
                (WEBHOOK_ALLOWED_RATE, ANY),
            ],
        )
            .into_response();
    }
    if parts.method != Method::POST {
        // Content-Length spelled out: hyper leaves it off answers to HEAD.
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(ALLOW, ALLOWED), (CONTENT_LENGTH, ZERO)],
        )
            .into_response();
    }
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host());
    let Some(route) = ingress.routes.find(parts.uri.path(), host) else {
        return (StatusCode::NOT_FOUND, "no channel at this address\n").into_response();
    };
    let body = match read_body(body, &parts.headers, ingress.max_body_bytes).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            route.metrics.too_large.inc();
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body exceeds {} bytes\n", ingress.max_body_bytes),
            )
                .into_response();
        }
        Err(BodyError::Read(e)) => {
            route.metrics.invalid.inc();
            tracing::debug!(channel = %route.id, error = %e, "reading the request body failed");
            return (
                StatusCode::BAD_REQUEST,
                "the request body could not be read\n",
            )
                .into_response();
        }
    };
    store(&route, parts.headers, body).await
}

async fn store(route: &Route, headers: HeaderMap, body: Bytes) -> Response {
    let decoded = match http_binding::decode_detached(&headers, body) {
        Ok(decoded) => decoded,
        Err(e) => {
            route.metrics.invalid.inc();
            return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
        }
    };
    let sent = route
        .producer
        .send(
            &route.topic,
            &decoded.event,
            decoded.data.as_deref(),
            &headers,
        )
        .await;
    match sent {
        Ok(took) => {
            route.metrics.produce_latency.observe(took.as_secs_f64());
            route.metrics.accepted.inc();
            accepted(headers)
        }
        Err(e) if e.is_too_large() => {
            route.metrics.too_large.inc();
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the event is larger than the Kafka cluster accepts\n",
            )
                .into_response()
        }
        Err(e) => {
            route.metrics.unavailable.inc();
            // Per request, hence debug: an outage shows in the 503 series without flooding logs.
            tracing::debug!(channel = %route.id, error = %e, "event not stored");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the event could not be stored\n",
            )
                .into_response()
        }
    }
}

/// A 202 with no headers, written into the request's header map. hyper keeps a response's
/// header map to parse the connection's next request into; an empty one would have to grow
/// for every request, the request's own (cleared, its capacity kept) already fits the next.
fn accepted(mut headers: HeaderMap) -> Response {
    headers.clear();
    let mut response = StatusCode::ACCEPTED.into_response();
    *response.headers_mut() = headers;
    response
}

#[derive(Debug)]
enum BodyError {
    TooLarge,
    Read(axum::Error),
}

/// Reads the body, refusing one over `limit` as soon as its Content-Length or its bytes so far
/// say so. A body that arrives in one chunk (the common case) is kept without a copy.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut stream = body.into_data_stream();
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Read)?;
        total = total.saturating_add(chunk.len());
        if total > limit {
            return Err(BodyError::TooLarge);
        }
        match first.take() {
            None if rest.is_empty() => first = Some(chunk),
            None => rest.extend_from_slice(&chunk),
            Some(earlier) => {
                // The declared length, when there is one, sizes the buffer once.
                let capacity = declared.map_or(total, |len| len as usize).max(total);
                rest.reserve(capacity);
                rest.extend_from_slice(&earlier);
                rest.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| rest.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::CONTENT_LENGTH;

    fn chunked(chunks: &[&'static [u8]]) -> Body {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Body::from_stream(futures::stream::iter(chunks))
    }

    #[test]
    fn accepted_is_a_bare_202_in_the_request_s_header_map() {
        let mut request = HeaderMap::new();
        for name in [
            "ce-id",
            "ce-source",
            "ce-type",
            "ce-specversion",
            "x-request-id",
        ] {
            request.insert(name, HeaderValue::from_static("x"));
        }
        let capacity = request.capacity();
        let response = accepted(request);
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert!(response.headers().is_empty());
        assert_eq!(response.headers().capacity(), capacity);
    }

    #[tokio::test]
    async fn bodies_within_the_limit_are_read_whole() {
        let cases: [(&[&'static [u8]], &[u8]); 4] = [
            (&[], b""),
            (&[b"abc"], b"abc"),
            (&[b"ab", b"cd", b"e"], b"abcde"),
            (&[b"", b"abcdef"], b"abcdef"),
        ];
        for (chunks, want) in cases {
            let body = read_body(chunked(chunks), &HeaderMap::new(), 6)
                .await
                .unwrap();
            assert_eq!(&body[..], want, "{chunks:?}");
        }
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let over = read_body(chunked(&[b"abcd", b"efg"]), &HeaderMap::new(), 6).await;
        assert!(matches!(over, Err(BodyError::TooLarge)), "{over:?}");

        let mut declared = HeaderMap::new();
        declared.insert(CONTENT_LENGTH, HeaderValue::from_static("7"));
        // The stream would fail if read: the declared length alone must refuse it.
        let failing = Body::from_stream(futures::stream::iter([Err::<Bytes, _>(
            std::io::Error::other("must not be read"),
        )]));
        let refused = read_body(failing, &declared, 6).await;
        assert!(matches!(refused, Err(BodyError::TooLarge)), "{refused:?}");
    }
}
