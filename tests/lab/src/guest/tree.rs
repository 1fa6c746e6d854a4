//! The file tree of an engine VM's root filesystem: OS release files, fstab and the markers
//! of the installed engine (before or after engine-setup).

use crate::config::{EngineRelease, LabConfig};
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::path::Path;

/// Where the installed engine's full version is recorded in the guest (RPM version).
pub const VERSION_FILE: &str = "/usr/share/ovirt-engine/version";
/// The file engine-setup leaves once the engine is configured (its presence = set up).
pub const SETUP_DONE_FILE: &str = "/etc/ovirt-engine-setup.conf.d/20-setup-ovirt-post.conf";
/// The engine database as the guest's PostgreSQL holds it (lab encoding: JSON).
pub const ENGINE_DB_FILE: &str = "/var/lib/pgsql/data/he-lab-engine-db.json";
/// The appliance's engine-setup answer file.
pub const APPLIANCE_ANSWERS_FILE: &str = "/root/ovirt-engine-answers";

/// Files of a guest root filesystem: absolute guest path -> content.
pub type Tree = BTreeMap<String, Vec<u8>>;

/// `/etc/redhat-release` of an OS version.
pub fn redhat_release(os_version: &str) -> &'static str {
    match os_version {
        "centos6" => "CentOS release 6.8 (Final)\n",
        "centos8" => "CentOS Stream release 8\n",
        _ => "CentOS Linux release 7.3.1611 (Core) \n",
    }
}

/// `/etc/os-release` of an OS version.
fn os_release(os_version: &str) -> String {
    let (version, pretty) = match os_version {
        "centos6" => ("6", "CentOS release 6.8 (Final)"),
        "centos8" => ("8", "CentOS Stream 8"),
        _ => ("7", "CentOS Linux 7 (Core)"),
    };
    format!(
        "NAME=\"CentOS Linux\"\nVERSION=\"{version}\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\n\
         VERSION_ID=\"{version}\"\nPRETTY_NAME=\"{pretty}\"\nANSI_COLOR=\"0;31\"\n\
         CPE_NAME=\"cpe:/o:centos:centos:{version}\"\nHOME_URL=\"https://www.centos.org/\"\n"
    )
}

/// The guest's first network interface configuration (EL initscripts / NetworkManager ifcfg).
pub const IFCFG_ETH0: &str = "/etc/sysconfig/network-scripts/ifcfg-eth0";

/// The OS and engine packages of `release`, engine installed but not yet set up (what an
/// appliance image holds).
pub fn appliance_tree(release: &EngineRelease, hostname: &str) -> Tree {
    let mut tree = Tree::new();
    let mut put = |path: &str, content: String| {
        tree.insert(path.to_string(), content.into_bytes());
    };
    let el = release
        .os_version
        .trim_start_matches("centos")
        .trim_start_matches("el")
        .to_string();
    put(
        "/etc/redhat-release",
        redhat_release(&release.os_version).into(),
    );
    put(
        "/etc/centos-release",
        redhat_release(&release.os_version).into(),
    );
    put("/etc/os-release", os_release(&release.os_version));
    put(
        "/etc/fstab",
        "#\n# /etc/fstab\n#\n/dev/vda1  /  ext4  defaults  1 1\n".into(),
    );
    put("/etc/hostname", format!("{hostname}\n"));
    put(
        "/etc/sysconfig/network",
        format!("NETWORKING=yes\nHOSTNAME={hostname}\n"),
    );
    put(
        "/etc/hosts",
        "127.0.0.1   localhost localhost.localdomain\n".into(),
    );
    // The appliance's kickstart configures eth0 by DHCP (`network --bootproto=dhcp`).
    put(
        IFCFG_ETH0,
        "BOOTPROTO=dhcp\nDEVICE=eth0\nONBOOT=yes\nTYPE=Ethernet\nUSERCTL=no\n".into(),
    );
    put(VERSION_FILE, format!("{}-1.el{el}\n", release.version));
    put(
        "/usr/bin/engine-setup",
        "#!/bin/sh\nexec /usr/share/ovirt-engine/setup/bin/ovirt-engine-setup \"$@\"\n".into(),
    );
    put(
        "/usr/bin/engine-backup",
        "#!/bin/sh\n# engine-backup: backup and restore of the oVirt engine\n".into(),
    );
    put(
        APPLIANCE_ANSWERS_FILE,
        "[environment:default]\nOVESETUP_CONFIG/applicationMode=str:both\n\
         OVESETUP_CONFIG/firewallManager=str:firewalld\nOVESETUP_DB/database=str:engine\n\
         OVESETUP_DB/user=str:engine\nOVESETUP_PROVISIONING/postgresProvisioningEnabled=bool:True\n"
            .into(),
    );
    put("/var/log/ovirt-engine/.keep", String::new());
    put("/var/lib/pgsql/data/PG_VERSION", "9.2\n".into());
    tree
}

