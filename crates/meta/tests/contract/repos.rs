//! `repos`: created on first write, found by name, listed in byte order, deleted and revived.

use shipshape_meta::repos;

use super::support::*;

#[tokio::test]
async fn get_or_create_is_idempotent_and_revives_a_deleted_repository() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        let name = repo_name("team/app");
        assert_eq!(repos::find(&mut tx, &name).await.unwrap(), None);
        let id = repos::get_or_create(&mut tx, &name, T0).await.unwrap();
        assert_eq!(
            repos::get_or_create(&mut tx, &name, T0 + 1).await.unwrap(),
            id
        );
        assert_eq!(repos::find(&mut tx, &name).await.unwrap(), Some(id));
        commit(tx).await;
        assert_eq!(rows(cat, "repositories").await, 1);

        let mut tx = begin(cat).await;
        repos::mark_deleted(&mut tx, id, T0 + HOUR).await.unwrap();
        // Deleted: hidden from clients, still there for restores.
        assert_eq!(repos::find(&mut tx, &name).await.unwrap(), None);
        assert_eq!(repos::find_any(&mut tx, &name).await.unwrap(), Some(id));
        assert_eq!(
            repos::deleted_at(&mut tx, &name).await.unwrap(),
            Some(T0 + HOUR)
        );
        assert!(repos::list(&mut tx, None, -1).await.unwrap().is_empty());

        // A write to the name brings the same repository back.
        assert_eq!(
            repos::get_or_create(&mut tx, &name, T0 + DAY)
                .await
                .unwrap(),
            id
        );
        assert_eq!(repos::find(&mut tx, &name).await.unwrap(), Some(id));
        assert_eq!(repos::deleted_at(&mut tx, &name).await.unwrap(), None);
        commit(tx).await;
        assert_eq!(rows(cat, "repositories").await, 1);
    })
    .await;
}

#[tokio::test]
async fn list_pages_live_names_in_byte_order() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        for name in ["b/two", "a/one", "c/three", "a/one-more"] {
            repo(&mut tx, name, T0).await;
        }
        let gone = repo(&mut tx, "b/gone", T0).await;
        repos::mark_deleted(&mut tx, gone, T0).await.unwrap();
        commit(tx).await;

        let mut r = reader(cat).await;
        let all = repos::list(&mut r, None, -1).await.unwrap();
        assert_eq!(all, vec!["a/one", "a/one-more", "b/two", "c/three"]);
        let first = repos::list(&mut r, None, 2).await.unwrap();
        assert_eq!(first, vec!["a/one", "a/one-more"]);
        let next = repos::list(&mut r, Some(&first[1]), 2).await.unwrap();
        assert_eq!(next, vec!["b/two", "c/three"]);
        assert!(
            repos::list(&mut r, Some("c/three"), 2)
                .await
                .unwrap()
                .is_empty()
        );

        let live: Vec<String> = repos::all_live(&mut r)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, name)| name)
            .collect();
        assert_eq!(live, all);
        assert_eq!(
            repos::find(&mut r, &repo_name("b/gone")).await.unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn summaries_count_tags_and_untagged_manifests() {
    each_backend(async |cat| {
        use shipshape_meta::tags::{self, By};
        let mut tx = begin(cat).await;
        let r = repo(&mut tx, "team/app", T0).await;
        repo(&mut tx, "team/empty", T0).await;
        let tagged = manifest(&mut tx, r, "tagged", &[], &[], T0 + 1).await;
        manifest(&mut tx, r, "untagged", &[], &[], T0 + 2).await;
        let by = anonymous();
        tags::set(&mut tx, r, &tag("v1"), &tagged, &By::new(&by, T0 + 3))
            .await
            .unwrap();
        tags::set(&mut tx, r, &tag("v2"), &tagged, &By::new(&by, T0 + 4))
            .await
            .unwrap();
        commit(tx).await;

        let all = repos::summaries(&mut reader(cat).await, None, None, -1)
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
        let app = &all[0];
        assert_eq!(app.name, "team/app");
        assert_eq!((app.tags, app.manifests, app.untagged), (2, 2, 1));
        assert_eq!(app.last_pushed_at, Some(T0 + 4));
        assert_eq!(app.last_pulled_at, None);
        let empty = &all[1];
        assert_eq!((empty.tags, empty.manifests, empty.untagged), (0, 0, 0));
        assert_eq!(empty.last_pushed_at, None);
        let only = repos::summaries(&mut reader(cat).await, Some("team/empty"), None, -1)
            .await
            .unwrap();
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].name, "team/empty");
    })
    .await;
}
