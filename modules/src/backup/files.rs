//! The inner `./files` archive: product files restored onto `/`, and the AAA extensions
//! configured in them (reference §7, SPEC 9.3).

use super::error::BackupError;
use super::walk::{walk, Source};
use super::Limits;
use std::io::Read;

/// Where engine AAA extension configuration lives inside `./files`.
const EXTENSIONS_DIR: &str = "etc/ovirt-engine/extensions.d/";
/// The interface an authorization (AAA domain) extension provides.
const AUTHZ_INTERFACE: &str = "org.ovirt.engine.api.extensions.aaa.Authz";
/// Largest extension properties file read.
const MAX_PROPERTIES_BYTES: u64 = 1024 * 1024;

/// What `./files` holds that the upgrade cares about.
#[derive(Debug, Default)]
pub struct FilesFacts {
    /// Regular files in it.
    pub file_count: usize,
    /// Names of the AAA authz extensions (`ovirt.engine.extension.name`), sorted.
    pub aaa: Vec<String>,
}

/// Walks the decompressed `./files` tar stream.
pub fn inspect(reader: impl Read, limits: &Limits) -> Result<FilesFacts, BackupError> {
    let source = Source {
        what: "member ./files",
        allow_absolute_symlinks: true,
        limits,
    };
    let mut aaa = Vec::new();
    let walked = walk(&source, reader, |name, data| {
        let is_extension = name
            .strip_prefix(EXTENSIONS_DIR)
            .is_some_and(|file| !file.contains('/') && file.ends_with(".properties"));
        if is_extension {
            let mut text = Vec::new();
            data.take(MAX_PROPERTIES_BYTES)
                .read_to_end(&mut text)
                .map_err(|e| super::walk::truncated(&source, e.to_string()))?;
            aaa.extend(authz_name(&String::from_utf8_lossy(&text)));
        }
        Ok(())
    })?;
    aaa.sort();
    aaa.dedup();
    Ok(FilesFacts {
        file_count: walked.files.len(),
        aaa,
    })
}

/// The extension name when a properties file configures an authz extension.
fn authz_name(properties: &str) -> Option<String> {
    let mut name = None;
    let mut provides_authz = false;
    for line in properties.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some(split) = line.find(['=', ':']) else {
            continue;
        };
        let (key, value) = (line[..split].trim(), line[split + 1..].trim());
        match key {
            "ovirt.engine.extension.name" => name = Some(value.to_string()),
            "ovirt.engine.extension.provides" => {
                provides_authz = value.split(',').any(|v| v.trim() == AUTHZ_INTERFACE)
            }
            _ => {}
        }
    }
    name.filter(|_| provides_authz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_authz_extensions_only() {
        let authz = "ovirt.engine.extension.name = internal-authz\n\
                     ovirt.engine.extension.bindings.method = jbossmodule\n\
                     ovirt.engine.extension.provides = org.ovirt.engine.api.extensions.aaa.Authz\n";
        assert_eq!(authz_name(authz).as_deref(), Some("internal-authz"));
        let authn = "ovirt.engine.extension.name=internal-authn\n\
                     ovirt.engine.extension.provides=org.ovirt.engine.api.extensions.aaa.Authn\n";
        assert_eq!(authz_name(authn), None);
        let commented =
            "#ovirt.engine.extension.provides = org.ovirt.engine.api.extensions.aaa.Authz\n\
                         ovirt.engine.extension.name = x\n";
        assert_eq!(authz_name(commented), None);
    }
}
