//! Loopback ports and the HTTP client the tests talk with.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::Duration;

/// Ports handed out by this test process, so two helpers never get the same one even when the
/// kernel hands a just-released port out again.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port on 127.0.0.1 that was free a moment ago, never returned twice by this process.
///
/// There is a small window in which another process could take it; the processes we start
/// fail fast on a bind error and the callers report their logs.
pub fn free_port() -> u16 {
    for _ in 0..64 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("no fresh free port on 127.0.0.1 after 64 tries");
}

/// An HTTP client for talking to processes under test.
///
/// Idle connections are not pooled: each `#[tokio::test]` has its own runtime, and a pooled
/// connection's task dies with the runtime that opened it.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build reqwest client")
}
