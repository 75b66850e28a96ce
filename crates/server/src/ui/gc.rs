//! Storage and garbage collection: the figures in total and per repository, "Empty garbage"
//! (a dry run first, which lists exactly what a run at that moment deletes; then the run),
//! a run's page following the run while it runs (`Ctx::page_refreshing`), cancel, and
//! the run history. Runs are the collector's (`Collector::start_run`), as the API starts them.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use shipshape_gc::StartError;
use shipshape_meta::principal::Permission;
use shipshape_meta::runs::RunSpec;

use super::layout::{bytes, human, storage_bar, when};
use super::{Ctx, Posted};
use crate::api::gc as api_gc;
use crate::api::model::gc::RunInfo;
use crate::api::model::{self, RepositoryUsage};
use crate::error::ApiError;

/// How many items of a run its page lists.
const ITEMS_SHOWN: usize = 200;
/// Seconds between looks at a running run (its page's live parts).
const REFRESH_SECONDS: u32 = 1;

/// A run in one line, with a link to its page.
pub(crate) fn run_summary(run: &RunInfo) -> Markup {
    html! {
        p data-testid="last-gc" {
            a href={ "/ui/gc/runs/" (run.id) } { "Run " (run.id) }
            @if run.dry_run { " (dry run)" }
            ": " strong data-testid="run-state" { (run.state) } ", "
            @if run.dry_run { "would free " } @else { "freed " }
            (bytes(run.figures.bytes_deleted)) " ("
            (run.figures.blobs_deleted) " blobs, " (run.figures.manifests_deleted) " manifests), started "
            (when(&run.started_at)) " by " (run.started_by) "."
        }
    }
}

fn history_table(runs: &[RunInfo]) -> Markup {
    html! {
        @if runs.is_empty() {
            p.note { "No run yet." }
        } @else {
            table data-testid="gc-runs" {
                thead { tr {
                    th scope="col" { "Run" } th scope="col" { "Kind" } th scope="col" { "State" }
                    th scope="col" class="num" { "Blobs" } th scope="col" class="num" { "Manifests" }
                    th scope="col" class="num" { "Bytes" } th scope="col" { "Started" }
                    th scope="col" class="num" { "Duration" } th scope="col" { "By" }
                } }
                tbody {
                    @for r in runs {
                        tr {
                            td { a href={ "/ui/gc/runs/" (r.id) } { (r.id) } }
                            td { @if r.dry_run { "dry run" } @else { "run" } }
                            td { (r.state) }
                            td.num { (r.figures.blobs_deleted) }
                            td.num { (r.figures.manifests_deleted) }
                            td.num { (bytes(r.figures.bytes_deleted)) }
                            td { (when(&r.started_at)) }
                            td.num { @if let Some(ms) = r.duration_ms { (format!("{:.1} s", ms as f64 / 1000.0)) } }
                            td { (r.started_by) }
                        }
                    }
                }
            }
        }
    }
}

/// `/ui/gc`.
pub(crate) async fn page(ctx: Ctx) -> Response {
    let result = async {
        let (total, per) = ctx.registry.usage(&ctx.caller.principal).await?;
        let total: model::UsageFigures = total.into();
        let per: Vec<RepositoryUsage> = per
            .into_iter()
            .map(|(name, u)| RepositoryUsage {
                name,
                figures: u.into(),
            })
            .collect();
        let runs: Vec<RunInfo> = ctx
            .app
            .collector()
            .runs(None, 20)
            .await?
            .into_iter()
            .map(api_gc::info)
            .collect();
        let active = runs.iter().find(|r| r.state == "running");
        let config = ctx.app.collector().config();
        let body = html! {
            h1 { "Storage and garbage collection" }
            (storage_bar(&total))
            h2 { "Empty garbage" }
            p {
                "Reclaimable now: " strong data-testid="gc-reclaimable" { (bytes(total.reclaimable_bytes)) } ". "
                "The registry stays online: pushes and pulls go on during a run. Garbage younger than the review delay ("
                (humantime::format_duration(config.review_delay)) ", " (human(total.in_grace_bytes))
                " now) and content held for restore are kept."
            }
            @if let Some(run) = active {
                p.note { "A run is active: " a href={ "/ui/gc/runs/" (run.id) } { "run " (run.id) } "." }
            } @else if ctx.may(Permission::CollectGarbage, None) {
                form method="post" action="/ui/gc/preview" {
                    (ctx.csrf_field())
                    button.primary type="submit" data-testid="btn-gc-preview" { "Preview: what would go?" }
                    span.note { " A dry run: lists what a run would delete now, deletes nothing." }
                }
            } @else {
                p.note { "Starting a collection needs the administrator role." }
            }
            h2 { "Runs" }
            (history_table(&runs))
            h2 { "Per repository" }
            table data-testid="usage-per-repository" {
                thead { tr {
                    th scope="col" { "Repository" } th scope="col" class="num" { "Stored" }
                    th scope="col" class="num" { "Only here" } th scope="col" class="num" { "Live" }
                    th scope="col" class="num" { "Held for restore" } th scope="col" class="num" { "In grace" }
                    th scope="col" class="num" { "Reclaimable" }
                } }
                tbody {
                    @for r in &per {
                        tr {
                            td { a href={ "/ui/repositories/" (r.name) } { (r.name) } }
                            td.num { (bytes(r.figures.stored_bytes)) }
                            td.num { (bytes(r.figures.unique_bytes)) }
                            td.num { (bytes(r.figures.in_use_bytes)) }
                            td.num { (bytes(r.figures.held_for_restore_bytes)) }
                            td.num { (bytes(r.figures.in_grace_bytes)) }
                            td.num { (bytes(r.figures.reclaimable_bytes)) }
                        }
                    }
                }
            }
            p.note { "A blob shared by several repositories counts in each of their rows, once in the total." }
        };
        Ok(ctx.page("Storage and GC", body))
    }
    .await;
    ctx.finish(result)
}

