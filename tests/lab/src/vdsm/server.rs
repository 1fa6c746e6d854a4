//! The lab's vdsm endpoint: JSON-RPC over STOMP 1.2 on TLS, client certificates verified
//! against the host's vdsm CA, with the broker semantics of vdsm's `StompAdapterImpl` and
//! `StompServer` (`yajsonrpc/stompreactor.py` in 4.18, `stompserver.py` in 4.40).
//!
//! The daemon binds 127.0.0.1:0 when it starts and records the address in the lab state.

use super::stomp::{Frame, Parser};
use super::{api, pki_files};
use crate::config::LabConfig;
use crate::profile::HostVdsm;
use anyhow::Context as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// vdsm's `[addresses] request_queues` default.
pub const REQUEST_QUEUES: &[&str] = &["jms.topic.vdsm_requests", "jms.topic.vdsm_irs_requests"];
/// The 3.5-era request destination (4.18 and earlier).
pub const LEGACY_REQUEST_QUEUE: &str = "/queue/_local/vdsm/requests";
/// Where 4.18 answers the legacy destination (misspelt in vdsm itself).
pub const LEGACY_RESPONSE_QUEUE: &str = "/queue/_local/vdsm/reponses";
/// Where 4.40 sends answers without a known `reply-to`.
pub const DEFAULT_RESPONSE_QUEUE: &str = "jms.topic.vdsm_responses";

/// How often a connection looks at its outbox and heart-beat while the peer is silent.
const POLL: Duration = Duration::from_millis(100);

/// A subscription: the connection that made it, its id, and that connection's outbox.
#[derive(Clone)]
struct Subscriber {
    connection: u64,
    id: String,
    outbox: Sender<Frame>,
}

/// Subscriptions by destination and reply destinations by request id, shared by all
/// connections as in vdsm.
#[derive(Default)]
struct Broker {
    subscriptions: HashMap<String, Vec<Subscriber>>,
    reply_to: HashMap<String, Option<String>>,
}

/// Starts serving on 127.0.0.1:0 in background threads and returns the bound address.
pub fn start(config: &LabConfig) -> anyhow::Result<SocketAddr> {
    let tls = Arc::new(tls_config(config)?);
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind the vdsm endpoint")?;
    let address = listener.local_addr()?;
    let broker = Arc::new(Mutex::new(Broker::default()));
    let host = HostVdsm::of(&config.profile);
    let config = config.clone();
    let next_connection = AtomicU64::new(1);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (config, tls, broker) = (config.clone(), tls.clone(), broker.clone());
            let connection = next_connection.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut session = Session::new(config, host, broker, connection);
                if let Err(error) = session.serve(stream, tls) {
                    crate::daemon::log(&format!("vdsm connection {connection}: {error:#}"));
                }
                session.remove_subscriptions();
            });
        }
    });
    Ok(address)
}

/// vdsm's TLS: its host certificate, and client certificates required from its CA.
fn tls_config(config: &LabConfig) -> anyhow::Result<rustls::ServerConfig> {
    let files = pki_files(config);
    let read_certificates =
        |path: &std::path::Path| -> anyhow::Result<Vec<CertificateDer<'static>>> {
            CertificateDer::pem_file_iter(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("bad certificate in {}", path.display()))
        };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in read_certificates(&files.ca)? {
        roots.add(certificate)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("cannot read {}", files.key.display()))?;
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(read_certificates(&files.certificate)?, key)?)
}

/// One client connection.
struct Session {
    config: LabConfig,
    host: HostVdsm,
    broker: Arc<Mutex<Broker>>,
    connection: u64,
    own_subscriptions: HashMap<String, String>,
    outbox: Sender<Frame>,
    inbox: Receiver<Frame>,
    heart_beat: Option<Duration>,
}

/// What to do after a frame.
enum Next {
    Continue,
    Close,
}

impl Session {
    fn new(config: LabConfig, host: HostVdsm, broker: Arc<Mutex<Broker>>, connection: u64) -> Self {
        let (outbox, inbox) = mpsc::channel();
        Session {
            config,
            host,
            broker,
            connection,
            own_subscriptions: HashMap::new(),
            outbox,
            inbox,
            heart_beat: None,
        }
    }

