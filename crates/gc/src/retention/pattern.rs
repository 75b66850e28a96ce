//! Tag patterns and repository globs of retention policies.
//!
//! A tag pattern is `regex:<re>`, a regular expression that must match the whole tag, or
//! `glob:<g>` / a bare `<g>`, a glob that must match the whole tag: `*` any run of characters,
//! `?` one character, `[abc]` / `[a-z]` / `[!abc]` a class, `{a,b}` either, `\` escapes.
//!
//! A repository pattern is a `shipshape_oci::RepoGlob` over the `/`-separated repository name
//! (`*` within a segment, `**` any number of whole segments), the language role bindings share.

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;
use shipshape_oci::RepoGlob;

use super::PolicyError;

#[derive(Clone, Debug)]
enum Matcher {
    Regex(Regex),
    Glob(GlobMatcher),
}

/// A compiled tag pattern. Equal when written the same.
#[derive(Clone, Debug)]
pub struct Pattern {
    source: String,
    matcher: Matcher,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for Pattern {}

impl Pattern {
    /// Compiles `text`; errors are reported against `field` (e.g. `tags.exclude[1]`).
    pub fn parse(field: &str, text: &str) -> Result<Pattern, PolicyError> {
        let matcher = if let Some(re) = text.strip_prefix("regex:") {
            if re.is_empty() {
                return Err(PolicyError::field(field, "empty regular expression"));
            }
            Matcher::Regex(anchored(re).map_err(|e| {
                PolicyError::field(field, format!("invalid regular expression {re:?}: {e}"))
            })?)
        } else {
            let glob = text.strip_prefix("glob:").unwrap_or(text);
            if glob.is_empty() {
                return Err(PolicyError::field(field, "empty pattern"));
            }
            Matcher::Glob(compile_glob(field, glob)?)
        };
        Ok(Pattern {
            source: text.to_string(),
            matcher,
        })
    }

    /// Whether the pattern matches the whole tag.
    pub fn matches(&self, tag: &str) -> bool {
        match &self.matcher {
            Matcher::Regex(re) => re.is_match(tag),
            Matcher::Glob(g) => g.is_match(tag),
        }
    }

    /// The pattern as the user wrote it, prefix included.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// A compiled repository glob (`shipshape_oci::RepoGlob`, the language access control's role
/// bindings share). Equal when written the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoPattern(RepoGlob);

impl RepoPattern {
    /// Compiles `text`; errors are reported against `field` (e.g. `repositories[0]`).
    pub fn parse(field: &str, text: &str) -> Result<RepoPattern, PolicyError> {
        RepoGlob::parse(text)
            .map(RepoPattern)
            .map_err(|e| PolicyError::field(field, e))
    }

    /// Whether the glob matches the whole repository name.
    pub fn matches(&self, repo: &str) -> bool {
        self.0.matches(repo)
    }

