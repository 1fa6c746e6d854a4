//! The fake engine speaks REST v4 with SSO like a 4.x engine (engine-api.md part 1).

mod engine_support;

use engine_support::{item_texts, release_36, release_44, TestEngine};

const XML: &str = "Accept: application/xml";

fn token(engine: &TestEngine) -> String {
    let reply = engine.curl(&[
        "-H",
        "Accept: application/json",
        "--data-urlencode",
        "grant_type=password",
        "--data-urlencode",
        "scope=ovirt-app-api",
        "--data-urlencode",
        "username=admin@internal",
        "--data-urlencode",
        &format!("password={}", engine.password),
        &engine.https("/ovirt-engine/sso/oauth/token"),
    ]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let json = reply.json();
    assert_eq!(json["token_type"], "bearer");
    json["access_token"].as_str().unwrap().to_string()
}

fn get(engine: &TestEngine, token: &str, path: &str) -> engine_support::CurlReply {
    engine.curl(&[
        "-H",
        XML,
        "-H",
        "Version: 4",
        "-H",
        &format!("Authorization: Bearer {token}"),
        &engine.https(&format!("/ovirt-engine/api{path}")),
    ])
}

#[test]
fn sso_token_errors_have_the_engine_shape() {
    let engine = TestEngine::start("v4-sso", release_44());
    let bad = engine.curl(&[
        "-H",
        "Accept: application/json",
        "-d",
        "grant_type=password&scope=ovirt-app-api&username=admin%40internal&password=wrong",
        &engine.https("/ovirt-engine/sso/oauth/token"),
    ]);
    assert_eq!(bad.status, 400);
    let json = bad.json();
    assert_eq!(json["error_code"], "access_denied");
    assert!(json["error"]
        .as_str()
        .unwrap()
        .starts_with("Cannot authenticate user 'admin@internal'"));
    let no_accept = engine.curl(&[
        "-d",
        "grant_type=password&scope=ovirt-app-api&username=admin%40internal&password=x",
        &engine.https("/ovirt-engine/sso/oauth/token"),
    ]);
    assert_eq!(
        no_accept.json()["error"],
        "Missing parameter: 'Accept Header'"
    );
    let missing = engine.curl(&[
        "-H",
        "Accept: application/json",
        "-d",
        "grant_type=password&scope=ovirt-app-api",
        &engine.https("/ovirt-engine/sso/oauth/token"),
    ]);
    assert_eq!(missing.json()["error_code"], "invalid_request");
    assert_eq!(missing.json()["error"], "Missing parameter: 'username'");
}

#[test]
fn bearer_token_gives_the_v4_api_and_logout_revokes_it() {
    let engine = TestEngine::start("v4-api", release_44());
    let unauthenticated = engine.curl(&["-H", XML, &engine.https("/ovirt-engine/api")]);
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(
        unauthenticated.header("www-authenticate"),
        Some("Basic realm=\"RESTAPI\"")
    );
    assert_eq!(get(&engine, "not-a-token", "").status, 401);

    let token = token(&engine);
    let root = get(&engine, &token, "");
    assert_eq!(root.status, 200, "{}", root.body);
    assert!(root
        .header("content-type")
        .unwrap()
        .starts_with("application/xml"));
    let api = root.xml();
    let version = api.child("product_info").unwrap().child("version").unwrap();
    assert_eq!(version.child_text("major"), Some("4"));
    assert_eq!(version.child_text("minor"), Some("4"));
    assert_eq!(version.child_text("full_version"), Some("4.4.10.7-1.el8"));
    assert!(api
        .children
        .iter()
        .any(|c| c.name == "link" && c.attribute("rel") == Some("hosts")));

    // Without a Version header a 4.x engine answers v4.
    let default = engine.curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &engine.https("/ovirt-engine/api"),
    ]);
    let version = default.xml();
    let version = version
        .child("product_info")
        .unwrap()
        .child("version")
        .unwrap();
    assert_eq!(version.child_text("major"), Some("4"));

    let unsupported = engine.curl(&[
        "-H",
        "Version: 7",
        "-H",
        &format!("Authorization: Bearer {token}"),
        &engine.https("/ovirt-engine/api"),
    ]);
    assert_eq!(unsupported.status, 400);
    assert_eq!(unsupported.xml().name, "fault");

    let logout = engine.curl(&[
        "-H",
        "Accept: application/json",
        "-d",
        &format!("scope=ovirt-app-api&token={token}"),
        &engine.https("/ovirt-engine/services/sso-logout"),
    ]);
    assert_eq!(logout.status, 200);
    assert_eq!(logout.json(), serde_json::json!({}));
    assert_eq!(get(&engine, &token, "").status, 401);
}

