//! Repositories: the list (filter and sort in the URL query, so a view can be shared) and a
//! repository's pages under `/ui/repositories/NAME` — its tags, its manifests (`manifests.rs`),
//! its history with restore, and its deletion by typing its name (`deletion.rs`).
//! Names contain slashes, so a repository's sub-pages follow a `/-/` separator, as in the
//! management API.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use shipshape_meta::principal::Permission;
use shipshape_oci::{RepoName, Tag};

use super::layout::{bytes, digest, when, when_or_never};
use super::{Ctx, Posted, bad_request, deletion};
use crate::api::handlers;
use crate::api::model::{HistoryEntry, RepositoryInfo, RestorableTag, TagInfo};
use crate::error::ApiError;
use crate::registry::{TagQuery, TagSort};

type Q = Query<HashMap<String, String>>;

/// The columns the repository list sorts by, with their default direction.
const REPO_SORTS: [(&str, &str, bool); 7] = [
    ("name", "Name", false),
    ("tags", "Tags", true),
    ("untagged", "Untagged", true),
    ("size", "Size", true),
    ("reclaimable", "Reclaimable", true),
    ("pushed", "Last push", true),
    ("pulled", "Last pull", true),
];

fn compare(sort: &str, a: &RepositoryInfo, b: &RepositoryInfo) -> Ordering {
    match sort {
        "tags" => a.tags.cmp(&b.tags),
        "untagged" => a.untagged_manifests.cmp(&b.untagged_manifests),
        "size" => a.usage.stored_bytes.cmp(&b.usage.stored_bytes),
        "reclaimable" => a.usage.reclaimable_bytes.cmp(&b.usage.reclaimable_bytes),
        "pushed" => a.last_pushed_at.cmp(&b.last_pushed_at),
        "pulled" => a.last_pulled_at.cmp(&b.last_pulled_at),
        _ => Ordering::Equal,
    }
    .then_with(|| a.name.cmp(&b.name))
}

/// A URL of the list with the filter kept and `sort`/`dir` set.
fn list_url(q: &str, sort: &str, desc: bool) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        s.append_pair("q", q);
    }
    s.append_pair("sort", sort);
    s.append_pair("dir", if desc { "desc" } else { "asc" });
    format!("/ui/repositories?{}", s.finish())
}

/// `/ui/repositories?q=&sort=&dir=`.
pub(crate) async fn list(ctx: Ctx, Query(q): Q) -> Response {
    let result = render_list(&ctx, &q).await;
    ctx.finish(result)
}

