//! `shipshape export` and `shipshape import`: a whole registry moved between installations,
//! whatever their backends: from a single SQLite + disk registry to PostgreSQL + S3 (the way to
//! several nodes), back, or into a backup.
//!
//! An export is a directory:
//! - `catalogue/TABLE.jsonl`: every row of each table that travels
//!   (`shipshape_meta::transfer::TABLES`), one JSON array per line, read in one snapshot;
//! - `blobs/ALGORITHM/HEX`: each present blob's bytes, checked against its digest on the way
//!   out and again on the way in;
//! - `shipshape-export.json`: the format, each table's columns and row count, the blobs' count
//!   and bytes. It is written last, so a directory without it is an export that did not finish.
//!
//! An import writes every blob to the new store first, under fresh keys, and only then inserts
//! all rows in one transaction: an import that fails leaves the catalogue empty (the objects
//! already written are unknown to it, and the collector's sweep removes them).

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shipshape_meta::transfer::{self, Importer, TABLES, Table};
use shipshape_oci::{Digest, Digester};
use shipshape_store::{BlobStore, StorageKey};

use crate::offline::Backends;

const MANIFEST: &str = "shipshape-export.json";
const FORMAT: u32 = 1;
/// Blobs copied at once: an object store answers each request after a round trip.
const PARALLEL_COPIES: usize = 4;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Options of `shipshape export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Data directory of the registry [default: ./shipshape-data]
    #[arg(long, env = "SHIPSHAPE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The registry's TOML configuration file: its `[catalogue] url` and `[storage] s3`, with
    /// secrets from the environment as for `serve`
    #[arg(long, env = "SHIPSHAPE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Directory to write the export to; it must not exist yet, or be empty
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
}

/// Options of `shipshape import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Data directory of the new registry [default: ./shipshape-data]
    #[arg(long, env = "SHIPSHAPE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The new registry's TOML configuration file: where its catalogue (`[catalogue] url`) and
    /// blobs (`[storage] s3`) go
    #[arg(long, env = "SHIPSHAPE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Directory that `shipshape export --to` wrote
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
}

/// What `shipshape-export.json` says.
#[derive(Serialize, Deserialize, Debug)]
struct ExportManifest {
    format: u32,
    shipshape: String,
    /// Unix time in milliseconds when the catalogue was read.
    exported_at: i64,
    source: Source,
    tables: Vec<TableManifest>,
    blobs: BlobTotals,
}

#[derive(Serialize, Deserialize, Debug)]
struct Source {
    catalogue: String,
    store: String,
}

#[derive(Serialize, Deserialize, Debug)]
struct TableManifest {
    name: String,
    columns: Vec<String>,
    rows: u64,
}

#[derive(Serialize, Deserialize, Debug, Default)]
struct BlobTotals {
    count: u64,
    bytes: u64,
    /// Rows whose bytes the source had already lost (`state = missing`): they travel as rows,
    /// without bytes, as the source listed them.
    missing: u64,
}

impl ExportManifest {
    fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|t| t.name == table)
            .map_or(0, |t| t.rows)
    }

    /// What the export holds, in words: `1 repository, 6 tags, 8 manifests, 11 blobs (10.0 MiB)
    /// and 3 accounts`.
    fn contents(&self) -> String {
        format!(
            "{}, {}, {}, {} ({}) and {}",
            counted(self.rows("repositories"), "repository", "repositories"),
            crate::remote::plural(self.rows("tags"), "tag"),
            crate::remote::plural(self.rows("manifests"), "manifest"),
            crate::remote::plural(self.blobs.count, "blob"),
            crate::remote::output::size(self.blobs.bytes),
            crate::remote::plural(self.rows("users") + self.rows("robots"), "account"),
        )
    }
}

/// A blob as its catalogue row lists it.
struct BlobRow {
    digest: Digest,
    size: u64,
    storage_key: String,
    present: bool,
}

