//! Helpers shared by the end-to-end tests: the repository, the installed collection, Ansible.

mod hold;
mod kill;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Where `make collection` installed the collection (`HE_COLLECTIONS_PATH` or build/collections).
pub fn collections_path() -> PathBuf {
    let path = std::env::var_os("HE_COLLECTIONS_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("build/collections"));
    let module =
        path.join("ansible_collections/ovirt_he/upgrade/plugins/modules/he_maintenance_facts");
    assert!(
        module.is_file(),
        "the collection is not installed in {}: run `make collection` (or `make test`) first",
        path.display()
    );
    path
}

/// A command from the project's Python venv (`make setup` creates it).
pub fn venv_tool(name: &str) -> Command {
    tool_in(&repo_root().join(".venv/bin"), name)
}

/// A command from the ansible-core 2.16 venv, the last ansible-core that manages Python 2.7
/// and 3.6 hosts: `HE_ANSIBLE_216_BIN` (`make test` sets it), else `.venv-216/bin`.
pub fn ansible_216_tool(name: &str) -> Command {
    let bin = std::env::var_os("HE_ANSIBLE_216_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-216/bin"));
    tool_in(&bin, name)
}

/// `bin/name` (a venv's tool) set up for the installed collection, quiet and colourless.
fn tool_in(bin: &Path, name: &str) -> Command {
    let tool = bin.join(name);
    assert!(
        tool.is_file(),
        "{} is missing: run `make setup` first",
        tool.display()
    );
    let mut command = Command::new(tool);
    command
        .env("ANSIBLE_COLLECTIONS_PATH", collections_path())
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "False")
        .env("ANSIBLE_LOCALHOST_WARNING", "False")
        .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
        .current_dir(repo_root());
    command
}

/// Output of a finished command as text, for assertions and failure messages.
pub struct Finished {
    /// Exit code.
    pub code: i32,
    /// stdout followed by stderr.
    pub text: String,
}

