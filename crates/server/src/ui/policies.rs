//! Retention policies: the applied policies (`/ui/policies`), each said in one sentence
//! (`shipshape_gc::retention::sentence`, carried by the API's `PolicyInfo`) with its document,
//! schedule and next run, and a policy's preview — every tag and untagged manifest in its scope with keep
//! or delete, the rule that decided and why, and the bytes it would take out of use. The
//! preview is `Retention::preview`, which changes nothing; it is a POST because, as in the
//! API, it is work done on request rather than a page to crawl. From the preview, a caller who
//! may manage policies starts a run (`Retention::start`, as `POST /api/v1/policies/{name}/runs`)
//! and follows it on its page (`/ui/policy-runs/{id}`, following it while it runs), with what it
//! deleted and the rule that decided each.

use axum::extract::{Path, Query};
use axum::response::Response;
use maud::{Markup, html};
use shipshape_gc::retention::Trigger;
use shipshape_meta::principal::Permission;

use super::layout::{bytes, digest, when, when_or_never};
use super::{Ctx, Posted};
use crate::api::model::policies::{
    PolicyFigures, PolicyInfo, PolicyRunInfo, PolicyRunItem, PreviewInfo,
};
use crate::api::policies as api_policies;
use crate::error::ApiError;

/// What the editor just did, said at the top of the list it leads back to.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Done {
    created: Option<String>,
    updated: Option<String>,
}

