//! The `hosted-engine` and `vdsm-client` wrappers answer like the real tools: output shapes,
//! error texts and exit codes (host-formats.md sections 1, 4, 5).

mod lab_support;

use lab_support::{text, Lab};
use serde_json::Value;
use std::time::Duration;

const BLANK: &str = "00000000-0000-0000-0000-000000000000";

#[test]
fn vm_status_json_is_one_line_with_host_ids_and_global_maintenance() {
    let lab = Lab::init("vmstatus", 31, &[]);
    let output = lab.tool("hosted-engine", &["--vm-status", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    assert_eq!(stdout.lines().count(), 1);
    assert!(
        stdout.starts_with("{\"1\": {\"host-id\": 1, \"host-ts\": "),
        "{stdout}"
    );
    let status: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(status["global_maintenance"], true);
    assert_eq!(
        status["1"]["engine-status"]["reason"],
        "vm not running on this host"
    );
    assert_eq!(status["1"]["hostname"], "host1.lab.local");
    assert_eq!(status["1"]["crc32"].as_str().unwrap().len(), 8);
    assert_eq!(status["2"]["live-data"], true);
    // Maintenance modes: none, then global again; bad and missing modes fail with rc 1.
    assert!(lab
        .tool("hosted-engine", &["--set-maintenance", "--mode=none"])
        .status
        .success());
    let status: Value =
        serde_json::from_slice(&lab.tool("hosted-engine", &["--vm-status", "--json"]).stdout)
            .unwrap();
    assert_eq!(status["global_maintenance"], false);
    let bad = lab.tool("hosted-engine", &["--set-maintenance", "--mode=sideways"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(text(&bad.stdout), "Invalid value 'sideways' for --mode\n");
    let missing = lab.tool("hosted-engine", &["--set-maintenance"]);
    assert_eq!(
        text(&missing.stdout),
        "You must specify a maintenance mode with --mode\n"
    );
    assert!(lab
        .tool("hosted-engine", &["--set-maintenance", "--mode=global"])
        .status
        .success());
    let plain = text(&lab.tool("hosted-engine", &["--vm-status"]).stdout);
    assert!(plain.contains("!! Cluster is in GLOBAL MAINTENANCE mode !!"));
    assert!(plain.contains("--== Host host1.lab.local (id: 1) status ==--"));
}

#[test]
fn hosted_engine_usage_and_vm_verbs() {
    let lab = Lab::init("he-verbs", 32, &[]);
    let none = lab.tool("hosted-engine", &[]);
    assert_eq!(none.status.code(), Some(1));
    assert!(text(&none.stderr).starts_with("Usage: /usr/sbin/hosted-engine"));
    let invalid = lab.tool("hosted-engine", &["--frobnicate"]);
    assert_eq!(invalid.status.code(), Some(1));
    assert!(text(&invalid.stderr).starts_with("Invalid option '--frobnicate'"));
    // vdsm (the daemon) is down: the VM cannot be created.
    let start = lab.tool("hosted-engine", &["--vm-start"]);
    assert_eq!(start.status.code(), Some(1));
    assert_eq!(text(&start.stdout), "VM failed to launch\n");
    let shutdown = lab.tool("hosted-engine", &["--vm-shutdown"]);
    assert_eq!(shutdown.status.code(), Some(1));
    assert!(text(&shutdown.stderr).starts_with("Virtual machine does not exist"));
    lab.up();
    let again = lab.tool("hosted-engine", &["--vm-start"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(text(&again.stdout), "VM exists and its status is Up\n");
    let local = lab.tool("hosted-engine", &["--set-maintenance", "--mode=local"]);
    assert_eq!(local.status.code(), Some(1));
    assert!(text(&local.stderr).starts_with("Unable to enter local maintenance mode"));
    let shutdown = lab.tool("hosted-engine", &["--vm-shutdown"]);
    assert_eq!(shutdown.status.code(), Some(0));
    assert_eq!(text(&shutdown.stdout), "");
    lab.wait_vm_status("Down", Duration::from_secs(10));
    let start = lab.tool("hosted-engine", &["--vm-start"]);
    assert_eq!(text(&start.stdout), "VM in WaitForLaunch\n");
    lab.wait_vm_status("Up", Duration::from_secs(10));
    assert!(lab
        .tool("hosted-engine", &["--vm-poweroff"])
        .status
        .success());
    assert_eq!(lab.json(&["status", "--json"])["vm_state"], "down");
}

fn vdsm(lab: &Lab, args: &[&str]) -> (i32, String, String) {
    let output = lab.tool("vdsm-client", args);
    (
        output.status.code().unwrap(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

#[test]
fn vdsm_client_storage_verbs_through_the_lab_vdsm() {
    let lab = Lab::init("vdsm", 33, &["--profile", "el7-4.3:el8-4.4"]);
    let (code, _, err) = vdsm(&lab, &["Host", "getHardwareInfo"]);
    assert_eq!(code, 1, "vdsm is down: {err}");
    assert!(
        err.starts_with("vdsm-client: Connection to ")
            && err.contains("with use_tls=True, timeout=60 failed: [Errno 111] Connection refused"),
        "{err}"
    );
    lab.start_daemon();
    let sd = lab.he_conf("sdUUID");
    let image = lab.he_conf("vm_disk_id");
    let volume = lab.he_conf("vm_disk_vol_id");
    let (code, out, _) = vdsm(
        &lab,
        &[
            "StorageDomain",
            "getImages",
            &format!("storagedomainID={sd}"),
        ],
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("[\n    \""), "{out}");
    let images: Vec<String> = serde_json::from_str(&out).unwrap();
    assert!(images.contains(&image) && images.len() >= 6);
    let ids = [
        format!("storagepoolID={BLANK}"),
        format!("storagedomainID={sd}"),
        format!("imageID={image}"),
        format!("volumeID={volume}"),
    ];
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (_, out, _) = vdsm(&lab, &[&["Image", "prepare"][..], &ids].concat());
    let prepared: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(prepared.as_object().unwrap().len(), 1);
    // The host's path: under the domain's mount, not the export behind it.
    assert_eq!(
        prepared["path"].as_str().unwrap(),
        lab.engine_volume().to_str().unwrap().replace(
            "/nfs-server/exports/hosted_engine/",
            "/rhev/data-center/mnt/nfs.lab.local:_exports_hosted__engine/"
        )
    );
    let (_, out, _) = vdsm(&lab, &[&["Volume", "getInfo"][..], &ids].concat());
    assert!(
        out.contains("\n    \"apparentsize\": \"67108864\",\n"),
        "{out}"
    );
    let info: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["capacity"], "67108864");
    assert_eq!(info["format"], "RAW");
    assert_eq!(info["status"], "OK");
    assert_eq!(info["generation"], 0);
    let description: Value = serde_json::from_str(info["description"].as_str().unwrap()).unwrap();
    assert_eq!(description["DiskAlias"], "he_virtio_disk");
    let (_, out, _) = vdsm(&lab, &["Image", "getVolumes", ids[0], ids[1], ids[2]]);
    assert_eq!(
        serde_json::from_str::<Vec<String>>(&out).unwrap(),
        vec![volume.clone()]
    );
    let (_, out, _) = vdsm(&lab, &["StorageDomain", "getInfo", ids[1]]);
    let domain: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(domain["version"], "5");
    // Extend, an SPM verb: the blank pool of hosted-engine.conf is refused as vdsm's
    // HSM.getPool refuses it; the domain's pool gives a task id, then Task getStatus until
    // finished; capacity follows.
    let new_size = format!("newSize={}", 80u64 << 20);
    let (code, _, err) = vdsm(
        &lab,
        &[&["Volume", "extendSize"][..], &ids, &[new_size.as_str()]].concat(),
    );
    assert_ne!(code, 0);
    assert!(err.contains("Unknown pool id, pool not connected"), "{err}");
    let pool = format!("storagepoolID={}", domain["pool"][0].as_str().unwrap());
    let (code, out, _) = vdsm(
        &lab,
        &[
            &["Volume", "extendSize", pool.as_str()][..],
            &ids[1..],
            &[new_size.as_str()],
        ]
        .concat(),
    );
    assert_eq!(code, 0);
    let task: String = serde_json::from_str(&out).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, out, _) = vdsm(&lab, &["Task", "getStatus", &format!("taskID={task}")]);
        let status: Value = serde_json::from_str(&out).unwrap();
        if status["taskState"] == "finished" {
            assert_eq!(status["taskResult"], "success");
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, out, _) = vdsm(&lab, &[&["Volume", "getInfo"][..], &ids].concat());
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["capacity"],
        (80u64 << 20).to_string()
    );
    let (_, out, _) = vdsm(&lab, &["Host", "getHardwareInfo"]);
    let hardware: Value = serde_json::from_str(&out).unwrap();
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.dir.join("lab.json")).unwrap()).unwrap();
    assert_eq!(hardware["systemUUID"], config["host_uuid"]);
}

#[test]
fn vdsm_client_errors_are_the_real_ones() {
    let lab = Lab::init("vdsm-errors", 34, &["--profile", "el7-4.3:el8-4.4"]);
    lab.start_daemon();
    let (code, _, err) = vdsm(&lab, &["Image", "prepare", "storagepoolID=x"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "vdsm-client: Command Image.prepare with args {'storagepoolID': 'x'} failed:\n(code=-32603, message=prepare() missing 1 required positional argument: 'storagedomainID')\n"
    );
    let (code, _, err) = vdsm(&lab, &["VM", "getStats", "vmID=nope"]);
    assert_eq!(code, 1);
    assert!(
        err.ends_with(
            "failed:\n(code=1, message=Virtual machine does not exist: {'vmId': u'nope'})\n"
        ),
        "{err}"
    );
    let (code, _, err) = vdsm(
        &lab,
        &["StorageDomain", "getImages", "storagedomainID=nope"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("(code=358, message=Storage domain does not exist: ('nope',))"),
        "{err}"
    );
    let (code, _, err) = vdsm(&lab, &["Task", "getStatus", "taskID=t1"]);
    assert_eq!(code, 1);
    assert!(err.contains("(code=401, message=Task id unknown: ('t1',))"));
    let (code, _, err) = vdsm(&lab, &["Image", "prepare", "storagepoolID"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("usage: vdsm-client")
            && err.ends_with("vdsm-client: error: Invalid param 'storagepoolID'\n")
    );
    let (code, _, err) = vdsm(&lab, &["Nothing", "here"]);
    assert_eq!(code, 2);
    assert!(err.contains("argument namespace: invalid choice: 'Nothing'"));
    let (code, _, err) = vdsm(&lab, &["Volume", "shrink"]);
    assert_eq!(code, 2);
    assert!(err.contains("vdsm-client Volume: error: argument method: invalid choice: 'shrink'"));
    let (code, _, err) = vdsm(&lab, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("the following arguments are required: namespace"));
}

#[test]
fn a_4_0_host_has_no_vdsm_client() {
    let lab = Lab::init("vdsm-40", 35, &[]);
    assert!(lab.dir.join("bin/hosted-engine").exists());
    assert!(!lab.dir.join("bin/vdsm-client").exists());
    let output = lab.he_lab(&["shim", "vdsm-client", "Host", "getHardwareInfo"]);
    assert_eq!(output.status.code(), Some(127));
    assert!(text(&output.stderr).contains("vdsm 4.18.21 has no vdsm-client"));
}
