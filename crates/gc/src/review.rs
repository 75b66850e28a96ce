//! Reviews: re-check queued blobs and manifests in the caller's transaction and forget what is
//! truly unreferenced. Each entry is decided alone, by a pure function of its facts
//! (`decide_blob`, `decide_manifest`); a batch of entries shares one read of the facts and one
//! write of the decisions. The same code serves the background workers, GC runs and dry runs
//! (a dry run reviews inside a transaction it then rolls back), so a preview and a real run
//! decide alike.

use std::collections::HashMap;

use shipshape_meta::manifests::ManifestId;
use shipshape_meta::repos::RepoId;
use shipshape_meta::reviews::{self, BlobFacts, ManifestFacts};
use shipshape_meta::runs::{Figures, ItemKind, RunItem};
use shipshape_meta::{Conn, Millis, uploads};
use shipshape_oci::Digest;

use crate::GcError;

/// The rules a review applies, fixed for one pass.
#[derive(Clone, Debug)]
pub struct Rules {
    pub now: Millis,
    /// Nothing is collected sooner than this after the event that made it garbage.
    pub grace: Millis,
    /// What a client was told exists (a blob it uploaded, mounted or HEADed, a manifest it
    /// pushed) is kept at least this long, whatever `grace` a run is given (`lease`).
    pub lease: Millis,
    pub restore_window: Millis,
    pub untagged_manifests: bool,
    pub orphan_referrers: bool,
}

