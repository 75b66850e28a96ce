//! The web UI's sessions: found by their key until idle too long, touched, ended, and the idle
//! ones forgotten in batches.

use shipshape_meta::web_sessions;

use super::support::*;

#[tokio::test]
async fn sessions_are_found_until_idle_touched_ended_and_pruned() {
    each_backend(async |cat| {
        let mut tx = begin(cat).await;
        web_sessions::insert(&mut tx, "k1", "user:1", T0)
            .await
            .unwrap();
        web_sessions::insert(&mut tx, "k2", "robot:2", T0)
            .await
            .unwrap();
        web_sessions::insert(&mut tx, "k3", "user:3", T0 + HOUR)
            .await
            .unwrap();
        commit(tx).await;
        // A key is recorded once.
        let mut tx = begin(cat).await;
        assert!(
            web_sessions::insert(&mut tx, "k1", "user:9", T0)
                .await
                .is_err()
        );
        drop(tx);

        let mut tx = begin(cat).await;
        assert_eq!(
            web_sessions::find(&mut tx, "k1", T0).await.unwrap(),
            Some(("user:1".to_string(), T0))
        );
        assert_eq!(
            web_sessions::find(&mut tx, "k1", T0 + 1).await.unwrap(),
            None
        );
        assert_eq!(web_sessions::find(&mut tx, "nope", 0).await.unwrap(), None);
        web_sessions::touch(&mut tx, "k1", T0 + 2 * HOUR)
            .await
            .unwrap();
        // A touch never moves a session back in time.
        web_sessions::touch(&mut tx, "k1", T0 + HOUR).await.unwrap();
        assert_eq!(
            web_sessions::find(&mut tx, "k1", T0 + 2 * HOUR)
                .await
                .unwrap(),
            Some(("user:1".to_string(), T0 + 2 * HOUR))
        );
        web_sessions::delete(&mut tx, "k2").await.unwrap();
        assert_eq!(web_sessions::find(&mut tx, "k2", 0).await.unwrap(), None);
        // k3 (last used at T0 + 1 h) is idle since T0 + 90 min; k1 is not.
        assert_eq!(
            web_sessions::delete_idle(&mut tx, T0 + 90 * MINUTE, 10)
                .await
                .unwrap(),
            1
        );
        assert_eq!(web_sessions::find(&mut tx, "k3", 0).await.unwrap(), None);
        assert!(
            web_sessions::find(&mut tx, "k1", 0)
                .await
                .unwrap()
                .is_some()
        );
        commit(tx).await;
    })
    .await;
}
