//! The plan of an upgrade: every step of SPEC section 5, each to run or to skip, with the
//! reason, computed from the operator's choices and the previous attempt's record. A pure
//! function: check mode prints it, the playbook runs the steps it marks.

use super::on_failure::AfterFailure;
use super::record::{AttemptRecord, Kind, Phase};
use crate::ansible::{take_group, OptionError, OptionSet};
use serde::Serialize;
use std::collections::BTreeMap;

/// The steps of an upgrade, in the order the playbook runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// 1. The engine VM must run on this host.
    CheckEngineVm,
    /// 2. Read the engine: CA, SPM, versions, levels, AAA.
    ReadEngine,
    /// 3. Verify and stage the appliance before any downtime.
    StageAppliance,
    /// 4. Validate the engine backup archive.
    ValidateBackup,
    /// Name the backup disk once, so a re-run finds the same disk.
    NameBackupDisk,
    /// 5. Create (or find) the backup disk.
    CreateBackupDisk,
    /// 6. Stop the engine VM: the downtime begins.
    StopEngine,
    /// 7. Copy the engine disk onto the backup disk and verify the copy.
    BackupEngineDisk,
    /// A previous run stopped while writing the engine disk: put the backup back first.
    RestoreBeforeRewrite,
    /// 8. Write the staged appliance onto the engine disk.
    WriteAppliance,
    /// 9. Put the engine backup into the new engine disk.
    InjectBackup,
    /// 10. Write the cloud-init ISO (restore + engine-setup).
    WriteCloudInit,
    /// 11. Boot the new engine VM; wait for restore, setup and health.
    BootEngine,
    /// After a re-run past the boot: the new engine VM must be up.
    EnsureEngineRunning,
    /// 12. Register the backup disk in the new engine.
    RegisterBackupDisk,
    /// 13. Stop the new engine VM (unless `he_leave_running`).
    StopNewEngine,
    /// 14. Write the report.
    Report,
}

impl OptionSet for Facts {
    fn take(options: &mut serde_json::Map<String, serde_json::Value>) -> Result<Self, OptionError> {
        take_group(options)
    }
}

impl Step {
    /// Whether the step talks to the engine (so the run needs the admin password).
    pub fn needs_engine(self) -> bool {
        matches!(
            self,
            Step::ReadEngine | Step::CreateBackupDisk | Step::RegisterBackupDisk
        )
    }
}

/// Every step, in order.
pub const STEPS: [Step; 17] = [
    Step::CheckEngineVm,
    Step::ReadEngine,
    Step::StageAppliance,
    Step::ValidateBackup,
    Step::NameBackupDisk,
    Step::CreateBackupDisk,
    Step::StopEngine,
    Step::BackupEngineDisk,
    Step::RestoreBeforeRewrite,
    Step::WriteAppliance,
    Step::InjectBackup,
    Step::WriteCloudInit,
    Step::BootEngine,
    Step::EnsureEngineRunning,
    Step::RegisterBackupDisk,
    Step::StopNewEngine,
    Step::Report,
];

/// What the operator asked for (options of he_upgrade_plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Facts {
    /// `he_new_attempt`: upgrade again although the last attempt finished.
    pub new_attempt: bool,
    /// `he_leave_running`: keep the new engine VM running at the end.
    pub leave_running: bool,
    /// `he_auto_rollback`: roll back on a failure while the new engine is not proved healthy.
    pub auto_rollback: bool,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStep {
    /// Which step.
    pub step: Step,
    /// Whether this run does it.
    pub run: bool,
    /// Why it runs, or why not.
    pub reason: String,
}

/// The steps this run does and skips.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The phase a previous, unfinished attempt reached (this run continues from there).
    pub resume_from: Option<Phase>,
    /// The run that wrote the record this plan continues or reports.
    pub previous_run: Option<String>,
    /// The last attempt finished and no new one was asked for: nothing to do.
    pub finished: bool,
    /// The prepare part is done (the downtime may begin).
    pub downtime_ready: bool,
    /// Every step with its decision.
    pub steps: Vec<PlannedStep>,
    /// The steps of this run that talk to the engine (the run needs the admin password).
    pub engine_needed_by: Vec<Step>,
    /// What a failure leads to, by the phase the attempt reached when it happened.
    pub on_failure: BTreeMap<Phase, AfterFailure>,
    /// `he_auto_rollback`, for the line that says what a failure leads to.
    #[serde(skip)]
    auto_rollback: bool,
}

impl Plan {
    /// Whether `step` runs.
    pub fn runs(&self, step: Step) -> bool {
        self.steps
            .iter()
            .any(|planned| planned.step == step && planned.run)
    }

