//! The promises every `BlobStore` keeps, as one test any backend runs against a store of its
//! own: `contract(Arc::new(LocalStore::open(dir)))`, and an `S3Store` over a scratch bucket of
//! an in-process S3 server. Only the trait is used, and nothing assumes the store starts
//! empty: every check is about the objects the test made itself.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use shipshape_oci::{Algorithm, Digest, Digester};

use crate::{
    BLOBS_PREFIX, BlobStore, Body, ByteRange, StorageKey, StoreError, UPLOADS_PREFIX, UploadState,
};

/// Runs every check of the contract against `store`.
pub async fn contract(store: Arc<dyn BlobStore>) {
    let store = &*store;
    sessions_append_commit_and_read_back(store).await;
    a_failed_body_leaves_the_session_as_it_was(store).await;
    a_body_of_another_length_is_refused_and_cut_off(store).await;
    a_session_resumes_from_its_record(store).await;
    every_commit_has_a_fresh_key(store).await;
    an_aborted_session_is_gone(store).await;
    reads_refuse_missing_and_damaged_objects(store).await;
    deletes_count_missing_objects_as_deleted(store).await;
    listings_follow_the_prefix(store).await;
    a_probe_leaves_nothing_a_listing_sees(store).await;
}

fn body(parts: &[&'static [u8]]) -> Body<'static> {
    futures::stream::iter(
        parts
            .iter()
            .map(|p| Ok(Bytes::from_static(p)))
            .collect::<Vec<_>>(),
    )
    .boxed()
}

async fn read_all(
    store: &dyn BlobStore,
    key: &StorageKey,
    range: Option<ByteRange>,
) -> Result<Vec<u8>, StoreError> {
    let chunks: Vec<Bytes> = store
        .read(key, range, None)
        .await?
        .try_collect()
        .await
        .map_err(StoreError::Io)?;
    Ok(chunks.concat())
}

/// A blob with these bytes, through a whole session.
async fn put(store: &dyn BlobStore, bytes: &'static [u8]) -> StorageKey {
    let up = store.begin_upload().await.unwrap();
    let mut h = Digester::new(Algorithm::Sha256);
    let up = store
        .append(&up, body(&[bytes]), Some(bytes.len() as u64), &mut h)
        .await
        .unwrap();
    store.commit(&up).await.unwrap()
}

async fn keys_under(store: &dyn BlobStore, prefix: &str) -> HashSet<String> {
    store
        .list(prefix)
        .map(|o| o.unwrap().key.as_str().to_string())
        .collect()
        .await
}

/// The keys under `prefix` of objects that belong to the session at `session`, as the sweep
/// judges them ([`StorageKey::recorded_owner`]).
async fn owned_by(store: &dyn BlobStore, prefix: &str, session: &StorageKey) -> Vec<String> {
    store
        .list(prefix)
        .map(|o| o.unwrap().key)
        .filter(|k| futures::future::ready(&k.recorded_owner() == session))
        .map(|k| k.as_str().to_string())
        .collect()
        .await
}

async fn sessions_append_commit_and_read_back(store: &dyn BlobStore) {
    let up = store.begin_upload().await.unwrap();
    assert_eq!(up.received(), 0);
    // Moved to a blob key at commit, or written in place at one.
    let key = up.key().as_str();
    assert!(
        key.starts_with(UPLOADS_PREFIX) || key.starts_with(BLOBS_PREFIX),
        "{up:?}"
    );
    let mut h = Digester::new(Algorithm::Sha256);
    let up = store
        .append(&up, body(&[b"hello ", b"wor"]), None, &mut h)
        .await
        .unwrap();
    assert_eq!(up.received(), 9);
    let up = store
        .append(&up, body(&[b"ld"]), Some(2), &mut h)
        .await
        .unwrap();
    assert_eq!(up.received(), 11);
    let digest = Digest::of_bytes(Algorithm::Sha256, b"hello world");
    assert_eq!(h.finish(), digest);
    let again = store.rehash(&up, Algorithm::Sha256).await.unwrap();
    assert_eq!(again.finish(), digest, "rehash reads the session's bytes");
    let key = store.commit(&up).await.unwrap();
    assert!(key.as_str().starts_with(BLOBS_PREFIX), "{key:?}");
    assert_eq!(store.size(&key).await.unwrap(), 11);
    assert_eq!(read_all(store, &key, None).await.unwrap(), b"hello world");
    let range = ByteRange { first: 6, last: 10 };
    assert_eq!(read_all(store, &key, Some(range)).await.unwrap(), b"world");
    let range = ByteRange { first: 0, last: 0 };
    assert_eq!(read_all(store, &key, Some(range)).await.unwrap(), b"h");
    assert!(
        owned_by(store, UPLOADS_PREFIX, up.key()).await.is_empty(),
        "a committed session's unfinished bytes are gone"
    );
    assert!(keys_under(store, BLOBS_PREFIX).await.contains(key.as_str()));
    // An empty blob is a blob too.
    let up = store.begin_upload().await.unwrap();
    let mut h = Digester::new(Algorithm::Sha256);
    let up = store.append(&up, body(&[]), Some(0), &mut h).await.unwrap();
    let empty = store.commit(&up).await.unwrap();
    assert_eq!(store.size(&empty).await.unwrap(), 0);
    assert!(read_all(store, &empty, None).await.unwrap().is_empty());
}

async fn a_failed_body_leaves_the_session_as_it_was(store: &dyn BlobStore) {
    let up = store.begin_upload().await.unwrap();
    let mut h = Digester::new(Algorithm::Sha256);
    let up = store
        .append(&up, body(&[b"abc"]), None, &mut h)
        .await
        .unwrap();
    let failing = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"def")),
        Err(std::io::Error::other("connection reset")),
    ])
    .boxed();
    let mut h2 = h.clone();
    let err = store.append(&up, failing, None, &mut h2).await.unwrap_err();
    assert!(matches!(err, StoreError::Body(_)), "{err}");
    // The caller carries on from the state it had.
    let up = store
        .append(&up, body(&[b"xyz"]), None, &mut h)
        .await
        .unwrap();
    assert_eq!(up.received(), 6);
    assert_eq!(h.finish(), Digest::of_bytes(Algorithm::Sha256, b"abcxyz"));
    let key = store.commit(&up).await.unwrap();
    assert_eq!(read_all(store, &key, None).await.unwrap(), b"abcxyz");
}