impl Rules {
    /// How long after its last renewal an unreferenced blob link goes: its lease, or the grace
    /// period when that is longer.
    pub fn link_hold(&self) -> Millis {
        self.grace.max(lease(self.lease))
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
    pub figures: Figures,
}

impl Outcome {
    pub(crate) fn add(&mut self, item: RunItem) {
        match item.kind {
            ItemKind::Manifest => {
                // Manifests live in the catalogue, and their bytes count as freed too.
                self.figures.manifests += 1;
                self.figures.bytes += item.size;
            }
            ItemKind::Blob => {
                self.figures.blobs += 1;
                self.figures.bytes += item.size;
            }
            ItemKind::Link => self.figures.links += 1,
            ItemKind::Upload => self.figures.uploads += 1,
            ItemKind::Orphan => {
                self.figures.orphans += 1;
                self.figures.bytes += item.size;
            }
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

/// How a batch's verdicts are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A worker's claimed entries: every verdict is written, a deferral replacing the claim, and
    /// an entry the worker may not decide is looked at again an hour later rather than at every
    /// poll.
    Worker,
    /// A run's walk over the whole queue: only deletions and finished entries are written. An
    /// entry that is not yet due under the run's rules is left as the workers set it: a run
    /// writes nothing for the entries of uploads whose manifests have not come yet.
    Run,
}

/// A worker that may not decide an entry (untagged collection off) looks again this much later.
const SKIP_MS: Millis = 3_600_000;

/// How long a link stays leased after its last renewal, for a promised lease of `promised`. A
/// HEAD renews a lease only once half of it has passed since the last renewal, so that HEADs do
/// not each write (`Registry::check_blob`); holding one and a half of it means that whoever was
/// told "this blob exists" can rely on it for the whole promised time, renewed or not.
pub fn lease(promised: Millis) -> Millis {
    promised.saturating_add(promised / 2)
}

/// What a blob review decided, from its facts alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobDecision {
    pub verdict: Verdict,
    /// Links no manifest of their repository references, whose lease has run out.
    pub drop_links: Vec<(RepoId, String)>,
    /// Nothing references or links the blob any more once those links are gone.
    pub forget: bool,
}

/// Decides a blob review: drops repository links that no manifest of the repository references
/// and whose lease has run out, looks again when a lease ends, and forgets the blob when nothing
/// references or links it.
/// `None` when the entry is no longer queued (another review finished it).
pub fn decide_blob(f: &BlobFacts, rules: &Rules) -> Option<BlobDecision> {
    if !f.queued {
        return None;
    }
    let mut d = BlobDecision {
        verdict: Verdict::Done,
        drop_links: Vec::new(),
        forget: false,
    };
    if f.size.is_none() {
        return Some(d);
    }
    let mut leased_until: Option<Millis> = None;
    for link in &f.links {
        if link.referenced {
            continue;
        }
        let expires = link.renewed_at + rules.link_hold();
        if expires > rules.now {
            leased_until = Some(leased_until.map_or(expires, |t| t.min(expires)));
        } else {
            d.drop_links.push((link.repo, link.repository.clone()));
        }
    }
    match leased_until {
        // A link still leased is looked at again when its lease ends, whether or not other
        // repositories keep the blob.
        Some(until) => d.verdict = Verdict::Later(until),
        None => d.forget = !f.referenced,
    }
    Some(d)
}

/// What a manifest review decided, from its facts alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestDecision {
    pub verdict: Verdict,
    /// Why the manifest is purged, when it is.
    pub purge: Option<&'static str>,
}

/// Decides a manifest review: purge it when no tag points at it, no index lists it, it is not a
/// referrer of a present subject (unless orphan referrers are kept), its grace period has
/// passed and no deleted tag can still be restored onto it. `None` when the entry is no longer
/// queued.
pub fn decide_manifest(f: &ManifestFacts, rules: &Rules) -> Option<ManifestDecision> {
    f.queued_at?;
    let keep = |verdict| {
        Some(ManifestDecision {
            verdict,
            purge: None,
        })
    };
    let Some(m) = &f.state else {
        return keep(Verdict::Done);
    };
    if m.tagged || m.listed {
        // The tag's removal or the index's purge queues it again.
        return keep(Verdict::Done);
    }
    // A tag left it (deleted, overwritten, restored over) and can still go back to it, or it
    // was itself deleted: held for the restore window.
    let held_since = m.deleted_at.into_iter().chain(m.last_untagged_at).max();
    if let Some(since) = held_since
        && since + rules.restore_window > rules.now
    {
        return keep(Verdict::Later(since + rules.restore_window));
    }
    let why = if m.deleted_at.is_some() {
        "deleted and past the restore window"
    } else if m.subject.is_some() {
        if m.subject_present {
            // A referrer lives as long as its subject; the subject's purge queues it again.
            return keep(Verdict::Done);
        }
        if !rules.orphan_referrers {
            return keep(Verdict::Skipped);
        }
        "referrer whose subject is gone"
    } else {
        if !rules.untagged_manifests {
            return keep(Verdict::Skipped);
        }
        "untagged"
    };
    // Garbage since it was last pushed, left by a tag, or deleted; an index or subject purged
    // before it does not count, so a cascade goes in one run. A client that just pushed it
    // (an index's child before the index) holds its lease whatever the grace.
    let touched = [Some(m.pushed_at), m.last_untagged_at, m.deleted_at]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
    let due = (touched + rules.grace).max(m.pushed_at + lease(rules.lease));
    if due > rules.now {
        return keep(Verdict::Later(due));
    }
    Some(ManifestDecision {
        verdict: Verdict::Done,
        purge: Some(why),
    })
}

/// The verdict as it is written under `mode`, if it is.
fn settled(mode: Mode, verdict: Verdict, rules: &Rules) -> Option<Verdict> {
    match (mode, verdict) {
        (Mode::Worker, Verdict::Skipped) => Some(Verdict::Later(rules.now + SKIP_MS)),
        (Mode::Worker, v) => Some(v),
        (Mode::Run, Verdict::Done) => Some(Verdict::Done),
        (Mode::Run, _) => None,
    }
}

/// Reviews a batch of blob entries in the caller's transaction: reads their facts, decides each
/// alone, then writes the decisions together (links dropped, blobs forgotten with their keys
/// queued for the drainer, entries settled). The activity log gets one entry per pass or run
/// with its figures (`Collector`), not one per object: the items are the run's item list.
pub async fn blobs(
    conn: &mut dyn Conn,
    digests: &[Digest],
    rules: &Rules,
    mode: Mode,
    out: &mut Outcome,
) -> Result<(), GcError> {
    out.figures.reviewed += digests.len() as u64;
    let facts = reviews::blob_facts(conn, digests).await?;
    let (mut done, mut later, mut links, mut forget) = (vec![], vec![], vec![], vec![]);
    let mut names: HashMap<RepoId, String> = HashMap::new();
    for f in facts {
        let Some(d) = decide_blob(&f, rules) else {
            continue;
        };
        match settled(mode, d.verdict, rules) {
            Some(Verdict::Done) => done.push(f.digest.clone()),
            Some(Verdict::Later(t)) => later.push((f.digest.clone(), t)),
            _ => {}
        }
        for (repo, name) in d.drop_links {
            links.push((repo, f.digest.clone()));
            names.insert(repo, name);
        }
        if d.forget {
            forget.push(f.digest);
        }
    }
    reviews::settle_blobs(conn, &done, &later).await?;
    // Only links whose lease still ran out when deleted go: a push may have renewed one since.
    let dropped = reviews::unlink(conn, &links, rules.now - rules.link_hold()).await?;
    let forgotten = reviews::forget_blobs(conn, &forget, rules.now).await?;
    for (repo, digest) in dropped {
        out.add(RunItem {
            kind: ItemKind::Link,
            repository: names.get(&repo).cloned(),
            target: digest.to_string(),
            size: 0,
        });
    }
    for b in forgotten {
        out.add(RunItem {
            kind: ItemKind::Blob,
            repository: None,
            target: b.digest.to_string(),
            size: b.size,
        });
    }
    Ok(())
}

/// Reviews a batch of manifest entries in the caller's transaction. Each is decided on the
/// facts as they stood before the batch: a manifest that only another manifest of the same
/// batch kept (an index, a subject) is queued again by that one's purge and decided in the next
/// pass, because entries are settled before the purges queue anything.
pub async fn manifests(
    conn: &mut dyn Conn,
    ids: &[ManifestId],
    rules: &Rules,
    mode: Mode,
    out: &mut Outcome,
) -> Result<(), GcError> {
    out.figures.reviewed += ids.len() as u64;
    let facts = reviews::manifest_facts(conn, ids).await?;
    let (mut done, mut later, mut purged) = (vec![], vec![], vec![]);
    for f in facts {
        let Some(d) = decide_manifest(&f, rules) else {
            continue;
        };
        match settled(mode, d.verdict, rules) {
            Some(Verdict::Done) => done.push(f.id),
            Some(Verdict::Later(t)) => later.push((f.id, t)),
            _ => {}
        }
        if let (Some(why), Some(m)) = (d.purge, f.state) {
            purged.push((f.id, m, why));
        }
    }
    reviews::settle_manifests(conn, &done, &later).await?;
    let ids: Vec<ManifestId> = purged.iter().map(|(id, _, _)| *id).collect();
    reviews::purge_manifests(conn, &ids, rules.now).await?;
    for (_, m, _) in purged {
        out.add(RunItem {
            kind: ItemKind::Manifest,
            target: m.digest.to_string(),
            repository: Some(m.repository),
            size: m.size,
        });
    }
    Ok(())
}

/// Expires one stale upload session, if it is still stale.
pub async fn upload(
    conn: &mut dyn Conn,
    stale: &uploads::StaleUpload,
    cutoff: Millis,
    rules: &Rules,
    out: &mut Outcome,
) -> Result<(), GcError> {
    if uploads::expire_upload(conn, &stale.id, cutoff, rules.now).await? {
        out.add(RunItem {
            kind: ItemKind::Upload,
            repository: Some(stale.repository.clone()),
            target: stale.id.clone(),
            size: stale.received,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shipshape_meta::reviews::{Link, ManifestState};

    const NOW: Millis = 1_000_000;
    const GRACE: Millis = 1_000;
    /// Shorter than the grace period, as by default (1 h against 24 h).
    const LEASE: Millis = 400;

    fn rules() -> Rules {
        Rules {
            now: NOW,
            grace: GRACE,
            lease: LEASE,
            restore_window: 10_000,
            untagged_manifests: true,
            orphan_referrers: true,
        }
    }

    fn digest(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap()
    }

    fn link(repo: i64, renewed_at: Millis, referenced: bool) -> Link {
        Link {
            repo: RepoId(repo),
            repository: format!("r{repo}"),
            renewed_at,
            referenced,
        }
    }

    fn blob(referenced: bool, links: Vec<Link>) -> BlobFacts {
        BlobFacts {
            digest: digest(1),
            queued: true,
            size: Some(10),
            referenced,
            links,
        }
    }

    #[test]
    fn blob_reviews_decide_from_links_leases_and_references() {
        // Under the default rules a link goes after the grace period (longer than the lease).
        let old = NOW - GRACE;
        let fresh = NOW - GRACE + 1;
        let r = |n: i64| (RepoId(n), format!("r{n}"));
        type Case = (BlobFacts, Verdict, Vec<(RepoId, String)>, bool);
        // (facts, verdict, links dropped, forgotten)
        let cases: Vec<Case> = vec![
            // Unlinked and unreferenced: forgotten.
            (blob(false, vec![]), Verdict::Done, vec![], true),
            // Expired unreferenced links go, then the blob.
            (
                blob(false, vec![link(1, old, false), link(2, old, false)]),
                Verdict::Done,
                vec![r(1), r(2)],
                true,
            ),
            // A lease still running keeps the blob until it ends; expired links still go.
            (
                blob(false, vec![link(1, old, false), link(2, fresh, false)]),
                Verdict::Later(fresh + GRACE),
                vec![r(1)],
                false,
            ),
            // Referenced elsewhere: the stale link goes, the blob stays and the entry is done.
            (
                blob(true, vec![link(1, old, true), link(2, old, false)]),
                Verdict::Done,
                vec![r(2)],
                false,
            ),
            // Referenced elsewhere, but a link of a repository that does not reference it is
            // still leased: looked at again when the lease ends.
            (
                blob(true, vec![link(1, old, true), link(2, fresh, false)]),
                Verdict::Later(fresh + GRACE),
                vec![],
                false,
            ),
            // A referenced link is kept whatever its lease.
            (
                blob(true, vec![link(1, 0, true)]),
                Verdict::Done,
                vec![],
                false,
            ),
            // The blob is already gone: the entry is done, nothing else.
            (
                BlobFacts {
                    size: None,
                    ..blob(false, vec![])
                },
                Verdict::Done,
                vec![],
                false,
            ),
        ];
        for (i, (facts, verdict, dropped, forget)) in cases.into_iter().enumerate() {
            let d = decide_blob(&facts, &rules()).expect("queued");
            assert_eq!(d.verdict, verdict, "case {i}");
            assert_eq!(d.drop_links, dropped, "case {i}");
            assert_eq!(d.forget, forget, "case {i}");
        }
        // A run given no grace still keeps a link whose lease runs: a client was told the blob
        // exists and is about to push the manifest that uses it.
        let no_grace = Rules {
            grace: 0,
            ..rules()
        };
        let leased = NOW - lease(LEASE) + 1;
        let d = decide_blob(&blob(false, vec![link(1, leased, false)]), &no_grace).unwrap();
        assert_eq!(d.verdict, Verdict::Later(leased + lease(LEASE)));
        assert!(d.drop_links.is_empty() && !d.forget);
        let d = decide_blob(&blob(false, vec![link(1, leased - 1, false)]), &no_grace).unwrap();
        assert_eq!((d.drop_links.len(), d.forget), (1, true));

        let gone = BlobFacts {
            queued: false,
            ..blob(false, vec![])
        };
        assert_eq!(
            decide_blob(&gone, &rules()),
            None,
            "another review finished it"
        );
    }

    fn manifest(f: impl FnOnce(&mut ManifestState)) -> ManifestFacts {
        let mut m = ManifestState {
            repo: RepoId(1),
            repository: "r1".into(),
            digest: digest(2),
            size: 500,
            created_at: NOW - 50_000,
            pushed_at: NOW - 50_000,
            deleted_at: None,
            tagged: false,
            listed: false,
            subject: None,
            subject_present: false,
            last_untagged_at: Some(NOW - 20_000),
        };
        f(&mut m);
        ManifestFacts {
            id: ManifestId(7),
            queued_at: Some(NOW - 20_000),
            state: Some(m),
        }
    }

    #[test]
    fn manifest_reviews_decide_from_tags_holds_and_grace() {
        let purge = |why| ManifestDecision {
            verdict: Verdict::Done,
            purge: Some(why),
        };
        let keep = |verdict| ManifestDecision {
            verdict,
            purge: None,
        };
        let cases = vec![
            (manifest(|_| {}), rules(), purge("untagged")),
            (manifest(|m| m.tagged = true), rules(), keep(Verdict::Done)),
            (manifest(|m| m.listed = true), rules(), keep(Verdict::Done)),
            // A tag that left it within the restore window (deleted, or moved away by a
            // push) can come back onto it.
            (
                manifest(|m| m.last_untagged_at = Some(NOW - 1_000)),
                rules(),
                keep(Verdict::Later(NOW + 9_000)),
            ),
            (
                manifest(|m| m.deleted_at = Some(NOW - 30_000)),
                rules(),
                purge("deleted and past the restore window"),
            ),
            // Pushed untagged within the grace period.
            (
                manifest(|m| {
                    m.last_untagged_at = None;
                    m.pushed_at = NOW - 10;
                }),
                rules(),
                keep(Verdict::Later(NOW - 10 + GRACE)),
            ),
            // A run given no grace still waits out the lease of a manifest just pushed (an
            // index's child whose index is on its way).
            (
                manifest(|m| {
                    m.last_untagged_at = None;
                    m.pushed_at = NOW - 10;
                }),
                Rules {
                    grace: 0,
                    ..rules()
                },
                keep(Verdict::Later(NOW - 10 + lease(LEASE))),
            ),
            (
                manifest(|_| {}),
                Rules {
                    untagged_manifests: false,
                    ..rules()
                },
                keep(Verdict::Skipped),
            ),
            // A referrer lives as long as its subject.
            (
                manifest(|m| {
                    m.subject = Some(digest(3));
                    m.subject_present = true;
                }),
                rules(),
                keep(Verdict::Done),
            ),
            (
                manifest(|m| m.subject = Some(digest(3))),
                rules(),
                purge("referrer whose subject is gone"),
            ),
            (
                manifest(|m| m.subject = Some(digest(3))),
                Rules {
                    orphan_referrers: false,
                    ..rules()
                },
                keep(Verdict::Skipped),
            ),
        ];
        for (i, (facts, rules, want)) in cases.into_iter().enumerate() {
            assert_eq!(decide_manifest(&facts, &rules), Some(want), "case {i}");
        }
        let gone = ManifestFacts {
            state: None,
            ..manifest(|_| {})
        };
        assert_eq!(decide_manifest(&gone, &rules()), Some(keep(Verdict::Done)));
        let unqueued = ManifestFacts {
            queued_at: None,
            ..manifest(|_| {})
        };
        assert_eq!(decide_manifest(&unqueued, &rules()), None);
    }

    #[test]
    fn a_run_settles_only_finished_entries_and_a_worker_every_one() {
        assert_eq!(
            settled(Mode::Run, Verdict::Done, &rules()),
            Some(Verdict::Done)
        );
        assert_eq!(settled(Mode::Run, Verdict::Skipped, &rules()), None);
        assert_eq!(
            settled(Mode::Worker, Verdict::Later(NOW), &rules()),
            Some(Verdict::Later(NOW))
        );
        assert_eq!(
            settled(Mode::Worker, Verdict::Skipped, &rules()),
            Some(Verdict::Later(NOW + SKIP_MS))
        );
        assert_eq!(settled(Mode::Run, Verdict::Later(NOW), &rules()), None);
    }
}