async fn render_list(ctx: &Ctx, q: &HashMap<String, String>) -> Result<Response, ApiError> {
    let filter = q.get("q").map(|s| s.trim()).unwrap_or_default().to_string();
    let sort = q
        .get("sort")
        .map(String::as_str)
        .filter(|s| REPO_SORTS.iter().any(|(k, _, _)| k == s))
        .unwrap_or("name")
        .to_string();
    let default_desc = REPO_SORTS
        .iter()
        .find(|(k, _, _)| *k == sort)
        .is_some_and(|(_, _, d)| *d);
    let desc = match q.get("dir").map(String::as_str) {
        Some("asc") => false,
        Some("desc") => true,
        _ => default_desc,
    };
    let mut repos: Vec<RepositoryInfo> = ctx
        .registry
        .repositories(None, None)
        .await?
        .into_iter()
        .filter(|r| ctx.may(Permission::Pull, Some(&r.summary.name)))
        .map(handlers::repository_info)
        .filter(|r| r.name.contains(filter.as_str()))
        .collect();
    repos.sort_by(|a, b| {
        let o = if sort == "name" {
            a.name.cmp(&b.name)
        } else {
            compare(&sort, a, b)
        };
        if desc { o.reverse() } else { o }
    });
    let header = |key: &str, label: &str, default: bool, num: bool| {
        let sorted = key == sort;
        let aria = match (sorted, desc) {
            (true, true) => Some("descending"),
            (true, false) => Some("ascending"),
            _ => None,
        };
        let next_desc = if sorted { !desc } else { default };
        html! {
            th scope="col" class=[num.then_some("num")] aria-sort=[aria] {
                a href=(list_url(&filter, key, next_desc)) data-testid={ "sort-" (key) } { (label) }
                // The arrow is for the eye; `aria-sort` says the same to a screen reader.
                @if sorted { span aria-hidden="true" { @if desc { " ↓" } @else { " ↑" } } }
            }
        }
    };
    let body = html! {
        h1 { "Repositories" }
        form.filter method="get" action="/ui/repositories" role="search" {
            label for="q" { "Name contains" }
            input #q type="search" name="q" value=(filter);
            input type="hidden" name="sort" value=(sort);
            input type="hidden" name="dir" value=(if desc { "desc" } else { "asc" });
            button type="submit" { "Filter" }
        }
        @if repos.is_empty() {
            p.note data-testid="no-repositories" {
                @if filter.is_empty() { "No repositories yet: push an image to create one." }
                @else { "No repository name contains “" (filter) "”." }
            }
        } @else {
            table data-testid="repositories" {
                caption { (repos.len()) " repositories" }
                thead { tr {
                    @for (key, label, default) in REPO_SORTS {
                        (header(key, label, default, key != "name" && key != "pushed" && key != "pulled"))
                    }
                } }
                tbody {
                    @for r in &repos {
                        tr data-testid={ "row-repo-" (r.name) } {
                            td { a href={ "/ui/repositories/" (r.name) } { (r.name) } }
                            td.num { (r.tags) }
                            td.num { (r.untagged_manifests) }
                            td.num { (bytes(r.usage.stored_bytes)) br; span.note { (bytes(r.usage.unique_bytes)) " only here" } }
                            td.num { (bytes(r.usage.reclaimable_bytes)) }
                            td { (when_or_never(r.last_pushed_at.as_deref())) }
                            td { (when_or_never(r.last_pulled_at.as_deref())) }
                        }
                    }
                }
            }
            p.note { "Size counts each blob once per repository; blobs shared between repositories count in each, so sizes may add up to more than the storage total." }
        }
    };
    Ok(ctx.page("Repositories", body))
}

/// A repository's sub-page, parsed from what follows `/ui/repositories/`.
enum Sub {
    Tags,
    Manifests,
    Manifest(String),
    DeleteManifest(String),
    ConfirmDeleteManifest(String),
    History,
    Delete,
    DeleteRepository,
    Restore(Tag),
}

fn parse(rest: &str) -> Result<(RepoName, Sub), ApiError> {
    let (name, sub) = match rest.split_once("/-/") {
        Some((n, s)) => (n, Some(s)),
        None => (rest.trim_end_matches('/'), None),
    };
    let repo = name
        .parse::<RepoName>()
        .map_err(|e| ApiError::name_invalid(e.to_string()))?;
    let segs: Vec<&str> = sub.map(|s| s.split('/').collect()).unwrap_or_default();
    let sub =
        match segs.as_slice() {
            [] => Sub::Tags,
            ["manifests"] => Sub::Manifests,
            ["manifests", d] => Sub::Manifest(d.to_string()),
            ["manifests", d, "delete"] => Sub::DeleteManifest(d.to_string()),
            ["manifests", d, "delete", "confirm"] => Sub::ConfirmDeleteManifest(d.to_string()),
            ["history"] => Sub::History,
            ["delete"] => Sub::Delete,
            ["delete-repository"] => Sub::DeleteRepository,
            ["tags", t, "restore"] => Sub::Restore(t.parse::<Tag>().map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", e.to_string())
            })?),
            _ => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    format!("/ui/repositories/{rest} is no page of the web UI"),
                ));
            }
        };
    Ok((repo, sub))
}

