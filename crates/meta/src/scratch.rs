//! Throw-away PostgreSQL databases on a server the caller administers: what the test suites
//! use to give every test a catalogue of its own (`SHIPSHAPE_TEST_POSTGRES` names the server,
//! `scripts/test` starts one). The SQL stays in this crate like all the rest.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::Result;

/// A database made by [`create`]: its URL, and the administrator's URL to drop it with.
#[derive(Clone, Debug)]
pub struct ScratchDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

/// Creates an empty database with a fresh name on the server `admin_url` names (a role that
/// may create databases).
pub async fn create(admin_url: &str) -> Result<ScratchDatabase> {
    let name = format!("shipshape_{}", uuid_like());
    let mut admin = PgConnection::connect(admin_url).await?;
    // The name is made here of ASCII letters, digits and underscores, never from input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let url = with_database(admin_url, &name);
    Ok(ScratchDatabase {
        url,
        admin_url: admin_url.to_string(),
        name,
    })
}

impl ScratchDatabase {
    /// Drops the database, ending any session still connected to it.
    pub async fn drop_database(&self) -> Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        Ok(())
    }
}

/// `url` with its database (the path) replaced by `name`, query kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..authority_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}_{:x}_{}",
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced_and_its_query_kept() {
        assert_eq!(
            with_database("postgres://a:b@h:5/postgres?sslmode=disable", "x"),
            "postgres://a:b@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
