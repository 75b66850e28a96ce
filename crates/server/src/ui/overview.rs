//! The overview (`/ui`): the storage bar from the figures `shipshape usage` shows, the same
//! figures over time (`chart.rs`), the repositories' counts, the last garbage collection run
//! and the latest activity.

use axum::response::Response;
use maud::{Markup, html};
use shipshape_meta::events::EventFilter;
use shipshape_meta::principal::Permission;

use super::layout::{bytes, storage_bar, when};
use super::{Ctx, chart, gc};
use crate::api::model::{self, Event};
use crate::api::{gc as api_gc, handlers};
use crate::error::ApiError;

/// How many activity entries the overview lists.
const RECENT: i64 = 10;

pub(crate) async fn page(ctx: Ctx) -> Response {
    let result = render(&ctx).await;
    ctx.finish(result)
}

async fn render(ctx: &Ctx) -> Result<Response, ApiError> {
    let (total, _) = ctx.registry.usage(&ctx.caller.principal).await?;
    let total: model::UsageFigures = total.into();
    let repos: Vec<model::RepositoryInfo> = ctx
        .registry
        .repositories(None, None)
        .await?
        .into_iter()
        .filter(|r| ctx.may(Permission::Pull, Some(&r.summary.name)))
        .map(handlers::repository_info)
        .collect();
    let tags: i64 = repos.iter().map(|r| r.tags).sum();
    let untagged: i64 = repos.iter().map(|r| r.untagged_manifests).sum();
    let last_run = ctx
        .app
        .collector()
        .runs(None, 1)
        .await?
        .into_iter()
        .next()
        .map(api_gc::info);
    let events: Vec<Event> = super::activity::events(ctx, &EventFilter::default(), RECENT).await?;
    let history = ctx.registry.storage_history().await?;
    let sample_interval = ctx.registry.options().sample_interval;
    let body = html! {
        h1 { "Overview" }
        h2 { "Storage" }
        (storage_bar(&total))
        p.note {
            "Live: what tags and what they list need. Held for restore: deleted content that can
            still be restored. In grace: garbage younger than the review delay. Reclaimable now:
            what "
            a href="/ui/gc" { "emptying the garbage" }
            " frees."
        }
        div.cards {
            div.card { div.label { "Repositories" } div.value data-testid="stat-repositories" { (repos.len()) } }
            div.card { div.label { "Tags" } div.value data-testid="stat-tags" { (tags) } }
            div.card { div.label { "Untagged manifests" } div.value data-testid="stat-untagged" { (untagged) } }
            div.card { div.label { "Blobs" } div.value { (total.blobs) } }
        }
        h2 { "Storage over time" }
        (chart::storage_history(&history, sample_interval))
        h2 { "Last garbage collection" }
        @match &last_run {
            Some(run) => { (gc::run_summary(run)) }
            None => { p.note data-testid="last-gc" { "No run yet. The background collector frees garbage as it comes due." } }
        }
        h2 { "Recent activity" }
        (activity_table(&events))
        p { a href="/ui/activity" { "All activity" } }
    };
    Ok(ctx.page("Overview", body))
}

/// Activity entries as a table.
pub(crate) fn activity_table(events: &[Event]) -> Markup {
    html! {
        @if events.is_empty() {
            p.note { "Nothing has happened yet." }
        } @else {
            table data-testid="activity" {
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" }
                    th scope="col" { "Repository" } th scope="col" { "Target" } th scope="col" { "Details" }
                } }
                tbody {
                    @for e in events {
                        tr {
                            td { (when(&e.at)) }
                            td { (e.actor) }
                            td { code { (e.action) } }
                            td { @if let Some(r) = &e.repository { (r) } }
                            td { @if let Some(t) = &e.target { (t) } }
                            td { @if let Some(r) = &e.reason { (r) } }
                        }
                    }
                }
            }
        }
    }
}

/// Bytes with a label, for result pages.
pub(crate) fn figure(label: &str, n: u64, id: &str) -> Markup {
    html! { div.card { div.label { (label) } div.value data-testid=(id) { (bytes(n)) } } }
}
