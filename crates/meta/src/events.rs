//! The activity log: who did what to which target, and why. Written in the same transaction as
//! the change it records, and logged (target `shipshape::audit`) once that transaction commits.

use crate::db::{Dialect, dual, execute, rows, values};

use crate::principal::Principal;
use crate::{Conn, Millis, Result};

/// What the activity log records, each named `family.verb`. A filter names one of these or a
/// family (`tag` for every `tag.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    TagPush,
    TagDelete,
    TagRestore,
    ManifestPush,
    ManifestDelete,
    BlobDelete,
    RepositoryDelete,
    RepositoryRestore,
    PolicyApply,
    PolicyRemove,
    PolicyRun,
    GcRun,
    GcCollect,
    UserAdd,
    UserRemove,
    UserPassword,
    RobotAdd,
    RobotRevoke,
    RoleGrant,
    RoleRevoke,
}

impl Action {
    pub const ALL: [Action; 20] = [
        Action::TagPush,
        Action::TagDelete,
        Action::TagRestore,
        Action::ManifestPush,
        Action::ManifestDelete,
        Action::BlobDelete,
        Action::RepositoryDelete,
        Action::RepositoryRestore,
        Action::PolicyApply,
        Action::PolicyRemove,
        Action::PolicyRun,
        Action::GcRun,
        Action::GcCollect,
        Action::UserAdd,
        Action::UserRemove,
        Action::UserPassword,
        Action::RobotAdd,
        Action::RobotRevoke,
        Action::RoleGrant,
        Action::RoleRevoke,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::TagPush => "tag.push",
            Action::TagDelete => "tag.delete",
            Action::TagRestore => "tag.restore",
            Action::ManifestPush => "manifest.push",
            Action::ManifestDelete => "manifest.delete",
            Action::BlobDelete => "blob.delete",
            Action::RepositoryDelete => "repository.delete",
            Action::RepositoryRestore => "repository.restore",
            Action::PolicyApply => "policy.apply",
            Action::PolicyRemove => "policy.remove",
            Action::PolicyRun => "policy.run",
            Action::GcRun => "gc.run",
            Action::GcCollect => "gc.collect",
            Action::UserAdd => "user.add",
            Action::UserRemove => "user.remove",
            Action::UserPassword => "user.password",
            Action::RobotAdd => "robot.add",
            Action::RobotRevoke => "robot.revoke",
            Action::RoleGrant => "role.grant",
            Action::RoleRevoke => "role.revoke",
        }
    }

    /// The part before the dot: what a family filter names.
    pub fn family(self) -> &'static str {
        let s = self.as_str();
        &s[..s.find('.').unwrap_or(s.len())]
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Action {
    type Err = crate::MetaError;
    fn from_str(s: &str) -> Result<Self> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| crate::MetaError::Corrupt(format!("unknown activity-log action {s:?}")))
    }
}

/// Whether `filter` names a recorded action or a family of them.
pub fn is_known_action(filter: &str) -> bool {
    Action::ALL
        .iter()
        .any(|a| a.as_str() == filter || a.family() == filter)
}

/// One entry of the activity log. Build it with `NewEvent::new` and set what applies.
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    pub by: &'a Principal,
    pub action: Action,
    pub repository: Option<&'a str>,
    pub target: Option<&'a str>,
    pub digest: Option<String>,
    pub reason: Option<&'a str>,
}

impl<'a> NewEvent<'a> {
    pub fn new(by: &'a Principal, action: Action) -> Self {
        NewEvent {
            by,
            action,
            repository: None,
            target: None,
            digest: None,
            reason: None,
        }
    }
}

/// The words a reason holds when a change went over a tag protection (the log says so in a
/// field of its own).
pub const OVERRIDDEN: &str = "protection overridden";

/// An entry written in a transaction not yet committed: `commit` logs it, a rollback forgets
/// it with the rest.
#[derive(Clone, Debug)]
pub struct Recorded {
    action: Action,
    actor: String,
    actor_id: Option<String>,
    source: Option<String>,
    repository: Option<String>,
    target: Option<String>,
    digest: Option<String>,
    reason: Option<String>,
}

impl Recorded {
    /// One line with the entry's fields (`protection_overridden` only when true). Runs (`gc.run`, `gc.collect`, `policy.run`) are left
    /// to the collector and the policy runner, whose lines carry the run's figures as fields
    /// rather than the entry's sentence; pushes are at debug, since each request already has
    /// its line, with the same actor.
    pub(crate) fn log(&self) {
        macro_rules! line {
            ($level:expr) => {
                tracing::event!(
                    target: "shipshape::audit",
                    $level,
                    action = self.action.as_str(),
                    actor = %self.actor,
                    actor_id = self.actor_id.as_deref(),
                    source = self.source.as_deref(),
                    repository = self.repository.as_deref(),
                    object = self.target.as_deref(),
                    digest = self.digest.as_deref(),
                    reason = self.reason.as_deref(),
                    protection_overridden = self
                        .reason
                        .as_deref()
                        .is_some_and(|r| r.contains(OVERRIDDEN))
                        .then_some(true),
                    "{}",
                    self.action
                )
            };
        }
        match self.action {
            Action::GcRun | Action::GcCollect | Action::PolicyRun => {}
            Action::TagPush | Action::ManifestPush => line!(tracing::Level::DEBUG),
            _ => line!(tracing::Level::INFO),
        }
    }
}

