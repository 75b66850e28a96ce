//! What a catalogue is bound to (`catalogue_bindings`): facts about its deployment that every
//! node must agree on, such as which node's disk holds the blobs when they are not in a bucket.

use crate::db::{execute, values};
use crate::{Conn, Result};

/// The binding that names the node whose local disk holds the blobs.
pub const LOCAL_STORE: &str = "local_store";

/// Binds `name` to `value` unless it is bound already; returns the value it is bound to (the
/// one given, or the one another node gave first).
pub async fn bind(conn: &mut dyn Conn, name: &str, value: &str) -> Result<String> {
    execute!(conn, |cx| sqlx::query(
        "INSERT INTO catalogue_bindings (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING"
    )
    .bind(name)
    .bind(value))?;
    Ok(values!(conn, fetch_one, |cx| sqlx::query_scalar(
        "SELECT value FROM catalogue_bindings WHERE name = $1"
    )
    .bind(name))?)
}

/// Removes a binding (the blobs moved to a bucket every node reaches).
pub async fn unbind(conn: &mut dyn Conn, name: &str) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "DELETE FROM catalogue_bindings WHERE name = $1"
    )
    .bind(name))?;
    Ok(())
}
