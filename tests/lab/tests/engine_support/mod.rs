//! Shared fixture for the fake-engine tests: a throw-away lab directory with its own CA and
//! server certificate (rcgen), ports the kernel chose, a seeded engine database, and a curl client.

#![allow(dead_code)]

use he_lab::config::{EngineRelease, LabConfig};
use he_lab::engine::db::EngineDb;
use he_lab::engine::{self, EngineServer};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// 3.6 on el6 (API v3 only).
pub fn release_36() -> EngineRelease {
    EngineRelease {
        version: "3.6.7.5".into(),
        os_version: "centos6".into(),
        api_versions: vec![3],
    }
}

/// 4.0 on el7 (API v3 and v4).
pub fn release_40() -> EngineRelease {
    EngineRelease {
        version: "4.0.6.3".into(),
        os_version: "centos7".into(),
        api_versions: vec![3, 4],
    }
}

/// 4.4 on el8 (API v3 and v4).
pub fn release_44() -> EngineRelease {
    EngineRelease {
        version: "4.4.10.7".into(),
        os_version: "centos8".into(),
        api_versions: vec![3, 4],
    }
}

/// A running fake engine in a temporary lab directory.
pub struct TestEngine {
    /// The lab.
    pub config: LabConfig,
    /// Admin password (from the seeded database).
    pub password: String,
    server: Option<EngineServer>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "he-lab-{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `pki/ca.pem`, `pki/engine.pem`, `pki/engine.key` for `fqdn`, 127.0.0.1, localhost.
pub fn write_pki(dir: &Path, fqdn: &str) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{fqdn}.12345"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec![fqdn.to_string(), "localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params.distinguished_name.push(DnType::CommonName, fqdn);
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    std::fs::write(pki.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(pki.join("engine.pem"), cert.pem()).unwrap();
    std::fs::write(pki.join("engine.key"), key.serialize_pem()).unwrap();
}

/// A lab configuration with fresh ids and ports 0 (the engine listens on ports the kernel chooses).
pub fn lab_config(dir: &Path, old: &EngineRelease, new: &EngineRelease) -> LabConfig {
    let config = serde_json::json!({
        "dir": dir,
        "profile": "el6-3.6:el7-4.0",
        "seed": 42,
        "old_engine": old,
        "new_engine": new,
        "fqdn": "engine.lab.local",
        "host_name": "host1.lab.local",
        "host_uuid": "4C4C4544-0034-5A10-8052-B7C04F4D3132",
        "host_id": 1,
        "vm_id": "a1b2c3d4-0000-4000-8000-000000000001",
        "sp_id": "5849b030-626e-47cb-ad90-3ce782d831b3",
        "sd_id": "9a8b7c6d-5e4f-4a3b-8c1d-0e9f8a7b6c5d",
        "sd_remote": "nfs.lab.local:/exports/he",
        "sd_capacity_bytes": 100u64 << 30,
        "engine_image_id": "2b8c9c3e-6c2d-4a8e-9d0a-5f1a2b3c4d5e",
        "engine_volume_id": "3ab9fff0-1111-4222-8333-444455556666",
        "engine_disk_size_bytes": 10u64 << 30,
        "https_port": 0,
        "http_port": 0,
        "admin_user": "admin@internal",
    });
    serde_json::from_value(config).expect("LabConfig fields changed; update the engine tests")
}

/// Writes a vdsm volume `.meta` (V5) plus an empty volume file.
pub fn write_volume(
    config: &LabConfig,
    image: &str,
    volume: &str,
    disk_type: &str,
    description: &str,
    capacity: u64,
) {
    let dir = config.sd_dir().join("images").join(image);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(volume), b"").unwrap();
    let meta = format!(
        "CAP={capacity}\nCTIME=1700000000\nDESCRIPTION={description}\nDISKTYPE={disk_type}\nDOMAIN={}\nFORMAT=RAW\nGEN=0\nIMAGE={image}\nLEGALITY=LEGAL\nPUUID=00000000-0000-0000-0000-000000000000\nSEQ=0\nTYPE=PREALLOCATED\nVOLTYPE=LEAF\nEOF\n",
        config.sd_id
    );
    std::fs::write(dir.join(format!("{volume}.meta")), meta).unwrap();
}

