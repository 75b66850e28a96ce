//! The one parser for `/v2/<name>/…` paths. Repository names contain slashes, so the endpoint
//! is found from the right: the last `blobs`, `manifests`, `tags/list` or `referrers` keyword
//! wins, and everything before it is the name.

use shipshape_oci::RepoName;

use crate::error::ApiError;

/// A distribution API endpoint with its raw path parameters.
#[derive(Debug, PartialEq, Eq)]
pub enum Endpoint {
    Base,
    Catalog,
    Tags(RepoName),
    Manifest(RepoName, String),
    Blob(RepoName, String),
    Uploads(RepoName),
    Upload(RepoName, String),
    Referrers(RepoName, String),
}

impl Endpoint {
    /// The route as logs and metrics name it: the spec's template, never the repository or
    /// the reference (one series per route, however many repositories there are).
    pub fn template(&self) -> &'static str {
        match self {
            Endpoint::Base => "/v2/",
            Endpoint::Catalog => "/v2/_catalog",
            Endpoint::Tags(_) => "/v2/{name}/tags/list",
            Endpoint::Manifest(..) => "/v2/{name}/manifests/{reference}",
            Endpoint::Blob(..) => "/v2/{name}/blobs/{digest}",
            Endpoint::Uploads(_) => "/v2/{name}/blobs/uploads/",
            Endpoint::Upload(..) => "/v2/{name}/blobs/uploads/{session}",
            Endpoint::Referrers(..) => "/v2/{name}/referrers/{digest}",
        }
    }
}

/// The route template of a `/v2/…` path (`/v2/{invalid}` when it names no endpoint).
pub fn template(path: &str) -> &'static str {
    let rest = path
        .strip_prefix("/v2")
        .unwrap_or("")
        .trim_start_matches('/');
    parse(rest).map_or("/v2/{invalid}", |e| e.template())
}

/// Parses the path after `/v2/`.
pub fn parse(rest: &str) -> Result<Endpoint, ApiError> {
    if rest.is_empty() {
        return Ok(Endpoint::Base);
    }
    if rest == "_catalog" {
        return Ok(Endpoint::Catalog);
    }
    // Decode each segment on its own, so an escaped `/` cannot change the path's structure.
    let decoded: Vec<String> = rest.split('/').map(percent_decode).collect();
    let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let n = segs.len();
    let name = |upto: usize| -> Result<RepoName, ApiError> {
        let raw = segs[..upto].join("/");
        raw.parse()
            .map_err(|e: shipshape_oci::NameError| ApiError::name_invalid(e.to_string()))
    };
    let at = |i: usize, s: &str| n > i && segs[n - 1 - i] == s;

    if n >= 3 && at(1, "tags") && at(0, "list") {
        return Ok(Endpoint::Tags(name(n - 2)?));
    }
    if n >= 3 && at(1, "blobs") && at(0, "uploads") {
        return Ok(Endpoint::Uploads(name(n - 2)?));
    }
    if n >= 4 && at(2, "blobs") && at(1, "uploads") {
        let id = segs[n - 1];
        return Ok(if id.is_empty() {
            Endpoint::Uploads(name(n - 3)?)
        } else {
            Endpoint::Upload(name(n - 3)?, id.to_string())
        });
    }
    if n >= 3 && at(1, "blobs") {
        return Ok(Endpoint::Blob(name(n - 2)?, segs[n - 1].to_string()));
    }
    if n >= 3 && at(1, "manifests") {
        return Ok(Endpoint::Manifest(name(n - 2)?, segs[n - 1].to_string()));
    }
    if n >= 3 && at(1, "referrers") {
        return Ok(Endpoint::Referrers(name(n - 2)?, segs[n - 1].to_string()));
    }
    Err(ApiError::not_found_endpoint())
}

/// Decodes `%XX` escapes; some clients escape the `:` of digests.
fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (
                (bytes[i + 1] as char).to_digit(16),
                (bytes[i + 2] as char).to_digit(16),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(s: &str) -> RepoName {
        s.parse().unwrap()
    }

    #[test]
    fn endpoints() {
        assert_eq!(parse("").unwrap(), Endpoint::Base);
        assert_eq!(parse("_catalog").unwrap(), Endpoint::Catalog);
        assert_eq!(parse("a/b/tags/list").unwrap(), Endpoint::Tags(repo("a/b")));
        assert_eq!(
            parse("a/manifests/latest").unwrap(),
            Endpoint::Manifest(repo("a"), "latest".into())
        );
        assert_eq!(
            parse("a/blobs/uploads/").unwrap(),
            Endpoint::Uploads(repo("a"))
        );
        assert_eq!(
            parse("a/blobs/uploads").unwrap(),
            Endpoint::Uploads(repo("a"))
        );
        assert_eq!(
            parse("a/blobs/uploads/abc").unwrap(),
            Endpoint::Upload(repo("a"), "abc".into())
        );
        assert_eq!(
            parse("x/blobs/sha256%3Aab").unwrap(),
            Endpoint::Blob(repo("x"), "sha256:ab".into())
        );
        // A repository may itself be called `…/blobs` or `…/manifests`: the last keyword wins.
        assert_eq!(
            parse("a/blobs/manifests/v1").unwrap(),
            Endpoint::Manifest(repo("a/blobs"), "v1".into())
        );
        assert_eq!(
            parse("a/manifests/blobs/sha256:x").unwrap(),
            Endpoint::Blob(repo("a/manifests"), "sha256:x".into())
        );
        assert_eq!(
            parse("r/referrers/sha256:x").unwrap(),
            Endpoint::Referrers(repo("r"), "sha256:x".into())
        );
    }

    #[test]
    fn bad_names() {
        assert_eq!(parse("A/tags/list").unwrap_err().status, 400);
        assert_eq!(parse("a/../b/tags/list").unwrap_err().status, 400);
        assert_eq!(parse("tags/list").unwrap_err().status, 404);
        assert_eq!(parse("a/b").unwrap_err().status, 404);
    }
}
