//! `shipshape repo ls|rm|restore`: list repositories with their figures, delete one
//! (restorable for the restore window), bring a deleted one back.

use reqwest::Method;
use serde_json::Value;
use shipshape_server::api::model::{
    BatchRestore, BatchRestoreRequest, DeletedTag, RepositoryDeleteQuery, RepositoryDeletion,
    RepositoryInfo, RepositoryList, TagList,
};

use super::client::decode;
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
                .json(&BatchRestoreRequest {
                    force,
                    override_protection,
                });
            let v = remote.send(req).await?;
            print_restore(format, &v)
        }
    }
}

/// What a repository or batch restore brought back.
pub(super) fn print_restore(format: Format, v: &Value) -> Result<()> {
    if format == Format::Json {
        output::print_json(v);
        return Ok(());
    }
    let restore: BatchRestore = decode(v)?;
    let repo = &restore.repository;
    for t in &restore.tags {
        match &t.replaced {
            Some(old) => println!("restored {repo}:{} -> {} (replaced {old})", t.tag, t.digest),
            None => println!("restored {repo}:{} -> {}", t.tag, t.digest),
        }
    }
    let tags = super::plural(restore.tags.len() as u64, "tag");
    if restore.manifests > 0 {
        println!(
            "restored {tags} of {repo}, with {}",
            super::plural(restore.manifests, "manifest")
        );
    } else {
        println!("restored {tags} of {repo}");
    }
    Ok(())
}

async fn ls(remote: &Remote, format: Format) -> Result<()> {
    let v = remote.get("/api/v1/repositories").await?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let list: RepositoryList = decode(&v)?;
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
    for r in &list.repositories {
        let u = &r.usage;
        t.row(vec![
            r.name.clone(),
            r.tags.to_string(),
            r.manifests.to_string(),
            r.untagged_manifests.to_string(),
            output::size(u.stored_bytes),
            output::size(u.unique_bytes),
            output::size(u.reclaimable_bytes),
            output::time(r.last_pushed_at.as_deref()),
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
    let info: RepositoryInfo = remote.get_json(&Remote::repo_path(name, "")).await?;
    let listed: Vec<String> = if yes {
        Vec::new()
    } else {
        let tags: TagList = remote.get_json(&Remote::repo_path(name, "tags")).await?;
        tags.tags
            .iter()
            .map(|t| format!("{name}:{} ({})", t.name, output::digest(t.digest.as_str())))
            .collect()
    };
    output::confirm_listing(
        yes,
        &format!(
            "delete repository {name} ({} tags, {} manifests, {} stored)",
            info.tags,
            info.manifests,
            output::size(info.usage.stored_bytes)
        ),
        &listed,
    )?;
    let query = RepositoryDeleteQuery {
        confirm: Some(name.to_string()),
        override_protection,
    };
    let req = remote
        .request(Method::DELETE, &Remote::repo_path(name, ""))
        .query(&query);
    let v = remote.send(req).await?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let done: RepositoryDeletion = decode(&v)?;
    print_deleted_tags(&done.tags);
    println!(
        "deleted repository {name}: {}, {}",
        super::plural(done.tags.len() as u64, "tag"),
        super::plural(done.manifests, "manifest")
    );
    super::tag::print_freed(&done.freed, false);
    println!("undo with: shipshape repo restore {name}");
    Ok(())
}

fn print_deleted_tags(tags: &[DeletedTag]) {
    if tags.is_empty() {
        return;
    }
    let mut t = Table::new(&["DELETED TAG", "DIGEST"]);
    for tag in tags {
        t.row(vec![tag.tag.clone(), tag.digest.clone()]);
    }
    t.print();
}
