//! `shipshape repo ls|rm`: list repositories, delete one (restorable for the restore window).

use reqwest::Method;
use serde_json::Value;

use super::output::{self, Format, Table};
use super::{Remote, RemoteArgs, Result};

/// `shipshape repo …`
#[derive(clap::Args, Debug)]
pub struct RepoArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: RepoCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum RepoCommand {
    /// List repositories with their tag and manifest counts
    Ls,
    /// Delete a repository: its tags, manifests and blob links. Its tags stay restorable
    /// (`shipshape tag restore`) for the registry's restore window
    Rm {
        /// Repository name, e.g. `team/app`
        name: String,
    },
}

pub async fn run(args: RepoArgs) -> Result<()> {
    let remote = Remote::new(&args.remote.registry)?;
    let format = args.remote.output;
    match args.command {
        RepoCommand::Ls => ls(&remote, format).await,
        RepoCommand::Rm { name } => rm(&remote, format, args.remote.yes, &name).await,
    }
}

async fn ls(remote: &Remote, format: Format) -> Result<()> {
    let v = remote.get("/api/v1/repositories").await?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let mut t = Table::new(&["REPOSITORY", "TAGS", "MANIFESTS", "CREATED"]);
    for r in v["repositories"].as_array().into_iter().flatten() {
        t.row(vec![
            output::text(&r["name"]),
            output::text(&r["tags"]),
            output::text(&r["manifests"]),
            output::time(&r["created_at"]),
        ]);
    }
    t.print();
    Ok(())
}

async fn rm(remote: &Remote, format: Format, yes: bool, name: &str) -> Result<()> {
    // Ask only about a repository that exists, so a typo fails with the registry's reason
    // instead of a question.
    let info = remote.get(&Remote::repo_path(name, "")).await?;
    output::confirm(
        yes,
        &format!(
            "delete repository {name} ({} tags, {} manifests)",
            output::text(&info["tags"]),
            output::text(&info["manifests"])
        ),
    )?;
    let req = remote
        .request(Method::DELETE, &Remote::repo_path(name, ""))
        .query(&[("confirm", name)]);
    let v = remote.send(req).await?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    print_deleted_tags(&v["tags"]);
    println!(
        "deleted repository {name}: {} tags, {} manifests (restorable with `shipshape tag restore`)",
        v["tags"].as_array().map_or(0, Vec::len),
        output::text(&v["manifests"])
    );
    Ok(())
}

fn print_deleted_tags(tags: &Value) {
    let Some(tags) = tags.as_array().filter(|t| !t.is_empty()) else {
        return;
    };
    let mut t = Table::new(&["DELETED TAG", "DIGEST"]);
    for tag in tags {
        t.row(vec![
            output::text(&tag["tag"]),
            output::text(&tag["digest"]),
        ]);
    }
    t.print();
}