impl BlobRow {
    fn of(table: &Table, row: &[Value]) -> Result<Self, Error> {
        let col = |name: &str| &row[table.column(name).expect("blobs has the column")];
        let digest: Digest = col("digest")
            .as_str()
            .ok_or("blobs: a digest that is not text")?
            .parse()
            .map_err(|e| format!("blobs: {e}"))?;
        let size = col("size")
            .as_u64()
            .ok_or_else(|| format!("blobs: {digest} has no size"))?;
        let storage_key = col("storage_key")
            .as_str()
            .ok_or_else(|| format!("blobs: {digest} has no storage key"))?
            .to_string();
        let present = col("state").as_str() != Some("missing");
        Ok(BlobRow {
            digest,
            size,
            storage_key,
            present,
        })
    }

    fn file(&self, root: &Path) -> PathBuf {
        root.join("blobs")
            .join(self.digest.algorithm().as_str())
            .join(self.digest.hex())
    }
}

fn blobs_table() -> &'static Table {
    transfer::table("blobs").expect("blobs travels")
}

fn table_file(root: &Path, table: &Table) -> PathBuf {
    root.join("catalogue").join(format!("{}.jsonl", table.name))
}

/// The rows of one table's file, in order.
fn read_rows(
    root: &Path,
    table: &Table,
) -> Result<impl Iterator<Item = Result<Vec<Value>, Error>>, Error> {
    let path = table_file(root, table);
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(std::io::BufReader::new(file)
        .lines()
        .enumerate()
        .map(move |(i, line)| {
            let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::from_str(&line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1).into())
        }))
}

fn exit_with(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn export(args: ExportArgs) -> ExitCode {
    let backends = match Backends::existing(args.data_dir.clone(), args.config.as_deref()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = prepare_empty_dir(&args.to) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match crate::offline::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    exit_with(runtime.block_on(run_export(&backends, &args.to)))
}

fn prepare_empty_dir(dir: &Path) -> Result<(), String> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "{} is not empty: an export goes into a new or empty directory",
                    dir.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    for sub in ["catalogue", "blobs"] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(|e| format!("cannot create {}: {e}", dir.join(sub).display()))?;
    }
    Ok(())
}

async fn run_export(backends: &Backends, to: &Path) -> Result<(), Error> {
    // The export never changes a PostgreSQL schema.
    let catalogue = backends.open_catalogue(false).await?;
    let store = backends.open_store().await?;
    let exported_at = shipshape_meta::Clock::now(&shipshape_meta::SystemClock);

    // Every table from one snapshot, before any blob is read: the snapshot's transaction then
    // never waits on the store.
    let mut tables = Vec::new();
    {
        let mut snapshot = catalogue.snapshot().await?;
        for table in TABLES {
            let path = table_file(to, table);
            let file = std::fs::File::create(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            let mut out = BufWriter::new(file);
            let rows = transfer::export_rows(&mut snapshot, table, |row| -> Result<(), Error> {
                serde_json::to_writer(&mut out, &row)?;
                out.write_all(b"\n")?;
                Ok(())
            })
            .await?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            tables.push(TableManifest {
                name: table.name.to_string(),
                columns: table.column_names().iter().map(|c| c.to_string()).collect(),
                rows,
            });
        }
    }
    catalogue.close().await;

    let mut totals = BlobTotals::default();
    let mut present = Vec::new();
    for row in read_rows(to, blobs_table())? {
        let blob = BlobRow::of(blobs_table(), &row?)?;
        if blob.present {
            totals.count += 1;
            totals.bytes += blob.size;
            present.push(blob);
        } else {
            totals.missing += 1;
        }
    }
    let bar = progress(totals.bytes, "exporting blobs");
    let failures: Vec<String> = futures::stream::iter(present.iter())
        .map(|blob| {
            let store = &*store;
            let bar = &bar;
            async move {
                export_blob(store, blob, to)
                    .await
                    .map(|()| bar.inc(blob.size))
                    .map_err(|e| format!("{}: {e}", blob.digest))
            }
        })
        .buffer_unordered(PARALLEL_COPIES)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    bar.finish_and_clear();
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("blob {f}");
        }
        return Err(format!(
            "{} of {} blobs could not be exported, and {} was not written: the export is \
             incomplete. `shipshape check` on the registry says what is damaged; a registry that \
             was collecting garbage meanwhile may have deleted a blob it no longer needed (export \
             again)",
            failures.len(),
            totals.count,
            to.join(MANIFEST).display()
        )
        .into());
    }

    let manifest = ExportManifest {
        format: FORMAT,
        shipshape: env!("CARGO_PKG_VERSION").to_string(),
        exported_at,
        source: Source {
            catalogue: backends.catalogue_place(),
            store: backends.store_place(),
        },
        tables,
        blobs: totals,
    };
    let path = to.join(MANIFEST);
    let mut file = std::fs::File::create(&path)?;
    serde_json::to_writer_pretty(&mut file, &manifest)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    println!(
        "exported {} from {} and {} to {}",
        manifest.contents(),
        manifest.source.catalogue,
        manifest.source.store,
        to.display()
    );
    if manifest.blobs.missing > 0 {
        println!(
            "note: {} listed as missing in the source (their bytes were lost before the export) \
             travel as missing: clients that push them again restore them",
            crate::remote::plural(manifest.blobs.missing, "blob")
        );
    }
    Ok(())
}