/// `/ui/policies` (`?created=NAME` or `?updated=NAME` after the editor saved).
pub(crate) async fn list(ctx: Ctx, Query(done): Query<Done>) -> Response {
    let result = async {
        let policies: Vec<PolicyInfo> = ctx
            .app
            .retention()
            .list()
            .await?
            .into_iter()
            .map(api_policies::policy_info)
            .collect();
        let manage = ctx.may(Permission::ManagePolicies, None);
        let body = html! {
            h1 { "Retention policies" }
            @if let Some(name) = &done.created {
                p.ok role="status" data-testid="policies-done" { "Policy " strong { (name) } " is saved and applied." }
            }
            @if let Some(name) = &done.updated {
                p.ok role="status" data-testid="policies-done" { "Policy " strong { (name) } " is updated." }
            }
            p {
                @if manage {
                    a.button href="/ui/policies/new" data-testid="new-policy" { "New policy" }
                    " · "
                }
                a href="/ui/policies/pattern-test" data-testid="pattern-test" { "Test patterns against the registry" }
            }
            @if policies.is_empty() {
                p.note data-testid="no-policies" {
                    "No policy is applied. Write one with " strong { "New policy" } " or apply a file with "
                    code { "shipshape policy apply -f FILE" } "."
                }
            } @else {
                table data-testid="policies" {
                    thead { tr {
                        th scope="col" { "Policy" } th scope="col" { "What it does" } th scope="col" { "Schedule" }
                        th scope="col" { "Next run" } th scope="col" { "Updated" } th scope="col" { "Actions" }
                    } }
                    tbody {
                        @for p in &policies {
                            tr data-testid={ "row-policy-" (p.name) } {
                                td { strong { (p.name) } }
                                td {
                                    span data-testid={ "sentence-" (p.name) } { (p.sentence) }
                                    details {
                                        summary { "Document" }
                                        code.document { (serde_json::to_string(&p.document).unwrap_or_default()) }
                                    }
                                }
                                td { @if let Some(s) = &p.schedule { code { (s) } } @else { span.note { "on demand" } } }
                                td { (when_or_never(p.next_run_at.as_deref())) }
                                td { (when(&p.updated_at)) " by " (p.updated_by) }
                                td {
                                    form.inline method="post" action={ "/ui/policies/" (p.name) "/preview" } {
                                        (ctx.csrf_field())
                                        button type="submit" data-testid={ "preview-" (p.name) } { "Preview" }
                                    }
                                    @if manage {
                                        " "
                                        a href={ "/ui/policies/" (p.name) "/edit" } data-testid={ "edit-" (p.name) }
                                            aria-label={ "Edit policy " (p.name) } { "Edit" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        };
        Ok::<_, ApiError>(ctx.page("Policies", body))
    }
    .await;
    ctx.finish(result)
}

/// `POST /ui/policies/{name}/preview`.
pub(crate) async fn preview(Path(name): Path<String>, Posted { ctx, .. }: Posted) -> Response {
    let result = async {
        let (stored, policy) = ctx.app.retention().get(&name).await?;
        let sentence = api_policies::policy_info(stored).sentence;
        let p: PreviewInfo = api_policies::preview_info(
            ctx.app
                .retention()
                .preview(&policy, &ctx.caller.principal)
                .await?,
        );
        let body = html! {
            h1 { "Preview of policy " code { (p.policy) } }
            p data-testid="policy-sentence" { (sentence) }
            p.note { "Evaluated at " (when(&p.evaluated_at)) "; nothing was changed. A run started now decides the same, unless tags change meanwhile." }
            @if ctx.may(Permission::ManagePolicies, None) {
                form.inline method="post" action={ "/ui/policies/" (p.policy) "/run" } {
                    (ctx.csrf_field())
                    button.primary type="submit" data-testid="btn-run-policy" { "Run this policy now" }
                    " "
                    span.note { "A run decides again when it starts; the tags it deletes stay restorable for the restore window." }
                }
            }
            (decisions(&p))
            p { a href="/ui/policies" { "Policies" } }
        };
        Ok::<_, ApiError>(ctx.page(&format!("Preview of {name}"), body))
    }
    .await;
    ctx.finish(result)
}

/// A preview's figures and, per repository, every tag and untagged manifest with keep or
/// delete, the rule that decided and why: the saved policy's preview and the editor's preview
/// of a draft show the same.
pub(super) fn decisions(p: &PreviewInfo) -> Markup {
    html! {
        (figure_cards(&p.figures, "to delete", "preview-tags-deleted"))
        @for r in &p.repositories {
            h2 { a href={ "/ui/repositories/" (r.repository) } { (r.repository) } }
            table data-testid={ "preview-" (r.repository) } {
                thead { tr {
                    th scope="col" { "Tag or manifest" } th scope="col" { "Digest" } th scope="col" { "Decision" }
                    th scope="col" { "Rule" } th scope="col" { "Why" }
                } }
                tbody {
                    @for d in &r.decisions {
                        tr data-testid={ "decision-" (d.target) } {
                            td { @if d.kind == "tag" { strong { (d.target) } } @else { span.note { "untagged " } (digest(&d.target)) } }
                            td { (digest(&d.digest)) }
                            td { @if d.action == "delete" { strong { "delete" } } @else { "keep" } }
                            td { code { (d.rule) } }
                            td { (d.reason) }
                        }
                    }
                }
            }
        }
    }
}

/// A preview's or a run's figures: what it would delete (`verb` "to delete") or deleted
/// ("deleted"), and the bytes that takes out of use.
fn figure_cards(f: &PolicyFigures, verb: &str, tags_testid: &str) -> Markup {
    html! {
        div.cards {
            div.card { div.label { "Repositories affected" } div.value { (f.repositories_affected) " of " (f.repositories) } }
            div.card { div.label { "Tags " (verb) } div.value data-testid=(tags_testid) { (f.tags_deleted) " of " (f.tags_evaluated) } }
            div.card { div.label { "Untagged manifests " (verb) } div.value { (f.manifests_deleted) } }
            div.card { div.label { "Bytes held for restore" } div.value { (bytes(f.bytes_held_for_restore)) } }
            div.card { div.label { "Bytes freed at once" } div.value { (bytes(f.bytes_reclaimable)) } }
        }
    }
}

/// Seconds between looks at a running run (its page's live parts).
const REFRESH_SECONDS: u32 = 1;

/// `POST /ui/policies/{name}/run`: starts a run and goes to its page.
pub(crate) async fn run_now(Path(name): Path<String>, Posted { ctx, .. }: Posted) -> Response {
    let result = async {
        let run = ctx
            .app
            .retention()
            .start(&name, Trigger::Manual, &ctx.caller.principal)
            .await?;
        Ok::<_, ApiError>(ctx.redirect(&format!("/ui/policy-runs/{}", run.id)))
    }
    .await;
    ctx.finish(result)
}

/// `/ui/policy-runs/{id}`: a run's state and figures, and what it deleted (the items of the
/// repositories the caller may read); follows the run while it is running.
pub(crate) async fn run_page(Path(id): Path<i64>, ctx: Ctx) -> Response {
    let result = async {
        let (run, items) = ctx.app.retention().run(id, &ctx.caller.principal).await?;
        let run: PolicyRunInfo = api_policies::run_info(run);
        let items: Vec<PolicyRunItem> = items.into_iter().map(api_policies::item).collect();
        let f = &run.figures;
        let running = run.state == "running";
        let body = html! {
            h1 { "Run " (run.id) " of policy " code { (run.policy) } }
            p role="status" data-live="state" { "State: " strong data-testid="policy-run-state" { (run.state) }
                " · started " (when(&run.started_at)) " by " (run.started_by)
                @if let Some(done) = &run.finished_at { " · finished " (when(done)) } }
            @if running {
                p.note { "This page follows the run: its state and figures update every second while it runs." }
            }
            @for e in &run.errors { p.error { (e) } }
            div data-live="figures" { (figure_cards(f, "deleted", "policy-run-tags-deleted")) }
            @if items.is_empty() {
                p.note data-testid="policy-run-no-items" { "Nothing deleted (or nothing you may read)." }
            } @else {
                table data-testid="policy-run-items" {
                    thead { tr {
                        th scope="col" { "Repository" } th scope="col" { "Tag or manifest" } th scope="col" { "Digest" }
                        th scope="col" { "Rule" } th scope="col" { "Why" }
                    } }
                    tbody {
                        @for i in &items {
                            tr data-testid={ "item-" (i.target) } {
                                td { a href={ "/ui/repositories/" (i.repository) } { (i.repository) } }
                                td { @if i.kind == "tag" { strong { (i.target) } } @else { (digest(&i.target)) } }
                                td { (digest(&i.digest)) }
                                td { code { (i.rule) } }
                                td { (i.reason) }
                            }
                        }
                    }
                }
                p { a href="/ui/deleted" { "Recently deleted" } ": restore what a run took." }
            }
            p { a href="/ui/policies" { "Policies" } }
        };
        let title = format!("Policy run {id}");
        Ok::<_, ApiError>(if running {
            ctx.page_refreshing(&title, body, REFRESH_SECONDS)
        } else {
            ctx.page(&title, body)
        })
    }
    .await;
    ctx.finish(result)
}
