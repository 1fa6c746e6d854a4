//! The engine's health page: up when it answers with `DB Up` (SPEC 9.6, original-tool §4).

use crate::ansible::progress::Reporter;
use std::time::{Duration, Instant};

/// What the page says when the engine is up (full reply: `DB Up!Welcome to Health Status!`).
pub const UP_TEXT: &str = "DB Up";

/// The health page URL of the engine at `fqdn`.
pub fn default_url(fqdn: &str) -> String {
    format!("http://{fqdn}/ovirt-engine/services/health")
}

/// How long to wait and how often to ask.
#[derive(Debug, Clone, Copy)]
pub struct HealthTiming {
    /// Give up after this long.
    pub timeout: Duration,
    /// Pause between two requests.
    pub interval: Duration,
    /// Limit for one request (the original used 20 s).
    pub request_timeout: Duration,
}

/// The engine answered `DB Up`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthy {
    /// The body it answered with.
    pub reply: String,
    /// Requests made.
    pub attempts: u32,
}

/// One request that did not get `DB Up`: what happened instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotUp {
    /// No answer (refused, reset, timed out...), with its causes.
    #[error("{0}")]
    Unreachable(String),
    /// An answer without `DB Up`.
    #[error("HTTP {status}: {body}")]
    Answered { status: String, body: String },
}

/// The health page never said `DB Up`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    /// The URL is not usable.
    #[error("option 'health_url': {url:?} is not a usable http(s) URL: {reason}")]
    BadUrl { url: String, reason: String },
    /// Time ran out.
    #[error("Engine is still not reachable: {url} did not answer '{UP_TEXT}' within health_timeout {timeout_s} s ({attempts} attempts; last: {last})")]
    NeverHealthy {
        url: String,
        timeout_s: u64,
        attempts: u32,
        last: NotUp,
    },
}

/// Polls one health URL.
#[derive(Debug)]
pub struct HealthPoller {
    url: String,
    timing: HealthTiming,
    client: reqwest::blocking::Client,
}

impl HealthPoller {
    /// A poller for `url` (checked here, before anything runs).
    pub fn new(url: &str, timing: HealthTiming) -> Result<Self, HealthError> {
        let bad = |reason: String| HealthError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(bad("expected http://HOST/...".into()));
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(timing.request_timeout)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            url: url.to_string(),
            timing,
            client,
        })
    }

    /// The URL polled.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One request: `Ok(body)` when it says `DB Up`, else what happened instead.
    pub fn probe(&self) -> Result<String, NotUp> {
        let unreachable = |error: reqwest::Error| NotUp::Unreachable(describe(&error));
        let response = self.client.get(&self.url).send().map_err(unreachable)?;
        let status = response.status();
        let body = response.text().map_err(unreachable)?;
        let body = body.trim().to_string();
        if status.is_success() && body.contains(UP_TEXT) {
            Ok(body)
        } else {
            Err(NotUp::Answered {
                status: status.to_string(),
                body: shorten(&body),
            })
        }
    }

    /// Polls until `DB Up` or the timeout; `between` runs before each pause and may abort
    /// the wait (for example because the VM went down).
    pub fn wait_until_up<E: From<HealthError>>(
        &self,
        progress: &Reporter,
        mut between: impl FnMut() -> Result<(), E>,
    ) -> Result<Healthy, E> {
        let deadline = Instant::now() + self.timing.timeout;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.probe() {
                Ok(reply) => {
                    tracing::info!("Engine replied: {reply}");
                    return Ok(Healthy { reply, attempts });
                }
                Err(last) => {
                    tracing::info!("engine health {}: {last}", self.url);
                    progress.report(&format!(
                        "waiting for the engine health page {} (attempt {attempts}): {last}",
                        self.url
                    ));
                    if Instant::now() >= deadline {
                        return Err(HealthError::NeverHealthy {
                            url: self.url.clone(),
                            timeout_s: self.timing.timeout.as_secs(),
                            attempts,
                            last,
                        }
                        .into());
                    }
                }
            }
            between()?;
            let left = deadline.saturating_duration_since(Instant::now());
            std::thread::sleep(self.timing.interval.min(left));
        }
    }
}

fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn shorten(body: &str) -> String {
    match body.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &body[..cut]),
        None if body.is_empty() => "(empty body)".into(),
        None => body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A tiny HTTP server answering request N with `replies[min(N, last)]`; returns its URL.
    fn serve(replies: Vec<(u16, &'static str)>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/ovirt-engine/services/health",
            listener.local_addr().unwrap()
        );
        let served = Arc::new(AtomicUsize::new(0));
        let counter = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = [0u8; 2048];
                let _ = stream.read(&mut request);
                let index = counter
                    .fetch_add(1, Ordering::SeqCst)
                    .min(replies.len() - 1);
                let (code, body) = replies[index];
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, served)
    }

    fn timing(timeout_ms: u64) -> HealthTiming {
        HealthTiming {
            timeout: Duration::from_millis(timeout_ms),
            interval: Duration::from_millis(20),
            request_timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn waits_until_the_page_says_db_up() {
        let (url, served) = serve(vec![
            (503, "Service Unavailable"),
            (200, "DB Down!Welcome to Health Status!"),
            (200, "DB Up!Welcome to Health Status!"),
        ]);
        let poller = HealthPoller::new(&url, timing(5000)).unwrap();
        let mut pauses = 0;
        let healthy = poller
            .wait_until_up(&Reporter::none(), || {
                pauses += 1;
                Ok::<_, HealthError>(())
            })
            .unwrap();
        assert_eq!(healthy.reply, "DB Up!Welcome to Health Status!");
        assert_eq!(healthy.attempts, 3);
        assert_eq!(pauses, 2);
        assert_eq!(served.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn gives_up_after_the_timeout_with_the_last_answer() {
        let (url, _) = serve(vec![(200, "DB Down!Welcome to Health Status!")]);
        let poller = HealthPoller::new(&url, timing(150)).unwrap();
        let err = poller
            .wait_until_up(&Reporter::none(), || Ok::<_, HealthError>(()))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("Engine is still not reachable"), "{text}");
        assert!(
            text.contains("last: HTTP 200 OK: DB Down!Welcome"),
            "{text}"
        );
    }

    #[test]
    fn a_refused_connection_is_not_up() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        drop(listener);
        let poller = HealthPoller::new(&url, timing(0)).unwrap();
        assert!(poller.probe().is_err());
    }

    #[test]
    fn the_wait_stops_when_between_says_so() {
        let (url, _) = serve(vec![(503, "no")]);
        let poller = HealthPoller::new(&url, timing(5000)).unwrap();
        #[derive(Debug)]
        enum Stop {
            VmDown,
            Health,
        }
        impl From<HealthError> for Stop {
            fn from(_: HealthError) -> Self {
                Stop::Health
            }
        }
        let err = poller
            .wait_until_up(&Reporter::none(), || Err(Stop::VmDown))
            .unwrap_err();
        assert!(matches!(err, Stop::VmDown));
    }

    #[test]
    fn bad_urls_are_refused_up_front() {
        for url in ["engine.example.com/health", "ftp://e/health", ""] {
            let err = HealthPoller::new(url, timing(10)).unwrap_err();
            assert!(err.to_string().starts_with("option 'health_url'"), "{err}");
        }
        assert_eq!(
            default_url("engine.example.com"),
            "http://engine.example.com/ovirt-engine/services/health"
        );
    }
}
