//! The fake engine speaks REST v3 with Basic auth and sessions like a 3.6 engine, and v3 on
//! request on 4.x engines (engine-api.md part 2).

mod engine_support;

use engine_support::{release_36, release_40, TestEngine};

fn basic(engine: &TestEngine) -> String {
    format!("admin@internal:{}", engine.password)
}

#[test]
fn basic_auth_and_persistent_sessions() {
    let engine = TestEngine::start("v3-auth", release_36());
    let url = engine.https("/ovirt-engine/api");
    let wrong = engine.curl(&["-u", "admin@internal:wrong", &url]);
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("JBoss Web"));
    assert_eq!(engine.curl(&[&url]).status, 401);

    let first = engine.curl(&[
        "-u",
        &basic(&engine),
        "-H",
        "Prefer: persistent-auth",
        "-H",
        "Version: 3",
        &url,
    ]);
    assert_eq!(first.status, 200, "{}", first.body);
    let session = first
        .header("jsessionid")
        .expect("JSESSIONID header")
        .to_string();
    let cookie = first.header("set-cookie").unwrap();
    assert!(cookie.starts_with(&format!("JSESSIONID={session};")));
    assert!(cookie.contains("Path=/ovirt-engine/api"));

    let cookie = format!("JSESSIONID={session}");
    let again = engine.curl(&["-b", &cookie, "-H", "Prefer: persistent-auth", &url]);
    assert_eq!(again.status, 200);
    // A request without persistent-auth ends the session (the 3.x SDK's disconnect).
    assert_eq!(engine.curl(&["-b", &cookie, &url]).status, 401);
    assert_eq!(
        engine
            .curl(&["-b", &cookie, "-H", "Prefer: persistent-auth", &url])
            .status,
        401
    );
    // One-shot Basic without Prefer works and opens no session.
    let one_shot = engine.curl(&["-u", &basic(&engine), &url]);
    assert_eq!(one_shot.status, 200);
    assert!(one_shot.header("jsessionid").is_none());
}

#[test]
fn a_36_engine_answers_v3_shapes() {
    let engine = TestEngine::start("v3-shapes", release_36());
    let auth = basic(&engine);
    let get = |path: &str| {
        let reply = engine.curl(&[
            "-u",
            &auth,
            "-H",
            "Version: 3",
            &engine.https(&format!("/ovirt-engine/api{path}")),
        ]);
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        reply.xml()
    };
    let api = get("");
    let product = api.child("product_info").unwrap();
    let version = product.child("version").unwrap();
    assert_eq!(version.attribute("major"), Some("3"));
    assert_eq!(version.attribute("minor"), Some("6"));
    assert_eq!(version.attribute("build"), Some("7"));
    assert_eq!(version.attribute("revision"), Some("5"));
    assert_eq!(product.child_text("full_version"), Some("3.6.7.5-1.el6"));

    let hosts = get("/hosts");
    let this = hosts
        .children
        .iter()
        .find(|h| {
            h.child("hardware_information").unwrap().child_text("uuid")
                == Some(engine.config.host_uuid.as_str())
        })
        .unwrap();
    assert_eq!(
        this.child("status").unwrap().child_text("state"),
        Some("up")
    );
    let spm = this.child("spm").unwrap();
    assert_eq!(
        spm.child("status").unwrap().child_text("state"),
        Some("spm")
    );
    let manager = this.child("storage_manager").unwrap();
    assert_eq!(manager.attribute("priority"), Some("5"));
    assert_eq!(manager.text, "true");
    assert!(this
        .attribute("href")
        .unwrap()
        .starts_with("/ovirt-engine/api/hosts/"));

    let dc = get("/datacenters").children[0].clone();
    assert_eq!(dc.child("version").unwrap().attribute("major"), Some("3"));
    assert_eq!(dc.child("version").unwrap().attribute("minor"), Some("6"));
    assert_eq!(dc.child("status").unwrap().child_text("state"), Some("up"));
    let cluster = get("/clusters").children[0].clone();
    assert_eq!(
        cluster.child("version").unwrap().attribute("minor"),
        Some("6")
    );
    let disk = get("/disks").children[0].clone();
    assert_eq!(
        disk.child_text("size"),
        Some((10u64 << 30).to_string().as_str())
    );
    assert_eq!(
        disk.child("status").unwrap().child_text("state"),
        Some("ok")
    );
    let sd = get("/storagedomains").children[0].clone();
    assert!(sd.child_text("available").is_some());

    // 3.6 has no /v3 prefix and ignores the Version header.
    let prefixed = engine.curl(&["-u", &auth, &engine.https("/ovirt-engine/api/v3/hosts")]);
    assert_eq!(prefixed.status, 404);
    let v4_header = engine.curl(&[
        "-u",
        &auth,
        "-H",
        "Version: 4",
        &engine.https("/ovirt-engine/api"),
    ]);
    assert_eq!(
        v4_header
            .xml()
            .child("product_info")
            .unwrap()
            .child("version")
            .unwrap()
            .attribute("major"),
        Some("3")
    );
}

#[test]
fn a_40_engine_serves_v3_on_request() {
    let engine = TestEngine::start("v3-on-40", release_40());
    let auth = basic(&engine);
    let by_header = engine.curl(&[
        "-u",
        &auth,
        "-H",
        "Version: 3",
        &engine.https("/ovirt-engine/api/hosts"),
    ]);
    let host = by_header.xml().children[0].clone();
    assert!(host.child("status").unwrap().child("state").is_some());
    assert!(host
        .attribute("href")
        .unwrap()
        .starts_with("/ovirt-engine/api/hosts/"));
    let by_path = engine.curl(&["-u", &auth, &engine.https("/ovirt-engine/api/v3/hosts")]);
    let host = by_path.xml().children[0].clone();
    assert!(host.child("status").unwrap().child("state").is_some());
    assert!(host
        .attribute("href")
        .unwrap()
        .starts_with("/ovirt-engine/api/v3/hosts/"));
    // Basic auth still works on v4 (deprecated, not removed).
    let v4 = engine.curl(&["-u", &auth, &engine.https("/ovirt-engine/api/hosts")]);
    let host = v4.xml().children[0].clone();
    assert_eq!(host.child_text("status"), Some("up"));
    let root = engine
        .curl(&["-u", &auth, &engine.https("/ovirt-engine/api")])
        .xml();
    let version = root
        .child("product_info")
        .unwrap()
        .child("version")
        .unwrap();
    assert_eq!(version.child_text("major"), Some("4"));
    assert_eq!(version.child_text("minor"), Some("0"));
}
