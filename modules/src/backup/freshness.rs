//! Whether a given engine backup is recent enough to upgrade with: what changed on the engine
//! after the backup was taken is lost by the upgrade, so a backup older than the limit is
//! refused unless the operator accepts it. The backup's time is the newest time among the
//! archive's members (engine-backup writes them all at backup time; `BackupFacts::created`).

use super::archive::BackupFacts;
use super::error::BackupError;
use crate::ansible::Seconds;
use std::path::Path;

/// The module options `max_age` and `accept_stale` (he_inject_backup).
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreshnessOptions {
    /// Oldest the backup may be, in seconds; no limit when absent.
    pub max_age: Option<Seconds>,
    /// Use an older backup anyway, with a warning.
    #[serde(default)]
    pub accept_stale: bool,
}

impl crate::ansible::OptionSet for FreshnessOptions {
    fn take(
        options: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, crate::ansible::OptionError> {
        crate::ansible::take_group(options)
    }
}

impl FreshnessOptions {
    /// Judges the backup at `path` (its `facts`) by the clock now: its age in seconds (none
    /// without `max_age`) and the warning an accepted stale backup gets.
    pub fn judge_now(
        &self,
        path: &Path,
        facts: &BackupFacts,
    ) -> Result<(Option<u64>, Option<String>), BackupError> {
        let Some(max_age) = self.max_age else {
            return Ok((None, None));
        };
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let rule = FreshnessRule {
            max_age_s: max_age.duration().as_secs(),
            accept_stale: self.accept_stale,
        };
        let judged = judge(path, facts.created_s, &facts.created, now_s, rule)?;
        let warning = match judged {
            Freshness::Fresh { .. } => None,
            Freshness::StaleAccepted { age_s } => Some(format!(
                "the engine backup {} was created {}, {} ago (more than max_age, {} s), and is used as accept_stale asks: what changed on the engine since then is lost",
                path.display(),
                facts.created,
                human_duration(age_s),
                rule.max_age_s
            )),
        };
        Ok((Some(judged.age_s()), warning))
    }
}

/// The freshness rule of one run (module options `max_age` and `accept_stale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FreshnessRule {
    /// Oldest a backup may be, in seconds.
    pub max_age_s: u64,
    /// Use an older backup anyway.
    pub accept_stale: bool,
}

/// What the rule says about one backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// Younger than the limit (a backup from the future, a skewed clock, counts as 0 s old).
    Fresh {
        /// Age in seconds.
        age_s: u64,
    },
    /// Older than the limit, and accepted by the operator.
    StaleAccepted {
        /// Age in seconds.
        age_s: u64,
    },
}

impl Freshness {
    /// The backup's age in seconds.
    fn age_s(self) -> u64 {
        match self {
            Freshness::Fresh { age_s } | Freshness::StaleAccepted { age_s } => age_s,
        }
    }
}

/// Judges the backup at `path` created at `created_s` (Unix seconds, `created` for
/// messages) at `now_s`.
fn judge(
    path: &Path,
    created_s: u64,
    created: &str,
    now_s: u64,
    rule: FreshnessRule,
) -> Result<Freshness, BackupError> {
    let age_s = now_s.saturating_sub(created_s);
    match (age_s <= rule.max_age_s, rule.accept_stale) {
        (true, _) => Ok(Freshness::Fresh { age_s }),
        (false, true) => Ok(Freshness::StaleAccepted { age_s }),
        (false, false) => Err(BackupError::Stale {
            path: path.to_path_buf(),
            created: created.to_string(),
            age: human_duration(age_s),
            max_age_s: rule.max_age_s,
        }),
    }
}

/// `3 d 4 h`, `2 h 5 min`, `42 s`: an age an operator reads at a glance.
fn human_duration(seconds: u64) -> String {
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, _) => format!("{minutes} min"),
        (0, _, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} d {hours} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: FreshnessRule = FreshnessRule {
        max_age_s: 3600,
        accept_stale: false,
    };
    const NOW: u64 = 1_700_000_000;

    #[test]
    fn freshness_by_age_and_acceptance() {
        let accepting = FreshnessRule {
            accept_stale: true,
            ..RULE
        };
        let table = [
            (NOW - 10, RULE, Some(Freshness::Fresh { age_s: 10 })),
            (NOW - 3600, RULE, Some(Freshness::Fresh { age_s: 3600 })),
            (NOW + 50, RULE, Some(Freshness::Fresh { age_s: 0 })),
            (NOW - 3601, RULE, None),
            (
                NOW - 3601,
                accepting,
                Some(Freshness::StaleAccepted { age_s: 3601 }),
            ),
        ];
        for (created_s, rule, expected) in table {
            let judged = judge(Path::new("b.tar.gz"), created_s, "then", NOW, rule).ok();
            assert_eq!(judged, expected, "created {created_s}, {rule:?}");
        }
    }

    #[test]
    fn a_stale_backup_is_refused_with_its_time_age_and_limit() {
        let error = judge(
            Path::new("/root/b.tar.gz"),
            NOW - 2 * 86_400 - 7200,
            "2023-11-12T20:13:20Z",
            NOW,
            RULE,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("/root/b.tar.gz was created 2023-11-12T20:13:20Z"),
            "{error}"
        );
        assert!(error.contains("2 d 2 h"), "{error}");
        assert!(error.contains("max_age (3600 s)"), "{error}");
        assert!(error.contains("accept_stale"), "{error}");
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(human_duration(42), "42 s");
        assert_eq!(human_duration(125), "2 min");
        assert_eq!(human_duration(7500), "2 h 5 min");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600 + 59), "3 d 4 h");
    }
}
