//! Which tags a bulk deletion removes, and why. Pure: candidates and a filter in, one decision
//! with its reason per tag out; no I/O, no clock (the caller passes `now`). The same call gives
//! the dry-run and the real run, so a preview at time T and a deletion at T agree.
//!
//! A tag is deleted only when every given condition says so:
//! - it matches `delete_regex` (when given; without it every tag matches),
//! - it does not match `keep_regex`,
//! - it is not among the `keep_latest` most recently pushed tags of the repository
//!   (ties on the push time are broken by name, so the result is stable),
//! - it was pushed longer than `older_than` ago.
//!
//! Regular expressions must match the whole tag name.

use regex::Regex;
use serde::Serialize;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A tag as the selection sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub pushed_at: Millis,
}

/// The filters of a bulk deletion, as given by the user.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct FilterSpec {
    pub delete_regex: Option<String>,
    pub keep_regex: Option<String>,
    pub keep_latest: Option<usize>,
    /// A duration such as `30d`, `12h` or `1w 2d`.
    pub older_than: Option<String>,
}

/// A validated filter.
#[derive(Clone, Debug)]
pub struct Filter {
    delete_regex: Option<Regex>,
    keep_regex: Option<Regex>,
    keep_latest: Option<usize>,
    older_than_ms: Option<Millis>,
}

/// Why a filter was refused; the message names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("{field}: invalid regular expression: {message}")]
    Regex {
        field: &'static str,
        message: String,
    },
    #[error("older_than: {value:?} is not a duration (use e.g. 30d, 12h, 90m) or is too long")]
    Duration { value: String },
    #[error(
        "a bulk deletion needs at least one of delete_regex, keep_regex, keep_latest, older_than"
    )]
    Empty,
}

fn anchored(field: &'static str, re: &Option<String>) -> Result<Option<Regex>, FilterError> {
    re.as_ref()
        .map(|r| {
            crate::retention::pattern::anchored(r).map_err(|message| FilterError::Regex {
                field,
                message: format!("{r:?}: {message}"),
            })
        })
        .transpose()
}

impl FilterSpec {
    pub fn validate(&self) -> Result<Filter, FilterError> {
        if self.delete_regex.is_none()
            && self.keep_regex.is_none()
            && self.keep_latest.is_none()
            && self.older_than.is_none()
        {
            return Err(FilterError::Empty);
        }
        let older_than_ms = self
            .older_than
            .as_ref()
            .map(|d| {
                humantime::parse_duration(d)
                    .ok()
                    .and_then(|d| Millis::try_from(d.as_millis()).ok())
                    .ok_or_else(|| FilterError::Duration { value: d.clone() })
            })
            .transpose()?;
        Ok(Filter {
            delete_regex: anchored("delete_regex", &self.delete_regex)?,
            keep_regex: anchored("keep_regex", &self.keep_regex)?,
            keep_latest: self.keep_latest,
            older_than_ms,
        })
    }
}

/// The decision for one tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub tag: String,
    pub delete: bool,
    pub reason: String,
}

