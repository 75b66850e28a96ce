//! `bench-ui`: how long the web UI's pages take for a registry of `--tags` tags (the issue's
//! target: under 100 ms each for 10 000). The registry is written directly (as `bench-gc`
//! writes it: about twenty tags per repository, each image of ten blobs), then one repository
//! gets `--big` more tags over HTTP, some tags are deleted (the restore bin and the activity log
//! have rows) and a policy is saved. Each page is fetched `--requests` times one after another
//! by one client, after a few warm-up fetches; the figure is the time to the last byte of the
//! page. Then, a few times, one more tag is pushed and the overview fetched once: what a page
//! costs when the storage figures must be taken again. Shipshape only; results go to
//! `bench/results/ui.md` and `ui.json`.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use clap::Parser;
use shipshape_bench::gc::load;
use shipshape_bench::gc::model::Model;
use shipshape_bench::gc::shipshape;
use shipshape_bench::report::{Better, Figure, Report};
use shipshape_bench::servers::Server;
use shipshape_bench::stats::Samples;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Debug)]
#[command(about = "Render times of the web UI's pages for a registry of many tags")]
struct Args {
    /// Tags written directly, about twenty per repository.
    #[arg(long, default_value_t = 10_000)]
    tags: u64,
    /// Tags pushed over HTTP into one more repository (the repository page's worst case).
    #[arg(long, default_value_t = 2_000)]
    big: usize,
    /// Timed fetches per page.
    #[arg(long, default_value_t = 30)]
    requests: usize,
    /// The shipshape binary (a release build).
    #[arg(long, default_value = "target/release/shipshape")]
    shipshape: PathBuf,
    /// Where the registry is written (removed first).
    #[arg(long, default_value = "target/bench-ui")]
    work: PathBuf,
    /// Where ui.md and ui.json go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A smoke run: 1 000 tags, 200 in the big repository, 5 fetches per page.
    #[arg(long)]
    quick: bool,
}

