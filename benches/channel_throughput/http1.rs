//! A minimal HTTP/1.1 keep-alive client for the load generator: it writes a request prepared once
//! as bytes and reads the response head and its Content-Length body, nothing else. A
//! general-purpose client (reqwest, hyper's pool) costs more CPU per request than the ingress
//! under test, and on two cores shared with the bridge and the broker that CPU is taken from
//! them; the yardstick in the ingress section shows what this one costs.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The longest response head accepted: the servers under test send a few short headers.
const MAX_HEAD: usize = 8 * 1024;

/// What the client needs of a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head, the blank line included.
    pub len: usize,
    pub content_length: usize,
    /// The server will close the connection after this response.
    pub close: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    NoStatus,
    /// Only Content-Length bodies are read; the servers under test never chunk a short answer.
    Chunked,
    BadContentLength,
}

/// Parses the head at the start of `buf`; `Ok(None)` while it is incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = &buf[..end];
    let mut lines = head
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().ok_or(HeadError::NoStatus)?;
    let status = status_line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix(b"HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse().ok())
        .ok_or(HeadError::NoStatus)?;
    let mut content_length = 0;
    let mut close = status_line.starts_with(b"HTTP/1.0");
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            content_length = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or(HeadError::BadContentLength)?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(HeadError::Chunked);
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = value.eq_ignore_ascii_case(b"close");
        }
    }
    Ok(Some(Head {
        status,
        len: end + 4,
        content_length,
        close,
    }))
}

/// One keep-alive connection.
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The server said it closes after the last response.
    pub closed: bool,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        // Each request is written whole at once: Nagle would only hold it back.
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(MAX_HEAD),
            closed: false,
        })
    }

    /// Sends `request` and returns the response's status once the whole response is read.
    pub async fn send(&mut self, request: &[u8], timeout: Duration) -> anyhow::Result<u16> {
        tokio::time::timeout(timeout, self.exchange(request))
            .await
            .with_context(|| format!("no response within {timeout:?}"))?
    }

    async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<u16> {
        self.stream.write_all(request).await.context("sending")?;
        self.buf.clear();
        let head = loop {
            if let Some(head) = parse_head(&self.buf).map_err(|e| anyhow::anyhow!("{e:?}"))? {
                break head;
            }
            if self.buf.len() >= MAX_HEAD {
                bail!("response head over {MAX_HEAD} bytes");
            }
            self.read_more().await?;
        };
        let total = head.len + head.content_length;
        while self.buf.len() < total {
            self.read_more().await?;
        }
        if self.buf.len() > total {
            bail!("bytes after the response: the server answered more than was asked");
        }
        self.closed = head.close;
        Ok(head.status)
    }

    async fn read_more(&mut self) -> anyhow::Result<()> {
        let len = self.buf.len();
        self.buf.resize(len.max(MAX_HEAD / 2) + MAX_HEAD / 2, 0);
        let read = self.stream.read(&mut self.buf[len..]).await;
        let n = match read {
            Ok(n) => n,
            Err(error) => {
                self.buf.truncate(len);
                return Err(error).context("receiving");
            }
        };
        self.buf.truncate(len + n);
        if n == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }
}

/// Checks of the head parser, run by `cargo test --bench channel_throughput` (see main).
pub fn self_check() {
    let head = |status, len, content_length, close| {
        Ok(Some(Head {
            status,
            len,
            content_length,
            close,
        }))
    };
    type Parsed = Result<Option<Head>, HeadError>;
    let cases: [(&[u8], Parsed); 9] = [
        (
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n",
            head(202, 44, 0, false),
        ),
        (
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 30\r\n\r\nthe event",
            head(503, 56, 30, false),
        ),
        (
            b"HTTP/1.1 202 Accepted\r\nConnection: close\r\n\r\n",
            head(202, 44, 0, true),
        ),
        (b"HTTP/1.0 200 OK\r\n\r\n", head(200, 19, 0, true)),
        (b"HTTP/1.1 202 Accepted\r\ncontent-le", Ok(None)),
        (b"", Ok(None)),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            Err(HeadError::Chunked),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            Err(HeadError::BadContentLength),
        ),
        (b"SSH-2.0\r\n\r\n", Err(HeadError::NoStatus)),
    ];
    for (raw, want) in cases {
        assert_eq!(parse_head(raw), want, "{}", String::from_utf8_lossy(raw));
    }
}
