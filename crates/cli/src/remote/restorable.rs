//! `shipshape restorable [REPO]` and `shipshape undo BATCH`: the restore bin (every tag that can
//! go back to a manifest it left, with its deadline), and undoing a whole deletion at once.

use reqwest::Method;
use shipshape_server::api::model::{BatchRestoreRequest, RestorableList, RestorableQuery};

use super::client::decode;
use super::output::{self, Format, Table};
use super::{RemoteArgs, Result};

/// `shipshape restorable`
#[derive(clap::Args, Debug)]
pub struct RestorableArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Only this repository (also a deleted one)
    pub repository: Option<String>,
    /// Only entries older than this id: the cursor printed after a full page
    #[arg(long, value_name = "ID")]
    pub before: Option<i64>,
    /// At most this many entries (1 to 1000) [default: 100]
    #[arg(long, value_name = "N")]
    pub limit: Option<i64>,
}

pub async fn run(args: RestorableArgs) -> Result<()> {
    let remote = args.remote.remote()?;
    let query = RestorableQuery {
        repository: args.repository,
        before: args.before,
        limit: args.limit,
    };
    let req = remote
        .request(Method::GET, "/api/v1/restorable")
        .query(&query);
    let v = remote.send(req).await?;
    if args.remote.output == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let list: RestorableList = decode(&v)?;
    let mut t = Table::new(&[
        "REPOSITORY",
        "TAG",
        "DIGEST",
        "HOW",
        "WHEN",
        "BY",
        "RESTORABLE UNTIL",
        "BATCH",
        "NOW POINTS AT",
    ]);
    for e in &list.tags {
        let repo = if e.repository_deleted {
            format!("{} (deleted)", e.repository)
        } else {
            e.repository.clone()
        };
        t.row(vec![
            repo,
            e.tag.clone(),
            output::digest(e.digest.as_str()),
            e.how.clone(),
            output::time(e.left_at.as_str()),
            e.actor.clone(),
            output::time(e.restorable_until.as_str()),
            output::or_dash(e.batch),
            output::digest(e.conflict.as_deref()),
        ]);
    }
    if list.tags.is_empty() {
        println!("nothing to restore: no tag left an image within the restore window");
        return Ok(());
    }
    t.print();
    if let Some(next) = list.next {
        println!("(more: --before {next})");
    }
    Ok(())
}

/// `shipshape undo`
#[derive(clap::Args, Debug)]
pub struct UndoArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The batch a deletion printed (or `shipshape restorable` lists)
    pub batch: i64,
    /// Overwrite tag names reused since the deletion (asks unless --yes)
    #[arg(long)]
    pub force: bool,
    /// With --force, overwrite protected tags too
    #[arg(long)]
    pub override_protection: bool,
}

pub async fn undo(args: UndoArgs) -> Result<()> {
    let remote = args.remote.remote()?;
    if args.force {
        output::confirm(
            args.remote.yes,
            &format!(
                "undo batch {}, overwriting tag names reused since",
                args.batch
            ),
        )?;
    }
    let req = remote
        .request(
            Method::POST,
            &format!("/api/v1/batches/{}/restore", args.batch),
        )
        .json(&BatchRestoreRequest {
            force: args.force,
            override_protection: args.override_protection,
        });
    let v = remote.send(req).await?;
    super::repo::print_restore(args.remote.output, &v)
}
