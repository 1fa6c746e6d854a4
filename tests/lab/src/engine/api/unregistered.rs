//! Unregistered disks: volumes on the storage domain the engine's database does not know
//! (`storagedomains/{sd}/disks;unregistered` / `?unregistered=true`), and registering them
//! (POST there with `<disk id=..>`, or v4 `datacenters/{dc}/storagedomains/{sd}/disks/{id}/register`).

use crate::engine::api::context::{fault, not_found, operation_failed, ApiCall};
use crate::engine::api::disks;
use crate::engine::db::{Disk, DISK_OK};
use crate::engine::http::Reply;
use crate::engine::volumes::{self, FoundVolume};
use crate::engine::xml::{Element, XmlWriter};

/// The disk the engine would register from a volume.
fn disk_of(volume: &FoundVolume, sd_id: &str, now_ms: u64) -> Disk {
    Disk {
        id: volume.image_id.clone(),
        image_id: volume.volume_id.clone(),
        alias: volume.alias.clone(),
        description: volume.description.clone(),
        provisioned_size_bytes: volume.capacity_bytes,
        actual_size_bytes: volume.actual_bytes,
        format: volume.format.clone(),
        sparse: volume.sparse,
        status: DISK_OK.into(),
        storage_domain_id: sd_id.to_string(),
        created_at_ms: now_ms,
        ready_at_ms: None,
        bootable: false,
        shareable: false,
    }
}

/// Refuses when the domain's data center is not up (GetUnregisteredDisks runs on the SPM).
fn check_domain_active(call: &ApiCall, sd_id: &str, verb: &str) -> Result<(), Reply> {
    let Some(sd) = call.view.storage_domain(sd_id) else {
        return Err(not_found());
    };
    let dc_up = call
        .view
        .data_center(&sd.data_center_id)
        .is_some_and(|dc| dc.status == "up");
    if sd.status != "active" || !dc_up {
        return Err(operation_failed(
            409,
            &format!(
                "Cannot {verb} Virtual Disk. The relevant Storage Domain's status is {}.",
                if sd.status == "active" {
                    "Unknown"
                } else {
                    "Inactive"
                }
            ),
        ));
    }
    Ok(())
}

/// Unregistered volumes of `sd_id` (only the hosted-engine domain has storage in the lab).
fn found(call: &ApiCall, sd_id: &str) -> Vec<FoundVolume> {
    if sd_id != call.config.sd_id {
        return Vec::new();
    }
    volumes::unregistered(call.config, call.db)
}

/// `GET storagedomains/{sd}/disks;unregistered`.
pub fn list(call: &ApiCall, sd_id: &str) -> Reply {
    if let Err(reply) = check_domain_active(call, sd_id, "list") {
        return reply;
    }
    let mut xml = XmlWriter::new();
    xml.open("disks", &[]);
    for volume in found(call, sd_id) {
        disks::write(
            call,
            &mut xml,
            &disk_of(&volume, sd_id, call.now_ms),
            Some(sd_id),
        );
    }
    xml.close("disks");
    Reply::xml(200, xml.finish())
}

/// Registers the unregistered disk `disk_id`, overlaying alias/description from `overlay`.
fn register(
    call: &mut ApiCall,
    sd_id: &str,
    disk_id: &str,
    overlay: Option<&Element>,
) -> Result<Disk, Reply> {
    check_domain_active(call, sd_id, "register")?;
    let Some(volume) = found(call, sd_id)
        .into_iter()
        .find(|v| v.image_id == disk_id)
    else {
        return Err(not_found());
    };
    let mut disk = disk_of(&volume, sd_id, call.now_ms);
    if let Some(body) = overlay {
        if let Some(alias) = body.child_text("alias").or_else(|| body.child_text("name")) {
            disk.alias = alias.to_string();
        }
        if let Some(description) = body.child_text("description") {
            disk.description = description.to_string();
        }
    }
    call.db.disks.push(disk.clone());
    call.view.disks.push(disk.clone());
    call.dirty = true;
    Ok(disk)
}

/// `POST storagedomains/{sd}/disks;unregistered` with `<disk id="..">`: 201 + the disk.
pub fn register_by_post(call: &mut ApiCall, sd_id: &str) -> Reply {
    let body = match Element::parse(&call.request.body_text()) {
        Ok(body) if body.name == "disk" => body,
        Ok(other) => {
            return fault(
                400,
                "Operation Failed",
                &format!("Unexpected element '{}', expected 'disk'", other.name),
            )
        }
        Err(error) => {
            return fault(
                400,
                "Operation Failed",
                &format!("Failed to parse the request body: {error}"),
            )
        }
    };
    let Some(disk_id) = body.attribute("id").map(str::to_string) else {
        return crate::engine::api::context::incomplete("Disk", &["id"], "register");
    };
    match register(call, sd_id, &disk_id, Some(&body)) {
        Ok(disk) => {
            let location = call.dialect.href(&format!("disks/{}", disk.id));
            Reply::xml(201, disks::document(call, &disk, Some(sd_id)))
                .with_header("Location", &location)
        }
        Err(reply) => reply,
    }
}

/// `POST datacenters/{dc}/storagedomains/{sd}/disks/{id}/register` (v4): 200 + `<action>`.
pub fn register_action(call: &mut ApiCall, sd_id: &str, disk_id: &str) -> Reply {
    if call.view.disk(disk_id).is_some() {
        return operation_failed(
            409,
            "Cannot register Virtual Disk. The disk already exists.",
        );
    }
    match register(call, sd_id, disk_id, None) {
        Ok(_) => call.dialect.action_complete(),
        Err(reply) => reply,
    }
}
