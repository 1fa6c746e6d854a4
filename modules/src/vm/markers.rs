//! The appliance's restore/setup markers on the channel, and waiting for them in order.
//!
//! The cloud-init runcmd echoes one marker after engine-backup and one after engine-setup
//! (original-tool §4); a `_FAIL` marker ends the wait at once with the original's message.

use serde::Deserialize;
use std::fmt;

/// One marker the appliance writes to the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// engine-backup restored the backup.
    RestoreSuccess,
    /// engine-backup failed.
    RestoreFail,
    /// engine-setup finished.
    SetupSuccess,
    /// engine-setup failed.
    SetupFail,
}

/// A marker one can wait for (`wait_for` option): the success ones.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
pub enum Awaited {
    /// `HE_APPLIANCE_ENGINE_RESTORE_SUCCESS`.
    #[serde(rename = "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS")]
    RestoreSuccess,
    /// `HE_APPLIANCE_ENGINE_SETUP_SUCCESS`.
    #[serde(rename = "HE_APPLIANCE_ENGINE_SETUP_SUCCESS")]
    SetupSuccess,
}

impl From<Awaited> for Marker {
    fn from(awaited: Awaited) -> Self {
        match awaited {
            Awaited::RestoreSuccess => Marker::RestoreSuccess,
            Awaited::SetupSuccess => Marker::SetupSuccess,
        }
    }
}

impl Marker {
    /// Every marker.
    pub const ALL: [Marker; 4] = [
        Marker::RestoreSuccess,
        Marker::RestoreFail,
        Marker::SetupSuccess,
        Marker::SetupFail,
    ];

    /// The text the appliance writes.
    pub fn text(self) -> &'static str {
        match self {
            Marker::RestoreSuccess => "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS",
            Marker::RestoreFail => "HE_APPLIANCE_ENGINE_RESTORE_FAIL",
            Marker::SetupSuccess => "HE_APPLIANCE_ENGINE_SETUP_SUCCESS",
            Marker::SetupFail => "HE_APPLIANCE_ENGINE_SETUP_FAIL",
        }
    }

    /// The marker a channel line carries, if any (it may follow output without a newline).
    pub fn find(line: &str) -> Option<Marker> {
        Self::ALL
            .into_iter()
            .find(|marker| line.contains(marker.text()))
    }

    /// The original tool's message for a `_FAIL` marker; `None` for a success marker.
    pub fn failure(self) -> Option<&'static str> {
        match self {
            Marker::RestoreFail => {
                Some("engine-backup failed restoring the engine backup on the appliance")
            }
            Marker::SetupFail => Some("Engine setup failed on the appliance"),
            Marker::RestoreSuccess | Marker::SetupSuccess => None,
        }
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// Why waiting for markers ended badly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    /// The appliance reported a failure.
    #[error("{message} ({marker} on the setup channel)")]
    Failed {
        marker: Marker,
        message: &'static str,
    },
    /// A waited-for marker came before the one expected first.
    #[error("{arrived} arrived on the setup channel before {expected}: the appliance did not run what was expected")]
    OutOfOrder { arrived: Marker, expected: Marker },
}

/// Waits for a list of success markers, in order.
#[derive(Debug, Clone)]
pub struct MarkerWaiter {
    wanted: Vec<Marker>,
    seen: Vec<Marker>,
}

impl MarkerWaiter {
    /// Waits for `wanted`, in that order.
    pub fn new(wanted: Vec<Marker>) -> Self {
        Self {
            wanted,
            seen: Vec::new(),
        }
    }

    /// Looks at one channel line; returns the marker it carried, if any.
    pub fn observe(&mut self, line: &str) -> Result<Option<Marker>, MarkerError> {
        let Some(marker) = Marker::find(line) else {
            return Ok(None);
        };
        let expected = self.pending();
        self.seen.push(marker);
        if let Some(message) = marker.failure() {
            return Err(MarkerError::Failed { marker, message });
        }
        if let Some(expected) = expected {
            if marker != expected && self.wanted[self.next_index()..].contains(&marker) {
                return Err(MarkerError::OutOfOrder {
                    arrived: marker,
                    expected,
                });
            }
        }
        Ok(Some(marker))
    }

    /// Whether every wanted marker has arrived.
    pub fn done(&self) -> bool {
        self.next_index() == self.wanted.len()
    }