    /// `step -> runs`, for the playbook's `when:`.
    pub fn run_map(&self) -> BTreeMap<Step, bool> {
        self.steps
            .iter()
            .map(|planned| (planned.step, planned.run))
            .collect()
    }

    /// One line per step, then what a failure leads to, for check mode and the log.
    pub fn lines(&self) -> Vec<String> {
        let steps = self.steps.iter().map(|planned| {
            let verb = if planned.run { "run " } else { "skip" };
            let name = serde_json::to_value(planned.step)
                .ok()
                .and_then(|value| value.as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{verb} {name}: {}", planned.reason)
        });
        let on_failure = (!self.finished).then(|| AfterFailure::plan_line(self.auto_rollback));
        steps.chain(on_failure).collect()
    }
}

/// The plan of an upgrade run given the operator's `facts` and the last attempt's `record`.
pub fn plan(facts: &Facts, record: Option<&AttemptRecord>) -> Plan {
    let finished = record.is_some_and(|record| {
        record.kind == Kind::Upgrade && record.phase == Phase::Done && !facts.new_attempt
    });
    let resumed = record.filter(|record| record.unfinished(Kind::Upgrade));
    let phase = resumed.map_or(Phase::New, |record| record.phase);
    let run_id = resumed.map_or("", |record| record.run_id.as_str());
    let steps = STEPS
        .iter()
        .map(|&step| {
            let (run, reason) = if finished {
                let run_id = record.map_or("", |record| record.run_id.as_str());
                (
                    false,
                    format!("the upgrade run {run_id} finished; set he_new_attempt=true to upgrade again"),
                )
            } else {
                decide(step, phase, run_id, resumed, facts)
            };
            PlannedStep { step, run, reason }
        })
        .collect::<Vec<PlannedStep>>();
    let engine_needed_by = steps
        .iter()
        .filter(|planned| planned.run && planned.step.needs_engine())
        .map(|planned| planned.step)
        .collect();
    Plan {
        resume_from: resumed.map(|record| record.phase),
        previous_run: record.map(|record| record.run_id.clone()),
        finished,
        downtime_ready: !finished && phase >= Phase::Prepared,
        steps,
        engine_needed_by,
        on_failure: AfterFailure::by_phase(facts.auto_rollback),
        auto_rollback: facts.auto_rollback,
    }
}

/// Whether `step` runs when the attempt is at `phase` (written by run `run_id`), and why.
fn decide(
    step: Step,
    phase: Phase,
    run_id: &str,
    resumed: Option<&AttemptRecord>,
    facts: &Facts,
) -> (bool, String) {
    let before = |limit: Phase, todo: &str, done: &str| -> (bool, String) {
        if phase < limit {
            (true, todo.to_string())
        } else {
            (
                false,
                format!("{done} (run {run_id} reached {})", name(phase)),
            )
        }
    };
    let engine_still_up = |todo: &str| {
        if phase <= Phase::Prepared {
            (true, todo.to_string())
        } else {
            (
                false,
                format!("the engine VM was stopped by run {run_id}: the downtime continues"),
            )
        }
    };
    match step {
        Step::CheckEngineVm => engine_still_up("the engine VM must run on this host"),
        Step::ReadEngine => {
            engine_still_up("read the engine: CA, SPM, versions, compatibility levels, AAA")
        }
        Step::StageAppliance => (
            true,
            "verify the appliance (SHA-1, OVF) and stage it; a staged copy is re-verified, not made again".into(),
        ),
        Step::ValidateBackup => (
            true,
            "validate the engine backup archive (versions, DWH, AAA)".into(),
        ),
        Step::NameBackupDisk => {
            let named = resumed
                .and_then(|record| record.backup_name.as_deref())
                .unwrap_or("the backup disk");
            before(
                Phase::BackupNamed,
                "name the backup disk once: a re-run reuses the name, never a second disk",
                &format!("{named} is named"),
            )
        }
        Step::CreateBackupDisk => engine_still_up(
            "create the backup disk (or find it, on a re-run), the storage space checked first",
        ),
        Step::StopEngine => before(
            Phase::EngineBooted,
            "stop the engine VM: the downtime begins",
            "the new engine booted already",
        ),
        Step::BackupEngineDisk => {
            let checksum = resumed
                .and_then(|record| record.backup_checksum.as_deref())
                .unwrap_or("?");
            before(
                Phase::BackedUp,
                "copy the engine disk onto the backup disk and verify the copy",
                &format!("the verified backup {checksum} exists"),
            )
        }
        Step::RestoreBeforeRewrite => match phase {
            Phase::EngineDiskWritten => (
                true,
                format!("run {run_id} stopped while writing the engine disk: put the verified backup back first"),
            ),
            _ if phase < Phase::EngineDiskWritten => {
                (false, "the engine disk was not written yet".into())
            }
            _ => (false, "the new engine booted already".into()),
        },
        Step::WriteAppliance => before(
            Phase::EngineBooted,
            "write the staged appliance onto the engine disk (only with the verified backup's checksum)",
            "the new engine booted already",
        ),
        Step::InjectBackup => before(
            Phase::EngineBooted,
            "put the engine backup into the new engine disk",
            "the new engine booted already",
        ),
        Step::WriteCloudInit => before(
            Phase::EngineBooted,
            "write the cloud-init ISO that restores the backup and runs engine-setup",
            "the new engine booted already",
        ),
        Step::BootEngine => before(
            Phase::EngineBooted,
            "boot the new engine VM; follow restore and setup; wait for the engine health page",
            "the new engine booted already",
        ),
        Step::EnsureEngineRunning => {
            if phase >= Phase::EngineBooted {
                (
                    true,
                    format!("run {run_id} booted the new engine: it must be up again"),
                )
            } else {
                (false, "the boot of this run leaves it up".into())
            }
        }
        Step::RegisterBackupDisk => before(
            Phase::BackupRegistered,
            "register the backup disk in the new engine and read its version",
            "the backup disk is registered",
        ),
        Step::StopNewEngine => {
            if facts.leave_running {
                (false, "he_leave_running keeps the new engine VM up".into())
            } else {
                (true, "stop the new engine VM (he_leave_running keeps it up)".into())
            }
        }
        Step::Report => (true, "write the JSON report and the summary".into()),
    }
}

/// A phase's name as the record writes it.
fn name(phase: Phase) -> String {
    serde_json::to_value(phase)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn record(kind: Kind, phase: Phase) -> AttemptRecord {
        AttemptRecord {
            kind,
            phase,
            run_id: "upgrade-1".into(),
            backup_name: Some("hosted-engine-backup-1".into()),
            backup_checksum: Some("c0ffee".into()),
            details: Map::new(),
        }
    }

    /// The steps that run, in order.
    fn running(plan: &Plan) -> Vec<Step> {
        plan.steps
            .iter()
            .filter(|planned| planned.run)
            .map(|planned| planned.step)
            .collect()
    }

    use Step::*;

    /// The steps run after a failure at each phase (the record's phase is the last reached).
    fn expected(phase: Phase) -> Vec<Step> {
        let prepare = [CheckEngineVm, ReadEngine, StageAppliance, ValidateBackup];
        let checks = [StageAppliance, ValidateBackup];
        let write = [WriteAppliance, InjectBackup, WriteCloudInit, BootEngine];
        let tail = [RegisterBackupDisk, StopNewEngine, Report];
        let mut steps = Vec::new();
        match phase {
            Phase::New | Phase::BackupNamed | Phase::Prepared => {
                steps.extend(prepare);
                if phase == Phase::New {
                    steps.push(NameBackupDisk);
                }
                steps.extend([CreateBackupDisk, StopEngine, BackupEngineDisk]);
                steps.extend(write);
                steps.extend(tail);
            }
            Phase::EngineStopped => {
                steps.extend(checks);
                steps.extend([StopEngine, BackupEngineDisk]);
                steps.extend(write);
                steps.extend(tail);
            }
            Phase::BackedUp => {
                steps.extend(checks);
                steps.push(StopEngine);
                steps.extend(write);
                steps.extend(tail);
            }
            Phase::EngineDiskWritten => {
                steps.extend(checks);
                steps.extend([StopEngine, RestoreBeforeRewrite]);
                steps.extend(write);
                steps.extend(tail);
            }
            Phase::EngineBooted => {
                steps.extend(checks);
                steps.push(EnsureEngineRunning);
                steps.extend(tail);
            }
            Phase::BackupRegistered => {
                steps.extend(checks);
                steps.extend([EnsureEngineRunning, StopNewEngine, Report]);
            }
            Phase::Done => unreachable!("a finished attempt is not resumed"),
        }
        steps
    }

    #[test]
    fn a_first_run_does_every_step_but_the_resume_ones() {
        let plan = plan(&Facts::default(), None);
        assert_eq!(running(&plan), expected(Phase::New));
        assert_eq!(plan.resume_from, None);
        assert!(!plan.finished);
        assert!(!plan.downtime_ready);
    }

    #[test]
    fn a_rerun_after_a_failure_at_every_phase_continues_where_it_stopped() {
        for phase in &Phase::ALL[1..8] {
            let record = record(Kind::Upgrade, *phase);
            let plan = plan(&Facts::default(), Some(&record));
            assert_eq!(running(&plan), expected(*phase), "after {phase:?}");
            assert_eq!(plan.resume_from, Some(*phase));
            assert_eq!(plan.downtime_ready, *phase >= Phase::Prepared, "{phase:?}");
        }
    }

    #[test]
    fn the_verified_backup_is_made_once_and_the_engine_disk_restored_before_a_rewrite() {
        let backed_up = plan(
            &Facts::default(),
            Some(&record(Kind::Upgrade, Phase::BackedUp)),
        );
        assert!(!backed_up.runs(BackupEngineDisk));
        assert!(backed_up.lines().iter().any(|line| line
            == "skip backup_engine_disk: the verified backup c0ffee exists (run upgrade-1 reached backed_up)"));
        let written = plan(
            &Facts::default(),
            Some(&record(Kind::Upgrade, Phase::EngineDiskWritten)),
        );
        assert!(written.runs(RestoreBeforeRewrite));
        assert!(!written.runs(BackupEngineDisk));
        let booted = plan(
            &Facts::default(),
            Some(&record(Kind::Upgrade, Phase::EngineBooted)),
        );
        assert!(!booted.runs(RestoreBeforeRewrite) && !booted.runs(WriteAppliance));
    }

    #[test]
    fn a_finished_upgrade_plans_nothing_unless_a_new_attempt_is_asked() {
        let done = record(Kind::Upgrade, Phase::Done);
        let plan_done = plan(&Facts::default(), Some(&done));
        assert!(plan_done.finished);
        assert!(running(&plan_done).is_empty());
        assert!(plan_done.steps[0].reason.contains("he_new_attempt=true"));
        let again = Facts {
            new_attempt: true,
            ..Facts::default()
        };
        assert_eq!(running(&plan(&again, Some(&done))), expected(Phase::New));
    }

    #[test]
    fn a_rollback_record_starts_a_new_upgrade() {
        for phase in Phase::ALL {
            let rollback = record(Kind::Rollback, phase);
            let plan = plan(&Facts::default(), Some(&rollback));
            assert_eq!(running(&plan), expected(Phase::New), "{phase:?}");
            assert!(!plan.finished);
        }
    }

    #[test]
    fn leave_running_skips_the_final_stop() {
        let facts = Facts {
            leave_running: true,
            ..Facts::default()
        };
        let plan = plan(&facts, None);
        assert!(!plan.runs(StopNewEngine));
        assert!(!plan.run_map()[&StopNewEngine]);
        assert_eq!(plan.run_map().len(), STEPS.len());
    }

    #[test]
    fn the_engine_is_needed_by_the_steps_that_talk_to_it_a_resumed_downtime_included() {
        let needed =
            |record: Option<&AttemptRecord>| plan(&Facts::default(), record).engine_needed_by;
        assert_eq!(
            needed(None),
            vec![ReadEngine, CreateBackupDisk, RegisterBackupDisk]
        );
        // The engine VM is down: nothing asks the engine until the new one is registered with.
        for phase in [
            Phase::EngineStopped,
            Phase::BackedUp,
            Phase::EngineDiskWritten,
            Phase::EngineBooted,
        ] {
            let record = record(Kind::Upgrade, phase);
            assert_eq!(needed(Some(&record)), vec![RegisterBackupDisk], "{phase:?}");
        }
        assert!(needed(Some(&record(Kind::Upgrade, Phase::BackupRegistered))).is_empty());
        assert!(needed(Some(&record(Kind::Upgrade, Phase::Done))).is_empty());
    }

    #[test]
    fn the_plan_says_what_a_failure_leads_to_at_each_phase() {
        let auto = Facts {
            auto_rollback: true,
            ..Facts::default()
        };
        let plan = plan(&auto, None);
        assert_eq!(
            plan.on_failure[&Phase::EngineDiskWritten],
            AfterFailure::RollBack
        );
        assert_eq!(
            plan.on_failure[&Phase::EngineBooted],
            AfterFailure::KeepNewEngine
        );
        let last = plan.lines().pop().unwrap();
        assert!(last.starts_with("on failure:"), "{last}");
        assert!(last.contains("rolled back automatically"), "{last}");
        assert!(last.contains("the healthy new engine stays up"), "{last}");
    }
}
