//! `shipshape repo ls|rm|restore`: list repositories with their figures, delete one
//! (restorable for the restore window), bring a deleted one back.

use reqwest::Method;
use serde_json::{Value, json};

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
    /// List repositories with their tags, manifests, sizes and last push
    Ls,
    /// Delete a repository: its tags, manifests and blob links. It stays restorable
    /// (`shipshape repo restore`) for the registry's restore window
    Rm {
        /// Repository name, e.g. `team/app`
        name: String,
        /// Delete tags a policy protects too (an admin action, logged as such)
        #[arg(long)]
        override_protection: bool,
    },
    /// Bring back a deleted repository: every tag its deletion removed, with its untagged
    /// manifests and referrers
    Restore {
        /// Repository name
        name: String,
        /// Overwrite tag names reused since the deletion (asks unless --yes)
        #[arg(long)]
        force: bool,
        /// With --force, overwrite protected tags too
        #[arg(long)]
        override_protection: bool,
    },
}

pub async fn run(args: RepoArgs) -> Result<()> {
    let remote = args.remote.remote()?;
    let format = args.remote.output;
    let yes = args.remote.yes;
    match args.command {
        RepoCommand::Ls => ls(&remote, format).await,
        RepoCommand::Rm {
            name,
            override_protection,
        } => rm(&remote, format, yes, &name, override_protection).await,
        RepoCommand::Restore {
            name,
            force,
            override_protection,
        } => {
            if force {
                output::confirm(
                    yes,
                    &format!("restore {name}, overwriting tag names reused since its deletion"),
                )?;
            }
            let req = remote
                .request(Method::POST, &Remote::repo_path(&name, "restore"))
                .json(&json!({"force": force, "override_protection": override_protection}));
            let v = remote.send(req).await?;
            print_restore(format, &v);
            Ok(())
        }
    }
}

/// What a repository or batch restore brought back.
pub(super) fn print_restore(format: Format, v: &Value) {
    if format == Format::Json {
        output::print_json(v);
        return;
    }
    let repo = output::text(&v["repository"]);
    for t in v["tags"].as_array().into_iter().flatten() {
        match t["replaced"].as_str() {
            Some(old) => println!(
                "restored {repo}:{} -> {} (replaced {old})",
                output::text(&t["tag"]),
                output::text(&t["digest"])
            ),
            None => println!(
                "restored {repo}:{} -> {}",
                output::text(&t["tag"]),
                output::text(&t["digest"])
            ),
        }
    }
    let manifests = v["manifests"].as_u64().unwrap_or(0);
    let tags = super::plural(v["tags"].as_array().map_or(0, Vec::len) as u64, "tag");
    if manifests > 0 {
        println!(
            "restored {tags} of {repo}, with {}",
            super::plural(manifests, "manifest")
        );
    } else {
        println!("restored {tags} of {repo}");
    }
}

async fn ls(remote: &Remote, format: Format) -> Result<()> {
    let v = remote.get("/api/v1/repositories").await?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let mut t = Table::new(&[
        "REPOSITORY",
        "TAGS",
        "MANIFESTS",
        "UNTAGGED",
        "STORED",
        "ONLY HERE",
        "RECLAIMABLE",
        "LAST PUSH",
    ]);
    for r in v["repositories"].as_array().into_iter().flatten() {
        let u = &r["usage"];
        t.row(vec![
            output::text(&r["name"]),
            output::text(&r["tags"]),
            output::text(&r["manifests"]),
            output::text(&r["untagged_manifests"]),
            output::size_of(&u["stored_bytes"]),
            output::size_of(&u["unique_bytes"]),
            output::size_of(&u["reclaimable_bytes"]),
            output::time(&r["last_pushed_at"]),
        ]);
    }
    t.print();
    Ok(())
}

async fn rm(
    remote: &Remote,
    format: Format,
    yes: bool,
    name: &str,
    override_protection: bool,
) -> Result<()> {
    // Ask only about a repository that exists, so a typo fails with the registry's reason
    // instead of a question; list its tags so the question says what goes.
    let info = remote.get(&Remote::repo_path(name, "")).await?;
    let listed: Vec<String> = if yes {
        Vec::new()
    } else {
        let tags = remote.get(&Remote::repo_path(name, "tags")).await?;
        tags["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                format!(
                    "{name}:{} ({})",
                    output::text(&t["name"]),
                    output::digest(&t["digest"])
                )
            })
            .collect()
    };
    output::confirm_listing(
        yes,
        &format!(
            "delete repository {name} ({} tags, {} manifests, {} stored)",
            output::text(&info["tags"]),
            output::text(&info["manifests"]),
            output::size_of(&info["usage"]["stored_bytes"])
        ),
        &listed,
    )?;
    let mut query = vec![("confirm", name.to_string())];
    if override_protection {
        query.push(("override_protection", "true".into()));
    }
    let req = remote
        .request(Method::DELETE, &Remote::repo_path(name, ""))
        .query(&query);
    let v = remote.send(req).await?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    print_deleted_tags(&v["tags"]);
    println!(
        "deleted repository {name}: {}, {}",
        super::plural(v["tags"].as_array().map_or(0, Vec::len) as u64, "tag"),
        super::plural(v["manifests"].as_u64().unwrap_or(0), "manifest")
    );
    super::tag::print_freed(&v, false);
    println!("undo with: shipshape repo restore {name}");
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
