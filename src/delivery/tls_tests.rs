//! Delivery over TLS to a sink on 127.0.0.1 whose certificate a private test CA signed
//! (`testdata/`: the CA, and the sink's certificate and key for 127.0.0.1, valid until 2126):
//! trusted through the target's `CACerts`, refused without them.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::*;
use crate::event::HttpMessage;

const CA: &str = include_str!("testdata/ca.pem");
const SINK_CERT: &str = include_str!("testdata/sink.pem");
const SINK_KEY: &str = include_str!("testdata/sink.key");

/// Connections the sink accepts before it stops listening.
const MAX_CONNECTIONS: usize = 8;

/// An HTTPS sink answering 202; returns its URL and a count of the requests it answered.
async fn tls_sink() -> (Url, Arc<AtomicUsize>) {
    let identity = native_tls::Identity::from_pkcs8(SINK_CERT.as_bytes(), SINK_KEY.as_bytes())
        .expect("test identity");
    let acceptor = tokio_native_tls::TlsAcceptor::from(
        native_tls::TlsAcceptor::new(identity).expect("TLS acceptor"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let answered = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&answered);
    tokio::spawn(async move {
        for _ in 0..MAX_CONNECTIONS {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, count) = (acceptor.clone(), Arc::clone(&count));
            tokio::spawn(async move {
                // A client that does not trust the certificate hangs up here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |_request| {
                    count.fetch_add(1, Ordering::SeqCst);
                    let response = http::Response::builder()
                        .status(202)
                        .body(Empty::<Bytes>::new());
                    async move { Ok::<_, Infallible>(response.expect("static response")) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    let url = Url::parse(&format!("https://127.0.0.1:{port}/events")).expect("URL");
    (url, answered)
}

async fn deliver_once(target: Target) -> Outcome {
    let policy = DeliveryPolicy {
        retry: 0,
        timeout: Some(Duration::from_secs(5)),
        ..DeliveryPolicy::source_default()
    };
    let subscriber = Subscriber::new(target, policy, "team-a").expect("subscriber");
    let message = HttpMessage {
        headers: http::HeaderMap::new(),
        body: Bytes::from_static(b"{}"),
    };
    let (dispatcher, cancel) = (Dispatcher::new(), CancellationToken::new());
    let delivery = dispatcher.deliver(&subscriber, &message, &cancel, &());
    tokio::time::timeout(Duration::from_secs(15), delivery)
        .await
        .expect("delivery within 15 s")
        .expect("not cancelled")
        .outcome
}

#[tokio::test]
async fn a_private_ca_in_ca_certs_is_trusted() {
    let (url, answered) = tls_sink().await;
    let target = Target {
        url,
        ca_certs: Some(CA.into()),
    };
    let outcome = deliver_once(target).await;
    assert!(
        matches!(outcome, Outcome::Delivered { ref response } if response.status == 202),
        "{outcome:?}"
    );
    assert_eq!(answered.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn without_ca_certs_the_private_ca_is_not_trusted() {
    let (url, answered) = tls_sink().await;
    let outcome = deliver_once(Target::new(url)).await;
    assert!(
        matches!(
            outcome,
            Outcome::Dropped {
                reason: DropReason::RetriesExhausted { status: None }
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(answered.load(Ordering::SeqCst), 0);
}
