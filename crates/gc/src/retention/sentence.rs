//! A policy said in one English sentence, for pages and listings that show many policies:
//! "In team/**, keep the 10 most recently pushed tags and tags matching release-*; delete
//! other tags older than 30 days; untagged manifests after 7 days." Built from the validated
//! [`Policy`] (patterns as written, durations as parsed), with the rules' meaning as `eval`
//! applies them: keep rules and excluded or protected tags win over the delete rule;
//! `tags.include` narrows what may be deleted; `"0s"` means any age. Pure; tested below.

use super::{DAY, Millis, Pattern, Policy, RepoPattern};

/// The policy in one sentence, ending with a full stop.
pub fn sentence(policy: &Policy) -> String {
    let scope = scope(policy.repository_patterns());
    let mut clauses: Vec<String> = Vec::new();

    let included = (!policy.include.is_empty())
        .then(|| format!("tags matching {}", patterns(&policy.include)));
    let mut keeps: Vec<String> = Vec::new();
    if let Some(n) = policy.latest_pushed {
        keeps.push(most_recent(n, "pushed"));
    }
    if let Some(n) = policy.latest_pulled {
        keeps.push(most_recent(n, "pulled"));
    }
    if let Some(w) = &policy.pushed_within {
        keeps.push(format!("tags pushed in the last {}", span(w.ms)));
    }
    if let Some(w) = &policy.pulled_within {
        keeps.push(format!("tags pulled in the last {}", span(w.ms)));
    }
    let untouchable: Vec<Pattern> = policy
        .exclude
        .iter()
        .chain(&policy.protected)
        .cloned()
        .collect();

    match &policy.older_than {
        Some(older) => {
            if !untouchable.is_empty() {
                keeps.push(format!("tags matching {}", patterns(&untouchable)));
            }
            let what = included.unwrap_or_else(|| "tags".into());
            let age = if older.ms == 0 {
                String::new()
            } else {
                format!(" older than {}", span(older.ms))
            };
            if keeps.is_empty() {
                let every = if older.ms == 0 { "every " } else { "" };
                let what = if older.ms == 0 {
                    what.replacen("tags", "tag", 1)
                } else {
                    what
                };
                clauses.push(format!("delete {every}{what}{age}"));
            } else {
                clauses.push(format!("keep {}", and_list(&keeps)));
                let all = if older.ms == 0 { "all " } else { "" };
                clauses.push(format!("delete {all}other {what}{age}"));
            }
        }
        None => {
            if !policy.protected.is_empty() {
                clauses.push(format!(
                    "never delete tags matching {}",
                    patterns(&policy.protected)
                ));
            }
        }
    }

    if let Some(untagged) = &policy.untagged_older_than {
        let when = if untagged.ms == 0 {
            "at any age".to_string()
        } else {
            format!("after {}", span(untagged.ms))
        };
        // After a clause that says "delete", the verb is understood.
        if policy.older_than.is_some() {
            clauses.push(format!("untagged manifests {when}"));
        } else {
            clauses.push(format!("delete untagged manifests {when}"));
        }
    } else if policy.older_than.is_some() {
        clauses.push("keep untagged manifests".into());
    }

    if clauses.is_empty() {
        clauses.push("delete nothing".into());
    }
    format!("In {scope}, {}.", clauses.join("; "))
}

fn scope(repos: &[RepoPattern]) -> String {
    let names: Vec<String> = repos
        .iter()
        .map(|r| match r.as_str() {
            "**" => "every repository".to_string(),
            other => other.to_string(),
        })
        .collect();
    if names.iter().any(|n| n == "every repository") {
        return "every repository".into();
    }
    and_list(&names)
}

fn most_recent(n: usize, how: &str) -> String {
    if n == 1 {
        format!("the most recently {how} tag")
    } else {
        format!("the {n} most recently {how} tags")
    }
}

/// Patterns as written, a regular expression said as such, joined with "or".
fn patterns(list: &[Pattern]) -> String {
    let words: Vec<String> = list
        .iter()
        .map(|p| match p.as_str().strip_prefix("regex:") {
            Some(re) => format!("the regular expression {re}"),
            None => p.as_str().to_string(),
        })
        .collect();
    join(&words, "or")
}

fn and_list(items: &[String]) -> String {
    join(items, "and")
}

fn join(items: &[String], word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {word} {last}", init.join(", ")),
    }
}

/// A duration in the largest unit it is a whole number of: "30 days", "12 hours", "1 day".
fn span(ms: Millis) -> String {
    const UNITS: [(Millis, &str); 4] = [
        (DAY, "day"),
        (60 * 60 * 1000, "hour"),
        (60 * 1000, "minute"),
        (1000, "second"),
    ];
    for (size, unit) in UNITS {
        if ms >= size && ms % size == 0 {
            let n = ms / size;
            return format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
        }
    }
    format!("{ms} milliseconds")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::PolicySpec;

    fn said(toml: &str) -> String {
        let spec = PolicySpec::from_toml(&format!("name = \"p\"\n{toml}")).unwrap();
        sentence(&spec.validate().unwrap())
    }

    #[test]
    fn each_policy_reads_as_one_sentence() {
        let cases: &[(&str, &str)] = &[
            (
                r#"repositories = ["team/**"]
                   tags.protected = ["release-*"]
                   keep.latest_pushed = 10
                   delete.older_than = "30d"
                   delete.untagged_older_than = "7d""#,
                "In team/**, keep the 10 most recently pushed tags and tags matching release-*; \
                 delete other tags older than 30 days; untagged manifests after 7 days.",
            ),
            (
                r#"repositories = ["ci/*", "*/nightly"]
                   delete.older_than = "12h""#,
                "In ci/* and */nightly, delete tags older than 12 hours; keep untagged manifests.",
            ),
            (
                r#"repositories = ["**"]
                   delete.untagged_older_than = "1d""#,
                "In every repository, delete untagged manifests after 1 day.",
            ),
            (
                r#"repositories = ["team/app"]
                   tags.protected = ["latest", "regex:v[0-9]+"]"#,
                "In team/app, never delete tags matching latest or the regular expression v[0-9]+.",
            ),
            (
                r#"repositories = ["team/**"]
                   keep.latest_pushed = 1
                   delete.older_than = "0s"
                   delete.untagged_older_than = "0s""#,
                "In team/**, keep the most recently pushed tag; delete all other tags; \
                 untagged manifests at any age.",
            ),
            (
                r#"repositories = ["team/**"]
                   delete.older_than = "0s""#,
                "In team/**, delete every tag; keep untagged manifests.",
            ),
            (
                r#"repositories = ["builds/**"]
                   tags.include = ["ci-*", "pr-*"]
                   tags.exclude = ["ci-keep"]
                   keep.latest_pulled = 3
                   keep.pushed_within = "2d"
                   keep.pulled_within = "90m"
                   delete.older_than = "14d""#,
                "In builds/**, keep the 3 most recently pulled tags, tags pushed in the last \
                 2 days, tags pulled in the last 90 minutes and tags matching ci-keep; delete \
                 other tags matching ci-* or pr-* older than 14 days; keep untagged manifests.",
            ),
        ];
        for (toml, want) in cases {
            assert_eq!(said(toml), *want, "{toml}");
        }
    }

    #[test]
    fn durations_are_said_in_their_largest_whole_unit() {
        assert_eq!(span(DAY), "1 day");
        assert_eq!(span(36 * 60 * 60 * 1000), "36 hours");
        assert_eq!(span(45 * 1000), "45 seconds");
        assert_eq!(span(1500), "1500 milliseconds");
    }
}
