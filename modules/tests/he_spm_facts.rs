//! he_spm_facts against a throwaway HTTPS engine (v4 and v3): facts, CA pinning, login,
//! retries, faults, check mode, and no password anywhere.
mod fake_engine;
mod fake_host;
mod support;
use support::bad_paths::BadPaths;

use fake_engine::{FakeEngine, Profile, PASSWORD};
use serde_json::{json, Value};
use std::path::Path;
use support::{run_module, Run};

fn run(engine_url: &str, extra: Value, work: &Path) -> Run {
    let (he_conf, vdsm) = fake_host::install(work);
    let mut args = json!({
        "engine_url": engine_url,
        "password": PASSWORD,
        "he_conf": he_conf,
        "run_id": "test-run",
    });
    for (key, value) in extra.as_object().unwrap() {
        args[key.as_str()] = value.clone();
    }
    run_module("he_spm_facts", vdsm.with_options(args), work, None)
}

fn outputs(run: &Run) -> [String; 2] {
    [run.result.to_string(), run.stderr.clone()]
}

#[test]
fn v4_engine_facts_ca_dest_sso_and_logout() {
    let engine = FakeEngine::start(Profile::default());
    let work = tempfile::tempdir().unwrap();
    let ca_dest = work.path().join("engine-ca.pem");
    let run = run(&engine.url(), json!({"ca_dest": ca_dest}), work.path());
    run.assert_ok();
    let facts = &run.result["ansible_facts"]["he_spm"];
    assert_eq!(facts["is_spm"], json!(true));
    assert_eq!(facts["spm_host"], json!("host1"));
    assert_eq!(facts["host_name"], json!("host1"));
    assert_eq!(facts["host_id"], json!("H1"));
    assert_eq!(facts["api_version"], json!(4));
    assert_eq!(facts["engine_version"], json!("4.3.10.4-1.el7"));
    assert_eq!(facts["engine_release"], json!("4.3"));
    assert_eq!(
        facts["datacenters"],
        json!([{"name": "Default", "version": "4.3", "status": "up"}])
    );
    assert_eq!(
        facts["clusters"],
        json!([{"name": "Default", "version": "4.3"}])
    );
    assert_eq!(facts["storage_domain"]["available"], json!(50u64 << 30));
    assert_eq!(facts["storage_domain"]["name"], json!("hosted_storage"));
    assert_eq!(facts["aaa_domains"], json!(["internal-authz"]));
    assert!(facts["ca"]["subject"]
        .as_str()
        .unwrap()
        .contains("fake-engine.example.com.51234"));
    assert_eq!(facts["ca"]["sha256"].as_str().unwrap().len(), 32 * 3 - 1);
    assert_eq!(run.result["changed"], json!(true), "ca_dest was written");
    assert_eq!(std::fs::read_to_string(&ca_dest).unwrap(), engine.ca_pem);

    let seen = engine.seen();
    assert!(
        seen[0]
            .path
            .starts_with("/ovirt-engine/services/pki-resource"),
        "CA first"
    );
    assert_eq!(seen[1].path, "/ovirt-engine/sso/oauth/token");
    assert!(
        seen[1].body.contains("grant_type=password")
            && seen[1].body.contains("scope=ovirt-app-api")
    );
    let api: Vec<_> = seen
        .iter()
        .filter(|s| s.path.starts_with("/ovirt-engine/api"))
        .collect();
    assert!(api
        .iter()
        .all(|s| s.header("Version") == Some("4")
            && s.header("Authorization") == Some("Bearer TOKEN-1")));
    let last = seen.last().unwrap();
    assert_eq!(last.path, "/ovirt-engine/services/sso-logout");
    assert!(last.body.contains("token=TOKEN-1"));
    fake_host::assert_secret_absent(
        work.path(),
        &outputs(&run).each_ref().map(String::as_str),
        PASSWORD,
    );

    // Again with the pin, in any case and without colons: unchanged CA file.
    let pin = facts["ca"]["sha256"]
        .as_str()
        .unwrap()
        .replace(':', "")
        .to_lowercase();
    let again = self::run(
        &engine.url(),
        json!({"ca_dest": ca_dest, "ca_fingerprint": pin}),
        work.path(),
    );
    again.assert_ok();
    assert_eq!(again.result["changed"], json!(false));
}

