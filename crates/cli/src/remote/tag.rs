//! `shipshape tag ls|rm|history|restore`: tags with their metadata, deletion of named tags (all
//! or none) or in bulk by filter, the history of a tag and restoring a tag that left a manifest.

use reqwest::Method;
use shipshape_server::api::model::{
    BulkDeleteRequest, BulkDeleteResult, Freed, History, RestoreRequest, RestoredTag, TagList,
    TagListQuery, TagsDeleteRequest, TagsDeletion,
};

use super::client::decode;
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

/// The order of `tag ls`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Sort {
    /// By name
    Name,
    /// Most recently pushed first
    Pushed,
    /// Most recently pulled first, never pulled last
    Pulled,
    /// Largest first
    Size,
}

#[derive(clap::Subcommand, Debug)]
pub enum TagCommand {
    /// List the tags of a repository with digest, size, push and pull times
    Ls {
        /// Repository name, e.g. `team/app`
        repository: String,
        /// Order of the listing
        #[arg(long, value_enum, default_value_t = Sort::Name)]
        sort: Sort,
        /// Reverse the order
        #[arg(long)]
        reverse: bool,
        /// Only tags matching this glob (`pr-*`), or `regex:…` matching the whole tag
        #[arg(long, value_name = "PATTERN")]
        pattern: Option<String>,
        /// At most this many tags, the first in the order asked for (1 to 10 000); all when
        /// left out
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
    /// Delete tags by name (every name is checked first: all go or none), or in bulk by filters
    /// (which combine: a tag goes only when every given filter says so). Deleted tags stay
    /// restorable for the restore window. To delete an image by digest, with all its tags, use
    /// `shipshape manifest rm`
    Rm(RmArgs),
    /// Show every change of a tag: pushed, moved, deleted, restored
    History {
        /// Repository name
        repository: String,
        /// Tag name
        tag: String,
    },
    /// Point a tag back at the manifest it last left (deleted, or overwritten by a push), also
    /// one deleted with its manifest or repository
    Restore {
        /// Repository name
        repository: String,
        /// Tag name
        tag: String,
        /// Point the tag at this digest (or a unique prefix of one, as tables print them)
        /// instead of the one it last left
        #[arg(long, value_name = "DIGEST")]
        digest: Option<String>,
        /// Overwrite the tag if its name has been reused since (asks unless --yes)
        #[arg(long)]
        force: bool,
        /// With --force, overwrite a protected tag too (an admin action, logged as such)
        #[arg(long)]
        override_protection: bool,
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
    /// Only show which tags would be deleted and what that frees
    #[arg(long)]
    pub dry_run: bool,
    /// Delete tags a policy protects too (an admin action, logged as such)
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
    let remote = args.remote.remote()?;
    let format = args.remote.output;
    let yes = args.remote.yes;
    match args.command {
        TagCommand::Ls {
            repository,
            sort,
            reverse,
            pattern,
            limit,
        } => ls(&remote, format, &repository, sort, reverse, pattern, limit).await,
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
            override_protection,
        } => {
            if force {
                output::confirm(
                    yes,
                    &format!("restore {repository}:{tag}, overwriting the tag if it was reused"),
                )?;
            }
            let body = RestoreRequest {
                digest,
                force,
                override_protection,
            };
            restore(&remote, format, &repository, &tag, &body).await
        }
    }
}

async fn ls(
    remote: &Remote,
    format: Format,
    repo: &str,
    sort: Sort,
    reverse: bool,
    pattern: Option<String>,
    limit: Option<u64>,
) -> Result<()> {
    let sort = match sort {
        Sort::Name => "name",
        Sort::Pushed => "pushed",
        Sort::Pulled => "pulled",
        Sort::Size => "size",
    };
    let query = TagListQuery {
        sort: Some(sort.to_string()),
        reverse,
        pattern,
        limit,
        offset: None,
    };
    let req = remote
        .request(Method::GET, &Remote::repo_path(repo, "tags"))
        .query(&query);
    let v = remote.send(req).await?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let list: TagList = decode(&v)?;
    let mut t = Table::new(&["TAG", "DIGEST", "SIZE", "PUSHED", "LAST PULLED", "PULLS"]);
    for tag in &list.tags {
        t.row(vec![
            tag.name.clone(),
            output::digest(tag.digest.as_str()),
            output::size(tag.size),
            output::time(tag.pushed_at.as_str()),
            output::time(tag.last_pulled_at.as_deref()),
            tag.pull_count.to_string(),
        ]);
    }
    t.print();
    if list.next.is_some() {
        eprintln!(
            "the first {}; more tags match (raise --limit, or use -o json and the API's offset)",
            list.tags.len()
        );
    }
    Ok(())
}

/// `--dry-run` and real deletions end with what was (or would be) taken out of use.
pub(super) fn print_freed(freed: &Freed, dry_run: bool) {
    let verb = if dry_run { "would take" } else { "took" };
    match freed.restorable_until.as_deref() {
        Some(until) => println!(
            "{verb} {} out of use, held for restore until {} (then reclaimable)",
            output::size(freed.bytes_held_for_restore),
            output::time(until)
        ),
        None => println!(
            "{verb} {} out of use; the registry keeps no restore window, so the collector frees \
             it once its grace period has passed",
            output::size(freed.bytes_reclaimable)
        ),
    }
}

async fn delete(remote: &Remote, format: Format, yes: bool, args: RmArgs) -> Result<()> {
    // `tag rm team/app:v1`, as other tools take a reference: without this the missing tag
    // names would be the complaint.
    if let Some(message) = reference_as_repository(&args.repository) {
        return Err(RemoteError::Usage(message));
    }
    if args.tags.is_empty() {
        return Err(RemoteError::Usage(
            "name the tags to delete, or give a filter (--delete-regex, --keep-regex, --keep-latest, --older-than)"
                .into(),
        ));
    }
    if let Some(t) = args.tags.iter().find(|t| t.contains(':')) {
        return Err(RemoteError::Usage(not_a_tag(&args.repository, t)));
    }
    let repo = &args.repository;
    let path = Remote::repo_path(repo, "tags/delete");
    let body = |dry_run: bool| TagsDeleteRequest {
        tags: args.tags.clone(),
        override_protection: args.override_protection,
        dry_run,
    };
    // A dry run first: it checks every name (nothing is deleted unless all can be) and says
    // what the deletion frees before anything is asked or done.
    let preview = remote
        .send(remote.request(Method::POST, &path).json(&body(true)))
        .await?;
    if args.dry_run && format == Format::Json {
        output::print_json(&preview);
        return Ok(());
    }
    let preview: TagsDeletion = decode(&preview)?;
    if args.dry_run {
        for d in &preview.deleted {
            println!("would delete {repo}:{} ({})", d.tag, d.digest);
        }
        print_freed(&preview.freed, true);
        return Ok(());
    }
    let listed: Vec<String> = preview
        .deleted
        .iter()
        .map(|d| format!("{repo}:{} ({})", d.tag, output::digest(d.digest.as_str())))
        .collect();
    output::confirm_listing(
        yes,
        &format!("delete {} tag(s) of {repo}", args.tags.len()),
        &listed,
    )?;
    let v = remote
        .send(remote.request(Method::POST, &path).json(&body(false)))
        .await?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let done: TagsDeletion = decode(&v)?;
    for d in &done.deleted {
        println!("deleted {repo}:{} (was {})", d.tag, d.digest);
    }
    print_freed(&done.freed, false);
    if let Some(batch) = done.batch {
        println!("undo with: shipshape undo {batch}");
    }
    Ok(())
}

/// What to say when `name`, given as the repository, is an image reference (`team/app:v1`,
/// `team/app@sha256:…`); `None` when it is not one. A `:` before the last `/` is a registry's
/// port, which the server's check of the name answers.
fn reference_as_repository(name: &str) -> Option<String> {
    if let Some((repo, digest)) = name.split_once('@') {
        return Some(format!(
            "{name} names an image by digest; to delete it with all its tags, use \
             `shipshape manifest rm {repo} {digest}`"
        ));
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    let (_, tag) = last.rsplit_once(':')?;
    let repo = &name[..name.len() - tag.len() - 1];
    Some(format!(
        "{name} is a repository and a tag together; give them apart: `shipshape tag rm {repo} {tag}`"
    ))
}

/// Why `name`, given to `tag rm` and containing a colon, is not a tag: a digest (`sha256:…`,
/// also `repo@sha256:…`, deleted with `manifest rm`), or `repository:tag` (two arguments).
fn not_a_tag(repo: &str, name: &str) -> String {
    let digest = name.rsplit_once('@').map_or(name, |(_, d)| d);
    match digest.split_once(':') {
        Some(("sha256" | "sha512", _)) => format!(
            "{name} is a digest, not a tag; to delete that image with all its tags, use \
             `shipshape manifest rm {repo} {digest}`"
        ),
        _ => {
            let (repository, tag) = name.rsplit_once(':').unwrap_or((repo, name));
            format!(
                "{name} is not a tag name; give the repository and the tag apart: \
                 `shipshape tag rm {repository} {tag}`"
            )
        }
    }
}

async fn bulk(remote: &Remote, format: Format, yes: bool, args: RmArgs) -> Result<()> {
    if !args.tags.is_empty() {
        return Err(RemoteError::Usage(
            "give either tag names or filters, not both".into(),
        ));
    }
    let path = Remote::repo_path(&args.repository, "bulk-delete");
    let body = |dry_run: bool| BulkDeleteRequest {
        delete_regex: args.delete_regex.clone(),
        keep_regex: args.keep_regex.clone(),
        keep_latest: args.keep_latest,
        older_than: args.older_than.clone(),
        dry_run,
        override_protection: args.override_protection,
    };
    if !args.dry_run && !yes {
        // Show what would go before asking; the real call then reports what did.
        let preview: BulkDeleteResult = remote
            .send_json(remote.request(Method::POST, &path).json(&body(true)))
            .await?;
        let tags: Vec<String> = preview
            .deleted
            .iter()
            .map(|t| format!("{}:{t}", args.repository))
            .collect();
        output::confirm_listing(
            false,
            &format!(
                "delete {} tag(s) of {} matching the filters",
                tags.len(),
                args.repository
            ),
            &tags,
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
    let result: BulkDeleteResult = decode(&v)?;
    let mut t = Table::new(&["TAG", "DECISION", "REASON"]);
    for d in &result.decisions {
        let decision = match (d.delete, args.dry_run) {
            (true, true) => "would delete",
            (true, false) => "deleted",
            (false, _) => "kept",
        };
        t.row(vec![d.tag.clone(), decision.to_string(), d.reason.clone()]);
    }
    t.print();
    let n = result.deleted.len();
    if args.dry_run {
        println!("dry run: {n} tag(s) would be deleted");
    } else {
        println!("deleted {n} tag(s)");
    }
    print_freed(&result.freed, args.dry_run);
    if let Some(batch) = result.batch.filter(|_| n > 0) {
        println!("undo with: shipshape undo {batch}");
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
    let history: History = decode(&v)?;
    let mut t = Table::new(&["TIME", "ACTION", "FROM", "TO", "ACTOR"]);
    for e in &history.entries {
        t.row(vec![
            output::time(e.at.as_str()),
            e.action.clone(),
            output::digest(e.from_digest.as_deref()),
            output::digest(e.to_digest.as_deref()),
            e.actor.clone(),
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
    body: &RestoreRequest,
) -> Result<()> {
    let path = Remote::repo_path(repo, &format!("tags/{tag}/restore"));
    let v = remote
        .send(remote.request(Method::POST, &path).json(body))
        .await?;
    if format == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let restored: RestoredTag = decode(&v)?;
    match &restored.replaced {
        Some(old) => println!(
            "restored {repo}:{tag} -> {} (replaced {old}, restorable in turn)",
            restored.digest
        ),
        None => println!("restored {repo}:{tag} -> {}", restored.digest),
    }
    Ok(())
}
