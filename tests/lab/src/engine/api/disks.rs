//! `disks[/{id}]` and `storagedomains/{sd}/disks` (registered disks): list, get, add
//! (202 + `locked`, then `ok`; backed by a real volume) and delete.

use crate::engine::api::context::{
    fault, incomplete, method_not_allowed, not_found, operation_failed, search_matches, ApiCall,
};
use crate::engine::api::storagedomains;
use crate::engine::db::{derived_uuid, Disk, DISK_LOCKED};
use crate::engine::faults;
use crate::engine::http::Reply;
use crate::engine::volumes;
use crate::engine::xml::{Element, XmlWriter};

/// Handles `disks[/{id}]`.
pub fn handle(call: &mut ApiCall, rest: &[&str]) -> Reply {
    match (call.request.method.as_str(), rest) {
        ("GET", []) => list(call, None),
        ("POST", []) => add(call, None),
        ("GET", [id]) => get(call, id, None),
        ("DELETE", [id]) => {
            let id = id.to_string();
            remove(call, &id)
        }
        (_, [] | [_]) => method_not_allowed(),
        _ => not_found(),
    }
}

/// `GET` of the disks collection, all or those on storage domain `sd_id`.
pub fn list(call: &ApiCall, sd_id: Option<&str>) -> Reply {
    let mut xml = XmlWriter::new();
    xml.open("disks", &[]);
    for disk in &call.view.disks {
        if sd_id.is_some_and(|sd| sd != disk.storage_domain_id) {
            continue;
        }
        let matches = search_matches(call.request.query_param("search"), |field| match field {
            "name" | "alias" => Some(disk.alias.clone()),
            "description" => Some(disk.description.clone()),
            "id" => Some(disk.id.clone()),
            "status" => Some(disk.status.clone()),
            "storage" => call
                .view
                .storage_domain(&disk.storage_domain_id)
                .map(|s| s.name.clone()),
            _ => None,
        });
        match matches {
            Ok(true) => write(call, &mut xml, disk, sd_id),
            Ok(false) => {}
            Err(reply) => return reply,
        }
    }
    xml.close("disks");
    Reply::xml(200, xml.finish())
}

/// `GET` of one disk (optionally through its storage domain).
pub fn get(call: &ApiCall, id: &str, sd_id: Option<&str>) -> Reply {
    match call
        .view
        .disk(id)
        .filter(|disk| sd_id.is_none_or(|sd| sd == disk.storage_domain_id))
    {
        Some(disk) => Reply::xml(200, document(call, disk, sd_id)),
        None => not_found(),
    }
}

/// One disk as a whole document.
pub fn document(call: &ApiCall, disk: &Disk, sd_id: Option<&str>) -> String {
    let mut xml = XmlWriter::new();
    write(call, &mut xml, disk, sd_id);
    xml.finish()
}

/// What a `<disk>` body asks for.
struct DiskRequest {
    id: Option<String>,
    image_id: Option<String>,
    alias: Option<String>,
    description: String,
    size_bytes: Option<u64>,
    format: Option<String>,
    sparse: Option<bool>,
    storage_domain: Option<String>,
    interface: Option<String>,
    bootable: bool,
    shareable: bool,
}

/// Parses a `<disk>` request body, or answers the engine's 400.
fn parse_disk(call: &ApiCall) -> Result<DiskRequest, Reply> {
    let text = call.request.body_text();
    let root = Element::parse(&text).map_err(|error| {
        fault(
            400,
            "Operation Failed",
            &format!("Failed to parse the request body: {error}"),
        )
    })?;
    if root.name != "disk" {
        return Err(fault(
            400,
            "Operation Failed",
            &format!("Unexpected element '{}', expected 'disk'", root.name),
        ));
    }
    let number = |name: &str| -> Result<Option<u64>, Reply> {
        match root.child_text(name) {
            None => Ok(None),
            Some(text) => text.parse::<u64>().map(Some).map_err(|_| {
                fault(
                    400,
                    "Invalid value",
                    &format!("Value '{text}' of {name} is not a number"),
                )
            }),
        }
    };
    let boolean = |name: &str| -> Option<bool> {
        root.child_text(name)
            .map(|text| text.eq_ignore_ascii_case("true") || text == "1")
    };
    let size_bytes = match number("provisioned_size")? {
        Some(size) => Some(size),
        None => number("size")?,
    };
    let storage_domain = root
        .child("storage_domains")
        .and_then(|sds| sds.child("storage_domain"))
        .and_then(|sd| {
            sd.attribute("id").map(str::to_string).or_else(|| {
                let name = sd.child_text("name")?;
                call.view
                    .storage_domains
                    .iter()
                    .find(|s| s.name == name)
                    .map(|s| s.id.clone())
                    .or(Some(format!("name:{name}")))
            })
        });
    Ok(DiskRequest {
        id: root.attribute("id").map(str::to_string),
        image_id: root.child_text("image_id").map(str::to_string),
        alias: root
            .child_text("alias")
            .or_else(|| root.child_text("name"))
            .map(str::to_string),
        description: root.child_text("description").unwrap_or("").to_string(),
        size_bytes,
        format: root.child_text("format").map(str::to_lowercase),
        sparse: boolean("sparse"),
        storage_domain,
        interface: root.child_text("interface").map(str::to_string),
        bootable: boolean("bootable").unwrap_or(false),
        shareable: boolean("shareable").unwrap_or(false),
    })
}

