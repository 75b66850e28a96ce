//! A retention policy as operators write it (TOML or JSON), and its validated form.
//!
//! ```toml
//! name = "ci-builds"
//! description = "CI builds of team A"
//! repositories = ["team-a/**", "*/nightly"]
//! schedule = "every 6h"            # or "daily at 03:00" (UTC); absent: only run by hand
//!
//! [tags]
//! include = ["*"]                  # tags the policy may delete (default: every tag)
//! exclude = ["regex:v[0-9]+(\\.[0-9]+)*"]
//! protected = ["release-*"]        # never deleted by any policy covering the repository
//!
//! [keep]
//! latest_pushed = 10
//! latest_pulled = 5
//! pushed_within = "7d"
//! pulled_within = "30d"
//!
//! [delete]
//! older_than = "30d"               # "0s": any age
//! untagged_older_than = "1d"
//! ```
//!
//! Durations stay as written in the spec, so showing a policy gives back what the operator
//! wrote; [`PolicySpec::validate`] compiles them with the patterns into a [`Policy`].

use serde::{Deserialize, Serialize};

use super::{Millis, Pattern, PolicyError, RepoPattern, Schedule, parse_millis};

/// A policy as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// `^[a-z0-9][a-z0-9._-]{0,62}$`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Repository globs; at least one.
    pub repositories: Vec<String>,
    /// `every <duration>` or `daily at HH:MM`; absent: the policy runs only by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "TagScopeSpec::is_empty")]
    pub tags: TagScopeSpec,
    #[serde(default, skip_serializing_if = "KeepSpec::is_empty")]
    pub keep: KeepSpec,
    #[serde(default, skip_serializing_if = "DeleteSpec::is_empty")]
    pub delete: DeleteSpec,
}

/// Which tags the policy considers, and which it protects everywhere it applies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagScopeSpec {
    /// Tags the policy may delete; empty: every tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Tags the policy never considers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Tags no policy covering the repository deletes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected: Vec<String>,
}

/// Tags kept although a delete rule matches them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_pushed: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_pulled: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_within: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_within: Option<String>,
}

/// What the policy deletes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untagged_older_than: Option<String>,
}

impl TagScopeSpec {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
impl KeepSpec {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
impl DeleteSpec {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A duration of the policy: the milliseconds, and the text written, for reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) ms: Millis,
    pub(crate) text: String,
}

/// A validated policy, ready for [`super::evaluate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    spec: PolicySpec,
    repositories: Vec<RepoPattern>,
    pub(crate) include: Vec<Pattern>,
    pub(crate) exclude: Vec<Pattern>,
    pub(crate) protected: Vec<Pattern>,
    pub(crate) latest_pushed: Option<usize>,
    pub(crate) latest_pulled: Option<usize>,
    pub(crate) pushed_within: Option<Window>,
    pub(crate) pulled_within: Option<Window>,
    pub(crate) older_than: Option<Window>,
    pub(crate) untagged_older_than: Option<Window>,
    schedule: Option<Schedule>,
}

impl PolicySpec {
    /// Reads a policy from TOML. Unknown fields are refused.
    pub fn from_toml(text: &str) -> Result<PolicySpec, PolicyError> {
        toml::from_str(text).map_err(|e| {
            let message = match e.span() {
                Some(span) => {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!("line {line}, column {column}: {}", e.message().trim_end())
                }
                None => e.message().trim_end().to_string(),
            };
            PolicyError::Syntax {
                format: "TOML",
                message,
            }
        })
    }

    /// Reads a policy from JSON. Unknown fields are refused.
    pub fn from_json(text: &str) -> Result<PolicySpec, PolicyError> {
        serde_json::from_str(text).map_err(|e| PolicyError::Syntax {
            format: "JSON",
            message: e.to_string(),
        })
    }

    /// Reads JSON when the first non-blank character is `{`, TOML otherwise.
    pub fn parse(text: &str) -> Result<PolicySpec, PolicyError> {
        if text.trim_start().starts_with('{') {
            Self::from_json(text)
        } else {
            Self::from_toml(text)
        }
    }