/// Runs `command` to completion.
pub fn finish(mut command: Command) -> Finished {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("command runs");
    Finished {
        code: status.code().unwrap_or(-1),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// PATH with `dir` first.
pub fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// One lab (`he-lab`) in a temporary directory, removed (and stopped) on drop.
pub struct Lab {
    /// The lab directory.
    pub dir: tempfile::TempDir,
    binary: PathBuf,
}

impl Lab {
    /// `he-lab init --profile PROFILE` then `he-lab up`. Each lab gets its own seed (so its
    /// own ids and ports): labs of tests running in parallel never meet.
    pub fn start(profile: &str) -> Self {
        Self::start_with_env(profile, &[])
    }

    /// [`Lab::start`] with extra environment for the lab daemon (its `HE_LAB_*` timings).
    pub fn start_with_env(profile: &str, env: &[(&str, &str)]) -> Self {
        Self::start_with_site(profile, &[], env)
    }

    /// [`Lab::start_with_env`] with extra `he-lab init` arguments (e.g. `--static-ip`).
    pub fn start_with_site(profile: &str, init_args: &[&str], env: &[(&str, &str)]) -> Self {
        static LABS_IN_THIS_PROCESS: std::sync::atomic::AtomicU64 =
            std::sync::atomic::AtomicU64::new(0);
        let nth = LABS_IN_THIS_PROCESS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = (u64::from(std::process::id()) << 8 | nth).to_string();
        let lab = Self {
            dir: host_like_tempdir(),
            binary: he_lab_binary(),
        };
        let mut init = vec!["init", "--profile", profile, "--seed", &seed];
        init.extend_from_slice(init_args);
        lab.run(&init);
        lab.run_with_env(&["up"], env);
        lab
    }

    /// Runs `he-lab --dir DIR ARGS` and returns stdout; panics with its output on failure.
    pub fn run(&self, args: &[&str]) -> String {
        self.run_with_env(args, &[])
    }

    fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let output = Command::new(&self.binary)
            .arg("--dir")
            .arg(self.dir.path())
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("he-lab runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "he-lab {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// `he-lab inspect --json`.
    pub fn inspect(&self) -> serde_json::Value {
        serde_json::from_str(&self.run(&["inspect", "--json"])).expect("inspect prints JSON")
    }

    /// Switches a lab fault.
    pub fn fault(&self, name: &str, on: bool) {
        self.run(&["fault", name, if on { "on" } else { "off" }]);
    }

    /// The lab's inventory file.
    pub fn inventory(&self) -> PathBuf {
        self.dir.path().join("inventory.yml")
    }

    /// SHA-256 of the engine disk now.
    pub fn engine_disk_sha256(&self) -> String {
        self.inspect()["engine_disk"]["sha256"]
            .as_str()
            .expect("engine disk sha256")
            .to_string()
    }

    /// Asserts the engine runs a version starting with `version` and knows exactly one backup
    /// disk; gives the inspection asserted on.
    pub fn assert_upgraded_to(&self, version: &str) -> serde_json::Value {
        let after = self.inspect();
        assert_engine_version(&after, version);
        assert_eq!(backup_disks(&after).len(), 1, "one backup disk: {after}");
        after
    }

    /// Asserts the engine disk holds exactly `length` bytes hashing to `sha256` (SHA-256 hex),
    /// zeroes after them (an extended volume).
    pub fn assert_engine_disk_holds(&self, sha256: &str, length: u64) {
        let path = PathBuf::from(
            self.inspect()["engine_disk"]["path"]
                .as_str()
                .expect("engine disk path"),
        );
        let (held, zero_tail) = prefix_sha256_and_zero_tail(&path, length);
        assert_eq!(held, sha256, "the engine disk holds the exact backup");
        assert!(zero_tail, "past the restored disk the volume holds zeroes");
    }

    /// Starts the engine VM (`hosted-engine --vm-start`) and asserts the engine that comes up
    /// runs a version starting with `version`.
    pub fn start_engine_expecting(&self, version: &str) {
        let start = self.hosted_engine(&["--vm-start"]);
        assert_eq!(start.code, 0, "{}", start.text);
        assert_engine_version(&self.inspect(), version);
    }

    /// A playbook run against this lab: `ansible-playbook -i <inventory> PLAYBOOK ARGS`.
    pub fn playbook_command(&self, playbook: &str, args: &[&str]) -> Command {
        self.playbook_command_with(venv_tool("ansible-playbook"), playbook, args)
    }

    /// [`Lab::playbook_command`] with another `ansible-playbook` (of another ansible-core).
    pub fn playbook_command_with(
        &self,
        mut command: Command,
        playbook: &str,
        args: &[&str],
    ) -> Command {
        command
            .arg("-i")
            .arg(self.inventory())
            .arg(playbook)
            .args(args);
        command
    }

    /// Runs a playbook against this lab to completion.
    pub fn playbook(&self, playbook: &str, args: &[&str]) -> Finished {
        finish(self.playbook_command(playbook, args))
    }

    /// Runs a hosted-engine shim command of the lab host.
    pub fn hosted_engine(&self, args: &[&str]) -> Finished {
        let mut command = Command::new(self.dir.path().join("bin/hosted-engine"));
        command.args(args);
        finish(command)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(&self.binary)
            .arg("--dir")
            .arg(self.dir.path())
            .arg("down")
            .output();
    }
}

/// A temporary directory that vdsm and qemu may enter, as every directory leading to a real
/// host's storage domain and VM files is (mode 0755).
pub fn host_like_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("temp dir mode");
    dir
}

/// The he-lab binary built next to this test (`cargo build --workspace --bins`), or `HE_LAB_BIN`.
pub fn he_lab_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HE_LAB_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let binary = profile_dir.join("he-lab");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        binary.display()
    );
    binary
}

/// Asserts the inspected lab's engine runs a version starting with `version`.
pub fn assert_engine_version(inspect: &serde_json::Value, version: &str) {
    assert!(
        inspect["engine_version"]
            .as_str()
            .unwrap_or("")
            .starts_with(version),
        "the engine runs {version}: {inspect}"
    );
}

/// Asserts a playbook run succeeded, showing its output otherwise.
pub fn assert_success(run: &Finished) {
    assert_eq!(run.code, 0, "playbook failed:\n{}", run.text);
    assert!(run.text.contains("failed=0"), "{}", run.text);
}

/// Asserts a playbook run failed with `needle` in its output.
pub fn assert_failure(run: &Finished, needle: &str) {
    assert_ne!(run.code, 0, "playbook should fail:\n{}", run.text);
    assert!(
        run.text.contains(needle),
        "expected {needle:?} in:\n{}",
        run.text
    );
}

/// SHA-256 (hex) of the first `length` bytes of `path`, and whether every byte after them is zero
/// (a volume extended by the upgrade holds the restored disk followed by zeroes).
pub fn prefix_sha256_and_zero_tail(path: &Path, length: u64) -> (String, bool) {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path).expect("volume opens");
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut remaining = length;
    while remaining > 0 {
        let want = remaining.min(buffer.len() as u64) as usize;
        file.read_exact(&mut buffer[..want])
            .expect("volume holds the prefix");
        hasher.update(&buffer[..want]);
        remaining -= want as u64;
    }
    let mut zero_tail = true;
    loop {
        let read = file.read(&mut buffer).expect("volume reads");
        if read == 0 {
            break;
        }
        zero_tail &= buffer[..read].iter().all(|&b| b == 0);
    }
    (hex(&hasher.finalize()), zero_tail)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The backup disks (`hosted-engine-backup-*`) the lab's engine database knows.
pub fn backup_disks(inspect: &serde_json::Value) -> Vec<serde_json::Value> {
    inspect["engine_disks"]
        .as_array()
        .expect("inspect lists engine_disks")
        .iter()
        .filter(|disk| {
            disk["name"]
                .as_str()
                .unwrap_or("")
                .starts_with("hosted-engine-backup-")
        })
        .cloned()
        .collect()
}

/// `ssh-keygen` of an ed25519 key pair without a passphrase at `path` (and `path.pub`).
fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
}

/// Keys, an sshd_config and an ssh_config in `dir` whose ProxyCommand runs `sshd -i` (inetd
/// mode) for each connection, logging to `dir/sshd.log`: the SSH session is a real one, and no
/// port is chosen to be bound later by sshd (another test could take it in between). Returns
/// the ssh_config.
pub fn sshd_behind_proxy_command(dir: &Path) -> PathBuf {
    keygen(&dir.join("host_key"));
    keygen(&dir.join("client_key"));
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let sshd_config = format!(
        "HostKey {dir}/host_key\nAuthorizedKeysFile {dir}/authorized_keys\n\
         PermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\n\
         UsePAM no\nSubsystem sftp internal-sftp\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), sshd_config).unwrap();
    let ssh_config = format!(
        "Host *\n  ProxyCommand /usr/sbin/sshd -i -f {dir}/sshd_config -E {dir}/sshd.log\n\
         \x20 StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n\
         \x20 IdentityFile {dir}/client_key\n  IdentitiesOnly yes\n",
        dir = dir.display()
    );
    let path = dir.join("ssh_config");
    std::fs::write(&path, ssh_config).unwrap();
    path
}
