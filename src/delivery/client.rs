//! The HTTP clients deliveries share, built on hyper's pooled client: one for plain `http`
//! targets, one for `https` targets trusting the system roots, and one per distinct CA bundle for
//! targets served with a private CA (Knative's `CACerts`).
//!
//! TLS clients are built on first use and cached: loading the system roots costs more than
//! thousands of requests, and a process whose sinks all speak plain HTTP (the usual case inside a
//! cluster) never pays it, which keeps it off the start-up path.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_tls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{self, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::policy::Target;
use super::DeliveryError;

/// A connection attempt that takes this long is abandoned even without a per-attempt timeout, so
/// a black-holed address cannot stall a partition for the OS default of minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle pooled connections are closed after this long, as common HTTP clients do; well under the
/// idle timeouts of usual servers and proxies, so a request rarely meets a connection the other
/// side is closing.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A bound on cached CA clients, reached only if the configured bundles keep changing: then the
/// cache starts over rather than growing.
const MAX_CA_CLIENTS: usize = 64;

type RequestBody = Full<Bytes>;

/// One pooled client; cheap to clone (clones share the pool).
#[derive(Clone, Debug)]
pub(crate) enum Client {
    Plain(legacy::Client<HttpConnector, RequestBody>),
    Tls(legacy::Client<HttpsConnector<HttpConnector>, RequestBody>),
}

