//! Web UI sessions: a random id in an HttpOnly, SameSite=Strict cookie (Secure over TLS). A
//! visitor gets one before logging in, so that the login form and, with access control off,
//! every form is protected against cross-site request forgery the same way: every form carries
//! back a token derived from the id (`csrf_of`), which a page of another site can neither read
//! nor compute.
//!
//! A login starts a session under a fresh id that the catalogue records with the account
//! (`Auth::start_session`, by the id's hash): every node knows it, so a browser's requests may
//! reach any node, and a logout ends it everywhere. A visitor who has not logged in costs no
//! row: the cookie alone is that session.

use sha2::{Digest as _, Sha256};
use shipshape_auth::Account;

/// The cookie's name.
pub(crate) const COOKIE: &str = "shipshape_session";

/// One visitor's session.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub id: String,
    /// Who logged in; `None` before a login (or with access control off).
    pub account: Option<Account>,
    /// The token every form of this session carries in its `csrf` field.
    pub csrf: String,
}

impl Session {
    /// The session of the cookie id `id`, for `account`.
    pub fn new(id: String, account: Option<Account>) -> Session {
        let csrf = csrf_of(&id);
        Session { id, account, csrf }
    }

    /// A session under a fresh id (a first visit, a login, a logout): an id known before is
    /// worth nothing after.
    pub fn fresh(account: Option<Account>) -> Session {
        Session::new(random_token(), account)
    }
}

/// A hard-to-guess token: two random UUIDs, 244 random bits, as 64 hex digits.
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether a cookie's value has the shape of an id this server makes.
fn well_formed(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The forms' token of a session: derived from its secret id, so no node needs to store it.
fn csrf_of(id: &str) -> String {
    hex::encode(Sha256::digest(format!("shipshape-ui-csrf:{id}").as_bytes()))
}

/// Compares two tokens in time that does not depend on where they differ.
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The `Set-Cookie` value for a session id; an empty id clears the cookie.
pub(crate) fn cookie(id: &str, secure: bool) -> String {
    let mut c = format!("{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict");
    if id.is_empty() {
        c.push_str("; Max-Age=0");
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The session id a request's `Cookie` headers carry, if it has the shape of one.
pub(crate) fn id_from(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|id| well_formed(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_session_has_a_new_id_and_a_token_only_its_id_gives() {
        let a = Session::fresh(None);
        let b = Session::fresh(None);
        assert!(well_formed(&a.id), "{}", a.id);
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, b.csrf);
        assert_ne!(a.id, a.csrf);
        assert_eq!(Session::new(a.id.clone(), None).csrf, a.csrf);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
        assert!(!same_token("", "a"));
    }

    #[test]
    fn the_cookie_is_read_among_others_and_written_with_its_attributes() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            format!("a=1; shipshape_session={}; b=2", "ab".repeat(32))
                .parse()
                .unwrap(),
        );
        assert_eq!(id_from(&h), Some("ab".repeat(32)));
        h.insert(
            axum::http::header::COOKIE,
            "shipshape_session=xyz".parse().unwrap(),
        );
        assert_eq!(id_from(&h), None, "not an id this server makes");
        assert_eq!(
            cookie("xyz", true),
            "shipshape_session=xyz; Path=/ui; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(cookie("", false).contains("Max-Age=0"));
    }
}
