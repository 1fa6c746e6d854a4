//! A throwaway HTTPS engine for the engine modules' tests: just enough of the v3 and v4 REST
//! API (engine-api.md shapes) to test TLS pinning, login, retries and faults without the lab,
//! and a log of every request the module sent.
#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const PASSWORD: &str = "s3cr3t-Pa55word";
pub const SD_ID: &str = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d";
pub const THIS_HOST_UUID: &str = "4C4C4544-0042-3010-8056-B4C04F4A4E31";

/// How the fake engine behaves.
#[derive(Clone)]
pub struct Profile {
    /// Serve v3 only (engine 3.6: no SSO).
    pub v3: bool,
    /// This host is SPM (else host2 is).
    pub this_host_spm: bool,
    /// The first N API calls answer 503 or drop the connection (alternating).
    pub fail_first: usize,
    /// Every API call is delayed this long.
    pub delay: Option<Duration>,
    /// Free bytes on the hosted-engine storage domain.
    pub available_bytes: u64,
    /// The SSO token stops being valid at this API call (v4 clients must log in again).
    pub expire_token_at_call: Option<usize>,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            v3: false,
            this_host_spm: true,
            fail_first: 0,
            delay: None,
            available_bytes: 50 << 30,
            expire_token_at_call: None,
        }
    }
}

/// One request as the engine received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    api_calls: usize,
    tokens_issued: usize,
    token_expired: bool,
    disks: Vec<(String, String, u64, u32)>, // id, name, size, polls
}

/// A running fake engine on 127.0.0.1.
pub struct FakeEngine {
    pub port: u16,
    pub ca_pem: String,
    state: Arc<Mutex<State>>,
}