/// `/ui/repos/NAME[/manifests/DIGEST]`: the short form of a repository's (or a manifest's)
/// address, sent on to its page under `/ui/repositories/`.
pub(crate) async fn short_address(ctx: Ctx, Path(rest): Path<String>) -> Response {
    let to = match rest.rsplit_once("/manifests/") {
        Some((name, d)) => format!("/ui/repositories/{name}/-/manifests/{d}"),
        None => match rest.trim_end_matches('/').strip_suffix("/manifests") {
            Some(name) => format!("/ui/repositories/{name}/-/manifests"),
            None => format!("/ui/repositories/{}", rest.trim_end_matches('/')),
        },
    };
    ctx.redirect(&to)
}

/// GET under `/ui/repositories/…`.
pub(crate) async fn get_dispatch(ctx: Ctx, Path(rest): Path<String>, Query(q): Q) -> Response {
    let result = async {
        let (repo, sub) = parse(&rest)?;
        if !ctx.may(Permission::Pull, Some(repo.as_str())) {
            return Err(super::forbidden(format!(
                "{} may not read {repo}",
                ctx.caller.principal.name
            )));
        }
        match sub {
            Sub::Tags => tags_page(&ctx, &repo, &q).await,
            Sub::Manifests => super::manifests::list_page(&ctx, &repo, &q).await,
            Sub::Manifest(d) => super::manifests::detail_page(&ctx, &repo, &d).await,
            Sub::DeleteManifest(d) => deletion::manifest_plan_page(&ctx, &repo, &d).await,
            Sub::History => history_page(&ctx, &repo).await,
            Sub::DeleteRepository => deletion::repository_plan_page(&ctx, &repo, None).await,
            Sub::Delete => {
                let tags: Vec<String> = super::Fields::parse(
                    ctx.here
                        .split_once('?')
                        .map(|(_, q)| q)
                        .unwrap_or_default()
                        .as_bytes(),
                )
                .all("tag")
                .into_iter()
                .map(str::to_string)
                .collect();
                deletion::plan_page(&ctx, &repo, &tags, None).await
            }
            Sub::Restore(_) | Sub::ConfirmDeleteManifest(_) => Err(ApiError::method_not_allowed()),
        }
    }
    .await;
    ctx.finish(result)
}

/// POST under `/ui/repositories/…`.
pub(crate) async fn post_dispatch(Path(rest): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let result = async {
        let (repo, sub) = parse(&rest)?;
        match sub {
            Sub::Delete => deletion::execute_plan(&ctx, &repo, &form).await,
            Sub::ConfirmDeleteManifest(d) => {
                deletion::delete_manifest(&ctx, &repo, &d, &form).await
            }
            Sub::DeleteRepository => deletion::delete_repository(&ctx, &repo, &form).await,
            Sub::Restore(tag) => deletion::restore_tag(&ctx, &repo, &tag, &form).await,
            _ => Err(ApiError::method_not_allowed()),
        }
    }
    .await;
    ctx.finish(result)
}

/// The tag list's sort keys, as the API takes them.
const TAG_SORTS: [(&str, &str); 4] = [
    ("name", "Tag"),
    ("pushed", "Pushed"),
    ("pulled", "Last pulled"),
    ("size", "Size"),
];

pub(crate) fn repo_tabs(repo: &RepoName, current: &str) -> Markup {
    html! {
        nav.tabs aria-label="Repository" {
            @for (key, label, href) in [
                ("tags", "Tags", format!("/ui/repositories/{repo}")),
                ("manifests", "Manifests", format!("/ui/repositories/{repo}/-/manifests")),
                ("history", "History and restore", format!("/ui/repositories/{repo}/-/history")),
            ] {
                @if key == current { strong aria-current="page" { (label) } }
                @else { a href=(href) { (label) } }
                " "
            }
        }
    }
}

