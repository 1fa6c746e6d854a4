//! What a failed upgrade run leads to, by the phase the attempt reached: nothing to undo, an
//! automatic rollback (`he_auto_rollback`) while the new engine is not proved healthy, or the
//! healthy new engine left running. A pure decision: the plan carries it, the playbook's
//! rescue reads it.

use super::record::Phase;
use serde::Serialize;
use std::collections::BTreeMap;

/// What the playbook does after a failure, once the attempt reached a given phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterFailure {
    /// The engine disk was not written: the old engine's disk is intact; fix and re-run.
    Rerun,
    /// The engine disk was written and the new engine is not proved healthy, without
    /// `he_auto_rollback`: re-run to continue, or roll back explicitly.
    RerunOrRollBack,
    /// The engine disk was written and the new engine is not proved healthy, with
    /// `he_auto_rollback`: copy the verified backup back now.
    RollBack,
    /// The new engine passed restore, setup and its health page: it stays up, whatever
    /// `he_auto_rollback` says; re-run to finish, or roll back explicitly.
    KeepNewEngine,
}

impl AfterFailure {
    /// The decision for a failure once the attempt reached `phase`.
    pub fn at(phase: Phase, auto_rollback: bool) -> AfterFailure {
        if phase < Phase::EngineDiskWritten {
            AfterFailure::Rerun
        } else if phase >= Phase::EngineBooted {
            AfterFailure::KeepNewEngine
        } else if auto_rollback {
            AfterFailure::RollBack
        } else {
            AfterFailure::RerunOrRollBack
        }
    }

    /// The decision for every phase, keyed by the phase's name in the record.
    pub fn by_phase(auto_rollback: bool) -> BTreeMap<Phase, AfterFailure> {
        Phase::ALL
            .iter()
            .map(|&phase| (phase, AfterFailure::at(phase, auto_rollback)))
            .collect()
    }

    /// One line for the plan: what a failure leads to, before and after the new engine is healthy.
    pub fn plan_line(auto_rollback: bool) -> String {
        let before = match auto_rollback {
            true => "rolled back automatically (he_auto_rollback)",
            false => "left for a re-run or an explicit rollback (he_auto_rollback is off)",
        };
        format!(
            "on failure: before the engine disk is written, nothing to undo; once it is written and until the new engine is proved healthy (engine_booted), {before}; after that, the healthy new engine stays up (re-run to finish, or roll back explicitly)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::AfterFailure::*;
    use super::*;

    #[test]
    fn rolls_back_only_while_the_written_engine_disk_holds_an_unproved_engine() {
        // phase reached, without he_auto_rollback, with it
        let table = [
            (Phase::New, Rerun, Rerun),
            (Phase::BackupNamed, Rerun, Rerun),
            (Phase::Prepared, Rerun, Rerun),
            (Phase::EngineStopped, Rerun, Rerun),
            (Phase::BackedUp, Rerun, Rerun),
            (Phase::EngineDiskWritten, RerunOrRollBack, RollBack),
            (Phase::EngineBooted, KeepNewEngine, KeepNewEngine),
            (Phase::BackupRegistered, KeepNewEngine, KeepNewEngine),
            (Phase::Done, KeepNewEngine, KeepNewEngine),
        ];
        assert_eq!(table.len(), Phase::ALL.len(), "every phase is in the table");
        for (phase, without, with) in table {
            assert_eq!(AfterFailure::at(phase, false), without, "{phase:?}");
            assert_eq!(AfterFailure::at(phase, true), with, "{phase:?} auto");
        }
    }

    #[test]
    fn the_map_is_keyed_by_the_record_phase_names() {
        let map = serde_json::to_value(AfterFailure::by_phase(true)).unwrap();
        assert_eq!(map["engine_disk_written"], "roll_back");
        assert_eq!(map["engine_booted"], "keep_new_engine");
        assert_eq!(map["backed_up"], "rerun");
        assert_eq!(map.as_object().unwrap().len(), Phase::ALL.len());
    }
}
