//! Disks: find by name or id, create (floating, raw, preallocated), delete, and the
//! unregistered disks of a storage domain (engine-api.md sections 4, 6, 7).

use super::client::{ApiVersion, Connection, Retry};
use super::error::EngineError;
use super::wait::{self, Step};
use super::xml::{escape, Element};
use serde::Serialize;
use std::time::Duration;

/// A disk as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    /// Disk id (= vdsm image id).
    pub id: String,
    /// Name (alias).
    pub name: String,
    /// Description.
    pub description: String,
    /// The disk's volume id (the engine calls it `image_id`).
    pub volume_id: String,
    /// Virtual size in bytes.
    pub size_bytes: u64,
    /// `ok`, `locked` or `illegal`.
    pub status: String,
    /// The storage domain holding it.
    pub sd_id: String,
}

impl Disk {
    /// Reads a `<disk>` (v3 or v4).
    pub fn from_element(disk: &Element) -> Option<Disk> {
        let name = disk
            .child_text("alias")
            .or_else(|| disk.child_text("name"))
            .unwrap_or("");
        let sd_id = disk
            .child("storage_domains")
            .and_then(|list| list.child("storage_domain"))
            .or_else(|| disk.child("storage_domain"))
            .and_then(Element::id)
            .unwrap_or("");
        Some(Disk {
            id: disk.id()?.to_string(),
            name: name.to_string(),
            description: disk.child_text("description").unwrap_or("").to_string(),
            volume_id: disk.child_text("image_id").unwrap_or("").to_string(),
            size_bytes: disk
                .child_u64("provisioned_size")
                .or_else(|| disk.child_u64("size"))
                .unwrap_or(0),
            status: disk.status().unwrap_or("unknown").to_string(),
            sd_id: sd_id.to_string(),
        })
    }

    /// `{id, name, status}`: what a module reports about a disk.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({ "id": self.id, "name": self.name, "status": self.status })
    }

    /// Whether `name` is this disk's name or description (the original tool put the
    /// `hosted-engine-backup-...` label in the description, engine-api.md section 6).
    pub fn is_called(&self, name: &str) -> bool {
        self.name == name || self.description == name
    }
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewDisk {
    /// Name, alias and description.
    pub name: String,
    /// Virtual size in bytes.
    pub size_bytes: u64,
    /// Storage domain id.
    pub sd_id: String,
}

impl NewDisk {
    /// The `POST disks` body: raw, preallocated; v3 also needs `interface` and `size`.
    pub fn body(&self, version: ApiVersion) -> String {
        let name = escape(&self.name);
        let v3_only = match version {
            ApiVersion::V3 => format!(
                "<size>{}</size><interface>virtio</interface>",
                self.size_bytes
            ),
            ApiVersion::V4 => String::new(),
        };
        format!(
            "<disk><name>{name}</name><alias>{name}</alias><description>{name}</description>\
             <storage_domains><storage_domain id=\"{}\"/></storage_domains>\
             <provisioned_size>{}</provisioned_size>{v3_only}\
             <format>raw</format><sparse>false</sparse></disk>",
            escape(&self.sd_id),
            self.size_bytes
        )
    }
}

/// One disk by id (`None` if the engine does not know it).
pub fn get(engine: &mut Connection, id: &str) -> Result<Option<Disk>, EngineError> {
    Ok(engine
        .get_optional(&format!("disks/{id}"))?
        .as_ref()
        .and_then(Disk::from_element))
}

/// Disks called `name` (name, alias or description; exact match).
pub fn find_by_name(engine: &mut Connection, name: &str) -> Result<Vec<Disk>, EngineError> {
    let mut found = search(engine, "name", name)?;
    for disk in search(engine, "description", name)? {
        if !found.iter().any(|known| known.id == disk.id) {
            found.push(disk);
        }
    }
    Ok(found)
}

/// Disks whose `field` is `value` in the engine's search, checked exactly here.
fn search(engine: &mut Connection, field: &str, value: &str) -> Result<Vec<Disk>, EngineError> {
    let query = percent_encode(&format!("{field}={value}"));
    let list = engine.get(&format!("disks?search={query}"))?;
    Ok(list
        .children_named("disk")
        .filter_map(Disk::from_element)
        .filter(|disk| disk.is_called(value))
        .collect())
}

