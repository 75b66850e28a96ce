//! Deletion with a plan, and undo. Deleting tags first shows exactly what goes, what is kept
//! and why, the bytes held and the restore deadline — the registry's own dry run of the same
//! deletion (`Registry::delete_tags` with `dry_run`), rolled back. Confirming posts the plan's
//! tags with the digests they pointed at; if any tag moved since, the plan is shown again
//! instead of deleting something else. The result offers "undo this batch"
//! (`Registry::restore_batch`). "Recently deleted" is the registry-wide restore bin.
//!
//! One manifest goes the same way from its page: its plan is
//! `Registry::plan_manifest_deletion` (the deletion rolled back), listing the tags that go with
//! it; confirming posts those tags, and `delete_manifest_as_planned` deletes only while they
//! are still exactly the tags on it. Its undo is the batch's restore.
//!
//! A whole repository goes the same way, one step harder: its plan is
//! `Registry::plan_repository_deletion` (the deletion made and rolled back), and confirming
//! needs the repository's name typed; the service checks the name again, so a form that skips
//! the page deletes nothing either.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use shipshape_meta::principal::Permission;
use shipshape_oci::{RepoName, Tag};

use super::layout::{bytes, digest, when};
use super::{Ctx, Fields, Posted, bad_request, forbidden};
use crate::api::handlers;
use crate::api::model::{self, RestorableTag, TagInfo};
use crate::error::ApiError;
use crate::registry::{Freed, Overwrite, TagQuery};

fn parse_tag(t: &str) -> Result<Tag, ApiError> {
    t.parse::<Tag>()
        .map_err(|e| bad_request(format!("tag {t:?}: {e}")))
}