    /// The policy as TOML, fields left out when absent; [`PolicySpec::from_toml`] reads it back.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("strings, numbers and arrays always make TOML")
    }

    /// The policy as pretty JSON, fields left out when absent.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("strings, numbers and arrays always make JSON")
    }

    /// Checks every field and compiles the policy. Every problem found is reported, each
    /// naming its field: one as itself, several as [`PolicyError::Several`].
    pub fn validate(&self) -> Result<Policy, PolicyError> {
        let mut problems = Problems::default();

        if !valid_name(&self.name) {
            problems.push(PolicyError::field(
                "name",
                format!(
                    "{:?} is not a valid policy name (lower-case letters, digits, '.', '_', '-'; \
                     at most 63)",
                    self.name
                ),
            ));
        }
        if self.repositories.is_empty() {
            problems.push(PolicyError::field(
                "repositories",
                "at least one repository pattern is needed",
            ));
        }
        let repositories: Vec<_> = self
            .repositories
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                problems.check(RepoPattern::parse(&format!("repositories[{i}]"), r))
            })
            .collect();
        let schedule = self.schedule.as_ref().and_then(|s| {
            problems.check(Schedule::parse(s).map_err(|e| PolicyError::field("schedule", e)))
        });
        let include = problems.patterns("include", &self.tags.include);
        let exclude = problems.patterns("exclude", &self.tags.exclude);
        let protected = problems.patterns("protected", &self.tags.protected);
        let latest_pushed = problems.count("keep.latest_pushed", self.keep.latest_pushed);
        let latest_pulled = problems.count("keep.latest_pulled", self.keep.latest_pulled);
        let pushed_within = problems.window("keep.pushed_within", &self.keep.pushed_within, false);
        let pulled_within = problems.window("keep.pulled_within", &self.keep.pulled_within, false);
        let older_than = problems.window("delete.older_than", &self.delete.older_than, true);
        let untagged_older_than = problems.window(
            "delete.untagged_older_than",
            &self.delete.untagged_older_than,
            true,
        );
        if self.delete.older_than.is_none()
            && self.delete.untagged_older_than.is_none()
            && self.tags.protected.is_empty()
        {
            problems.push(PolicyError::DeletesNothing);
        }

        let mut problems = problems.0;
        match problems.len() {
            0 => Ok(Policy {
                spec: self.clone(),
                repositories,
                include,
                exclude,
                protected,
                latest_pushed,
                latest_pulled,
                pushed_within,
                pulled_within,
                older_than,
                untagged_older_than,
                schedule,
            }),
            1 => Err(problems.remove(0)),
            _ => Err(PolicyError::Several(problems)),
        }
    }
}

/// The problems found so far, in the order of the fields.
#[derive(Default)]
struct Problems(Vec<PolicyError>);

impl Problems {
    fn push(&mut self, e: PolicyError) {
        self.0.push(e);
    }

    fn check<T>(&mut self, r: Result<T, PolicyError>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }

    fn patterns(&mut self, field: &str, list: &[String]) -> Vec<Pattern> {
        list.iter()
            .enumerate()
            .filter_map(|(i, p)| self.check(Pattern::parse(&format!("tags.{field}[{i}]"), p)))
            .collect()
    }

    fn count(&mut self, field: &str, n: Option<u32>) -> Option<usize> {
        match n? {
            0 => self.check(Err(PolicyError::field(field, "must be at least 1"))),
            n => Some(n as usize),
        }
    }

    fn window(&mut self, field: &str, text: &Option<String>, zero_allowed: bool) -> Option<Window> {
        let text = text.as_deref()?;
        let parsed = parse_millis(text)
            .map_err(|e| {
                PolicyError::field(
                    field,
                    format!("invalid duration {text:?} (use e.g. 30d, 12h, 90m): {e}"),
                )
            })
            .and_then(|ms| {
                if ms == 0 && !zero_allowed {
                    Err(PolicyError::field(field, "must be longer than 0s"))
                } else {
                    Ok(Window {
                        ms,
                        text: text.trim().to_string(),
                    })
                }
            });
        self.check(parsed)
    }
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&b.len())
        && ok(&b[0])
        && b[1..]
            .iter()
            .all(|c| ok(c) || matches!(c, b'.' | b'_' | b'-'))
}

