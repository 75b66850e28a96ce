//! One review: re-check a queued blob or manifest in the caller's transaction and forget it if
//! it is truly unreferenced. The same code serves the background workers, GC runs and dry runs
//! (a dry run reviews inside a transaction it then rolls back), so a preview and a real run
//! decide alike.

use shipshape_meta::gc::{self, RunItem};
use shipshape_meta::manifests::ManifestId;
use shipshape_meta::{Conn, Millis, blobs, events};
use shipshape_oci::Digest;

use crate::GcError;

/// The rules a review applies, fixed for one pass.
#[derive(Clone, Debug)]
pub struct Rules {
    pub now: Millis,
    /// Nothing is collected sooner than this after the event that made it garbage, and a blob
    /// link renewed within it is kept.
    pub grace: Millis,
    pub restore_window: Millis,
    pub untagged_manifests: bool,
    pub orphan_referrers: bool,
    /// The run on whose behalf the review acts, for the activity log.
    pub run: Option<i64>,
}

impl Rules {
    fn reason(&self, what: &str) -> String {
        match self.run {
            Some(id) => format!("{what} (gc run {id})"),
            None => format!("{what} (online collector)"),
        }
    }
}

/// What a review decided about its queue entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do now or later unless a new event queues it again; the entry is removed.
    Done,
    /// Look again no earlier than this time (a lease, the grace period or the restore window).
    Later(Millis),
    /// The rules of this pass do not allow a decision (untagged collection off); leave the
    /// entry to another pass.
    Skipped,
}

/// What reviews deleted, to report and to count.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub items: Vec<RunItem>,
    pub figures: gc::Figures,
}

impl Outcome {
    pub(crate) fn add(&mut self, item: RunItem) {
        match item.kind.as_str() {
            "manifest" => self.figures.manifests += 1,
            "blob" => {
                self.figures.blobs += 1;
                self.figures.bytes += item.size;
            }
            "link" => self.figures.links += 1,
            "upload" => self.figures.uploads += 1,
            "orphan" => {
                self.figures.orphans += 1;
                self.figures.bytes += item.size;
            }
            _ => {}
        }
        self.items.push(item);
    }

    pub fn merge(&mut self, other: Outcome) {
        self.figures.reviewed += other.figures.reviewed;
        for item in other.items {
            self.add(item);
        }
    }
}

async fn log(
    conn: &mut Conn,
    rules: &Rules,
    action: &str,
    repository: Option<&str>,
    digest: Option<String>,
    reason: &str,
) -> Result<(), GcError> {
    let reason = rules.reason(reason);
    events::record(
        conn,
        &events::NewEvent {
            actor: "gc",
            action,
            repository,
            digest,
            reason: Some(&reason),
            ..Default::default()
        },
        rules.now,
    )
    .await?;
    Ok(())
}

/// Reviews a manifest: purges it when no tag points at it, no index lists it, it is not a
/// referrer of a present subject (unless orphan referrers are kept), its grace period has
/// passed and no deleted tag can still be restored onto it.
pub async fn manifest(
    conn: &mut Conn,
    id: ManifestId,
    rules: &Rules,
    out: &mut Outcome,
) -> Result<Verdict, GcError> {
    out.figures.reviewed += 1;
    let Some(entry) = gc::manifest_entry(conn, id).await? else {
        return Ok(Verdict::Done);
    };
    let Some(m) = gc::manifest_state(conn, id).await? else {
        return Ok(Verdict::Done);
    };
    if m.tagged || m.listed {
        // The tag's removal or the index's purge queues it again.
        return Ok(Verdict::Done);
    }
    // A deleted tag can still be restored onto it, or it was itself deleted: held.
    let held_since = m.deleted_at.into_iter().chain(m.last_tag_deleted_at).max();
    if let Some(since) = held_since
        && since + rules.restore_window > rules.now
    {
        return Ok(Verdict::Later(since + rules.restore_window));
    }
    let why = if m.deleted_at.is_some() {
        "deleted and past the restore window"
    } else if let Some(_subject) = &m.subject {
        if m.subject_present {
            // A referrer lives as long as its subject; the subject's purge queues it again.
            return Ok(Verdict::Done);
        }
        if !rules.orphan_referrers {
            return Ok(Verdict::Skipped);
        }
        "referrer whose subject is gone"
    } else {
        if !rules.untagged_manifests {
            return Ok(Verdict::Skipped);
        }
        "untagged"
    };
    let touched = [
        Some(entry.queued_at),
        Some(m.created_at),
        m.last_untagged_at,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);
    if touched + rules.grace > rules.now {
        return Ok(Verdict::Later(touched + rules.grace));
    }
    gc::purge_manifest(conn, id, m.repo, &m.digest, rules.now).await?;
    log(
        conn,
        rules,
        "gc.manifest.delete",
        Some(&m.repository),
        Some(m.digest.to_string()),
        why,
    )
    .await?;
    out.add(RunItem {
        kind: "manifest".into(),
        repository: Some(m.repository),
        target: m.digest.to_string(),
        size: m.size,
    });
    Ok(Verdict::Done)
}

