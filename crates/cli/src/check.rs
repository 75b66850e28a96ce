//! `shipshape check`: verifies the catalogue of a data directory against its blob store (the
//! data directory's, or the S3 bucket its `--config` names). Safe to run while the registry
//! serves the same directory (SQLite allows a second process; repairs
//! are small transactions, and orphans are judged by age).

use std::path::PathBuf;
use std::process::ExitCode;

use shipshape_gc::check::{self, Options};
use shipshape_meta::{Clock, SystemClock};

/// Options of `shipshape check`. It may run while the registry serves the same data
/// directory: it reads the catalogue beside the server, repairs in small transactions of its
/// own, and leaves unknown objects younger than --orphan-min-age alone (they may be uploads
/// being committed).
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Data directory of the registry [default: ./shipshape-data]
    #[arg(long, env = "SHIPSHAPE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The registry's TOML configuration file: where its blobs are (`[storage] s3`, with the
    /// keys from SHIPSHAPE_S3_ACCESS_KEY_ID and SHIPSHAPE_S3_SECRET_ACCESS_KEY), and its
    /// data_dir unless --data-dir is given
    #[arg(long, env = "SHIPSHAPE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Re-hash every blob and compare it with its digest (reads all stored bytes)
    #[arg(long)]
    verify_digests: bool,

    /// Fix what can be fixed without guessing, and say what was done: a blob whose bytes are
    /// lost or damaged is marked missing (clients then upload it again, and the upload
    /// replaces it), an unreferenced one is forgotten, a missing link is added, an orphan
    /// object is deleted
    #[arg(long)]
    repair: bool,

    /// Unknown storage objects younger than this are left alone (they may be uploads being
    /// committed)
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    orphan_min_age: String,

    /// Output format: `table`, lines for people; `json`, each finding with its kind, the images
    /// it affects and what the repair did
    #[arg(long, short = 'o', value_name = "FORMAT", default_value = "table", value_parser = ["table", "json"])]
    output: String,
}

pub fn run(args: CheckArgs) -> ExitCode {
    // `shipshape check | head` ends quietly, before any thread is started.
    crate::remote::restore_sigpipe();
    let min_age = match humantime::parse_duration(&args.orphan_min_age) {
        Ok(d) => d,
        Err(e) => {
            let _ = e;
            eprintln!(
                "error: --orphan-min-age {:?} is not a duration (use e.g. 30m, 1h)",
                args.orphan_min_age
            );
            return ExitCode::from(2);
        }
    };
    let backends =
        match crate::offline::Backends::existing(args.data_dir.clone(), args.config.as_deref()) {
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
    let result = runtime.block_on(async {
        // The check never changes a PostgreSQL schema: the serving nodes (or `migrate`) do.
        let catalogue = backends.open_catalogue(false).await?;
        let store = backends.open_store().await?;
        let opts = Options {
            verify_digests: args.verify_digests,
            repair: args.repair,
            orphan_min_age: min_age.as_millis() as i64,
        };
        let report = check::check(&catalogue, &*store, SystemClock.now(), &opts)
            .await
            .map_err(|e| e.to_string());
        catalogue.close().await;
        report
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.output == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        for f in &report.findings {
            println!("problem: {}", f.message);
            for u in &f.affects {
                match &u.tag {
                    Some(t) => println!("  affects {}:{t} ({})", u.repository, u.manifest),
                    None => println!("  affects {}@{}", u.repository, u.manifest),
                }
            }
            if let Some(r) = &f.repaired {
                println!("  repaired: {r}");
            }
            if let Some(r) = f.remedy.as_ref().filter(|_| !f.resolved) {
                println!("  to do: {r}");
            }
        }
        let repaired = report
            .findings
            .iter()
            .filter(|f| f.repaired.is_some())
            .count();
        let open = report.findings.iter().filter(|f| !f.resolved).count();
        println!(
            "{} checked, {}, {repaired} repaired, {open} left",
            crate::remote::plural(report.blobs_checked, "blob"),
            crate::remote::plural(report.findings.len() as u64, "problem"),
        );
    }
    // Exit 0 when clean, or when the repair resolved every problem found.
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