    /// The first wanted marker still missing.
    pub fn pending(&self) -> Option<Marker> {
        self.wanted.get(self.next_index()).copied()
    }

    /// Every marker seen so far, in arrival order (success or not, wanted or not).
    pub fn seen(&self) -> &[Marker] {
        &self.seen
    }

    fn next_index(&self) -> usize {
        let mut index = 0;
        for marker in &self.seen {
            if self.wanted.get(index) == Some(marker) {
                index += 1;
            }
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both() -> MarkerWaiter {
        MarkerWaiter::new(vec![Marker::RestoreSuccess, Marker::SetupSuccess])
    }

    #[test]
    fn waits_for_each_marker_in_order() {
        let mut waiter = both();
        assert_eq!(
            waiter
                .observe("[ INFO  ] Restoring engine database")
                .unwrap(),
            None
        );
        assert_eq!(waiter.pending(), Some(Marker::RestoreSuccess));
        assert_eq!(
            waiter
                .observe("HE_APPLIANCE_ENGINE_RESTORE_SUCCESS")
                .unwrap(),
            Some(Marker::RestoreSuccess)
        );
        assert!(!waiter.done());
        assert_eq!(waiter.pending(), Some(Marker::SetupSuccess));
        // Output without a final newline runs into the marker.
        waiter
            .observe("[ INFO  ] Execution of setup completed successfullyHE_APPLIANCE_ENGINE_SETUP_SUCCESS")
            .unwrap();
        assert!(waiter.done());
        assert_eq!(
            waiter.seen(),
            &[Marker::RestoreSuccess, Marker::SetupSuccess]
        );
    }

    #[test]
    fn a_fail_marker_ends_the_wait_with_the_original_message() {
        let mut waiter = both();
        let err = waiter
            .observe("HE_APPLIANCE_ENGINE_RESTORE_FAIL")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "engine-backup failed restoring the engine backup on the appliance \
             (HE_APPLIANCE_ENGINE_RESTORE_FAIL on the setup channel)"
        );
        let mut waiter = both();
        waiter
            .observe("HE_APPLIANCE_ENGINE_RESTORE_SUCCESS")
            .unwrap();
        let err = waiter
            .observe("HE_APPLIANCE_ENGINE_SETUP_FAIL")
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Engine setup failed on the appliance"),
            "{err}"
        );
    }

    #[test]
    fn a_fail_marker_fails_even_when_not_waited_for() {
        let mut waiter = MarkerWaiter::new(vec![Marker::SetupSuccess]);
        assert!(waiter.observe("HE_APPLIANCE_ENGINE_RESTORE_FAIL").is_err());
    }

    #[test]
    fn a_later_marker_before_an_earlier_one_is_an_error() {
        let mut waiter = both();
        let err = waiter
            .observe("HE_APPLIANCE_ENGINE_SETUP_SUCCESS")
            .unwrap_err();
        assert_eq!(
            err,
            MarkerError::OutOfOrder {
                arrived: Marker::SetupSuccess,
                expected: Marker::RestoreSuccess
            }
        );
    }

    #[test]
    fn an_unwanted_success_marker_is_recorded_but_not_required() {
        let mut waiter = MarkerWaiter::new(vec![Marker::SetupSuccess]);
        waiter
            .observe("HE_APPLIANCE_ENGINE_RESTORE_SUCCESS")
            .unwrap();
        assert!(!waiter.done());
        waiter.observe("HE_APPLIANCE_ENGINE_SETUP_SUCCESS").unwrap();
        assert!(waiter.done());
    }

    #[test]
    fn nothing_wanted_is_done_at_once() {
        assert!(MarkerWaiter::new(Vec::new()).done());
    }

    #[test]
    fn option_names_are_the_success_marker_texts() {
        let awaited: Vec<Awaited> = serde_json::from_str(
            r#"["HE_APPLIANCE_ENGINE_RESTORE_SUCCESS", "HE_APPLIANCE_ENGINE_SETUP_SUCCESS"]"#,
        )
        .unwrap();
        let markers: Vec<Marker> = awaited.into_iter().map(Marker::from).collect();
        assert_eq!(markers, vec![Marker::RestoreSuccess, Marker::SetupSuccess]);
        assert!(serde_json::from_str::<Awaited>(r#""SETUP_SUCCESS""#).is_err());
        assert!(serde_json::from_str::<Awaited>(r#""HE_APPLIANCE_ENGINE_SETUP_FAIL""#).is_err());
    }
}