async fn a_body_of_another_length_is_refused_and_cut_off(store: &dyn BlobStore) {
    let up = store.begin_upload().await.unwrap();
    let mut h = Digester::new(Algorithm::Sha256);
    let up = store
        .append(&up, body(&[b"abc"]), Some(3), &mut h)
        .await
        .unwrap();
    for (announced, sent) in [(2, &b"defg"[..]), (9, &b"de"[..])] {
        let mut h2 = h.clone();
        let err = store
            .append(&up, body(&[sent]), Some(announced), &mut h2)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::LengthMismatch { expected, received }
                if expected == announced && received == sent.len() as u64),
            "{err}"
        );
    }
    let up = store
        .append(&up, body(&[b"d"]), Some(1), &mut h)
        .await
        .unwrap();
    assert_eq!(h.finish(), Digest::of_bytes(Algorithm::Sha256, b"abcd"));
    let key = store.commit(&up).await.unwrap();
    assert_eq!(read_all(store, &key, None).await.unwrap(), b"abcd");
}

async fn a_session_resumes_from_its_record(store: &dyn BlobStore) {
    let up = store.begin_upload().await.unwrap();
    let mut h = Digester::new(Algorithm::Sha256);
    let up = store
        .append(&up, body(&[b"first "]), None, &mut h)
        .await
        .unwrap();
    let record = up.record();
    assert_eq!(record.received, 6);
    let resumed = UploadState::resume(&record).unwrap();
    assert_eq!(resumed, up);
    let mut h = Digester::restore_state(Algorithm::Sha256, &h.save_state()).unwrap();
    let up = store
        .append(&resumed, body(&[b"second"]), None, &mut h)
        .await
        .unwrap();
    let key = store.commit(&up).await.unwrap();
    assert_eq!(read_all(store, &key, None).await.unwrap(), b"first second");

    let mut bad = record.clone();
    bad.storage_key = "../outside".into();
    assert!(matches!(
        UploadState::resume(&bad),
        Err(StoreError::BadKey(_))
    ));
    let mut bad = record;
    bad.store_state = Some("not json".into());
    assert!(matches!(
        UploadState::resume(&bad),
        Err(StoreError::BadState(_))
    ));
}

async fn every_commit_has_a_fresh_key(store: &dyn BlobStore) {
    let a = put(store, b"same bytes").await;
    let b = put(store, b"same bytes").await;
    assert_ne!(a, b, "identical bytes are still stored under a fresh key");
    store.delete(&a).await.unwrap();
    assert_eq!(
        read_all(store, &b, None).await.unwrap(),
        b"same bytes",
        "deleting one copy leaves the other"
    );
}