impl Policy {
    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The policy as written, for display.
    pub fn spec(&self) -> &PolicySpec {
        &self.spec
    }

    /// When it runs by itself; `None`: only by hand.
    pub fn schedule(&self) -> Option<Schedule> {
        self.schedule
    }

    /// Whether one of its repository globs matches `repo`.
    pub fn applies_to(&self, repo: &str) -> bool {
        self.repositories.iter().any(|p| p.matches(repo))
    }

    /// The repository globs.
    pub fn repository_patterns(&self) -> &[RepoPattern] {
        &self.repositories
    }

    /// The patterns of tags it protects in every repository it applies to.
    pub fn protected_patterns(&self) -> &[Pattern] {
        &self.protected
    }

    /// Whether it may delete tags (`delete.older_than` is given).
    pub fn deletes_tags(&self) -> bool {
        self.older_than.is_some()
    }

    /// Whether it may delete untagged manifests (`delete.untagged_older_than` is given); when
    /// not, the caller need not list them.
    pub fn deletes_untagged(&self) -> bool {
        self.untagged_older_than.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL_TOML: &str = r#"
name = "ci-builds"
description = "CI builds of team A"
repositories = ["team-a/**", "*/nightly"]
schedule = "every 6h"

[tags]
include = ["*"]
exclude = ["regex:v[0-9]+(\\.[0-9]+)*"]
protected = ["release-*"]

[keep]
latest_pushed = 10
latest_pulled = 5
pushed_within = "7d"
pulled_within = "30d"

[delete]
older_than = "30d"
untagged_older_than = "1d"
"#;

    const FULL_JSON: &str = r#"{
  "name": "ci-builds",
  "description": "CI builds of team A",
  "repositories": ["team-a/**", "*/nightly"],
  "schedule": "every 6h",
  "tags": {
    "include": ["*"],
    "exclude": ["regex:v[0-9]+(\\.[0-9]+)*"],
    "protected": ["release-*"]
  },
  "keep": {"latest_pushed": 10, "latest_pulled": 5, "pushed_within": "7d", "pulled_within": "30d"},
  "delete": {"older_than": "30d", "untagged_older_than": "1d"}
}"#;

    fn minimal() -> PolicySpec {
        PolicySpec {
            name: "p".into(),
            repositories: vec!["app".into()],
            delete: DeleteSpec {
                older_than: Some("30d".into()),
                untagged_older_than: None,
            },
            ..PolicySpec::default()
        }
    }

    fn err(spec: &PolicySpec) -> String {
        spec.validate().unwrap_err().to_string()
    }

    #[test]
    fn toml_and_json_of_the_same_policy_agree() {
        let t = PolicySpec::from_toml(FULL_TOML).unwrap();
        let j = PolicySpec::from_json(FULL_JSON).unwrap();
        assert_eq!(t, j);
        assert_eq!(PolicySpec::parse(FULL_TOML).unwrap(), t);
        assert_eq!(PolicySpec::parse(FULL_JSON).unwrap(), t);
        let (pt, pj) = (t.validate().unwrap(), j.validate().unwrap());
        assert_eq!(pt, pj);
        assert_eq!(pt.name(), "ci-builds");
        assert_eq!(pt.spec(), &t);
        assert_eq!(pt.schedule(), Some(Schedule::Every(6 * 3_600_000)));
        assert_eq!(pt.protected_patterns()[0].as_str(), "release-*");
        assert_eq!(pt.older_than.as_ref().unwrap().ms, 30 * 86_400_000);
        assert_eq!(pt.latest_pushed, Some(10));
        assert!(pt.deletes_tags() && pt.deletes_untagged());
        assert!(pt.applies_to("team-a/x/y") && pt.applies_to("b/nightly"));
        assert!(!pt.applies_to("team-a") && !pt.applies_to("b/c/nightly"));
    }

