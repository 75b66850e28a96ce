//! The activity log (`/ui/activity`): filters by repository, action and time kept in the URL,
//! paging by the API's cursor, and the current filter exported as CSV or JSON
//! (`/ui/activity.csv`, `/ui/activity.json`) with the API's `Event` type.

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::html;
use shipshape_meta::events::EventFilter;

use super::overview::activity_table;
use super::{Ctx, bad_request};
use crate::api::handlers;
use crate::api::model::{Event, EventList};
use crate::error::ApiError;

/// Entries per page.
const PAGE: i64 = 100;
/// At most this many entries in one export.
const EXPORT_LIMIT: i64 = 10_000;

type Q = Query<HashMap<String, String>>;

fn given<'a>(q: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    q.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The filter the query asks for, read as the API reads its own.
fn filter(ctx: &Ctx, q: &HashMap<String, String>) -> Result<EventFilter, ApiError> {
    let now = ctx.registry.now();
    Ok(EventFilter {
        repository: given(q, "repository").map(str::to_string),
        action: given(q, "action").map(str::to_string),
        since: given(q, "since")
            .map(|s| handlers::instant("since", s, now))
            .transpose()?,
        until: given(q, "until")
            .map(|s| handlers::instant("until", s, now))
            .transpose()?,
        before: given(q, "before")
            .map(|b| {
                b.parse::<i64>()
                    .map_err(|_| bad_request("before: a number"))
            })
            .transpose()?,
    })
}

/// Entries of the activity log as the caller may see them (`Registry::events`).
pub(crate) async fn events(ctx: &Ctx, f: &EventFilter, limit: i64) -> Result<Vec<Event>, ApiError> {
    Ok(ctx
        .registry
        .events(f, limit, &ctx.caller.principal)
        .await?
        .into_iter()
        .map(handlers::event)
        .collect())
}

/// The query string without `before`, for the export links and the next page.
fn query_without_cursor(q: &HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = q.keys().filter(|k| *k != "before").collect();
    keys.sort();
    let mut s = form_urlencoded::Serializer::new(String::new());
    for k in keys {
        s.append_pair(k, &q[k]);
    }
    s.finish()
}

/// `/ui/activity`.
pub(crate) async fn page(ctx: Ctx, Query(q): Q) -> Response {
    let result = async {
        let f = filter(&ctx, &q)?;
        let raw = events(&ctx, &f, PAGE + 1).await?;
        let next = (raw.len() as i64 > PAGE)
            .then(|| raw.get(PAGE as usize - 1).map(|e| e.id))
            .flatten();
        let list: Vec<Event> = raw.into_iter().take(PAGE as usize).collect();
        let rest = query_without_cursor(&q);
        let older = next.map(|n| {
            let sep = if rest.is_empty() { "" } else { "&" };
            format!("/ui/activity?{rest}{sep}before={n}")
        });
        let value = |k: &str| q.get(k).cloned().unwrap_or_default();
        let body = html! {
            h1 { "Activity" }
            form.filter method="get" action="/ui/activity" role="search" {
                label { "Repository " input type="text" name="repository" value=(value("repository")); }
                label { "Action " input type="text" name="action" placeholder="tag or tag.delete" value=(value("action")); }
                label { "Since " input type="text" name="since" placeholder="24h or 2026-05-01" value=(value("since")); }
                label { "Until " input type="text" name="until" value=(value("until")); }
                button type="submit" data-testid="btn-filter" { "Filter" }
            }
            p {
                "Export this filter: "
                a href={ "/ui/activity.csv?" (rest) } data-testid="export-csv" { "CSV" } " · "
                a href={ "/ui/activity.json?" (rest) } data-testid="export-json" { "JSON" }
                span.note { " (newest first, at most " (EXPORT_LIMIT) " entries)" }
            }
            (activity_table(&list))
            @if let Some(href) = older {
                p { a href=(href) { "Older entries" } }
            }
        };
        Ok(ctx.page("Activity", body))
    }
    .await;
    ctx.finish(result)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `/ui/activity.csv`.
pub(crate) async fn csv(ctx: Ctx, Query(q): Q) -> Response {
    let result = async {
        let list = events(&ctx, &filter(&ctx, &q)?, EXPORT_LIMIT).await?;
        let mut out = String::from("id,at,actor,source,action,repository,target,digest,reason\n");
        for e in &list {
            let row = [
                e.id.to_string(),
                e.at.clone(),
                e.actor.clone(),
                e.source.clone().unwrap_or_default(),
                e.action.clone(),
                e.repository.clone().unwrap_or_default(),
                e.target.clone().unwrap_or_default(),
                e.digest.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
            ];
            out.push_str(
                &row.iter()
                    .map(|f| csv_field(f))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            out.push('\n');
        }
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"shipshape-activity.csv\"",
                ),
            ],
            out,
        )
            .into_response())
    }
    .await;
    ctx.finish(result)
}

/// `/ui/activity.json`: the API's `EventList` body.
pub(crate) async fn json(ctx: Ctx, Query(q): Q) -> Response {
    let result = async {
        let list = events(&ctx, &filter(&ctx, &q)?, EXPORT_LIMIT).await?;
        Ok((
            [(
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"shipshape-activity.json\"",
            )],
            axum::Json(EventList {
                events: list,
                next: None,
            }),
        )
            .into_response())
    }
    .await;
    ctx.finish(result)
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(super::csv_field("plain"), "plain");
        assert_eq!(super::csv_field("a,b"), "\"a,b\"");
        assert_eq!(super::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
