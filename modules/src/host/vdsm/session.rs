//! One STOMP session with vdsm over TLS: CONNECT, SUBSCRIBE to a private response queue, then
//! each call is a SEND to `jms.topic.vdsm_requests` with `reply-to` naming that queue.
//!
//! Why these destinations: vdsm 4.17 to 4.50 (`yajsonrpc/stompreactor.py`,
//! `stompserver.py`) answer a SEND whose destination is one of `[addresses] request_queues`
//! (default `jms.topic.vdsm_requests,jms.topic.vdsm_irs_requests`) on the destination its
//! `reply-to` header names, to the connection's subscriptions of that destination; vdsm's own
//! clients (`jsonrpcvdscli.py` in 4.17/4.18, `vdsm/client.py` from 4.19) do exactly this
//! with a fresh UUID as the response queue. The 3.5-era `/queue/_local/vdsm/requests`
//! (answered on the misspelt `/queue/_local/vdsm/reponses`) exists only up to 4.19 and is
//! not used.

use super::jsonrpc::{self, Response};
use super::stomp::{Frame, FrameError};
use super::tls::PkiFiles;
use super::VdsmError;
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::io::BufReader;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The request destination every vdsm from 4.17 to 4.50 answers.
pub const REQUEST_QUEUE: &str = "jms.topic.vdsm_requests";

/// Where vdsm listens and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port` (vdsm's default is `localhost:54321`).
    pub address: String,
    /// The host's vdsm key, certificate and CA.
    pub pki: PkiFiles,
    /// Longest wait for connecting and for each answer.
    pub timeout: Duration,
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A connected, subscribed session.
pub struct Session {
    stream: BufReader<TlsStream>,
    response_queue: String,
    subscription_id: String,
    timeout: Duration,
}

/// A fresh random UUID (what vdsm's clients use as ids and queue names).
pub fn new_uuid() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-4{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Session {
    /// Connects, completes TLS and STOMP CONNECT, and subscribes to the response queue.
    pub fn open(endpoint: &Endpoint) -> Result<Session, VdsmError> {
        let connect_error = |reason: String| VdsmError::Connect {
            address: endpoint.address.clone(),
            reason,
        };
        let tls = endpoint.pki.client_config()?;
        let host = endpoint
            .address
            .rsplit_once(':')
            .map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'))
            .unwrap_or(&endpoint.address);
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|e| connect_error(format!("'{host}' is not a host name: {e}")))?;
        let addresses = endpoint
            .address
            .to_socket_addrs()
            .map_err(|e| connect_error(e.to_string()))?;
        let mut last_error = String::from("the address resolves to nothing");
        let mut tcp = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, endpoint.timeout) {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(error) => last_error = error.to_string(),
            }
        }
        let tcp = tcp.ok_or_else(|| connect_error(last_error))?;
        tcp.set_nodelay(true).ok();
        tcp.set_write_timeout(Some(endpoint.timeout))
            .map_err(|e| connect_error(e.to_string()))?;
        let connection = rustls::ClientConnection::new(Arc::new(tls), server_name)
            .map_err(|e| connect_error(e.to_string()))?;
        let mut session = Session {
            stream: BufReader::new(rustls::StreamOwned::new(connection, tcp)),
            response_queue: new_uuid(),
            subscription_id: new_uuid(),
            timeout: endpoint.timeout,
        };
        let deadline = Instant::now() + endpoint.timeout;
        // vdsm's clients send exactly these two headers; 0,0: no heart-beats either way
        // (a module run is short and always waits for an answer).
        session
            .send(&Frame::new(
                "CONNECT",
                &[("accept-version", "1.2"), ("heart-beat", "0,0")],
                b"",
            ))
            .map_err(|e| connect_error(e.to_string()))?;
        let reply = session
            .receive(deadline)
            .map_err(|e| connect_error(describe_frame_error(&e, endpoint.timeout)))?;
        match reply.command.as_str() {
            "CONNECTED" => {}
            "ERROR" => {
                return Err(connect_error(format!(
                    "vdsm refused the STOMP session: {}",
                    error_text(&reply)
                )))
            }
            other => return Err(connect_error(format!("vdsm answered CONNECT with {other}"))),
        }
        let subscribe = Frame::new(
            "SUBSCRIBE",
            &[
                ("destination", &session.response_queue.clone()),
                ("ack", "auto"),
                ("id", &session.subscription_id.clone()),
            ],
            b"",
        );
        session
            .send(&subscribe)
            .map_err(|e| connect_error(e.to_string()))?;
        Ok(session)
    }

    /// Sends one request and waits for its answer (vdsm's error object becomes
    /// [`VdsmError::Remote`]).
    pub fn call(
        &mut self,
        call: &str,
        method: &str,
        params: &[(&str, &str)],
    ) -> Result<Value, VdsmError> {
        let id = new_uuid();
        let deadline = Instant::now() + self.timeout;
        let protocol = |reason: String| VdsmError::Protocol {
            call: call.to_string(),
            reason,
        };
        let send = Frame::new(
            "SEND",
            &[
                ("destination", REQUEST_QUEUE),
                ("content-type", "application/json"),
                ("reply-to", &self.response_queue.clone()),
            ],
            &jsonrpc::request(&id, method, params),
        );
        self.send(&send).map_err(|e| protocol(e.to_string()))?;
        loop {
            let frame = self.receive(deadline).map_err(|error| match error {
                FrameError::Io(ref io) if is_timeout(io) => VdsmError::Timeout {
                    call: call.to_string(),
                    timeout_s: self.timeout.as_secs_f64(),
                },
                other => protocol(describe_frame_error(&other, self.timeout)),
            })?;
            match frame.command.as_str() {
                "MESSAGE" if frame.header("subscription") == Some(&self.subscription_id) => {}
                "MESSAGE" | "RECEIPT" => continue,
                "ERROR" => {
                    return Err(VdsmError::Stomp {
                        call: call.to_string(),
                        message: error_text(&frame),
                    })
                }
                other => return Err(protocol(format!("unexpected {other} frame"))),
            }
            match jsonrpc::parse_response(&frame.body).map_err(|e| protocol(e.to_string()))? {
                Response::Answer {
                    id: answer_id,
                    outcome,
                } if answer_id.as_deref() == Some(&id) || answer_id.is_none() => {
                    return outcome.map_err(|error| VdsmError::Remote {
                        call: call.to_string(),
                        code: error.code,
                        message: error.message,
                    })
                }
                _ => continue,
            }
        }
    }

    fn send(&mut self, frame: &Frame) -> std::io::Result<()> {
        frame.write_to(self.stream.get_mut())
    }

    fn receive(&mut self, deadline: Instant) -> Result<Frame, FrameError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(FrameError::Io(std::io::ErrorKind::TimedOut.into()));
        }
        self.stream
            .get_ref()
            .sock
            .set_read_timeout(Some(remaining))?;
        Frame::read_from(&mut self.stream)
    }
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

fn describe_frame_error(error: &FrameError, timeout: Duration) -> String {
    match error {
        FrameError::Io(io) if is_timeout(io) => {
            format!("no answer within {} s", timeout.as_secs_f64())
        }
        other => other.to_string(),
    }
}

/// An ERROR frame's `message` header and body.
fn error_text(frame: &Frame) -> String {
    let body = String::from_utf8_lossy(&frame.body).trim().to_string();
    match (frame.header("message"), body.is_empty()) {
        (Some(message), false) if message != body => format!("{message}: {body}"),
        (Some(message), _) => message.to_string(),
        (None, false) => body,
        (None, true) => "an ERROR frame without a message".into(),
    }
}
