//! The HTTP clients deliveries share: one pooled client for every ordinary target, and one per
//! distinct CA bundle for targets served over TLS with a private CA (Knative's `CACerts`), built
//! once and cached because building a TLS client is far more expensive than a request.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::policy::Target;
use super::DeliveryError;

/// A connection attempt that takes this long is abandoned even without a per-attempt timeout, so
/// a black-holed address cannot stall a partition for the OS default of minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound on cached CA clients, reached only if the configured bundles keep changing: then the
/// cache starts over rather than growing.
const MAX_CA_CLIENTS: usize = 64;

#[derive(Debug)]
pub(crate) struct Clients {
    shared: reqwest::Client,
    by_ca: Mutex<HashMap<String, reqwest::Client>>,
}

impl Clients {
    pub(crate) fn new() -> Result<Self, DeliveryError> {
        Ok(Self {
            shared: builder().build().map_err(DeliveryError::Client)?,
            by_ca: Mutex::default(),
        })
    }

    /// The client to reach `target` with; cheap (a reference-count increment) once cached.
    pub(crate) fn for_target(&self, target: &Target) -> Result<reqwest::Client, DeliveryError> {
        let Some(pem) = &target.ca_certs else {
            return Ok(self.shared.clone());
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

/// Settings for the hot path: HTTP/1.1 keep-alive with no cap on idle connections per host (the
/// caller bounds requests in flight, which bounds idle connections too), no Nagle delay, and no
/// redirects: following a 301/302 would turn the POST into a GET and lose the event, so any 3xx
/// is reported as a non-retryable failure instead.
fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
}

/// A client trusting the system roots plus every certificate in the PEM bundle, as Knative adds
/// `CACerts` to the system pool.
fn with_ca(pem: &str) -> Result<reqwest::Client, DeliveryError> {
    let certs =
        reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(DeliveryError::CaCerts)?;
    if certs.is_empty() {
        return Err(DeliveryError::NoCaCerts);
    }
    let builder = certs
        .into_iter()
        .fold(builder(), |b, cert| b.add_root_certificate(cert));
    builder.build().map_err(DeliveryError::CaCerts)
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

    #[test]
    fn plain_targets_share_one_client_and_bad_ca_is_an_error() {
        let clients = Clients::new().unwrap();
        let plain = Target::new(Url::parse("http://a/").unwrap());
        assert!(clients.for_target(&plain).is_ok());
        assert!(clients.by_ca.lock().unwrap().is_empty());

        let garbage = Target {
            ca_certs: Some("not a certificate".into()),
            ..plain.clone()
        };
        assert!(clients.for_target(&garbage).is_err());
        let bad_pem = Target {
            ca_certs: Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into()),
            ..plain
        };
        assert!(clients.for_target(&bad_pem).is_err());
        assert!(clients.by_ca.lock().unwrap().is_empty());
    }

    #[test]
    fn a_ca_client_is_built_once_and_cached() {
        let clients = Clients::new().unwrap();
        let target = Target {
            url: Url::parse("https://a/").unwrap(),
            ca_certs: Some(TEST_CA.into()),
        };
        clients.for_target(&target).unwrap();
        clients.for_target(&target).unwrap();
        assert_eq!(clients.by_ca.lock().unwrap().len(), 1);
    }
}