#[test]
fn collections_have_the_v4_shapes() {
    let engine = TestEngine::start("v4-lists", release_44());
    let token = token(&engine);
    let config = &engine.config;

    let hosts = get(&engine, &token, "/hosts").xml();
    assert_eq!(hosts.name, "hosts");
    assert_eq!(hosts.children.len(), 3);
    let this = hosts
        .children
        .iter()
        .find(|h| {
            h.child("hardware_information").unwrap().child_text("uuid")
                == Some(config.host_uuid.as_str())
        })
        .expect("this host is listed by hardware uuid");
    assert_eq!(this.child_text("name"), Some("host1.lab.local"));
    assert_eq!(this.child_text("status"), Some("up"));
    assert_eq!(this.child("spm").unwrap().child_text("status"), Some("spm"));
    assert!(this.child("hosted_engine").is_none());
    let others: Vec<_> = hosts
        .children
        .iter()
        .filter(|h| h.attribute("id") != this.attribute("id"))
        .collect();
    assert!(others
        .iter()
        .all(|h| h.child("spm").unwrap().child_text("status") == Some("none")));

    let full = get(&engine, &token, "/hosts?all_content=true").xml();
    assert!(full
        .children
        .iter()
        .all(|h| h.child("hosted_engine").is_some()));
    let searched = get(&engine, &token, "/hosts?search=name%3Dhost1.lab.local").xml();
    assert_eq!(item_texts(&searched, "name"), vec!["host1.lab.local"]);
    let host_id = this.attribute("id").unwrap();
    let one = get(&engine, &token, &format!("/hosts/{host_id}"));
    assert_eq!(one.xml().name, "host");

    let dcs = get(&engine, &token, "/datacenters").xml();
    let dc = &dcs.children[0];
    assert_eq!(dc.attribute("id"), Some(config.sp_id.as_str()));
    assert_eq!(dc.child_text("status"), Some("up"));
    assert_eq!(dc.child("version").unwrap().child_text("major"), Some("4"));
    assert_eq!(dc.child("version").unwrap().child_text("minor"), Some("4"));

    let clusters = get(&engine, &token, "/clusters").xml();
    let cluster = &clusters.children[0];
    assert_eq!(
        cluster.child("data_center").unwrap().attribute("id"),
        Some(config.sp_id.as_str())
    );
    assert_eq!(
        cluster.child("version").unwrap().child_text("minor"),
        Some("4")
    );

    let sds = get(&engine, &token, "/storagedomains").xml();
    let sd = &sds.children[0];
    assert_eq!(sd.attribute("id"), Some(config.sd_id.as_str()));
    assert_eq!(sd.child_text("name"), Some("hosted_storage"));
    assert_eq!(
        sd.child_text("available"),
        Some((90u64 << 30).to_string().as_str())
    );
    assert_eq!(
        sd.child_text("used"),
        Some((10u64 << 30).to_string().as_str())
    );
    assert!(
        sd.child("status").is_none(),
        "attached domains have no top-level status"
    );
    assert_eq!(sd.child("storage").unwrap().child_text("type"), Some("nfs"));
    let attached = get(
        &engine,
        &token,
        &format!(
            "/datacenters/{}/storagedomains/{}",
            config.sp_id, config.sd_id
        ),
    )
    .xml();
    assert_eq!(attached.child_text("status"), Some("active"));

    let disks = get(&engine, &token, "/disks").xml();
    assert_eq!(item_texts(&disks, "alias"), vec!["he_virtio_disk"]);
    let disk = &disks.children[0];
    assert_eq!(disk.attribute("id"), Some(config.engine_image_id.as_str()));
    assert_eq!(
        disk.child_text("image_id"),
        Some(config.engine_volume_id.as_str())
    );
    assert_eq!(disk.child_text("status"), Some("ok"));
    let sd_disks = get(
        &engine,
        &token,
        &format!("/storagedomains/{}/disks", config.sd_id),
    )
    .xml();
    assert_eq!(sd_disks.children.len(), 1);

    let missing = get(
        &engine,
        &token,
        "/disks/00000000-0000-4000-8000-000000000000",
    );
    assert_eq!(missing.status, 404);
    assert!(missing.body.is_empty());
    assert_eq!(get(&engine, &token, "/nothing-here").status, 404);

    let domains = get(&engine, &token, "/domains").xml();
    assert_eq!(
        domains.children[0].attribute("id"),
        Some("696E7465726E616C2D617574687A")
    );
    assert_eq!(
        domains.children[0].child_text("name"),
        Some("internal-authz")
    );
}

