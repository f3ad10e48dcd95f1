//! Knative's living condition sets: a resource has a happy condition (`Ready`) that is True only
//! when every dependent condition is True, False as soon as one is False (carrying its reason and
//! message), and Unknown otherwise. `lastTransitionTime` moves only when a status changes, so a
//! reconcile that finds nothing new writes nothing new.

use crate::resources::status::Condition;

pub const READY: &str = "Ready";
pub const TRUE: &str = "True";
pub const FALSE: &str = "False";
pub const UNKNOWN: &str = "Unknown";

/// The dependents of a resource's `Ready` condition.
#[derive(Debug, Clone, Copy)]
pub struct ConditionSet {
    pub dependents: &'static [&'static str],
}

/// A status to give one condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub status: &'static str,
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl Mark {
    pub fn ok() -> Self {
        Self {
            status: TRUE,
            reason: None,
            message: None,
        }
    }

    pub fn failed(reason: &str, message: impl Into<String>) -> Self {
        Self {
            status: FALSE,
            reason: Some(reason.to_owned()),
            message: Some(message.into()),
        }
    }

    pub fn unknown(reason: &str, message: impl Into<String>) -> Self {
        Self {
            status: UNKNOWN,
            reason: Some(reason.to_owned()),
            message: Some(message.into()),
        }
    }
}

impl ConditionSet {
    /// The conditions after marking `marks` (dependents not marked keep their current state, or
    /// start Unknown), with `Ready` derived from them. `now` (RFC 3339) stamps each change.
    pub fn apply(
        &self,
        current: &[Condition],
        marks: &[(&'static str, Mark)],
        now: &str,
    ) -> Vec<Condition> {
        let mut next: Vec<Condition> = self
            .dependents
            .iter()
            .map(|ty| {
                let mark = marks.iter().find(|(t, _)| t == ty).map(|(_, m)| m.clone());
                let existing = find(current, ty);
                let mark = mark.unwrap_or_else(|| match existing {
                    Some(c) => Mark {
                        status: status_of(&c.status),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                    },
                    None => Mark::unknown("Initializing", "waiting for the first reconcile"),
                });
                transition(existing, ty, mark, now)
            })
            .collect();
        let ready = self.ready_mark(&next);
        next.push(transition(find(current, READY), READY, ready, now));
        next.sort_by(|a, b| a.type_.cmp(&b.type_));
        next
    }

    /// `Ready`: the first False dependent, else the first Unknown one, else True.
    fn ready_mark(&self, conditions: &[Condition]) -> Mark {
        let first = |status: &str| conditions.iter().find(|c| c.status == status);
        match first(FALSE).or_else(|| first(UNKNOWN)) {
            Some(c) => Mark {
                status: status_of(&c.status),
                reason: c.reason.clone(),
                message: c.message.clone(),
            },
            None => Mark::ok(),
        }
    }
}

/// Whether `conditions` say Ready=True.
pub fn is_ready(conditions: &[Condition]) -> bool {
    find(conditions, READY).is_some_and(|c| c.status == TRUE)
}

fn find<'a>(conditions: &'a [Condition], ty: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == ty)
}

fn status_of(raw: &str) -> &'static str {
    match raw {
        TRUE => TRUE,
        FALSE => FALSE,
        _ => UNKNOWN,
    }
}

fn transition(existing: Option<&Condition>, ty: &str, mark: Mark, now: &str) -> Condition {
    let changed = existing.is_none_or(|c| c.status != mark.status);
    let last_transition_time = match existing {
        Some(c) if !changed => c.last_transition_time.clone(),
        _ => Some(now.to_owned()),
    };
    Condition {
        type_: ty.to_owned(),
        status: mark.status.to_owned(),
        severity: None,
        last_transition_time,
        reason: mark.reason,
        message: mark.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: ConditionSet = ConditionSet {
        dependents: &["A", "B"],
    };

    fn get<'a>(conditions: &'a [Condition], ty: &str) -> &'a Condition {
        find(conditions, ty).unwrap()
    }

    #[test]
    fn ready_follows_the_dependents() {
        type Case = (
            Vec<(&'static str, Mark)>,
            &'static str,
            Option<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (vec![("A", Mark::ok()), ("B", Mark::ok())], TRUE, None),
            (vec![("A", Mark::ok())], UNKNOWN, Some("Initializing")),
            (
                vec![
                    ("A", Mark::unknown("Wait", "w")),
                    ("B", Mark::failed("Bad", "b")),
                ],
                FALSE,
                Some("Bad"),
            ),
            (
                vec![
                    ("A", Mark::failed("First", "f")),
                    ("B", Mark::failed("Second", "s")),
                ],
                FALSE,
                Some("First"),
            ),
        ];
        for (marks, status, reason) in cases {
            let conditions = SET.apply(&[], &marks, "t0");
            let ready = get(&conditions, READY);
            assert_eq!(ready.status, status, "{marks:?}");
            assert_eq!(ready.reason.as_deref(), reason, "{marks:?}");
            assert_eq!(conditions.len(), 3);
        }
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let first = SET.apply(
            &[],
            &[("A", Mark::ok()), ("B", Mark::unknown("W", "w"))],
            "t0",
        );
        let same = SET.apply(
            &first,
            &[("A", Mark::ok()), ("B", Mark::unknown("W2", "w2"))],
            "t1",
        );
        assert_eq!(get(&same, "A").last_transition_time.as_deref(), Some("t0"));
        assert_eq!(get(&same, "B").last_transition_time.as_deref(), Some("t0"));
        assert_eq!(
            get(&same, "B").reason.as_deref(),
            Some("W2"),
            "reason still updates"
        );
        let done = SET.apply(&same, &[("B", Mark::ok())], "t2");
        assert_eq!(
            get(&done, "A").last_transition_time.as_deref(),
            Some("t0"),
            "A kept"
        );
        assert_eq!(get(&done, "B").last_transition_time.as_deref(), Some("t2"));
        assert_eq!(
            get(&done, READY).last_transition_time.as_deref(),
            Some("t2")
        );
        assert!(is_ready(&done));
        assert!(!is_ready(&same));
    }

    #[test]
    fn unmarked_dependents_keep_their_state_and_foreign_conditions_are_dropped() {
        let first = SET.apply(
            &[],
            &[("A", Mark::failed("Bad", "b")), ("B", Mark::ok())],
            "t0",
        );
        let mut with_foreign = first.clone();
        with_foreign.push(Condition {
            type_: "Old".into(),
            status: TRUE.into(),
            ..Default::default()
        });
        let next = SET.apply(&with_foreign, &[("B", Mark::ok())], "t1");
        assert_eq!(get(&next, "A").status, FALSE);
        assert_eq!(get(&next, READY).reason.as_deref(), Some("Bad"));
        assert!(find(&next, "Old").is_none());
        assert_eq!(next, first, "nothing changed, so nothing is rewritten");
    }
}