async fn an_aborted_session_is_gone(store: &dyn BlobStore) {
    let up = store.begin_upload().await.unwrap();
    let mut h = Digester::new(Algorithm::Sha256);
    let up = store
        .append(&up, body(&[b"abc"]), None, &mut h)
        .await
        .unwrap();
    assert!(
        !owned_by(store, UPLOADS_PREFIX, up.key()).await.is_empty(),
        "an unfinished session's bytes are where the sweep sees them, as the session's"
    );
    store.abort(&up).await.unwrap();
    store.abort(&up).await.unwrap();
    for prefix in [UPLOADS_PREFIX, BLOBS_PREFIX] {
        assert_eq!(
            owned_by(store, prefix, up.key()).await,
            Vec::<String>::new(),
            "an aborted session leaves nothing under {prefix}"
        );
    }
    let mut h = Digester::new(Algorithm::Sha256);
    assert!(matches!(
        store.append(&up, body(&[b"d"]), None, &mut h).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.commit(&up).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn reads_refuse_missing_and_damaged_objects(store: &dyn BlobStore) {
    let key = put(store, b"twelve bytes").await;
    assert!(store.read(&key, None, Some(12)).await.is_ok());
    assert!(matches!(
        store.read(&key, None, Some(13)).await,
        Err(StoreError::Damaged {
            expected: 13,
            stored: 12,
            ..
        })
    ));
    store.delete(&key).await.unwrap();
    assert!(matches!(
        store.read(&key, None, None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.size(&key).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn deletes_count_missing_objects_as_deleted(store: &dyn BlobStore) {
    let key = put(store, b"gone twice").await;
    store.delete(&key).await.unwrap();
    store.delete(&key).await.unwrap();
    assert!(!keys_under(store, BLOBS_PREFIX).await.contains(key.as_str()));
    // Many at once: one answer per key, in order, a missing one deleted too.
    let keys = [put(store, b"one").await, key, put(store, b"two").await];
    let kept = put(store, b"kept").await;
    let answers = store.delete_many(&keys, 2).await;
    assert_eq!(answers.len(), 3);
    assert!(answers.iter().all(|a| a.is_ok()), "{answers:?}");
    let left = keys_under(store, BLOBS_PREFIX).await;
    assert!(keys.iter().all(|k| !left.contains(k.as_str())));
    assert!(left.contains(kept.as_str()));
}

async fn listings_follow_the_prefix(store: &dyn BlobStore) {
    let a = put(store, b"a").await;
    let b = put(store, b"bb").await;
    let session = store.begin_upload().await.unwrap();
    let mut h = Digester::new(Algorithm::Sha256);
    let session = store
        .append(&session, body(&[b"c"]), None, &mut h)
        .await
        .unwrap();
    let objects: Vec<_> = store
        .list(BLOBS_PREFIX)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let size_of = |k: &StorageKey| objects.iter().find(|o| &o.key == k).map(|o| o.size);
    assert_eq!(size_of(&a), Some(1));
    assert_eq!(size_of(&b), Some(2));
    assert!(
        objects
            .iter()
            .all(|o| o.key.as_str().starts_with(BLOBS_PREFIX))
    );
    assert!(size_of(session.key()).is_none());
    let everything = keys_under(store, "").await;
    for k in [&a, &b] {
        assert!(everything.contains(k.as_str()), "{k:?} listed under \"\"");
    }
    assert!(
        everything
            .iter()
            .any(|k| &StorageKey::from_recorded(k).unwrap().recorded_owner() == session.key()),
        "an unfinished session's bytes are listed under \"\""
    );
    // A prefix is a prefix of keys, not a directory: part of a key's last segment selects it.
    let head = &a.as_str()[..a.as_str().len() - 3];
    assert!(keys_under(store, head).await.contains(a.as_str()));
    let recent = objects.iter().find(|o| o.key == a).unwrap().modified;
    let age = std::time::SystemTime::now()
        .duration_since(recent)
        .unwrap_or_default();
    assert!(
        age < std::time::Duration::from_secs(600),
        "a fresh blob looks fresh to the sweep"
    );
    store.abort(&session).await.unwrap();
}

/// A probe succeeds on a working store and leaves nothing under `blobs/` or `uploads/`, which
/// are all the sweep and the check look at.
async fn a_probe_leaves_nothing_a_listing_sees(store: &dyn BlobStore) {
    let keys = |prefix: &'static str| async move {
        let mut keys: Vec<String> = store
            .list(prefix)
            .map_ok(|o| o.key.as_str().to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    };
    let before = (keys(BLOBS_PREFIX).await, keys(UPLOADS_PREFIX).await);
    store.probe().await.expect("a probe of a working store");
    store.probe().await.expect("and another");
    let after = (keys(BLOBS_PREFIX).await, keys(UPLOADS_PREFIX).await);
    assert_eq!(before, after);
    assert!(
        keys(crate::HEALTH_PREFIX).await.is_empty(),
        "a probe deletes what it wrote"
    );
}