impl Client {
    pub(crate) fn request(&self, request: http::Request<RequestBody>) -> ResponseFuture {
        match self {
            Client::Plain(client) => client.request(request),
            Client::Tls(client) => client.request(request),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Clients {
    plain: Client,
    tls: OnceLock<Client>,
    by_ca: Mutex<HashMap<String, Client>>,
}

impl Clients {
    pub(crate) fn new() -> Self {
        Self {
            plain: Client::Plain(pool().build(connector())),
            tls: OnceLock::new(),
            by_ca: Mutex::default(),
        }
    }

    /// The client to reach `target` with; cheap (a few reference-count increments) once cached.
    pub(crate) fn for_target(&self, target: &Target) -> Result<Client, DeliveryError> {
        if target.url.scheme() != "https" {
            return Ok(self.plain.clone());
        }
        let Some(pem) = &target.ca_certs else {
            if let Some(client) = self.tls.get() {
                return Ok(client.clone());
            }
            // Two threads may race to build it; one result is kept and both are equivalent.
            let client = tls_client(native_tls::TlsConnector::builder())?;
            return Ok(self.tls.get_or_init(|| client).clone());
        };
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        if let Some(client) = self
            .by_ca
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(pem)
        {
            return Ok(client.clone());
        }
        // Built outside the lock: two threads may race to build the same client, which is
        // harmless, while holding a std mutex through TLS setup would stall other deliveries.
        let client = with_ca(pem)?;
        let mut cache = self.by_ca.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CA_CLIENTS {
            cache.clear();
        }
        cache.insert(pem.clone(), client.clone());
        Ok(client)
    }
}

/// Pool settings for the hot path: HTTP/1.1 keep-alive with no cap on idle connections per host
/// (the caller bounds requests in flight, which bounds idle connections too). Redirects are not
/// followed (this client has no such layer): following a 301/302 would turn the POST into a GET
/// and lose the event, so any 3xx is reported as a non-retryable failure instead.
fn pool() -> legacy::Builder {
    let mut builder = legacy::Client::builder(TokioExecutor::new());
    builder
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new());
    builder
}

/// TCP settings: no Nagle delay (a request is written whole and waits for its answer) and a
/// bound on connecting.
fn connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http
}

fn tls_client(builder: native_tls::TlsConnectorBuilder) -> Result<Client, DeliveryError> {
    let tls = builder.build().map_err(DeliveryError::Tls)?;
    let mut http = connector();
    // The TLS connector hands plain `http` URLs to this connector too.
    http.enforce_http(false);
    let https = HttpsConnector::from((http, tokio_native_tls::TlsConnector::from(tls)));
    Ok(Client::Tls(pool().build(https)))
}

/// A client trusting the system roots plus every certificate in the PEM bundle, as Knative adds
/// `CACerts` to the system pool.
fn with_ca(bundle: &str) -> Result<Client, DeliveryError> {
    let blocks = pem::parse_many(bundle).map_err(DeliveryError::CaPem)?;
    let mut builder = native_tls::TlsConnector::builder();
    let mut certificates = 0;
    for block in blocks.iter().filter(|b| b.tag() == "CERTIFICATE") {
        let certificate =
            native_tls::Certificate::from_der(block.contents()).map_err(DeliveryError::CaCerts)?;
        builder.add_root_certificate(certificate);
        certificates += 1;
    }
    if certificates == 0 {
        return Err(DeliveryError::NoCaCerts);
    }
    tls_client(builder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    /// A self-signed test CA (public certificate only; its key was discarded).
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBezCCASGgAwIBAgIUN6qjjQkvfA/6WMeSn9ilAiVKFnkwCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHdGVzdC1jYTAgFw0yNjExMjYxNTIyMTNaGA8yMTI2MTEwMjE1
MjIxM1owEjEQMA4GA1UEAwwHdGVzdC1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABNWrt2p4zZwCpI2jJ3Piv15kbmMYu00UpP1i+jqJz235fAeq/7YDa0lsf0Yj
kdkpem88KdIbuGtUisU6u7o09T6jUzBRMB0GA1UdDgQWBBRiS4Go6WyII2x5HKvz
G7+s38azOzAfBgNVHSMEGDAWgBRiS4Go6WyII2x5HKvzG7+s38azOzAPBgNVHRMB
Af8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQCo8apztVmyEQbQ0maN8E8ZNCIs
y3ps6u+zkrl728fnBQIgMp3zdq41Xigc8J56P7jmZewYIm6Xaxp6K5+wRZRJHFs=
-----END CERTIFICATE-----
";

    fn https(ca_certs: Option<&str>) -> Target {
        Target {
            url: Url::parse("https://a/").unwrap(),
            ca_certs: ca_certs.map(str::to_owned),
        }
    }

    #[test]
    fn plain_targets_build_no_tls_client() {
        let clients = Clients::new();
        let plain = Target::new(Url::parse("http://a/").unwrap());
        assert!(matches!(clients.for_target(&plain), Ok(Client::Plain(_))));
        // CA certificates mean nothing to a plain-HTTP target.
        let plain_with_ca = Target {
            ca_certs: Some(TEST_CA.into()),
            ..plain
        };
        assert!(matches!(
            clients.for_target(&plain_with_ca),
            Ok(Client::Plain(_))
        ));
        assert!(clients.tls.get().is_none());
        assert!(clients.by_ca.lock().unwrap().is_empty());
    }

    #[test]
    fn https_targets_share_the_system_roots_client() {
        let clients = Clients::new();
        assert!(matches!(
            clients.for_target(&https(None)),
            Ok(Client::Tls(_))
        ));
        assert!(clients.tls.get().is_some());
        assert!(clients.by_ca.lock().unwrap().is_empty());
    }

    #[test]
    fn a_bad_ca_bundle_is_an_error() {
        let clients = Clients::new();
        let cases = [
            ("not a certificate", "no PEM block"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "not DER",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "no certificate block",
            ),
        ];
        for (pem, why) in cases {
            assert!(clients.for_target(&https(Some(pem))).is_err(), "{why}");
        }
        assert!(clients.by_ca.lock().unwrap().is_empty());
    }

    #[test]
    fn a_ca_client_is_built_once_and_cached() {
        let clients = Clients::new();
        let target = https(Some(TEST_CA));
        assert!(matches!(clients.for_target(&target), Ok(Client::Tls(_))));
        clients.for_target(&target).unwrap();
        assert_eq!(clients.by_ca.lock().unwrap().len(), 1);
        assert!(clients.tls.get().is_none());
    }
}