    #[test]
    fn serialise_then_parse_gives_the_same_policy() {
        for spec in [PolicySpec::from_toml(FULL_TOML).unwrap(), minimal()] {
            let toml_text = spec.to_toml();
            assert_eq!(
                PolicySpec::from_toml(&toml_text).unwrap(),
                spec,
                "{toml_text}"
            );
            let json_text = spec.to_json();
            assert_eq!(PolicySpec::parse(&json_text).unwrap(), spec, "{json_text}");
        }
        // Absent sections and fields are left out, durations kept as written.
        let mut spec = minimal();
        spec.delete.older_than = Some("4 weeks".into());
        assert_eq!(
            spec.to_toml(),
            "name = \"p\"\nrepositories = [\"app\"]\n\n[delete]\nolder_than = \"4 weeks\"\n"
        );
        assert_eq!(
            serde_json::to_string(&spec).unwrap(),
            r#"{"name":"p","repositories":["app"],"delete":{"older_than":"4 weeks"}}"#
        );
    }

    #[test]
    fn sections_may_be_absent() {
        let spec = PolicySpec::parse(
            "name = \"protect\"\nrepositories = [\"**\"]\n[tags]\nprotected = [\"release-*\"]\n",
        )
        .unwrap();
        let p = spec.validate().unwrap();
        assert!(!p.deletes_tags() && !p.deletes_untagged() && p.schedule().is_none());
        assert!(p.applies_to("any/thing"));
    }

