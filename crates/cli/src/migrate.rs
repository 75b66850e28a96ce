//! `shipshape migrate`: brings a PostgreSQL catalogue's schema up to date as a step of its
//! own, for operators who start their nodes with `[catalogue] migrate = false` (schema changes
//! reviewed and applied before a rollout, not by whichever node starts first).

use std::path::PathBuf;
use std::process::ExitCode;

use shipshape_meta::Catalogue;
use shipshape_server::CatalogueConfig;

/// Options of `shipshape migrate`.
#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The registry's TOML configuration file, for its `[catalogue] url` (or set
    /// SHIPSHAPE_CATALOGUE_URL; the password may come from SHIPSHAPE_CATALOGUE_PASSWORD)
    #[arg(long, env = "SHIPSHAPE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

pub fn run(args: MigrateArgs) -> ExitCode {
    let file = match args.config.as_deref().map(crate::config::FileConfig::load) {
        None => crate::config::FileConfig::default(),
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let options = match file.catalogue.resolve_from_env() {
        Ok(CatalogueConfig::Postgres { options, .. }) => options,
        Ok(CatalogueConfig::Sqlite) => {
            eprintln!(
                "error: no PostgreSQL catalogue is configured (give [catalogue] url in --config, \
                 or SHIPSHAPE_CATALOGUE_URL); a SQLite catalogue is brought up to date by \
                 `shipshape serve` itself"
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let where_ = shipshape_meta::redacted_url(&options.url);
    match runtime.block_on(Catalogue::migrate_postgres(&options)) {
        Ok(0) => {
            println!("the catalogue at {where_} is up to date");
            ExitCode::SUCCESS
        }
        Ok(n) => {
            println!("applied {n} migration(s) to the catalogue at {where_}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: migrating the catalogue at {where_}: {e}");
            ExitCode::FAILURE
        }
    }
}
