//! A vdsm JSON-RPC client as vdsm 4.40's `vdsm/client.py` + `yajsonrpc/stompclient.py` speak
//! it (the lab's `vdsm-client` is a client of the lab's vdsm): CONNECT with heart-beat
//! `0,24000`, SUBSCRIBE to a fresh UUID queue, SEND to `jms.topic.vdsm_requests` with
//! `reply-to`, then the MESSAGE answering the request id.

use super::stomp::{Frame, Parser};
use super::{pki_files, PkiFiles};
use crate::config::LabConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// vdsm's error object from a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// Code.
    pub code: i64,
    /// Message.
    pub message: String,
}

/// Runs `method` with `params` on the vdsm at `address`: Ok(result or vdsm's error), or
/// Err(why the call could not be made, in vdsm-client's words).
pub fn call(
    config: &LabConfig,
    address: &str,
    method: &str,
    params: &serde_json::Map<String, Value>,
    timeout: Duration,
) -> Result<Result<Value, ServerError>, String> {
    let files = pki_files(config);
    let mut stream = connect(&files, address, timeout)?;
    let deadline = Instant::now() + timeout;
    let unique = |label: &str| {
        crate::engine::db::derived_uuid(
            crate::engine::clock::now_ms() ^ u64::from(std::process::id()),
            label,
        )
    };
    let (queue, subscription, id) = (unique("queue"), unique("subscription"), unique("request"));
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id}).to_string();
    let frames = [
        Frame::new(
            "CONNECT",
            &[("accept-version", "1.2"), ("heart-beat", "0,24000")],
            None,
        ),
        Frame::new(
            "SUBSCRIBE",
            &[
                ("destination", &queue),
                ("ack", "auto"),
                ("id", &subscription),
            ],
            None,
        ),
        Frame::new(
            "SEND",
            &[
                ("destination", "jms.topic.vdsm_requests"),
                ("content-type", "application/json"),
                ("reply-to", &queue),
            ],
            Some(body.as_bytes()),
        ),
    ];
    for frame in &frames {
        stream
            .write_all(&frame.encode())
            .map_err(|e| format!("Request {method} with args {params:?} failed: {e}"))?;
    }
    stream.flush().map_err(|e| e.to_string())?;
    let mut parser = Parser::default();
    let mut buffer = vec![0; 64 << 10];
    loop {
        while let Some(frame) = parser.next_frame().map_err(|e| e.to_string())? {
            match frame.command.as_str() {
                "ERROR" => {
                    return Err(
                        String::from_utf8_lossy(&frame.body.unwrap_or_default()).into_owned()
                    )
                }
                "MESSAGE" if frame.header("subscription") == Some(subscription.as_str()) => {
                    let answer: Value = serde_json::from_slice(&frame.body.unwrap_or_default())
                        .map_err(|e| e.to_string())?;
                    if answer["id"] != json!(id) {
                        continue;
                    }
                    if let Some(error) = answer.get("error") {
                        return Ok(Err(ServerError {
                            code: error["code"].as_i64().unwrap_or(0),
                            message: error["message"].as_str().unwrap_or_default().to_string(),
                        }));
                    }
                    return Ok(Ok(answer.get("result").cloned().unwrap_or(Value::Null)));
                }
                _ => {}
            }
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(format!(
                "Request {method} with args {params:?} timed out after {} seconds",
                timeout.as_secs()
            ));
        }
        stream
            .sock
            .set_read_timeout(Some(remaining))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buffer) {
            Ok(0) => return Err("Connection closed by vdsm".into()),
            Ok(count) => parser.push(&buffer[..count]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(error) => return Err(error.to_string()),
        }
    }
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// TLS with the host's vdsm key and certificate, trusting the vdsm CA (the chain, not the
/// name: vdsm's `sslutils` does not check host names).
fn connect(files: &PkiFiles, address: &str, timeout: Duration) -> Result<TlsStream, String> {
    let certificates = |path: &std::path::Path| {
        CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates(&files.ca)? {
        roots.add(certificate).map_err(|e| e.to_string())?;
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("{}: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| e.to_string())?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoNameCheck(verifier)))
        .with_client_auth_cert(certificates(&files.certificate)?, key)
        .map_err(|e| e.to_string())?;
    let socket = address
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{address} resolves to nothing"))?;
    let tcp = TcpStream::connect_timeout(&socket, timeout).map_err(|e| {
        let errno = e
            .raw_os_error()
            .map(|n| format!("[Errno {n}] "))
            .unwrap_or_default();
        format!("{errno}{}", python_strerror(&e))
    })?;
    let name = ServerName::try_from("localhost").expect("a valid name");
    let connection =
        rustls::ClientConnection::new(Arc::new(tls), name).map_err(|e| e.to_string())?;
    Ok(rustls::StreamOwned::new(connection, tcp))
}

/// The OS message without Rust's " (os error N)" suffix, as Python prints it.
fn python_strerror(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error") {
        Some(index) => text[..index].to_string(),
        None => text,
    }
}

/// webpki's chain verification without the host name comparison.
#[derive(Debug)]
struct NoNameCheck(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for NoNameCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