pub async fn record(conn: &mut dyn Conn, e: &NewEvent<'_>, now: Millis) -> Result<()> {
    execute!(conn, |cx| sqlx::query(
        "INSERT INTO events (at, actor, actor_id, source, action, repository, target, digest,
                             reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(now)
    .bind(&e.by.name)
    .bind(e.by.audit_id())
    .bind(e.by.source.as_deref())
    .bind(e.action.as_str())
    .bind(e.repository)
    .bind(e.target)
    .bind(e.digest.as_deref())
    .bind(e.reason))?;
    if let Some(pending) = conn.recorded() {
        pending.push(Recorded {
            action: e.action,
            actor: e.by.name.clone(),
            actor_id: e.by.audit_id(),
            source: e.by.source.clone(),
            repository: e.repository.map(str::to_string),
            target: e.target.map(str::to_string),
            digest: e.digest.clone(),
            reason: e.reason.map(str::to_string),
        });
    }
    Ok(())
}

/// A recorded event.
#[derive(Clone, Debug)]
pub struct Event {
    pub id: i64,
    pub at: Millis,
    pub actor: String,
    pub source: Option<String>,
    pub action: Action,
    pub repository: Option<String>,
    pub target: Option<String>,
    pub digest: Option<String>,
    pub reason: Option<String>,
}

/// Which events to list: all filters are optional and combine.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub repository: Option<String>,
    /// An exact action (`tag.delete`) or a family (`tag`, matching `tag.*`). `since` is
    /// included, `until` excluded.
    pub action: Option<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    /// Only events older than this id (the cursor of the previous page).
    pub before: Option<i64>,
}

/// Which entries a caller may see, decided by its caller (access control is not the
/// catalogue's business): the entries of these repositories, and those naming no repository
/// only when `registry_wide`.
#[derive(Clone, Debug, Default)]
pub struct Visible {
    pub repositories: Vec<String>,
    pub registry_wide: bool,
}

/// Events matching the filter, newest first, at most `limit`; only those `visible` allows
/// (`None`: every entry). The visibility is part of the query, so a page is full and its
/// cursor exact whatever the caller may not see.
pub async fn list(
    conn: &mut dyn Conn,
    f: &EventFilter,
    visible: Option<&Visible>,
    limit: i64,
) -> Result<Vec<Event>> {
    // A family is matched as a literal prefix (`tag.`), never a pattern: no wildcards, and
    // case counts on every backend.
    let family = f.action.as_ref().map(|a| format!("{a}."));
    let names = visible.map(|v| crate::json(&v.repositories)).transpose()?;
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(cx.sql(dual!(
        "SELECT id, at, actor, source, action, repository, target, digest, reason FROM events
         WHERE ($1 IS NULL OR repository = $1)
           AND ($2 IS NULL OR action = $2 OR substr(action, 1, length($3)) = $3)
           AND ($4 IS NULL OR at >= $4)
           AND ($5 IS NULL OR at < $5)
           AND ($6 IS NULL OR id < $6)
           AND ($8 IS NULL
                OR (repository IS NULL AND $9)
                OR repository IN " texts(8) ")
         ORDER BY id DESC LIMIT $7"
    )))
    .bind(f.repository.as_deref())
    .bind(f.action.as_deref())
    .bind(family)
    .bind(f.since)
    .bind(f.until)
    .bind(f.before)
    .bind(crate::limit(limit))
    .bind(names)
    .bind(visible.is_some_and(|v| v.registry_wide)))?;
    rows.iter()
        .map(|r| {
            Ok(Event {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                source: r.try_get("source")?,
                action: r.try_get::<&str>("action")?.parse()?,
                repository: r.try_get("repository")?,
                target: r.try_get("target")?,
                digest: r.try_get("digest")?,
                reason: r.try_get("reason")?,
            })
        })
        .collect()
}

/// Every repository name the activity log holds entries of (deleted repositories' too), in
/// name order.
pub async fn repositories(conn: &mut dyn Conn) -> Result<Vec<String>> {
    let rows = rows!(conn, fetch_all, |cx| sqlx::query(
        "SELECT DISTINCT repository FROM events WHERE repository IS NOT NULL ORDER BY repository",
    ))?;
    rows.iter().map(|r| r.try_get("repository")).collect()
}

/// The id of the newest entry of the activity log (none when it is empty): every deletion,
/// restore, push of a tag or manifest, policy run and collection, on any node, moves it.
pub async fn latest_id(conn: &mut dyn Conn) -> Result<Option<i64>> {
    let id: Option<i64> = values!(conn, fetch_one, |cx| sqlx::query_scalar(
        "SELECT max(id) FROM events"
    ))?;
    Ok(id)
}

/// Forgets up to `limit` of the oldest events recorded before `before`; returns how many. The
/// caller repeats until fewer than `limit` go, each batch in a short transaction.
pub async fn prune(conn: &mut dyn Conn, before: Millis, limit: i64) -> Result<u64> {
    let done = execute!(conn, |cx| {
        sqlx::query(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < $1 ORDER BY at LIMIT $2)",
    )
    .bind(before)
    .bind(crate::limit(limit))
    })?;
    Ok(done.rows_affected())
}

/// Forgets up to `limit` of the oldest tag history entries recorded before `before` (the
/// caller keeps every entry a restore may still need: `before` is no later than the start of
/// the restore window); returns how many.
pub async fn prune_tag_history(conn: &mut dyn Conn, before: Millis, limit: i64) -> Result<u64> {
    let done = execute!(conn, |cx| sqlx::query(
        "DELETE FROM tag_history WHERE id IN
             (SELECT id FROM tag_history WHERE at < $1 ORDER BY at LIMIT $2)",
    )
    .bind(before)
    .bind(crate::limit(limit)))?;
    Ok(done.rows_affected())
}
