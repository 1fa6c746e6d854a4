//! Following a booting engine VM: channel lines and markers, then the health page, failing
//! at once when a `_FAIL` marker arrives, the channel stalls or the VM stops running here.

use super::channel::{Channel, ChannelError, ChannelEvent};
use super::health::{HealthError, HealthPoller, Healthy};
use super::markers::{Marker, MarkerError, MarkerWaiter};
use super::state::VmState;
use crate::ansible::progress::Reporter;
use crate::host::hosted_engine::HostedEngineError;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Lines kept for the result (the run log has them all).
pub const KEPT_LINES: usize = 1000;

/// Lines quoted in an error message.
const QUOTED_LINES: usize = 10;

/// What the appliance said on the channel.
#[derive(Debug, Clone, Default)]
pub struct BootLog {
    /// Markers in arrival order.
    pub markers: Vec<Marker>,
    /// The last [`KEPT_LINES`] lines.
    pub lines: VecDeque<String>,
    /// Lines received in all.
    pub lines_total: usize,
}

impl BootLog {
    fn push(&mut self, line: String, progress: &Reporter) {
        tracing::info!("|- {line}");
        progress.report(&format!(
            "the engine VM says (markers so far: {}): {line}",
            self.markers.len()
        ));
        if self.lines.len() == KEPT_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
        self.lines_total += 1;
    }

    /// The last few lines, as the original echoed them (`|- line`), for an error message.
    pub fn tail(&self) -> String {
        if self.lines.is_empty() {
            return "no output from the appliance".into();
        }
        let skip = self.lines.len().saturating_sub(QUOTED_LINES);
        let quoted: Vec<String> = self
            .lines
            .iter()
            .skip(skip)
            .map(|line| format!("|- {line}"))
            .collect();
        format!("last lines from the appliance:\n{}", quoted.join("\n"))
    }
}

/// Why following the boot failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A `_FAIL` marker or markers out of order.
    #[error("{error}; {tail}")]
    Marker { error: MarkerError, tail: String },
    /// Silence on the channel.
    #[error("{error}; {tail}")]
    Channel { error: ChannelError, tail: String },
    /// The VM is not running here any more, or never came up.
    #[error("the engine VM {what} while {waiting}: it is {state}; {tail}")]
    VmNotRunning {
        what: &'static str,
        waiting: String,
        state: VmState,
        tail: String,
    },
    /// The VM status could not be read.
    #[error("cannot read the engine VM status while {waiting}: {error}")]
    Status {
        waiting: String,
        error: HostedEngineError,
    },
    /// The health page never said `DB Up`.
    #[error(transparent)]
    Health(#[from] HealthError),
}

/// Keeps an eye on the VM: asks for its state at most once per interval.
pub struct VmWatch<F> {
    read_state: F,
    interval: Duration,
    start_timeout: Duration,
    started: Instant,
    last_check: Option<Instant>,
    seen_up: bool,
    last_state: Option<VmState>,
}

impl<F: FnMut() -> Result<VmState, HostedEngineError>> VmWatch<F> {
    /// Watches a VM started just now; `read_state` asks where it is. A VM that is not up yet
    /// is given `start_timeout` to appear (the HA agent reports it with some delay); once seen
    /// up (or once its channel closed), being down (or elsewhere) is a failure; `unknown` is
    /// tolerated.
    pub fn new(read_state: F, interval: Duration, start_timeout: Duration) -> Self {
        Self {
            read_state,
            interval,
            start_timeout,
            started: Instant::now(),
            last_check: None,
            seen_up: false,
            last_state: None,
        }
    }

    /// Treats the VM as already seen up (it was running before the watch began).
    pub fn seen_up(mut self) -> Self {
        self.seen_up = true;
        self
    }

    /// The last state read, if any.
    pub fn last_state(&self) -> Option<&VmState> {
        self.last_state.as_ref()
    }

    /// Checks the VM if the interval has passed (or `now` is set).
    pub fn check(&mut self, now: bool, waiting: &str, log: &BootLog) -> Result<(), WatchError> {
        if !now
            && self
                .last_check
                .is_some_and(|at| at.elapsed() < self.interval)
        {
            return Ok(());
        }
        self.last_check = Some(Instant::now());
        let state = (self.read_state)().map_err(|error| WatchError::Status {
            waiting: waiting.to_string(),
            error,
        })?;
        self.last_state = Some(state.clone());
        let what = match &state {
            VmState::Up { .. } => {
                self.seen_up = true;
                return Ok(());
            }
            VmState::Elsewhere { .. } => "is not on this host",
            VmState::Down { .. } if self.seen_up => "went down",
            // `unknown` (vdsm could not answer) may pass; a real problem also stalls the channel.
            _ if !self.seen_up && self.started.elapsed() >= self.start_timeout => {
                "did not come up within start_timeout"
            }
            _ => return Ok(()),
        };
        Err(WatchError::VmNotRunning {
            what,
            waiting: waiting.to_string(),
            state,
            tail: log.tail(),
        })
    }
}