async fn start_run(ctx: &Ctx, dry_run: bool, include_untagged: bool) -> Response {
    let spec = RunSpec {
        dry_run,
        include_untagged,
        sweep: false,
        grace_ms: None,
    };
    match ctx
        .app
        .collector()
        .start_run(spec, &ctx.caller.principal)
        .await
    {
        Ok(run) => ctx.redirect(&format!("/ui/gc/runs/{}", run.id)),
        Err(StartError::Active(id)) => ctx.error(ApiError::new(
            StatusCode::CONFLICT,
            "GC_RUN_ACTIVE",
            format!(
                "garbage collection run {id} is active; wait for it (/ui/gc/runs/{id}) or cancel it"
            ),
        )),
        Err(StartError::Gc(e)) => ctx.error(e.into()),
    }
}

/// `POST /ui/gc/preview`: a dry run with the registry's settings.
pub(crate) async fn preview(Posted { ctx, .. }: Posted) -> Response {
    let untagged = ctx.app.collector().config().untagged_manifests;
    start_run(&ctx, true, untagged).await
}

/// `POST /ui/gc/runs`: the run a preview showed, with its options.
pub(crate) async fn start(Posted { ctx, form }: Posted) -> Response {
    let untagged = match form.get("include_untagged") {
        Some(v) => v == "true",
        None => ctx.app.collector().config().untagged_manifests,
    };
    start_run(&ctx, false, untagged).await
}

/// `POST /ui/gc/runs/{id}/cancel`.
pub(crate) async fn cancel(Path(id): Path<i64>, Posted { ctx, .. }: Posted) -> Response {
    match ctx.app.collector().cancel(id, &ctx.caller.principal).await {
        Ok(Some(_)) => ctx.redirect(&format!("/ui/gc/runs/{id}")),
        Ok(None) => ctx.error(ApiError::new(
            StatusCode::NOT_FOUND,
            "GC_RUN_UNKNOWN",
            format!("garbage collection run {id} is not known"),
        )),
        Err(e) => ctx.error(e.into()),
    }
}

