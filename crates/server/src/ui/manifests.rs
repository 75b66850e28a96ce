//! A repository's manifests (`/ui/repositories/NAME/-/manifests`): every stored manifest,
//! tagged or not, with why the registry still keeps it (the collector's own classification,
//! `Registry::manifests`), filtered by tagged / untagged / referrers in the URL query; and one
//! manifest in full (`…/-/manifests/DIGEST`): its tags, the platforms an index lists, the
//! layers with how widely each is shared, its referrers and the raw JSON, and for those who may
//! delete it, the way to its deletion plan (`deletion.rs`).

use std::collections::HashMap;

use axum::response::Response;
use maud::{Markup, html};
use shipshape_oci::RepoName;

use shipshape_meta::principal::Permission;

use super::Ctx;
use super::layout::{bytes, digest, when, when_or_never};
use crate::api::handlers;
use crate::api::model::{ManifestInfo, WhyKept};
use crate::error::ApiError;

/// Whether a manifest shows under a filter.
type Shows = fn(&ManifestInfo) -> bool;

/// The filters of the list: key, label, whether a manifest shows under it.
const SHOWS: [(&str, &str, Shows); 4] = [
    ("all", "All", |_| true),
    ("tagged", "Tagged", |m| !m.tags.is_empty()),
    ("untagged", "Untagged", |m| {
        m.tags.is_empty() && m.subject.is_none()
    }),
    ("referrers", "Referrers", |m| m.subject.is_some()),
];

fn detail_url(repo: &RepoName, d: &str) -> String {
    format!("/ui/repositories/{repo}/-/manifests/{d}")
}

/// What a manifest is, in a word or two: image, index, or the artifact it carries.
pub(crate) fn kind(media_type: &str, artifact_type: Option<&str>) -> String {
    let index = media_type.contains("index") || media_type.contains("manifest.list");
    let image_config = |t: &str| {
        t == "application/vnd.oci.image.config.v1+json"
            || t == "application/vnd.docker.container.image.v1+json"
    };
    match artifact_type {
        _ if index => "index".into(),
        Some(t) if !image_config(t) => format!("artifact ({t})"),
        _ => "image".into(),
    }
}

/// Why a manifest is kept, with links to what holds it.
fn why(repo: &RepoName, w: &WhyKept) -> Markup {
    let link = |d: &Option<String>| {
        html! { @if let Some(d) = d { a href=(detail_url(repo, d)) { (digest(d)) } } }
    };
    let until = |t: &Option<String>| html! { @if let Some(t) = t { (when(t)) } };
    html! {
        @match w.reason.as_str() {
            "tagged" => { "tagged " (w.tags.join(", ")) }
            "child" => { "child of " (link(&w.of)) }
            "referrer" => { "referrer of " (link(&w.of)) }
            "settings" => { "untagged; kept because untagged manifests are not collected" }
            "held_for_restore" => { "held for restore until " (until(&w.until)) }
            "in_grace" => { "in grace until " (until(&w.until)) }
            "collectable" => { "unreferenced: collectable" }
            other => { (other) }
        }
    }
}

/// `/ui/repositories/NAME/-/manifests?show=all|tagged|untagged|referrers`.
pub(crate) async fn list_page(
    ctx: &Ctx,
    repo: &RepoName,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let show = q
        .get("show")
        .map(String::as_str)
        .filter(|s| SHOWS.iter().any(|(k, _, _)| k == s))
        .unwrap_or("all");
    let keep = SHOWS
        .iter()
        .find(|(k, _, _)| *k == show)
        .map(|(_, _, f)| *f)
        .expect("a known filter");
    let all: Vec<ManifestInfo> = ctx
        .registry
        .manifests(repo)
        .await?
        .into_iter()
        .map(handlers::manifest_info)
        .collect();
    let rows: Vec<&ManifestInfo> = all.iter().filter(|m| keep(m)).collect();
    let body = html! {
        h1 { "Repository " code { (repo) } }
        (super::repos::repo_tabs(repo, "manifests"))
        nav.filter aria-label="Show" data-testid="manifest-filter" {
            "Show: "
            @for (key, label, f) in SHOWS {
                @let n = all.iter().filter(|m| f(m)).count();
                @if key == show {
                    strong aria-current="true" { (label) " (" (n) ")" }
                } @else {
                    a href={ "/ui/repositories/" (repo) "/-/manifests?show=" (key) }
                        data-testid={ "show-" (key) } { (label) " (" (n) ")" }
                }
                " "
            }
        }
        @if rows.is_empty() {
            p.note data-testid="no-manifests" { "No manifest here matches this filter." }
        } @else {
            table data-testid="manifests" {
                caption { (rows.len()) " manifests" }
                thead { tr {
                    th scope="col" { "Digest" } th scope="col" { "Kind" }
                    th scope="col" class="num" { "Size" } th scope="col" { "Tags" }
                    th scope="col" { "Pushed" } th scope="col" { "Why kept" }
                } }
                tbody {
                    @for m in &rows {
                        tr data-testid={ "row-manifest-" (m.digest) } {
                            td { a href=(detail_url(repo, &m.digest)) { (digest(&m.digest)) } }
                            td { (kind(&m.media_type, m.artifact_type.as_deref()))
                                br; span.note { code { (m.media_type) } } }
                            td.num { (bytes(m.size)) }
                            td {
                                @if m.tags.is_empty() { span.badge { "untagged" } }
                                @else { (m.tags.join(", ")) }
                            }
                            td { (when(&m.created_at)) }
                            td data-testid="why-kept" { (why(repo, &m.why_kept)) }
                        }
                    }
                }
            }
            p.note { "Sizes are of the manifests themselves; a manifest's page lists its layers. "
                "\u{201c}Why kept\u{201d} is what the collector would decide now." }
        }
    };
    Ok(ctx.page(&format!("Manifests of {repo}"), body))
}