#[test]
fn v3_engine_basic_session_then_logout() {
    let engine = FakeEngine::start(Profile {
        v3: true,
        ..Profile::default()
    });
    let work = tempfile::tempdir().unwrap();
    let run = run(&engine.url(), json!({}), work.path());
    run.assert_ok();
    let facts = &run.result["ansible_facts"]["he_spm"];
    assert_eq!(facts["api_version"], json!(3));
    assert_eq!(facts["engine_version"], json!("3.6.7.5-1.el7.centos"));
    assert_eq!(facts["engine_release"], json!("3.6"));
    assert_eq!(facts["datacenters"][0]["version"], json!("3.6"));
    assert_eq!(facts["is_spm"], json!(true));
    let api: Vec<_> = engine
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/ovirt-engine/api"))
        .collect();
    assert!(api[0]
        .header("Authorization")
        .unwrap()
        .starts_with("Basic "));
    assert_eq!(api[0].header("Prefer"), Some("persistent-auth"));
    let middle = &api[1..api.len() - 1];
    assert!(!middle.is_empty());
    assert!(middle.iter().all(
        |s| s.header("Authorization").is_none() && s.header("Cookie") == Some("JSESSIONID=S1")
    ));
    assert!(middle.iter().all(|s| s.header("Version") == Some("3")));
    let logout = api.last().unwrap();
    assert_eq!(
        (logout.path.as_str(), logout.header("Prefer")),
        ("/ovirt-engine/api", None)
    );
    fake_host::assert_secret_absent(
        work.path(),
        &outputs(&run).each_ref().map(String::as_str),
        PASSWORD,
    );
}

#[test]
fn wrong_pin_fails_before_anything_else_is_sent() {
    let engine = FakeEngine::start(Profile::default());
    let work = tempfile::tempdir().unwrap();
    let run = run(
        &engine.url(),
        json!({"ca_fingerprint": "ab".repeat(32)}),
        work.path(),
    );
    run.assert_failed_with("does not match ca_fingerprint");
    assert!(run.msg().contains("SHA-256 is"), "{}", run.msg());
    let seen = engine.seen();
    assert_eq!(seen.len(), 1, "only the CA was fetched: {seen:?}");
    assert!(seen[0]
        .path
        .starts_with("/ovirt-engine/services/pki-resource"));
}

#[test]
fn ca_file_is_trusted_and_nothing_else() {
    let engine = FakeEngine::start(Profile::default());
    let other = FakeEngine::start(Profile::default());
    let work = tempfile::tempdir().unwrap();
    let ca_file = work.path().join("other-ca.pem");
    std::fs::write(&ca_file, &other.ca_pem).unwrap();
    let run = run(&engine.url(), json!({"ca_file": ca_file}), work.path());
    run.assert_failed_with("TLS verification against the engine CA failed");
    assert!(engine.seen().is_empty(), "no request completed");
}

#[test]
fn wrong_password_v4_and_v3() {
    for v3 in [false, true] {
        let engine = FakeEngine::start(Profile {
            v3,
            ..Profile::default()
        });
        let work = tempfile::tempdir().unwrap();
        let run = run(
            &engine.url(),
            json!({"password": "not-the-password"}),
            work.path(),
        );
        run.assert_failed_with("engine login as 'admin@internal' failed");
        if v3 {
            assert!(run.msg().contains("HTTP 401"), "{}", run.msg());
        } else {
            assert!(run.msg().contains("access_denied"), "{}", run.msg());
        }
        fake_host::assert_secret_absent(
            work.path(),
            &outputs(&run).each_ref().map(String::as_str),
            "not-the-password",
        );
    }
}

#[test]
fn flaky_engine_is_retried() {
    let engine = FakeEngine::start(Profile {
        fail_first: 2,
        ..Profile::default()
    });
    let work = tempfile::tempdir().unwrap();
    run(&engine.url(), json!({}), work.path()).assert_ok();
    let roots = engine
        .seen()
        .iter()
        .filter(|s| s.path == "/ovirt-engine/api")
        .count();
    assert_eq!(roots, 3, "503, reset, then the answer");
}

#[test]
fn an_expired_token_is_renewed_once() {
    let engine = FakeEngine::start(Profile {
        expire_token_at_call: Some(3),
        ..Profile::default()
    });
    let work = tempfile::tempdir().unwrap();
    run(&engine.url(), json!({}), work.path()).assert_ok();
    let logins = engine
        .seen()
        .iter()
        .filter(|s| s.path == "/ovirt-engine/sso/oauth/token")
        .count();
    assert_eq!(logins, 2, "logged in again after the 401");
    let last = engine.seen().last().unwrap().clone();
    assert!(
        last.body.contains("token=TOKEN-2"),
        "logs out the new token"
    );
}

