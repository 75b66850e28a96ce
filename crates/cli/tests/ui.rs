//! The web UI end to end in headless Chromium, driven through WebDriver (Debian's
//! `chromedriver`, started per test on a free loopback port; `SHIPSHAPE_TEST_CHROMEDRIVER` and
//! `SHIPSHAPE_TEST_CHROMIUM` name the programs, and a missing one fails the test, never skips
//! it). Images are pushed over HTTP by the harness; everything else is done as a person would,
//! by clicking, and each figure the pages show is checked against the management API's.
//! `SHIPSHAPE_TEST_AXE` names axe-core's `axe.min.js`, which one test injects into every page.

mod common;

use std::os::unix::process::CommandExt;

use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use common::{ShiftedClock, TestServer, push_image_bytes, require_tool, wait_until};
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const ADMIN: (&str, &str) = ("admin", "admin-password-1");
const PASSWORD: &str = "a-long-password";

/// A chromedriver process this test started, in a process group of its own; the whole group
/// is killed when dropped. Killing chromedriver alone left its Chromium processes behind
/// (about ninety a test, over a thousand after a few runs of the suite).
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: kill(2) with the negated id of the group the child leads; no memory involved.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// Chromium under chromedriver, with a profile of its own.
struct Chrome {
    b: Browser,
    base: String,
    /// chromedriver's own address, for the commands fantoccini does not know (the browser's
    /// log, DevTools commands).
    driver_url: String,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A program's full path: as given, or found on `PATH`.
fn full_path(p: std::path::PathBuf) -> std::path::PathBuf {
    if p.components().count() > 1 {
        return p;
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(&p))
                .find(|c| c.exists())
        })
        .expect("require_tool found it on PATH")
}

impl Chrome {
    async fn start(base: &str) -> Chrome {
        let driver_path = require_tool("SHIPSHAPE_TEST_CHROMEDRIVER", "chromedriver");
        let chromium = full_path(require_tool("SHIPSHAPE_TEST_CHROMIUM", "chromium"));
        let port = free_port();
        let driver = Driver(
            std::process::Command::new(&driver_path)
                .process_group(0)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", driver_path.display())),
        );
        let profile = tempfile::tempdir().unwrap();
        let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            // The browser's console and network log, read through chromedriver's `se/log`.
            "goog:loggingPrefs": {"browser": "ALL"},
        }))
        .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let (caps, url) = (&caps, &url);
        let b = wait_until("chromedriver to start a browser session", || async move {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(url)
                .await
                .ok()
        })
        .await;
        Chrome {
            b,
            base: base.to_string(),
            driver_url: url.clone(),
            _driver: driver,
            _profile: profile,
        }
    }

    async fn goto(&self, path: &str) {
        self.b.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn path(&self) -> String {
        let u = self.b.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    /// The element `selector` names, once the page shows it: a click that submits a form
    /// returns before the next page has loaded, so this polls rather than look once.
    async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        let b = &self.b;
        wait_until(&format!("{selector} to be on the page"), || async move {
            b.find(Locator::Css(selector)).await.ok()
        })
        .await
    }

    async fn has(&self, selector: &str) -> bool {
        !self
            .b
            .find_all(Locator::Css(selector))
            .await
            .unwrap()
            .is_empty()
    }

    async fn click(&self, selector: &str) {
        self.css(selector).await.click().await.unwrap();
    }

    /// Clicks a link or a form's button and waits for the page it leads to (every one of the
    /// UI's links and forms leads to another URL), so nothing is read off the page left.
    async fn follow(&self, selector: &str) {
        let before = self.b.current_url().await.unwrap();
        self.click(selector).await;
        let b = &self.b;
        let before = &before;
        wait_until(&format!("the page {selector} leads to"), || async move {
            let now = b.current_url().await.ok()?;
            let ready = b.execute("return document.readyState", vec![]).await.ok()?;
            (now != *before && ready == "complete").then_some(())
        })
        .await;
    }

    async fn testid(&self, id: &str) -> fantoccini::elements::Element {
        self.css(&format!("[data-testid=\"{id}\"]")).await
    }

    async fn text(&self, id: &str) -> String {
        self.testid(id).await.text().await.unwrap()
    }

    /// The exact byte figure of a `<data>` under the element with this test id.
    async fn bytes(&self, id: &str) -> u64 {
        let el = self.css(&format!("[data-testid=\"{id}\"] data")).await;
        el.attr("value")
            .await
            .unwrap()
            .expect("a value")
            .parse()
            .unwrap()
    }

    async fn login(&self, user: &str, password: &str) {
        self.goto("/ui/login").await;
        self.css("#username").await.send_keys(user).await.unwrap();
        self.css("#password")
            .await
            .send_keys(password)
            .await
            .unwrap();
        self.follow("[data-testid=btn-login]").await;
        let path = self.path().await;
        assert!(
            !path.starts_with("/ui/login"),
            "still on the login page after logging in as {user}: {path}"
        );
    }

    /// Posts a form from the page's own origin with `fetch` (the session cookie goes with it,
    /// as with a form on the page) and returns the status.
    async fn post(&self, path: &str, body: &str) -> u16 {
        let v = self
            .b
            .execute(
                "return fetch(arguments[0], {method: 'POST', redirect: 'manual', \
                 headers: {'content-type': 'application/x-www-form-urlencoded'}, \
                 body: arguments[1]}).then(r => r.status);",
                vec![json!(path), json!(body)],
            )
            .await
            .unwrap();
        v.as_u64().unwrap() as u16
    }

    /// The CSRF token the page's forms carry.
    async fn csrf(&self) -> String {
        self.css("input[name=csrf]")
            .await
            .attr("value")
            .await
            .unwrap()
            .unwrap()
    }
}

fn client_as(user: &str, password: &str) -> Client {
    let mut headers = HeaderMap::new();
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {creds}")).unwrap(),
    );
    Client::builder().default_headers(headers).build().unwrap()
}

