//! he_register_disk run as Ansible runs it: path options that are wrong are named before
//! the engine is asked anything.
mod fake_engine;
mod fake_host;
mod support;
use support::bad_paths::BadPaths;

use fake_engine::{FakeEngine, Profile, PASSWORD};
use serde_json::json;
use support::run_module;

/// he_conf and ca_file given as a missing path, a looping link or a directory fail naming
/// the input and the path, and the engine sees no request.
#[test]
fn path_options_name_the_input_when_missing_unreadable_or_of_the_wrong_type() {
    let engine = FakeEngine::start(Profile::default());
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (he_conf, vdsm) = fake_host::install(dir);
    let bad = BadPaths::in_dir(dir);
    for (option, message) in [
        ("he_conf", "cannot read hosted-engine configuration {}: "),
        ("ca_file", "option 'ca_file': cannot read {}: "),
    ] {
        for (path, reason) in bad.unreadable_files() {
            let mut args = json!({"engine_url": engine.url(), "password": PASSWORD,
                "he_conf": he_conf, "name": "he-backup", "run_id": "test-run"});
            args[option] = json!(path);
            let run = run_module("he_register_disk", vdsm.with_options(args), dir, None);
            run.assert_failed_with(&message.replace("{}", &path.display().to_string()));
            run.assert_failed_with(reason);
        }
    }
    assert!(engine.seen().is_empty(), "the engine was asked");
}
