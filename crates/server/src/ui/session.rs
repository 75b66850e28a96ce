//! Web UI sessions: a random id in an HttpOnly, SameSite=Strict cookie (Secure over TLS) names
//! a server-side entry holding the account that logged in (never its password) and the token
//! every form must carry back (CSRF). A visitor gets a session before logging in, so that the
//! login form and, with access control off, every form is protected the same way.
//!
//! Sessions live in this node's memory: a restart or another node asks for a login again,
//! which costs a user one form and keeps no secret on disk.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shipshape_auth::Account;

/// The cookie's name.
pub(crate) const COOKIE: &str = "shipshape_session";

/// A session unused this long is forgotten.
const IDLE: Duration = Duration::from_secs(12 * 3600);

/// At most this many sessions are kept; past it the least recently used goes, so visitors
/// without a cookie cannot grow the map without bound.
const MAX_SESSIONS: usize = 10_000;

/// One visitor's session.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub id: String,
    /// Who logged in; `None` before a login (or with access control off).
    pub account: Option<Account>,
    /// The token every form of this session carries in its `csrf` field.
    pub csrf: String,
    last_used: Instant,
}

/// Every session of this node.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// A hard-to-guess token: two random UUIDs, 244 random bits.
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    /// The session `id` names, marked as used now; `None` when unknown or idle too long.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.map.lock().expect("sessions");
        let now = Instant::now();
        match map.get_mut(id) {
            Some(s) if now.duration_since(s.last_used) < IDLE => {
                s.last_used = now;
                Some(s.clone())
            }
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// A new session, with a fresh id and CSRF token (a login always starts one, so an id
    /// known before the login is worth nothing after it).
    pub fn create(&self, account: Option<Account>) -> Session {
        let session = Session {
            id: random_token(),
            account,
            csrf: random_token(),
            last_used: Instant::now(),
        };
        let mut map = self.map.lock().expect("sessions");
        if map.len() >= MAX_SESSIONS {
            let now = Instant::now();
            map.retain(|_, s| now.duration_since(s.last_used) < IDLE);
            if map.len() >= MAX_SESSIONS
                && let Some(oldest) = map
                    .values()
                    .min_by_key(|s| s.last_used)
                    .map(|s| s.id.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(session.id.clone(), session.clone());
        session
    }

    /// Forgets a session (logout, or an account that no longer exists).
    pub fn remove(&self, id: &str) {
        self.map.lock().expect("sessions").remove(id);
    }
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

/// The session id a request's `Cookie` headers carry.
pub(crate) fn id_from(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_and_gone_after_removal() {
        let sessions = Sessions::default();
        let s = sessions.create(None);
        assert_eq!(s.id.len(), 64);
        assert_ne!(s.id, s.csrf);
        assert!(sessions.get(&s.id).is_some());
        sessions.remove(&s.id);
        assert!(sessions.get(&s.id).is_none());
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
            "a=1; shipshape_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(id_from(&h).as_deref(), Some("xyz"));
        assert_eq!(
            cookie("xyz", true),
            "shipshape_session=xyz; Path=/ui; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(cookie("", false).contains("Max-Age=0"));
    }
}
