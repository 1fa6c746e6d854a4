//! The VM's `org.ovirt.hosted-engine-setup.0` virtio channel: a unix socket the VM binds
//! (server side, as qemu does) at `<channels>/<vm_id>.org.ovirt.hosted-engine-setup.0`.
//! Lines written before the host connects are kept and delivered when it does.

use anyhow::Context as _;
use std::io::Write as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Shared {
    backlog: Vec<String>,
    client: Option<UnixStream>,
}

/// A bound channel socket.
pub struct Channel {
    path: PathBuf,
    shared: Arc<Mutex<Shared>>,
    closed: Arc<AtomicBool>,
}

impl Channel {
    /// Binds the socket at `path` (replacing a stale one) and accepts host connections.
    pub fn bind(path: &Path) -> anyhow::Result<Channel> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot bind the VM channel {}", path.display()))?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let closed = Arc::new(AtomicBool::new(false));
        let (accept_shared, accept_closed) = (shared.clone(), closed.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_closed.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let mut shared = accept_shared.lock().expect("channel lock");
                let pending: String = shared.backlog.concat();
                if stream.write_all(pending.as_bytes()).is_ok() {
                    shared.backlog.clear();
                    shared.client = Some(stream);
                }
            }
        });
        Ok(Channel {
            path: path.to_path_buf(),
            shared,
            closed,
        })
    }

    /// Sends one line (newline added) to the host, or keeps it until the host connects.
    pub fn send_line(&self, line: &str) {
        let text = format!("{line}\n");
        let mut shared = self.shared.lock().expect("channel lock");
        if let Some(client) = shared.client.as_mut() {
            if client.write_all(text.as_bytes()).is_ok() {
                return;
            }
            shared.client = None;
        }
        shared.backlog.push(text);
    }

    /// Closes the channel (the VM went away): the host sees end of file.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut shared) = self.shared.lock() {
            if let Some(client) = shared.client.take() {
                let _ = client.shutdown(std::net::Shutdown::Both);
            }
        }
        // Wake the accept loop so its thread ends, then remove the socket file.
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}
