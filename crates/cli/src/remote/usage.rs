//! `shipshape usage [REPO]`: storage figures, in total and per repository, or of one
//! repository.

use shipshape_server::api::model::{RepositoryUsage, UsageFigures, UsageReport};

use super::client::decode;
use super::output::{self, Format, Table};
use super::{Remote, RemoteArgs, Result};

/// `shipshape usage`
#[derive(clap::Args, Debug)]
pub struct UsageArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Show only this repository
    pub repository: Option<String>,
}

pub async fn run(args: UsageArgs) -> Result<()> {
    let remote = args.remote.remote()?;
    let path = match &args.repository {
        Some(repo) => Remote::repo_path(repo, "usage"),
        None => "/api/v1/usage".to_string(),
    };
    let v = remote.get(&path).await?;
    if args.remote.output == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let mut t = Table::new(&[
        "REPOSITORY",
        "STORED",
        "ONLY HERE",
        "IN USE",
        "HELD FOR RESTORE",
        "IN GRACE",
        "RECLAIMABLE",
        "BLOBS",
        "MANIFESTS",
    ]);
    let row = |name: &str, f: &UsageFigures| {
        vec![
            name.to_string(),
            output::size(f.stored_bytes),
            output::size(f.unique_bytes),
            output::size(f.in_use_bytes),
            output::size(f.held_for_restore_bytes),
            output::size(f.in_grace_bytes),
            output::size(f.reclaimable_bytes),
            f.blobs.to_string(),
            f.manifests.to_string(),
        ]
    };
    if args.repository.is_some() {
        let r: RepositoryUsage = decode(&v)?;
        t.row(row(&r.name, &r.figures));
    } else {
        let report: UsageReport = decode(&v)?;
        for r in &report.repositories {
            t.row(row(&r.name, &r.figures));
        }
        // The total counts each blob once, so it is less than the sum of the rows when layers
        // are shared.
        t.row(row("(total)", &report.total));
    }
    t.print();
    Ok(())
}
