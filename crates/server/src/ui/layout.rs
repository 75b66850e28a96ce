//! The frame every page shares (a link past the navigation, the navigation, who is logged in,
//! logout) and the small pieces pages are built from: sizes, times, digests, the storage bar.
//! The stylesheet, the icon and the one script (which follows a running run's page) are
//! compiled into the binary and served from `/ui/static/`: no CDN, nothing fetched elsewhere.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::Ctx;
use crate::api::model::UsageFigures;

const STYLE: &str = r#"
:root { --fg:#1d2330; --muted:#5b6475; --line:#d8dce3; --bg:#f6f7f9; --accent:#1f5fbf;
  --live:#2e7d32; --held:#f2a900; --grace:#8e99ab; --reclaim:#c62828; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui, sans-serif; color:var(--fg); background:var(--bg); }
header { background:#1d2330; color:#fff; display:flex; align-items:center; gap:1.5rem; padding:.6rem 1.2rem; flex-wrap:wrap; }
header a { color:#fff; text-decoration:none; }
header a:hover, header a:focus { text-decoration:underline; }
header .brand { font-weight:700; font-size:1.1rem; }
header nav { display:flex; gap:1rem; flex-wrap:wrap; }
header .who { margin-left:auto; display:flex; gap:.6rem; align-items:center; }
header .who button { background:none; border:1px solid #fff8; color:#fff; border-radius:4px; padding:.15rem .6rem; cursor:pointer; }
header .note { color:#c9d0dc; }
a.skip { position:absolute; left:-100vw; top:.4rem; z-index:10; background:#fff; color:var(--accent); padding:.3rem .7rem; border-radius:4px; }
a.skip:focus { left:1rem; }
main { max-width:1200px; margin:0 auto; padding:1rem 1.2rem 3rem; }
h1 { font-size:1.5rem; margin:.6rem 0 1rem; }
h2 { font-size:1.15rem; margin:1.6rem 0 .6rem; }
.progress { margin:.6rem 0 1rem; }
.progress label { display:block; margin-bottom:.3rem; }
.progress progress { width:100%; max-width:36rem; height:1rem; accent-color:var(--accent); }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
caption { text-align:left; font-weight:600; padding:.4rem 0; }
th, td { text-align:left; padding:.35rem .6rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef0f4; font-weight:600; }
td.num, th.num { text-align:right; white-space:nowrap; }
a { color:var(--accent); }
code, .digest { font-family:ui-monospace, monospace; font-size:.9em; }
.badge { display:inline-block; font-size:.75rem; padding:0 .4rem; border-radius:3px; background:#e3e7ee; margin-left:.3rem; }
.badge.protected { background:#fff0c2; border:1px solid #e0b400; }
.badge.conflict { background:#ffd9d9; }
.note { color:var(--muted); }
.error { color:#a00; background:#fff0f0; border:1px solid #f3c0c0; padding:.5rem .8rem; border-radius:4px; }
.ok { color:#155724; background:#eaf6ec; border:1px solid #b9e0c0; padding:.5rem .8rem; border-radius:4px; }
.cards { display:flex; gap:1rem; flex-wrap:wrap; margin:.8rem 0; }
nav.tabs { display:flex; gap:1rem; border-bottom:1px solid var(--line); padding-bottom:.3rem; margin-bottom:.6rem; }
.visually-hidden { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); }
.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:.7rem 1rem; min-width:12rem; }
.card .label { color:var(--muted); font-size:.85rem; }
.card .value { font-size:1.25rem; font-weight:600; }
.bar { display:flex; height:1.4rem; border-radius:4px; overflow:hidden; border:1px solid var(--line); background:#fff; margin:.5rem 0; }
.bar span { display:block; height:100%; }
.swatch { display:inline-block; width:.8rem; height:.8rem; border-radius:2px; margin-right:.35rem; vertical-align:-1px; }
.live { background:var(--live); } .held { background:var(--held); } .grace { background:var(--grace); } .reclaim { background:var(--reclaim); }
form.inline { display:inline; }
button, .button { font:inherit; padding:.3rem .8rem; border-radius:4px; border:1px solid #9aa3b2; background:#fff; cursor:pointer; color:var(--fg); text-decoration:none; }
button.danger { background:#c62828; border-color:#a31d1d; color:#fff; }
button.primary { background:var(--accent); border-color:#17489a; color:#fff; }
form.login { display:grid; gap:.4rem; max-width:20rem; }
form.login input { font:inherit; padding:.35rem; }
form.filter { display:flex; gap:.5rem; align-items:end; margin-bottom:.8rem; flex-wrap:wrap; }
form.filter input, form.filter select { font:inherit; padding:.25rem; }
ul.plain { list-style:none; padding:0; }
form.editor fieldset { border:1px solid var(--line); border-radius:6px; background:#fff; margin:0 0 .8rem; padding:.5rem 1rem .8rem; display:grid; grid-template-columns:minmax(10rem, 16rem) 1fr; gap:.45rem 1rem; align-items:start; }
form.editor legend { font-weight:600; padding:0 .3rem; }
form.editor input, form.editor textarea { font:inherit; padding:.3rem; max-width:32rem; }
form.editor textarea { font-family:ui-monospace, monospace; min-height:3.2rem; }
form.editor .hint, form.editor .field-error { grid-column:2; margin:-.3rem 0 .2rem; font-size:.85rem; }
.field-error { color:#a00; }
ul.presets li { margin:.3rem 0; }
pre.document { background:#fff; border:1px solid var(--line); border-radius:4px; padding:.6rem .8rem; overflow:auto; }
progress { width:20rem; }
figure.chart { margin:.6rem 0; background:#fff; border:1px solid var(--line); border-radius:6px; padding:.6rem .8rem; }
figure.chart > svg { display:block; width:100%; height:auto; }
.chart .grid { stroke:var(--line); stroke-width:1; }
.chart text.axis { fill:var(--muted); font-size:12px; }
.chart polygon.live { fill:var(--live); } .chart polygon.held { fill:var(--held); }
.chart polygon.grace { fill:var(--grace); } .chart polygon.reclaim { fill:var(--reclaim); }
.chart .freed { fill:none; stroke:var(--fg); stroke-width:2; stroke-dasharray:6 4; }
.chart figcaption { display:flex; flex-wrap:wrap; gap:.3rem 1.2rem; font-size:.9rem; margin-top:.4rem; }
.chart svg.key { vertical-align:middle; margin-right:.35rem; }
details > summary { cursor:pointer; }
"#;

/// The icon browsers show in the tab (without one they ask for `/favicon.ico`, which is no
/// page of the registry, and log its 404 as an error on every first visit).
const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1d2330"/><path d="M15 5v15H8z" fill="#fff"/><path d="M17 9l7 11h-7z" fill="#9ec1f5"/><path d="M5 22h22l-3 5H8z" fill="#4a8ae8"/></svg>"##;

/// `/ui/static/icon.svg`.
pub(crate) async fn icon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        ICON,
    )
        .into_response()
}

/// What a page following a running run loads (`/ui/static/follow.js`). A page that reloaded
/// itself every second would take a screen reader back to the top and the keyboard's focus off
/// the Cancel button each time (axe's `meta-refresh`, WCAG 2.2.1). Instead, every interval the
/// script fetches the page again: while the run still runs it replaces only the parts marked
/// `data-live` (state, phases, figures), leaving the focus and the reading position where they
/// are; once the run has ended it loads the page once, with all it then shows. Without
/// scripts the page says so and offers a reload link: a `<meta http-equiv=refresh>` there
/// would fail WCAG 2.2.1 (a page must not reload itself on a time limit the user cannot
/// turn off) for the very users who read without scripts.
const FOLLOW: &str = r#"(function () {
  'use strict';
  var every = Number(document.body.getAttribute('data-follow'));
  if (!every) { return; }
  function poll() {
    fetch(location.href, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { return r.text(); })
      .then(function (text) {
        var next = new DOMParser().parseFromString(text, 'text/html');
        if (!next.body || !next.body.hasAttribute('data-follow')) {
          location.reload();
          return;
        }
        document.querySelectorAll('[data-live]').forEach(function (el) {
          var now = next.querySelector('[data-live="' + el.getAttribute('data-live') + '"]');
          if (now && now.innerHTML !== el.innerHTML) { el.innerHTML = now.innerHTML; }
        });
        setTimeout(poll, every);
      })
      .catch(function () { setTimeout(poll, every); });
  }
  setTimeout(poll, every);
})();
"#;

/// `/ui/static/follow.js`.
pub(crate) async fn follow_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        FOLLOW,
    )
        .into_response()
}

/// `/ui/static/style.css`.
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// A whole page: the frame around `body`; `refresh`: the page follows a running run, looking
/// again every that many seconds (`FOLLOW`).
pub(crate) fn page(ctx: &Ctx, title: &str, body: Markup, refresh: Option<u32>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh.is_some() {
                    script src="/ui/static/follow.js" defer {}
                }
                title { (title) " · Shipshape" }
                link rel="stylesheet" href="/ui/static/style.css";
                link rel="icon" href="/ui/static/icon.svg" type="image/svg+xml";
            }
            body data-follow=[refresh.map(|s| s * 1000)] {
                a.skip href="#main" { "Skip to the content" }
                header {
                    a.brand href="/ui" { "Shipshape" }
                    nav aria-label="Main" {
                        a href="/ui" { "Overview" }
                        a href="/ui/repositories" { "Repositories" }
                        a href="/ui/deleted" { "Recently deleted" }
                        a href="/ui/gc" { "Storage and GC" }
                        a href="/ui/policies" { "Policies" }
                        a href="/ui/activity" { "Activity" }
                        @if ctx.may(shipshape_meta::principal::Permission::ManageAccounts, None) {
                            a href="/ui/users" data-testid="nav-users" { "Users" }
                            a href="/ui/robots" data-testid="nav-robots" { "Robots" }
                        }
                    }
                    div.who {
                        @if let Some(name) = ctx.user() {
                            span data-testid="whoami" { "Logged in as " strong { (name) } }
                            form.inline method="post" action="/ui/logout" {
                                (ctx.csrf_field())
                                button type="submit" data-testid="btn-logout" { "Log out" }
                            }
                        } @else if !ctx.caller.enabled {
                            span.note data-testid="whoami" { "Access control is off" }
                        } @else {
                            a href="/ui/login" { "Log in" }
                        }
                    }
                }
                main #main {
                    @if let Some(taken) = ctx.registry.stale_figures() {
                        (stale_figures(taken, ctx.registry.now(), &ctx.here))
                    }
                    @if refresh.is_some() {
                        noscript {
                            p.note data-testid="no-script-follow" {
                                "This page follows the run with JavaScript, which is off: "
                                a href=(ctx.here) { "reload it" }
                                " to see how the run stands."
                            }
                        }
                    }
                    (body)
                }
            }
        }
    }
}

/// The note on a page drawn with the last storage figures taken, while current ones are
/// being taken (`Registry::for_pages`).
fn stale_figures(taken: shipshape_meta::Millis, now: shipshape_meta::Millis, here: &str) -> Markup {
    let t = crate::api::model::time(taken);
    let ago = (now - taken).max(0) / 1000;
    html! {
        p.note role="status" data-testid="figures-stale" {
            "Storage figures on this page are from "
            time datetime=(t) title=(t) { (t.get(11..19).unwrap_or(&t)) " UTC" }
            " (" (ago) " s ago): a change or the passing of a grace or restore deadline has moved \
            them since, and they are being taken again. "
            a href=(here) { "Reload" } " in a moment for current ones."
        }
    }
}

/// Bytes in binary units, the exact figure kept in `value` (and shown on hover).
pub(crate) fn bytes(n: u64) -> Markup {
    html! { data value=(n) title={ (n) " bytes" } { (human(n)) } }
}

/// Bytes in binary units as text.
pub(crate) fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// An RFC 3339 time as the API gives it, shown to the minute in UTC.
pub(crate) fn when(t: &str) -> Markup {
    let shown = t.get(..16).unwrap_or(t).replace('T', " ");
    html! { time datetime=(t) title=(t) { (shown) " UTC" } }
}

/// An optional time; "never" when absent.
pub(crate) fn when_or_never(t: Option<&str>) -> Markup {
    match t {
        Some(t) => when(t),
        None => html! { span.note { "never" } },
    }
}

/// A digest shortened for a table, the whole one on hover.
pub(crate) fn digest(d: &str) -> Markup {
    let short = match d.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", hex.get(..12).unwrap_or(hex)),
        None => d.to_string(),
    };
    html! { code.digest title=(d) { (short) } }
}

/// The stacked storage bar with its four figures; `stored_bytes` is their sum.
pub(crate) fn storage_bar(u: &UsageFigures) -> Markup {
    let total = u.stored_bytes.max(1) as f64;
    let pct = |n: u64| format!("width:{:.2}%", n as f64 * 100.0 / total);
    let parts = [
        ("live", "Live", u.in_use_bytes, "stat-live"),
        (
            "held",
            "Held for restore",
            u.held_for_restore_bytes,
            "stat-held",
        ),
        ("grace", "In grace", u.in_grace_bytes, "stat-grace"),
        (
            "reclaim",
            "Reclaimable now",
            u.reclaimable_bytes,
            "stat-reclaimable",
        ),
    ];
    html! {
        div.bar role="img" aria-label={
            "Storage: " (human(u.in_use_bytes)) " live, " (human(u.held_for_restore_bytes))
            " held for restore, " (human(u.in_grace_bytes)) " in grace, "
            (human(u.reclaimable_bytes)) " reclaimable now"
        } {
            @for (class, label, n, _) in parts {
                @if n > 0 { span class=(class) style=(pct(n)) title=(label) {} }
            }
        }
        div.cards {
            div.card {
                div.label { "Stored" }
                div.value data-testid="stat-stored" { (bytes(u.stored_bytes)) }
            }
            @for (class, label, n, id) in parts {
                div.card {
                    div.label { span class={ "swatch " (class) } {} (label) }
                    div.value data-testid=(id) { (bytes(n)) }
                }
            }
        }
    }
}
