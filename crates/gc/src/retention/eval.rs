//! What a retention policy keeps and deletes in one repository, and why. Pure: the facts of
//! the repository, the policy, the protection and `now` in; one decision with its rule and
//! reason per tag and per untagged manifest out, in the order of the input. The same call
//! gives the dry run and the real run.
//!
//! For each tag, the first of these that applies decides:
//!
//! 1. `protected`: the tag matches a `tags.protected` pattern of a policy whose repositories
//!    cover this repository (this policy or any other): kept. Protected tags are never deleted.
//! 2. `not_included`: `tags.include` is given and the tag matches none of its patterns: kept.
//! 3. `excluded`: the tag matches a `tags.exclude` pattern: kept.
//!
//!    The remaining tags are the *candidates*; the keep rules rank only among them.
//! 4. Keep rules, in this order:
//!    - `keep_latest_pushed`: among the `keep.latest_pushed` candidates pushed most recently
//!      (by push time, newest first, ties broken by tag name in ascending order);
//!    - `keep_latest_pulled`: among the `keep.latest_pulled` candidates pulled most recently
//!      (by last pull, newest first, ties by name); a tag never pulled is never among them;
//!    - `keep_pushed_within`: pushed less than `keep.pushed_within` ago;
//!    - `keep_pulled_within`: pulled, and last pulled less than `keep.pulled_within` ago.
//!
//!    A tag any of them applies to is kept.
//! 5. `delete_older_than`: `delete.older_than` is given and the tag was pushed at least that
//!    long ago (`now - pushed_at >= older_than`; `"0s"` means any age): deleted.
//! 6. `no_delete_rule`: otherwise (too recent, or no `delete.older_than`): kept.
//!
//! So a tag is deleted only when a delete rule matches it and no keep rule does; `tags.include`
//! and `tags.exclude` narrow what the policy may touch; "keep the last 10, delete the rest" is
//! `keep.latest_pushed = 10` with `delete.older_than = "0s"`. A time in the future (clock skew)
//! counts as an age of zero.
//!
//! An untagged manifest (no tag, not a child of an index, not a referrer: the caller filters)
//! is deleted, rule `untagged_older_than`, when `delete.untagged_older_than` is given and it was
//! created at least that long ago; otherwise it is kept, rule `untagged_too_recent`, or
//! `no_delete_rule` when the policy has no `delete.untagged_older_than`. Tag patterns,
//! protection included, do not apply to untagged manifests.
//!
//! The cost is O(n log n) for n tags: one sort for each `latest_*` rule.

use serde::{Deserialize, Serialize};

use super::{Millis, Pattern, Policy, format_age};

/// A tag as the evaluation sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagFacts {
    pub name: String,
    pub pushed_at: Millis,
    pub last_pulled_at: Option<Millis>,
    pub pull_count: i64,
}

/// A manifest of the repository with no tag, not a child of an index and not a referrer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UntaggedFacts {
    pub digest: String,
    pub created_at: Millis,
}

/// The protected tag patterns that apply to one repository: those of every policy whose
/// repositories cover it, each with the policy's name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Protection {
    pub patterns: Vec<(String, Pattern)>,
}

impl Protection {
    /// The protected patterns of the `policies` that apply to `repo`, ordered by policy name
    /// (so the policy named in a reason does not depend on the caller's order), then as
    /// written.
    pub fn for_repository<'a>(
        policies: impl IntoIterator<Item = &'a Policy>,
        repo: &str,
    ) -> Protection {
        let mut covering: Vec<&Policy> = policies
            .into_iter()
            .filter(|p| !p.protected_patterns().is_empty() && p.applies_to(repo))
            .collect();
        covering.sort_by(|a, b| a.name().cmp(b.name()));
        Protection {
            patterns: covering
                .into_iter()
                .flat_map(|p| {
                    p.protected_patterns()
                        .iter()
                        .map(|pat| (p.name().to_string(), pat.clone()))
                })
                .collect(),
        }
    }

    /// The first policy and pattern protecting `tag`, if any.
    pub fn protects(&self, tag: &str) -> Option<(&str, &Pattern)> {
        self.patterns
            .iter()
            .find(|(_, pat)| pat.matches(tag))
            .map(|(name, pat)| (name.as_str(), pat))
    }
}