/// The AAA and engine configuration files engine-setup leaves in `/etc/ovirt-engine`.
pub fn engine_config_files(config: &LabConfig) -> Tree {
    let mut tree = Tree::new();
    let mut put = |path: &str, content: String| {
        tree.insert(path.to_string(), content.into_bytes());
    };
    put(
        "/etc/ovirt-engine/extensions.d/internal-authz.properties",
        "ovirt.engine.extension.name = internal-authz\n\
         ovirt.engine.extension.bindings.method = jbossmodule\n\
         ovirt.engine.extension.binding.jbossmodule.module = org.ovirt.engine.extensions.builtin\n\
         ovirt.engine.extension.binding.jbossmodule.class = org.ovirt.engine.extensions.aaa.builtin.internal.InternalAuthz\n\
         ovirt.engine.extension.provides = org.ovirt.engine.api.extensions.aaa.Authz\n"
            .into(),
    );
    put(
        "/etc/ovirt-engine/extensions.d/internal-authn.properties",
        "ovirt.engine.extension.name = internal-authn\n\
         ovirt.engine.extension.bindings.method = jbossmodule\n\
         ovirt.engine.extension.binding.jbossmodule.module = org.ovirt.engine.extensions.builtin\n\
         ovirt.engine.extension.binding.jbossmodule.class = org.ovirt.engine.extensions.aaa.builtin.internal.InternalAuthn\n\
         ovirt.engine.extension.provides = org.ovirt.engine.api.extensions.aaa.Authn\n\
         ovirt.engine.aaa.authn.profile.name = internal\n\
         ovirt.engine.aaa.authn.authz.plugin = internal-authz\n"
            .into(),
    );
    put(
        "/etc/ovirt-engine/engine.conf.d/10-setup-protocols.conf",
        format!(
            "ENGINE_FQDN={}\nENGINE_PROXY_ENABLED=true\nENGINE_HTTP_ENABLED=false\n",
            config.fqdn
        ),
    );
    put(
        "/etc/ovirt-engine/engine.conf.d/10-setup-database.conf",
        "ENGINE_DB_HOST=\"localhost\"\nENGINE_DB_PORT=\"5432\"\nENGINE_DB_USER=\"engine\"\n\
         ENGINE_DB_DATABASE=\"engine\"\nENGINE_DB_SECURED=\"False\"\n"
            .into(),
    );
    put(
        "/etc/ovirt-engine/engine.conf.d/10-setup-pki.conf",
        "ENGINE_PKI=\"/etc/pki/ovirt-engine\"\n".into(),
    );
    tree
}

/// What engine-setup leaves in its own configuration once it completed for `fqdn`.
pub fn setup_done_content(fqdn: &str, release: &EngineRelease) -> String {
    format!(
        "[environment:default]\nOVESETUP_CORE/generatePostInstall=bool:True\n\
         OVESETUP_CONFIG/fqdn=str:{fqdn}\nOVESETUP_ENGINE_CORE/enable=bool:True\n\
         OVESETUP_CORE/engineVersion=str:{}\n",
        release.version
    )
}

/// Writes `tree` under host directory `root` (files 0644, directories 0755).
pub fn write_tree(tree: &Tree, root: &Path) -> anyhow::Result<()> {
    for (guest_path, content) in tree {
        let path = root.join(guest_path.trim_start_matches('/'));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, content)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    // The directories libguestfs inspection looks for to call a filesystem a Linux root.
    for extra in [
        "root",
        "tmp",
        "var/tmp",
        "var/lib",
        "proc",
        "sys",
        "dev",
        "boot",
        "bin",
        "sbin",
        "lib",
        "lib64",
        "usr/bin",
        "usr/sbin",
        "usr/lib",
        "usr/lib64",
        "home",
        "mnt",
        "opt",
        "srv",
    ] {
        std::fs::create_dir_all(root.join(extra))?;
    }
    Ok(())
}
