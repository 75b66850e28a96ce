//! Copying a catalogue out and into another (`transfer`, what `shipshape export` and `import`
//! use): every table of the schema is accounted for, and rows copied from any backend into any
//! other read back the same.

use std::collections::BTreeSet;

use serde_json::Value;
use shipshape_meta::runs::RunSpec;
use shipshape_meta::tags::{self, By};
use shipshape_meta::transfer::{self, Importer, STAYS, TABLES};
use shipshape_meta::{Catalogue, accounts, repos, runs, samples};

use super::support::*;

#[tokio::test]
async fn every_table_of_the_schema_travels_or_is_said_to_stay() {
    each_backend(async |cat| {
        let mut r = reader(cat).await;
        let schema = transfer::schema(&mut r).await.unwrap();
        let in_schema: BTreeSet<&str> = schema.iter().map(|(t, _)| t.as_str()).collect();
        let accounted: BTreeSet<&str> = TABLES
            .iter()
            .map(|t| t.name)
            .chain(STAYS.iter().copied())
            .collect();
        assert_eq!(in_schema, accounted);
        for table in TABLES {
            let (_, columns) = schema.iter().find(|(t, _)| t == table.name).unwrap();
            let columns: BTreeSet<&str> = columns.iter().map(String::as_str).collect();
            let travelling: BTreeSet<&str> = table.column_names().into_iter().collect();
            assert_eq!(columns, travelling, "the columns of {}", table.name);
        }
    })
    .await;
}

/// Every row of every table that travels, as `export_rows` hands them out.
async fn export(cat: &Catalogue) -> Vec<(&'static str, Vec<Vec<Value>>)> {
    let mut snapshot = cat.snapshot().await.unwrap();
    let mut out = Vec::new();
    for table in TABLES {
        let mut rows = Vec::new();
        transfer::export_rows(&mut snapshot, table, |row| {
            rows.push(row);
            Ok::<_, shipshape_meta::MetaError>(())
        })
        .await
        .unwrap();
        out.push((table.name, rows));
    }
    out
}

/// A catalogue with a row in the tables whose columns are of every kind: flags (a run), bytes
/// (a manifest's payload), nulls, accounts and bindings, tag history.
async fn fill(cat: &Catalogue) {
    let mut tx = begin(cat).await;
    let r = repo(&mut tx, "team/app", T0).await;
    let layer = blob(&mut tx, r, "layer", 1234, T0).await;
    let m = manifest(&mut tx, r, "m1", &[layer], &[], T0).await;
    let by = By {
        principal: &anonymous(),
        now: T0 + SECOND,
        batch: None,
    };
    tags::set(&mut tx, r, &tag("v1"), &m, &by).await.unwrap();
    tags::set(&mut tx, r, &tag("v2"), &m, &by).await.unwrap();
    tags::delete(&mut tx, r, &tag("v2"), &by).await.unwrap();
    let user = accounts::create_user(&mut tx, "dev", "$argon2id$hash", false, "admin", T0)
        .await
        .unwrap()
        .unwrap();
    accounts::bind(
        &mut tx,
        &format!("user:{user}"),
        "team/**",
        accounts::Role::Write,
        "admin",
        T0,
    )
    .await
    .unwrap();
    let spec = RunSpec {
        dry_run: true,
        include_untagged: false,
        sweep: true,
        grace_ms: None,
    };
    runs::start_run(&mut tx, &spec, &collector(), T0)
        .await
        .unwrap()
        .unwrap();
    let sample = samples::Sample {
        at: T0,
        stored: 1234,
        in_use: 1234,
        blobs: 1,
        ..samples::Sample::default()
    };
    assert!(
        samples::record_if_due(&mut tx, &sample, HOUR)
            .await
            .unwrap()
    );
    commit(tx).await;
}

#[tokio::test]
async fn rows_copied_into_any_backend_read_back_the_same_and_ids_continue_after_them() {
    for source in backends().await {
        fill(&source.catalogue).await;
        let rows = export(&source.catalogue).await;
        for filled in [
            "repositories",
            "blobs",
            "manifests",
            "manifest_blob_references",
            "tags",
            "tag_history",
            "users",
            "role_bindings",
            "gc_runs",
            "storage_samples",
        ] {
            let (_, r) = rows.iter().find(|(t, _)| *t == filled).unwrap();
            assert!(!r.is_empty(), "{filled} has rows to copy");
        }
        for target in backends().await {
            eprintln!("from {} into {}", source.name, target.name);
            let cat = &target.catalogue;
            let mut tx = begin(cat).await;
            assert_eq!(transfer::occupied_tables(&mut tx).await.unwrap(), vec![]);
            for (name, table_rows) in &rows {
                let importer = Importer::new(transfer::table(name).unwrap());
                for row in table_rows {
                    importer.insert(&mut tx, row.clone()).await.unwrap();
                }
            }
            transfer::finish_import(&mut tx).await.unwrap();
            commit(tx).await;
            assert_eq!(export(cat).await, rows);

            // A new row gets an id past the imported ones (PostgreSQL's sequences were moved).
            let mut tx = begin(cat).await;
            let before = repos::find(&mut tx, &repo_name("team/app"))
                .await
                .unwrap()
                .unwrap();
            let after = repo(&mut tx, "team/new", T0 + DAY).await;
            assert!(after.0 > before.0, "{after:?} after {before:?}");
            commit(tx).await;
            cat.close().await;
        }
        source.catalogue.close().await;
    }
}

#[tokio::test]
async fn a_row_that_does_not_fit_its_table_is_refused() {
    each_backend(async |cat| {
        let repositories = Importer::new(transfer::table("repositories").unwrap());
        let mut tx = begin(cat).await;
        for bad in [
            serde_json::json!([1, "a"]),
            serde_json::json!(["one", "a", 1, null]),
            serde_json::json!([1, 2, 1, null]),
            serde_json::json!([1, "a", 1.5, null]),
        ] {
            let e = repositories
                .insert(&mut tx, bad.as_array().unwrap().clone())
                .await
                .unwrap_err();
            assert!(
                matches!(e, shipshape_meta::MetaError::Corrupt(_)),
                "{bad}: {e}"
            );
        }
        drop(tx);
    })
    .await;
}
