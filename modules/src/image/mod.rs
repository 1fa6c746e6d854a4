//! Disk images: the copy engine, content digests, qcow2, appliance OVA/OVF and description
//! files, target size checks and the engine-disk write guard behind `he_image_copy`.

pub mod appliance;
pub mod copy;
pub mod digest;
pub mod endpoint;
pub mod job;
pub mod ova;
pub mod progress;
pub mod proof;
pub mod qcow2;
pub mod safety;
pub mod target;