/// The rule that decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Protected,
    NotIncluded,
    Excluded,
    KeepLatestPushed,
    KeepLatestPulled,
    KeepPushedWithin,
    KeepPulledWithin,
    DeleteOlderThan,
    NoDeleteRule,
    UntaggedOlderThan,
    UntaggedTooRecent,
}

impl Rule {
    /// The snake_case id, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Protected => "protected",
            Rule::NotIncluded => "not_included",
            Rule::Excluded => "excluded",
            Rule::KeepLatestPushed => "keep_latest_pushed",
            Rule::KeepLatestPulled => "keep_latest_pulled",
            Rule::KeepPushedWithin => "keep_pushed_within",
            Rule::KeepPulledWithin => "keep_pulled_within",
            Rule::DeleteOlderThan => "delete_older_than",
            Rule::NoDeleteRule => "no_delete_rule",
            Rule::UntaggedOlderThan => "untagged_older_than",
            Rule::UntaggedTooRecent => "untagged_too_recent",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision for one tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagDecision {
    pub tag: String,
    pub delete: bool,
    pub rule: Rule,
    pub reason: String,
}

/// The decision for one untagged manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDecision {
    pub digest: String,
    pub delete: bool,
    pub rule: Rule,
    pub reason: String,
}

/// Every decision for one repository, in the order of the input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    pub tags: Vec<TagDecision>,
    pub untagged: Vec<ManifestDecision>,
}

impl Evaluation {
    /// The tags to delete.
    pub fn tags_to_delete(&self) -> impl Iterator<Item = &TagDecision> {
        self.tags.iter().filter(|d| d.delete)
    }

    /// The untagged manifests to delete.
    pub fn untagged_to_delete(&self) -> impl Iterator<Item = &ManifestDecision> {
        self.untagged.iter().filter(|d| d.delete)
    }
}