/// The one disk called `name`, if any; an error when several are (ambiguous).
pub fn find_one_by_name(engine: &mut Connection, name: &str) -> Result<Option<Disk>, EngineError> {
    let mut found = find_by_name(engine, name)?;
    if found.len() > 1 {
        let ids: Vec<&str> = found.iter().map(|disk| disk.id.as_str()).collect();
        return Err(EngineError::Input(format!(
            "{} disks are called '{name}' (ids {}): give disk_id instead of name",
            found.len(),
            ids.join(", ")
        )));
    }
    Ok(found.pop())
}

/// Waits (bounded) until disk `id` is `ok`; `illegal` or a failed state ends the wait
/// with an error at once.
pub fn wait_until_ok(
    engine: &mut Connection,
    id: &str,
    timeout: Duration,
) -> Result<Disk, EngineError> {
    let what = format!("disk {id} to become ok");
    wait::until(&what, timeout, wait::POLL_INTERVAL, || {
        let disk = get(engine, id)?.ok_or_else(|| {
            EngineError::Input(format!(
                "disk {id} disappeared from the engine while waiting for it to become ok"
            ))
        })?;
        match disk.status.as_str() {
            "ok" => Ok(Step::Done(disk)),
            status if status == "illegal" || status.contains("fail") => Err(EngineError::Input(format!(
                "disk {} ({id}) is '{status}': the storage operation failed; see the engine's events, delete the disk and run again",
                disk.name
            ))),
            status => Ok(Step::Pending(format!("status {status}"))),
        }
    })
}

/// Creates a disk (`POST disks`; the engine answers 202 with the disk still `locked`).
/// If the outcome of the POST is unknown (connection lost, 5xx), looks for the disk by
/// name before trying again, so one call never creates two disks.
pub fn create(engine: &mut Connection, disk: &NewDisk) -> Result<Disk, EngineError> {
    let body = disk.body(engine.version());
    // One search only: we set name, alias and description alike.
    post_checked(engine, "disks", &body, |engine| {
        Ok(search(engine, "name", &disk.name)?.into_iter().next())
    })
}

/// Deletes a disk; `false` when it was already gone.
pub fn delete(engine: &mut Connection, id: &str) -> Result<bool, EngineError> {
    match engine.delete(&format!("disks/{id}")) {
        Ok(()) => Ok(true),
        Err(error) if error.refused_status() == Some(404) => Ok(false),
        Err(error) => Err(error),
    }
}

/// The path of a storage domain's unregistered disks: v3 matrix parameter, v4 query
/// (engine-api.md section 2 and part 2 section 7).
fn unregistered_path(version: ApiVersion, sd_id: &str) -> String {
    match version {
        ApiVersion::V3 => format!("storagedomains/{sd_id}/disks;unregistered"),
        ApiVersion::V4 => format!("storagedomains/{sd_id}/disks?unregistered=true"),
    }
}

/// Disks on the storage domain that the engine database does not know (yet).
pub fn unregistered(engine: &mut Connection, sd_id: &str) -> Result<Vec<Disk>, EngineError> {
    let list = engine.get(&unregistered_path(engine.version(), sd_id))?;
    Ok(list
        .children_named("disk")
        .filter_map(Disk::from_element)
        .collect())
}

/// Registers the unregistered disk `id` (`POST` of `<disk id=..>` to the unregistered list).
pub fn register(engine: &mut Connection, sd_id: &str, id: &str) -> Result<Disk, EngineError> {
    let path = unregistered_path(engine.version(), sd_id);
    let body = format!("<disk id=\"{}\"/>", escape(id));
    post_checked(engine, &path, &body, |engine| get(engine, id))
}