/// Decides every candidate. The output is in the order of the input.
pub fn select(candidates: &[Candidate], filter: &Filter, now: Millis) -> Vec<Decision> {
    // Rank by recency: newest first, then by name.
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&candidates[a], &candidates[b]);
        b.pushed_at
            .cmp(&a.pushed_at)
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut rank = vec![0usize; candidates.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let keep = |reason: String| Decision {
                tag: c.name.clone(),
                delete: false,
                reason,
            };
            if let Some(re) = &filter.delete_regex
                && !re.is_match(&c.name)
            {
                return keep("does not match delete_regex".into());
            }
            if let Some(re) = &filter.keep_regex
                && re.is_match(&c.name)
            {
                return keep("matches keep_regex".into());
            }
            if let Some(n) = filter.keep_latest
                && rank[i] < n
            {
                return keep(format!(
                    "among the {n} most recently pushed (#{})",
                    rank[i] + 1
                ));
            }
            if let Some(age) = filter.older_than_ms
                && c.pushed_at > now.saturating_sub(age)
            {
                return keep("pushed within older_than".into());
            }
            let mut why = Vec::new();
            if filter.delete_regex.is_some() {
                why.push("matches delete_regex".to_string());
            }
            if filter.older_than_ms.is_some() {
                why.push("older than older_than".to_string());
            }
            if let Some(n) = filter.keep_latest {
                why.push(format!("not among the {n} most recent"));
            }
            if filter.keep_regex.is_some() {
                why.push("does not match keep_regex".to_string());
            }
            Decision {
                tag: c.name.clone(),
                delete: true,
                reason: why.join(", "),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Millis = 86_400_000;
    const NOW: Millis = 100 * DAY;

    fn tags(spec: &[(&str, i64)]) -> Vec<Candidate> {
        spec.iter()
            .map(|(n, age_days)| Candidate {
                name: n.to_string(),
                pushed_at: NOW - age_days * DAY,
            })
            .collect()
    }

    fn deleted(cands: &[Candidate], spec: FilterSpec) -> Vec<String> {
        let f = spec.validate().unwrap();
        select(cands, &f, NOW)
            .into_iter()
            .filter(|d| d.delete)
            .map(|d| d.tag)
            .collect()
    }

    fn spec(
        delete: Option<&str>,
        keep: Option<&str>,
        keep_latest: Option<usize>,
        older: Option<&str>,
    ) -> FilterSpec {
        FilterSpec {
            delete_regex: delete.map(str::to_string),
            keep_regex: keep.map(str::to_string),
            keep_latest,
            older_than: older.map(str::to_string),
        }
    }

    #[test]
    fn each_rule_and_combinations() {
        let c = tags(&[
            ("v1.0", 50),
            ("v1.1", 40),
            ("main-1", 30),
            ("main-2", 20),
            ("main-3", 10),
            ("latest", 1),
        ]);
        let cases: Vec<(FilterSpec, Vec<&str>)> = vec![
            (
                spec(Some("main-.*"), None, None, None),
                vec!["main-1", "main-2", "main-3"],
            ),
            // Anchored: "main" alone matches nothing.
            (spec(Some("main"), None, None, None), vec![]),
            (
                spec(None, Some("v.*|latest"), None, None),
                vec!["main-1", "main-2", "main-3"],
            ),
            (
                spec(None, None, Some(2), None),
                vec!["v1.0", "v1.1", "main-1", "main-2"],
            ),
            (
                spec(None, None, None, Some("25d")),
                vec!["v1.0", "v1.1", "main-1"],
            ),
            (
                spec(Some("main-.*"), None, Some(2), None),
                vec!["main-1", "main-2"],
            ),
            (
                spec(Some(".*"), Some("v1\\..*"), None, Some("15d")),
                vec!["main-1", "main-2"],
            ),
            (spec(Some("main-.*"), None, Some(3), None), vec!["main-1"]),
            (spec(Some("main-.*"), None, Some(5), None), vec![]),
            (
                spec(None, None, Some(0), None),
                vec!["v1.0", "v1.1", "main-1", "main-2", "main-3", "latest"],
            ),
            (spec(None, None, Some(100), None), vec![]),
        ];
        for (s, want) in cases {
            assert_eq!(deleted(&c, s.clone()), want, "{s:?}");
        }
    }

    #[test]
    fn ties_on_push_time_break_by_name() {
        let c = tags(&[("b", 5), ("a", 5), ("c", 5)]);
        assert_eq!(deleted(&c, spec(None, None, Some(2), None)), vec!["c"]);
    }

    #[test]
    fn empty_repository_and_many_tags() {
        assert!(deleted(&[], spec(Some(".*"), None, None, None)).is_empty());
        let many: Vec<Candidate> = (0..5000)
            .map(|i| Candidate {
                name: format!("build-{i:05}"),
                pushed_at: NOW - (5000 - i) * 1000,
            })
            .collect();
        let gone = deleted(&many, spec(Some("build-.*"), None, Some(10), None));
        assert_eq!(gone.len(), 4990);
        assert!(!gone.contains(&"build-04999".to_string()));
        assert!(gone.contains(&"build-04989".to_string()));
    }

    #[test]
    fn reasons_explain() {
        let c = tags(&[("keep-me", 50), ("old", 50), ("new", 1)]);
        let f = spec(None, Some("keep-.*"), None, Some("7d"))
            .validate()
            .unwrap();
        let d = select(&c, &f, NOW);
        assert_eq!(d[0].reason, "matches keep_regex");
        assert!(d[1].delete && d[1].reason.contains("older than"));
        assert_eq!(d[2].reason, "pushed within older_than");
    }

    #[test]
    fn bad_filters_name_the_field() {
        let e = spec(Some("("), None, None, None).validate().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("delete_regex: invalid regular expression")
        );
        let e = spec(None, Some("[z-a]"), None, None)
            .validate()
            .unwrap_err();
        assert!(e.to_string().starts_with("keep_regex"));
        let e = spec(None, None, None, Some("soon")).validate().unwrap_err();
        assert!(e.to_string().starts_with("older_than"));
        assert_eq!(
            FilterSpec::default().validate().unwrap_err(),
            FilterError::Empty
        );
    }
}