/// Decides every tag and untagged manifest of one repository; see the module documentation.
///
/// `protection` is built by the caller with [`Protection::for_repository`] over every policy,
/// this one included; this policy's own `tags.protected` is also checked, after `protection`,
/// so a tag it protects is kept even if the caller left it out.
pub fn evaluate(
    policy: &Policy,
    tags: &[TagFacts],
    untagged: &[UntaggedFacts],
    protection: &Protection,
    now: Millis,
) -> Evaluation {
    let age = |at: Millis| now.saturating_sub(at).max(0);

    // Steps 1-3, which also pick the candidates.
    let mut decided: Vec<Option<(Rule, String)>> = tags
        .iter()
        .map(|t| scope(policy, protection, &t.name))
        .collect();
    let candidates: Vec<usize> = (0..tags.len()).filter(|&i| decided[i].is_none()).collect();

    // The ranking keep rules, latest_pushed first: each ranks every candidate, keeps its first n.
    if let Some(n) = policy.latest_pushed {
        let mut order = candidates.clone();
        order.sort_by(|&a, &b| {
            let (a, b) = (&tags[a], &tags[b]);
            b.pushed_at
                .cmp(&a.pushed_at)
                .then_with(|| a.name.cmp(&b.name))
        });
        for (rank, &i) in order.iter().take(n).enumerate() {
            decided[i] = Some((
                Rule::KeepLatestPushed,
                format!("among the {n} most recently pushed (#{})", rank + 1),
            ));
        }
    }
    if let Some(n) = policy.latest_pulled {
        let mut order: Vec<(usize, Millis)> = candidates
            .iter()
            .filter_map(|&i| tags[i].last_pulled_at.map(|at| (i, at)))
            .collect();
        order.sort_by(|&(a, at_a), &(b, at_b)| {
            at_b.cmp(&at_a)
                .then_with(|| tags[a].name.cmp(&tags[b].name))
        });
        for (rank, &(i, _)) in order.iter().take(n).enumerate() {
            decided[i].get_or_insert_with(|| {
                (
                    Rule::KeepLatestPulled,
                    format!("among the {n} most recently pulled (#{})", rank + 1),
                )
            });
        }
    }

    let tag_decisions = tags
        .iter()
        .zip(decided)
        .map(|(t, decided)| {
            let (rule, reason) = decided.unwrap_or_else(|| {
                let pushed = age(t.pushed_at);
                let pulled = t.last_pulled_at.map(age);
                if let Some(w) = &policy.pushed_within
                    && pushed < w.ms
                {
                    return (
                        Rule::KeepPushedWithin,
                        format!("pushed {} ago, within {}", format_age(pushed), w.text),
                    );
                }
                if let (Some(w), Some(pulled)) = (&policy.pulled_within, pulled)
                    && pulled < w.ms
                {
                    return (
                        Rule::KeepPulledWithin,
                        format!("pulled {} ago, within {}", format_age(pulled), w.text),
                    );
                }
                match &policy.older_than {
                    Some(w) if pushed >= w.ms => (
                        Rule::DeleteOlderThan,
                        format!("pushed {} ago, older than {}", format_age(pushed), w.text),
                    ),
                    Some(w) => (
                        Rule::NoDeleteRule,
                        format!(
                            "pushed {} ago, not older than {}",
                            format_age(pushed),
                            w.text
                        ),
                    ),
                    None => (
                        Rule::NoDeleteRule,
                        "no delete rule for tags (delete.older_than is not given)".to_string(),
                    ),
                }
            });
            TagDecision {
                tag: t.name.clone(),
                delete: rule == Rule::DeleteOlderThan,
                rule,
                reason,
            }
        })
        .collect();

    let untagged_decisions = untagged
        .iter()
        .map(|m| {
            let created = age(m.created_at);
            let (rule, reason) = match &policy.untagged_older_than {
                Some(w) if created >= w.ms => (
                    Rule::UntaggedOlderThan,
                    format!(
                        "untagged, created {} ago, older than {}",
                        format_age(created),
                        w.text
                    ),
                ),
                Some(w) => (
                    Rule::UntaggedTooRecent,
                    format!(
                        "untagged, created {} ago, not older than {}",
                        format_age(created),
                        w.text
                    ),
                ),
                None => (
                    Rule::NoDeleteRule,
                    "no delete rule for untagged manifests \
                     (delete.untagged_older_than is not given)"
                        .to_string(),
                ),
            };
            ManifestDecision {
                digest: m.digest.clone(),
                delete: rule == Rule::UntaggedOlderThan,
                rule,
                reason,
            }
        })
        .collect();

    Evaluation {
        tags: tag_decisions,
        untagged: untagged_decisions,
    }
}

