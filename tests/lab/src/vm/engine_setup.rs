//! `engine-setup --offline --config-append=...` inside the guest: otopi's stages as log
//! lines; on success the engine database is upgraded to the installed engine and the
//! post-install marker written (the engine then starts).

use crate::engine::db::EngineDb;
use crate::guest::{engine_state, tree};
use crate::vm::GuestSession;

/// Runs `engine-setup ARGS` in the guest; returns its exit status.
pub fn run(
    session: &GuestSession,
    args: &[String],
    out: &mut dyn FnMut(&str),
    err: &mut dyn FnMut(&str),
) -> i32 {
    let mut config_files = vec![
        "/etc/ovirt-engine-setup.conf.d/10-packaging-jboss.conf".to_string(),
        "/etc/ovirt-engine-setup.conf.d/10-packaging.conf".to_string(),
    ];
    for arg in args {
        if let Some(path) = arg.strip_prefix("--config-append=") {
            config_files.push(path.to_string());
        } else if !matches!(arg.as_str(), "--offline" | "--accept-defaults")
            && !arg.starts_with("--")
        {
            err(&format!("***L:ERROR Unexpected argument '{arg}'"));
            return 1;
        }
    }
    let stamp = "20161124120000";
    let log = format!("/var/log/ovirt-engine/setup/ovirt-engine-setup-{stamp}-x2b9ql.log");
    let mut say = |line: &str| {
        out(line);
        session.pause(25)
    };
    say("[ INFO  ] Stage: Initializing");
    say("[ INFO  ] Stage: Environment setup");
    let quoted: Vec<String> = config_files.iter().map(|f| format!("'{f}'")).collect();
    say(&format!(
        "          Configuration files: [{}]",
        quoted.join(", ")
    ));
    say(&format!("          Log file: {log}"));
    say("          Version: otopi-1.5.2 (otopi-1.5.2-1.el7.centos)");
    for file in config_files.iter().skip(2) {
        if !session.disk.exists(file) {
            out(&format!(
                "[ ERROR ] Failed to execute stage 'Environment setup': [Errno 2] No such file or directory: '{file}'"
            ));
            out("[ ERROR ] Execution of setup failed");
            return 1;
        }
    }
    let fqdn = answer(session, &config_files, "OVESETUP_CONFIG/fqdn")
        .unwrap_or_else(|| session.config.fqdn.clone());
    for line in [
        "[ INFO  ] Stage: Environment packages setup",
        "[ INFO  ] Stage: Programs detection",
        "[ INFO  ] Stage: Environment customization",
        "          --== PRODUCT OPTIONS ==--",
        "          --== PACKAGES ==--",
        "          --== NETWORK CONFIGURATION ==--",
        "          --== DATABASE CONFIGURATION ==--",
        "          --== OVIRT ENGINE CONFIGURATION ==--",
        "          --== STORAGE CONFIGURATION ==--",
        "          --== PKI CONFIGURATION ==--",
        "          --== APACHE CONFIGURATION ==--",
        "          --== SYSTEM CONFIGURATION ==--",
        "          --== MISC CONFIGURATION ==--",
        "          --== END OF CONFIGURATION ==--",
        "[ INFO  ] Stage: Setup validation",
        "[ INFO  ] Stage: Transaction setup",
        "[ INFO  ] Stopping engine service",
        "[ INFO  ] Stopping ovirt-fence-kdump-listener service",
        "[ INFO  ] Stopping dwh service",
        "[ INFO  ] Stage: Misc configuration",
        "[ INFO  ] Stage: Package installation",
        "[ INFO  ] Stage: Misc configuration",
        "[ INFO  ] Upgrading CA",
        &format!("[ INFO  ] Backing up database localhost:engine to '/var/lib/ovirt-engine/backups/engine-{stamp}.Ew3Iqs.dump'."),
        "[ INFO  ] Creating/refreshing Engine database schema",
    ] {
        if !say(line) {
            return 1;
        }
    }
    if !session.stall_while("setup_stall") {
        return 1;
    }
    if session.config.fault("setup_fail") {
        out("[ ERROR ] Failed to execute stage 'Misc configuration': Command '/usr/share/ovirt-engine/dbscripts/schema.sh' failed to execute");
        out("[ INFO  ] Rolling back database schema");
        out("[ INFO  ] Clearing Engine database engine");
        out("[ INFO  ] Restoring Engine database engine");
        out("[ INFO  ] Stage: Clean up");
        out(&format!("          Log file is located at {log}"));
        out("[ INFO  ] Stage: Pre-termination");
        out("[ INFO  ] Stage: Termination");
        out("[ ERROR ] Execution of setup failed");
        return 1;
    }
    match configure(session, &fqdn) {
        Ok(()) => {}
        Err(error) => {
            out(&format!(
                "[ ERROR ] Failed to execute stage 'Misc configuration': {error}"
            ));
            out("[ ERROR ] Execution of setup failed");
            return 1;
        }
    }
    for line in [
        "[ INFO  ] Creating/refreshing DWH database schema",
        "[ INFO  ] Generating post install configuration file '/etc/ovirt-engine-setup.conf.d/20-setup-ovirt-post.conf'",
        "[ INFO  ] Stage: Transaction commit",
        "[ INFO  ] Stage: Closing up",
        "[ INFO  ] Starting engine service",
        "[ INFO  ] Starting dwh service",
        "[ INFO  ] Restarting httpd",
        "          --== SUMMARY ==--",
        &format!("          Web access is enabled at:\n              http://{fqdn}:80/ovirt-engine\n              https://{fqdn}:443/ovirt-engine"),
        "          --== END OF SUMMARY ==--",
        "[ INFO  ] Stage: Clean up",
        &format!("          Log file is located at {log}"),
        &format!("[ INFO  ] Generating answer file '/var/lib/ovirt-engine/setup/answers/{stamp}-setup.conf'"),
        "[ INFO  ] Stage: Pre-termination",
        "[ INFO  ] Stage: Termination",
        "[ INFO  ] Execution of setup completed successfully",
    ] {
        for part in line.split('\n') {
            if !say(part) {
                return 1;
            }
        }
    }
    0
}

