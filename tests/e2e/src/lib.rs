//! Helpers shared by the end-to-end tests: the repository, the installed collection, Ansible.

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
    let tool = repo_root().join(".venv/bin").join(name);
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