const BIG_REPO: &str = "bench-ui/big";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// Fetches `path` `n` times one after another (after three unmeasured fetches); returns each
/// fetch's milliseconds to the last byte and the page's size.
async fn time_page(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    n: usize,
) -> Result<(Samples, usize), Error> {
    let mut times = Samples::default();
    let mut size = 0;
    for k in 0..n + 3 {
        let started = Instant::now();
        let resp = http.get(format!("{base}{path}")).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if !status.is_success() {
            return Err(format!("GET {path}: {status}").into());
        }
        if k >= 3 {
            times.push(ms);
        }
        size = body.len();
    }
    Ok((times, size))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = Args::parse();
    if args.quick {
        args.tags = 1_000;
        args.big = 200;
        args.requests = 5;
    }
    // Ten blobs per image: the model's size is in blobs.
    let model = Model::new(args.tags * 10, args.seed);
    if args.work.exists() {
        std::fs::remove_dir_all(&args.work)?;
    }
    let data = args.work.join("shipshape");
    std::fs::create_dir_all(&data)?;
    let t = Instant::now();
    let start_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - 30 * 24 * 3600 * 1000;
    shipshape::populate(&model, &data, start_ms).await?;
    let populated = t.elapsed().as_secs_f64();
    eprintln!(
        "== {} tags in {} repositories written in {populated:.1} s",
        model.tag_count(),
        model.repos.len()
    );

    let server = Server::shipshape(&args.shipshape, &data, &[])?;
    let base = server.base.clone();
    let http = http();
    let uploads = AtomicU64::new(0);
    let t = Instant::now();
    for k in 0..args.big {
        if !load::push(&http, &base, BIG_REPO, &format!("v{k:05}"), &uploads).await {
            return Err(format!("pushing {BIG_REPO}:v{k:05} failed").into());
        }
    }
    eprintln!(
        "== {} tags pushed into {BIG_REPO} in {:.1} s",
        args.big,
        t.elapsed().as_secs_f64()
    );
    // Something in the restore bin and the activity log: a tenth of the big repository's tags.
    let deleted = args.big / 10;
    for k in 0..deleted {
        let resp = http
            .delete(format!("{base}/v2/{BIG_REPO}/manifests/v{k:05}"))
            .send()
            .await?;
        if resp.status().as_u16() != 202 {
            return Err(format!("deleting v{k:05}: {}", resp.status()).into());
        }
    }
    let resp = http
        .put(format!("{base}/api/v1/policies/trim"))
        .body(
            r#"{"name": "trim", "repositories": ["**"], "tags": {"protected": ["latest"]},
                "delete": {"older_than": "90d"}, "keep": {"latest_pushed": 10}}"#,
        )
        .send()
        .await?;
    if !resp.status().is_success() {
        return Err(format!("saving a policy: {}", resp.status()).into());
    }
    let small = &model.repos[0];
    let pages: Vec<(&str, String)> = vec![
        ("overview", "/ui".into()),
        ("repositories", "/ui/repositories".into()),
        ("repositories by size", "/ui/repositories?sort=size".into()),
        (
            "a repository of 20 tags",
            format!("/ui/repositories/{small}"),
        ),
        (
            "the repository of the pushed tags",
            format!("/ui/repositories/{BIG_REPO}"),
        ),
        ("recently deleted", "/ui/deleted".into()),
        ("storage and GC", "/ui/gc".into()),
        ("policies", "/ui/policies".into()),
        ("activity log", "/ui/activity".into()),
    ];
    let mut rows = Vec::new();
    for (name, path) in &pages {
        let (times, size) = time_page(&http, &base, path, args.requests).await?;
        eprintln!(
            "   {name} ({path}): median {:.1} ms, p95 {:.1} ms, {} KiB",
            times.median(),
            times.percentile(0.95),
            size / 1024
        );
        rows.push((*name, path.clone(), times, size));
    }
    // After a push (which changes the figures) the first overview does not wait for the
    // figures to be taken again over the whole catalogue: it is drawn with the last ones and
    // says so. How long current figures then take is what the API waits for.
    let mut after_push = Samples::default();
    let mut current_after = Samples::default();
    let mut stale_pages = 0;
    for k in 0..args.requests.min(10) {
        let tag = format!("after-{k:03}");
        if !load::push(&http, &base, BIG_REPO, &tag, &uploads).await {
            return Err(format!("pushing {BIG_REPO}:{tag} failed").into());
        }
        let started = Instant::now();
        let resp = http.get(format!("{base}/ui")).send().await?;
        let status = resp.status();
        let page = resp.text().await?;
        if !status.is_success() {
            return Err(format!("GET /ui after a push: {status}").into());
        }
        after_push.push(started.elapsed().as_secs_f64() * 1e3);
        stale_pages += usize::from(page.contains("data-testid=\"figures-stale\""));
        let resp = http.get(format!("{base}/api/v1/usage")).send().await?;
        if !resp.status().is_success() {
            return Err(format!("GET /api/v1/usage after a push: {}", resp.status()).into());
        }
        resp.bytes().await?;
        current_after.push(started.elapsed().as_secs_f64() * 1e3);
    }
    eprintln!(
        "   overview, first fetch after a push: median {:.1} ms ({stale_pages} of {} drawn with \
         the last figures); current figures after {:.0} ms",
        after_push.median(),
        after_push.len(),
        current_after.median()
    );
    let rss = server.peak_rss_mib();
    server.stop();

    let total_tags = model.tag_count() + args.big - deleted;
    let mut report = Report::new("Web UI page times (bench-ui)");
    report.condition(format!(
        "{total_tags} tags: {} in {} repositories written directly ({populated:.1} s), {} pushed \
         over HTTP into {BIG_REPO} of which {deleted} deleted (restore bin, activity log); one \
         policy saved",
        model.tag_count(),
        model.repos.len(),
        args.big
    ));
    report.condition(format!(
        "each page fetched {} times one after another by one client after 3 warm-up fetches, \
         access control off (no login); time to the page's last byte; peak RSS {rss:.0} MiB",
        args.requests
    ));
    let section = "page time, median of the fetches";
    for (name, path, times, size) in rows {
        let mut f = Figure::new(section, name, "ms", Better::Lower);
        f.note = format!(
            "`{path}`, p95 {:.1} ms, {} KiB",
            times.percentile(0.95),
            size / 1024
        );
        f.shipshape = times;
        f.limit = Some(100.0);
        report.add(f);
    }
    let mut f = Figure::new(
        "after a change",
        "overview, first fetch after a push",
        "ms",
        Better::Lower,
    );
    f.note = format!(
        "`/ui` right after pushing one more tag, {} times; {stale_pages} of them drawn with the \
         last figures taken (and saying so, `usage.page_wait` 50 ms) while current ones were \
         taken; p95 {:.1} ms",
        after_push.len(),
        after_push.percentile(0.95)
    );
    f.shipshape = after_push;
    f.limit = Some(100.0);
    report.add(f);
    let mut f = Figure::new(
        "after a change",
        "current figures after a push",
        "ms",
        Better::Lower,
    );
    f.note = format!(
        "from the same first fetch to the answer of `GET /api/v1/usage`, which waits for \
         current figures (one walk of the whole catalogue); pages show them from then, p95 \
         {:.0} ms",
        current_after.percentile(0.95)
    );
    f.shipshape = current_after;
    report.add(f);
    report.write(&args.out, "ui")?;
    Ok(())
}
