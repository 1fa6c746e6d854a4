//! The modules' vdsm client against a scripted vdsm on port 0 (TLS, client certificates):
//! one connection per run, slow answers, vdsm errors, ERROR frames, silence and a close in
//! the middle of a frame, each reported naming the call.

mod support;

use he_modules::host::vdsm::session::Endpoint;
use he_modules::host::vdsm::tls::PkiFiles;
use he_modules::host::vdsm::{Vdsm, VdsmError};
use serde_json::json;
use std::net::TcpListener;
use std::time::Duration;
use support::fake_vdsm::{FakeVdsm, Reply};

fn client(fake: &FakeVdsm, timeout: Duration) -> Vdsm {
    Vdsm::new(Endpoint {
        address: fake.address.replace("127.0.0.1", "localhost"),
        pki: PkiFiles::in_dir(&fake.pki_dir()),
        timeout,
    })
}

#[test]
fn calls_share_one_connection_even_when_answers_are_slow() {
    let fake = FakeVdsm::start(|_, _| {
        Reply::Slow(
            Duration::from_millis(300),
            json!({"systemUUID": "4C4C4544-0042", "systemProductName": "KVM"}),
        )
    });
    let vdsm = client(&fake, Duration::from_secs(60));
    for _ in 0..3 {
        assert_eq!(vdsm.hardware_uuid().unwrap(), "4C4C4544-0042");
    }
    assert_eq!(fake.connections(), 1);
    assert_eq!(fake.calls(), vec!["Host.getHardwareInfo"; 3]);
}

#[test]
fn parameters_are_vdsm_s_names_as_strings() {
    let fake = FakeVdsm::start(|method, _| match method {
        "Volume.extendSize" => Reply::Result(json!("task-1")),
        _ => Reply::Result(
            json!({"taskState": "finished", "taskResult": "success", "message": "1 jobs completed successfully", "code": 0, "taskID": "task-1"}),
        ),
    });
    let volume = he_modules::host::Volume {
        sd_id: "sd".into(),
        image_id: "img".into(),
        volume_id: "vol".into(),
    };
    client(&fake, Duration::from_secs(60))
        .extend_volume("pool", &volume, 1 << 30, Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        fake.calls(),
        vec![
            "Volume.extendSize imageID=img newSize=1073741824 storagedomainID=sd storagepoolID=pool volumeID=vol",
            "Task.getStatus taskID=task-1",
        ]
    );
}

#[test]
fn a_vdsm_error_names_the_call_code_and_message() {
    let fake =
        FakeVdsm::start(|_, _| Reply::Error(358, "Storage domain does not exist: ('sd1',)".into()));
    let error = client(&fake, Duration::from_secs(60))
        .storage_domain_images("sd1")
        .unwrap_err();
    assert!(
        matches!(error, VdsmError::Remote { code: 358, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "vdsm call StorageDomain.getImages(storagedomainID=sd1) failed: (code=358, message=Storage domain does not exist: ('sd1',))"
    );
}

#[test]
fn an_error_frame_names_the_call_and_vdsm_s_text() {
    let fake = FakeVdsm::start(|_, _| Reply::ErrorFrame("Subscription not available"));
    let error = client(&fake, Duration::from_secs(60))
        .hardware_uuid()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "vdsm refused Host.getHardwareInfo(): Subscription not available"
    );
}

#[test]
fn silence_ends_at_the_timeout_naming_the_call() {
    let fake = FakeVdsm::start(|_, _| Reply::Silent);
    let error = client(&fake, Duration::from_millis(500))
        .wait_for_task("t1", Duration::from_secs(60))
        .unwrap_err();
    assert!(matches!(error, VdsmError::Timeout { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "vdsm did not answer Task.getStatus(taskID=t1) within 0.5 s"
    );
}

#[test]
fn a_close_in_the_middle_of_a_frame_is_reported_not_waited_for() {
    let fake = FakeVdsm::start(|_, _| Reply::CloseMidFrame);
    let error = client(&fake, Duration::from_secs(60))
        .hardware_uuid()
        .unwrap_err();
    assert!(matches!(error, VdsmError::Protocol { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("Host.getHardwareInfo()") && text.contains("closed in the middle of a frame"),
        "{text}"
    );
}

#[test]
fn a_client_without_the_host_certificate_is_refused() {
    let fake = FakeVdsm::start(|_, _| Reply::Result(json!({})));
    let other = FakeVdsm::start(|_, _| Reply::Result(json!({})));
    // The other fake's PKI: a CA and certificate this vdsm does not know.
    let vdsm = Vdsm::new(Endpoint {
        address: fake.address.clone(),
        pki: PkiFiles::in_dir(&other.pki_dir()),
        timeout: Duration::from_secs(30),
    });
    let error = vdsm.hardware_uuid().unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("cannot talk to vdsm at {}", fake.address)),
        "{error}"
    );
    assert!(fake.calls().is_empty());
}

#[test]
fn nothing_listening_and_missing_pki_files_are_named() {
    let fake = FakeVdsm::start(|_, _| Reply::Silent);
    let free_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let vdsm = Vdsm::new(Endpoint {
        address: format!("127.0.0.1:{free_port}"),
        pki: PkiFiles::in_dir(&fake.pki_dir()),
        timeout: Duration::from_secs(5),
    });
    let error = vdsm.hardware_uuid().unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("cannot talk to vdsm at 127.0.0.1:{free_port}")),
        "{error}"
    );
    let vdsm = Vdsm::new(Endpoint {
        address: fake.address.clone(),
        pki: PkiFiles::in_dir(&fake.pki_dir().join("missing")),
        timeout: Duration::from_secs(5),
    });
    let error = vdsm.hardware_uuid().unwrap_err().to_string();
    assert!(
        error.starts_with("option 'vdsm_pki_dir': vdsm CA certificate")
            && error.contains("missing/certs/cacert.pem"),
        "{error}"
    );
}
