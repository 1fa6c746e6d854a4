//! The engine health servlet as the host reads it: `GET /ovirt-engine/services/health`.

use std::io::{Read as _, Write as _};
use std::time::Duration;

/// The health page body, or None when the engine does not answer.
pub fn fetch(http_port: u16) -> Option<String> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], http_port));
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /ovirt-engine/services/health HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

/// Whether the engine reports its database up (`.*DB Up.*`, check_liveliness.py).
pub fn is_up(http_port: u16) -> bool {
    fetch(http_port).is_some_and(|body| body.contains("DB Up"))
}