async fn api(c: &Client, s: &TestServer, method: Method, path: &str, body: Option<Value>) -> Value {
    let mut req = c.request(method.clone(), s.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v
}

/// A registry with access control on: the administrator, `reader` (read on team/**) and `dev`
/// (write on team/**); team/app holds v1, v2 and latest (= v2), secret/app holds v1.
async fn registry_with_users() -> (TestServer, Client, String, String) {
    let s = TestServer::start_with(|c| {
        c.first_admin = Some((ADMIN.0.into(), ADMIN.1.into()));
    })
    .await;
    let admin = client_as(ADMIN.0, ADMIN.1);
    for name in ["reader", "dev"] {
        api(
            &admin,
            &s,
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": name, "password": PASSWORD})),
        )
        .await;
    }
    for (subject, pattern, role) in [
        ("user:reader", "team/**", "read"),
        ("user:dev", "team/**", "write"),
    ] {
        api(
            &admin,
            &s,
            Method::POST,
            "/api/v1/roles",
            Some(json!({"subject": subject, "pattern": pattern, "role": role})),
        )
        .await;
    }
    let (v1, _) = push_image_bytes(&admin, &s.base, "team/app", "v1", 1).await;
    let (v2, _) = push_image_bytes(&admin, &s.base, "team/app", "v2", 2).await;
    push_image_bytes(&admin, &s.base, "team/app", "latest", 2).await;
    push_image_bytes(&admin, &s.base, "secret/app", "v1", 3).await;
    (s, admin, v1, v2)
}

async fn usage(c: &Client, s: &TestServer) -> Value {
    api(c, s, Method::GET, "/api/v1/usage", None).await["total"].clone()
}

async fn tag_exists(c: &Client, s: &TestServer, tag: &str) -> bool {
    let resp = c
        .get(s.url(&format!("/api/v1/repositories/team/app/-/tags/{tag}")))
        .send()
        .await
        .unwrap();
    match resp.status() {
        StatusCode::OK => true,
        StatusCode::NOT_FOUND => false,
        other => panic!("GET tag {tag}: {other}"),
    }
}

#[tokio::test]
async fn log_in_delete_through_the_plan_see_the_figures_move_and_undo() {
    let (s, admin, v1, _) = registry_with_users().await;
    let ui = Chrome::start(&s.base).await;

    // `/` goes to the UI, which asks for a login first and comes back after it.
    ui.goto("/").await;
    assert!(
        ui.path().await.starts_with("/ui/login"),
        "{}",
        ui.path().await
    );
    ui.css("#username").await.send_keys(ADMIN.0).await.unwrap();
    ui.css("#password")
        .await
        .send_keys("wrong-password")
        .await
        .unwrap();
    ui.follow("[data-testid=btn-login]").await;
    assert!(
        ui.text("error-message")
            .await
            .contains("wrong user name or password")
    );
    ui.login(ADMIN.0, ADMIN.1).await;
    assert_eq!(ui.path().await, "/ui");
    assert!(ui.text("whoami").await.contains(ADMIN.0));

    // The overview's figures are the API's.
    let before = usage(&admin, &s).await;
    assert_eq!(
        ui.bytes("stat-stored").await,
        before["stored_bytes"].as_u64().unwrap()
    );
    assert_eq!(
        ui.bytes("stat-live").await,
        before["in_use_bytes"].as_u64().unwrap()
    );
    assert_eq!(ui.bytes("stat-held").await, 0);
    assert_eq!(ui.text("stat-tags").await, "4");
    let mut parts = 0;
    for id in ["stat-live", "stat-held", "stat-grace", "stat-reclaimable"] {
        parts += ui.bytes(id).await;
    }
    assert_eq!(
        parts,
        ui.bytes("stat-stored").await,
        "the bar's parts add up"
    );

    // Select v1 on the repository page: the plan says it goes, with its image, and holds
    // bytes for restore; nothing is deleted yet.
    ui.goto("/ui/repositories/team/app").await;
    ui.click("#select-v1").await;
    ui.follow("[data-testid=btn-delete-selected]").await;
    assert!(
        ui.path()
            .await
            .starts_with("/ui/repositories/team/app/-/delete?tag=v1")
    );
    let row = ui.text("plan-tag-v1").await;
    assert!(row.contains("loses its last tag"), "{row}");
    let planned_held = ui.bytes("plan-held").await;
    assert!(planned_held > 0);
    assert!(tag_exists(&admin, &s, "v1").await, "a plan deletes nothing");
    assert_eq!(ui.text("btn-confirm").await, "Delete 1 tag");

    // Confirming runs exactly that plan; the figures move by what it said.
    ui.follow("[data-testid=btn-confirm]").await;
    assert!(ui.text("deleted-result").await.contains("v1"));
    assert_eq!(ui.bytes("result-held").await, planned_held);
    assert!(!tag_exists(&admin, &s, "v1").await);
    let after = usage(&admin, &s).await;
    assert_eq!(
        after["held_for_restore_bytes"].as_u64().unwrap(),
        planned_held
    );
    // The overview, in a second tab (the result page answered a POST, which going back to
    // would post again), shows the move.
    let result_tab = ui.b.window().await.unwrap();
    let tab = ui.b.new_window(true).await.unwrap();
    ui.b.switch_to_window(tab.handle).await.unwrap();
    ui.goto("/ui").await;
    assert_eq!(ui.bytes("stat-held").await, planned_held);
    assert_eq!(ui.text("stat-tags").await, "3");
    assert!(ui.text("activity").await.contains("tag.delete"));
    ui.b.close_window().await.unwrap();
    ui.b.switch_to_window(result_tab).await.unwrap();

    // Undo from the result page brings v1 back to the same image.
    ui.follow("[data-testid=btn-undo]").await;
    assert!(ui.text("restored").await.contains("v1"));
    let tag = api(
        &admin,
        &s,
        Method::GET,
        "/api/v1/repositories/team/app/-/tags/v1",
        None,
    )
    .await;
    assert_eq!(tag["digest"], v1);
    ui.goto("/ui").await;
    assert_eq!(ui.bytes("stat-held").await, 0);

    // Deleting v2 keeps its image (latest still points at it), and the plan says so.
    ui.goto("/ui/repositories/team/app").await;
    ui.follow("[data-testid=delete-v2]").await;
    let row = ui.text("plan-tag-v2").await;
    assert!(row.contains("stays: also tagged latest"), "{row}");
    assert_eq!(ui.bytes("plan-held").await, 0);
    ui.follow("[data-testid=btn-confirm]").await;
    assert!(!tag_exists(&admin, &s, "v2").await);

    // Recently deleted lists it with its deadline; Restore brings it back.
    ui.goto("/ui/deleted").await;
    assert!(
        ui.text("row-restorable-team/app:v2")
            .await
            .contains("deleted")
    );
    ui.follow("[data-testid=restore-v2]").await;
    assert!(ui.text("restored").await.contains("v2"));
    assert!(tag_exists(&admin, &s, "v2").await);

    // Logging out ends the session: the UI asks for a login again.
    ui.follow("[data-testid=btn-logout]").await;
    ui.goto("/ui/repositories").await;
    assert!(
        ui.path().await.starts_with("/ui/login"),
        "{}",
        ui.path().await
    );
}

#[tokio::test]
async fn a_reader_sees_no_delete_controls_and_a_forged_post_is_refused() {
    let (s, admin, v1, _) = registry_with_users().await;
    let ui = Chrome::start(&s.base).await;
    ui.login("reader", PASSWORD).await;

    ui.goto("/ui/repositories/team/app").await;
    assert!(
        ui.has("[data-testid=row-tag-v1]").await,
        "the reader sees the tags"
    );
    assert!(!ui.has("[data-testid=btn-delete-selected]").await);
    assert!(!ui.has("input[type=checkbox]").await);
    assert!(!ui.has("[data-testid=delete-v1]").await);
    ui.goto("/ui/gc").await;
    assert!(!ui.has("[data-testid=btn-gc-preview]").await);
    ui.goto(&format!("/ui/repositories/team/app/-/manifests/{v1}"))
        .await;
    ui.testid("manifest-digest").await;
    assert!(!ui.has("[data-testid=btn-delete-manifest]").await);

    // What the reader may not read is not shown, nor its activity.
    ui.goto("/ui/repositories").await;
    assert!(ui.has("[data-testid=\"row-repo-team/app\"]").await);
    assert!(!ui.has("[data-testid=\"row-repo-secret/app\"]").await);
    ui.goto("/ui/repositories/secret/app").await;
    assert!(
        ui.text("error-message")
            .await
            .contains("may not read secret/app")
    );
    ui.goto("/ui/activity").await;
    let activity = ui.text("activity").await;
    assert!(
        activity.contains("team/app") && !activity.contains("secret/app"),
        "{activity}"
    );

    // The plan pages themselves are refused.
    ui.goto("/ui/repositories/team/app/-/delete?tag=v1").await;
    assert!(
        ui.text("error-message")
            .await
            .contains("may not delete tags")
    );
    ui.goto(&format!(
        "/ui/repositories/team/app/-/manifests/{v1}/delete"
    ))
    .await;
    assert!(
        ui.text("error-message")
            .await
            .contains("may not delete manifests")
    );

    // A POST made by hand, with the reader's own valid CSRF token, is refused by the server.
    ui.goto("/ui").await;
    let csrf = ui.csrf().await;
    let status = ui
        .post(
            "/ui/repositories/team/app/-/delete",
            &format!("csrf={csrf}&item=v1%40{v1}"),
        )
        .await;
    assert_eq!(status, 403);
    let status = ui.post("/ui/gc/preview", &format!("csrf={csrf}")).await;
    assert_eq!(status, 403);
    let status = ui
        .post(
            &format!("/ui/repositories/team/app/-/manifests/{v1}/delete/confirm"),
            &format!("csrf={csrf}&planned=1&tag=v1"),
        )
        .await;
    assert_eq!(status, 403);
    assert!(tag_exists(&admin, &s, "v1").await);
    let runs = api(&admin, &s, Method::GET, "/api/v1/gc/runs", None).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 0, "{runs}");
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused() {
    let (s, admin, v1, _) = registry_with_users().await;
    let ui = Chrome::start(&s.base).await;
    ui.login(ADMIN.0, ADMIN.1).await;
    let item = format!("item=v1%40{v1}");
    assert_eq!(
        ui.post("/ui/repositories/team/app/-/delete", &item).await,
        403
    );
    let wrong = format!("csrf={}&{item}", "0".repeat(64));
    assert_eq!(
        ui.post("/ui/repositories/team/app/-/delete", &wrong).await,
        403
    );
    let manifest = format!("/ui/repositories/team/app/-/manifests/{v1}/delete/confirm");
    assert_eq!(ui.post(&manifest, "planned=1&tag=v1").await, 403);
    assert!(tag_exists(&admin, &s, "v1").await);

    // With the session's token the same POST works: the refusal was the token's.
    let csrf = ui.csrf().await;
    let ok = format!("csrf={csrf}&{item}");
    assert_eq!(
        ui.post("/ui/repositories/team/app/-/delete", &ok).await,
        200
    );
    assert!(!tag_exists(&admin, &s, "v1").await);
}

#[tokio::test]
async fn without_access_control_the_ui_needs_no_login_and_still_checks_forms() {
    let s = TestServer::start().await;
    let c = common::client();
    push_image_bytes(&c, &s.base, "team/app", "v1", 1).await;
    let ui = Chrome::start(&s.base).await;
    ui.goto("/").await;
    assert_eq!(ui.path().await, "/ui");
    assert_eq!(ui.text("whoami").await, "Access control is off");
    ui.goto("/ui/repositories").await;
    assert!(ui.has("[data-testid=\"row-repo-team/app\"]").await);
    // No other site may frame a page (a hidden delete button under a decoy), and pages with a
    // session's token stay out of caches.
    let page = c.get(s.url("/ui")).send().await.unwrap();
    assert_eq!(common::header(&page, "x-frame-options"), Some("DENY"));
    assert!(
        common::header(&page, "content-security-policy")
            .is_some_and(|v| v.contains("frame-ancestors 'none'"))
    );
    assert_eq!(common::header(&page, "cache-control"), Some("no-store"));
    assert!(
        common::header(&page, "set-cookie")
            .is_some_and(|v| v.contains("HttpOnly") && v.contains("SameSite=Strict"))
    );
    // A form posted from elsewhere (no session, no token) is refused.
    let resp = c
        .post(s.url("/ui/repositories/team/app/-/delete"))
        .form(&[("item", "v1@sha256:00")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        common::oci_tags(&s.base, "team/app").await.unwrap(),
        vec!["v1"]
    );
}

#[tokio::test]
async fn the_repository_list_sorts_and_filters_from_the_url() {
    let s = TestServer::start().await;
    let c = common::client();
    push_image_bytes(&c, &s.base, "alpha/one", "v1", 1).await;
    push_image_bytes(&c, &s.base, "beta/two", "v1", 2).await;
    push_image_bytes(&c, &s.base, "beta/two", "v2", 3).await;
    let ui = Chrome::start(&s.base).await;
    let names = |ui: &Chrome| {
        let b = ui.b.clone();
        async move {
            let rows = b
                .find_all(Locator::Css(
                    "[data-testid=repositories] tbody tr td:first-child",
                ))
                .await
                .unwrap();
            let mut out = Vec::new();
            for r in rows {
                out.push(r.text().await.unwrap());
            }
            out
        }
    };
    ui.goto("/ui/repositories?sort=tags&dir=desc").await;
    assert_eq!(names(&ui).await, ["beta/two", "alpha/one"]);
    let sorted = ui.css("th[aria-sort]").await;
    assert_eq!(
        sorted.attr("aria-sort").await.unwrap().as_deref(),
        Some("descending")
    );
    // Clicking the sorted column's header flips the order, in the URL too.
    ui.follow("[data-testid=sort-tags]").await;
    assert!(ui.path().await.contains("dir=asc"), "{}", ui.path().await);
    assert_eq!(names(&ui).await, ["alpha/one", "beta/two"]);
    ui.goto("/ui/repositories?q=beta").await;
    assert_eq!(names(&ui).await, ["beta/two"]);
}

/// The state a GC run's page shows once the run is no longer running (the page follows it).
async fn run_state_once_finished(ui: &Chrome) -> String {
    let b = ui.b.clone();
    wait_until("the run page to show the run finished", || {
        let b = b.clone();
        async move {
            let el = b.find(Locator::Css("[data-testid=run-state]")).await.ok()?;
            let state = el.text().await.ok()?;
            (state != "running").then_some(state)
        }
    })
    .await
}

#[tokio::test]
async fn empty_garbage_previews_then_runs_and_the_page_follows_it_to_the_end() {
    let clock = ShiftedClock::default();
    let s = TestServer::start_with_shifted_clock(&clock, |c| {
        c.gc.workers = 0;
        c.gc.review_delay = Duration::from_secs(3600);
        c.gc.lease = Duration::from_secs(3600);
        c.restore_window = Duration::from_secs(3600);
    })
    .await;
    let c = common::client();
    push_image_bytes(&c, &s.base, "team/app", "v1", 1).await;
    push_image_bytes(&c, &s.base, "team/app", "v2", 2).await;
    let ui = Chrome::start(&s.base).await;

    // Delete v1 through the UI, then let the restore window and the grace pass.
    ui.goto("/ui/repositories/team/app/-/delete?tag=v1").await;
    ui.follow("[data-testid=btn-confirm]").await;
    clock.advance(3 * 3600 * 1000);
    let reclaimable = s.api_ok("/api/v1/usage").await["total"]["reclaimable_bytes"]
        .as_u64()
        .unwrap();
    assert!(reclaimable > 0);
    ui.goto("/ui/gc").await;
    assert_eq!(ui.bytes("gc-reclaimable").await, reclaimable);

    // The preview is a dry run: it lists what would go and deletes nothing.
    ui.follow("[data-testid=btn-gc-preview]").await;
    assert_eq!(run_state_once_finished(&ui).await, "succeeded");
    assert_eq!(ui.bytes("run-bytes").await, reclaimable);
    assert!(ui.has("[data-testid=run-items]").await);
    assert_eq!(
        s.api_ok("/api/v1/usage").await["total"]["reclaimable_bytes"],
        reclaimable
    );

    // Empty garbage now: the run page refreshes itself until the run is done.
    ui.follow("[data-testid=btn-gc-start]").await;
    assert_eq!(run_state_once_finished(&ui).await, "succeeded");
    assert_eq!(ui.bytes("run-bytes").await, reclaimable);
    let total = s.api_ok("/api/v1/usage").await["total"].clone();
    assert_eq!(total["reclaimable_bytes"], 0);
    ui.goto("/ui").await;
    assert_eq!(ui.bytes("stat-reclaimable").await, 0);
    assert!(ui.text("last-gc").await.contains("succeeded"));
    ui.goto("/ui/gc").await;
    assert_eq!(
        ui.b.find_all(Locator::Css("[data-testid=gc-runs] tbody tr"))
            .await
            .unwrap()
            .len(),
        2
    );
    // v2 is untouched.
    assert_eq!(
        common::oci_tags(&s.base, "team/app").await.unwrap(),
        vec!["v2"]
    );
}

/// The exact byte figure of the `<data>` in the cell `cell` of the chart table's row `row`.
async fn sample_bytes(ui: &Chrome, row: usize, cell: &str) -> u64 {
    let el = ui
        .css(&format!(
            "[data-testid=sample-{row}] [data-testid=sample-{cell}] data"
        ))
        .await;
    el.attr("value").await.unwrap().unwrap().parse().unwrap()
}

/// The overview's chart of the storage figures over time: each garbage collection run's end
/// records the figures the API gives at that moment, and the chart's table shows them with
/// what the runs freed; the drop in stored bytes is what the run freed.
#[tokio::test]
async fn the_overview_charts_the_stored_and_freed_bytes_the_api_gave_as_each_run_ended() {
    let clock = ShiftedClock::default();
    let s = TestServer::start_with_shifted_clock(&clock, |c| {
        c.gc.workers = 0;
        c.gc.review_delay = Duration::from_secs(3600);
        c.gc.lease = Duration::from_secs(3600);
        c.restore_window = Duration::from_secs(3600);
        // No samples on a schedule: every sample is a run's, taken at a known point.
        c.usage_sample_interval = Duration::ZERO;
    })
    .await;
    let c = common::client();
    let ui = Chrome::start(&s.base).await;
    ui.goto("/ui").await;
    let empty = ui.text("storage-history-empty").await;
    assert!(
        empty.contains("No storage figures have been recorded yet")
            && empty.contains("as garbage collection runs end"),
        "{empty}"
    );
    assert!(!ui.has("[data-testid=storage-chart]").await);

    // A run with nothing to free: its sample is the registry as pushed.
    push_image_bytes(&c, &s.base, "team/app", "v1", 1).await;
    push_image_bytes(&c, &s.base, "team/app", "v2", 2).await;
    let first = common::gc_run_to_end(&s.base, &json!({})).await;
    assert_eq!(first["state"], "succeeded");
    assert_eq!(first["figures"]["bytes_deleted"], 0);
    let before = s.api_ok("/api/v1/usage").await["total"].clone();
    ui.goto("/ui").await;
    assert!(
        ui.text("storage-history-empty")
            .await
            .contains("One sample so far"),
    );
    assert_eq!(
        ui.bytes("storage-history-empty").await,
        before["stored_bytes"].as_u64().unwrap()
    );

    // v1 deleted, its restore window and grace passed: a run frees its image.
    let (status, _) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/team/app/-/tags/v1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    clock.advance(3 * 3600 * 1000);
    let second = common::gc_run_to_end(&s.base, &json!({})).await;
    assert_eq!(second["state"], "succeeded");
    let freed = second["figures"]["bytes_deleted"].as_u64().unwrap();
    assert!(freed > 0, "{second}");
    let after = s.api_ok("/api/v1/usage").await["total"].clone();
    let figure = |u: &Value, k: &str| u[k].as_u64().unwrap();
    assert_eq!(
        figure(&before, "stored_bytes") - figure(&after, "stored_bytes"),
        freed,
        "stored bytes dropped by what the run freed"
    );

    // The chart, described in words, and its table: each run's figures as the API gave them.
    ui.goto("/ui").await;
    let title = ui
        .css("[data-testid=storage-chart] svg[role=img] title")
        .await;
    let title = title.prop("textContent").await.unwrap().unwrap();
    assert!(
        title.starts_with("Bytes stored and bytes freed by garbage collection runs"),
        "{title}"
    );
    assert_eq!(
        ui.b.find_all(Locator::Css("[data-testid=storage-history] tbody tr"))
            .await
            .unwrap()
            .len(),
        2
    );
    for (row, usage, freed_so_far) in [(0, &before, 0), (1, &after, freed)] {
        for (cell, key) in [
            ("stored", "stored_bytes"),
            ("live", "in_use_bytes"),
            ("held", "held_for_restore_bytes"),
            ("grace", "in_grace_bytes"),
            ("reclaim", "reclaimable_bytes"),
        ] {
            assert_eq!(
                sample_bytes(&ui, row, cell).await,
                figure(usage, key),
                "sample {row}: {cell}"
            );
        }
        assert_eq!(sample_bytes(&ui, row, "freed").await, freed_so_far);
    }
    assert_eq!(ui.bytes("chart-freed").await, freed);

    // The table opens from its summary, and says which run each sample followed.
    ui.click("[data-testid=storage-history] summary").await;
    let last = ui.text("sample-1").await;
    assert!(
        last.contains(&format!("after GC run {}", second["id"])),
        "{last}"
    );
}

/// With a sampling interval, the figures are sampled on a schedule (the first at start): the
/// overview's newest sample catches up with a push.
#[tokio::test]
async fn the_storage_figures_are_sampled_on_a_schedule() {
    let s = TestServer::start_with(|c| {
        c.usage_sample_interval = Duration::from_secs(1);
    })
    .await;
    let c = common::client();
    push_image_bytes(&c, &s.base, "team/app", "v1", 1).await;
    let stored = s.api_ok("/api/v1/usage").await["total"]["stored_bytes"]
        .as_u64()
        .unwrap();
    assert!(stored > 0);
    let (c, url) = (&c, &s.url("/ui"));
    wait_until("a sample of the figures after the push", || async move {
        let page = c.get(url).send().await.unwrap().text().await.unwrap();
        let newest = page
            .rsplit("data-testid=\"sample-stored\"><data value=\"")
            .next()?
            .split('"')
            .next()?;
        (page.contains("data-testid=\"storage-chart\"") && newest == stored.to_string())
            .then_some(())
    })
    .await;
}

/// The exact byte figure of the element `id` on an HTML page, read from its `<data value>`.
fn figure_on(page: &str, id: &str) -> Option<u64> {
    page.split(&format!("data-testid=\"{id}\"><data value=\""))
        .nth(1)?
        .split('"')
        .next()?
        .parse()
        .ok()
}

/// Taking the storage figures walks the whole catalogue (seconds on a large registry): a page
/// waits for them at most `usage.page_wait`, then is drawn with the last figures taken and
/// says when those were taken, while they are taken again for the next view. The API always
/// waits for current ones.
#[tokio::test]
async fn a_page_is_drawn_with_the_last_figures_and_says_so_while_current_ones_are_taken() {
    let s = TestServer::start_with(|c| {
        // Never wait: every page after a change finds the figures being taken.
        c.usage_page_wait = Duration::ZERO;
        // No figures taken at start for the chart's schedule: the first page finds none.
        c.usage_sample_interval = Duration::ZERO;
    })
    .await;
    let c = common::client();
    push_image_bytes(&c, &s.base, "team/app", "v1", 1).await;
    push_image_bytes(&c, &s.base, "team/app", "v2", 2).await;
    let page = |path: &'static str| {
        let (c, url) = (&c, s.url(path));
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let stale = |page: &str| page.contains("data-testid=\"figures-stale\"");
    let delete = |tag: &'static str| {
        let s = &s;
        async move {
            let path = format!("/api/v1/repositories/team/app/-/tags/{tag}");
            let (status, _) = s.api(Method::DELETE, &path, None).await;
            assert_eq!(status, StatusCode::OK);
        }
    };
    // Nothing taken yet: the first page waits for the figures, whatever the setting.
    let first = page("/ui").await;
    assert!(!stale(&first), "{first}");
    let stored = figure_on(&first, "stat-stored").unwrap();
    assert!(stored > 0);
    assert_eq!(figure_on(&first, "stat-held"), Some(0));
    // Unchanged since: current, no note.
    assert!(!stale(&page("/ui/gc").await));
    assert!(!stale(&page("/ui/repositories").await));

    // Each deletion moves an image to "held for restore"; the next page (whichever reads the
    // figures) is drawn with the figures from before it and says when they were taken.
    delete("v1").await;
    let list = page("/ui/repositories").await;
    assert!(stale(&list), "{list}");
    assert!(list.contains("Reload"), "{list}");
    // The API waits for current figures ...
    let held_v1 = s.api_ok("/api/v1/usage").await["total"]["held_for_restore_bytes"]
        .as_u64()
        .unwrap();
    assert!(held_v1 > 0);
    // ... after which pages are current again.
    assert!(!stale(&page("/ui/repositories").await));

    delete("v2").await;
    let overview = page("/ui").await;
    assert!(stale(&overview), "{overview}");
    assert_eq!(figure_on(&overview, "stat-held"), Some(held_v1));
    let total = s.api_ok("/api/v1/usage").await["total"].clone();
    let held = total["held_for_restore_bytes"].as_u64().unwrap();
    assert!(held > held_v1, "{total}");
    let current = page("/ui").await;
    assert!(!stale(&current), "{current}");
    assert_eq!(figure_on(&current, "stat-held"), Some(held));
    assert_eq!(figure_on(&current, "stat-stored"), Some(stored));
}

#[tokio::test]
async fn the_activity_log_filters_from_the_url_and_exports_what_it_shows() {
    let s = TestServer::start().await;
    let c = common::client();
    push_image_bytes(&c, &s.base, "team/app", "v1", 1).await;
    push_image_bytes(&c, &s.base, "team/app", "v2", 2).await;
    push_image_bytes(&c, &s.base, "other/app", "v1", 3).await;
    let (status, _) = s
        .api(
            Method::DELETE,
            "/api/v1/repositories/team/app/-/tags/v1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ui = Chrome::start(&s.base).await;

    ui.goto("/ui/activity?repository=team/app&action=tag").await;
    let rows =
        ui.b.find_all(Locator::Css("[data-testid=activity] tbody tr"))
            .await
            .unwrap();
    let api = s
        .api_ok("/api/v1/events?repository=team/app&action=tag")
        .await;
    let api_events = api["events"].as_array().unwrap();
    assert!(!api_events.is_empty());
    assert_eq!(rows.len(), api_events.len());
    assert!(ui.text("activity").await.contains("tag.delete"));
    assert!(!ui.text("activity").await.contains("other/app"));

    // The exports carry the same filter and the same entries.
    let fetch = |path: String| {
        let b = ui.b.clone();
        async move {
            b.execute(
                "return fetch(arguments[0]).then(r => r.text());",
                vec![json!(path)],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
        }
    };
    let href = ui
        .testid("export-json")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let exported: Value = serde_json::from_str(&fetch(href).await).unwrap();
    assert_eq!(exported["events"], api["events"]);
    let href = ui
        .testid("export-csv")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let csv = fetch(href).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,at,actor,source,action,repository,target,digest,reason"
    );
    assert_eq!(lines.len(), api_events.len() + 1);
    assert!(
        lines.iter().any(|l| l.contains(",tag.delete,team/app,v1,")),
        "{csv}"
    );
}

#[tokio::test]
async fn a_protected_tag_is_badged_kept_by_the_plan_and_a_policy_preview_says_why() {
    let s = TestServer::start().await;
    let c = common::client();
    push_image_bytes(&c, &s.base, "team/app", "release-1", 1).await;
    push_image_bytes(&c, &s.base, "team/app", "ci-1", 2).await;
    push_image_bytes(&c, &s.base, "team/app", "ci-2", 3).await;
    let policy = "name = \"ci\"\nrepositories = [\"team/**\"]\n\n[tags]\nprotected = [\"release-*\"]\n\n\
                  [keep]\nlatest_pushed = 1\n\n[delete]\nolder_than = \"0s\"\n";
    let resp = c
        .put(s.url("/api/v1/policies/ci"))
        .body(policy)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let ui = Chrome::start(&s.base).await;

    ui.goto("/ui/repositories/team/app").await;
    assert!(ui.text("row-tag-release-1").await.contains("protected"));
    assert!(!ui.text("row-tag-ci-1").await.contains("protected"));

    // Planning to delete it with another tag: the plan keeps it and says why.
    ui.click("#select-release-1").await;
    ui.click("#select-ci-1").await;
    ui.follow("[data-testid=btn-delete-selected]").await;
    let kept = ui.text("plan-kept").await;
    assert!(
        kept.contains("release-1") && kept.contains("protected by policy ci"),
        "{kept}"
    );
    assert!(!ui.has("[data-testid=plan-tag-release-1]").await);
    assert_eq!(ui.text("btn-confirm").await, "Delete 1 tag");

    // The policy's preview: every tag with its decision and the rule; nothing changes.
    ui.goto("/ui/policies").await;
    ui.follow("[data-testid=preview-ci]").await;
    let release = ui.text("decision-release-1").await;
    assert!(
        release.contains("keep") && release.contains("protected"),
        "{release}"
    );
    assert_eq!(ui.text("preview-tags-deleted").await, "1 of 3");
    assert_eq!(
        common::oci_tags(&s.base, "team/app").await.unwrap().len(),
        3,
        "a preview deletes nothing"
    );

    // Run from the preview: the run's page follows it to its end and lists what it deleted,
    // with the rule that decided.
    ui.follow("[data-testid=btn-run-policy]").await;
    assert!(ui.path().await.starts_with("/ui/policy-runs/"));
    let b = &ui.b;
    wait_until("the policy run to end", || async move {
        let state = b
            .find(Locator::Css("[data-testid=policy-run-state]"))
            .await
            .ok()?;
        (state.text().await.ok()? == "succeeded").then_some(())
    })
    .await;
    assert_eq!(ui.text("policy-run-tags-deleted").await, "1 of 3");
    let item = ui.text("item-ci-1").await;
    assert!(item.contains("delete_older_than"), "{item}");
    assert!(!ui.has("[data-testid=item-release-1]").await);
    let mut left = common::oci_tags(&s.base, "team/app").await.unwrap();
    left.sort();
    assert_eq!(left, ["ci-2", "release-1"]);
}

/// Whether the management API knows the manifest `digest` of team/app.
async fn manifest_exists(c: &Client, s: &TestServer, digest: &str) -> bool {
    let resp = c
        .get(s.url(&format!(
            "/api/v1/repositories/team/app/-/manifests/{digest}"
        )))
        .send()
        .await
        .unwrap();
    match resp.status() {
        StatusCode::OK => true,
        StatusCode::NOT_FOUND => false,
        other => panic!("GET manifest {digest}: {other}"),
    }
}

/// One manifest deleted from its page: the plan lists the tags that go with it and the bytes
/// held; a tag added meanwhile makes the confirmation show the plan again instead of deleting;
/// the result's undo brings the manifest and its tags back. An untagged manifest goes and
/// comes back the same way.
#[tokio::test]
async fn a_manifest_is_deleted_from_its_page_through_its_plan_and_undone() {
    let (s, admin, v1, _) = registry_with_users().await;
    let ui = Chrome::start(&s.base).await;
    ui.login(ADMIN.0, ADMIN.1).await;

    ui.goto(&format!("/ui/repositories/team/app/-/manifests/{v1}"))
        .await;
    ui.follow("[data-testid=btn-delete-manifest]").await;
    assert_eq!(
        ui.path().await,
        format!("/ui/repositories/team/app/-/manifests/{v1}/delete")
    );
    assert!(ui.has("[data-testid=plan-tag-v1]").await);
    let planned_held = ui.bytes("plan-held").await;
    assert!(planned_held > 0);
    assert_eq!(
        ui.text("btn-confirm").await,
        "Delete this manifest and 1 tag"
    );
    assert!(
        manifest_exists(&admin, &s, &v1).await,
        "a plan deletes nothing"
    );

    // A second tag on the image since the plan: confirming shows the plan again, with it.
    let (again, _) = push_image_bytes(&admin, &s.base, "team/app", "v1-again", 1).await;
    assert_eq!(again, v1);
    ui.follow("[data-testid=btn-confirm]").await;
    let changed = ui.text("plan-changed").await;
    assert!(
        changed.contains("(v1)") && changed.contains("nothing was deleted"),
        "{changed}"
    );
    assert!(tag_exists(&admin, &s, "v1").await);
    assert!(ui.has("[data-testid=plan-tag-v1-again]").await);
    assert_eq!(
        ui.text("btn-confirm").await,
        "Delete this manifest and 2 tags"
    );

    // Confirmed as it stands: the manifest and both tags go, held for restore as planned.
    let planned_held = ui.bytes("plan-held").await;
    ui.follow("[data-testid=btn-confirm]").await;
    let result = ui.text("deleted-result").await;
    assert!(
        result.contains("v1") && result.contains("v1-again"),
        "{result}"
    );
    assert_eq!(ui.bytes("result-held").await, planned_held);
    assert!(!manifest_exists(&admin, &s, &v1).await);
    assert!(!tag_exists(&admin, &s, "v1").await);
    assert_eq!(
        usage(&admin, &s).await["held_for_restore_bytes"]
            .as_u64()
            .unwrap(),
        planned_held
    );
    ui.follow("[data-testid=btn-undo]").await;
    let restored = ui.text("restored").await;
    assert!(
        restored.contains("v1") && restored.contains("v1-again"),
        "{restored}"
    );
    assert!(manifest_exists(&admin, &s, &v1).await);
    assert!(tag_exists(&admin, &s, "v1-again").await);

    // An untagged manifest: nothing but itself goes, and its undo brings it back.
    let config = br#"{"architecture":"amd64","os":"linux","untagged":true}"#;
    let cd = common::push_blob(&admin, &s.base, "team/app", config).await;
    let m = common::image_manifest((&cd, config.len()), &[]);
    let untagged = common::sha256(&m);
    let resp = common::put_manifest(
        &admin,
        &s.base,
        "team/app",
        &untagged,
        common::OCI_MANIFEST,
        &m,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    ui.goto(&format!(
        "/ui/repositories/team/app/-/manifests/{untagged}/delete"
    ))
    .await;
    assert_eq!(ui.text("plan-tags").await, "No tag points at it.");
    assert_eq!(ui.text("btn-confirm").await, "Delete this manifest");
    ui.follow("[data-testid=btn-confirm]").await;
    ui.testid("deleted-result").await;
    assert!(!manifest_exists(&admin, &s, &untagged).await);
    ui.follow("[data-testid=btn-undo]").await;
    assert!(
        ui.text("restored")
            .await
            .contains("The deleted manifest is back")
    );
    assert!(manifest_exists(&admin, &s, &untagged).await);
}

#[tokio::test]
async fn over_tls_the_session_cookie_is_secure() {
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, key.cert.pem()).unwrap();
    std::fs::write(&key_file, key.signing_key.serialize_pem()).unwrap();
    let s = TestServer::start_with(|c| {
        c.tls = Some(shipshape_server::tls::TlsConfig::new(cert, key_file));
    })
    .await;
    assert!(s.base.starts_with("https://"), "{}", s.base);
    let c = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(key.cert.pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = c.get(s.url("/ui/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let cookie = common::header(&page, "set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Over plain HTTP the same cookie goes without Secure (a browser would drop it otherwise).
    let plain = TestServer::start().await;
    let page = common::client()
        .get(plain.url("/ui/login"))
        .send()
        .await
        .unwrap();
    let cookie = common::header(&page, "set-cookie").unwrap().to_string();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn a_running_collection_is_cancelled_from_its_page_and_keeps_what_it_did() {
    let clock = ShiftedClock::default();
    let s = TestServer::start_with_shifted_clock(&clock, |c| {
        c.gc.workers = 0;
        c.gc.review_delay = Duration::from_secs(3600);
        c.gc.lease = Duration::from_secs(3600);
        c.restore_window = Duration::from_secs(3600);
    })
    .await;
    let c = common::client();
    for n in 1..=4 {
        push_image_bytes(&c, &s.base, "team/app", &format!("v{n}"), n).await;
        let (status, _) = s
            .api(
                Method::DELETE,
                &format!("/api/v1/repositories/team/app/-/tags/v{n}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    clock.advance(3 * 3600 * 1000);
    let ui = Chrome::start(&s.base).await;
    ui.goto("/ui/gc").await;
    ui.follow("[data-testid=btn-gc-preview]").await;
    let state = |ui: &Chrome| {
        let b = ui.b.clone();
        async move {
            let el = b.find(Locator::Css("[data-testid=run-state]")).await.ok()?;
            el.text().await.ok()
        }
    };
    let b = &ui;
    wait_until("the preview to finish", || async move {
        (state(b).await? == "succeeded").then_some(())
    })
    .await;
    let would_free = ui.bytes("run-bytes").await;

    // Hold the run after two deletions; cancel it from its page meanwhile.
    let mut held = s.server().collector().checkpoint().arm(2);
    ui.follow("[data-testid=btn-gc-start]").await;
    held.reached().await;
    // Without scripts the running run's page offers a reload link; it never reloads itself
    // on a timer (WCAG 2.2.1).
    let source = ui.b.source().await.unwrap();
    assert!(
        source.contains("no-script-follow") && !source.contains("http-equiv"),
        "{source}"
    );
    // The held run is reviewing, and its progress counts against the queue it began with.
    let active = s.api_ok("/api/v1/gc/runs/active").await;
    assert_eq!(active["phase"], "reviewing", "{active}");
    let queued = active["queued_at_start"]
        .as_u64()
        .expect("the queue it began with");
    assert!(queued > 0, "{active}");
    let current =
        ui.b.find(Locator::Css(
            "[data-testid=run-phases] li[aria-current=step]",
        ))
        .await
        .unwrap()
        .attr("data-phase")
        .await
        .unwrap();
    assert_eq!(current.as_deref(), Some("reviewing"));
    // The page follows the run: the bar shows the held run's reviews once it has some.
    let (max, value) = wait_until("the progress bar to show reviews", || async move {
        let bar =
            b.b.find(Locator::Css("[data-testid=run-progress]"))
                .await
                .ok()?;
        let max = bar.attr("max").await.ok()??;
        let value: u64 = bar.attr("value").await.ok()??.parse().ok()?;
        (value > 0).then_some((max, value))
    })
    .await;
    assert_eq!(max, queued.to_string());
    assert!(value <= queued, "{value} of {queued}");
    // The page reloads itself every second: find and click the button as one step.
    wait_until("the cancel button to be clicked", || async move {
        let el =
            b.b.find(Locator::Css("[data-testid=btn-gc-cancel]"))
                .await
                .ok()?;
        el.click().await.ok()
    })
    .await;
    wait_until("the page to say the run is cancelling", || async move {
        let text =
            b.b.find(Locator::Css("main"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
        text.contains("cancelling").then_some(())
    })
    .await;
    held.release();
    let end = wait_until("the run page to show the run ended", || async move {
        let s = state(b).await?;
        (s != "running").then_some(s)
    })
    .await;
    assert_eq!(end, "cancelled");
    let freed = ui.bytes("run-bytes").await;
    assert!(freed > 0 && freed < would_free, "{freed} of {would_free}");
    assert!(!ui.has("[data-testid=btn-gc-cancel]").await);
    // What it did not get to is still reclaimable, for the next run.
    let left = s.api_ok("/api/v1/usage").await["total"]["reclaimable_bytes"]
        .as_u64()
        .unwrap();
    assert_eq!(left, would_free - freed);
}

/// The texts of the cells of one column of a table, row by row.
async fn column(ui: &Chrome, table: &str, col: usize) -> Vec<String> {
    let cells =
        ui.b.find_all(Locator::Css(&format!(
            "[data-testid={table}] tbody tr td:nth-child({col})"
        )))
        .await
        .unwrap();
    let mut out = Vec::new();
    for c in cells {
        out.push(c.text().await.unwrap());
    }
    out
}

/// `sha256:` and the first 12 hex digits, as tables show a digest.
fn short(d: &str) -> String {
    d[..7 + 12].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifests_view_filters_in_the_url_says_why_each_is_kept_and_opens_each_one() {
    use common::layout::{MultiArch, OciLayout};
    let s = TestServer::start().await;
    let c = common::client();
    let repo = "team/app";
    // v1, and the same image in another repository: its layers are shared.
    let (v1, v1_bytes) = push_image_bytes(&c, &s.base, repo, "v1", 1).await;
    push_image_bytes(&c, &s.base, "team/other", "v1", 1).await;
    // A push moves `moving` on: the image it left is held for restore.
    let (left, _) = push_image_bytes(&c, &s.base, repo, "moving", 2).await;
    let (moved, _) = push_image_bytes(&c, &s.base, repo, "moving", 3).await;
    // An image pushed by digest only: untagged garbage, within its grace period.
    let config = br#"{"architecture":"amd64","os":"linux","seed":4}"#.to_vec();
    let layer = common::random_bytes(1004, 4);
    let cd = common::push_blob(&c, &s.base, repo, &config).await;
    let ld = common::push_blob(&c, &s.base, repo, &layer).await;
    let loose = common::image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let loose_digest = common::sha256(&loose);
    let resp = common::put_manifest(
        &c,
        &s.base,
        repo,
        &loose_digest,
        common::OCI_MANIFEST,
        &loose,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // A multi-arch index, pushed by skopeo from an OCI layout.
    let multi = MultiArch::amd64_arm64(5);
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(&tmp.path().join("src"));
    layout.add_multi_arch("multi", &multi);
    let src = format!("oci:{}:multi", layout.dir.display());
    let dest = format!("docker://{}/{repo}:multi", s.host());
    common::run_tool(
        &common::skopeo(),
        &[
            "--insecure-policy",
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &src,
            &dest,
        ],
        None,
    )
    .await;
    let index = multi.digest();
    let children: Vec<String> = multi.images.iter().map(|i| i.digest()).collect();
    // An SBOM referring to v1, with an annotation that must show as text, not markup.
    let empty = b"{}".to_vec();
    let ed = common::push_blob(&c, &s.base, repo, &empty).await;
    let mut extra = serde_json::Map::new();
    extra.insert(
        "artifactType".into(),
        json!("application/vnd.example.sbom+json"),
    );
    extra.insert(
        "subject".into(),
        json!({"mediaType": common::OCI_MANIFEST, "digest": v1, "size": v1_bytes.len()}),
    );
    extra.insert(
        "annotations".into(),
        json!({"org.example.note": "<b>not bold</b>"}),
    );
    let sbom = common::image_manifest_with((&ed, empty.len()), &[], extra);
    let sbom_digest = common::sha256(&sbom);
    let resp =
        common::put_manifest(&c, &s.base, repo, &sbom_digest, common::OCI_MANIFEST, &sbom).await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let ui = Chrome::start(&s.base).await;
    ui.goto("/ui/repositories/team/app").await;
    ui.follow("nav.tabs a[href$='/-/manifests']").await;
    assert_eq!(ui.path().await, "/ui/repositories/team/app/-/manifests");
    let why = |d: &str| format!("row-manifest-{d}");
    assert!(ui.text(&why(&v1)).await.contains("tagged v1"));
    assert!(ui.text(&why(&moved)).await.contains("tagged moving"));
    assert!(ui.text(&why(&index)).await.contains("tagged multi"));
    assert!(ui.text(&why(&index)).await.contains("index"));
    for child in &children {
        let row = ui.text(&why(child)).await;
        assert!(
            row.contains(&format!("child of {}", short(&index))),
            "{row}"
        );
    }
    let row = ui.text(&why(&left)).await;
    assert!(row.contains("held for restore until"), "{row}");
    let row = ui.text(&why(&loose_digest)).await;
    assert!(row.contains("in grace until"), "{row}");
    let row = ui.text(&why(&sbom_digest)).await;
    assert!(
        row.contains(&format!("referrer of {}", short(&v1)))
            && row.contains("application/vnd.example.sbom+json"),
        "{row}"
    );

    // The filter is in the URL; each shows exactly its manifests.
    ui.follow("[data-testid=show-untagged]").await;
    assert_eq!(
        ui.path().await,
        "/ui/repositories/team/app/-/manifests?show=untagged"
    );
    let mut shown = Vec::new();
    for row in
        ui.b.find_all(Locator::Css("[data-testid=manifests] tbody tr"))
            .await
            .unwrap()
    {
        shown.push(row.attr("data-testid").await.unwrap().unwrap());
    }
    let mut want: Vec<String> = [left.clone(), loose_digest.clone()]
        .into_iter()
        .chain(children.iter().cloned())
        .map(|d| why(&d))
        .collect();
    shown.sort();
    want.sort();
    assert_eq!(shown, want);
    ui.goto("/ui/repositories/team/app/-/manifests?show=referrers")
        .await;
    assert_eq!(column(&ui, "manifests", 4).await, ["untagged"]);
    assert!(
        ui.has(&format!("[data-testid=\"{}\"]", why(&sbom_digest)))
            .await
    );
    ui.goto("/ui/repositories/team/app/-/manifests?show=tagged")
        .await;
    assert_eq!(column(&ui, "manifests", 4).await.len(), 3);

    // The API says the same.
    let api_list = api(
        &c,
        &s,
        Method::GET,
        "/api/v1/repositories/team/app/-/manifests",
        None,
    )
    .await;
    let reason = |d: &str| {
        api_list["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["digest"] == d)
            .map(|m| m["why_kept"]["reason"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(reason(&left), "held_for_restore");
    assert_eq!(reason(&loose_digest), "in_grace");
    assert_eq!(reason(&children[0]), "child");

    // The index's page: its tag and its platforms, linking to each child.
    ui.goto("/ui/repositories/team/app/-/manifests").await;
    ui.follow(&format!("[data-testid=\"{}\"] td a", why(&index)))
        .await;
    assert_eq!(ui.text("manifest-digest").await, index);
    assert_eq!(ui.text("manifest-tags").await, "multi");
    assert_eq!(
        column(&ui, "children", 1).await,
        ["linux/amd64", "linux/arm64/v8"]
    );
    ui.follow(&format!("[data-testid=\"child-{}\"] a", children[1]))
        .await;
    assert!(
        ui.text("why-kept")
            .await
            .contains(&format!("child of {}", short(&index)))
    );

    // v1's page (by its short address): config and layer each shared with the other
    // repository's copy, the SBOM among its referrers, the raw JSON.
    ui.goto(&format!("/ui/repos/team/app/manifests/{v1}")).await;
    assert_eq!(
        ui.path().await,
        format!("/ui/repositories/team/app/-/manifests/{v1}")
    );
    assert_eq!(
        column(&ui, "layers", 4).await,
        ["2 images in 2 repositories", "2 images in 2 repositories"]
    );
    assert!(
        ui.has(&format!("[data-testid=\"referrer-{sbom_digest}\"]"))
            .await
    );
    ui.click("[data-testid=raw] summary").await;
    assert!(ui.text("raw-json").await.contains("\"schemaVersion\": 2"));

    // The SBOM's page: its subject, and its annotation shown as written.
    ui.follow(&format!("[data-testid=\"referrer-{sbom_digest}\"] a"))
        .await;
    assert!(ui.text("subject").await.contains(&short(&v1)));
    ui.click("[data-testid=raw] summary").await;
    assert!(ui.text("raw-json").await.contains("<b>not bold</b>"));
    assert!(!ui.has("[data-testid=raw-json] b").await);
}

#[tokio::test]
async fn a_repository_is_deleted_only_by_an_admin_typing_its_name_and_comes_back() {
    let (s, admin, v1, v2) = registry_with_users().await;
    let ui = Chrome::start(&s.base).await;

    // A writer sees no delete button, and a forged POST (with the writer's own token) is
    // refused by the server.
    ui.login("dev", PASSWORD).await;
    ui.goto("/ui/repositories/team/app").await;
    assert!(ui.has("[data-testid=row-tag-v1]").await);
    assert!(!ui.has("[data-testid=btn-delete-repository]").await);
    ui.goto("/ui/repositories/team/app/-/delete-repository")
        .await;
    assert!(
        ui.text("error-message")
            .await
            .contains("may not delete repository team/app")
    );
    ui.goto("/ui").await;
    let csrf = ui.csrf().await;
    let status = ui
        .post(
            "/ui/repositories/team/app/-/delete-repository",
            &format!("csrf={csrf}&confirm=team%2Fapp"),
        )
        .await;
    assert_eq!(status, 403);
    assert!(tag_exists(&admin, &s, "v1").await);
    ui.follow("[data-testid=btn-logout]").await;

    // The administrator: the plan lists every tag, the bytes held and the deadline.
    ui.login(ADMIN.0, ADMIN.1).await;
    ui.goto("/ui/repositories/team/app").await;
    ui.follow("[data-testid=btn-delete-repository]").await;
    assert_eq!(
        ui.path().await,
        "/ui/repositories/team/app/-/delete-repository"
    );
    let mut going = column(&ui, "plan-going", 1).await;
    going.sort();
    assert_eq!(going, ["latest", "v1", "v2"]);
    assert!(ui.text("plan-tag-v1").await.contains(&short(&v1)));
    let held = ui.bytes("plan-held").await;
    assert!(held > 0);
    assert!(ui.text("plan-deadline").await.contains("UTC"));
    assert!(tag_exists(&admin, &s, "v1").await, "a plan deletes nothing");

    // A wrong name is refused, says so, and deletes nothing.
    ui.css("[data-testid=confirm-name]")
        .await
        .send_keys("team/ap")
        .await
        .unwrap();
    ui.click("[data-testid=btn-confirm]").await;
    let refused = ui.text("error-message").await;
    assert!(
        refused.contains("“team/ap” is not this repository's name")
            && refused.contains("nothing was deleted"),
        "{refused}"
    );
    assert!(tag_exists(&admin, &s, "v1").await);
    assert!(tag_exists(&admin, &s, "latest").await);

    // The exact name deletes it; the result shows what the plan said, and undo is offered.
    // (The form posts to the page's own URL, so the result is waited for by what it shows.)
    ui.css("[data-testid=confirm-name]")
        .await
        .send_keys("team/app")
        .await
        .unwrap();
    ui.click("[data-testid=btn-confirm]").await;
    assert!(
        ui.text("deleted-result")
            .await
            .contains("Deleted 3 tags and 2 manifests")
    );
    assert_eq!(ui.bytes("result-held").await, held);
    let gone = admin
        .get(s.url("/api/v1/repositories/team/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        usage(&admin, &s).await["held_for_restore_bytes"]
            .as_u64()
            .unwrap(),
        held
    );

    // Undo brings every tag back to the image it named.
    ui.follow("[data-testid=btn-undo]").await;
    let restored = ui.text("restored").await;
    assert!(
        restored.contains("v1") && restored.contains("v2") && restored.contains("latest"),
        "{restored}"
    );
    let tag = api(
        &admin,
        &s,
        Method::GET,
        "/api/v1/repositories/team/app/-/tags/latest",
        None,
    )
    .await;
    assert_eq!(tag["digest"], v2);
}

#[tokio::test]
async fn each_policy_is_said_in_one_sentence_where_it_is_listed() {
    let s = TestServer::start().await;
    let c = common::client();
    push_image_bytes(&c, &s.base, "team/app", "v1", 1).await;
    let policy = "name = \"tidy\"\nrepositories = [\"team/**\"]\n\n[tags]\nprotected = [\"release-*\"]\n\n\
                  [keep]\nlatest_pushed = 10\n\n[delete]\nolder_than = \"30d\"\nuntagged_older_than = \"7d\"\n";
    let resp = c
        .put(s.url("/api/v1/policies/tidy"))
        .body(policy)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let said = "In team/**, keep the 10 most recently pushed tags and tags matching release-*; \
                delete other tags older than 30 days; untagged manifests after 7 days.";
    let ui = Chrome::start(&s.base).await;
    ui.goto("/ui/policies").await;
    assert_eq!(ui.text("sentence-tidy").await, said);
    ui.follow("[data-testid=preview-tidy]").await;
    assert_eq!(ui.text("policy-sentence").await, said);
    let info = api(&c, &s, Method::GET, "/api/v1/policies/tidy", None).await;
    assert_eq!(info["sentence"], said);
    // A repository the policy covers says it too; one it does not cover does not.
    ui.goto("/ui/repositories/team/app").await;
    assert_eq!(
        ui.text("repo-policies").await,
        format!("Policy tidy: {said}")
    );
    push_image_bytes(&c, &s.base, "other/app", "v1", 2).await;
    ui.goto("/ui/repositories/other/app").await;
    assert!(ui.has("[data-testid=repo-tags]").await);
    assert!(!ui.has("[data-testid=repo-policies]").await);
}

impl Chrome {
    /// Replaces what a field holds.
    async fn fill(&self, id: &str, value: &str) {
        let el = self.css(&format!("#{id}")).await;
        el.clear().await.unwrap();
        if !value.is_empty() {
            el.send_keys(value).await.unwrap();
        }
    }

    async fn value(&self, id: &str) -> String {
        self.css(&format!("#{id}"))
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// The status a GET of `path` answers, asked from the page's own origin with its cookie.
    async fn get_status(&self, path: &str) -> u16 {
        let v = self
            .b
            .execute(
                "return fetch(arguments[0], {redirect: 'manual'}).then(r => r.status);",
                vec![json!(path)],
            )
            .await
            .unwrap();
        v.as_u64().unwrap() as u16
    }
}

async fn policy_names(c: &Client, s: &TestServer) -> Vec<String> {
    let list = api(c, s, Method::GET, "/api/v1/policies", None).await;
    list["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

/// An administrator writes a policy in the editor: the GitLab-style preset fills the form and
/// the TOML shown; a preview of the draft marks a tag delete with its rule and saves nothing;
/// an invalid duration is refused with the parser's message next to its field and the values
/// kept; the saved policy is listed in its sentence, logged, and edited again.
#[tokio::test]
async fn an_administrator_writes_a_policy_from_a_preset_previews_and_saves_it() {
    let (s, admin, _, _) = registry_with_users().await;
    let ui = Chrome::start(&s.base).await;
    ui.login(ADMIN.0, ADMIN.1).await;

    ui.goto("/ui/policies").await;
    ui.follow("[data-testid=new-policy]").await;
    assert_eq!(ui.path().await, "/ui/policies/new");
    let gitlab = ui.text("preset-gitlab").await;
    assert_eq!(
        gitlab,
        "Keep the 10 latest tags, delete the rest older than 30 days"
    );
    let presets = ui.text("presets").await;
    assert!(
        presets.contains("In every repository, keep the 10 most recently pushed tags; delete other tags older than 30 days; keep untagged manifests."),
        "{presets}"
    );
    assert!(presets.contains("Delete untagged manifests after 7 days"));
    assert!(presets.contains("Keep releases (v*), delete other tags older than 14 days"));
    ui.follow("[data-testid=preset-gitlab]").await;
    assert_eq!(ui.path().await, "/ui/policies/new?preset=gitlab");
    assert_eq!(ui.value("name").await, "keep-10-latest");
    assert_eq!(ui.value("repositories").await, "**");
    assert_eq!(ui.value("latest_pushed").await, "10");
    assert_eq!(ui.value("older_than").await, "30d");
    assert_eq!(ui.value("untagged_older_than").await, "");
    assert_eq!(
        ui.text("policy-toml").await,
        "name = \"keep-10-latest\"\nrepositories = [\"**\"]\n\n[keep]\nlatest_pushed = 10\n\n[delete]\nolder_than = \"30d\""
    );

    // Narrowed to team/**, keeping one tag and deleting the rest at any age: the preview
    // marks v1 delete with the rule, and nothing is saved or deleted.
    ui.fill("repositories", "team/**").await;
    ui.fill("latest_pushed", "1").await;
    ui.fill("older_than", "0s").await;
    ui.click("[data-testid=btn-preview-draft]").await;
    let v1 = ui.text("decision-v1").await;
    assert!(
        v1.contains("delete") && v1.contains("delete_older_than"),
        "{v1}"
    );
    assert!(ui.text("decision-latest").await.contains("keep"));
    assert!(!ui.has("[data-testid=\"preview-secret/app\"]").await);
    assert_eq!(ui.value("older_than").await, "0s", "the draft is kept");
    assert!(policy_names(&admin, &s).await.is_empty());
    assert!(
        tag_exists(&admin, &s, "v1").await,
        "a preview deletes nothing"
    );

    // An invalid duration: the parser's message next to its field, the values kept, nothing
    // saved.
    ui.fill("older_than", "3 fortnights").await;
    ui.click("[data-testid=btn-save-policy]").await;
    let error = ui.text("editor-error").await;
    assert!(
        error.contains("delete.older_than: invalid duration \"3 fortnights\""),
        "{error}"
    );
    assert!(
        ui.text("error-older_than")
            .await
            .starts_with("delete.older_than: invalid duration")
    );
    assert_eq!(ui.value("older_than").await, "3 fortnights");
    assert_eq!(ui.value("repositories").await, "team/**");
    assert!(policy_names(&admin, &s).await.is_empty());
    let status = ui
        .post(
            "/ui/policies/new",
            &format!(
                "csrf={}&action=save&name=x&repositories=team%2F**&older_than=3+fortnights",
                ui.csrf().await
            ),
        )
        .await;
    assert_eq!(status, 400);

    // Saved: the list says so and says the policy in its sentence; the API has it, and the
    // activity log has the same event as an apply through the API.
    ui.fill("older_than", "0s").await;
    ui.follow("[data-testid=btn-save-policy]").await;
    assert_eq!(ui.path().await, "/ui/policies?created=keep-10-latest");
    assert!(ui.text("policies-done").await.contains("keep-10-latest"));
    let said = "In team/**, keep the most recently pushed tag; delete all other tags; keep untagged manifests.";
    assert_eq!(ui.text("sentence-keep-10-latest").await, said);
    let info = api(
        &admin,
        &s,
        Method::GET,
        "/api/v1/policies/keep-10-latest",
        None,
    )
    .await;
    assert_eq!(info["sentence"], said);
    assert_eq!(info["updated_by"], ADMIN.0);
    let events = api(
        &admin,
        &s,
        Method::GET,
        "/api/v1/events?action=policy.apply",
        None,
    )
    .await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["target"], "keep-10-latest");
    assert_eq!(events[0]["actor"], ADMIN.0);

    // A second new policy of the same name is refused rather than replacing it.
    ui.goto("/ui/policies/new?preset=untagged").await;
    ui.fill("name", "keep-10-latest").await;
    ui.click("[data-testid=btn-save-policy]").await;
    assert!(ui.text("error-name").await.contains("is applied already"));

    // Edited: the form holds the applied document, the name stays.
    ui.goto("/ui/policies").await;
    ui.follow("[data-testid=edit-keep-10-latest]").await;
    assert_eq!(ui.value("older_than").await, "0s");
    assert_eq!(ui.value("repositories").await, "team/**");
    ui.fill("description", "CI builds").await;
    ui.fill("schedule", "daily at 03:00").await;
    ui.follow("[data-testid=btn-save-policy]").await;
    assert_eq!(ui.path().await, "/ui/policies?updated=keep-10-latest");
    let info = api(
        &admin,
        &s,
        Method::GET,
        "/api/v1/policies/keep-10-latest",
        None,
    )
    .await;
    assert_eq!(info["document"]["description"], "CI builds");
    assert_eq!(info["schedule"], "daily at 03:00");
    assert_eq!(policy_names(&admin, &s).await, ["keep-10-latest"]);
}

/// The pattern tester lists exactly the pushed repositories and tags the patterns match, only
/// those the caller may read, and a bad pattern's message; the editor's own tester form leads
/// there with the draft's patterns.
#[tokio::test]
async fn the_pattern_tester_lists_the_real_tags_the_patterns_match() {
    let (s, admin, _, _) = registry_with_users().await;
    for (tag, seed) in [("v1.0", 11), ("v1.1", 12), ("dev", 13)] {
        push_image_bytes(&admin, &s.base, "team/web", tag, seed).await;
    }
    let ui = Chrome::start(&s.base).await;
    ui.login(ADMIN.0, ADMIN.1).await;

    ui.goto("/ui/policies/pattern-test?repositories=team%2F**&tag=v*")
        .await;
    assert_eq!(
        ui.text("pattern-summary").await,
        "2 repositories match; 4 of their 6 tags match v*."
    );
    assert_eq!(ui.text("match-tags-team/app").await, "v1 v2");
    assert_eq!(ui.text("match-tags-team/web").await, "v1.0 v1.1");
    assert!(!ui.has("[data-testid=\"match-secret/app\"]").await);

    // A regular expression, matched against the whole tag.
    ui.goto("/ui/policies/pattern-test?repositories=team%2Fweb%0D%0Asecret%2F*&tag=regex%3Av%5B0-9%5D%2B%5C.1")
        .await;
    assert_eq!(
        ui.text("pattern-summary").await,
        "2 repositories match; 1 of their 4 tags match regex:v[0-9]+\\.1."
    );
    assert_eq!(ui.text("match-tags-team/web").await, "v1.1");
    assert_eq!(ui.text("match-tags-secret/app").await, "");

    // A bad pattern: the parser's message.
    ui.goto("/ui/policies/pattern-test?repositories=team%2F**&tag=regex%3A(")
        .await;
    assert!(
        ui.text("pattern-error")
            .await
            .starts_with("tag: invalid regular expression \"(\"")
    );
    assert_eq!(
        ui.get_status("/ui/policies/pattern-test?repositories=%5B")
            .await,
        400
    );

    // From the editor: its tester form carries the draft's repositories.
    ui.goto("/ui/policies/new?preset=releases").await;
    assert_eq!(ui.value("test-repositories").await, "**");
    ui.fill("test-repositories", "team/web").await;
    ui.fill("test-tag", "dev").await;
    ui.follow("[data-testid=btn-test-patterns]").await;
    assert!(ui.path().await.starts_with("/ui/policies/pattern-test?"));
    assert_eq!(ui.text("match-tags-team/web").await, "dev");

    // A reader sees only what it may read.
    drop(ui);
    let ui = Chrome::start(&s.base).await;
    ui.login("reader", PASSWORD).await;
    ui.goto("/ui/policies/pattern-test?repositories=**&tag=v1")
        .await;
    assert_eq!(
        ui.text("pattern-summary").await,
        "2 repositories match; 1 of their 6 tags match v1."
    );
    assert!(!ui.has("[data-testid=\"match-secret/app\"]").await);
}

/// A reader sees no editor links, and the server refuses the editor's pages and a forged save
/// with the reader's own valid CSRF token.
#[tokio::test]
async fn a_reader_may_not_write_policies_even_by_posting_the_form() {
    let (s, admin, _, _) = registry_with_users().await;
    let policy =
        "name = \"tidy\"\nrepositories = [\"team/**\"]\n\n[delete]\nolder_than = \"30d\"\n";
    let resp = admin
        .put(s.url("/api/v1/policies/tidy"))
        .body(policy)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let ui = Chrome::start(&s.base).await;
    ui.login("reader", PASSWORD).await;

    ui.goto("/ui/policies").await;
    assert!(ui.has("[data-testid=sentence-tidy]").await);
    assert!(!ui.has("[data-testid=new-policy]").await);
    assert!(!ui.has("[data-testid=edit-tidy]").await);
    assert!(ui.has("[data-testid=pattern-test]").await);

    ui.goto("/ui/policies/new").await;
    assert!(
        ui.text("error-message")
            .await
            .contains("reader may not write retention policies")
    );
    ui.goto("/ui/policies").await;
    for path in [
        "/ui/policies/new",
        "/ui/policies/new?preset=gitlab",
        "/ui/policies/tidy/edit",
    ] {
        assert_eq!(ui.get_status(path).await, 403, "{path}");
    }
    let csrf = ui.csrf().await;
    let form = format!("csrf={csrf}&action=save&name=evil&repositories=**&older_than=0s");
    assert_eq!(ui.post("/ui/policies/new", &form).await, 403);
    assert_eq!(ui.post("/ui/policies/tidy/edit", &form).await, 403);
    let preview = format!("csrf={csrf}&action=preview&name=evil&repositories=**&older_than=0s");
    assert_eq!(ui.post("/ui/policies/new", &preview).await, 403);
    assert_eq!(policy_names(&admin, &s).await, ["tidy"]);
    let info = api(&admin, &s, Method::GET, "/api/v1/policies/tidy", None).await;
    assert_eq!(info["document"]["delete"]["older_than"], "30d");
}

/// An administrator sets a user's password and removes a user from the users page; the old
/// password stops working at once, a removal needs its confirmation ticked, and a writer can
/// do neither, even by posting the forms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_sets_passwords_and_removes_users_and_no_one_else_may() {
    let (s, _, _, _) = registry_with_users().await;
    let ui = Chrome::start(&s.base).await;
    let repos = |who: &str, password: &str| {
        let c = client_as(who, password);
        let url = s.url("/api/v1/repositories");
        async move { c.get(url).send().await.unwrap().status() }
    };

    ui.login("dev", PASSWORD).await;
    ui.goto("/ui").await;
    let csrf = ui.csrf().await;
    let forged = format!("csrf={csrf}&password=taken-over-password");
    assert_eq!(ui.post("/ui/users/reader/password", &forged).await, 403);
    let forged = format!("csrf={csrf}&confirm=yes");
    assert_eq!(ui.post("/ui/users/reader/remove", &forged).await, 403);
    let forged = format!("csrf={csrf}");
    assert_eq!(
        ui.post("/ui/policies/any/run", &forged).await,
        403,
        "a writer may not run policies"
    );
    assert_eq!(repos("reader", PASSWORD).await, StatusCode::OK);
    ui.follow("[data-testid=btn-logout]").await;

    ui.login(ADMIN.0, ADMIN.1).await;
    ui.follow("[data-testid=nav-users]").await;
    let renewed = "a-renewed-password";
    ui.css("#password-dev")
        .await
        .send_keys(renewed)
        .await
        .unwrap();
    ui.follow("[data-testid=btn-password-dev]").await;
    assert!(
        ui.text("users-done")
            .await
            .contains("password of dev is set")
    );
    assert!(ui.has("[data-testid=row-user-dev]").await);
    assert_eq!(repos("dev", renewed).await, StatusCode::OK);
    assert_eq!(repos("dev", PASSWORD).await, StatusCode::UNAUTHORIZED);

    // Without the confirmation (a form posted by hand), nothing is removed.
    let csrf = ui.csrf().await;
    assert_eq!(
        ui.post("/ui/users/dev/remove", &format!("csrf={csrf}"))
            .await,
        400
    );
    assert_eq!(repos("dev", renewed).await, StatusCode::OK);
    ui.goto("/ui/users").await;
    ui.click("[data-testid=confirm-remove-dev]").await;
    ui.follow("[data-testid=btn-remove-dev]").await;
    assert!(ui.text("users-done").await.contains("User dev is removed"));
    assert!(!ui.has("[data-testid=row-user-dev]").await);
    assert!(ui.has("[data-testid=row-user-reader]").await);
    assert_eq!(repos("dev", renewed).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_administrator_manages_users_roles_and_robots_and_no_one_else_may() {
    let (s, admin, _, _) = registry_with_users().await;
    let ui = Chrome::start(&s.base).await;

    // A writer has no such pages, nor can post their forms.
    ui.login("dev", PASSWORD).await;
    assert!(!ui.has("[data-testid=nav-users]").await);
    ui.goto("/ui/users").await;
    assert!(
        ui.text("error-message")
            .await
            .contains("may not manage users and robots")
    );
    ui.goto("/ui").await;
    let csrf = ui.csrf().await;
    let status = ui
        .post(
            "/ui/users",
            &format!("csrf={csrf}&name=mallory&password=a-long-password&admin=true"),
        )
        .await;
    assert_eq!(status, 403);
    let status = ui
        .post("/ui/robots", &format!("csrf={csrf}&name=sneaky"))
        .await;
    assert_eq!(status, 403);
    ui.follow("[data-testid=btn-logout]").await;

    // The administrator adds a user and gives it a role.
    ui.login(ADMIN.0, ADMIN.1).await;
    ui.follow("[data-testid=nav-users]").await;
    assert!(ui.has("[data-testid=row-user-dev]").await);
    ui.css("#new-user").await.send_keys("carol").await.unwrap();
    ui.css("#new-password")
        .await
        .send_keys(PASSWORD)
        .await
        .unwrap();
    ui.click("[data-testid=btn-add-user]").await;
    assert!(ui.text("row-user-carol").await.contains("no"));
    ui.css("#role-subject")
        .await
        .send_keys("user:carol")
        .await
        .unwrap();
    ui.css("#role-pattern")
        .await
        .send_keys("team/**")
        .await
        .unwrap();
    ui.click("[data-testid=btn-grant]").await;
    assert!(
        ui.text("row-role-user:carol-team/**")
            .await
            .contains("read")
    );
    let roles = api(&admin, &s, Method::GET, "/api/v1/roles", None).await;
    assert!(
        roles["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["subject"] == "user:carol"
                && r["pattern"] == "team/**"
                && r["role"] == "read"),
        "{roles}"
    );
    // Carol can read team/app with her password now, and nothing else.
    let carol = client_as("carol", PASSWORD);
    let ok = carol
        .get(s.url("/api/v1/repositories/team/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let no = carol
        .get(s.url("/api/v1/repositories/secret/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(no.status(), StatusCode::FORBIDDEN);

    // A robot: its secret is shown once, and works until the robot is revoked.
    ui.follow("[data-testid=nav-robots]").await;
    ui.css("#robot-name").await.send_keys("ci").await.unwrap();
    ui.css("#robot-pattern")
        .await
        .send_keys("team/**")
        .await
        .unwrap();
    ui.click("[data-testid=btn-add-robot]").await;
    assert_eq!(ui.text("robot-login").await, "robot$ci");
    let secret = ui.text("robot-secret").await;
    assert!(secret.len() >= 20, "{secret}");
    let robot = client_as("robot$ci", &secret);
    let ok = robot
        .get(s.url("/api/v1/repositories/team/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    ui.goto("/ui/robots").await;
    assert!(!ui.text("row-robot-ci").await.contains(&secret));
    assert!(ui.text("row-robot-ci").await.contains("active"));
    ui.click("[data-testid=revoke-ci]").await;
    let b = &ui.b;
    wait_until("the robot to show as revoked", || async move {
        b.find(Locator::Css(
            "[data-testid=row-robot-ci] [data-testid=robot-state]",
        ))
        .await
        .ok()?
        .text()
        .await
        .ok()
        .filter(|t| t == "revoked")
    })
    .await;
    let refused = robot
        .get(s.url("/api/v1/repositories/team/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

/// The commands of chromedriver outside the W3C set (its log endpoint, DevTools commands),
/// sent to chromedriver directly for this browser's session.
impl Chrome {
    async fn driver_cmd(&self, path: &str, body: Value) -> Value {
        let session = self.b.session_id().await.unwrap().expect("a session");
        let resp = Client::new()
            .post(format!("{}/session/{session}/{path}", self.driver_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "chromedriver {path}: {status} {v}");
        v["value"].clone()
    }

    /// The errors Chromium logged since the last call: uncaught exceptions, `console.error`,
    /// resources that failed to load, CSP violations (its browser log, level SEVERE, kept by
    /// the `goog:loggingPrefs` capability; reading the log empties it).
    async fn browser_errors(&self) -> Vec<String> {
        let entries = self.driver_cmd("se/log", json!({"type": "browser"})).await;
        entries
            .as_array()
            .expect("log entries")
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| format!("{} ({})", e["message"].as_str().unwrap_or(""), e["source"]))
            .collect()
    }

    /// A PNG of the whole page, beyond the window's height (DevTools' `Page.captureScreenshot`).
    async fn full_page_screenshot(&self) -> Vec<u8> {
        let cdp = |cmd: &str, params: Value| {
            self.driver_cmd("goog/cdp/execute", json!({"cmd": cmd, "params": params}))
        };
        let metrics = cdp("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let shot = cdp(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            }),
        )
        .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .unwrap()
    }

    /// Presses and releases one key where the focus is.
    async fn press(&self, key: fantoccini::key::Key) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let value: char = key.into();
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value })
            .then(KeyAction::Up { value });
        self.b.perform_actions(keys).await.unwrap();
    }

    /// What has the focus, as `tag#id` or `tag[data-testid]`.
    async fn focused(&self) -> String {
        self.b
            .execute(
                "const e = document.activeElement; \
                 return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + \
                 (e.dataset.testid ? '[' + e.dataset.testid + ']' : '');",
                vec![],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// Where the screenshots go: `target/ui-screenshots/` of the workspace (or of
/// `CARGO_TARGET_DIR`), kept by CI as artifacts.
fn screenshot_dir() -> std::path::PathBuf {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => workspace.join(t),
        None => workspace.join("target"),
    };
    target.join("ui-screenshots")
}

/// Checks each page it is shown, and keeps what is wrong, page by page, for one report.
struct PageCheck {
    axe: String,
    dir: std::path::PathBuf,
    pages: Vec<String>,
    problems: Vec<String>,
}

/// Every link and control a keyboard should reach, in document order: each is numbered in
/// `data-kb` for the Tab walk; what is out of the tab order, not rendered or does not take the
/// focus is reported instead.
const KEYBOARD_REACH: &str = r#"
const reached = [], problems = [];
const all = document.querySelectorAll(
  'a[href], button, input, select, textarea, summary, [tabindex], [contenteditable]');
for (const el of all) {
  if (el.type === 'hidden') continue;
  const what = el.outerHTML.slice(0, 160);
  if (el.closest('details:not([open])') && el.tagName !== 'SUMMARY') continue;
  if (el.disabled) { problems.push('disabled: ' + what); continue; }
  if (el.tabIndex < 0) { problems.push('out of the tab order (tabindex ' + el.tabIndex + '): ' + what); continue; }
  const style = getComputedStyle(el);
  if (el.getClientRects().length === 0 || style.visibility === 'hidden') {
    problems.push('not rendered: ' + what); continue;
  }
  el.focus({preventScroll: true});
  if (document.activeElement !== el) { problems.push('does not take the focus: ' + what); continue; }
  el.setAttribute('data-kb', String(reached.length));
  reached.push(what);
}
if (document.activeElement) document.activeElement.blur();
return {reached: reached.length, problems};
"#;

impl PageCheck {
    fn new() -> PageCheck {
        let path = std::env::var_os("SHIPSHAPE_TEST_AXE").unwrap_or_else(|| {
            panic!(
                "SHIPSHAPE_TEST_AXE is not set: it names axe-core's axe.min.js \
                 (scripts/test installs it with npm into .test-tools/axe)"
            )
        });
        let axe = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("SHIPSHAPE_TEST_AXE={}: {e}", path.to_string_lossy()));
        assert!(
            axe.contains("axe"),
            "{} is not axe-core",
            path.to_string_lossy()
        );
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        for old in std::fs::read_dir(&dir).unwrap() {
            let old = old.unwrap().path();
            if old.extension().is_some_and(|e| e == "png") {
                std::fs::remove_file(old).unwrap();
            }
        }
        PageCheck {
            axe,
            dir,
            pages: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// The page the browser shows, as `name`: a screenshot, axe-core, the browser's errors
    /// since the last page (`expected_errors`: substrings of errors this page must log, such
    /// as its own 404), and every control reached by Tab, in order.
    async fn page(&mut self, ui: &Chrome, name: &str, expected_errors: &[&str]) {
        let b = &ui.b;
        wait_until(&format!("{name} to finish loading"), || async move {
            let ready = b.execute("return document.readyState", vec![]).await.ok()?;
            (ready == "complete").then_some(())
        })
        .await;
        let path = ui.path().await;
        self.pages.push(format!("{name}: {path}"));
        let mut problems = Vec::new();

        let png = ui.full_page_screenshot().await;
        std::fs::write(self.dir.join(format!("{name}.png")), png).unwrap();

        problems.extend(self.axe(ui).await);

        // The browser's errors while this page loaded and since.
        let mut errors = ui.browser_errors().await;
        for want in expected_errors {
            match errors.iter().position(|e| e.contains(want)) {
                Some(i) => {
                    errors.remove(i);
                }
                None => problems.push(format!("expected a logged error with {want:?}")),
            }
        }
        problems.extend(errors.into_iter().map(|e| format!("browser error: {e}")));

        // Keyboard: every control takes the focus, and Tab goes through them in order.
        let reach = b.execute(KEYBOARD_REACH, vec![]).await.unwrap();
        for p in reach["problems"].as_array().unwrap() {
            problems.push(format!("keyboard: {}", p.as_str().unwrap()));
        }
        let n = reach["reached"].as_u64().unwrap();
        if let Some(last) = self.pages.last_mut() {
            last.push_str(&format!(" ({n} controls)"));
        }
        if n > 0 {
            b.execute("document.querySelector('[data-kb=\"0\"]').focus()", vec![])
                .await
                .unwrap();
            for i in 1..n {
                ui.press(fantoccini::key::Key::Tab).await;
                let at = b
                    .execute(
                        "return document.activeElement.getAttribute('data-kb')",
                        vec![],
                    )
                    .await
                    .unwrap();
                if at != json!(i.to_string()) {
                    let focused = ui.focused().await;
                    problems.push(format!(
                        "keyboard: Tab number {i} went to {focused} (data-kb {at}), not to control {i} of {n}"
                    ));
                    break;
                }
            }
        }

        for p in problems {
            self.problems.push(format!("{name} ({path}): {p}"));
        }
    }

    /// axe-core's violations on the page the browser shows, one line each with the nodes
    /// (every rule of axe's default run: WCAG 2 A and AA, and its best practices).
    async fn axe(&self, ui: &Chrome) -> Vec<String> {
        let b = &ui.b;
        let loaded = b.execute("return typeof window.axe", vec![]).await.unwrap();
        if loaded != "object" {
            b.execute(&self.axe, vec![]).await.unwrap();
        }
        let result = b
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                   .then(r => done({violations: r.violations.map(v => ({
                      id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.map(n => n.target.join(' ') + ' — ' + n.failureSummary)}))}))
                   .catch(e => done({error: String(e)}));",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            result["error"].is_null(),
            "axe-core failed: {}",
            result["error"]
        );
        let mut out = Vec::new();
        for v in result["violations"].as_array().unwrap() {
            let mut line = format!(
                "axe {} ({}): {}",
                v["id"].as_str().unwrap(),
                v["impact"].as_str().unwrap_or("?"),
                v["help"].as_str().unwrap()
            );
            for n in v["nodes"].as_array().unwrap() {
                line.push_str(&format!(
                    "\n      {}",
                    n.as_str().unwrap().replace('\n', " ")
                ));
            }
            out.push(line);
        }
        out
    }

    /// Fails with every problem found, page by page.
    fn finish(self) {
        println!(
            "checked {} pages, screenshots in {}:\n  {}",
            self.pages.len(),
            self.dir.display(),
            self.pages.join("\n  ")
        );
        assert!(
            self.problems.is_empty(),
            "{} problems:\n{}",
            self.problems.len(),
            self.problems.join("\n")
        );
    }
}

/// Every page of the UI, on a registry with something on each (users and roles, a robot,
/// images with an index and a referrer, a deleted tag to restore, policies with a preview and
/// a run, a finished collection and its preview, activity): axe-core finds no violation,
/// Chromium logs no error, every control is reached by Tab in order, and a screenshot of each
/// is written to `target/ui-screenshots/`. The login form is used by keyboard alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_has_no_console_errors_and_is_screenshotted() {
    use fantoccini::key::Key;
    let mut check = PageCheck::new();
    let clock = ShiftedClock::default();
    let s = TestServer::start_with_shifted_clock(&clock, |c| {
        c.first_admin = Some((ADMIN.0.into(), ADMIN.1.into()));
        c.gc.workers = 0;
        c.gc.review_delay = Duration::from_secs(3600);
        c.gc.lease = Duration::from_secs(3600);
        c.restore_window = Duration::from_secs(3600);
    })
    .await;
    let admin = client_as(ADMIN.0, ADMIN.1);
    for name in ["reader", "dev"] {
        let body = json!({"name": name, "password": PASSWORD});
        api(&admin, &s, Method::POST, "/api/v1/users", Some(body)).await;
    }
    for (subject, pattern, role) in [
        ("user:reader", "team/**", "read"),
        ("user:dev", "team/**", "write"),
    ] {
        let body = json!({"subject": subject, "pattern": pattern, "role": role});
        api(&admin, &s, Method::POST, "/api/v1/roles", Some(body)).await;
    }
    let robot = json!({"name": "ci", "description": "builds team images", "expires_in": "90d",
                       "roles": [{"pattern": "team/**", "role": "write"}]});
    api(&admin, &s, Method::POST, "/api/v1/robots", Some(robot)).await;

    // Images; one tag deleted long enough ago that its image is garbage for the collector.
    let (v1, v1_bytes) = push_image_bytes(&admin, &s.base, "team/app", "v1", 1).await;
    push_image_bytes(&admin, &s.base, "team/app", "v2", 2).await;
    push_image_bytes(&admin, &s.base, "team/app", "latest", 2).await;
    push_image_bytes(&admin, &s.base, "secret/app", "v1", 3).await;
    push_image_bytes(&admin, &s.base, "team/app", "old", 7).await;
    let old = "/api/v1/repositories/team/app/-/tags/old";
    api(&admin, &s, Method::DELETE, old, None).await;
    clock.advance(3 * 3600 * 1000);

    // A two-platform index, and an SBOM referring to v1.
    let mut children = Vec::new();
    for seed in [5, 6] {
        let config = format!(r#"{{"architecture":"arm64","os":"linux","seed":{seed}}}"#);
        let layer = common::random_bytes(900 + seed as usize, seed);
        let cd = common::push_blob(&admin, &s.base, "team/app", config.as_bytes()).await;
        let ld = common::push_blob(&admin, &s.base, "team/app", &layer).await;
        let m = common::image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
        let d = common::sha256(&m);
        let resp =
            common::put_manifest(&admin, &s.base, "team/app", &d, common::OCI_MANIFEST, &m).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        children.push((d, m.len()));
    }
    let refs: Vec<(&str, usize)> = children.iter().map(|(d, n)| (d.as_str(), *n)).collect();
    let index = common::index_manifest(&refs);
    let resp = common::put_manifest(
        &admin,
        &s.base,
        "team/app",
        "multi",
        common::OCI_INDEX,
        &index,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let index_digest = common::sha256(&index);
    let empty = b"{}".to_vec();
    let ed = common::push_blob(&admin, &s.base, "team/app", &empty).await;
    let mut extra = serde_json::Map::new();
    extra.insert(
        "artifactType".into(),
        json!("application/vnd.example.sbom+json"),
    );
    extra.insert(
        "subject".into(),
        json!({"mediaType": common::OCI_MANIFEST, "digest": v1, "size": v1_bytes.len()}),
    );
    let sbom = common::image_manifest_with((&ed, empty.len()), &[], extra);
    let sbom_digest = common::sha256(&sbom);
    let resp = common::put_manifest(
        &admin,
        &s.base,
        "team/app",
        &sbom_digest,
        common::OCI_MANIFEST,
        &sbom,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    // A deleted tag in the restore bin; a repository for a policy to run on.
    push_image_bytes(&admin, &s.base, "team/app", "rc1", 8).await;
    let rc1 = "/api/v1/repositories/team/app/-/tags/rc1";
    api(&admin, &s, Method::DELETE, rc1, None).await;
    for (tag, seed) in [("release-1", 9), ("ci-1", 10), ("ci-2", 11)] {
        push_image_bytes(&admin, &s.base, "team/ci", tag, seed).await;
    }
    for (name, policy) in [
        (
            "tidy",
            "name = \"tidy\"\nrepositories = [\"team/**\"]\n\n[tags]\nprotected = [\"release-*\"]\n\n\
             [keep]\nlatest_pushed = 10\n\n[delete]\nolder_than = \"30d\"\nuntagged_older_than = \"7d\"\n",
        ),
        (
            "ci",
            "name = \"ci\"\nrepositories = [\"team/ci\"]\n\n[tags]\nprotected = [\"release-*\"]\n\n\
             [keep]\nlatest_pushed = 1\n\n[delete]\nolder_than = \"0s\"\n",
        ),
    ] {
        let resp = admin
            .put(s.url(&format!("/api/v1/policies/{name}")))
            .body(policy)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    }

    let ui = Chrome::start(&s.base).await;

    ui.goto("/ui/login").await;
    check.page(&ui, "login", &[]).await;

    // The browser's log is read for real: an error a page logs is seen (and nothing else was
    // logged meanwhile).
    ui.b.execute("console.error('shipshape-probe')", vec![])
        .await
        .unwrap();
    let probe = ui.browser_errors().await;
    assert!(
        probe.len() == 1 && probe[0].contains("shipshape-probe"),
        "the browser log does not show console.error alone: {probe:?}"
    );

    // So is axe-core's: a field without a label is found.
    ui.b.execute(
        "document.querySelector('main').insertAdjacentHTML('beforeend', '<input id=probe>')",
        vec![],
    )
    .await
    .unwrap();
    let found = check.axe(&ui).await;
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("axe label ") && v.contains("#probe")),
        "axe-core does not find a field without a label: {found:?}"
    );

    // The login by keyboard alone: the user name has the focus, Tab goes to the password, Tab
    // to the button, Enter logs in.
    ui.goto("/ui/login").await;
    assert_eq!(ui.focused().await, "input#username");
    ui.b.active_element()
        .await
        .unwrap()
        .send_keys(ADMIN.0)
        .await
        .unwrap();
    ui.press(Key::Tab).await;
    assert_eq!(ui.focused().await, "input#password");
    ui.b.active_element()
        .await
        .unwrap()
        .send_keys(ADMIN.1)
        .await
        .unwrap();
    ui.press(Key::Tab).await;
    assert_eq!(ui.focused().await, "button[btn-login]");
    ui.press(Key::Enter).await;
    let b = &ui.b;
    wait_until("the keyboard login to reach the overview", || async move {
        let u = b.current_url().await.ok()?;
        (u.path() == "/ui").then_some(())
    })
    .await;
    assert!(ui.text("whoami").await.contains(ADMIN.0));

    check.page(&ui, "overview", &[]).await;
    ui.goto("/ui/repositories").await;
    check.page(&ui, "repositories", &[]).await;
    ui.goto("/ui/repositories/team/app").await;
    check.page(&ui, "repository", &[]).await;
    ui.goto("/ui/repositories/team/app/-/manifests").await;
    check.page(&ui, "manifests", &[]).await;
    ui.goto(&format!("/ui/repositories/team/app/-/manifests/{v1}"))
        .await;
    check.page(&ui, "manifest-image", &[]).await;
    ui.goto(&format!(
        "/ui/repositories/team/app/-/manifests/{index_digest}"
    ))
    .await;
    check.page(&ui, "manifest-index", &[]).await;
    ui.goto(&format!(
        "/ui/repositories/team/app/-/manifests/{sbom_digest}"
    ))
    .await;
    check.page(&ui, "manifest-referrer", &[]).await;
    ui.goto("/ui/repositories/team/app/-/history").await;
    check.page(&ui, "history", &[]).await;

    // A deletion: its plan, its result, and its undo.
    ui.goto("/ui/repositories/team/app/-/delete?tag=v1&tag=v2")
        .await;
    check.page(&ui, "deletion-plan", &[]).await;
    ui.follow("[data-testid=btn-confirm]").await;
    check.page(&ui, "deletion-result", &[]).await;
    ui.follow("[data-testid=btn-undo]").await;
    check.page(&ui, "restored", &[]).await;
    // A manifest's deletion: the plan of a tagged image with a referrer, an index's platform
    // that cannot go alone, and the SBOM deleted and brought back.
    ui.goto(&format!(
        "/ui/repositories/team/app/-/manifests/{v1}/delete"
    ))
    .await;
    ui.testid("plan-referrers").await;
    check.page(&ui, "manifest-deletion-plan", &[]).await;
    ui.goto(&format!(
        "/ui/repositories/team/app/-/manifests/{}/delete",
        children[0].0
    ))
    .await;
    ui.testid("plan-kept").await;
    check.page(&ui, "manifest-deletion-refused", &[]).await;
    ui.goto(&format!(
        "/ui/repositories/team/app/-/manifests/{sbom_digest}/delete"
    ))
    .await;
    ui.follow("[data-testid=btn-confirm]").await;
    check.page(&ui, "manifest-deletion-result", &[]).await;
    ui.follow("[data-testid=btn-undo]").await;
    check.page(&ui, "manifest-restored", &[]).await;
    ui.goto("/ui/repositories/team/app/-/delete-repository")
        .await;
    check.page(&ui, "repository-deletion-plan", &[]).await;
    ui.goto("/ui/deleted").await;
    check.page(&ui, "recently-deleted", &[]).await;

    // Storage, a collection's preview and its run.
    ui.goto("/ui/gc").await;
    check.page(&ui, "storage-and-gc", &[]).await;
    ui.follow("[data-testid=btn-gc-preview]").await;
    assert_eq!(run_state_once_finished(&ui).await, "succeeded");
    check.page(&ui, "gc-preview", &[]).await;
    // The run, held after its first deletion: its page while it runs, then when it is done.
    let mut held = s.server().collector().checkpoint().arm(1);
    ui.follow("[data-testid=btn-gc-start]").await;
    held.reached().await;
    assert_eq!(ui.text("run-state").await, "running");
    check.page(&ui, "gc-run-running", &[]).await;
    // It follows the run without reloading itself: the focus stays on Cancel meanwhile.
    ui.b.execute(
        "window.stayed = true; document.querySelector('[data-testid=btn-gc-cancel]').focus()",
        vec![],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let kept =
        ui.b.execute("return window.stayed === true", vec![])
            .await
            .unwrap();
    assert_eq!(kept, json!(true), "the running run's page reloaded itself");
    assert_eq!(ui.focused().await, "button[btn-gc-cancel]");
    held.release();
    assert_eq!(run_state_once_finished(&ui).await, "succeeded");
    assert!(
        ui.has("[data-testid=run-items]").await,
        "the run deleted something"
    );
    check.page(&ui, "gc-run", &[]).await;
    // The overview again: the sample taken at start and the run's draw the chart; its table
    // open.
    ui.goto("/ui").await;
    ui.testid("storage-chart").await;
    ui.click("[data-testid=storage-history] summary").await;
    check.page(&ui, "overview-with-chart", &[]).await;

    // Policies, a preview, and a run started from it.
    ui.goto("/ui/policies").await;
    check.page(&ui, "policies", &[]).await;
    ui.follow("[data-testid=preview-ci]").await;
    check.page(&ui, "policy-preview", &[]).await;
    let mut held = s.server().retention().checkpoint().arm(1);
    ui.follow("[data-testid=btn-run-policy]").await;
    held.reached().await;
    assert_eq!(ui.text("policy-run-state").await, "running");
    check.page(&ui, "policy-run-running", &[]).await;
    held.release();
    let b = &ui.b;
    wait_until("the policy run to end", || async move {
        let state = b
            .find(Locator::Css("[data-testid=policy-run-state]"))
            .await
            .ok()?;
        (state.text().await.ok()? == "succeeded").then_some(())
    })
    .await;
    check.page(&ui, "policy-run", &[]).await;

    // The policy editor: a preset, a draft's preview, a refused save, an applied policy's
    // editor, and the pattern tester.
    ui.goto("/ui/policies/new?preset=gitlab").await;
    check.page(&ui, "policy-editor", &[]).await;
    ui.fill("repositories", "team/ci").await;
    ui.fill("latest_pushed", "1").await;
    ui.fill("older_than", "0s").await;
    ui.click("[data-testid=btn-preview-draft]").await;
    ui.testid("draft-preview").await;
    check.page(&ui, "policy-editor-preview", &[]).await;
    ui.fill("older_than", "3 fortnights").await;
    ui.click("[data-testid=btn-save-policy]").await;
    ui.testid("editor-error").await;
    check
        .page(
            &ui,
            "policy-editor-invalid",
            &["/ui/policies/new - Failed to load resource"],
        )
        .await;
    ui.goto("/ui/policies/tidy/edit").await;
    check.page(&ui, "policy-edit", &[]).await;
    ui.goto("/ui/policies/pattern-test?repositories=team%2F**&tag=v*")
        .await;
    check.page(&ui, "pattern-test", &[]).await;

    ui.goto("/ui/activity").await;
    check.page(&ui, "activity", &[]).await;
    ui.goto("/ui/users").await;
    check.page(&ui, "users", &[]).await;
    ui.goto("/ui/robots").await;
    check.page(&ui, "robots", &[]).await;
    ui.css("#robot-name")
        .await
        .send_keys("builder")
        .await
        .unwrap();
    ui.click("[data-testid=btn-add-robot]").await;
    ui.testid("robot-secret").await;
    check.page(&ui, "robot-added", &[]).await;

    // With access control off (no user), the header says so instead of who is logged in.
    let open = TestServer::start().await;
    push_image_bytes(&common::client(), &open.base, "team/app", "v1", 1).await;
    ui.b.goto(&format!("{}/ui", open.base)).await.unwrap();
    check
        .page(&ui, "overview-without-access-control", &[])
        .await;

    // An error page, which answers 404: Chromium logs that status, and nothing else.
    ui.b.goto(&format!("{}/ui/no-such-page", open.base))
        .await
        .unwrap();
    check
        .page(
            &ui,
            "not-found",
            &["/ui/no-such-page - Failed to load resource"],
        )
        .await;

    check.finish();
}
