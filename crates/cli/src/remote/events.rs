//! `shipshape events`: the activity log, newest first, filtered and paginated.

use shipshape_server::api::model::{EventList, EventQuery};

use super::client::decode;
use super::output::{self, Format, Table};
use super::{RemoteArgs, Result};

/// `shipshape events`
#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Only events of this repository
    #[arg(long, value_name = "NAME")]
    pub repository: Option<String>,
    /// Only this action (`tag.delete`) or family of actions (`tag`)
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// Only events at or after this time: RFC 3339 (`2024-05-01T00:00:00Z`), a date
    /// (`2024-05-01`, midnight UTC) or a duration ago (`24h`)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events before this time: RFC 3339, a date or a duration ago
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only events older than this id: the cursor printed after a full page
    #[arg(long, value_name = "ID")]
    pub before: Option<i64>,
    /// At most this many events (1 to 1000) [default: 100]
    #[arg(long, value_name = "N")]
    pub limit: Option<i64>,
}

pub async fn run(args: EventsArgs) -> Result<()> {
    let remote = args.remote.remote()?;
    let query = EventQuery {
        repository: args.repository,
        action: args.action,
        since: args.since,
        until: args.until,
        before: args.before,
        limit: args.limit,
    };
    let req = remote
        .request(reqwest::Method::GET, "/api/v1/events")
        .query(&query);
    let v = remote.send(req).await?;
    if args.remote.output == Format::Json {
        output::print_json(&v);
        return Ok(());
    }
    let list: EventList = decode(&v)?;
    let mut t = Table::new(&[
        "ID",
        "TIME",
        "ACTOR",
        "SOURCE",
        "ACTION",
        "REPOSITORY",
        "TARGET",
        "DIGEST",
        "REASON",
    ]);
    for e in &list.events {
        t.row(vec![
            e.id.to_string(),
            output::time(e.at.as_str()),
            e.actor.clone(),
            output::or_dash(e.source.as_deref()),
            e.action.clone(),
            output::or_dash(e.repository.as_deref()),
            output::or_dash(e.target.as_deref()),
            output::digest(e.digest.as_deref()),
            output::or_dash(e.reason.as_deref()),
        ]);
    }
    t.print();
    if let Some(next) = list.next {
        println!("(more: --before {next})");
    }
    Ok(())
}
