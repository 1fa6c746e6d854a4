//! The official Python SDK (ovirtsdk4) against the fake engine. Needs
//! `HE_LAB_SDK_PYTHON` naming a Python with ovirtsdk4 installed (`make test` and tests/python/run.sh set it).

mod engine_support;

use engine_support::{release_44, write_volume, TestEngine};

#[test]
fn official_python_sdk_works_against_a_v4_engine() {
    let python = std::env::var("HE_LAB_SDK_PYTHON").expect(
        "HE_LAB_SDK_PYTHON must name a Python with ovirtsdk4 (make test sets it; or run tests/lab/tests/python/run.sh)",
    );
    let engine = TestEngine::start("sdk", release_44());
    let config = &engine.config;
    let unregistered = [
        ("c0ffee00-0000-4000-8000-0000000000a1", "unreg-a"),
        ("c0ffee00-0000-4000-8000-0000000000a2", "unreg-b"),
    ];
    for (index, (image, alias)) in unregistered.iter().enumerate() {
        write_volume(
            config,
            image,
            &format!("c0ffee00-0000-4000-8000-0000000000b{index}"),
            "DATA",
            &format!("{{\"DiskAlias\":\"{alias}\",\"DiskDescription\":\"old backup\"}}"),
            1 << 30,
        );
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_check.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(format!("{}/api", config.engine_url()))
        .arg(engine.ca_file())
        .arg(&engine.password)
        .arg(&config.host_uuid)
        .arg(&config.sd_id)
        .arg(unregistered[0].0)
        .arg(unregistered[1].0)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "SDK check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("SDK check passed"));
}
