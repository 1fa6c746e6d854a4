//! The molecule scenarios (upgrade with idempotence; upgrade then rollback) against the lab.

use he_e2e::{finish, he_lab_binary, venv_tool};

fn molecule_test(scenario: &str) {
    let mut command = venv_tool("molecule");
    let venv_bin = he_e2e::repo_root().join(".venv/bin");
    command
        .args(["test", "-s", scenario])
        .env("PATH", he_e2e::path_with(&venv_bin))
        .env("HE_LAB_BIN", he_lab_binary());
    let run = finish(command);
    assert_eq!(run.code, 0, "molecule test -s {scenario}:\n{}", run.text);
    assert!(
        run.text.contains("failed=0") && !run.text.contains("failed=1"),
        "{}",
        run.text
    );
}

#[test]
fn molecule_default_upgrades_and_is_idempotent() {
    molecule_test("default");
}

#[test]
fn molecule_rollback_brings_the_old_engine_back() {
    molecule_test("rollback");
}
