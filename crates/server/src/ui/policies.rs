//! Retention policies: the applied policies (`/ui/policies`), each said in one sentence
//! (`shipshape_gc::retention::sentence`, carried by the API's `PolicyInfo`) with its document,
//! schedule and next run, and a policy's preview — every tag and untagged manifest in its scope with keep
//! or delete, the rule that decided and why, and the bytes it would take out of use. The
//! preview is `Retention::preview`, which changes nothing; it is a POST because, as in the
//! API, it is work done on request rather than a page to crawl.

use axum::extract::Path;
use axum::response::Response;
use maud::html;

use super::layout::{bytes, digest, when, when_or_never};
use super::{Ctx, Posted};
use crate::api::model::policies::{PolicyInfo, PreviewInfo};
use crate::api::policies as api_policies;
use crate::error::ApiError;

/// `/ui/policies`.
pub(crate) async fn list(ctx: Ctx) -> Response {
    let result = async {
        let policies: Vec<PolicyInfo> = ctx
            .app
            .retention
            .list()
            .await?
            .into_iter()
            .map(api_policies::policy_info)
            .collect();
        let body = html! {
            h1 { "Retention policies" }
            @if policies.is_empty() {
                p.note data-testid="no-policies" {
                    "No policy is applied. Apply one with " code { "shipshape policy apply -f FILE" } "."
                }
            } @else {
                table data-testid="policies" {
                    thead { tr {
                        th scope="col" { "Policy" } th scope="col" { "What it does" } th scope="col" { "Schedule" }
                        th scope="col" { "Next run" } th scope="col" { "Updated" } th scope="col" { "Preview" }
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
        let (stored, policy) = ctx.app.retention.get(&name).await?;
        let sentence = api_policies::policy_info(stored).sentence;
        let p: PreviewInfo = api_policies::preview_info(
            ctx.app
                .retention
                .preview(&policy, &ctx.caller.principal)
                .await?,
        );
        let f = &p.figures;
        let body = html! {
            h1 { "Preview of policy " code { (p.policy) } }
            p data-testid="policy-sentence" { (sentence) }
            p.note { "Evaluated at " (when(&p.evaluated_at)) "; nothing was changed. A run started now decides the same, unless tags change meanwhile." }
            div.cards {
                div.card { div.label { "Repositories affected" } div.value { (f.repositories_affected) " of " (f.repositories) } }
                div.card { div.label { "Tags to delete" } div.value data-testid="preview-tags-deleted" { (f.tags_deleted) " of " (f.tags_evaluated) } }
                div.card { div.label { "Untagged manifests to delete" } div.value { (f.manifests_deleted) } }
                div.card { div.label { "Bytes held for restore" } div.value { (bytes(f.bytes_held_for_restore)) } }
                div.card { div.label { "Bytes freed at once" } div.value { (bytes(f.bytes_reclaimable)) } }
            }
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
            p { a href="/ui/policies" { "Policies" } }
        };
        Ok::<_, ApiError>(ctx.page(&format!("Preview of {name}"), body))
    }
    .await;
    ctx.finish(result)
}
