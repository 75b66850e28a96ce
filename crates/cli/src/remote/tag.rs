//! `shipshape tag ls|rm|history|restore`: tags with their metadata, deletion one by one or in
//! bulk by filter, the history of a tag and restoring a deleted one.

use reqwest::Method;
use serde_json::{Value, json};

use super::output::{self, Format, Table};
use super::{Remote, RemoteArgs, RemoteError, Result};

/// `shipshape tag …`
#[derive(clap::Args, Debug)]
pub struct TagArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: TagCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum TagCommand {
    /// List the tags of a repository with digest, size, push and pull times
    Ls {
        /// Repository name, e.g. `team/app`
        repository: String,
    },
    /// Delete tags by name, or in bulk by filters (which combine: a tag goes only when every
    /// given filter says so). Deleted tags stay restorable for the restore window
    Rm(RmArgs),
    /// Show every change of a tag: pushed, moved, deleted, restored
    History {
        /// Repository name
        repository: String,
        /// Tag name
        tag: String,
    },
    /// Restore a deleted tag (also one deleted with its manifest or repository)
    Restore {
        /// Repository name
        repository: String,
        /// Tag name
        tag: String,
        /// Point the tag at this digest instead of the one it had when deleted
        #[arg(long, value_name = "DIGEST")]
        digest: Option<String>,
        /// Overwrite the tag if its name has been reused since (asks unless --yes)
        #[arg(long)]
        force: bool,
    },
}

/// `shipshape tag rm`
#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Repository name
    pub repository: String,
    /// Tags to delete; leave out to delete by filters instead
    pub tags: Vec<String>,
    /// Bulk: delete only tags whose whole name matches this regular expression
    #[arg(long, value_name = "REGEX")]
    pub delete_regex: Option<String>,
    /// Bulk: never delete tags whose whole name matches this regular expression
    #[arg(long, value_name = "REGEX")]
    pub keep_regex: Option<String>,
    /// Bulk: keep the N most recently pushed tags
    #[arg(long, value_name = "N")]
    pub keep_latest: Option<usize>,
    /// Bulk: delete only tags pushed longer ago than this duration (`30d`, `12h`)
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
    /// Bulk: only show which tags the filters would delete
    #[arg(long)]
    pub dry_run: bool,
    /// Delete the named tags even if a policy protects them (an admin action, logged as such)
    #[arg(long)]
    pub override_protection: bool,
}

impl RmArgs {
    fn is_bulk(&self) -> bool {
        self.delete_regex.is_some()
            || self.keep_regex.is_some()
            || self.keep_latest.is_some()
            || self.older_than.is_some()
    }
}

pub async fn run(args: TagArgs) -> Result<()> {
    let remote = Remote::new(&args.remote.registry)?;
    let format = args.remote.output;
    let yes = args.remote.yes;
    match args.command {
        TagCommand::Ls { repository } => ls(&remote, format, &repository).await,
        TagCommand::Rm(rm) if rm.is_bulk() => bulk(&remote, format, yes, rm).await,
        TagCommand::Rm(rm) => delete(&remote, format, yes, rm).await,
        TagCommand::History { repository, tag } => {
            history(&remote, format, &repository, &tag).await
        }
        TagCommand::Restore {
            repository,
            tag,
            digest,
            force,
        } => {
            if force {
                output::confirm(
                    yes,
                    &format!("restore {repository}:{tag}, overwriting the tag if it was reused"),
                )?;
            }
            restore(&remote, format, &repository, &tag, digest, force).await
        }
    }
}

async fn ls(remote: &Remote, format: Format, repo: &str) -> Result<()> {
    let v = remote.get(&Remote::repo_path(repo, "tags")).await?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let mut t = Table::new(&["TAG", "DIGEST", "SIZE", "PUSHED", "LAST PULLED", "PULLS"]);
    for tag in v["tags"].as_array().into_iter().flatten() {
        t.row(vec![
            output::text(&tag["name"]),
            output::digest(&tag["digest"]),
            output::size_of(&tag["size"]),
            output::time(&tag["pushed_at"]),
            output::time(&tag["last_pulled_at"]),
            output::text(&tag["pull_count"]),
        ]);
    }
    t.print();
    Ok(())
}

