//! The engine's PKI: a CA like engine-setup's (`CN=<fqdn>.<5 digits>`) and the engine's
//! server certificate (SANs: the fqdn, localhost, IP 127.0.0.1) in `DIR/pki/`; and the
//! host's vdsm certificate signed by that CA (as host deploy enrolls it), laid out like
//! `/etc/pki/vdsm` in `DIR/pki/vdsm/`.

use crate::config::LabConfig;
use anyhow::Context as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

/// Writes `pki/ca.pem`, `pki/ca.key`, `pki/engine.pem`, `pki/engine.key` (keys 0600).
pub fn write_pki(config: &LabConfig) -> anyhow::Result<()> {
    let organization = organization_of(config);
    let ca_key = KeyPair::generate().context("cannot generate the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.distinguished_name.push(DnType::CountryName, "US");
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, organization.clone());
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("{}.{:05}", config.fqdn, config.seed % 100_000),
    );
    let ca = ca_params
        .self_signed(&ca_key)
        .context("cannot sign the CA")?;

    let key = KeyPair::generate().context("cannot generate the engine key")?;
    let mut params = CertificateParams::new(vec![config.fqdn.clone(), "localhost".to_string()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse()?));
    params.distinguished_name.push(DnType::CountryName, "US");
    params
        .distinguished_name
        .push(DnType::OrganizationName, organization);
    params
        .distinguished_name
        .push(DnType::CommonName, config.fqdn.clone());
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .context("cannot sign the engine certificate")?;

    let vdsm_key = KeyPair::generate().context("cannot generate the vdsm key")?;
    let mut vdsm_params = CertificateParams::new(vec![config.host_name.clone()])?;
    vdsm_params
        .distinguished_name
        .push(DnType::OrganizationName, organization_of(config));
    vdsm_params
        .distinguished_name
        .push(DnType::CommonName, config.host_name.clone());
    let vdsm_cert = vdsm_params
        .signed_by(&vdsm_key, &ca, &ca_key)
        .context("cannot sign the vdsm certificate")?;

    let pki = config.pki_dir();
    std::fs::create_dir_all(&pki).with_context(|| format!("cannot create {}", pki.display()))?;
    std::fs::write(pki.join("ca.pem"), ca.pem())?;
    std::fs::write(pki.join("engine.pem"), cert.pem())?;
    write_private(&pki.join("ca.key"), &ca_key.serialize_pem())?;
    write_private(&pki.join("engine.key"), &key.serialize_pem())?;
    let vdsm = crate::vdsm::pki_files(config);
    for dir in [&vdsm.certificate, &vdsm.key] {
        std::fs::create_dir_all(dir.parent().expect("files in a directory"))?;
    }
    std::fs::write(&vdsm.ca, ca.pem())?;
    std::fs::write(&vdsm.certificate, vdsm_cert.pem())?;
    write_private(&vdsm.key, &vdsm_key.serialize_pem())?;
    Ok(())
}

/// The PKI's organization: the engine's domain, as engine-setup takes it.
fn organization_of(config: &LabConfig) -> String {
    config
        .fqdn
        .split_once('.')
        .map(|(_, domain)| domain.to_string())
        .unwrap_or_else(|| "Test".into())
}

/// Writes a file readable by its owner only (0600).
pub fn write_private(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(content.as_bytes())?;
    Ok(())
}