/// `/ui/gc/runs/{id}`: follows the run while it is running.
pub(crate) async fn run(ctx: Ctx, Path(id): Path<i64>) -> Response {
    let result = async {
        let Some(run) = ctx.app.collector().run(id).await? else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "GC_RUN_UNKNOWN",
                format!("garbage collection run {id} is not known"),
            ));
        };
        let cancelling = run.cancel_requested;
        let run = api_gc::info(run);
        let running = run.state == "running";
        let items = if running {
            Vec::new()
        } else {
            ctx.app
                .collector()
                .run_items(id, &ctx.caller.principal)
                .await?
                .unwrap_or_default()
        };
        let may_collect = ctx.may(Permission::CollectGarbage, None);
        // The steps this run takes, as the collector records them (`runs::Phase`).
        let mut phases = vec![("reviewing", "reviewing the queued manifests and blobs")];
        if !run.dry_run {
            phases.push(("uploads", "expiring abandoned uploads"));
            if run.sweep {
                phases.push(("sweeping", "sweeping storage for unknown objects"));
            }
            phases.push(("draining", "deleting the bytes from storage"));
        }
        phases.push(("finished", "finished"));
        let current = if running {
            phases.iter().position(|(k, _)| *k == run.phase).unwrap_or(0)
        } else {
            phases.len() - 1
        };
        let f = &run.figures;
        let queued = run.queued_at_start.filter(|q| *q > 0);
        let nothing = f.blobs_deleted
            + f.manifests_deleted
            + f.links_deleted
            + f.uploads_deleted
            + f.orphans_deleted
            == 0;
        let body = html! {
            h1 { @if run.dry_run { "Preview of garbage collection (dry run " (run.id) ")" } @else { "Garbage collection run " (run.id) } }
            ol.phases aria-label="Phases" data-live="phases" data-testid="run-phases" {
                @for (i, (key, p)) in phases.iter().enumerate() {
                    li data-phase=(key) aria-current=[(i == current).then_some("step")] {
                        @if i == current { strong { (p) } } @else { (p) }
                    }
                }
            }
            // Always there, so that a page shown before the run counted its queue gets the bar
            // when the page follows the run.
            div.progress data-live="progress" {
                @if let Some(q) = queued {
                    @let done = f.reviewed.min(q);
                    label for="run-progress" {
                        "Reviewed " (f.reviewed) " of the " (q) " entries queued when the run began"
                        @if f.reviewed > q { " (what it deleted queued more)" }
                    }
                    progress #run-progress data-testid="run-progress" max=(q) value=(done) { (done * 100 / q) "%" }
                }
            }
            p role="status" data-live="state" { "State: " strong data-testid="run-state" { (run.state) }
                @if running && cancelling { " (cancelling: stops after the batch it is on)" } }
            div.cards data-live="figures" {
                div.card { div.label { "Reviewed" } div.value data-testid="run-reviewed" { (f.reviewed) } }
                div.card { div.label { @if run.dry_run { "Blobs that would go" } @else { "Blobs deleted" } } div.value data-testid="run-blobs" { (f.blobs_deleted) } }
                div.card { div.label { @if run.dry_run { "Manifests that would go" } @else { "Manifests deleted" } } div.value data-testid="run-manifests" { (f.manifests_deleted) } }
                div.card { div.label { @if run.dry_run { "Bytes it would free" } @else { "Bytes freed" } } div.value data-testid="run-bytes" { (bytes(f.bytes_deleted)) } }
            }
            p.note { "Started " (when(&run.started_at)) " by " (run.started_by)
                @if let Some(t) = &run.finished_at { ", finished " (when(t)) } "." }
            @for e in &run.errors { p.error role="alert" { (e) } }
            @if running {
                p.note { "This page follows the run: its state and figures update every second while it runs." }
                @if may_collect && !cancelling {
                    form method="post" action={ "/ui/gc/runs/" (run.id) "/cancel" } {
                        (ctx.csrf_field())
                        button.danger type="submit" data-testid="btn-gc-cancel" { "Cancel the run" }
                        span.note { " What it deleted so far stays deleted; nothing is half-deleted." }
                    }
                }
            } @else if run.dry_run && run.state == "succeeded" && nothing {
                p.note data-testid="nothing-to-empty" { "Nothing is garbage right now: a run would delete nothing." }
            } @else if run.dry_run && run.state == "succeeded" && may_collect {
                form method="post" action="/ui/gc/runs" {
                    (ctx.csrf_field())
                    input type="hidden" name="include_untagged" value=(run.include_untagged_manifests);
                    button.danger type="submit" data-testid="btn-gc-start" { "Empty garbage now" }
                    span.note { " Deletes what is garbage when it runs: this list, unless something was pushed or deleted since. The registry stays online." }
                }
            }
            @if !items.is_empty() {
                h2 { @if run.dry_run { "What would go" } @else { "What went" } }
                table data-testid="run-items" {
                    thead { tr { th scope="col" { "Kind" } th scope="col" { "Repository" } th scope="col" { "Target" } th scope="col" class="num" { "Size" } } }
                    tbody {
                        @for i in items.iter().take(ITEMS_SHOWN) {
                            tr {
                                td { (i.kind.to_string()) }
                                td { @if let Some(r) = &i.repository { (r) } }
                                td { code { (i.target) } }
                                td.num { (bytes(i.size)) }
                            }
                        }
                    }
                }
                @if items.len() > ITEMS_SHOWN { p.note { "And " (items.len() - ITEMS_SHOWN) " more (all of them: " code { "GET /api/v1/gc/runs/" (run.id) "/items" } ")." } }
            }
            p { a href="/ui/gc" { "Storage and GC" } }
        };
        let title = format!("GC run {}", run.id);
        Ok(if running {
            ctx.page_refreshing(&title, body, REFRESH_SECONDS)
        } else {
            ctx.page(&title, body)
        })
    }
    .await;
    ctx.finish(result)
}
