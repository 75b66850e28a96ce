//! The Docker token scheme's scopes: `repository:NAME:pull,push,delete` and
//! `registry:catalog:*`, several in one string separated by spaces. The type ends at the first
//! `:` and the actions start after the last one, because a name may hold a `host:port/` prefix.

use serde::{Deserialize, Serialize};

/// One resource and the actions asked for (or granted) on it: a token's `access` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceScope {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl ResourceScope {
    pub fn repository(name: &str, actions: &[&str]) -> Self {
        ResourceScope {
            kind: "repository".into(),
            name: name.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// Whether the scope grants `action` (or `*`).
    pub fn allows(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == action || a == "*")
    }
}

impl std::fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

/// Parses every scope of `text` (space-separated); malformed ones are dropped, as registries
/// do: a client asking for nothing valid gets a token for nothing.
pub fn parse(text: &str) -> Vec<ResourceScope> {
    text.split(' ').filter_map(parse_one).collect()
}

fn parse_one(s: &str) -> Option<ResourceScope> {
    let (kind, rest) = s.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    // `repository(plugin)`: the class is deprecated and ignored.
    let kind = kind.split('(').next().unwrap_or(kind);
    let kind_ok = !kind.is_empty()
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !kind_ok || name.is_empty() {
        return None;
    }
    let actions: Vec<String> = actions
        .split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    Some(ResourceScope {
        kind: kind.into(),
        name: name.into(),
        actions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_split_at_the_first_and_last_colon() {
        let got = parse(
            "repository:team/app:pull,push registry:catalog:* repository:localhost:5000/a:pull",
        );
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            ResourceScope::repository("team/app", &["pull", "push"])
        );
        assert_eq!(got[1].kind, "registry");
        assert_eq!(got[1].name, "catalog");
        assert!(got[1].allows("anything"));
        assert_eq!(got[2].name, "localhost:5000/a");
        assert_eq!(got[0].to_string(), "repository:team/app:pull,push");
    }

    #[test]
    fn malformed_scopes_are_dropped() {
        assert!(parse("").is_empty());
        assert!(parse("repository").is_empty());
        assert!(parse("repository:pull").is_empty());
        assert!(parse("Repo:x:pull").is_empty());
        let got = parse("repository(plugin):x:pull");
        assert_eq!(got[0].kind, "repository");
        assert!(parse("repository:x:")[0].actions.is_empty());
    }
}
