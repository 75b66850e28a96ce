//! `shipshape usage [REPO]`: storage figures, in total and per repository, or of one
//! repository.

use serde_json::Value;

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
    let row = |name: String, f: &Value| {
        vec![
            name,
            output::size_of(&f["stored_bytes"]),
            output::size_of(&f["unique_bytes"]),
            output::size_of(&f["in_use_bytes"]),
            output::size_of(&f["held_for_restore_bytes"]),
            output::size_of(&f["in_grace_bytes"]),
            output::size_of(&f["reclaimable_bytes"]),
            output::text(&f["blobs"]),
            output::text(&f["manifests"]),
        ]
    };
    if args.repository.is_some() {
        t.row(row(output::text(&v["name"]), &v));
    } else {
        for r in v["repositories"].as_array().into_iter().flatten() {
            t.row(row(output::text(&r["name"]), r));
        }
        // The total counts each blob once, so it is less than the sum of the rows when layers
        // are shared.
        t.row(row("(total)".into(), &v["total"]));
    }
    t.print();
    Ok(())
}
