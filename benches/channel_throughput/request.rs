//! The request every client sends: one binary-mode CloudEvent with the four required attributes
//! and a 1 KiB body, prepared once as bytes (HTTP/1.1, keep-alive).

use std::fmt::Write as _;

pub const EVENT_SIZE: usize = 1024;

/// A POST of a binary-mode CloudEvent of `size` data bytes to `path` on `host`.
pub fn cloudevent_post(host: &str, path: &str, size: usize) -> Vec<u8> {
    let mut head = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        head,
        "POST {path} HTTP/1.1\r\n\
         host: {host}\r\n\
         ce-specversion: 1.0\r\n\
         ce-id: 0b5e4c1e-bench\r\n\
         ce-source: /bench/channel-throughput\r\n\
         ce-type: dev.knative.bench.event\r\n\
         content-type: application/octet-stream\r\n\
         content-length: {size}\r\n\r\n"
    );
    let mut request = head.into_bytes();
    request.resize(request.len() + size, b'x');
    request
}

/// Checks of the request, run by `cargo test --bench channel_throughput` (see main).
pub fn self_check() {
    let request = cloudevent_post("127.0.0.1:1", "/ns/ch", 3);
    let want = "POST /ns/ch HTTP/1.1\r\nhost: 127.0.0.1:1\r\nce-specversion: 1.0\r\n\
                ce-id: 0b5e4c1e-bench\r\nce-source: /bench/channel-throughput\r\n\
                ce-type: dev.knative.bench.event\r\ncontent-type: application/octet-stream\r\n\
                content-length: 3\r\n\r\nxxx";
    assert_eq!(String::from_utf8_lossy(&request), want);
    let full = cloudevent_post("h", "/", EVENT_SIZE);
    assert!(full.ends_with(&[b'x'; EVENT_SIZE]) && !full.ends_with(&[b'x'; EVENT_SIZE + 1]));
}