#[test]
fn health_and_ca_over_http_and_https() {
    let engine = TestEngine::start("v4-services", release_44());
    for url in [
        engine.http("/ovirt-engine/services/health"),
        engine.https("/ovirt-engine/services/health"),
    ] {
        let reply = engine.curl(&[&url]);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "DB Up!Welcome to Health Status!");
    }
    let ca = engine.curl(&[&engine
        .http("/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA")]);
    assert_eq!(ca.status, 200);
    assert_eq!(
        ca.header("content-type"),
        Some("application/x-x509-ca-cert")
    );
    let strip = |pem: &str| {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    let file = std::fs::read_to_string(engine.ca_file()).unwrap();
    assert_eq!(strip(&ca.body), strip(&file));
    assert!(ca.body.starts_with("-----BEGIN CERTIFICATE-----\n"));
    // The CA it serves verifies the server: write it and use it with curl.
    let served = engine.config.dir.join("served-ca.pem");
    std::fs::write(&served, &ca.body).unwrap();
    let verified = std::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&served)
        .arg(engine.https("/ovirt-engine/services/health"))
        .output()
        .unwrap();
    assert!(verified.status.success());
    let bad = engine.curl(&[&engine.http("/ovirt-engine/services/pki-resource?resource=nope")]);
    assert_eq!(bad.status, 400);
    // The API is HTTPS only.
    assert_eq!(
        engine.curl(&[&engine.http("/ovirt-engine/api")]).status,
        404
    );
}

#[test]
fn a_36_engine_has_no_sso() {
    let engine = TestEngine::start("v4-on-36", release_36());
    let reply = engine.curl(&[
        "-H",
        "Accept: application/json",
        "-d",
        "grant_type=password&scope=ovirt-app-api&username=admin%40internal&password=x",
        &engine.https("/ovirt-engine/sso/oauth/token"),
    ]);
    assert_eq!(reply.status, 404);
}

#[test]
fn stop_frees_the_ports_and_no_database_means_no_engine() {
    let mut engine = TestEngine::start("v4-stop", release_44());
    std::fs::remove_file(engine.config.engine_db_path()).unwrap();
    let reply = engine.curl(&[&engine.http("/ovirt-engine/services/health")]);
    assert_eq!(reply.status, 503);
    engine.stop();
    let (https, http) = (engine.config.https_port, engine.config.http_port);
    assert!(std::net::TcpListener::bind(("127.0.0.1", https)).is_ok());
    assert!(std::net::TcpListener::bind(("127.0.0.1", http)).is_ok());
}

#[test]
fn attached_domain_lists_unregistered_disks_too() {
    let engine = TestEngine::start("v4-attached", release_44());
    let token = token(&engine);
    let config = &engine.config;
    engine_support::write_volume(
        config,
        "c0ffee00-0000-4000-8000-0000000000a1",
        "c0ffee00-0000-4000-8000-0000000000b1",
        "DATA",
        r#"{"DiskAlias":"virtio-disk0","DiskDescription":"x"}"#,
        1 << 30,
    );
    let path = format!(
        "/datacenters/{}/storagedomains/{}/disks?unregistered=true",
        config.sp_id, config.sd_id
    );
    let listed = get(&engine, &token, &path).xml();
    assert_eq!(item_texts(&listed, "alias"), vec!["virtio-disk0"]);
}

#[test]
fn starts_and_stops_from_async_code_too() {
    let engine = TestEngine::start("v4-async", release_44());
    let mut config = engine.config.clone();
    drop(engine);
    // Ports the kernel chooses: the stopped engine's ones may be anybody's by now.
    (config.https_port, config.http_port) = (0, 0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).unwrap();
        engine_support::write_pki(&dir, &config.fqdn);
        let server = he_lab::engine::serve(&config).unwrap();
        server.stop();
    });
    let _ = std::fs::remove_dir_all(&config.dir);
}