impl TestEngine {
    /// A lab whose running engine is `release` (its database seeded for it), with the engine
    /// disk and the hosted-engine infrastructure volumes on the storage domain.
    pub fn start(name: &str, release: EngineRelease) -> TestEngine {
        let dir = temp_dir(name);
        let mut config = lab_config(&dir, &release, &release_44());
        write_pki(&dir, &config.fqdn);
        std::fs::create_dir_all(config.sd_dir().join("dom_md")).unwrap();
        std::fs::write(config.sd_dir().join("dom_md/metadata"), "VERSION=5\nEOF\n").unwrap();
        write_volume(
            &config,
            &config.engine_image_id,
            &config.engine_volume_id,
            "HEVD",
            r#"{"DiskAlias":"he_virtio_disk","DiskDescription":"Hosted-Engine disk"}"#,
            config.engine_disk_size_bytes,
        );
        write_volume(
            &config,
            "11111111-aaaa-4aaa-8aaa-000000000001",
            "22222222-aaaa-4aaa-8aaa-000000000001",
            "HEMD",
            "hosted-engine.metadata",
            1 << 20,
        );
        write_volume(
            &config,
            "11111111-aaaa-4aaa-8aaa-000000000002",
            "22222222-aaaa-4aaa-8aaa-000000000002",
            "HESD",
            "hosted-engine.lockspace",
            1 << 20,
        );
        write_volume(
            &config,
            "11111111-aaaa-4aaa-8aaa-000000000003",
            "22222222-aaaa-4aaa-8aaa-000000000003",
            "OVFS",
            r#"{"Updated":true,"Disk Description":"OVF_STORE"}"#,
            1 << 27,
        );
        let mut db = EngineDb::seed(&config, &release);
        db.disk_create_seconds = 1.0;
        db.save(&config).unwrap();
        let password = db.admin_password.clone();
        let server = engine::serve(&config).expect("engine starts");
        config.https_port = server.https_addr.port();
        config.http_port = server.http_addr.port();
        TestEngine {
            config,
            password,
            server: Some(server),
        }
    }

    /// The database as persisted now.
    pub fn db(&self) -> EngineDb {
        EngineDb::load(&self.config).unwrap()
    }

    /// Replaces the persisted database.
    pub fn set_db(&self, db: &EngineDb) {
        db.save(&self.config).unwrap();
    }

    /// Switches the faults (writes `state/faults.json`).
    pub fn set_faults(&self, names: &[&str]) {
        std::fs::create_dir_all(self.config.state_dir()).unwrap();
        std::fs::write(
            self.config.faults_path(),
            serde_json::to_string(names).unwrap(),
        )
        .unwrap();
    }

    /// `https://127.0.0.1:<port>` + path.
    pub fn https(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.config.https_port)
    }

    /// `http://127.0.0.1:<port>` + path.
    pub fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.config.http_port)
    }

    /// CA file for `curl --cacert`.
    pub fn ca_file(&self) -> PathBuf {
        self.config.pki_dir().join("ca.pem")
    }

    /// `curl --cacert <ca>` with `args`; returns the parsed reply.
    pub fn curl(&self, args: &[&str]) -> CurlReply {
        let ca = self.ca_file();
        let output = Command::new("curl")
            .args(["-sS", "-i", "--max-time", "30", "-H", "Expect:", "--cacert"])
            .arg(&ca)
            .args(args)
            .output()
            .expect("curl runs");
        CurlReply::parse(&output.stdout, output.status.code().unwrap_or(-1))
    }

    /// Stops the server (frees the ports).
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.config.dir);
    }
}

/// What curl got back.
#[derive(Debug, Clone)]
pub struct CurlReply {
    /// curl's exit code (0 = transfer fine; 52/56 = connection dropped).
    pub exit_code: i32,
    /// HTTP status (0 when none).
    pub status: u16,
    /// Header lines (name lowercased, value).
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl CurlReply {
    fn parse(raw: &[u8], exit_code: i32) -> CurlReply {
        let text = String::from_utf8_lossy(raw).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .map(|(h, b)| (h.to_string(), b.to_string()))
            .unwrap_or((String::new(), text.clone()));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
            .collect();
        CurlReply {
            exit_code,
            status,
            headers,
            body,
        }
    }

    /// The first header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as XML.
    pub fn xml(&self) -> he_lab::engine::xml::Element {
        he_lab::engine::xml::Element::parse(&self.body)
            .unwrap_or_else(|e| panic!("not XML ({e}): {}", self.body))
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Texts of `<tag>` children of every item in a collection element.
pub fn item_texts(collection: &he_lab::engine::xml::Element, tag: &str) -> Vec<String> {
    collection
        .children
        .iter()
        .filter_map(|item| item.child_text(tag).map(str::to_string))
        .collect()
}
