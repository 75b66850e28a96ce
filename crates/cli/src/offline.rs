//! What the commands that work on a registry's backends directly (`check`, `export`, `import`)
//! open: the catalogue and the blob store that a data directory and a configuration file name,
//! as `shipshape serve` would.

use std::path::{Path, PathBuf};

use shipshape_meta::Catalogue;
use shipshape_server::CatalogueConfig;
use shipshape_store::{BlobStore, LocalStore, S3Config, S3Store};

/// A registry's backends, as configured.
pub struct Backends {
    pub dir: PathBuf,
    pub catalogue: CatalogueConfig,
    pub s3: Option<S3Config>,
}

impl Backends {
    /// Reads `--config` (if any) and the environment; `--data-dir` wins over the file's.
    pub fn resolve(data_dir: Option<PathBuf>, config: Option<&Path>) -> Result<Self, String> {
        let file = match config.map(crate::config::FileConfig::load) {
            None => crate::config::FileConfig::default(),
            Some(f) => f?,
        };
        let dir = data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("shipshape-data"));
        let s3 = file
            .storage
            .s3
            .map(|s3| {
                s3.with_keys(
                    std::env::var("SHIPSHAPE_S3_ACCESS_KEY_ID").ok(),
                    std::env::var("SHIPSHAPE_S3_SECRET_ACCESS_KEY").ok(),
                )
            })
            .transpose()?;
        let catalogue = file.catalogue.resolve_from_env()?;
        Ok(Backends { dir, catalogue, s3 })
    }

    /// The backends of a registry that must already exist (`check`, `export`): resolved, then
    /// [`Backends::require_existing`].
    pub fn existing(data_dir: Option<PathBuf>, config: Option<&Path>) -> Result<Self, String> {
        let backends = Self::resolve(data_dir, config)?;
        backends.require_existing()?;
        Ok(backends)
    }

    fn sqlite_path(&self) -> PathBuf {
        self.dir.join("catalogue.db")
    }

    /// Where the catalogue is, for messages (a PostgreSQL URL without its password).
    pub fn catalogue_place(&self) -> String {
        match &self.catalogue {
            CatalogueConfig::Sqlite => self.sqlite_path().display().to_string(),
            CatalogueConfig::Postgres { options, .. } => shipshape_meta::redacted_url(&options.url),
        }
    }

    /// Where the blobs are, for messages.
    pub fn store_place(&self) -> String {
        match &self.s3 {
            Some(s3) => format!("the S3 bucket {}", s3.bucket),
            None => self.dir.join("store").display().to_string(),
        }
    }

    /// Refuses a data directory that holds no registry: a SQLite catalogue that does not exist
    /// would be created empty, and an empty local store would make every blob look lost.
    pub fn require_existing(&self) -> Result<(), String> {
        let db = self.sqlite_path();
        if matches!(self.catalogue, CatalogueConfig::Sqlite) && !db.exists() {
            return Err(format!(
                "no registry catalogue at {} (give the registry's data directory with \
                 --data-dir or SHIPSHAPE_DATA_DIR)",
                db.display()
            ));
        }
        // A registry whose blobs are in S3 has no store/ (the server creates it only for the
        // local store).
        if self.s3.is_none() && !self.dir.join("store").is_dir() {
            return Err(format!(
                "no local blob store at {} (for a registry with [storage] s3, give its \
                 configuration file with --config)",
                self.dir.join("store").display()
            ));
        }
        Ok(())
    }

    /// Opens the catalogue. A SQLite one is created and brought up to date as `serve` does; a
    /// PostgreSQL one is migrated only when `migrate` and the configuration allow it.
    pub async fn open_catalogue(&self, migrate: bool) -> Result<Catalogue, String> {
        match &self.catalogue {
            CatalogueConfig::Sqlite => {
                std::fs::create_dir_all(&self.dir)
                    .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
                Catalogue::open_sqlite(&self.sqlite_path()).await
            }
            CatalogueConfig::Postgres {
                options,
                migrate: allowed,
            } => Catalogue::open_postgres(options, migrate && *allowed).await,
        }
        .map_err(|e| format!("{}: {e}", self.catalogue_place()))
    }

    /// Opens the blob store (a local one is created under the data directory).
    pub async fn open_store(&self) -> Result<Box<dyn BlobStore>, String> {
        Ok(match &self.s3 {
            Some(s3) => Box::new(S3Store::open(s3).await.map_err(|e| e.to_string())?),
            None => Box::new(
                LocalStore::open(self.dir.join("store"))
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        })
    }
}

/// A runtime for a command's async work.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))
}