/// Reviews a blob: drops repository links that no manifest of the repository references and
/// whose lease has run out, then forgets the blob when nothing references or links it, queueing
/// its bytes for deletion (invariant 1: forget first, delete after the commit).
pub async fn blob(
    conn: &mut Conn,
    digest: &Digest,
    rules: &Rules,
    out: &mut Outcome,
) -> Result<Verdict, GcError> {
    out.figures.reviewed += 1;
    if gc::blob_entry(conn, digest).await?.is_none() {
        return Ok(Verdict::Done);
    }
    if blobs::find(conn, digest).await?.is_none() {
        return Ok(Verdict::Done);
    }
    let mut leased_until: Option<Millis> = None;
    for link in gc::links_of(conn, digest).await? {
        if link.referenced {
            continue;
        }
        let expires = link.renewed_at + rules.grace;
        if expires > rules.now {
            leased_until = Some(leased_until.map_or(expires, |t| t.min(expires)));
            continue;
        }
        blobs::unlink(conn, link.repo, digest, rules.now).await?;
        log(
            conn,
            rules,
            "gc.link.delete",
            Some(&link.repository),
            Some(digest.to_string()),
            "no manifest of the repository references the blob",
        )
        .await?;
        out.add(RunItem {
            kind: "link".into(),
            repository: Some(link.repository),
            target: digest.to_string(),
            size: 0,
        });
    }
    if gc::blob_referenced(conn, digest).await? {
        return Ok(Verdict::Done);
    }
    if let Some(until) = leased_until {
        return Ok(Verdict::Later(until));
    }
    if let Some(forgotten) = gc::forget_blob(conn, digest, rules.now).await? {
        log(
            conn,
            rules,
            "gc.blob.delete",
            None,
            Some(digest.to_string()),
            "no manifest references the blob",
        )
        .await?;
        out.add(RunItem {
            kind: "blob".into(),
            repository: None,
            target: digest.to_string(),
            size: forgotten.size,
        });
    }
    Ok(Verdict::Done)
}

/// Applies a verdict to a manifest's queue entry.
pub async fn settle_manifest(conn: &mut Conn, id: ManifestId, v: &Verdict) -> Result<(), GcError> {
    match v {
        Verdict::Done => gc::finish_manifest(conn, id).await?,
        Verdict::Later(t) => gc::defer_manifest(conn, id, *t).await?,
        Verdict::Skipped => {}
    }
    Ok(())
}

/// Applies a verdict to a blob's queue entry.
pub async fn settle_blob(conn: &mut Conn, digest: &Digest, v: &Verdict) -> Result<(), GcError> {
    match v {
        Verdict::Done => gc::finish_blob(conn, digest).await?,
        Verdict::Later(t) => gc::defer_blob(conn, digest, *t).await?,
        Verdict::Skipped => {}
    }
    Ok(())
}

/// Expires one stale upload session, if it is still stale.
pub async fn upload(
    conn: &mut Conn,
    stale: &gc::StaleUpload,
    cutoff: Millis,
    rules: &Rules,
    out: &mut Outcome,
) -> Result<(), GcError> {
    if gc::expire_upload(conn, &stale.id, cutoff, rules.now).await? {
        log(
            conn,
            rules,
            "gc.upload.expire",
            Some(&stale.repository),
            None,
            "upload session abandoned",
        )
        .await?;
        out.add(RunItem {
            kind: "upload".into(),
            repository: Some(stale.repository.clone()),
            target: stale.id.clone(),
            size: stale.received,
        });
    }
    Ok(())
}
