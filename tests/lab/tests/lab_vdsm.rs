//! Fidelity of the lab's vdsm endpoint: literal STOMP frames as vdsm's own clients write them
//! (4.18 `jsonrpcvdscli`, 4.40 `vdsm.client`), over TLS with the host's vdsm certificate, and
//! the frames vdsm sends back, byte for byte where vdsm fixes them (`yajsonrpc`).

mod lab_support;

use lab_support::Lab;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// TLS to `address` as a client presenting the certificate under `pki` (laid out like
/// /etc/pki/vdsm), trusting its CA, checking the server is the lab's host.
fn connect(address: &str, pki: &Path) -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(pki.join("certs/cacert.pem")).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let chain: Vec<_> = CertificateDer::pem_file_iter(pki.join("certs/vdsmcert.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(pki.join("keys/vdsmkey.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let name = ServerName::try_from("host1.lab.local").unwrap();
    let tcp = TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    rustls::StreamOwned::new(
        rustls::ClientConnection::new(Arc::new(config), name).unwrap(),
        tcp,
    )
}

/// Reads until `count` NUL-terminated frames arrived (heart-beat newlines kept).
fn read_frames(stream: &mut Tls, count: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 8192];
    while bytes.iter().filter(|b| **b == 0).count() < count {
        let read = stream.read(&mut buffer).unwrap();
        assert!(
            read > 0,
            "vdsm closed after {:?}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.extend_from_slice(&buffer[..read]);
    }
    bytes
}

fn send_frame(command: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut text = format!("{command}\n");
    for (key, value) in headers {
        text.push_str(&format!("{key}:{value}\n"));
    }
    text.push_str(&format!("content-length:{}\n\n{body}\0", body.len()));
    text.into_bytes()
}

/// A started lab of `profile` and its vdsm address and PKI directory.
fn lab(name: &str, seed: u64, profile: &str) -> (Lab, String, std::path::PathBuf) {
    let lab = Lab::init(name, seed, &["--profile", profile]);
    let address = lab.start_daemon();
    let pki = lab.path("vdsm_pki_dir");
    (lab, address, pki)
}

#[test]
fn vdsm_4_40_client_frames_get_vdsm_s_answers() {
    let (lab, address, pki) = lab("stomp44", 61, "el7-4.3:el8-4.4");
    let status = lab.json(&["status", "--json"]);
    assert_eq!(status["vdsm_version"], "4.40.90");
    assert!(pki.join("keys/vdsmkey.pem").is_file());
    let mut stream = connect(&address, &pki);
    // vdsm.client.connect -> stompclient.StandAloneRpcClient: heart-beat 0*(1+0.2), 30000*(1-0.2).
    stream
        .write_all(b"CONNECT\naccept-version:1.2\nheart-beat:0,24000\n\n\0")
        .unwrap();
    assert_eq!(
        read_frames(&mut stream, 1),
        b"CONNECTED\nversion:1.2\nheart-beat:24000,0\n\n\0"
    );
    let queue = "6c1f5b0e-2f0c-4a53-9a0e-0b3f8f6c9d11";
    let subscription = "0f9e8d7c-6b5a-4938-8271-605f4e3d2c1b";
    stream
        .write_all(
            format!("SUBSCRIBE\ndestination:{queue}\nack:auto\nid:{subscription}\n\n\0").as_bytes(),
        )
        .unwrap();
    let request = r#"{"jsonrpc": "2.0", "method": "Host.getHardwareInfo", "params": {}, "id": "5e1d3c6a-3b1f-4f4b-9d55-1d1c7e3e6a01"}"#;
    stream
        .write_all(&send_frame(
            "SEND",
            &[
                ("destination", "jms.topic.vdsm_requests"),
                ("content-type", "application/json"),
                ("reply-to", queue),
            ],
            request,
        ))
        .unwrap();
    let answer = read_frames(&mut stream, 1);
    let head = format!(
        "MESSAGE\ndestination:{queue}\ncontent-type:application/json\nsubscription:{subscription}\ncontent-length:"
    );
    assert!(
        answer.starts_with(head.as_bytes()),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let text = String::from_utf8(answer).unwrap();
    let (length, rest) = text[head.len()..].split_once("\n\n").unwrap();
    let body = rest.strip_suffix('\0').unwrap();
    assert_eq!(length.parse::<usize>().unwrap(), body.len());
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], "5e1d3c6a-3b1f-4f4b-9d55-1d1c7e3e6a01");
    assert_eq!(body["result"]["systemProductName"], "KVM");

    // vdsm's error object for a bad call; the 3.5-era destination is gone in 4.40.
    let request =
        r#"{"jsonrpc": "2.0", "method": "Task.getStatus", "params": {"taskID": "t1"}, "id": "2"}"#;
    stream
        .write_all(&send_frame(
            "SEND",
            &[
                ("destination", "jms.topic.vdsm_requests"),
                ("reply-to", queue),
            ],
            request,
        ))
        .unwrap();
    let answer = String::from_utf8(read_frames(&mut stream, 1)).unwrap();
    let body: Value =
        serde_json::from_str(answer.split_once("\n\n").unwrap().1.trim_end_matches('\0')).unwrap();
    assert_eq!(
        body["error"],
        json!({"code": 401, "message": "Task id unknown: ('t1',)"})
    );
    stream
        .write_all(&send_frame(
            "SEND",
            &[("destination", "/queue/_local/vdsm/requests")],
            request,
        ))
        .unwrap();
    assert_eq!(
        read_frames(&mut stream, 1),
        b"ERROR\ncontent-length:26\n\nSubscription not available\0"
    );
    stream.write_all(b"SUBSCRIBE\ndestination:x\n\n\0").unwrap();
    assert_eq!(
        read_frames(&mut stream, 1),
        b"ERROR\ncontent-length:45\n\nMissing destination or subscription id header\0"
    );
    stream.write_all(b"DISCONNECT\nreceipt:77\n\n\0").unwrap();
    assert_eq!(read_frames(&mut stream, 1), b"RECEIPT\nreceipt-id:77\n\n\0");
}

