//! The engine appliance as oVirt ships it: a gzip tar OVA (`master/vms/<id>/<id>.ovf`,
//! `images/<img>/<vol>` qcow2 + `.meta`) and its description file (host-formats.md
//! section 6), holding the new OS + engine, not yet set up.

use crate::config::LabConfig;
use crate::engine::db::derived_uuid;
use crate::guest::{disk, tree};
use anyhow::Context as _;
use sha1::{Digest, Sha1};
use std::path::Path;
use std::process::Command;

/// Ids inside the OVA: template (VM) id, image id, volume id.
pub struct ApplianceIds {
    /// OVF template id (`master/vms/<id>/<id>.ovf`).
    pub template_id: String,
    /// Image group id (`images/<img>/`).
    pub image_id: String,
    /// Volume id (the qcow2 member name).
    pub volume_id: String,
}

/// The appliance ids of a lab.
pub fn ids(config: &LabConfig) -> ApplianceIds {
    ApplianceIds {
        template_id: derived_uuid(config.seed, "appliance/template"),
        image_id: derived_uuid(config.seed, "appliance/image"),
        volume_id: derived_uuid(config.seed, "appliance/volume"),
    }
}

/// The OVF descriptor imagefactory writes for the appliance (one line, `ovf:` attributes).
pub fn render_ovf(config: &LabConfig, virtual_size_bytes: u64, created: &str) -> String {
    let ids = ids(config);
    let file_ref = format!("{}/{}", ids.image_id, ids.volume_id);
    let size_gib = virtual_size_bytes.div_ceil(1 << 30);
    let snapshot = derived_uuid(config.seed, "appliance/snapshot");
    let zero = crate::storage::BLANK_UUID;
    let name = format!("ovirt-engine-appliance-{}", config.appliance_version());
    let (cpus, memory_mb) = (4, 16384);
    format!(
        concat!(
            r#"<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1/" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ovf:version="0.9">"#,
            r#"<References><File ovf:href="{file_ref}" ovf:id="{vol}" ovf:size="{bytes}" ovf:description="{name}" /></References>"#,
            r#"<Section xsi:type="ovf:NetworkSection_Type"><Info>List of Networks</Info></Section>"#,
            r#"<Section xsi:type="ovf:DiskSection_Type"><Disk ovf:diskId="{vol}" ovf:size="{gib}" ovf:vm_snapshot_id="{snapshot}" ovf:actual_size="{gib}" ovf:format="http://www.vmware.com/specifications/vmdk.html#sparse" ovf:parentRef="" ovf:fileRef="{file_ref}" ovf:volume-type="Sparse" ovf:volume-format="COW" ovf:disk-interface="VirtIO" ovf:disk-type="System" ovf:boot="true" ovf:wipe-after-delete="false" /></Section>"#,
            r#"<Content xsi:type="ovf:VirtualSystem_Type" ovf:id="out"><Name>{name}</Name><TemplateId>{tpl}</TemplateId><Description>Created by OVABuilder</Description><Domain /><CreationDate>{created}</CreationDate><TimeZone /><IsAutoSuspend>false</IsAutoSuspend><VmType>1</VmType><default_display_type>0</default_display_type><default_boot_sequence>1</default_boot_sequence>"#,
            r#"<Section xsi:type="ovf:OperatingSystemSection_Type" ovf:id="{tpl}" ovf:required="false"><Info>Guest OS</Info><Description>OtherLinux</Description></Section>"#,
            r#"<Section xsi:type="ovf:VirtualHardwareSection_Type"><Info>{cpus} CPU, {mem} Memory</Info><System><vssd:VirtualSystemType>RHEVM 4.6.0.163</vssd:VirtualSystemType></System>"#,
            r#"<Item><rasd:Caption>{cpus} virtual CPU</rasd:Caption><rasd:Description>Number of virtual CPU</rasd:Description><rasd:InstanceId>1</rasd:InstanceId><rasd:ResourceType>3</rasd:ResourceType><rasd:num_of_sockets>1</rasd:num_of_sockets><rasd:cpu_per_socket>{cpus}</rasd:cpu_per_socket></Item>"#,
            r#"<Item><rasd:Caption>{mem} MB of memory</rasd:Caption><rasd:Description>Memory Size</rasd:Description><rasd:InstanceId>2</rasd:InstanceId><rasd:ResourceType>4</rasd:ResourceType><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:VirtualQuantity>{mem}</rasd:VirtualQuantity></Item>"#,
            r#"<Item><rasd:Caption>Drive 1</rasd:Caption><rasd:InstanceId>{vol}</rasd:InstanceId><rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>{file_ref}</rasd:HostResource><rasd:Parent>{zero}</rasd:Parent><rasd:Template>{zero}</rasd:Template><rasd:ApplicationList /><rasd:StorageId>{zero}</rasd:StorageId><rasd:StoragePoolId>{zero}</rasd:StoragePoolId><rasd:CreationDate>{created}</rasd:CreationDate><rasd:LastModified>{created}</rasd:LastModified></Item>"#,
            r#"<Item><rasd:Caption>Ethernet 0 rhevm</rasd:Caption><rasd:InstanceId>3</rasd:InstanceId><rasd:ResourceType>10</rasd:ResourceType><rasd:ResourceSubType>3</rasd:ResourceSubType><rasd:Connection>rhevm</rasd:Connection><rasd:Name>eth0</rasd:Name><rasd:speed>1000</rasd:speed></Item>"#,
            r#"<Item><rasd:Caption>Graphics</rasd:Caption><rasd:InstanceId>5</rasd:InstanceId><rasd:ResourceType>20</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>"#,
            r#"</Section></Content></ovf:Envelope>"#
        ),
        file_ref = file_ref,
        vol = ids.volume_id,
        bytes = virtual_size_bytes,
        name = name,
        gib = size_gib,
        snapshot = snapshot,
        tpl = ids.template_id,
        created = created,
        cpus = cpus,
        mem = memory_mb,
        zero = zero,
    )
}