/// The plan for deleting `asked` tags of `repo`, with a confirm form; `notice` says why the
/// plan is shown again.
pub(crate) async fn plan_page(
    ctx: &Ctx,
    repo: &RepoName,
    asked: &[String],
    notice: Option<Markup>,
) -> Result<Response, ApiError> {
    if !ctx.may(Permission::Push, Some(repo.as_str())) {
        return Err(forbidden(format!(
            "{} may not delete tags in {repo}",
            ctx.caller.principal.name
        )));
    }
    if asked.is_empty() {
        return Err(bad_request(
            "choose at least one tag to delete (tick its box on the repository page)",
        ));
    }
    let current: BTreeMap<String, TagInfo> = ctx
        .registry
        .tag_details(repo, &TagQuery::default())
        .await?
        .into_iter()
        .map(handlers::tag_info)
        .map(|t| (t.name.clone(), t))
        .collect();
    let protection = ctx.app.retention().policies().protection(repo.as_str());
    let mut going: Vec<Tag> = Vec::new();
    let mut skipped: Vec<(String, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    for name in asked {
        if !seen.insert(name.clone()) {
            continue;
        }
        if !current.contains_key(name) {
            skipped.push((name.clone(), "no such tag now (deleted already?)".into()));
        } else if let Some((policy, pat)) = protection.protects(name) {
            skipped.push((
                name.clone(),
                format!(
                    "protected by policy {policy} (pattern {}); an administrator can delete it with the API's override",
                    pat.as_str()
                ),
            ));
        } else {
            going.push(parse_tag(name)?);
        }
    }
    let dry = if going.is_empty() {
        None
    } else {
        Some(
            ctx.registry
                .delete_tags(repo, &going, false, true, &ctx.caller.principal)
                .await?,
        )
    };
    let going_names: BTreeSet<&str> = going.iter().map(Tag::as_str).collect();
    // Other tags on the same image keep it: say so beside each tag that goes.
    let mut by_digest: HashMap<&str, Vec<&str>> = HashMap::new();
    for t in current.values() {
        if !going_names.contains(t.name.as_str()) {
            by_digest
                .entry(t.digest.as_str())
                .or_default()
                .push(&t.name);
        }
    }
    let body = html! {
        h1 { "Delete tags from " code { (repo) } "?" }
        @if let Some(n) = notice { (n) }
        @if let Some(dry) = &dry {
            h2 { "What goes" }
            table data-testid="plan-going" {
                thead { tr { th scope="col" { "Tag" } th scope="col" { "Digest" } th scope="col" class="num" { "Image size" } th scope="col" { "The image" } } }
                tbody {
                    @for d in &dry.deleted {
                        tr data-testid={ "plan-tag-" (d.tag) } {
                            td { strong { (d.tag) } }
                            td { (digest(&d.digest.to_string())) }
                            td.num { @if let Some(t) = current.get(&d.tag) { (bytes(t.size)) } }
                            td {
                                @match by_digest.get(d.digest.to_string().as_str()) {
                                    Some(others) => { "stays: also tagged " (others.join(", ")) }
                                    None => { "loses its last tag; held for restore, then collected" }
                                }
                            }
                        }
                    }
                }
            }
            (plan_cards(&dry.freed))
            p.note {
                "Layers other images still use are kept and not counted. Until the deadline, "
                "the deleted tags can be restored from this repository's history or from "
                a href="/ui/deleted" { "Recently deleted" } "; after it the collector frees the bytes."
            }
        } @else {
            p.note data-testid="plan-empty" { "Nothing of what was chosen can be deleted." }
        }
        @if !skipped.is_empty() {
            h2 { "Kept" }
            ul data-testid="plan-kept" {
                @for (t, why) in &skipped {
                    li { strong { (t) } ": " (why) }
                }
            }
        }
        @if let Some(dry) = &dry {
            form method="post" action={ "/ui/repositories/" (repo) "/-/delete" } {
                (ctx.csrf_field())
                @for d in &dry.deleted {
                    input type="hidden" name="item" value={ (d.tag) "@" (d.digest) };
                }
                button.danger type="submit" data-testid="btn-confirm" {
                    "Delete " (dry.deleted.len()) @if dry.deleted.len() == 1 { " tag" } @else { " tags" }
                }
                " "
                a.button href={ "/ui/repositories/" (repo) } { "Cancel" }
            }
        } @else {
            p { a.button href={ "/ui/repositories/" (repo) } { "Back to the repository" } }
        }
    };
    Ok(ctx.page(&format!("Delete tags from {repo}"), body))
}

/// Runs a confirmed plan: the tags it named, only while each still points where it did.
pub(crate) async fn execute_plan(
    ctx: &Ctx,
    repo: &RepoName,
    form: &Fields,
) -> Result<Response, ApiError> {
    if !ctx.may(Permission::Pull, Some(repo.as_str())) {
        return Err(forbidden(format!(
            "{} may not read {repo}",
            ctx.caller.principal.name
        )));
    }
    let mut planned: Vec<(Tag, String)> = Vec::new();
    for item in form.all("item") {
        let (t, d) = item
            .split_once('@')
            .ok_or_else(|| bad_request(format!("plan item {item:?} is not TAG@DIGEST")))?;
        planned.push((parse_tag(t)?, d.to_string()));
    }
    if planned.is_empty() {
        return Err(bad_request("the plan names no tag"));
    }
    let mut moved = Vec::new();
    for (t, d) in &planned {
        match ctx.registry.tag(repo, t).await {
            Ok(now) if now.digest.to_string() == *d => {}
            Ok(now) => moved.push(format!("{t} now points at {}", now.digest)),
            Err(crate::registry::RegistryError::TagUnknown { .. }) => {
                moved.push(format!("{t} is gone already"))
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !moved.is_empty() {
        let names: Vec<String> = planned.iter().map(|(t, _)| t.to_string()).collect();
        let notice = html! {
            p.error role="alert" data-testid="plan-changed" {
                "The registry changed since this plan was made (" (moved.join("; "))
                "), so nothing was deleted. Here is the plan as it stands now."
            }
        };
        return plan_page(ctx, repo, &names, Some(notice)).await;
    }
    let tags: Vec<Tag> = planned.into_iter().map(|(t, _)| t).collect();
    let done = ctx
        .registry
        .delete_tags(repo, &tags, false, false, &ctx.caller.principal)
        .await?;
    let body = html! {
        h1 { "Deleted " (done.deleted.len()) @if done.deleted.len() == 1 { " tag" } @else { " tags" } " from " code { (repo) } }
        p.ok role="status" data-testid="deleted-result" {
            "Deleted: " (done.deleted.iter().map(|d| d.tag.as_str()).collect::<Vec<_>>().join(", ")) "."
        }
        (result_cards(&done.freed))
        @if let Some(batch) = done.batch {
            form method="post" action={ "/ui/batches/" (batch) "/restore" } {
                (ctx.csrf_field())
                button.primary type="submit" data-testid="btn-undo" { "Undo this batch" }
                span.note { " Brings back every tag this deletion removed." }
            }
        }
        p { a href={ "/ui/repositories/" (repo) } { "Back to " (repo) } " · " a href="/ui/deleted" { "Recently deleted" } }
    };
    Ok(ctx.page("Deleted", body))
}

/// `GET /ui/repositories/NAME/-/delete-repository`: what deleting the whole repository takes
/// (every tag, the manifests, the bytes held and until when it can be restored), and the form
/// where the user types the name. `refused` says why a confirmation was not taken.
pub(crate) async fn repository_plan_page(
    ctx: &Ctx,
    repo: &RepoName,
    refused: Option<Markup>,
) -> Result<Response, ApiError> {
    if !ctx.may(Permission::Delete, Some(repo.as_str())) {
        return Err(forbidden(format!(
            "{} may not delete repository {repo}",
            ctx.caller.principal.name
        )));
    }
    let plan = ctx
        .registry
        .plan_repository_deletion(repo, false, &ctx.caller.principal)
        .await?;
    let status = if refused.is_some() {
        axum::http::StatusCode::BAD_REQUEST
    } else {
        axum::http::StatusCode::OK
    };
    let body = html! {
        h1 { "Delete repository " code { (repo) } "?" }
        @if let Some(r) = refused { (r) }
        h2 { "What goes" }
        p data-testid="plan-repository-summary" {
            "Every tag (" (plan.tags.len()) "), every manifest (" (plan.manifests)
            ") and the repository itself. Layers other repositories use are kept."
        }
        @if !plan.tags.is_empty() {
            table data-testid="plan-going" {
                thead { tr { th scope="col" { "Tag" } th scope="col" { "Digest" } } }
                tbody {
                    @for t in &plan.tags {
                        tr data-testid={ "plan-tag-" (t.tag) } { td { strong { (t.tag) } } td { (digest(&t.digest.to_string())) } }
                    }
                }
            }
        }
        (plan_cards(&plan.freed))
        form method="post" action={ "/ui/repositories/" (repo) "/-/delete-repository" } {
            (ctx.csrf_field())
            p {
                label for="confirm" { "To confirm, type the repository's name, " strong { code { (repo) } } ":" }
                br;
                input #confirm type="text" name="confirm" autocomplete="off" spellcheck="false"
                    required data-testid="confirm-name";
            }
            button.danger type="submit" data-testid="btn-confirm" { "Delete repository " (repo) }
            " "
            a.button href={ "/ui/repositories/" (repo) } { "Cancel" }
        }
    };
    let html = super::layout::page(ctx, &format!("Delete repository {repo}"), body, None);
    let mut resp = (status, axum::response::Html(html.into_string())).into_response();
    ctx.with_cookie(&mut resp);
    Ok(resp)
}

/// `POST /ui/repositories/NAME/-/delete-repository`: deletes the repository when the typed name
/// is its name; otherwise shows the plan again with why, and deletes nothing.
pub(crate) async fn delete_repository(
    ctx: &Ctx,
    repo: &RepoName,
    form: &Fields,
) -> Result<Response, ApiError> {
    let typed = form.get("confirm").unwrap_or_default();
    if typed != repo.as_str() {
        let refused = html! {
            p.error role="alert" data-testid="error-message" {
                @if typed.trim().is_empty() { "Type the repository's name to delete it" }
                @else { "“" (typed) "” is not this repository's name" }
                " (" code { (repo) } "); nothing was deleted."
            }
        };
        return repository_plan_page(ctx, repo, Some(refused)).await;
    }
    let done = ctx
        .registry
        .delete_repository(repo, Some(typed), false, &ctx.caller.principal)
        .await?;
    let body = html! {
        h1 { "Deleted repository " code { (repo) } }
        p.ok role="status" data-testid="deleted-result" {
            "Deleted " (done.tags.len()) @if done.tags.len() == 1 { " tag" } @else { " tags" }
            " and " (done.manifests) @if done.manifests == 1 { " manifest" } @else { " manifests" } "."
        }
        (result_cards(&done.freed))
        @if done.freed.restorable_until.is_some() {
            form method="post" action={ "/ui/batches/" (done.batch) "/restore" } {
                (ctx.csrf_field())
                button.primary type="submit" data-testid="btn-undo" { "Undo: restore " (repo) }
                span.note { " Brings back every tag and manifest this deletion removed." }
            }
        }
        p { a href="/ui/repositories" { "Repositories" } " · " a href="/ui/deleted" { "Recently deleted" } }
    };
    Ok(ctx.page(&format!("Deleted {repo}"), body))
}

/// `POST /ui/batches/{id}/restore`: undo a deletion.
pub(crate) async fn undo_batch(Path(id): Path<i64>, posted: Posted) -> Response {
    let ctx = posted.ctx;
    let result = async {
        let r = ctx
            .registry
            .restore_batch(id, Overwrite::default(), &ctx.caller.principal)
            .await?;
        let r = handlers::batch_restore(r);
        Ok(restored_page_with(
            &ctx,
            &r.repository,
            &r.tags,
            r.manifests,
        ))
    }
    .await;
    ctx.finish(result)
}

fn restored_page(ctx: &Ctx, repo: &str, tags: &[model::RestoredTag]) -> Response {
    restored_page_with(ctx, repo, tags, 0)
}

/// What a restore brought back: tags, and `manifests` brought back without a tag.
fn restored_page_with(
    ctx: &Ctx,
    repo: &str,
    tags: &[model::RestoredTag],
    manifests: u64,
) -> Response {
    let body = html! {
        @if tags.is_empty() && manifests > 0 {
            h1 { "Restored " (manifests) @if manifests == 1 { " manifest" } @else { " manifests" } " in " code { (repo) } }
        } @else {
            h1 { "Restored " (tags.len()) @if tags.len() == 1 { " tag" } @else { " tags" } " in " code { (repo) } }
        }
        ul.plain data-testid="restored" {
            @if tags.is_empty() && manifests > 0 {
                li { "The deleted manifest is back, with what it lists and what refers to it." }
            }
            @for t in tags {
                li { strong { (t.tag) } " → " (digest(&t.digest))
                    @if let Some(r) = &t.replaced { " (replaced " (digest(r)) ", which can itself be restored)" } }
            }
        }
        p { a href={ "/ui/repositories/" (repo) } { "Back to " (repo) } }
    };
    ctx.page("Restored", body)
}

/// Restores one tag to the digest the form names.
pub(crate) async fn restore_tag(
    ctx: &Ctx,
    repo: &RepoName,
    tag: &Tag,
    form: &Fields,
) -> Result<Response, ApiError> {
    let r = ctx
        .registry
        .restore_tag(
            repo,
            tag,
            form.get("digest"),
            Overwrite::default(),
            &ctx.caller.principal,
        )
        .await?;
    let r = handlers::restored_tag(r);
    Ok(restored_page(ctx, repo.as_str(), &[r]))
}

/// Restorable tags as a table with restore buttons where the caller may restore.
pub(crate) fn restorable_table(ctx: &Ctx, rows: &[RestorableTag], show_repo: bool) -> Markup {
    html! {
        @if rows.is_empty() {
            p.note data-testid="nothing-restorable" { "Nothing to restore." }
        } @else {
            table data-testid="restorable" {
                thead { tr {
                    @if show_repo { th scope="col" { "Repository" } }
                    th scope="col" { "Tag" } th scope="col" { "What happened" } th scope="col" { "Digest" }
                    th scope="col" { "When" } th scope="col" { "By" } th scope="col" { "Restorable until" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for r in rows {
                        tr data-testid={ "row-restorable-" (r.repository) ":" (r.tag) } {
                            @if show_repo {
                                td { a href={ "/ui/repositories/" (r.repository) "/-/history" } { (r.repository) }
                                    @if r.repository_deleted { span.badge { "repository deleted" } } }
                            }
                            td { strong { (r.tag) } }
                            td { (r.how) }
                            td { (digest(&r.digest)) }
                            td { (when(&r.left_at)) }
                            td { (r.actor) }
                            td { (when(&r.restorable_until)) }
                            td {
                                @if let Some(now) = &r.conflict {
                                    span.badge.conflict title={ "The name now points at " (now) } { "name reused" }
                                    " " span.note { "restore with force from the API or CLI" }
                                } @else if ctx.may(Permission::Push, Some(&r.repository)) {
                                    form.inline method="post" action={ "/ui/repositories/" (r.repository) "/-/tags/" (r.tag) "/restore" } {
                                        (ctx.csrf_field())
                                        input type="hidden" name="digest" value=(r.digest);
                                        button type="submit" data-testid={ "restore-" (r.tag) } { "Restore" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `/ui/deleted`: the registry-wide restore bin, newest first, a page at a time.
pub(crate) async fn recently_deleted(
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let before = q
            .get("before")
            .map(|b| b.parse::<i64>().map_err(|_| bad_request("before: a number")))
            .transpose()?;
        const PAGE: i64 = 100;
        let entries = ctx
            .registry
            .restorable(None, before, PAGE + 1, &ctx.caller.principal)
            .await?;
        let more = entries.len() as i64 > PAGE;
        let rows: Vec<RestorableTag> = entries
            .into_iter()
            .take(PAGE as usize)
            .map(handlers::restorable_tag)
            .collect();
        let next = if more { rows.last().map(|r| r.id) } else { None };
        let body = html! {
            h1 { "Recently deleted" }
            p.note { "Tags that left an image (deleted, or moved by a push) and can go back to it until their deadline. After it, the collector frees what only they held." }
            (restorable_table(&ctx, &rows, true))
            @if let Some(n) = next { p { a href={ "/ui/deleted?before=" (n) } { "Older entries" } } }
        };
        Ok(ctx.page("Recently deleted", body))
    }
    .await;
    ctx.finish(result)
}

/// Why a manifest cannot be deleted as it stands, for its plan page; `None` for any other
/// error, which the page's caller reports as an error.
fn manifest_kept_because(repo: &RepoName, e: &crate::registry::RegistryError) -> Option<Markup> {
    use crate::registry::RegistryError as E;
    match e {
        E::ManifestInUse { index, .. } => Some(html! {
            "an index lists it: "
            a href={ "/ui/repositories/" (repo) "/-/manifests/" (index) } { (digest(&index.to_string())) }
            ". Delete the index first (its platforms go with it)."
        }),
        E::Protected {
            tag,
            policy,
            pattern,
        } => Some(html! {
            "its tag " strong { (tag) } " is protected by policy " (policy) " (pattern " code { (pattern) }
            "); an administrator can delete it with the API's override."
        }),
        _ => None,
    }
}

fn manifest_url(repo: &RepoName, d: &str) -> String {
    format!("/ui/repositories/{repo}/-/manifests/{d}")
}

/// `GET /ui/repositories/NAME/-/manifests/DIGEST/delete`: what deleting one manifest takes
/// (the tags on it, what it lists and what refers to it, the bytes held and until when it can
/// be restored), the registry's own deletion rolled back (`Registry::plan_manifest_deletion`);
/// or why it cannot go. With `changed` in the query, a confirmed plan naming the tags `was`
/// found others on the manifest and deleted nothing: the page says so.
pub(crate) async fn manifest_plan_page(
    ctx: &Ctx,
    repo: &RepoName,
    wanted: &str,
) -> Result<Response, ApiError> {
    let query = Fields::parse(
        ctx.here
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or_default()
            .as_bytes(),
    );
    let notice = query.get("changed").map(|_| {
        let was = query.all("was");
        html! {
            p.error role="alert" data-testid="plan-changed" {
                "The tags on this manifest changed since the plan you confirmed ("
                @if was.is_empty() { "no tag" } @else { (was.join(", ")) }
                "), so nothing was deleted. Here is the plan as it stands now."
            }
        }
    });
    if !ctx.may(Permission::Delete, Some(repo.as_str())) {
        return Err(forbidden(format!(
            "{} may not delete manifests in {repo}",
            ctx.caller.principal.name
        )));
    }
    let view = ctx.registry.manifest_view(repo, wanted).await?;
    let d = view.details.summary.head.digest.clone();
    let info = handlers::manifest_info(view.details.clone());
    let plan = match ctx
        .registry
        .plan_manifest_deletion(repo, &d, &ctx.caller.principal)
        .await
    {
        Ok(plan) => Ok(plan),
        Err(e) => match manifest_kept_because(repo, &e) {
            Some(why) => Err(why),
            None => return Err(e.into()),
        },
    };
    let back = manifest_url(repo, &d.to_string());
    let body = html! {
        h1 { "Delete manifest " (digest(&d.to_string())) " from " code { (repo) } "?" }
        @if let Some(n) = notice { (n) }
        @match &plan {
            Err(why) => {
                h2 { "Kept" }
                p.error role="alert" data-testid="plan-kept" { "This manifest cannot be deleted now: " (why) }
                p { a.button href=(back) { "Back to the manifest" } }
            }
            Ok(plan) => {
                h2 { "What goes" }
                ul data-testid="plan-going" {
                    li data-testid="plan-manifest" {
                        "The " (super::manifests::kind(&info.media_type, info.artifact_type.as_deref()))
                        " " code.digest { (d) } " (manifest " (bytes(info.size)) ")"
                    }
                    @if plan.tags.is_empty() {
                        li data-testid="plan-tags" { "No tag points at it." }
                    } @else {
                        li data-testid="plan-tags" {
                            "With it, " @if plan.tags.len() == 1 { "its tag " } @else { "its " (plan.tags.len()) " tags " }
                            @for (i, t) in plan.tags.iter().enumerate() {
                                @if i > 0 { ", " }
                                strong data-testid={ "plan-tag-" (t) } { (t) }
                            }
                            "."
                        }
                    }
                    @if !view.children.is_empty() {
                        li data-testid="plan-children" {
                            "The " (view.children.len()) " platform manifests it lists, unless another tag or index holds them."
                        }
                    }
                    @if !view.referrers.is_empty() {
                        li data-testid="plan-referrers" {
                            "The " (view.referrers.len())
                            @if view.referrers.len() == 1 { " artifact" } @else { " artifacts" }
                            " referring to it (signatures, SBOMs)."
                        }
                    }
                }
                (plan_cards(&plan.freed))
                p.note {
                    "Kept: layers and configs other images still use, which are not counted. Until the "
                    "deadline the deletion can be undone from its result page"
                    @if !plan.tags.is_empty() { ", and its tags restored from " a href="/ui/deleted" { "Recently deleted" } }
                    "; after it the collector frees the bytes."
                }
                form method="post" action={ (back) "/delete/confirm" } {
                    (ctx.csrf_field())
                    input type="hidden" name="planned" value="1";
                    @for t in &plan.tags {
                        input type="hidden" name="tag" value=(t);
                    }
                    button.danger type="submit" data-testid="btn-confirm" {
                        "Delete this manifest"
                        @if !plan.tags.is_empty() {
                            " and " (plan.tags.len()) @if plan.tags.len() == 1 { " tag" } @else { " tags" }
                        }
                    }
                    " "
                    a.button href=(back) { "Cancel" }
                }
            }
        }
    };
    Ok(ctx.page(&format!("Delete manifest from {repo}"), body))
}

/// `POST /ui/repositories/NAME/-/manifests/DIGEST/delete/confirm`: deletes the manifest only
/// while the tags its plan listed are exactly the tags on it (the service checks, in its
/// transaction); otherwise nothing is deleted and the browser is sent to the plan as it stands
/// now, told what the confirmed plan named (`?changed`).
pub(crate) async fn delete_manifest(
    ctx: &Ctx,
    repo: &RepoName,
    wanted: &str,
    form: &Fields,
) -> Result<Response, ApiError> {
    if form.get("planned").is_none() {
        return Err(bad_request("confirm a deletion from its plan page"));
    }
    let d: shipshape_oci::Digest = wanted
        .parse()
        .map_err(|e| bad_request(format!("digest {wanted:?}: {e}")))?;
    let planned: Vec<String> = form.all("tag").into_iter().map(str::to_string).collect();
    let done = match ctx
        .registry
        .delete_manifest_as_planned(repo, &d, &planned, &ctx.caller.principal)
        .await
    {
        Ok(done) => done,
        Err(crate::registry::RegistryError::PlanChanged(_)) => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("changed", "1");
            for t in &planned {
                q.append_pair("was", t);
            }
            return Ok(ctx.redirect(&format!(
                "{}/delete?{}",
                manifest_url(repo, wanted),
                q.finish()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let body = html! {
        h1 { "Deleted manifest " (digest(&done.digest.to_string())) " from " code { (repo) } }
        p.ok role="status" data-testid="deleted-result" {
            "Deleted the manifest"
            @if !done.tags.is_empty() { " and its tags " (done.tags.join(", ")) }
            "."
        }
        (result_cards(&done.freed))
        @if done.freed.restorable_until.is_some() {
            form method="post" action={ "/ui/batches/" (done.batch) "/restore" } {
                (ctx.csrf_field())
                button.primary type="submit" data-testid="btn-undo" { "Undo: restore the manifest" }
                span.note { " Brings back the manifest" @if !done.tags.is_empty() { " and its tags" } "." }
            }
        }
        p { a href={ "/ui/repositories/" (repo) "/-/manifests" } { "Manifests of " (repo) } " · " a href="/ui/deleted" { "Recently deleted" } }
    };
    Ok(ctx.page("Deleted", body))
}

/// What a deletion plan holds back and frees, and until when it can be undone.
fn plan_cards(freed: &Freed) -> Markup {
    html! {
        div.cards {
            (super::overview::figure("Bytes held for restore", freed.bytes_held, "plan-held"))
            (super::overview::figure("Bytes freed at once", freed.bytes_reclaimable, "plan-freed"))
            div.card {
                div.label { "Restorable until" }
                div.value data-testid="plan-deadline" {
                    @match freed.restorable_until {
                        Some(ms) => { (when(&model::time(ms))) }
                        None => { "not restorable (no restore window)" }
                    }
                }
            }
        }
    }
}

/// What a deletion that ran held back and freed, and until when it can be undone.
fn result_cards(freed: &Freed) -> Markup {
    html! {
        div.cards {
            (super::overview::figure("Bytes held for restore", freed.bytes_held, "result-held"))
            (super::overview::figure("Bytes freed at once", freed.bytes_reclaimable, "result-freed"))
            @if let Some(ms) = freed.restorable_until {
                div.card { div.label { "Restorable until" } div.value data-testid="result-deadline" { (when(&model::time(ms))) } }
            }
        }
    }
}
