//! A scripted vdsm for the modules' tests: JSON-RPC over STOMP on TLS with client
//! certificates (as vdsm), on a port-0 listener, answering each request with what a handler
//! says: a result, vdsm's error object, a slow answer, an ERROR frame, silence or a close in
//! the middle of a frame. It records every call and counts connections.
#![allow(dead_code)]

use he_modules::host::vdsm::stomp::Frame;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Map, Value};
use std::io::{BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fake vdsm does with one request.
pub enum Reply {
    /// Answers `result`.
    Result(Value),
    /// Answers vdsm's error object.
    Error(i64, String),
    /// Answers `result` after a while.
    Slow(Duration, Value),
    /// Sends a STOMP ERROR frame with this body.
    ErrorFrame(&'static str),
    /// Never answers.
    Silent,
    /// Writes half of the answer and closes the connection.
    CloseMidFrame,
}

/// The request handler: `("Namespace.verb", params)` to a reply.
pub type Handler = dyn Fn(&str, &Map<String, Value>) -> Reply + Send + Sync;

/// A running fake vdsm.
pub struct FakeVdsm {
    _pki: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub address: String,
    calls: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

impl FakeVdsm {
    /// Starts serving with `handler`.
    pub fn start(
        handler: impl Fn(&str, &Map<String, Value>) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let pki = tempfile::tempdir().unwrap();
        let tls = Arc::new(write_pki(pki.path()));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (calls_log, counter) = (calls.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                let (tls, handler, calls) = (tls.clone(), handler.clone(), calls_log.clone());
                std::thread::spawn(move || {
                    let Ok(connection) = rustls::ServerConnection::new(tls) else {
                        return;
                    };
                    let mut stream = BufReader::new(rustls::StreamOwned::new(connection, stream));
                    let _ = converse(&mut stream, &*handler, &calls);
                });
            }
        });
        FakeVdsm {
            _pki: pki,
            address,
            calls,
            connections,
        }
    }

    /// The PKI directory laid out like `/etc/pki/vdsm` (client side).
    pub fn pki_dir(&self) -> PathBuf {
        self._pki.path().to_path_buf()
    }

    /// The module options that point at this vdsm.
    pub fn options(&self) -> Value {
        json!({"vdsm_address": self.address, "vdsm_pki_dir": self.pki_dir()})
    }

    /// Adds [`Self::options`] to module args (those the args do not set already).
    pub fn with_options(&self, mut args: Value) -> Value {
        for (key, value) in self.options().as_object().unwrap() {
            if args.get(key).is_none() {
                args[key] = value.clone();
            }
        }
        args
    }

    /// Every call so far, `Namespace.verb key=value ...` (keys sorted).
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// How many connections were made.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A CA, a host certificate for the server and one for the client (in `dir`, laid out like
/// `/etc/pki/vdsm`); returns the server's TLS configuration requiring a client certificate.
fn write_pki(dir: &Path) -> rustls::ServerConfig {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issue = || {
        let key = KeyPair::generate().unwrap();
        // A host certificate names the host, not localhost: clients must not mind.
        let cert = CertificateParams::new(vec!["host1.example.com".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = issue();
    let (client_cert, client_key) = issue();
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("keys/vdsmkey.pem"), client_key).unwrap();
    std::fs::write(dir.join("certs/vdsmcert.pem"), client_cert).unwrap();
    std::fs::write(dir.join("certs/cacert.pem"), ca.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(server_cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(server_key.as_bytes()).unwrap(),
        )
        .unwrap()
}

type ServerStream = BufReader<rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>>;

/// vdsm's side of a session: CONNECT, SUBSCRIBE, then requests on `jms.topic.vdsm_requests`
/// answered on the `reply-to` queue for the subscription made to it.
fn converse(
    stream: &mut ServerStream,
    handler: &Handler,
    calls: &Mutex<Vec<String>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut subscriptions: Vec<(String, String)> = Vec::new();
    loop {
        let frame = Frame::read_from(stream)?;
        let write = |stream: &mut ServerStream, frame: Frame| frame.write_to(stream.get_mut());
        match frame.command.as_str() {
            "CONNECT" => {
                let reply = if frame.header("accept-version") == Some("1.2") {
                    Frame::new(
                        "CONNECTED",
                        &[("version", "1.2"), ("heart-beat", "0,0")],
                        b"",
                    )
                } else {
                    Frame::new("ERROR", &[], b"Version unsupported")
                };
                write(stream, reply)?;
            }
            "SUBSCRIBE" => subscriptions.push((
                frame.header("destination").unwrap_or_default().to_string(),
                frame.header("id").unwrap_or_default().to_string(),
            )),
            "SEND" if frame.header("destination") == Some("jms.topic.vdsm_requests") => {
                let request: Value = serde_json::from_slice(&frame.body)?;
                let method = request["method"].as_str().unwrap_or_default().to_string();
                let params = request["params"].as_object().cloned().unwrap_or_default();
                let mut text: Vec<String> = params
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                text.sort();
                calls
                    .lock()
                    .unwrap()
                    .push(format!("{method} {}", text.join(" ")).trim().to_string());
                let reply_to = frame.header("reply-to").unwrap_or_default().to_string();
                let Some((_, subscription)) = subscriptions
                    .iter()
                    .find(|(destination, _)| *destination == reply_to)
                else {
                    continue;
                };
                let id = request["id"].clone();
                let message = |body: Value| {
                    Frame::new(
                        "MESSAGE",
                        &[
                            ("destination", reply_to.as_str()),
                            ("content-type", "application/json"),
                            ("subscription", subscription.as_str()),
                        ],
                        body.to_string().as_bytes(),
                    )
                };
                match handler(&method, &params) {
                    Reply::Result(result) => write(
                        stream,
                        message(json!({"jsonrpc": "2.0", "id": id, "result": result})),
                    )?,
                    Reply::Slow(delay, result) => {
                        std::thread::sleep(delay);
                        // An event on another subscription first: clients skip it.
                        write(
                            stream,
                            Frame::new("MESSAGE", &[("subscription", "events")], b"{}"),
                        )?;
                        write(
                            stream,
                            message(json!({"jsonrpc": "2.0", "id": id, "result": result})),
                        )?
                    }
                    Reply::Error(code, text) => write(
                        stream,
                        message(
                            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": text}}),
                        ),
                    )?,
                    Reply::ErrorFrame(text) => {
                        write(stream, Frame::new("ERROR", &[], text.as_bytes()))?
                    }
                    Reply::Silent => {}
                    Reply::CloseMidFrame => {
                        let bytes =
                            message(json!({"jsonrpc": "2.0", "id": id, "result": 1})).encode();
                        stream.get_mut().write_all(&bytes[..bytes.len() / 2])?;
                        stream.get_mut().conn.send_close_notify();
                        stream.get_mut().flush()?;
                        return Ok(());
                    }
                }
            }
            "SEND" => write(
                stream,
                Frame::new("ERROR", &[], b"Subscription not available"),
            )?,
            _ => {}
        }
    }
}