#[test]
fn engine_down_is_named() {
    // A port held (bound, never listening) for the whole test: connections are refused.
    let held = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    held.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = held.local_addr().unwrap().as_socket().unwrap().port();
    let work = tempfile::tempdir().unwrap();
    let run = run(
        &format!("https://127.0.0.1:{port}/ovirt-engine"),
        json!({}),
        work.path(),
    );
    run.assert_failed_with("cannot reach the engine for GET /ovirt-engine/services/pki-resource");
    assert!(run.msg().contains("connection refused"), "{}", run.msg());
    assert!(run.msg().contains("tried 4 times"), "{}", run.msg());
}

#[test]
fn slow_engine_times_out_clearly() {
    let engine = FakeEngine::start(Profile {
        delay: Some(std::time::Duration::from_secs(3)),
        ..Profile::default()
    });
    let work = tempfile::tempdir().unwrap();
    let run = run(&engine.url(), json!({"timeout": 1}), work.path());
    run.assert_failed_with("no answer within 1 s (option 'timeout')");
}

#[test]
fn require_spm_names_the_spm_host() {
    let engine = FakeEngine::start(Profile {
        this_host_spm: false,
        ..Profile::default()
    });
    let work = tempfile::tempdir().unwrap();
    let facts = run(&engine.url(), json!({}), work.path());
    facts.assert_ok();
    assert_eq!(
        facts.result["ansible_facts"]["he_spm"]["is_spm"],
        json!(false)
    );
    assert_eq!(
        facts.result["ansible_facts"]["he_spm"]["spm_host"],
        json!("host2")
    );
    let strict = run(&engine.url(), json!({"require_spm": true}), work.path());
    strict.assert_failed_with("This host (host1) is not the SPM one (the SPM is host2)");
}

#[test]
fn check_mode_does_not_write_ca_dest() {
    let engine = FakeEngine::start(Profile::default());
    let work = tempfile::tempdir().unwrap();
    let ca_dest = work.path().join("engine-ca.pem");
    let run = run(
        &engine.url(),
        json!({"ca_dest": ca_dest, "_ansible_check_mode": true, "_ansible_diff": true}),
        work.path(),
    );
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(true));
    assert_eq!(run.result["diff"]["after"]["written"], json!(true));
    assert!(!ca_dest.exists());
}

#[test]
fn bad_options_are_named_before_any_request() {
    let work = tempfile::tempdir().unwrap();
    run(
        "http://engine.example.com/ovirt-engine",
        json!({}),
        work.path(),
    )
    .assert_failed_with("option 'engine_url'");
    run(
        "https://engine.example.com",
        json!({"api_version": 5}),
        work.path(),
    )
    .assert_failed_with("option 'api_version'");
    run(
        "https://engine.example.com",
        json!({"ca_fingerprint": "12:34"}),
        work.path(),
    )
    .assert_failed_with("option 'ca_fingerprint'");
}

/// ca_file, ca_dest and he_conf given as a missing path, a looping link or a directory fail
/// naming the option and the path; nothing is written.
#[test]
fn path_options_name_the_input_when_missing_unreadable_or_of_the_wrong_type() {
    let engine = FakeEngine::start(Profile::default());
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let bad = BadPaths::in_dir(dir);
    let looping = bad.looping.clone();
    let a_dir = bad.directory.clone();
    let missing = bad.missing.clone();
    let deep = missing.join("ca.pem");
    let cases = [
        (
            "ca_file",
            &missing,
            "option 'ca_file': cannot read {}: No such file",
        ),
        (
            "ca_file",
            &looping,
            "option 'ca_file': cannot read {}: Too many levels",
        ),
        (
            "ca_file",
            &a_dir,
            "option 'ca_file': cannot read {}: Is a directory",
        ),
        (
            "ca_dest",
            &deep,
            "option 'ca_dest': {} is in {}/missing, which cannot be used: No such file",
        ),
        (
            "ca_dest",
            &looping,
            "option 'ca_dest': {} cannot be inspected: Too many levels",
        ),
        (
            "ca_dest",
            &a_dir,
            "option 'ca_dest': {} exists and is not a regular file",
        ),
        (
            "he_conf",
            &missing,
            "cannot read hosted-engine configuration {}: No such file",
        ),
        (
            "he_conf",
            &looping,
            "cannot read hosted-engine configuration {}: Too many levels",
        ),
        (
            "he_conf",
            &a_dir,
            "cannot read hosted-engine configuration {}: Is a directory",
        ),
    ];
    for (option, path, message) in cases {
        for check_mode in [true, false] {
            let extra = json!({option: path, "_ansible_check_mode": check_mode});
            let run = run(&engine.url(), extra, dir);
            let expected = message
                .replacen("{}", &path.display().to_string(), 1)
                .replace("{}", &dir.display().to_string());
            run.assert_failed_with(&expected);
        }
    }
    assert_eq!(std::fs::read_dir(&a_dir).unwrap().count(), 0);
    assert!(!missing.exists());
}