/// POSTs once per attempt; after an unknown outcome asks `done` whether it happened anyway.
fn post_checked(
    engine: &mut Connection,
    path: &str,
    body: &str,
    mut done: impl FnMut(&mut Connection) -> Result<Option<Disk>, EngineError>,
) -> Result<Disk, EngineError> {
    let policy = engine.retry_policy();
    let mut delay = policy.first_delay;
    let mut attempt = 1;
    loop {
        match engine.post(path, body, Retry::Never) {
            Ok(answer) => {
                return Disk::from_element(&answer).ok_or_else(|| EngineError::Unexpected {
                    call: format!("POST {path}"),
                    reason: "the answer is not a disk with an id".into(),
                })
            }
            Err(error) if error.is_transient() && attempt < policy.attempts => {
                tracing::warn!("{error}; checking whether it happened, then retrying");
                std::thread::sleep(delay);
                delay = delay.saturating_mul(2);
                attempt += 1;
                if let Some(disk) = done(engine)? {
                    return Ok(disk);
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4_DISK: &str = r#"<disk href="/ovirt-engine/api/disks/D" id="D"><actual_size>0</actual_size><alias>hosted-engine-backup-20240101120000</alias><content_type>data</content_type>
<description>hosted-engine-backup-20240101120000</description><format>raw</format><image_id>IMG</image_id><name>hosted-engine-backup-20240101120000</name><provisioned_size>53687091200</provisioned_size>
<shareable>false</shareable><sparse>false</sparse><status>locked</status><storage_type>image</storage_type><total_size>0</total_size>
<wipe_after_delete>false</wipe_after_delete><storage_domains><storage_domain id="SD"/></storage_domains></disk>"#;

    // The 3.6 SDK-created backup disk of the original tool: the label is in the description.
    const V3_DISKS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<disks>
    <disk href="/ovirt-engine/api/storagedomains/SD/disks/D3" id="D3">
        <name>virtio-disk0</name>
        <description>hosted-engine-backup-20160601120000</description>
        <alias>virtio-disk0</alias>
        <image_id>VOL3</image_id>
        <storage_domain id="SD"/>
        <size>10737418240</size>
        <provisioned_size>10737418240</provisioned_size>
        <status><state>ok</state></status>
        <interface>virtio</interface>
        <format>raw</format>
    </disk>
</disks>"#;

    #[test]
    fn v4_disk() {
        let disk = Disk::from_element(&Element::parse(V4_DISK).unwrap()).unwrap();
        assert_eq!(disk.id, "D");
        assert_eq!(disk.volume_id, "IMG");
        assert_eq!(disk.size_bytes, 53687091200);
        assert_eq!(disk.status, "locked");
        assert_eq!(disk.sd_id, "SD");
        assert!(disk.is_called("hosted-engine-backup-20240101120000"));
    }

    #[test]
    fn v3_unregistered_disk_found_by_description() {
        let list = Element::parse(V3_DISKS).unwrap();
        let disk = Disk::from_element(list.child("disk").unwrap()).unwrap();
        assert_eq!(disk.name, "virtio-disk0");
        assert_eq!(disk.status, "ok");
        assert_eq!(disk.sd_id, "SD");
        assert!(disk.is_called("hosted-engine-backup-20160601120000"));
        assert!(!disk.is_called("hosted-engine-backup-2016"));
    }

    #[test]
    fn create_body_per_dialect() {
        let disk = NewDisk {
            name: "hosted-engine-backup-20240101120000".into(),
            size_bytes: 1073741824,
            sd_id: "SD".into(),
        };
        let v4 = Element::parse(&disk.body(ApiVersion::V4)).unwrap();
        assert_eq!(v4.child_text("provisioned_size"), Some("1073741824"));
        assert_eq!(v4.child_text("format"), Some("raw"));
        assert_eq!(v4.child_text("sparse"), Some("false"));
        assert_eq!(v4.child_text("description"), Some(disk.name.as_str()));
        assert!(v4.child("interface").is_none());
        let sd = v4
            .child("storage_domains")
            .unwrap()
            .child("storage_domain")
            .unwrap();
        assert_eq!(sd.id(), Some("SD"));
        let v3 = Element::parse(&disk.body(ApiVersion::V3)).unwrap();
        assert_eq!(v3.child_text("interface"), Some("virtio"));
        assert_eq!(v3.child_text("size"), Some("1073741824"));
    }

    #[test]
    fn unregistered_paths() {
        assert_eq!(
            unregistered_path(ApiVersion::V3, "S"),
            "storagedomains/S/disks;unregistered"
        );
        assert_eq!(
            unregistered_path(ApiVersion::V4, "S"),
            "storagedomains/S/disks?unregistered=true"
        );
    }

    #[test]
    fn search_values_are_encoded() {
        assert_eq!(
            percent_encode("name=hosted-engine-backup-1"),
            "name%3Dhosted-engine-backup-1"
        );
        assert_eq!(percent_encode("a b&c"), "a%20b%26c");
    }
}
