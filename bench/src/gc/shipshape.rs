//! Builds a Shipshape data directory holding the model, through the catalogue's own functions —
//! the ones a push runs (`repos::get_or_create`, `blobs::insert` and `link`, `manifests::insert`,
//! `tags::set`, `events::record`) — in large transactions, with each blob's bytes written under
//! a fresh store key. Pushing a million blobs over HTTP would take hours; this takes minutes and
//! leaves the same rows and files.

use std::io::Write;
use std::path::Path;

use shipshape_meta::{Catalogue, Principal, blobs, commit, events, manifests, repos, tags};
use shipshape_oci::{Digest, RepoName, Tag, manifest};
use shipshape_store::StorageKey;

use super::model::{MANIFEST_TYPE, Model};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Images recorded per transaction.
const IMAGES_PER_TX: usize = 500;

/// Writes the model into `data` (catalogue.db and store/) as if every image had been pushed,
/// starting at `start_ms` one millisecond apart, and long enough ago that the background
/// workers have reviewed everything. Returns each blob's storage key.
pub async fn populate(model: &Model, data: &Path, start_ms: i64) -> Result<Vec<String>, Error> {
    populate_with(model, data, start_ms, false).await
}

/// [`populate`], leaving every review the pushes queued in the collector's queues (about one
/// per blob and per manifest), as a registry whose background workers are off or behind has.
pub async fn populate_queued(
    model: &Model,
    data: &Path,
    start_ms: i64,
) -> Result<Vec<String>, Error> {
    populate_with(model, data, start_ms, true).await
}

async fn populate_with(
    model: &Model,
    data: &Path,
    start_ms: i64,
    leave_queued: bool,
) -> Result<Vec<String>, Error> {
    std::fs::create_dir_all(data)?;
    let catalogue = Catalogue::open_sqlite(&data.join("catalogue.db")).await?;
    populate_on(&catalogue, model, data, start_ms, leave_queued).await
}

/// [`populate`] into a catalogue the caller opened (a PostgreSQL one, say), the blobs' bytes
/// still in `data`'s store; the catalogue is closed at the end.
pub async fn populate_on(
    catalogue: &Catalogue,
    model: &Model,
    data: &Path,
    start_ms: i64,
    leave_queued: bool,
) -> Result<Vec<String>, Error> {
    let store = data.join("store");
    for d in 0..256 {
        std::fs::create_dir_all(store.join(format!("blobs/{d:02x}")))?;
    }
    std::fs::create_dir_all(store.join("uploads"))?;
    let mut keys: Vec<Option<String>> = vec![None; model.blob_count()];
    let mut now = start_ms;
    let latest: Tag = "latest".parse()?;
    for chunk in (0..model.images.len())
        .collect::<Vec<_>>()
        .chunks(IMAGES_PER_TX)
    {
        let mut tx = catalogue.begin().await?;
        for &i in chunk {
            now += 1;
            let im = &model.images[i];
            let name: RepoName = model.repos[im.repo as usize].parse()?;
            let repo = repos::get_or_create(&mut tx, &name, now).await?;
            for b in model.blobs_of(i as u32) {
                let digest: Digest = model.digest(b).parse()?;
                if keys[b as usize].is_none() {
                    let key = StorageKey::new_blob();
                    let mut f = std::fs::File::create(store.join(key.as_str()))?;
                    f.write_all(&model.blob_bytes(b))?;
                    blobs::insert(
                        &mut tx,
                        &blobs::Blob {
                            digest,
                            size: model.size(b),
                            storage_key: key.as_str().to_string(),
                        },
                        now,
                    )
                    .await?;
                    keys[b as usize] = Some(key.as_str().to_string());
                }
                // A layer already in another repository is mounted: a link, as an upload makes.
                blobs::link(&mut tx, repo, &model.digest(b).parse()?, now).await?;
            }
            let body = model.manifest_bytes(i as u32);
            let parsed = manifest::parse(&body, Some(MANIFEST_TYPE))?;
            let digest: Digest = im.manifest_digest.parse()?;
            let blob_digests: Vec<Digest> = parsed.blobs.iter().map(|d| d.digest.clone()).collect();
            let media_type = parsed.media_type.as_str();
            let (id, _) = manifests::insert(
                &mut tx,
                repo,
                &manifests::NewManifest {
                    digest: &digest,
                    media_type: &media_type,
                    artifact_type: parsed.artifact_type.as_deref(),
                    payload: &body,
                    subject: None,
                    annotations: None,
                    blobs: &blob_digests,
                    children: &[],
                },
                now,
            )
            .await?;
            let head = manifests::ManifestHead {
                id,
                digest: digest.clone(),
                media_type: media_type.to_string(),
                size: body.len() as u64,
            };
            let mut names = vec![im.tag.parse::<Tag>()?];
            if im.latest {
                names.push(latest.clone());
            }
            let pusher = Principal::anonymous(Some("127.0.0.1".into()));
            for tag in names {
                tags::set(&mut tx, repo, &tag, &head, &tags::By::new(&pusher, now)).await?;
                events::record(
                    &mut tx,
                    &events::NewEvent {
                        repository: Some(name.as_str()),
                        target: Some(tag.as_str()),
                        digest: Some(digest.to_string()),
                        ..events::NewEvent::new(&pusher, events::Action::TagPush)
                    },
                    now,
                )
                .await?;
            }
        }
        commit(tx).await?;
    }
    // Every push queued reviews; long after the pushes, the background workers have found every
    // blob referenced and every manifest tagged and removed those entries. That steady state is
    // what the benchmark starts from, so the queues are emptied as the workers would leave them.
    if !leave_queued {
        let mut tx = catalogue.begin().await?;
        shipshape_meta::queue::clear_reviews(&mut tx).await?;
        commit(tx).await?;
    }
    // What `shipshape import` does after its bulk write, and autovacuum soon after one: without
    // the planner's statistics, PostgreSQL took 8 s instead of 0.6 for the storage figures.
    catalogue.refresh_statistics().await?;
    catalogue.close().await;
    // One sync for all the files instead of one per file, as the store does per upload.
    std::process::Command::new("sync").status()?;
    Ok(keys
        .into_iter()
        .map(|k| k.expect("every blob stored"))
        .collect())
}