/// Copies one blob's bytes into the export, checking them against the digest and size.
async fn export_blob(store: &dyn BlobStore, blob: &BlobRow, to: &Path) -> Result<(), Error> {
    let key = StorageKey::from_recorded(&blob.storage_key)?;
    let mut stream = store.read(&key, None, Some(blob.size)).await?;
    let path = blob.file(to);
    std::fs::create_dir_all(path.parent().expect("a blob file has a directory"))?;
    let mut file = tokio::fs::File::create(&path).await?;
    let mut digester = Digester::new(blob.digest.algorithm());
    let mut len = 0u64;
    while let Some(chunk) = stream.try_next().await? {
        digester.update(&chunk);
        len += chunk.len() as u64;
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
    }
    file.sync_all().await?;
    let got = digester.finish();
    if len != blob.size || got != blob.digest {
        return Err(format!(
            "the stored bytes are damaged: {len} bytes hashing to {got}, expected {} bytes",
            blob.size
        )
        .into());
    }
    Ok(())
}

pub fn import(args: ImportArgs) -> ExitCode {
    let manifest = match read_manifest(&args.from) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let backends = match Backends::resolve(args.data_dir.clone(), args.config.as_deref()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match crate::offline::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    exit_with(runtime.block_on(run_import(&backends, &args.from, &manifest)))
}

/// Reads and checks `shipshape-export.json`: this release imports only what it would export.
fn read_manifest(from: &Path) -> Result<ExportManifest, String> {
    let path = from.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(_) if !from.is_dir() => {
            return Err(format!(
                "there is no export at {}: give the directory `shipshape export --to` wrote",
                from.display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{} is not a finished export: it has no {MANIFEST} (an export writes it last, \
                 once every blob is copied)",
                from.display()
            ));
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let manifest: ExportManifest =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if manifest.format != FORMAT {
        return Err(format!(
            "{} is an export of format {} (Shipshape {}); this release reads format {FORMAT}",
            from.display(),
            manifest.format,
            manifest.shipshape
        ));
    }
    for table in TABLES {
        let Some(t) = manifest.tables.iter().find(|t| t.name == table.name) else {
            return Err(format!(
                "the export has no table {} (written by Shipshape {})",
                table.name, manifest.shipshape
            ));
        };
        if t.columns != table.column_names() {
            return Err(format!(
                "the export's table {} has the columns {:?}, this release {:?} (written by \
                 Shipshape {}: import it with that release)",
                table.name,
                t.columns,
                table.column_names(),
                manifest.shipshape
            ));
        }
    }
    Ok(manifest)
}

async fn run_import(
    backends: &Backends,
    from: &Path,
    manifest: &ExportManifest,
) -> Result<(), Error> {
    let catalogue = backends.open_catalogue(true).await?;
    {
        let mut conn = catalogue.reader().await?;
        let occupied = transfer::occupied_tables(&mut conn).await?;
        if !occupied.is_empty() {
            let list: Vec<String> = occupied.iter().map(|(t, n)| format!("{t} {n}")).collect();
            return Err(format!(
                "the catalogue at {} is not empty ({}): an import goes into a new registry, \
                 whose catalogue no node has served yet",
                backends.catalogue_place(),
                list.join(", ")
            )
            .into());
        }
    }
    let store = backends.open_store().await?;

    // The bytes first, each under a key the new store chooses; the rows name those keys.
    let mut present = Vec::new();
    for row in read_rows(from, blobs_table())? {
        let blob = BlobRow::of(blobs_table(), &row?)?;
        if blob.present {
            present.push(blob);
        }
    }
    let bar = progress(manifest.blobs.bytes, "importing blobs");
    let keys: Vec<(Digest, Result<StorageKey, String>)> = futures::stream::iter(present.iter())
        .map(|blob| {
            let store = &*store;
            let bar = &bar;
            async move {
                let key = import_blob(store, blob, from)
                    .await
                    .inspect(|_| bar.inc(blob.size))
                    .map_err(|e| e.to_string());
                (blob.digest.clone(), key)
            }
        })
        .buffer_unordered(PARALLEL_COPIES)
        .collect()
        .await;
    bar.finish_and_clear();
    let mut new_keys = HashMap::new();
    let mut failures = Vec::new();
    for (digest, key) in keys {
        match key {
            Ok(k) => {
                new_keys.insert(digest.to_string(), k.as_str().to_string());
            }
            Err(e) => failures.push(format!("blob {digest}: {e}")),
        }
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("{f}");
        }
        return Err(format!(
            "{} of {} blobs could not be imported; nothing was written to the catalogue (the \
             objects already stored are unknown to it: the collector's sweep removes them)",
            failures.len(),
            present.len()
        )
        .into());
    }

    // Then every row, in one transaction: all of it or none.
    let mut tx = catalogue.begin().await?;
    let blobs = blobs_table();
    let key_column = blobs.column("storage_key").expect("blobs has storage_key");
    let digest_column = blobs.column("digest").expect("blobs has digest");
    for table in TABLES {
        let expected = manifest.rows(table.name);
        let importer = Importer::new(table);
        let mut n = 0u64;
        for row in read_rows(from, table)? {
            let mut row = row?;
            if table.name == blobs.name
                && let Some(key) = row
                    .get(digest_column)
                    .and_then(Value::as_str)
                    .and_then(|d| new_keys.get(d))
            {
                row[key_column] = Value::from(key.clone());
            }
            importer
                .insert(&mut tx, row)
                .await
                .map_err(|e| format!("{} row {}: {e}", table.name, n + 1))?;
            n += 1;
        }
        if n != expected {
            return Err(format!(
                "{} has {} where {MANIFEST} says {expected}: the export is damaged; nothing \
                 was written to the catalogue",
                table_file(from, table).display(),
                crate::remote::plural(n, "row")
            )
            .into());
        }
    }
    transfer::finish_import(&mut tx).await?;
    shipshape_meta::commit(tx).await?;
    catalogue.refresh_statistics().await?;
    catalogue.close().await;

    println!(
        "imported {} into {} and {}",
        manifest.contents(),
        backends.catalogue_place(),
        backends.store_place(),
    );
    // Tokens exist only where access control is on, that is where there are accounts.
    if manifest.rows("users") + manifest.rows("robots") > 0 {
        println!(
            "the registry's signing keys are not part of an export: copy the old data \
             directory's auth/ into {} to keep the tokens already issued valid",
            backends.dir.display()
        );
    }
    Ok(())
}

/// Writes one blob from the export into the store, checking it against its digest and size on
/// the way; returns the key the store chose.
async fn import_blob(
    store: &dyn BlobStore,
    blob: &BlobRow,
    from: &Path,
) -> Result<StorageKey, Error> {
    let path = blob.file(from);
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let upload = store.begin_upload().await?;
    let mut digester = Digester::new(blob.digest.algorithm());
    let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).boxed();
    let written = match store
        .append(&upload, body, Some(blob.size), &mut digester)
        .await
    {
        Ok(w) => w,
        Err(e) => {
            let _ = store.abort(&upload).await;
            return Err(e.into());
        }
    };
    let got = digester.finish();
    if got != blob.digest {
        let _ = store.abort(&written).await;
        return Err(format!("{} hashes to {got}: the export is damaged", path.display()).into());
    }
    Ok(store.commit(&written).await?)
}

/// `1 repository`, `2 repositories`.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A progress bar on a terminal, nothing otherwise.
fn progress(total: u64, what: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(what);
    bar
}