    fn serve(&mut self, tcp: TcpStream, tls: Arc<rustls::ServerConfig>) -> anyhow::Result<()> {
        tcp.set_read_timeout(Some(POLL))?;
        tcp.set_nodelay(true).ok();
        let mut stream = rustls::StreamOwned::new(rustls::ServerConnection::new(tls)?, tcp);
        let mut parser = Parser::default();
        let mut buffer = vec![0; 64 << 10];
        let mut last_write = Instant::now();
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(count) => parser.push(&buffer[..count]),
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(error) => return Err(error).context("TLS or socket error"),
            }
            // A client slow in its handshake (stopped, loaded): nothing to say before it ends
            // (a flush now would try to read the rest of the handshake and time out).
            if stream.conn.is_handshaking() {
                continue;
            }
            loop {
                let frame = match parser.next_frame() {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(reason) => anyhow::bail!("unreadable frame: {reason}"),
                };
                if let Next::Close = self.handle(frame) {
                    self.flush(&mut stream)?;
                    return Ok(());
                }
            }
            if self.flush(&mut stream)? {
                last_write = Instant::now();
            }
            if let Some(interval) = self.heart_beat {
                if last_write.elapsed() >= interval {
                    stream.write_all(b"\n")?;
                    stream.flush()?;
                    last_write = Instant::now();
                }
            }
        }
    }

    /// Writes every queued frame; true when something was written.
    fn flush(&mut self, stream: &mut impl std::io::Write) -> anyhow::Result<bool> {
        let mut wrote = false;
        while let Ok(frame) = self.inbox.try_recv() {
            stream.write_all(&frame.encode())?;
            wrote = true;
        }
        stream.flush()?;
        Ok(wrote)
    }

    fn reply(&self, frame: Frame) {
        let _ = self.outbox.send(frame);
    }

    fn error(&self, message: &str) {
        self.reply(Frame::new("ERROR", &[], Some(message.as_bytes())));
    }

    fn handle(&mut self, frame: Frame) -> Next {
        match frame.command.as_str() {
            "CONNECT" => self.connect(&frame),
            "SUBSCRIBE" => self.subscribe(&frame),
            "UNSUBSCRIBE" => match frame.header("id") {
                None | Some("") => self.error("Missing id header"),
                Some(id) => {
                    if let Some(destination) = self.own_subscriptions.remove(id) {
                        self.unsubscribe(&destination, id);
                    }
                }
            },
            "SEND" => self.send(&frame),
            // vdsm reads `receipt` with [] (KeyError closes the connection).
            "DISCONNECT" => match frame.header("receipt") {
                None => return Next::Close,
                Some("") => {}
                Some(receipt) => {
                    self.reply(Frame::new("RECEIPT", &[("receipt-id", receipt)], None))
                }
            },
            // An unknown command: vdsm logs it and closes the connection.
            _ => return Next::Close,
        }
        Next::Continue
    }

    /// CONNECT: version 1.2 only; heart-beats as the version of vdsm answers them.
    fn connect(&mut self, frame: &Frame) {
        if frame.header("accept-version") != Some("1.2") {
            return self.error("Version unsupported");
        }
        let (client_sends, client_wants) =
            parse_heart_beat(frame.header("heart-beat").unwrap_or("0,0"));
        let sane = |value: u64| if value != 0 { value.max(1000) } else { 0 };
        let server_sends = sane(client_wants);
        let answer = match self.host {
            HostVdsm::V4_18 => format!("{server_sends},0"),
            HostVdsm::V4_40 => format!("{server_sends},{}", sane(client_sends)),
        };
        self.heart_beat = (server_sends != 0).then(|| Duration::from_millis(server_sends));
        self.reply(Frame::new(
            "CONNECTED",
            &[("version", "1.2"), ("heart-beat", &answer)],
            None,
        ));
    }

    fn subscribe(&mut self, frame: &Frame) {
        let (Some(destination), Some(id)) = (frame.header("destination"), frame.header("id"))
        else {
            return self.error("Missing destination or subscription id header");
        };
        if destination.is_empty() || id.is_empty() {
            return self.error("Missing destination or subscription id header");
        }
        if self.own_subscriptions.contains_key(id) {
            return self.error("Subscription id already exists");
        }
        self.own_subscriptions
            .insert(id.to_string(), destination.to_string());
        let mut broker = self.broker.lock().expect("broker lock");
        broker
            .subscriptions
            .entry(destination.to_string())
            .or_default()
            .push(Subscriber {
                connection: self.connection,
                id: id.to_string(),
                outbox: self.outbox.clone(),
            });
    }

    fn unsubscribe(&self, destination: &str, id: &str) {
        let mut broker = self.broker.lock().expect("broker lock");
        if let Some(list) = broker.subscriptions.get_mut(destination) {
            list.retain(|s| !(s.connection == self.connection && s.id == id));
            if list.is_empty() {
                broker.subscriptions.remove(destination);
            }
        }
    }

    fn remove_subscriptions(&mut self) {
        for (id, destination) in std::mem::take(&mut self.own_subscriptions) {
            self.unsubscribe(&destination, &id);
        }
    }

    /// SEND: requests to vdsm's queues are answered; other destinations are forwarded to
    /// their subscribers, or refused when there are none.
    fn send(&mut self, frame: &Frame) {
        let destination = frame.header("destination").unwrap_or_default().to_string();
        let body = frame.body.clone().unwrap_or_default();
        let is_request_queue = REQUEST_QUEUES.iter().any(|queue| {
            destination == *queue
                || (self.host == HostVdsm::V4_40 && destination.starts_with(&format!("{queue}.")))
        });
        match self.host {
            HostVdsm::V4_18 => {
                if is_request_queue {
                    return self.answer(frame.header("reply-to").map(str::to_string), &body);
                }
                if destination == LEGACY_REQUEST_QUEUE {
                    return self.answer(Some(LEGACY_RESPONSE_QUEUE.to_string()), &body);
                }
                let subscribers = self.subscribers(&[destination.as_str()]);
                if subscribers.is_empty() {
                    return self.error("Subscription not available");
                }
                forward(&subscribers, frame);
            }
            HostVdsm::V4_40 => {
                // Subscribers of the destination and of its dot-separated parents.
                let segments: Vec<&str> = destination.split('.').collect();
                let candidates: Vec<String> = (1..=segments.len())
                    .map(|n| segments[..n].join("."))
                    .collect();
                let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
                let subscribers = self.subscribers(&candidates);
                forward(&subscribers, frame);
                if is_request_queue {
                    return self.answer(frame.header("reply-to").map(str::to_string), &body);
                }
                if subscribers.is_empty() {
                    self.error("Subscription not available");
                }
            }
        }
    }

    fn subscribers(&self, destinations: &[&str]) -> Vec<Subscriber> {
        let broker = self.broker.lock().expect("broker lock");
        destinations
            .iter()
            .filter_map(|destination| broker.subscriptions.get(*destination))
            .flatten()
            .cloned()
            .collect()
    }

    /// Runs a JSON-RPC request and delivers the answer where its id says (vdsm's `_req_dest`).
    fn answer(&mut self, reply_to: Option<String>, body: &[u8]) {
        let request: Option<Value> = serde_json::from_slice(body).ok();
        if let Some(Value::Object(object)) = &request {
            if let Some(id) = object.get("id").and_then(request_id) {
                self.broker
                    .lock()
                    .expect("broker lock")
                    .reply_to
                    .insert(id, reply_to.clone());
            }
        }
        let Some(response) = respond(&self.config, request) else {
            return;
        };
        let destination = {
            let mut broker = self.broker.lock().expect("broker lock");
            match response.get("id").and_then(request_id) {
                Some(id) => broker.reply_to.remove(&id).flatten(),
                None => None,
            }
            .or_else(|| match self.host {
                HostVdsm::V4_18 => Some(LEGACY_RESPONSE_QUEUE.to_string()),
                HostVdsm::V4_40 => Some(DEFAULT_RESPONSE_QUEUE.to_string()),
            })
        };
        let Some(destination) = destination else {
            return;
        };
        let text = response.to_string();
        for subscriber in self.subscribers(&[destination.as_str()]) {
            let _ = subscriber.outbox.send(Frame::new(
                "MESSAGE",
                &[
                    ("destination", &destination),
                    ("content-type", "application/json"),
                    ("subscription", &subscriber.id),
                ],
                Some(text.as_bytes()),
            ));
        }
    }
}