/// Reads the channel until every marker `waiter` wants has arrived.
pub fn follow_channel<F: FnMut() -> Result<VmState, HostedEngineError>>(
    channel: &mut Channel,
    waiter: &mut MarkerWaiter,
    vm: &mut VmWatch<F>,
    log: &mut BootLog,
    progress: &Reporter,
) -> Result<(), WatchError> {
    while let Some(pending) = waiter.pending() {
        let waiting = format!("waiting for {pending}");
        let event = channel.next_event().map_err(|error| WatchError::Channel {
            error,
            tail: log.tail(),
        })?;
        match event {
            ChannelEvent::Line(line) => {
                let marker = waiter.observe(&line);
                log.push(line, progress);
                match marker {
                    Ok(Some(marker)) => {
                        tracing::info!("marker {marker} received");
                        log.markers.push(marker);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        if let MarkerError::Failed { marker, .. } = &error {
                            log.markers.push(*marker);
                        }
                        return Err(WatchError::Marker {
                            error,
                            tail: log.tail(),
                        });
                    }
                }
                vm.check(false, &waiting, log)?;
            }
            ChannelEvent::Quiet => vm.check(false, &waiting, log)?,
            // qemu held the socket, so the VM ran; it closes it when the VM stops: look now,
            // and a Down now is a VM that went down, not one still to come up.
            ChannelEvent::Closed => {
                vm.seen_up = true;
                vm.check(true, &waiting, log)?
            }
        }
    }
    Ok(())
}

/// Polls the health page while checking that the VM stays up.
pub fn wait_healthy<F: FnMut() -> Result<VmState, HostedEngineError>>(
    poller: &HealthPoller,
    vm: &mut VmWatch<F>,
    log: &BootLog,
    progress: &Reporter,
) -> Result<Healthy, WatchError> {
    let waiting = format!("waiting for {} to say DB Up", poller.url());
    poller.wait_until_up(progress, || vm.check(true, &waiting, log))
}

#[cfg(test)]
mod tests {
    use super::super::channel::tests::fast;
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixListener;

    fn up() -> VmState {
        VmState::Up {
            detail: "Up".into(),
        }
    }

    fn down() -> VmState {
        VmState::Down {
            detail: "Down (bad vm status)".into(),
        }
    }

