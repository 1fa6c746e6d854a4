//! The engine VM's setup channel: a unix socket qemu binds, read line by line (SPEC 9.5).
//!
//! qemu binds the socket only once the VM runs, and closes it when the VM stops, so the
//! client connects with retries and reconnects after end-of-file; whoever reads it decides,
//! between lines, whether the VM is still up. Silence longer than the stall limit is an
//! error ("Engine setup is stalled on the appliance since N seconds ago", original-tool §4).

use std::io::{ErrorKind, Read};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The channel name the appliance writes to (`/dev/virtio-ports/<name>` in the guest).
pub const CHANNEL_NAME: &str = "org.ovirt.hosted-engine-setup.0";

/// Where libvirt puts the host end of the channel.
pub const CHANNEL_DIR: &str = "/var/lib/libvirt/qemu/channels";

/// Longest line kept whole; longer output is cut into lines of this size.
pub const MAX_LINE_BYTES: usize = 4096;

/// The default channel path of VM `vm_id`.
pub fn default_path(vm_id: &str) -> PathBuf {
    Path::new(CHANNEL_DIR).join(format!("{vm_id}.{CHANNEL_NAME}"))
}

/// How long to wait, and how often to come back to the caller.
#[derive(Debug, Clone, Copy)]
pub struct ChannelTiming {
    /// Silence (no byte, or no connection) longer than this is a stall.
    pub stall_timeout: Duration,
    /// The longest a single read or connection attempt blocks before returning `Quiet`.
    pub poll_interval: Duration,
}

/// What one look at the channel gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// One line (without its line break).
    Line(String),
    /// Nothing complete yet; the caller may check the VM and look again.
    Quiet,
    /// The VM side closed the socket; the next look reconnects.
    Closed,
}

/// The channel stayed silent too long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Connected, but no data for the stall limit.
    #[error("Engine setup is stalled on the appliance since {since_s} seconds ago (no output on {path} for stall_timeout {stall_timeout_s} s)")]
    Stalled {
        path: PathBuf,
        since_s: u64,
        stall_timeout_s: u64,
    },
    /// Never (re)connected within the stall limit.
    #[error(
        "cannot connect to the engine VM setup channel {path} for {since_s} seconds: {reason}"
    )]
    Unreachable {
        path: PathBuf,
        since_s: u64,
        reason: String,
    },
}

/// A reader of the setup channel.
#[derive(Debug)]
pub struct Channel {
    path: PathBuf,
    timing: ChannelTiming,
    stream: Option<UnixStream>,
    pending: Vec<u8>,
    last_activity: Instant,
    last_connect_error: Option<String>,
    connections: u32,
}