/// A request id as the key vdsm uses (strings as they are, numbers as their JSON text).
fn request_id(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// vdsm's `MESSAGE` forwarding: `subscription` first, then the sender's headers.
fn forward(subscribers: &[Subscriber], frame: &Frame) {
    for subscriber in subscribers {
        let mut forwarded = frame.clone();
        forwarded.command = "MESSAGE".into();
        forwarded.headers.retain(|(k, _)| k != "subscription");
        forwarded
            .headers
            .insert(0, ("subscription".into(), subscriber.id.clone()));
        let _ = subscriber.outbox.send(forwarded);
    }
}

/// vdsm's `parseHeartBeatHeader`: `x,y` with anything unreadable as 0.
fn parse_heart_beat(text: &str) -> (u64, u64) {
    let (x, y) = text.split_once(',').unwrap_or(("0", "0"));
    (x.trim().parse().unwrap_or(0), y.trim().parse().unwrap_or(0))
}

/// The JSON-RPC answer to a request body (None for a notification or a batch, which vdsm
/// cannot route over STOMP).
fn respond(config: &LabConfig, request: Option<Value>) -> Option<Value> {
    let error = |id: Value, code: i64, message: &str| {
        Some(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
    };
    let Some(request) = request else {
        return error(
            Value::Null,
            -32700,
            "Invalid JSON was received by the server. An error occurred on the server while parsing the JSON text.",
        );
    };
    let Value::Object(request) = request else {
        return None;
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str);
    let (Some("2.0"), Some(method)) = (request.get("jsonrpc").and_then(Value::as_str), method)
    else {
        return error(id, -32600, "The JSON sent is not a valid Request object.");
    };
    let params = match request.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params.clone(),
        Some(_) => return error(id, -32602, "Invalid method parameter(s)"),
    };
    let outcome = api::call(config, method, &params);
    if id.is_null() {
        return None;
    }
    Some(match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(failure) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": failure.code, "message": failure.message}})
        }
    })
}