    /// A channel served by a thread writing `chunks` with `pause_ms` between them, then
    /// holding the connection open for `hold_ms`.
    fn served(
        chunks: Vec<&'static str>,
        pause_ms: u64,
        hold_ms: u64,
    ) -> (tempfile::TempDir, Channel) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("channel");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            for chunk in chunks {
                peer.write_all(chunk.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(pause_ms));
            }
            std::thread::sleep(Duration::from_millis(hold_ms));
        });
        let channel = Channel::new(&path, fast(800));
        (dir, channel)
    }

    /// Follows `channel` waiting for both markers, with `vm` as the VM's state: the outcome
    /// and the log.
    fn follow<F: FnMut() -> Result<VmState, HostedEngineError>>(
        channel: &mut Channel,
        vm: &mut VmWatch<F>,
    ) -> (Result<(), WatchError>, BootLog) {
        let mut waiter = MarkerWaiter::new(vec![Marker::RestoreSuccess, Marker::SetupSuccess]);
        let mut log = BootLog::default();
        let outcome = follow_channel(channel, &mut waiter, vm, &mut log, &Reporter::none());
        (outcome, log)
    }

    /// A VM that is up, looked at on every event, given 5 s to come up.
    fn always_up() -> VmWatch<impl FnMut() -> Result<VmState, HostedEngineError>> {
        VmWatch::new(|| Ok(up()), Duration::ZERO, Duration::from_secs(5))
    }

    #[test]
    fn follows_lines_until_the_last_marker() {
        let (_dir, mut channel) = served(
            vec![
                "restoring\nHE_APPLIANCE_ENGINE_RESTORE_SUCCESS\n",
                "setup\nHE_APPLIANCE_ENGINE_SETUP_SUCCESS\n",
                "after the end\n",
            ],
            30,
            0,
        );
        let (outcome, log) = follow(&mut channel, &mut always_up());
        outcome.unwrap();
        assert_eq!(
            log.markers,
            vec![Marker::RestoreSuccess, Marker::SetupSuccess]
        );
        assert_eq!(log.lines_total, 4);
        assert_eq!(
            log.lines.back().unwrap(),
            "HE_APPLIANCE_ENGINE_SETUP_SUCCESS"
        );
    }

    /// The channel stays open and quiet after the marker: only the marker itself can end the
    /// wait with this message (a wait on would end in the stall message).
    #[test]
    fn a_fail_marker_fails_with_the_last_lines() {
        let (_dir, mut channel) = served(
            vec!["FATAL: Backup was created by version '3.5'\nHE_APPLIANCE_ENGINE_RESTORE_FAIL\n"],
            0,
            60_000,
        );
        let (outcome, log) = follow(&mut channel, &mut always_up());
        let text = outcome.unwrap_err().to_string();
        assert!(
            text.starts_with("engine-backup failed restoring the engine backup on the appliance"),
            "{text}"
        );
        assert!(
            text.contains("|- FATAL: Backup was created by version '3.5'"),
            "{text}"
        );
        assert_eq!(log.markers, vec![Marker::RestoreFail]);
    }

    #[test]
    fn a_stall_fails_with_the_stall_message() {
        let (_dir, mut channel) = served(vec!["engine-setup: waiting\n"], 0, 3000);
        let (outcome, _) = follow(&mut channel, &mut always_up());
        let text = outcome.unwrap_err().to_string();
        assert!(
            text.starts_with("Engine setup is stalled on the appliance since"),
            "{text}"
        );
        assert!(text.contains("|- engine-setup: waiting"), "{text}");
    }

    #[test]
    fn the_vm_going_down_fails_at_once_even_while_lines_flow() {
        let (_dir, mut channel) = served(vec!["booting\n"; 50], 20, 0);
        let mut answers = vec![up(), up(), down()].into_iter();
        let mut vm = VmWatch::new(
            move || Ok(answers.next().unwrap_or_else(down)),
            Duration::ZERO,
            Duration::from_secs(5),
        );
        let (outcome, _) = follow(&mut channel, &mut vm);
        let text = outcome.unwrap_err().to_string();
        assert!(
            text.starts_with(
                "the engine VM went down while waiting for HE_APPLIANCE_ENGINE_RESTORE_SUCCESS: it is down (Down (bad vm status))"
            ),
            "{text}"
        );
        assert!(text.contains("|- booting"), "{text}");
    }

    #[test]
    fn a_vm_never_seen_up_gets_start_timeout() {
        let (_dir, mut channel) = served(vec![], 0, 3000);
        let mut vm = VmWatch::new(|| Ok(down()), Duration::ZERO, Duration::from_millis(100));
        let (outcome, _) = follow(&mut channel, &mut vm);
        let text = outcome.unwrap_err().to_string();
        assert!(
            text.starts_with("the engine VM did not come up within start_timeout"),
            "{text}"
        );
        assert!(text.ends_with("no output from the appliance"), "{text}");
    }

    /// With a minute's start_timeout and interval, only the closed channel can end the wait
    /// with this message (a start_timeout would name start_timeout).
    #[test]
    fn a_vm_whose_channel_closes_is_down_at_once_even_if_never_seen_up() {
        let (_dir, mut channel) = served(vec!["booting\n"], 0, 0);
        let mut vm = VmWatch::new(
            || Ok(down()),
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        let (outcome, _) = follow(&mut channel, &mut vm);
        let text = outcome.unwrap_err().to_string();
        assert!(
            text.starts_with(
                "the engine VM went down while waiting for HE_APPLIANCE_ENGINE_RESTORE_SUCCESS"
            ),
            "{text}"
        );
    }

    #[test]
    fn unknown_after_up_is_tolerated_but_down_is_not() {
        let unknown = || VmState::Unknown {
            detail: "unknown (failed to getVmStats)".into(),
        };
        let mut answers = vec![up(), unknown(), unknown(), down()].into_iter();
        let mut vm = VmWatch::new(
            move || Ok(answers.next().unwrap_or_else(down)),
            Duration::ZERO,
            Duration::ZERO,
        );
        let log = BootLog::default();
        for _ in 0..3 {
            vm.check(true, "waiting", &log).unwrap();
        }
        let err = vm.check(true, "waiting", &log).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the engine VM went down while waiting"),
            "{err}"
        );
    }

    #[test]
    fn the_result_keeps_only_the_last_lines() {
        let mut log = BootLog::default();
        for n in 0..KEPT_LINES + 5 {
            log.push(format!("line {n}"), &Reporter::none());
        }
        assert_eq!(log.lines.len(), KEPT_LINES);
        assert_eq!(log.lines_total, KEPT_LINES + 5);
        assert_eq!(log.lines.front().unwrap(), "line 5");
        assert_eq!(log.tail().lines().count(), QUOTED_LINES + 1);
    }
}
