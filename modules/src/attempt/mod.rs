//! An upgrade or rollback attempt: its record on the host, the version policy, the appliance
//! it installs, and the plan of the steps still to run (what check mode shows, what a re-run
//! continues with, which verified backup a rollback restores).
//!
//! Not here: doing the steps (the other domains' modules do), or writing the engine disk's
//! guard records (`image::safety`, read here only).

pub mod appliance_choice;
pub mod on_failure;
pub mod plan;
pub mod policy;
pub mod record;
pub mod restore;

pub use on_failure::AfterFailure;
pub use plan::{plan, Facts, Plan, PlannedStep, Step};
pub use record::{AttemptRecord, Kind, Phase};
