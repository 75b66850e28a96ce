//! The web UI's sessions of logged-in users (`web_sessions`), shared by every node of the
//! catalogue. Rows are found by the SHA-256 of the cookie's id, which the caller computes: the
//! catalogue never holds a value a browser could present.

use crate::db::{execute, values};
use crate::{Conn, Millis, Result};

/// Records a session of `subject` (`user:ID`, `robot:ID`).
pub async fn insert(conn: &mut dyn Conn, id_hash: &str, subject: &str, now: Millis) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "INSERT INTO web_sessions (id_hash, subject, created_at, last_used) VALUES ($1, $2, $3, $3)"
    )
    .bind(id_hash)
    .bind(subject)
    .bind(now))?;
    Ok(())
}

/// The subject of the session and when it was last used, unless it is unknown or was last used
/// before `idle_since`.
pub async fn find(
    conn: &mut dyn Conn,
    id_hash: &str,
    idle_since: Millis,
) -> Result<Option<(String, Millis)>> {
    Ok(values!(conn, fetch_optional, |cx| sqlx::query_as(
        "SELECT subject, last_used FROM web_sessions WHERE id_hash = $1 AND last_used >= $2"
    )
    .bind(id_hash)
    .bind(idle_since))?)
}

/// Marks the session used at `now`.
pub async fn touch(conn: &mut dyn Conn, id_hash: &str, now: Millis) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "UPDATE web_sessions SET last_used = $2 WHERE id_hash = $1 AND last_used < $2"
    )
    .bind(id_hash)
    .bind(now))?;
    Ok(())
}

/// Forgets a session (a logout, or an account gone since).
pub async fn delete(conn: &mut dyn Conn, id_hash: &str) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "DELETE FROM web_sessions WHERE id_hash = $1"
    )
    .bind(id_hash))?;
    Ok(())
}

/// Forgets up to `limit` sessions last used before `idle_since`; returns how many.
pub async fn delete_idle(conn: &mut dyn Conn, idle_since: Millis, limit: i64) -> Result<u64> {
    let done = execute!(conn, |cx| sqlx::query(
        "DELETE FROM web_sessions WHERE id_hash IN (
             SELECT id_hash FROM web_sessions WHERE last_used < $1 ORDER BY last_used LIMIT $2)"
    )
    .bind(idle_since)
    .bind(crate::limit(limit)))?;
    Ok(done.rows_affected())
}
