//! Retention policies: what operators write, its validation, and the pure evaluation.
//!
//! - `spec`: [`PolicySpec`] as written in TOML or JSON, and [`Policy`], its validated form.
//! - `pattern`: tag patterns (globs or `regex:`) and repository globs.
//! - `schedule`: when a policy runs by itself (`every 6h`, `daily at 03:00`).
//! - `eval`: [`evaluate`], the decision with its reason for every tag and untagged manifest of
//!   one repository. No async, no I/O, no clock: the caller passes `now`.
//! - `sentence`: [`sentence()`], a policy said in one English sentence for listings.
//! - `runner`: [`Retention`], which stores policies, previews them and runs them (by hand or
//!   on schedule) through the catalogue, with the same deletion path as users'.

pub mod eval;
pub mod pattern;
pub mod runner;
pub mod schedule;
pub mod sentence;
pub mod spec;

pub use crate::selection::Millis;
pub use eval::{
    Evaluation, ManifestDecision, Protection, Rule, TagDecision, TagFacts, UntaggedFacts, evaluate,
};
pub use pattern::{Pattern, RepoPattern};
pub use runner::{Matched, Policies, Preview, Retention, RetentionError, Trigger};
pub use schedule::Schedule;
pub use sentence::sentence;
pub use spec::{DeleteSpec, KeepSpec, Policy, PolicySpec, TagScopeSpec};

/// Why a policy was refused. Every message names the field (`tags.exclude[1]: ...`).
///
/// [`PolicySpec::validate`] reports every problem it finds: one problem as itself, several as
/// [`PolicyError::Several`], whose message joins them with `"; "`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not valid TOML or JSON, or does not have the policy's shape (an unknown or
    /// missing field, a wrong type); the message gives the field and the line.
    #[error("invalid {format}: {message}")]
    Syntax {
        format: &'static str,
        message: String,
    },
    /// One field has a bad value.
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    /// Neither a delete rule nor a protected tag: the policy would do nothing.
    #[error(
        "the policy deletes nothing: give delete.older_than or delete.untagged_older_than \
         (or tags.protected for a policy that only protects tags)"
    )]
    DeletesNothing,
    /// More than one problem, in the order of the fields.
    #[error("{} problems: {}", .0.len(), .0.iter().enumerate().map(|(i, p)| format!("({}) {p}", i + 1)).collect::<Vec<_>>().join("; "))]
    Several(Vec<PolicyError>),
}

impl PolicyError {
    pub(crate) fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError::Field {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Each problem on its own (a single problem is a list of one).
    pub fn problems(&self) -> &[PolicyError] {
        match self {
            PolicyError::Several(all) => all,
            one => std::slice::from_ref(one),
        }
    }
}

const SECOND: Millis = 1_000;
const MINUTE: Millis = 60 * SECOND;
const HOUR: Millis = 60 * MINUTE;
pub(crate) const DAY: Millis = 24 * HOUR;

const UNITS: [(Millis, &str); 5] = [
    (DAY, "d"),
    (HOUR, "h"),
    (MINUTE, "m"),
    (SECOND, "s"),
    (1, "ms"),
];

/// Parses a duration as humantime does (`30d`, `12h`, `1h 30m`), in milliseconds.
pub(crate) fn parse_millis(text: &str) -> Result<Millis, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|_| "not a duration (use e.g. 90s, 30m, 12h, 7d)".to_string())?;
    Millis::try_from(d.as_millis()).map_err(|_| "too long".to_string())
}

/// Every unit, exactly: `6h`, `1d 12h`, `90s` is `1m 30s`. Parses back with [`parse_millis`].
pub(crate) fn format_exact(ms: Millis) -> String {
    let mut rest = ms.max(0);
    let mut parts = Vec::new();
    for (size, unit) in UNITS {
        if rest >= size {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

/// An age for a reason: the largest unit and the next one when it is not zero, rounded down
/// (`40d`, `40d 3h`, `2h 5m`, `12s`); negative ages are `0s`.
pub(crate) fn format_age(ms: Millis) -> String {
    let ms = ms.max(0);
    let Some(first) = UNITS.iter().position(|&(size, _)| ms >= size) else {
        return "0s".into();
    };
    let (size, unit) = UNITS[first];
    let mut text = format!("{}{unit}", ms / size);
    // Milliseconds matter below a second only.
    if let Some(&(next, next_unit)) = UNITS.get(first + 1).filter(|&&(n, _)| n >= SECOND) {
        let n = (ms % size) / next;
        if n > 0 {
            text.push_str(&format!(" {n}{next_unit}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_periods_format_readably() {
        let cases: &[(Millis, &str, &str)] = &[
            (0, "0s", "0s"),
            (-5, "0s", "0s"),
            (999, "999ms", "999ms"),
            (12 * SECOND, "12s", "12s"),
            (90 * SECOND, "1m 30s", "1m 30s"),
            (2 * HOUR + 5 * MINUTE + 7 * SECOND, "2h 5m", "2h 5m 7s"),
            (40 * DAY, "40d", "40d"),
            (40 * DAY + 3 * HOUR + 1, "40d 3h", "40d 3h 1ms"),
            (30 * DAY - 1, "29d 23h", "29d 23h 59m 59s 999ms"),
        ];
        for &(ms, age, exact) in cases {
            assert_eq!(format_age(ms), age, "{ms}");
            assert_eq!(format_exact(ms), exact, "{ms}");
            if ms >= 0 {
                assert_eq!(parse_millis(exact), Ok(ms), "{exact}");
            }
        }
    }

    #[test]
    fn several_problems_join_with_semicolons() {
        let e = PolicyError::Several(vec![
            PolicyError::field("name", "bad"),
            PolicyError::DeletesNothing,
        ]);
        assert!(
            e.to_string()
                .starts_with("2 problems: (1) name: bad; (2) the policy deletes nothing"),
            "{e}"
        );
        assert_eq!(e.problems().len(), 2);
        assert_eq!(PolicyError::DeletesNothing.problems().len(), 1);
    }
}