    /// The glob as the user wrote it.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Display for RepoPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

fn compile_glob(field: &str, glob: &str) -> Result<GlobMatcher, PolicyError> {
    GlobBuilder::new(glob)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| PolicyError::field(field, format!("invalid glob {glob:?}: {}", e.kind())))
}

/// The regular expression made to match the whole text (bulk deletion's filters use it too).
/// The expression is checked as written first, so an error names the user's text and not the
/// anchoring around it, and so the anchoring cannot turn an invalid expression (`a)|(b`) into
/// a valid one that matches more than asked.
pub(crate) fn anchored(re: &str) -> Result<Regex, String> {
    let message = |e: regex::Error| match e {
        // The parser's message spans lines (the pattern, a caret, the error): keep the error.
        regex::Error::Syntax(s) => s
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or(&s)
            .to_string(),
        other => other.to_string(),
    };
    Regex::new(re).map_err(message)?;
    Regex::new(&format!("^(?:{re})$")).map_err(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_patterns_match_the_whole_tag() {
        // (pattern, tags it matches, tags it does not)
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("*", &["a", "v1.0", "x-y_z"], &[]),
            (
                "release-*",
                &["release-1", "release-"],
                &["pre-release-1", "release"],
            ),
            ("glob:release-*", &["release-1"], &["xrelease-1"]),
            ("v?", &["v1", "vx"], &["v", "v10"]),
            ("v[0-9]", &["v3"], &["va", "v33"]),
            ("v[!0-9]", &["va"], &["v3"]),
            ("{main,dev}-*", &["main-1", "dev-2"], &["test-1"]),
            ("a**b", &["ab", "axxb"], &["abc"]),
            ("latest", &["latest"], &["latest2", "Latest"]),
            (r"\*", &["*"], &["a"]),
            (
                "regex:v[0-9]+(\\.[0-9]+)*",
                &["v1", "v1.2.3"],
                &["v1.", "xv1", "v1-rc"],
            ),
            (
                "regex:main|dev",
                &["main", "dev"],
                &["maindev", "xmain", "dev1"],
            ),
            ("regex:.*-rc[0-9]+", &["1.0-rc2"], &["1.0-rc"]),
        ];
        for (p, yes, no) in cases {
            let pat = Pattern::parse("f", p).unwrap();
            assert_eq!(pat.as_str(), *p);
            for t in *yes {
                assert!(pat.matches(t), "{p} should match {t}");
            }
            for t in *no {
                assert!(!pat.matches(t), "{p} should not match {t}");
            }
        }
    }

    #[test]
    fn bad_tag_patterns_name_the_field() {
        let cases: &[(&str, &str)] = &[
            (
                "regex:(",
                "tags.exclude[1]: invalid regular expression \"(\": ",
            ),
            (
                "regex:[z-a]",
                "tags.exclude[1]: invalid regular expression \"[z-a]\": ",
            ),
            ("regex:", "tags.exclude[1]: empty regular expression"),
            ("[", "tags.exclude[1]: invalid glob \"[\": "),
            ("glob:a{b", "tags.exclude[1]: invalid glob \"a{b\": "),
            ("", "tags.exclude[1]: empty pattern"),
            ("glob:", "tags.exclude[1]: empty pattern"),
        ];
        for (p, want) in cases {
            let e = Pattern::parse("tags.exclude[1]", p)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{p}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn repository_globs_go_by_segment() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "team-a/**",
                &["team-a/x", "team-a/x/y", "team-a/x/y/z"],
                &["team-a", "team-ab/x", "x/team-a/y"],
            ),
            (
                "*/nightly",
                &["a/nightly", "team-b/nightly"],
                &["nightly", "a/b/nightly", "a/nightly2"],
            ),
            (
                "**/nightly",
                &["nightly", "a/nightly", "a/b/nightly"],
                &["nightly/a", "anightly"],
            ),
            ("team-a/*", &["team-a/x"], &["team-a/x/y", "team-a"]),
            ("a/**/b", &["a/b", "a/x/b", "a/x/y/b"], &["a/b/c", "b"]),
            (
                "org/team/app",
                &["org/team/app"],
                &["org/team/app/x", "org/team", "org/team/ap"],
            ),
            (
                "org/*/app-?",
                &["org/team/app-1"],
                &["org/team/app-10", "org/a/b/app-1"],
            ),
            ("**", &["a", "a/b/c"], &[]),
            ("*", &["a"], &["a/b"]),
        ];
        for (p, yes, no) in cases {
            let pat = RepoPattern::parse("repositories[0]", p).unwrap();
            for r in *yes {
                assert!(pat.matches(r), "{p} should match {r}");
            }
            for r in *no {
                assert!(!pat.matches(r), "{p} should not match {r}");
            }
        }
        let e = RepoPattern::parse("repositories[0]", "[").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("repositories[0]: invalid glob \"[\": "),
            "{e}"
        );
    }
}