async fn tags_page(
    ctx: &Ctx,
    repo: &RepoName,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let info = handlers::repository_info(ctx.registry.repository(repo).await?);
    let sort_key = q
        .get("sort")
        .map(String::as_str)
        .filter(|s| TAG_SORTS.iter().any(|(k, _)| k == s))
        .unwrap_or("name");
    let reverse = q.get("reverse").is_some_and(|v| v == "true");
    let pattern = q
        .get("pattern")
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    let query = TagQuery {
        sort: sort_key.parse::<TagSort>().map_err(bad_request)?,
        reverse,
        pattern: pattern.clone(),
    };
    let tags: Vec<TagInfo> = ctx
        .registry
        .tag_details(repo, &query)
        .await?
        .into_iter()
        .map(handlers::tag_info)
        .collect();
    let protection = ctx.app.retention().policies().protection(repo.as_str());
    // The applied policies covering this repository, each in one sentence.
    let covering: Vec<(String, String)> = ctx
        .app
        .retention()
        .policies()
        .snapshot()
        .iter()
        .filter(|p| p.applies_to(repo.as_str()))
        .map(|p| (p.name().to_string(), shipshape_gc::retention::sentence(p)))
        .collect();
    let may_delete = ctx.may(Permission::Push, Some(repo.as_str()));
    let sort_url = |key: &str| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("sort", key);
        if key == sort_key && !reverse {
            s.append_pair("reverse", "true");
        }
        if let Some(p) = &pattern {
            s.append_pair("pattern", p);
        }
        format!("/ui/repositories/{repo}?{}", s.finish())
    };
    let th = |key: &str, label: &str| {
        let aria = (key == sort_key).then(|| {
            // Names sort ascending; times and sizes newest or largest first.
            let natural_desc = key != "name";
            if natural_desc != reverse {
                "descending"
            } else {
                "ascending"
            }
        });
        html! { th scope="col" aria-sort=[aria] { a href=(sort_url(key)) { (label) } } }
    };
    let body = html! {
        h1 { "Repository " code { (repo) } }
        (repo_tabs(repo, "tags"))
        div.cards {
            div.card { div.label { "Tags" } div.value data-testid="repo-tags" { (info.tags) } }
            div.card { div.label { "Untagged manifests" } div.value { (info.untagged_manifests) } }
            div.card { div.label { "Size" } div.value { (bytes(info.usage.stored_bytes)) } }
            div.card { div.label { "Only in this repository" } div.value { (bytes(info.usage.unique_bytes)) } }
            div.card { div.label { "Held for restore" } div.value data-testid="repo-held" { (bytes(info.usage.held_for_restore_bytes)) } }
            div.card { div.label { "Reclaimable now" } div.value { (bytes(info.usage.reclaimable_bytes)) } }
        }
        @if !covering.is_empty() {
            ul.plain data-testid="repo-policies" {
                @for (name, sentence) in &covering {
                    li { "Policy " a href="/ui/policies" { strong { (name) } } ": " (sentence) }
                }
            }
        }
        form.filter method="get" action={ "/ui/repositories/" (repo) } role="search" {
            label for="pattern" { "Tags matching" }
            input #pattern type="search" name="pattern" placeholder="v1.*  or  regex:^ci-"
                value=(pattern.clone().unwrap_or_default());
            input type="hidden" name="sort" value=(sort_key);
            button type="submit" { "Filter" }
        }
        @if tags.is_empty() {
            p.note data-testid="no-tags" { "No tags" @if pattern.is_some() { " match this pattern" } "." }
        } @else {
            form method="get" action={ "/ui/repositories/" (repo) "/-/delete" } {
                table data-testid="tags" {
                    caption { (tags.len()) " tags" }
                    thead { tr {
                        @if may_delete { th scope="col" { span.visually-hidden { "Select" } } }
                        (th("name", "Tag"))
                        th scope="col" { "Digest" }
                        (th("size", "Size"))
                        (th("pushed", "Pushed"))
                        (th("pulled", "Last pulled"))
                        th scope="col" class="num" { "Pulls" }
                        @if may_delete { th scope="col" { "Actions" } }
                    } }
                    tbody {
                        @for t in &tags {
                            tr data-testid={ "row-tag-" (t.name) } {
                                @if may_delete {
                                    td { input type="checkbox" name="tag" value=(t.name)
                                        id={ "select-" (t.name) } aria-label={ "Select tag " (t.name) }; }
                                }
                                td {
                                    strong { (t.name) }
                                    @if let Some((policy, pat)) = protection.protects(&t.name) {
                                        span.badge.protected data-testid="badge-protected"
                                            title={ "Protected by policy " (policy) " (" (pat.as_str()) ")" } { "protected" }
                                    }
                                }
                                td { (digest(&t.digest)) }
                                td.num { (bytes(t.size)) }
                                td { (when(&t.pushed_at)) }
                                td { (when_or_never(t.last_pulled_at.as_deref())) }
                                td.num { (t.pull_count) }
                                @if may_delete {
                                    td { a.button href={ "/ui/repositories/" (repo) "/-/delete?tag=" (t.name) }
                                        data-testid={ "delete-" (t.name) } { "Delete…" } }
                                }
                            }
                        }
                    }
                }
                @if may_delete {
                    p { button type="submit" data-testid="btn-delete-selected" { "Delete selected…" }
                        span.note { " Shows what goes and what is kept before anything is deleted." } }
                }
            }
        }
        p.note { "Pull: " code { "docker pull HOST/" (repo) ":TAG" } }
        @if ctx.may(Permission::Delete, Some(repo.as_str())) {
            h2 { "Delete this repository" }
            p {
                a.button href={ "/ui/repositories/" (repo) "/-/delete-repository" }
                    data-testid="btn-delete-repository" { "Delete repository…" }
                span.note { " Shows everything that goes first; you confirm by typing the name. Restorable within the restore window." }
            }
        }
    };
    Ok(ctx.page(&format!("{repo}"), body))
}