async fn delete(remote: &Remote, format: Format, yes: bool, args: RmArgs) -> Result<()> {
    if args.tags.is_empty() {
        return Err(RemoteError::Usage(
            "name the tags to delete, or give a filter (--delete-regex, --keep-regex, --keep-latest, --older-than)"
                .into(),
        ));
    }
    if args.dry_run {
        return Err(RemoteError::Usage(
            "--dry-run previews a bulk deletion; give a filter".into(),
        ));
    }
    let repo = &args.repository;
    output::confirm(
        yes,
        &format!(
            "delete {} tag(s) of {repo}: {}",
            args.tags.len(),
            args.tags.join(", ")
        ),
    )?;
    let mut deleted = Vec::new();
    for tag in &args.tags {
        let mut path = Remote::repo_path(repo, &format!("tags/{tag}"));
        if args.override_protection {
            path.push_str("?override_protection=true");
        }
        let v = remote.send(remote.request(Method::DELETE, &path)).await?;
        if format == Format::Table {
            println!("deleted {repo}:{tag} (was {})", output::text(&v["digest"]));
        }
        deleted.push(v);
    }
    if format == Format::Json {
        output::print_json(&Value::Array(deleted));
    }
    Ok(())
}

async fn bulk(remote: &Remote, format: Format, yes: bool, args: RmArgs) -> Result<()> {
    if !args.tags.is_empty() {
        return Err(RemoteError::Usage(
            "give either tag names or filters, not both".into(),
        ));
    }
    let path = Remote::repo_path(&args.repository, "bulk-delete");
    let body = |dry_run: bool| {
        json!({
            "delete_regex": args.delete_regex,
            "keep_regex": args.keep_regex,
            "keep_latest": args.keep_latest,
            "older_than": args.older_than,
            "dry_run": dry_run,
        })
    };
    if !args.dry_run && !yes {
        // Show what would go before asking; the real call then reports what did.
        let preview = remote
            .send(remote.request(Method::POST, &path).json(&body(true)))
            .await?;
        let n = preview["deleted"].as_array().map_or(0, Vec::len);
        output::confirm(
            false,
            &format!(
                "delete {n} tag(s) of {} matching the filters",
                args.repository
            ),
        )?;
    }
    let v = remote
        .send(
            remote
                .request(Method::POST, &path)
                .json(&body(args.dry_run)),
        )
        .await?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let mut t = Table::new(&["TAG", "DECISION", "REASON"]);
    for d in v["decisions"].as_array().into_iter().flatten() {
        let decision = match (d["delete"].as_bool(), args.dry_run) {
            (Some(true), true) => "would delete",
            (Some(true), false) => "deleted",
            _ => "kept",
        };
        t.row(vec![
            output::text(&d["tag"]),
            decision.to_string(),
            output::text(&d["reason"]),
        ]);
    }
    t.print();
    let n = v["deleted"].as_array().map_or(0, Vec::len);
    if args.dry_run {
        println!("dry run: {n} tag(s) would be deleted");
    } else {
        println!("deleted {n} tag(s)");
    }
    Ok(())
}

async fn history(remote: &Remote, format: Format, repo: &str, tag: &str) -> Result<()> {
    let v = remote
        .get(&Remote::repo_path(repo, &format!("tags/{tag}/history")))
        .await?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let mut t = Table::new(&["TIME", "ACTION", "FROM", "TO", "ACTOR"]);
    for e in v["entries"].as_array().into_iter().flatten() {
        t.row(vec![
            output::time(&e["at"]),
            output::text(&e["action"]),
            output::digest(&e["from_digest"]),
            output::digest(&e["to_digest"]),
            output::text(&e["actor"]),
        ]);
    }
    t.print();
    Ok(())
}

async fn restore(
    remote: &Remote,
    format: Format,
    repo: &str,
    tag: &str,
    digest: Option<String>,
    force: bool,
) -> Result<()> {
    let path = Remote::repo_path(repo, &format!("tags/{tag}/restore"));
    let body = json!({ "digest": digest, "force": force });
    let v = remote
        .send(remote.request(Method::POST, &path).json(&body))
        .await?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    match v["replaced"].as_str() {
        Some(old) => println!(
            "restored {repo}:{tag} -> {} (replaced {old})",
            output::text(&v["digest"])
        ),
        None => println!("restored {repo}:{tag} -> {}", output::text(&v["digest"])),
    }
    Ok(())
}