impl Channel {
    /// A channel at `path`, not connected yet; the stall clock starts now.
    pub fn new(path: &Path, timing: ChannelTiming) -> Self {
        Self {
            path: path.to_path_buf(),
            timing,
            stream: None,
            pending: Vec::new(),
            last_activity: Instant::now(),
            last_connect_error: None,
            connections: 0,
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many times a connection was made.
    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// Waits at most about one poll interval for the next line.
    pub fn next_event(&mut self) -> Result<ChannelEvent, ChannelError> {
        if let Some(line) = self.take_line() {
            return Ok(ChannelEvent::Line(line));
        }
        let Some(stream) = self.stream.as_mut() else {
            return self.connect();
        };
        let mut buffer = [0u8; 8192];
        match stream.read(&mut buffer) {
            Ok(0) => {
                tracing::info!("the setup channel {} was closed", self.path.display());
                self.stream = None;
                if !self.pending.is_empty() {
                    let rest = std::mem::take(&mut self.pending);
                    return Ok(ChannelEvent::Line(decode(&rest)));
                }
                Ok(ChannelEvent::Closed)
            }
            Ok(count) => {
                self.last_activity = Instant::now();
                self.pending.extend_from_slice(&buffer[..count]);
                Ok(self
                    .take_line()
                    .map_or(ChannelEvent::Quiet, ChannelEvent::Line))
            }
            Err(error) if is_timeout(&error) || error.kind() == ErrorKind::Interrupted => {
                self.quiet()
            }
            Err(error) => {
                tracing::info!(
                    "reading the setup channel {} failed: {error}",
                    self.path.display()
                );
                self.stream = None;
                Ok(ChannelEvent::Closed)
            }
        }
    }

    fn connect(&mut self) -> Result<ChannelEvent, ChannelError> {
        match UnixStream::connect(&self.path).and_then(|stream| {
            stream.set_read_timeout(Some(self.timing.poll_interval.max(MIN_POLL)))?;
            Ok(stream)
        }) {
            Ok(stream) => {
                self.connections += 1;
                tracing::info!("connected to the setup channel {}", self.path.display());
                self.stream = Some(stream);
                self.last_connect_error = None;
                Ok(ChannelEvent::Quiet)
            }
            Err(error) => {
                // qemu binds the socket after the VM starts: not there yet is normal.
                self.last_connect_error = Some(error.to_string());
                std::thread::sleep(self.timing.poll_interval.max(MIN_POLL));
                self.quiet()
            }
        }
    }

    fn quiet(&self) -> Result<ChannelEvent, ChannelError> {
        let silent = self.last_activity.elapsed();
        if silent < self.timing.stall_timeout {
            return Ok(ChannelEvent::Quiet);
        }
        let since_s = silent.as_secs();
        Err(match &self.last_connect_error {
            Some(reason) if self.stream.is_none() => ChannelError::Unreachable {
                path: self.path.clone(),
                since_s,
                reason: reason.clone(),
            },
            _ => ChannelError::Stalled {
                path: self.path.clone(),
                since_s,
                stall_timeout_s: self.timing.stall_timeout.as_secs(),
            },
        })
    }

    fn take_line(&mut self) -> Option<String> {
        let end = match self.pending.iter().position(|&b| b == b'\n') {
            Some(newline) if newline <= MAX_LINE_BYTES => newline,
            _ if self.pending.len() >= MAX_LINE_BYTES => MAX_LINE_BYTES,
            _ => return None,
        };
        let line: Vec<u8> = self.pending.drain(..end).collect();
        if self.pending.first() == Some(&b'\n') {
            self.pending.remove(0);
        }
        Some(decode(&line))
    }
}

const MIN_POLL: Duration = Duration::from_millis(10);

fn decode(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches(['\r', '\n'])
        .to_string()
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixListener;

    pub(crate) fn fast(stall_ms: u64) -> ChannelTiming {
        ChannelTiming {
            stall_timeout: Duration::from_millis(stall_ms),
            poll_interval: Duration::from_millis(20),
        }
    }

    /// Reads events until `stop` says so or an error; returns lines and the error.
    fn drain(
        channel: &mut Channel,
        mut stop: impl FnMut(&[String]) -> bool,
    ) -> (Vec<String>, Option<ChannelError>) {
        let mut lines = Vec::new();
        loop {
            match channel.next_event() {
                Ok(ChannelEvent::Line(line)) => {
                    lines.push(line);
                    if stop(&lines) {
                        return (lines, None);
                    }
                }
                Ok(_) => {}
                Err(error) => return (lines, Some(error)),
            }
        }
    }

    #[test]
    fn waits_for_the_socket_then_reads_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm.org.ovirt.hosted-engine-setup.0");
        let mut channel = Channel::new(&path, fast(5000));
        let server_path = path.clone();
        let server = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            let listener = UnixListener::bind(&server_path).unwrap();
            let (mut peer, _) = listener.accept().unwrap();
            peer.write_all(b"[ INFO  ] Restoring\r\npartial ").unwrap();
            std::thread::sleep(Duration::from_millis(60));
            peer.write_all(b"line\nHE_APPLIANCE_ENGINE_RESTORE_SUCCESS\n")
                .unwrap();
        });
        let (lines, error) = drain(&mut channel, |lines| lines.len() == 3);
        assert_eq!(error, None);
        assert_eq!(
            lines,
            vec![
                "[ INFO  ] Restoring",
                "partial line",
                "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS"
            ]
        );
        server.join().unwrap();
    }

    #[test]
    fn reconnects_after_the_vm_side_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("channel");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            for text in ["first\n", "second\n"] {
                let (mut peer, _) = listener.accept().unwrap();
                peer.write_all(text.as_bytes()).unwrap();
            }
        });
        let mut channel = Channel::new(&path, fast(5000));
        let mut closed = 0;
        let mut lines = Vec::new();
        while lines.len() < 2 {
            match channel.next_event().unwrap() {
                ChannelEvent::Line(line) => lines.push(line),
                ChannelEvent::Closed => closed += 1,
                ChannelEvent::Quiet => {}
            }
        }
        assert_eq!(lines, vec!["first", "second"]);
        assert!(closed >= 1);
        assert_eq!(channel.connections(), 2);
        server.join().unwrap();
    }

    #[test]
    fn silence_longer_than_the_limit_is_a_stall() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("channel");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            peer.write_all(b"engine-setup starting\n").unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            drop(peer);
        });
        let mut channel = Channel::new(&path, fast(400));
        let started = Instant::now();
        let (lines, error) = drain(&mut channel, |_| false);
        assert_eq!(lines, vec!["engine-setup starting"]);
        let error = error.unwrap();
        assert!(matches!(error, ChannelError::Stalled { .. }), "{error}");
        assert!(
            error
                .to_string()
                .starts_with("Engine setup is stalled on the appliance since 0 seconds ago"),
            "{error}"
        );
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(400) && waited < Duration::from_millis(1400),
            "{waited:?}"
        );
        server.join().unwrap();
    }

    #[test]
    fn a_socket_that_never_appears_is_reported_as_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let mut channel = Channel::new(&dir.path().join("missing"), fast(200));
        let (_, error) = drain(&mut channel, |_| false);
        let error = error.unwrap();
        assert!(matches!(error, ChannelError::Unreachable { .. }), "{error}");
        assert!(error.to_string().contains("No such file"), "{error}");
    }

    #[test]
    fn overlong_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("channel");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            let mut long = vec![b'x'; MAX_LINE_BYTES + 10];
            long.push(b'\n');
            peer.write_all(&long).unwrap();
        });
        let mut channel = Channel::new(&path, fast(5000));
        let (lines, _) = drain(&mut channel, |lines| lines.len() == 2);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES);
        assert_eq!(lines[1], "x".repeat(10));
        server.join().unwrap();
    }

    #[test]
    fn the_default_path_is_libvirts() {
        assert_eq!(
            default_path("4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3"),
            Path::new("/var/lib/libvirt/qemu/channels/4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3.org.ovirt.hosted-engine-setup.0")
        );
    }
}