/// A history entry as a sentence.
fn sentence(e: &HistoryEntry) -> Markup {
    let d = |x: &Option<String>| x.as_deref().map(digest);
    html! {
        strong { (e.tag) } " "
        @match e.action.as_str() {
            "pushed" => { "pushed as " @if let Some(m) = d(&e.to_digest) { (m) } }
            "moved" => { "moved to " @if let Some(m) = d(&e.to_digest) { (m) } " from " @if let Some(m) = d(&e.from_digest) { (m) } }
            "deleted" => { "deleted (was " @if let Some(m) = d(&e.from_digest) { (m) } ")" }
            "restored" => { "restored to " @if let Some(m) = d(&e.to_digest) { (m) } }
            other => { (other) }
        }
    }
}

async fn history_page(ctx: &Ctx, repo: &RepoName) -> Result<Response, ApiError> {
    let entries: Vec<HistoryEntry> = ctx
        .registry
        .tag_history(repo, None, 200)
        .await?
        .into_iter()
        .map(|e| HistoryEntry {
            tag: e.tag,
            action: e.action.to_string(),
            from_digest: e.from_digest.map(|d| d.to_string()),
            to_digest: e.to_digest.map(|d| d.to_string()),
            actor: e.actor,
            at: crate::api::model::time(e.at),
        })
        .collect();
    let restorable: Vec<RestorableTag> = ctx
        .registry
        .restorable(Some(repo), None, 200, &ctx.caller.principal)
        .await?
        .into_iter()
        .map(handlers::restorable_tag)
        .collect();
    let body = html! {
        h1 { "Repository " code { (repo) } }
        (repo_tabs(repo, "history"))
        h2 { "Can be restored" }
        (deletion::restorable_table(ctx, &restorable, false))
        h2 { "Tag history" }
        @if entries.is_empty() {
            p.note { "No tag has changed yet." }
        } @else {
            table data-testid="history" {
                thead { tr { th scope="col" { "Change" } th scope="col" { "By" } th scope="col" { "When" } } }
                tbody {
                    @for e in &entries {
                        tr { td { (sentence(e)) } td { (e.actor) } td { (when(&e.at)) } }
                    }
                }
            }
        }
    };
    Ok(ctx.page(&format!("History of {repo}"), body))
}