/// `/ui/repositories/NAME/-/manifests/DIGEST`.
pub(crate) async fn detail_page(
    ctx: &Ctx,
    repo: &RepoName,
    wanted: &str,
) -> Result<Response, ApiError> {
    let view = ctx.registry.manifest_view(repo, wanted).await?;
    let info = handlers::manifest_info(view.details.clone());
    let raw = match serde_json::from_slice::<serde_json::Value>(&view.payload) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(&view.payload).into_owned(),
    };
    let is_index = !view.children.is_empty() || info.media_type.contains("index");
    let body = html! {
        h1 { "Manifest in " a href={ "/ui/repositories/" (repo) } { code { (repo) } } }
        p { code.digest data-testid="manifest-digest" { (info.digest) } }
        div.cards {
            div.card { div.label { "Kind" } div.value data-testid="manifest-kind" {
                (kind(&info.media_type, info.artifact_type.as_deref())) } }
            div.card { div.label { "Manifest size" } div.value { (bytes(info.size)) } }
            div.card { div.label { "Pushed" } div.value { (when(&info.created_at)) } }
            div.card { div.label { "Pulls" } div.value { (info.pull_count) " · last "
                (when_or_never(info.last_pulled_at.as_deref())) } }
        }
        p { strong { "Why kept: " } span data-testid="why-kept" { (why(repo, &info.why_kept)) } }
        p.note { "Media type " code { (info.media_type) }
            @if let Some(t) = &info.artifact_type { "; artifact type " code { (t) } } }
        @if let Some(s) = &info.subject {
            p data-testid="subject" { "Refers to " a href=(detail_url(repo, s)) { (digest(s)) } }
        }

        h2 { "Tags" }
        @if info.tags.is_empty() {
            p.note data-testid="manifest-tags" { "No tag points at it." }
        } @else {
            ul.plain data-testid="manifest-tags" {
                @for t in &info.tags { li { strong { (t) } } }
            }
        }

        @if is_index {
            h2 { "Platforms" }
            table data-testid="children" {
                thead { tr { th scope="col" { "Platform" } th scope="col" { "Manifest" } th scope="col" class="num" { "Size" } } }
                tbody {
                    @for c in &view.children {
                        tr data-testid={ "child-" (c.digest) } {
                            td { @match &c.platform { Some(p) => { (p) }, None => { span.note { "not given" } } } }
                            td { a href=(detail_url(repo, &c.digest.to_string())) { (digest(&c.digest.to_string())) } }
                            td.num { (bytes(c.size)) }
                        }
                    }
                }
            }
        } @else {
            h2 { "Config and layers" }
            table data-testid="layers" {
                thead { tr {
                    th scope="col" { "Blob" } th scope="col" { "Media type" } th scope="col" class="num" { "Size" }
                    th scope="col" { "Shared by" }
                } }
                tbody {
                    @for b in &view.blobs {
                        @let d = b.digest.to_string();
                        tr data-testid={ "layer-" (d) } {
                            td { (digest(&d)) @if view.config.as_ref() == Some(&b.digest) { span.badge { "config" } } }
                            td { @if let Some(t) = &b.media_type { code { (t) } } }
                            td.num { (bytes(b.size)) }
                            td data-testid="shared-by" {
                                (b.manifests) @if b.manifests == 1 { " image" } @else { " images" }
                                " in " (b.repositories) @if b.repositories == 1 { " repository" } @else { " repositories" }
                            }
                        }
                    }
                }
            }
            p.note { "Total of config and layers: "
                (bytes(view.blobs.iter().map(|b| b.size).sum())) ". A blob shared with other images is stored once." }
        }

        h2 { "Referrers" }
        @if view.referrers.is_empty() {
            p.note data-testid="no-referrers" { "No signature, SBOM or other artifact refers to it." }
        } @else {
            table data-testid="referrers" {
                thead { tr { th scope="col" { "Artifact" } th scope="col" { "Digest" } th scope="col" class="num" { "Size" } } }
                tbody {
                    @for r in &view.referrers {
                        @let d = r.digest.to_string();
                        tr data-testid={ "referrer-" (d) } {
                            td { (kind(&r.media_type, r.artifact_type.as_deref())) }
                            td { a href=(detail_url(repo, &d)) { (digest(&d)) } }
                            td.num { (bytes(r.size)) }
                        }
                    }
                }
            }
        }

        @if ctx.may(Permission::Delete, Some(repo.as_str())) {
            h2 { "Delete" }
            p {
                a.button href={ (detail_url(repo, &info.digest)) "/delete" } data-testid="btn-delete-manifest" {
                    "Delete this manifest…"
                }
                " "
                span.note { "Shows what goes with it and what is kept first; nothing is deleted until you confirm." }
            }
        }
        details data-testid="raw" {
            summary { "Raw manifest (JSON, reformatted; the digest is of the bytes as pushed)" }
            pre data-testid="raw-json" { (raw) }
        }
        p { a href={ "/ui/repositories/" (repo) "/-/manifests" } { "All manifests of " (repo) } }
    };
    Ok(ctx.page(&format!("{repo}@{}", info.digest), body))
}