impl FakeEngine {
    pub fn start(profile: Profile) -> FakeEngine {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "fake-engine.example.com.51234");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let ca_pem = ca.pem();
        let (shared, pem) = (state.clone(), ca_pem.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, state, profile, pem) =
                    (config.clone(), shared.clone(), profile.clone(), pem.clone());
                std::thread::spawn(move || serve(stream, config, &state, &profile, &pem));
            }
        });
        FakeEngine {
            port,
            ca_pem,
            state,
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/ovirt-engine", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

fn serve(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    state: &Mutex<State>,
    profile: &Profile,
    ca_pem: &str,
) {
    let connection = rustls::ServerConnection::new(config).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let Some(request) = read_request(&mut tls) else {
        return;
    };
    let answer = {
        let mut state = state.lock().unwrap();
        state.seen.push(request.clone());
        respond(&request, &mut state, profile, ca_pem)
    };
    let Some((status, content_type, extra, body)) = answer else {
        return;
    }; // reset
    if request.path.starts_with("/ovirt-engine/api") {
        if let Some(delay) = profile.delay {
            std::thread::sleep(delay);
        }
    }
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (key, value) in extra {
        head.push_str(&format!("{key}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = tls.write_all(head.as_bytes());
    let _ = tls.write_all(body.as_bytes());
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn read_request(tls: &mut impl Read) -> Option<Seen> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let header_end = loop {
        let read = tls.read(&mut buffer).ok()?;
        if read == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..read]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while data.len() < header_end + length {
        let read = tls.read(&mut buffer).ok()?;
        if read == 0 {
            break;
        }
        data.extend_from_slice(&buffer[..read]);
    }
    let body = String::from_utf8_lossy(&data[header_end..]).into_owned();
    Some(Seen {
        method,
        path,
        headers,
        body,
    })
}

type Answer = Option<(u16, &'static str, Vec<(String, String)>, String)>;

fn xml(status: u16, body: String) -> Answer {
    Some((status, "application/xml", vec![], body))
}

fn respond(request: &Seen, state: &mut State, profile: &Profile, ca_pem: &str) -> Answer {
    let path = request.path.as_str();
    if path.starts_with("/ovirt-engine/services/pki-resource") {
        return Some((
            200,
            "application/x-x509-ca-cert",
            vec![],
            ca_pem.to_string(),
        ));
    }
    if path == "/ovirt-engine/sso/oauth/token" {
        if profile.v3 {
            return Some((
                404,
                "text/html",
                vec![],
                "<html><head><title>Not Found</title></head></html>".into(),
            ));
        }
        if request.body.contains(&format!("password={}", PASSWORD)) {
            state.tokens_issued += 1;
            state.token_expired = false;
            let token = format!("TOKEN-{}", state.tokens_issued);
            let body = format!(
                r#"{{"access_token":"{token}","scope":"ovirt-app-api","exp":"9223372036854775807","token_type":"bearer"}}"#
            );
            return Some((200, "application/json", vec![], body));
        }
        return Some((400, "application/json", vec![], r#"{"error_code":"access_denied","error":"Cannot authenticate user 'admin@internal': The username or password is incorrect."}"#.into()));
    }
    if path == "/ovirt-engine/services/sso-logout" {
        return Some((200, "application/json", vec![], "{}".into()));
    }
    let Some(api) = path.strip_prefix("/ovirt-engine/api") else {
        return Some((404, "text/html", vec![], "<html/>".into()));
    };
    state.api_calls += 1;
    if state.api_calls <= profile.fail_first {
        return if state.api_calls % 2 == 1 {
            Some((
                503,
                "text/html",
                vec![],
                "<html><head><title>503 Service Unavailable</title></head></html>".into(),
            ))
        } else {
            None
        };
    }
    let mut extra = vec![];
    if profile.v3 {
        let basic = format!(
            "Basic {}",
            base64_encode(&format!("admin@internal:{PASSWORD}"))
        );
        let has_session = request
            .header("Cookie")
            .is_some_and(|c| c.contains("JSESSIONID=S1"));
        if !has_session && request.header("Authorization") != Some(basic.as_str()) {
            return Some((
                401,
                "text/html",
                vec![("WWW-Authenticate".into(), "Basic realm=\"RESTAPI\"".into())],
                "<html><head><title>Unauthorized</title></head></html>".into(),
            ));
        }
        if request.header("Prefer") == Some("persistent-auth") {
            extra.push(("JSESSIONID".to_string(), "S1".to_string()));
        }
    } else {
        if profile.expire_token_at_call == Some(state.api_calls) {
            state.token_expired = true;
        }
        let valid = format!("Bearer TOKEN-{}", state.tokens_issued);
        if state.token_expired
            || request.header("Authorization") != Some(valid.as_str())
            || request.header("Version") != Some("4")
        {
            return Some((401, "text/html", vec![], "<html/>".into()));
        }
    }
    let v3 = profile.v3;
    let status = |state: &str| {
        if v3 {
            format!("<status><state>{state}</state></status>")
        } else {
            format!("<status>{state}</status>")
        }
    };
    let version = |major: u32, minor: u32| {
        if v3 {
            format!("<version major=\"{major}\" minor=\"{minor}\"/>")
        } else {
            format!("<version><major>{major}</major><minor>{minor}</minor></version>")
        }
    };
    let (major, minor) = if v3 { (3, 6) } else { (4, 3) };
    let body = match (request.method.as_str(), api) {
        ("GET", "") => format!("<api><product_info><name>oVirt Engine</name><vendor>ovirt.org</vendor>{}{}</product_info></api>",
            if v3 { "<version major=\"3\" minor=\"6\" build=\"7\" revision=\"0\"/>".to_string() } else { "<version><build>10</build><full_version>4.3.10.4-1.el7</full_version><major>4</major><minor>3</minor><revision>4</revision></version>".to_string() },
            if v3 { "<full_version>3.6.7.5-1.el7.centos</full_version>" } else { "" }),
        ("GET", "/hosts") => {
            let spm = |is: bool| if is { "spm" } else { "none" };
            format!("<hosts><host id=\"H1\"><name>host1</name>{}<spm><priority>5</priority>{}</spm><hardware_information><uuid>{THIS_HOST_UUID}</uuid></hardware_information></host>\
                     <host id=\"H2\"><name>host2</name>{}<spm><priority>5</priority>{}</spm><hardware_information><uuid>11111111-2222-3333-4444-555555555555</uuid></hardware_information></host></hosts>",
                status("up"), status(spm(profile.this_host_spm)), status("up"), status(spm(!profile.this_host_spm)))
        }
        ("GET", "/datacenters") => format!("<data_centers><data_center id=\"D1\"><name>Default</name>{}{}</data_center></data_centers>", version(major, minor), status("up")),
        ("GET", "/clusters") => format!("<clusters><cluster id=\"C1\"><name>Default</name>{}</cluster></clusters>", version(major, minor)),
        ("GET", "/domains") => "<domains><domain id=\"696E7465726E616C2D617574687A\"><name>internal-authz</name></domain></domains>".into(),
        ("GET", p) if p == format!("/storagedomains/{SD_ID}") => format!(
            "<storage_domain id=\"{SD_ID}\"><name>hosted_storage</name><data_centers><data_center id=\"D1\"/></data_centers><available>{}</available><used>10737418240</used><committed>53687091200</committed></storage_domain>",
            profile.available_bytes),
        ("GET", p) if p.starts_with("/disks?search=") => {
            let wanted = p.rsplit("%3D").next().unwrap_or("");
            let found: String = state.disks.iter().filter(|(_, name, _, _)| name == wanted)
                .map(|(id, name, size, _)| disk_xml(id, name, *size, &status("ok"))).collect();
            format!("<disks>{found}</disks>")
        }
        ("POST", "/disks") => {
            let name = between(&request.body, "<name>", "</name>").to_string();
            let size: u64 = between(&request.body, "<provisioned_size>", "</provisioned_size>").parse().unwrap_or(0);
            if v3 && !request.body.contains("<interface>") {
                return xml(400, "<fault><reason>Incomplete parameters</reason><detail>Disk [interface] required for add</detail></fault>".into());
            }
            if size > profile.available_bytes {
                return xml(400, "<fault><reason>Operation Failed</reason><detail>[Cannot add Virtual Disk. Low disk space on Storage Domain hosted_storage.]</detail></fault>".into());
            }
            let id = format!("a0000000-0000-0000-0000-00000000000{}", state.disks.len() + 1);
            state.disks.push((id.clone(), name.clone(), size, 0));
            return xml(202, disk_xml(&id, &name, size, &status("locked")));
        }
        ("GET", p) if p.starts_with("/disks/") => {
            let id = &p["/disks/".len()..];
            let Some(disk) = state.disks.iter_mut().find(|(known, ..)| known == id) else {
                return Some((404, "application/xml", vec![], String::new()));
            };
            disk.3 += 1;
            let (id, name, size, polls) = disk.clone();
            disk_xml(&id, &name, size, &status(if polls >= 2 { "ok" } else { "locked" }))
        }
        _ => return Some((404, "application/xml", vec![], String::new())),
    };
    let mut answer = xml(200, body)?;
    answer.2 = extra;
    Some(answer)
}

fn disk_xml(id: &str, name: &str, size: u64, status: &str) -> String {
    format!("<disk id=\"{id}\"><name>{name}</name><alias>{name}</alias><description>{name}</description><image_id>b000000{}</image_id><provisioned_size>{size}</provisioned_size>{status}<format>raw</format><storage_domains><storage_domain id=\"{SD_ID}\"/></storage_domains></disk>", &id[id.len() - 1..])
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    text.split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map_or("", |(inside, _)| inside)
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