#[test]
fn a_client_slow_in_its_handshake_is_still_served() {
    let (_lab, address, pki) = lab("stompslow", 64, "el7-4.3:el8-4.4");
    // Connected but silent (no ClientHello yet: rustls does no I/O before the first write)
    // for longer than the server's poll interval, as a stopped module is.
    let mut stream = connect(&address, &pki);
    std::thread::sleep(Duration::from_millis(500));
    stream
        .write_all(b"CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0")
        .unwrap();
    assert_eq!(
        read_frames(&mut stream, 1),
        b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0"
    );
}

#[test]
fn vdsm_4_18_client_frames_and_the_legacy_destination() {
    let (_lab, address, pki) = lab("stomp40", 62, "el6-3.6:el7-4.0");
    let mut stream = connect(&address, &pki);
    // jsonrpcvdscli (4.17/4.18): heart-beat 0,5000; vdsm 4.18 answers "%d,0" % cy.
    stream
        .write_all(b"CONNECT\naccept-version:1.2\nheart-beat:0,5000\n\n\0")
        .unwrap();
    assert_eq!(
        read_frames(&mut stream, 1),
        b"CONNECTED\nversion:1.2\nheart-beat:5000,0\n\n\0"
    );
    stream
        .write_all(b"SUBSCRIBE\ndestination:/queue/_local/vdsm/reponses\nack:auto\nid:legacy\n\n\0")
        .unwrap();
    let request =
        r#"{"jsonrpc": "2.0", "method": "Host.getHardwareInfo", "params": {}, "id": "7"}"#;
    stream
        .write_all(&send_frame(
            "SEND",
            &[("destination", "/queue/_local/vdsm/requests")],
            request,
        ))
        .unwrap();
    let answer = String::from_utf8(read_frames(&mut stream, 1)).unwrap();
    assert!(
        answer.starts_with("MESSAGE\ndestination:/queue/_local/vdsm/reponses\ncontent-type:application/json\nsubscription:legacy\ncontent-length:"),
        "{answer}"
    );
}

#[test]
fn vdsm_refuses_other_versions_and_clients_without_its_certificate() {
    let (lab, address, pki) = lab("stomprefuse", 63, "el7-4.3:el8-4.4");
    let mut stream = connect(&address, &pki);
    stream
        .write_all(b"CONNECT\naccept-version:1.1\n\n\0")
        .unwrap();
    assert_eq!(
        read_frames(&mut stream, 1),
        b"ERROR\ncontent-length:19\n\nVersion unsupported\0"
    );
    // The engine's own certificate is from the same CA but the key is not the host's:
    // a client with no certificate at all is refused in the handshake.
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(pki.join("certs/cacert.pem")).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(&address).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut anonymous = rustls::StreamOwned::new(
        rustls::ClientConnection::new(
            Arc::new(config),
            ServerName::try_from("host1.lab.local").unwrap(),
        )
        .unwrap(),
        tcp,
    );
    let _ = anonymous.write_all(b"CONNECT\naccept-version:1.2\n\n\0");
    let mut buffer = [0u8; 64];
    let read = anonymous.read(&mut buffer);
    assert!(
        !matches!(read, Ok(n) if n > 0),
        "a client without a certificate got an answer"
    );
    drop(lab);
}