/// Steps 1-3: a decision for a tag outside the policy's reach, `None` for a candidate.
fn scope(policy: &Policy, protection: &Protection, tag: &str) -> Option<(Rule, String)> {
    let own = || {
        policy
            .protected_patterns()
            .iter()
            .find(|p| p.matches(tag))
            .map(|p| (policy.name(), p))
    };
    if let Some((by, pattern)) = protection.protects(tag).or_else(own) {
        return Some((
            Rule::Protected,
            format!("protected by policy {by} (pattern {pattern})"),
        ));
    }
    if !policy.include.is_empty() && !policy.include.iter().any(|p| p.matches(tag)) {
        return Some((Rule::NotIncluded, "does not match tags.include".to_string()));
    }
    if let Some(p) = policy.exclude.iter().find(|p| p.matches(tag)) {
        return Some((Rule::Excluded, format!("matches tags.exclude ({p})")));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::PolicySpec;

    const S: Millis = 1_000;
    const H: Millis = 3_600 * S;
    const D: Millis = 24 * H;
    const NOW: Millis = 1_000 * D;

    fn policy(toml_body: &str) -> Policy {
        PolicySpec::from_toml(&format!(
            "name = \"p\"\nrepositories = [\"**\"]\n{toml_body}"
        ))
        .unwrap()
        .validate()
        .unwrap()
    }

    /// (name, pushed ago, pulled ago)
    fn tags(spec: &[(&str, Millis, Option<Millis>)]) -> Vec<TagFacts> {
        spec.iter()
            .map(|&(name, pushed, pulled)| TagFacts {
                name: name.to_string(),
                pushed_at: NOW - pushed,
                last_pulled_at: pulled.map(|p| NOW - p),
                pull_count: i64::from(pulled.is_some()),
            })
            .collect()
    }

    fn run(p: &Policy, t: &[TagFacts]) -> Evaluation {
        let protection = Protection::for_repository([p], "repo");
        evaluate(p, t, &[], &protection, NOW)
    }

    /// `tag:rule` for each decision, `-` marking a deletion.
    fn summary(e: &Evaluation) -> Vec<String> {
        e.tags
            .iter()
            .map(|d| format!("{}{}:{}", if d.delete { "-" } else { "" }, d.tag, d.rule))
            .collect()
    }

    #[test]
    fn each_rule_and_the_combinations_that_matter() {
        let t = tags(&[
            ("release-1", 90 * D, None),
            ("v1.2", 80 * D, Some(70 * D)),
            ("main-1", 60 * D, Some(H)),
            ("main-2", 40 * D, Some(20 * D)),
            ("main-3", 35 * D, None),
            ("pr-7", 10 * D, Some(2 * D)),
            ("pr-8", 3 * D, None),
        ]);
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "delete older_than alone",
                "[delete]\nolder_than = \"30d\"",
                &[
                    "-release-1:delete_older_than",
                    "-v1.2:delete_older_than",
                    "-main-1:delete_older_than",
                    "-main-2:delete_older_than",
                    "-main-3:delete_older_than",
                    "pr-7:no_delete_rule",
                    "pr-8:no_delete_rule",
                ],
            ),
            (
                "protected beats everything",
                "[tags]\ninclude = [\"*\"]\nprotected = [\"release-*\", \"v*\"]\n\
                 [delete]\nolder_than = \"0s\"",
                &[
                    "release-1:protected",
                    "v1.2:protected",
                    "-main-1:delete_older_than",
                    "-main-2:delete_older_than",
                    "-main-3:delete_older_than",
                    "-pr-7:delete_older_than",
                    "-pr-8:delete_older_than",
                ],
            ),
            (
                "protect only: deletes nothing",
                "[tags]\nprotected = [\"release-*\"]",
                &[
                    "release-1:protected",
                    "v1.2:no_delete_rule",
                    "main-1:no_delete_rule",
                    "main-2:no_delete_rule",
                    "main-3:no_delete_rule",
                    "pr-7:no_delete_rule",
                    "pr-8:no_delete_rule",
                ],
            ),
            (
                "include with a glob and a regex",
                "[tags]\ninclude = [\"main-*\", \"regex:pr-[0-9]+\"]\n[delete]\nolder_than = \"0s\"",
                &[
                    "release-1:not_included",
                    "v1.2:not_included",
                    "-main-1:delete_older_than",
                    "-main-2:delete_older_than",
                    "-main-3:delete_older_than",
                    "-pr-7:delete_older_than",
                    "-pr-8:delete_older_than",
                ],
            ),
            (
                "exclude wins over include",
                "[tags]\ninclude = [\"main-*\"]\nexclude = [\"regex:main-[12]\"]\n\
                 [delete]\nolder_than = \"0s\"",
                &[
                    "release-1:not_included",
                    "v1.2:not_included",
                    "main-1:excluded",
                    "main-2:excluded",
                    "-main-3:delete_older_than",
                    "pr-7:not_included",
                    "pr-8:not_included",
                ],
            ),
            (
                "keep latest_pushed ranks only candidates",
                "[tags]\nexclude = [\"pr-*\"]\n[keep]\nlatest_pushed = 2\n[delete]\nolder_than = \"0s\"",
                &[
                    "-release-1:delete_older_than",
                    "-v1.2:delete_older_than",
                    "-main-1:delete_older_than",
                    "main-2:keep_latest_pushed",
                    "main-3:keep_latest_pushed",
                    "pr-7:excluded",
                    "pr-8:excluded",
                ],
            ),
            (
                "keep latest_pulled ignores never-pulled tags",
                "[keep]\nlatest_pulled = 10\n[delete]\nolder_than = \"0s\"",
                &[
                    "-release-1:delete_older_than",
                    "v1.2:keep_latest_pulled",
                    "main-1:keep_latest_pulled",
                    "main-2:keep_latest_pulled",
                    "-main-3:delete_older_than",
                    "pr-7:keep_latest_pulled",
                    "-pr-8:delete_older_than",
                ],
            ),
            (
                "both latest_* together, each ranking every candidate",
                "[keep]\nlatest_pushed = 2\nlatest_pulled = 2\n[delete]\nolder_than = \"0s\"",
                &[
                    "-release-1:delete_older_than",
                    "-v1.2:delete_older_than",
                    "main-1:keep_latest_pulled",
                    "-main-2:delete_older_than",
                    "-main-3:delete_older_than",
                    "pr-7:keep_latest_pushed",
                    "pr-8:keep_latest_pushed",
                ],
            ),
            (
                "keep pushed_within beats delete",
                "[keep]\npushed_within = \"36d\"\n[delete]\nolder_than = \"0s\"",
                &[
                    "-release-1:delete_older_than",
                    "-v1.2:delete_older_than",
                    "-main-1:delete_older_than",
                    "-main-2:delete_older_than",
                    "main-3:keep_pushed_within",
                    "pr-7:keep_pushed_within",
                    "pr-8:keep_pushed_within",
                ],
            ),
            (
                "keep pulled_within needs a pull",
                "[keep]\npulled_within = \"21d\"\n[delete]\nolder_than = \"0s\"",
                &[
                    "-release-1:delete_older_than",
                    "-v1.2:delete_older_than",
                    "main-1:keep_pulled_within",
                    "main-2:keep_pulled_within",
                    "-main-3:delete_older_than",
                    "pr-7:keep_pulled_within",
                    "-pr-8:delete_older_than",
                ],
            ),
            (
                "keep rules in order: latest_pushed before pushed_within",
                "[keep]\nlatest_pushed = 1\npushed_within = \"11d\"\npulled_within = \"1d\"\n\
                 [delete]\nolder_than = \"50d\"",
                &[
                    "-release-1:delete_older_than",
                    "-v1.2:delete_older_than",
                    "main-1:keep_pulled_within",
                    "main-2:no_delete_rule",
                    "main-3:no_delete_rule",
                    "pr-7:keep_pushed_within",
                    "pr-8:keep_latest_pushed",
                ],
            ),
            (
                "keep rules without a tag delete rule",
                "[keep]\nlatest_pushed = 1\n[delete]\nuntagged_older_than = \"1d\"",
                &[
                    "release-1:no_delete_rule",
                    "v1.2:no_delete_rule",
                    "main-1:no_delete_rule",
                    "main-2:no_delete_rule",
                    "main-3:no_delete_rule",
                    "pr-7:no_delete_rule",
                    "pr-8:keep_latest_pushed",
                ],
            ),
        ];
        for (what, body, want) in cases {
            let mut want = want.to_vec();
            let e = run(&policy(body), &t);
            let mut got = summary(&e);
            // Output follows input order; compare as sets where a case lists out of order.
            got.sort();
            want.sort();
            assert_eq!(got, want, "{what}");
            let names: Vec<&str> = e.tags.iter().map(|d| d.tag.as_str()).collect();
            let input: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, input, "{what}: input order");
        }
    }

    #[test]
    fn reasons_give_the_figures() {
        let t = tags(&[
            ("release-1", 90 * D, None),
            ("v3", 80 * D, None),
            ("a", 40 * D, None),
            ("b", 2 * H + 5 * 60 * S, Some(2 * H)),
            ("c", 20 * D, Some(H)),
            ("d", 10 * D, None),
            ("e", 5 * D, Some(3 * D)),
            ("future", -H, None),
        ]);
        let p = policy(
            "[tags]\nexclude = [\"regex:v[0-9]+\"]\nprotected = [\"release-*\"]\n\
             [keep]\nlatest_pushed = 2\nlatest_pulled = 1\npulled_within = \"30d\"\n\
             [delete]\nolder_than = \"30d\"",
        );
        let e = run(&p, &t);
        let reasons: Vec<(&str, &str)> = e
            .tags
            .iter()
            .map(|d| (d.tag.as_str(), d.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("release-1", "protected by policy p (pattern release-*)"),
                ("v3", "matches tags.exclude (regex:v[0-9]+)"),
                ("a", "pushed 40d ago, older than 30d"),
                ("b", "among the 2 most recently pushed (#2)"),
                ("c", "among the 1 most recently pulled (#1)"),
                ("d", "pushed 10d ago, not older than 30d"),
                ("e", "pulled 3d ago, within 30d"),
                ("future", "among the 2 most recently pushed (#1)"),
            ]
        );
        let p = policy(
            "[tags]\ninclude = [\"x*\"]\n[keep]\npushed_within = \"1d\"\n[delete]\nuntagged_older_than = \"1d\"",
        );
        let e = run(
            &p,
            &tags(&[
                ("a", D, None),
                ("x", 2 * H + 5 * 60 * S, None),
                ("y2", 3 * D, None),
            ]),
        );
        assert_eq!(e.tags[0].reason, "does not match tags.include");
        assert_eq!(e.tags[1].reason, "pushed 2h 5m ago, within 1d");
        let p = policy("[delete]\nuntagged_older_than = \"1d\"");
        let e = run(&p, &tags(&[("a", D, None)]));
        assert_eq!(
            e.tags[0].reason,
            "no delete rule for tags (delete.older_than is not given)"
        );
    }

    #[test]
    fn ties_on_time_are_broken_by_name_whatever_the_input_order() {
        let p =
            policy("[keep]\nlatest_pushed = 2\nlatest_pulled = 1\n[delete]\nolder_than = \"0s\"");
        let base = [
            ("c", D, Some(H)),
            ("a", D, None),
            ("b", D, None),
            ("d", D, Some(H)),
        ];
        for rotate in 0..base.len() {
            let mut order = base.to_vec();
            order.rotate_left(rotate);
            let e = run(&p, &tags(&order));
            let mut got: Vec<(&str, Rule)> =
                e.tags.iter().map(|d| (d.tag.as_str(), d.rule)).collect();
            got.sort_by_key(|&(tag, _)| tag);
            assert_eq!(
                got,
                [
                    ("a", Rule::KeepLatestPushed),
                    ("b", Rule::KeepLatestPushed),
                    ("c", Rule::KeepLatestPulled),
                    ("d", Rule::DeleteOlderThan),
                ],
                "rotation {rotate}"
            );
        }
    }

    #[test]
    fn boundaries_exactly_d_old_is_deleted_d_minus_1ms_is_kept() {
        let p = policy(
            "[keep]\npushed_within = \"7d\"\npulled_within = \"1h\"\n[delete]\nolder_than = \"30d\"\nuntagged_older_than = \"1d\"",
        );
        let t = tags(&[
            ("exactly", 30 * D, None),
            ("almost", 30 * D - 1, None),
            ("within-just", 7 * D - 1, None),
            ("pull-at-edge", 30 * D, Some(H)),
            ("pull-just-within", 30 * D, Some(H - 1)),
        ]);
        assert_eq!(
            summary(&run(&p, &t)),
            [
                "-exactly:delete_older_than",
                "almost:no_delete_rule",
                "within-just:keep_pushed_within",
                "-pull-at-edge:delete_older_than",
                "pull-just-within:keep_pulled_within",
            ]
        );
        let u = [
            UntaggedFacts {
                digest: "sha256:a".into(),
                created_at: NOW - D,
            },
            UntaggedFacts {
                digest: "sha256:b".into(),
                created_at: NOW - D + 1,
            },
        ];
        let e = evaluate(&p, &[], &u, &Protection::default(), NOW);
        assert_eq!(
            e.untagged
                .iter()
                .map(|d| (d.delete, d.rule))
                .collect::<Vec<_>>(),
            [
                (true, Rule::UntaggedOlderThan),
                (false, Rule::UntaggedTooRecent)
            ]
        );
    }

    #[test]
    fn future_push_times_count_as_age_zero() {
        let p = policy("[delete]\nolder_than = \"0s\"\nuntagged_older_than = \"0s\"");
        let e = evaluate(
            &p,
            &tags(&[("skewed", -D, None)]),
            &[UntaggedFacts {
                digest: "sha256:a".into(),
                created_at: NOW + D,
            }],
            &Protection::default(),
            NOW,
        );
        assert_eq!(summary(&e), ["-skewed:delete_older_than"]);
        assert_eq!(e.tags[0].reason, "pushed 0s ago, older than 0s");
        assert!(e.untagged[0].delete);
        let p = policy("[delete]\nolder_than = \"1d\"");
        assert_eq!(
            summary(&run(&p, &tags(&[("skewed", -D, None)]))),
            ["skewed:no_delete_rule"]
        );
    }

    #[test]
    fn empty_repository() {
        let p = policy(
            "[keep]\nlatest_pushed = 3\n[delete]\nolder_than = \"0s\"\nuntagged_older_than = \"0s\"",
        );
        assert_eq!(
            evaluate(&p, &[], &[], &Protection::default(), NOW),
            Evaluation::default()
        );
    }

    #[test]
    fn untagged_rules() {
        let u: Vec<UntaggedFacts> = [("sha256:old", 3 * D), ("sha256:new", H)]
            .iter()
            .map(|&(d, ago)| UntaggedFacts {
                digest: d.into(),
                created_at: NOW - ago,
            })
            .collect();
        let summary = |e: Evaluation| -> Vec<(String, bool, Rule, String)> {
            e.untagged
                .into_iter()
                .map(|d| (d.digest, d.delete, d.rule, d.reason))
                .collect()
        };
        // Protection and tag patterns do not reach untagged manifests.
        let p = policy(
            "[tags]\nprotected = [\"*\"]\ninclude = [\"nothing\"]\n[delete]\nuntagged_older_than = \"1d\"",
        );
        assert_eq!(
            summary(run_untagged(&p, &u)),
            [
                (
                    "sha256:old".into(),
                    true,
                    Rule::UntaggedOlderThan,
                    "untagged, created 3d ago, older than 1d".into()
                ),
                (
                    "sha256:new".into(),
                    false,
                    Rule::UntaggedTooRecent,
                    "untagged, created 1h ago, not older than 1d".into()
                ),
            ]
        );
        let p = policy("[delete]\nolder_than = \"1d\"");
        let e = run_untagged(&p, &u);
        assert!(
            e.untagged
                .iter()
                .all(|d| !d.delete && d.rule == Rule::NoDeleteRule)
        );
        assert_eq!(
            e.untagged[0].reason,
            "no delete rule for untagged manifests (delete.untagged_older_than is not given)"
        );
        assert_eq!(e.untagged_to_delete().count(), 0);
    }

    fn run_untagged(p: &Policy, u: &[UntaggedFacts]) -> Evaluation {
        evaluate(p, &[], u, &Protection::for_repository([p], "repo"), NOW)
    }

    #[test]
    fn thousands_of_tags() {
        // 5,000 tags, pushed one a minute in a scrambled order, a third of them pulled.
        let n: i64 = 5_000;
        let t: Vec<TagFacts> = (0..n)
            .map(|i| {
                let k = (i * 7_919) % n; // a permutation of 0..n: 7919 is prime, n is not its multiple
                TagFacts {
                    name: format!("build-{k:05}"),
                    pushed_at: NOW - (n - k) * 60 * S,
                    last_pulled_at: (k % 3 == 0).then_some(NOW - k * S),
                    pull_count: 1,
                }
            })
            .collect();
        let p = policy(
            "[tags]\nexclude = [\"regex:build-0000[0-9]\"]\n\
             [keep]\nlatest_pushed = 100\nlatest_pulled = 10\n[delete]\nolder_than = \"0s\"",
        );
        let e = run(&p, &t);
        assert_eq!(e.tags.len(), 5_000);
        let with = |rule: Rule| -> Vec<&str> {
            let mut v: Vec<&str> = e
                .tags
                .iter()
                .filter(|d| d.rule == rule)
                .map(|d| d.tag.as_str())
                .collect();
            v.sort();
            v
        };
        // The newest 100 are build-04900..04999.
        let newest: Vec<String> = (4_900..5_000).map(|k| format!("build-{k:05}")).collect();
        assert_eq!(with(Rule::KeepLatestPushed), newest);
        // Most recently pulled among the rest: k % 3 == 0 with the smallest k, excluded ones
        // (k < 10) left out: 12, 15, ..., 39.
        let pulled: Vec<String> = (12..=39)
            .step_by(3)
            .map(|k| format!("build-{k:05}"))
            .collect();
        assert_eq!(with(Rule::KeepLatestPulled), pulled);
        assert_eq!(with(Rule::Excluded).len(), 10);
        assert_eq!(e.tags_to_delete().count(), 5_000 - 100 - 10 - 10);
        assert!(e.tags_to_delete().all(|d| d.rule == Rule::DeleteOlderThan));
    }

    #[test]
    fn protection_from_several_policies_only_where_they_apply() {
        let make = |name: &str, repos: &str, protected: &str| {
            PolicySpec::from_toml(&format!(
                "name = \"{name}\"\nrepositories = [{repos}]\n[tags]\nprotected = [{protected}]\n"
            ))
            .unwrap()
            .validate()
            .unwrap()
        };
        let zeta = make("zeta", "\"team-a/**\"", "\"stable\", \"release-*\"");
        let alpha = make("alpha", "\"team-a/app\"", "\"release-1*\"");
        let other = make("other", "\"team-b/**\"", "\"*\"");
        let cleaner = policy("[delete]\nolder_than = \"0s\"");
        let all = [&zeta, &other, &alpha, &cleaner];

        let prot = Protection::for_repository(all, "team-a/app");
        let names: Vec<(&str, &str)> = prot
            .patterns
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("alpha", "release-1*"),
                ("zeta", "stable"),
                ("zeta", "release-*")
            ]
        );
        assert_eq!(prot.protects("release-10").map(|(n, _)| n), Some("alpha"));
        assert_eq!(
            prot.protects("release-2").map(|(n, p)| (n, p.as_str())),
            Some(("zeta", "release-*"))
        );
        assert!(prot.protects("main").is_none());

        let t = tags(&[
            ("release-10", D, None),
            ("stable", D, None),
            ("main", D, None),
        ]);
        let e = evaluate(&cleaner, &t, &[], &prot, NOW);
        assert_eq!(
            summary(&e),
            [
                "release-10:protected",
                "stable:protected",
                "-main:delete_older_than"
            ]
        );
        assert_eq!(
            e.tags[0].reason,
            "protected by policy alpha (pattern release-1*)"
        );

        // Elsewhere in team-a only zeta protects; outside both, nobody does.
        let prot = Protection::for_repository(all, "team-a/lib");
        assert_eq!(prot.patterns.len(), 2);
        assert!(
            prot.protects("release-10")
                .is_some_and(|(n, _)| n == "zeta")
        );
        assert!(
            Protection::for_repository(all, "team-c/app")
                .patterns
                .is_empty()
        );
        assert_eq!(
            Protection::for_repository(all, "team-b/x").patterns.len(),
            1
        );
        // team-a itself is not under team-a/**.
        assert!(
            Protection::for_repository(all, "team-a")
                .patterns
                .is_empty()
        );
    }

    #[test]
    fn own_protected_patterns_hold_even_without_protection() {
        let p = policy("[tags]\nprotected = [\"keep-*\"]\n[delete]\nolder_than = \"0s\"");
        let e = evaluate(
            &p,
            &tags(&[("keep-1", D, None), ("x", D, None)]),
            &[],
            &Protection::default(),
            NOW,
        );
        assert_eq!(summary(&e), ["keep-1:protected", "-x:delete_older_than"]);
    }

    #[test]
    fn rules_serialise_as_their_snake_case_id() {
        let all = [
            Rule::Protected,
            Rule::NotIncluded,
            Rule::Excluded,
            Rule::KeepLatestPushed,
            Rule::KeepLatestPulled,
            Rule::KeepPushedWithin,
            Rule::KeepPulledWithin,
            Rule::DeleteOlderThan,
            Rule::NoDeleteRule,
            Rule::UntaggedOlderThan,
            Rule::UntaggedTooRecent,
        ];
        for r in all {
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
            assert_eq!(r.to_string(), r.as_str());
            assert_eq!(
                serde_json::from_str::<Rule>(&format!("\"{r}\"")).unwrap(),
                r
            );
        }
        let d = TagDecision {
            tag: "a".into(),
            delete: true,
            rule: Rule::DeleteOlderThan,
            reason: "r".into(),
        };
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"tag":"a","delete":true,"rule":"delete_older_than","reason":"r"}"#
        );
    }
}