/// Upgrades (or creates) the engine database for the installed engine and marks setup done.
fn configure(session: &GuestSession, fqdn: &str) -> anyhow::Result<()> {
    let installed = engine_state::installed(&session.disk)?
        .ok_or_else(|| anyhow::anyhow!("ovirt-engine is not installed"))?;
    let config = session.config;
    let release = [&config.old_engine, &config.new_engine]
        .into_iter()
        .find(|release| release.version == installed.version)
        .ok_or_else(|| anyhow::anyhow!("unknown engine version {}", installed.version))?
        .clone();
    let db = match engine_state::read_db(&session.disk)? {
        Some(db) => EngineDb::restore_from_backup(&db, &release),
        None => EngineDb::seed(config, &release),
    };
    engine_state::write_db(&session.disk, &db)?;
    session.disk.write(
        tree::SETUP_DONE_FILE,
        tree::setup_done_content(fqdn, &release).as_bytes(),
        0o644,
    )?;
    Ok(())
}

/// The value of `KEY=type:value` in the answer files (last one wins).
fn answer(session: &GuestSession, files: &[String], key: &str) -> Option<String> {
    let mut found = None;
    for file in files {
        let Ok(Some(text)) = session.disk.read_text(file) else {
            continue;
        };
        for line in text.lines() {
            if let Some((name, value)) = line.split_once('=') {
                if name.trim() == key {
                    let value = value.split_once(':').map(|(_, v)| v).unwrap_or(value);
                    found = Some(value.trim().to_string());
                }
            }
        }
    }
    found
}
