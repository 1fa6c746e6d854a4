//! The listeners: HTTPS (rustls, the lab's engine certificate) and plain HTTP on 127.0.0.1,
//! on their own tokio runtime, until [`EngineServer::stop`].

use crate::config::LabConfig;
use crate::engine::dispatch::Engine;
use crate::engine::http::{Reply, Request};
use anyhow::Context as _;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A running fake engine; dropping or stopping it closes both ports.
pub struct EngineServer {
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: watch::Sender<bool>,
    /// Where HTTPS listens.
    pub https_addr: SocketAddr,
    /// Where HTTP listens.
    pub http_addr: SocketAddr,
}

impl EngineServer {
    /// Stops both listeners and every connection; the ports are free when this returns.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(runtime) = self.runtime.take() {
            let stop = move || runtime.shutdown_timeout(Duration::from_secs(2));
            if tokio::runtime::Handle::try_current().is_ok() {
                // A runtime cannot be shut down from async code: do it on a plain thread.
                let _ = std::thread::spawn(stop).join();
            } else {
                stop();
            }
        }
    }
}

impl Drop for EngineServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// Starts the engine for `config`: HTTPS on `127.0.0.1:https_port` and HTTP on
/// `127.0.0.1:http_port`. Returns once both are listening. The server owns its runtime, so it
/// can be started and stopped from plain threads as well as from async code.
pub fn serve(config: &LabConfig) -> anyhow::Result<EngineServer> {
    let tls = tls_config(config)?;
    let https = std::net::TcpListener::bind(("127.0.0.1", config.https_port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", config.https_port))?;
    let http = std::net::TcpListener::bind(("127.0.0.1", config.http_port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", config.http_port))?;
    https.set_nonblocking(true)?;
    http.set_nonblocking(true)?;
    let (https_addr, http_addr) = (https.local_addr()?, http.local_addr()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("he-lab-engine")
        .enable_all()
        .build()?;
    let (shutdown, watcher) = watch::channel(false);
    let engine = Arc::new(Engine::new(config.clone()));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    {
        let _entered = runtime.enter();
        let https = TcpListener::from_std(https)?;
        let http = TcpListener::from_std(http)?;
        runtime.spawn(accept_loop(
            https,
            Some(acceptor),
            engine.clone(),
            watcher.clone(),
        ));
        runtime.spawn(accept_loop(http, None, engine, watcher));
    }
    Ok(EngineServer {
        runtime: Some(runtime),
        shutdown,
        https_addr,
        http_addr,
    })
}

/// rustls server configuration from `pki/engine.pem` (chain) and `pki/engine.key`.
fn tls_config(config: &LabConfig) -> anyhow::Result<rustls::ServerConfig> {
    let cert_path = config.pki_dir().join("engine.pem");
    let key_path = config.pki_dir().join("engine.key");
    let certificates = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("cannot read {}", cert_path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("bad certificate in {}", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("cannot read the key {}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certificates, key)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    engine: Arc<Engine>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let engine = engine.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(TokioIo::new(stream), engine, true).await;
                    }
                }
                None => serve_connection(TokioIo::new(stream), engine, false).await,
            }
        });
    }
}

/// Error that makes hyper drop the connection (`api_flaky` resets).
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by fault api_flaky")
    }
}

impl std::error::Error for ResetConnection {}

async fn serve_connection<I>(io: I, engine: Arc<Engine>, https: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let engine = engine.clone();
        async move {
            let request = into_request(request, https).await;
            let reply = engine.respond(request).await;
            if reply.reset {
                return Err(ResetConnection);
            }
            Ok(into_response(reply))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
}

async fn into_request(request: hyper::Request<Incoming>, https: bool) -> Request {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes().to_vec())
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let target = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut request = Request::new(parts.method.as_str(), &target, headers, body);
    request.https = https;
    request
}

fn into_response(reply: Reply) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    response
}