/// How often the engine was asked for its CA.
fn ca_fetches(engine: &FakeEngine) -> usize {
    engine
        .seen()
        .iter()
        .filter(|seen| seen.path.starts_with("/ovirt-engine/services/pki-resource"))
        .count()
}

/// SPEC 6.5: the CA fetched on the attempt's first contact is pinned (check mode shows it and
/// writes nothing), every later contact trusts the pin without fetching the CA again, an
/// engine presenting another CA is refused with both CAs named and never gets the password,
/// and a new attempt pins again.
#[test]
fn the_ca_is_pinned_on_the_attempts_first_contact_and_another_ca_is_refused() {
    let engine = FakeEngine::start(Profile::default());
    let impostor = FakeEngine::start(Profile::default());
    let work = tempfile::tempdir().unwrap();
    let pin_file = work.path().join("engine-ca-pin.json");
    let pin = |attempt: &str| json!({"ca_pin_file": pin_file, "ca_pin_attempt": attempt});

    let mut check_args = pin("upgrade-1");
    check_args["_ansible_check_mode"] = json!(true);
    let check = run(&engine.url(), check_args, work.path());
    check.assert_ok();
    assert!(!pin_file.exists(), "check mode writes no pin");
    assert_eq!(check.result["changed"], json!(true), "it would pin");

    let first = run(&engine.url(), pin("upgrade-1"), work.path());
    first.assert_ok();
    let ca = first.result["ansible_facts"]["he_spm"]["ca"].clone();
    assert_eq!(ca["first_contact_pin"], json!(true));
    assert_eq!(first.result["changed"], json!(true), "the pin was written");
    let sha1_ovirt = ca["sha1"].as_str().unwrap().replace(':', "");
    let sha256 = ca["sha256"].as_str().unwrap().to_string();
    assert!(
        ca["shown"]
            .as_str()
            .unwrap()
            .contains(&format!("Fingerprint (SHA-1): {sha1_ovirt}")),
        "{ca}"
    );
    assert!(first.msg().contains(&sha1_ovirt), "{}", first.msg());
    let pin_text = std::fs::read_to_string(&pin_file).unwrap();
    assert!(
        pin_text.contains(&engine.ca_pem.replace('\n', "\\n")),
        "{pin_text}"
    );

    let fetched = ca_fetches(&engine);
    let again = run(&engine.url(), pin("upgrade-1"), work.path());
    again.assert_ok();
    assert_eq!(
        again.result["ansible_facts"]["he_spm"]["ca"]["first_contact_pin"],
        json!(false)
    );
    assert_eq!(again.result["changed"], json!(false));
    assert_eq!(
        ca_fetches(&engine),
        fetched,
        "the pinned CA is not fetched again"
    );

    let refused = run(&impostor.url(), pin("upgrade-1"), work.path());
    refused.assert_failed_with("not the one pinned on this attempt's first contact");
    let message = refused.msg().to_string();
    assert!(
        message.contains(&sha1_ovirt) && message.contains(&sha256),
        "{message}"
    );
    assert!(message.contains("engine-ca-pin.json"), "{message}");
    let seen = impostor.seen();
    assert!(
        seen.iter()
            .all(|seen| seen.path.starts_with("/ovirt-engine/services/pki-resource")),
        "only the CA was asked for, never with the password: {seen:?}"
    );
    fake_host::assert_secret_absent(
        work.path(),
        &outputs(&refused).each_ref().map(String::as_str),
        PASSWORD,
    );

    // A new attempt pins the CA its first contact meets; the refusal named that CA.
    let next = run(&impostor.url(), pin("upgrade-2"), work.path());
    next.assert_ok();
    let other = &next.result["ansible_facts"]["he_spm"]["ca"];
    assert_eq!(other["first_contact_pin"], json!(true));
    let other_sha256 = other["sha256"].as_str().unwrap();
    assert_ne!(other_sha256, sha256);
    assert!(message.contains(other_sha256), "{message}");
    assert!(
        message.contains(&other["sha1"].as_str().unwrap().replace(':', "")),
        "{message}"
    );
}