    #[test]
    fn syntax_errors_name_the_field() {
        let cases: &[(&str, &str)] = &[
            (
                "name = \"p\"\nrepositories = [\"a\"]\ncolour = \"red\"\n",
                "invalid TOML: line 3, column 1: unknown field `colour`",
            ),
            (
                "name = \"p\"\nrepositories = [\"a\"]\n[keep]\nlatest = 3\n",
                "invalid TOML: line 4, column 1: unknown field `latest`, expected one of",
            ),
            ("name = \"p\"\n", "invalid TOML: "),
            (
                "name = \"p\"\nrepositories = [\"a\"]\n[keep]\nlatest_pushed = -1\n",
                "invalid TOML: line 4",
            ),
            (
                "name = \"p\"\nrepositories = [\"a\"]\n[tags\n",
                "invalid TOML: line 3",
            ),
            (
                r#"{"name": "p", "repositories": ["a"], "colour": 1}"#,
                "invalid JSON: unknown field `colour`",
            ),
            (
                r#"{"name": "p", "repositories": ["a"], "delete": {"older": "1d"}}"#,
                "invalid JSON: unknown field `older`, expected `older_than` or `untagged_older_than` at line 1 column 55",
            ),
            (
                r#"{"name": "p"}"#,
                "invalid JSON: missing field `repositories`",
            ),
            ("  \n {\"name\": ", "invalid JSON: "),
        ];
        for (text, want) in cases {
            let e = PolicySpec::parse(text).unwrap_err();
            assert!(matches!(e, PolicyError::Syntax { .. }), "{e:?}");
            let e = e.to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        let e = PolicySpec::parse("name = \"p\"\n").unwrap_err().to_string();
        assert!(e.contains("missing field `repositories`"), "{e}");
    }

    #[test]
    fn every_validation_error_names_its_field() {
        type Edit = fn(&mut PolicySpec);
        let cases: &[(Edit, &str)] = &[
            (
                |s| s.name = "Bad Name".into(),
                "name: \"Bad Name\" is not a valid policy name (lower-case letters, digits, '.', '_', '-'; at most 63)",
            ),
            (
                |s| s.name = String::new(),
                "name: \"\" is not a valid policy name",
            ),
            (
                |s| s.name = "-x".into(),
                "name: \"-x\" is not a valid policy name",
            ),
            (
                |s| s.name = "a".repeat(64),
                "name: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is not",
            ),
            (
                |s| s.repositories.clear(),
                "repositories: at least one repository pattern is needed",
            ),
            (
                |s| s.repositories = vec!["ok".into(), "[".into()],
                "repositories[1]: invalid glob \"[\": ",
            ),
            (
                |s| s.schedule = Some("every 30s".into()),
                "schedule: every 30s: the shortest period is 1m",
            ),
            (
                |s| s.schedule = Some("daily at 25:00".into()),
                "schedule: invalid time \"25:00\"",
            ),
            (
                |s| s.tags.include = vec!["regex:(".into()],
                "tags.include[0]: invalid regular expression \"(\": ",
            ),
            (
                |s| s.tags.exclude = vec!["x".into(), "regex:(".into()],
                "tags.exclude[1]: invalid regular expression \"(\": ",
            ),
            (
                |s| s.tags.protected = vec!["a{".into()],
                "tags.protected[0]: invalid glob \"a{\": ",
            ),
            (
                |s| s.keep.latest_pushed = Some(0),
                "keep.latest_pushed: must be at least 1",
            ),
            (
                |s| s.keep.latest_pulled = Some(0),
                "keep.latest_pulled: must be at least 1",
            ),
            (
                |s| s.keep.pushed_within = Some("7 dayz".into()),
                "keep.pushed_within: invalid duration \"7 dayz\" (use e.g. 30d, 12h, 90m): ",
            ),
            (
                |s| s.keep.pulled_within = Some("0s".into()),
                "keep.pulled_within: must be longer than 0s",
            ),
            (
                |s| s.delete.older_than = Some("soon".into()),
                "delete.older_than: invalid duration \"soon\"",
            ),
            (
                |s| s.delete.untagged_older_than = Some("1x".into()),
                "delete.untagged_older_than: invalid duration \"1x\"",
            ),
            (
                |s| s.delete.older_than = None,
                "the policy deletes nothing: give delete.older_than or delete.untagged_older_than (or tags.protected for a policy that only protects tags)",
            ),
        ];
        for (edit, want) in cases {
            let mut spec = minimal();
            edit(&mut spec);
            let e = err(&spec);
            assert!(e.starts_with(want), "want {want:?}, got {e:?}");
            assert_eq!(spec.validate().unwrap_err().problems().len(), 1, "{e}");
        }
    }

    #[test]
    fn every_problem_is_reported_in_field_order() {
        let spec = PolicySpec {
            name: "Bad".into(),
            repositories: vec![],
            tags: TagScopeSpec {
                exclude: vec!["regex:(".into()],
                ..TagScopeSpec::default()
            },
            keep: KeepSpec {
                latest_pushed: Some(0),
                ..KeepSpec::default()
            },
            ..PolicySpec::default()
        };
        let e = spec.validate().unwrap_err();
        let fields: Vec<String> = e
            .problems()
            .iter()
            .map(|p| match p {
                PolicyError::Field { field, .. } => field.clone(),
                other => other.to_string(),
            })
            .collect();
        assert_eq!(
            fields,
            [
                "name",
                "repositories",
                "tags.exclude[0]",
                "keep.latest_pushed",
                &PolicyError::DeletesNothing.to_string(),
            ]
        );
        let text = e.to_string();
        let numbered: Vec<String> = e
            .problems()
            .iter()
            .enumerate()
            .map(|(i, p)| format!("({}) {p}", i + 1))
            .collect();
        assert_eq!(text, format!("5 problems: {}", numbered.join("; ")));
        assert!(
            text.starts_with("5 problems: (1) name: \"Bad\" is not"),
            "{text}"
        );
    }

    #[test]
    fn zero_ages_and_protect_only_policies_are_valid() {
        let mut spec = minimal();
        spec.delete.older_than = Some("0s".into());
        spec.delete.untagged_older_than = Some("0s".into());
        assert_eq!(spec.validate().unwrap().older_than.unwrap().ms, 0);
        let mut spec = minimal();
        spec.delete.older_than = None;
        spec.tags.protected = vec!["release-*".into()];
        assert!(spec.validate().is_ok());
        let mut spec = minimal();
        spec.delete.older_than = None;
        spec.delete.untagged_older_than = Some("1d".into());
        assert!(spec.validate().is_ok());
        for name in ["a", "0", "a.b_c-d", &"a".repeat(63)] {
            let mut spec = minimal();
            spec.name = name.to_string();
            assert!(spec.validate().is_ok(), "{name}");
        }
    }
}