/// `POST disks` / `POST storagedomains/{sd}/disks`: AddDisk.
pub fn add(call: &mut ApiCall, sd_from_path: Option<&str>) -> Reply {
    let wanted = match parse_disk(call) {
        Ok(wanted) => wanted,
        Err(reply) => return reply,
    };
    let mut missing = Vec::new();
    if call.dialect.v3 && wanted.interface.is_none() {
        missing.push("interface");
    }
    if wanted.size_bytes.is_none() {
        missing.push("provisionedSize|size");
    }
    if wanted.format.is_none() {
        missing.push("format");
    }
    if !missing.is_empty() {
        return incomplete("Disk", &missing, "add");
    }
    let size_bytes = wanted.size_bytes.unwrap_or(0);
    let format = wanted.format.clone().unwrap_or_default();
    if format != "raw" && format != "cow" {
        return fault(400, "Invalid value", &format!("{format} is not a member of DiskFormat. Possible values for DiskFormat are: cow, raw"));
    }
    let sparse = wanted.sparse.unwrap_or(format == "cow");
    let sd_id = sd_from_path
        .map(str::to_string)
        .or(wanted.storage_domain.clone());
    let Some(sd) = sd_id
        .as_deref()
        .and_then(|id| call.view.storage_domain(id))
        .cloned()
    else {
        return operation_failed(
            400,
            "Cannot add Virtual Disk. Storage Domain doesn't exist.",
        );
    };
    if let Some(id) = &wanted.id {
        if call.db.disk(id).is_some() {
            return operation_failed(409, "Cannot add Virtual Disk. The disk already exists.");
        }
    }
    if sd.status != "active" {
        return operation_failed(
            409,
            "Cannot add Virtual Disk. The relevant Storage Domain's status is Inactive.",
        );
    }
    if size_bytes == 0 {
        return fault(
            400,
            "Invalid value",
            "Disk provisioned size must be greater than zero",
        );
    }
    let needed = if sparse { 0 } else { size_bytes };
    let (available, _, _) = storagedomains::space(call, &sd);
    if needed > available {
        return operation_failed(
            400,
            &format!(
                "Cannot add Virtual Disk. Low disk space on Storage Domain {}.",
                sd.name
            ),
        );
    }
    let unique = format!("{}/{}", call.now_ms, call.db.disks.len());
    let id = wanted
        .id
        .clone()
        .unwrap_or_else(|| derived_uuid(call.now_ms ^ call.config.seed, &format!("disk/{unique}")));
    let image_id = wanted.image_id.clone().unwrap_or_else(|| {
        derived_uuid(call.now_ms ^ call.config.seed, &format!("volume/{unique}"))
    });
    let alias = wanted
        .alias
        .clone()
        .unwrap_or_else(|| format!("Disk{}", call.db.disks.len() + 1));
    if sd.id == call.config.sd_id {
        if let Err(error) = volumes::create(
            call.config,
            &id,
            &image_id,
            size_bytes,
            &alias,
            &wanted.description,
            !sparse,
        ) {
            return operation_failed(
                500,
                &format!("Cannot add Virtual Disk. Failed to create the volume: {error}"),
            );
        }
    }
    let delay_ms = faults::disk_create_delay(call.db).as_millis() as u64;
    let disk = Disk {
        id: id.clone(),
        image_id,
        alias,
        description: wanted.description,
        provisioned_size_bytes: size_bytes,
        actual_size_bytes: if sparse { 0 } else { size_bytes },
        format,
        sparse,
        status: DISK_LOCKED.into(),
        storage_domain_id: sd.id.clone(),
        created_at_ms: call.now_ms,
        ready_at_ms: Some(call.now_ms + delay_ms),
        bootable: wanted.bootable,
        shareable: wanted.shareable,
    };
    call.db.disks.push(disk.clone());
    call.view.disks.push(disk.clone());
    call.dirty = true;
    if call.expects_created() {
        call.wait_for_disk = Some(id);
        return Reply::empty(201);
    }
    let mut xml = XmlWriter::new();
    write_with_creation(call, &mut xml, &disk, sd_from_path, true);
    Reply::xml(202, xml.finish())
}

