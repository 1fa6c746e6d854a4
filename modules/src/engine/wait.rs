//! Bounded waiting for the engine to reach a state (disk `ok`, data center `up`, ...).

use super::error::EngineError;
use crate::ansible::Failure;
use std::time::{Duration, Instant};

/// One look at the awaited state.
#[derive(Debug)]
pub enum Step<T> {
    /// Reached; here is the result.
    Done(T),
    /// Not yet; the state seen now (for progress and the timeout message).
    Pending(String),
}

/// A wait that failed after the module had already changed something (created or
/// registered a disk): `changed: true`, the thing under `key`, and how to resume.
pub fn failed_after_change(error: EngineError, key: &str, value: serde_json::Value) -> Failure {
    let mut data = serde_json::Map::new();
    data.insert(key.to_string(), value);
    Failure {
        msg: format!("{error}; this run already changed it: run again to keep waiting"),
        changed: true,
        data,
    }
}

/// How often to look while waiting.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Calls `probe` every `interval` until it is done, fails, or `timeout` has passed.
/// Logs the state whenever it changes, so a long wait shows progress in the run log.
pub fn until<T>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Result<Step<T>, EngineError>,
) -> Result<T, EngineError> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        match probe()? {
            Step::Done(result) => {
                tracing::info!("{what}: done after {} s", started.elapsed().as_secs());
                return Ok(result);
            }
            Step::Pending(state) => {
                if state != last {
                    tracing::info!(
                        "waiting for {what}: {state} ({} s so far, at most {} s)",
                        started.elapsed().as_secs(),
                        timeout.as_secs()
                    );
                    last = state;
                }
            }
        }
        if started.elapsed() + interval > timeout {
            return Err(EngineError::Timeout {
                what: what.to_string(),
                timeout_s: timeout.as_secs(),
                last: format!("last seen: {last}"),
            });
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_once_done() {
        let mut calls = 0;
        let result = until(
            "x",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                calls += 1;
                Ok(if calls < 3 {
                    Step::Pending("locked".into())
                } else {
                    Step::Done(calls)
                })
            },
        );
        assert_eq!(result.unwrap(), 3);
    }

    #[test]
    fn times_out_with_the_last_state() {
        let error = until::<()>(
            "disk hosted-engine-backup-1 to be ok",
            Duration::from_millis(30),
            Duration::from_millis(10),
            || Ok(Step::Pending("status locked".into())),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "disk hosted-engine-backup-1 to be ok did not happen within 0 s (last seen: status locked)"
        );
    }

    #[test]
    fn probe_errors_stop_the_wait() {
        let error = until::<()>(
            "x",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || Err(EngineError::Input("boom".into())),
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "boom");
    }
}
