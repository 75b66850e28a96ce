//! Repository globs, the one pattern language that names sets of repositories (retention
//! policies' scopes, access control's role bindings). A glob runs over the `/`-separated
//! repository name: `*` and `?` never match `/` (so `*/nightly` matches `a/nightly` but not
//! `a/b/nightly`); `**` matches any number of whole segments: `team-a/**` matches `team-a/x` and
//! `team-a/x/y` but not `team-a` itself, `**/nightly` matches `nightly`, `a/nightly` and
//! `a/b/nightly`, `a/**/b` matches `a/b` and `a/x/y/b`; `**` alone matches every repository.
//! `[abc]`, `{a,b}` and `\` escapes work as in tag globs. Matching is case-sensitive
//! (repository names are lower-case).

use globset::{GlobBuilder, GlobMatcher};

/// A compiled repository glob. Equal when written the same.
#[derive(Clone, Debug)]
pub struct RepoGlob {
    source: String,
    matcher: GlobMatcher,
}

impl PartialEq for RepoGlob {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for RepoGlob {}

impl RepoGlob {
    /// Compiles `text`; the error says what is wrong with it, in words.
    pub fn parse(text: &str) -> Result<RepoGlob, String> {
        if text.is_empty() {
            return Err("empty pattern".into());
        }
        // No repository name holds one: such a pattern would match nothing, and is a mistake.
        if text.chars().any(char::is_control) {
            return Err(format!(
                "invalid glob {text:?}: it holds a control character"
            ));
        }
        let matcher = GlobBuilder::new(text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("invalid glob {text:?}: {}", e.kind()))?
            .compile_matcher();
        Ok(RepoGlob {
            source: text.to_string(),
            matcher,
        })
    }

    /// Whether the glob matches the whole repository name.
    pub fn matches(&self, repo: &str) -> bool {
        self.matcher.is_match(repo)
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl std::fmt::Display for RepoGlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_with_a_control_character_is_refused() {
        for bad in ["\u{0}", "team/\u{0}*", "a\nb"] {
            let e = RepoGlob::parse(bad).unwrap_err();
            assert!(e.contains("control character"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn globs_match_whole_segments() {
        let cases = [
            ("team-a/**", "team-a/x", true),
            ("team-a/**", "team-a/x/y", true),
            ("team-a/**", "team-a", false),
            ("*/nightly", "a/nightly", true),
            ("*/nightly", "a/b/nightly", false),
            ("**/nightly", "nightly", true),
            ("**/nightly", "a/b/nightly", true),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("**", "any/thing/at/all", true),
            ("team-?", "team-b", true),
        ];
        for (glob, repo, want) in cases {
            assert_eq!(
                RepoGlob::parse(glob).unwrap().matches(repo),
                want,
                "{glob} {repo}"
            );
        }
        assert!(RepoGlob::parse("").is_err());
        assert!(RepoGlob::parse("a/[b").unwrap_err().contains("a/[b"));
    }
}