/// `DELETE disks/{id}`: RemoveDisk, 200 with a completed action.
pub fn remove(call: &mut ApiCall, id: &str) -> Reply {
    let Some(disk) = call.view.disk(id).cloned() else {
        return not_found();
    };
    if disk.status == DISK_LOCKED {
        return operation_failed(
            409,
            "Cannot remove Virtual Disk. Related operation is currently in progress. Please try again later.",
        );
    }
    if disk.storage_domain_id == call.config.sd_id {
        if let Err(error) = volumes::remove(call.config, id) {
            return operation_failed(500, &format!("Cannot remove Virtual Disk. {error}"));
        }
    }
    call.db.disks.retain(|d| d.id != id);
    call.view.disks.retain(|d| d.id != id);
    call.dirty = true;
    call.dialect.action_complete()
}

/// Writes one `<disk>` in the call's dialect; `sd_id` scopes the href to a storage domain.
pub fn write(call: &ApiCall, xml: &mut XmlWriter, disk: &Disk, sd_id: Option<&str>) {
    write_with_creation(call, xml, disk, sd_id, false);
}

fn write_with_creation(
    call: &ApiCall,
    xml: &mut XmlWriter,
    disk: &Disk,
    sd_id: Option<&str>,
    pending: bool,
) {
    let dialect = &call.dialect;
    let href = match sd_id {
        Some(sd) => dialect.href(&format!("storagedomains/{sd}/disks/{}", disk.id)),
        None => dialect.href(&format!("disks/{}", disk.id)),
    };
    xml.open("disk", &[("href", &href), ("id", &disk.id)]);
    xml.leaf("name", &disk.alias);
    if !disk.description.is_empty() {
        xml.leaf("description", &disk.description);
    }
    if pending && dialect.v3 {
        xml.open("creation_status", &[])
            .leaf("state", "pending")
            .close("creation_status");
    }
    for rel in ["permissions", "statistics"] {
        xml.empty("link", &[("href", &format!("{href}/{rel}")), ("rel", rel)]);
    }
    xml.leaf("alias", &disk.alias);
    xml.leaf("image_id", &disk.image_id);
    if sd_id.is_some() {
        dialect.reference(
            xml,
            "storage_domain",
            "storagedomains",
            &disk.storage_domain_id,
        );
    }
    xml.open("storage_domains", &[]);
    dialect.reference(
        xml,
        "storage_domain",
        "storagedomains",
        &disk.storage_domain_id,
    );
    xml.close("storage_domains");
    if dialect.v3 {
        xml.leaf("size", disk.provisioned_size_bytes);
    }
    xml.leaf("provisioned_size", disk.provisioned_size_bytes);
    xml.leaf("actual_size", disk.actual_size_bytes);
    if !dialect.v3 {
        xml.leaf("total_size", disk.actual_size_bytes);
    }
    dialect.status(xml, "status", &disk.status);
    if dialect.v3 {
        xml.leaf("interface", "virtio");
    }
    xml.leaf("format", &disk.format)
        .leaf("sparse", disk.sparse)
        .leaf("bootable", disk.bootable)
        .leaf("shareable", disk.shareable)
        .leaf("wipe_after_delete", false)
        .leaf("propagate_errors", false);
    if !dialect.v3 {
        xml.leaf("content_type", "data");
    }
    xml.leaf("storage_type", "image");
    xml.close("disk");
}