/// The legacy, unsorted `.meta` imagefactory puts next to the OVA disk.
fn render_meta(config: &LabConfig, virtual_size_bytes: u64, ctime: u64) -> String {
    let ids = ids(config);
    let zero = crate::storage::BLANK_UUID;
    format!(
        "DOMAIN={zero}\nVOLTYPE=LEAF\nCTIME={ctime}\nFORMAT=COW\nIMAGE={}\nDISKTYPE=1\nPUUID={zero}\n\
         LEGALITY=LEGAL\nMTIME={ctime}\nPOOL_UUID={zero}\nSIZE={}\nTYPE=SPARSE\n\
         DESCRIPTION=Uploaded by Image Factory\nEOF\n",
        ids.image_id,
        virtual_size_bytes / 512
    )
}

/// Builds the OVA and the description file under `DIR/appliance`; `work` is scratch space.
pub fn build(config: &LabConfig, work: &Path, created_at: u64) -> anyhow::Result<()> {
    let size = config.appliance_size_bytes;
    let tree_dir = work.join("appliance-tree");
    let appliance_tree = tree::appliance_tree(&config.new_engine, "localhost.localdomain");
    tree::write_tree(&appliance_tree, &tree_dir)?;
    let raw = work.join("appliance.raw");
    let fs_uuid = derived_uuid(config.seed, "appliance/filesystem");
    disk::build_image(&tree_dir, &raw, size, &fs_uuid, created_at)?;
    let qcow2 = work.join("appliance.qcow2");
    disk::run(
        Command::new("qemu-img")
            .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
            .arg(&raw)
            .arg(&qcow2),
    )
    .context("cannot convert the appliance disk to qcow2")?;
    let _ = std::fs::remove_file(&raw);

    let ids = ids(config);
    let created = format_ovf_date(created_at);
    let ovf = render_ovf(config, size, &created);
    let meta = render_meta(config, size, created_at);
    let ova = config.appliance_ova_path();
    std::fs::create_dir_all(config.appliance_dir())?;
    write_ova(&ova, &ids, &ovf, &qcow2, &meta, created_at)
        .with_context(|| format!("cannot write the appliance OVA {}", ova.display()))?;
    let _ = std::fs::remove_file(&qcow2);

    let sha1 = sha1_file(&ova)?;
    let description = format!(
        "description=The oVirt Engine Appliance image (OVA)\nversion={}\npath={}\nsha1sum={sha1}\n",
        config.appliance_version(),
        ova.display()
    );
    std::fs::write(config.appliance_desc_path(), description)?;
    Ok(())
}

/// Writes the gzip tar with the OVF, the qcow2 disk and its `.meta`.
fn write_ova(
    ova: &Path,
    ids: &ApplianceIds,
    ovf: &str,
    qcow2: &Path,
    meta: &str,
    mtime: u64,
) -> anyhow::Result<()> {
    let file = std::fs::File::create(ova)?;
    let gzip = flate2::GzBuilder::new().write(file, flate2::Compression::fast());
    let mut archive = tar::Builder::new(gzip);
    let mut add = |name: &str, size: u64, mode: u32, reader: &mut dyn std::io::Read| {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(mode);
        header.set_mtime(mtime);
        header.set_uid(36);
        header.set_gid(36);
        header.set_entry_type(tar::EntryType::Regular);
        archive.append_data(&mut header, name, reader)
    };
    let ovf_name = format!("master/vms/{0}/{0}.ovf", ids.template_id);
    add(&ovf_name, ovf.len() as u64, 0o644, &mut ovf.as_bytes())?;
    let disk_name = format!("images/{}/{}", ids.image_id, ids.volume_id);
    let mut disk_file = std::fs::File::open(qcow2)?;
    let disk_size = disk_file.metadata()?.len();
    add(&disk_name, disk_size, 0o644, &mut disk_file)?;
    add(
        &format!("{disk_name}.meta"),
        meta.len() as u64,
        0o644,
        &mut meta.as_bytes(),
    )?;
    archive.into_inner()?.finish()?;
    Ok(())
}

/// SHA-1 of a file, hex.
pub fn sha1_file(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha1::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// `YYYY/MM/DD HH:MM:SS` (UTC) as OVF CreationDate.
fn format_ovf_date(epoch_seconds: u64) -> String {
    let iso = crate::engine::clock::iso8601(epoch_seconds * 1000);
    // iso8601 gives `YYYY-MM-DDTHH:MM:SS.mmm+00:00`-like text; keep date and time.
    let date = iso.get(0..10).unwrap_or("1970-01-01").replace('-', "/");
    let time = iso.get(11..19).unwrap_or("00:00:00");
    format!("{date} {time}")
}
