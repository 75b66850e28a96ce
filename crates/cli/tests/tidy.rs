//! Tidy checks over the source tree, in the manner of rust-analyzer's `tidy.rs`: absences that
//! ARCHITECTURE.md and the house style state, kept by reading the files (and the workspace's
//! `cargo metadata`) rather than by review. Each failure names the file and line and the rule
//! it breaks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The crates' layers, lowest first: a crate depends only on crates of lower layers ("cli ──►
/// server ──► gc, auth ──► meta, store ──► oci"; house style 1). The benchmarks sit beside the
/// server: they may use anything below it, never the server or the command.
const LAYERS: &[&[&str]] = &[
    &["shipshape-oci", "shipshape-fault"],
    &["shipshape-store", "shipshape-meta"],
    &["shipshape-gc", "shipshape-auth"],
    &["shipshape-server", "shipshape-bench"],
    &["shipshape-cli"],
];

/// Crates nothing depends on, whatever their layer.
const NO_DEPENDENTS: &[&str] = &["shipshape-bench"];

/// The files outside `crates/store` that may name `LocalStore`, each opening a store of a data
/// directory; everything else holds an `Arc<dyn BlobStore>`.
const LOCAL_STORE_ALLOWED: &[&str] = &[
    // `Server::start`: the store the server serves.
    "crates/server/src/lib.rs",
    // The commands that work on a data directory's backends with no server (`shipshape check`,
    // `export`, `import`): the store that directory and its configuration name.
    "crates/cli/src/offline.rs",
    // The harness's `open_store`: the store of a data directory no test server runs on (a
    // child process's, or one a test killed).
    "crates/cli/tests/common/mod.rs",
];

/// This file, which names what it looks for.
const THIS_FILE: &str = "crates/cli/tests/tidy.rs";

/// All SQL lives in `meta` (house style 3): no other crate, the benchmarks included, depends on
/// `sqlx` or names it, even through a re-export.
#[test]
fn no_sqlx_outside_meta() {
    let mut problems = Vec::new();
    for package in workspace_packages() {
        if package.name == "shipshape-meta" {
            continue;
        }
        for dep in package.dependencies.iter().filter(|d| d.name == "sqlx") {
            problems.push(format!(
                "{}: {} depends on sqlx ({}): all SQL lives in crates/meta",
                package.line_of(&dep.key),
                package.name,
                dep.kind
            ));
        }
    }
    for file in source_files() {
        if file.rel.starts_with("crates/meta/") || file.rel == THIS_FILE {
            continue;
        }
        for (line, text) in file.code_lines() {
            // A log target in a string ("sqlx::query", whose slow-statement warnings the
            // logger folds) is not a use of the crate.
            if names(&without_strings(text), "sqlx") {
                problems.push(format!(
                    "{}:{line}: names sqlx: all SQL lives in crates/meta, call its functions",
                    file.rel
                ));
            }
        }
    }
    assert_none(problems);
}

/// Only the wiring opens a `LocalStore` (ARCHITECTURE.md, "Absences that are deliberate"):
/// outside `crates/store`, only the files of `LOCAL_STORE_ALLOWED` name it, and each of them
/// still does.
#[test]
fn only_the_wiring_opens_a_local_store() {
    let mut problems = Vec::new();
    let mut used = Vec::new();
    for file in source_files() {
        if file.rel.starts_with("crates/store/") || file.rel == THIS_FILE {
            continue;
        }
        for (line, text) in file.code_lines() {
            if !names(text, "LocalStore") {
                continue;
            }
            if LOCAL_STORE_ALLOWED.contains(&file.rel.as_str()) {
                used.push(file.rel.clone());
            } else {
                problems.push(format!(
                    "{}:{line}: names LocalStore: only Server::start and the offline commands open \
                     one; everything else holds an Arc<dyn BlobStore> (or add this file to \
                     LOCAL_STORE_ALLOWED in {THIS_FILE}, saying why)",
                    file.rel
                ));
            }
        }
    }
    let this = std::fs::read_to_string(root().join(THIS_FILE)).expect("read this file");
    for allowed in LOCAL_STORE_ALLOWED {
        if !used.iter().any(|u| u == allowed) {
            let entry = format!("\"{allowed}\",");
            let line = this
                .lines()
                .position(|l| l.trim() == entry)
                .map_or(1, |i| i + 1);
            problems.push(format!(
                "{THIS_FILE}:{line}: {allowed} no longer names LocalStore: remove it from \
                 LOCAL_STORE_ALLOWED"
            ));
        }
    }
    assert_none(problems);
}

/// Crates point downward only (house style 1): every dependency between the workspace's crates
/// (normal, dev or build) goes to a lower layer of `LAYERS`, and nothing depends on a crate of
/// `NO_DEPENDENTS`.
#[test]
fn crates_point_downward_only() {
    let layer_of: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(layer, crates)| crates.iter().map(move |c| (*c, layer)))
        .collect();
    let packages = workspace_packages();
    let mut problems = Vec::new();
    for package in &packages {
        let Some(&layer) = layer_of.get(package.name.as_str()) else {
            problems.push(format!(
                "{}:1: {} has no layer: add it to LAYERS in {THIS_FILE}",
                package.manifest, package.name
            ));
            continue;
        };
        let internal = package
            .dependencies
            .iter()
            .filter(|d| packages.iter().any(|p| p.name == d.name));
        for dep in internal {
            let wrong = if NO_DEPENDENTS.contains(&dep.name.as_str()) {
                Some("nothing depends on it".to_string())
            } else {
                match layer_of.get(dep.name.as_str()) {
                    Some(&l) if l < layer => None,
                    Some(_) => Some(format!(
                        "crates point downward only ({})",
                        LAYERS
                            .iter()
                            .map(|l| l.join(", "))
                            .collect::<Vec<_>>()
                            .join(" ◄── ")
                    )),
                    None => None, // reported as a package without a layer
                }
            };
            if let Some(rule) = wrong {
                problems.push(format!(
                    "{}: {} depends on {} ({}): {rule}",
                    package.line_of(&dep.key),
                    package.name,
                    dep.name,
                    dep.kind
                ));
            }
        }
    }
    assert_none(problems);
}

/// The crash tests' fault points are armed only in the test suite's build: no crate turns on
/// `shipshape-fault`'s `armed` feature but through a dev-dependency, so a release binary
/// cannot be killed by an environment variable.
#[test]
fn fault_points_are_armed_only_by_the_tests() {
    let mut problems = Vec::new();
    for package in workspace_packages() {
        for dep in &package.dependencies {
            if dep.name == "shipshape-fault"
                && dep.features.iter().any(|f| f == "armed")
                && dep.kind != "dev"
            {
                problems.push(format!(
                    "{}: {} arms the fault points in a {} dependency: only dev-dependencies may",
                    package.line_of(&dep.key),
                    package.name,
                    dep.kind
                ));
            }
        }
    }
    assert_none(problems);
}

/// The operator commands drive a registry over its management API only (ARCHITECTURE.md,
/// `crates/cli`): the one part of the server that `crates/cli/src/remote/` names is the API's
/// types, `shipshape_server::api::model`, which the handlers serialise and read.
#[test]
fn remote_commands_use_the_server_only_through_the_api_model() {
    let mut problems = Vec::new();
    for file in source_files() {
        if !file.rel.starts_with("crates/cli/src/remote/") {
            continue;
        }
        for (line, text) in file.code_lines() {
            if names(text, "shipshape_server") && !text.contains("shipshape_server::api::model") {
                problems.push(format!(
                    "{}:{line}: names the server beyond its API types: a remote command reaches \
                     the registry over HTTP and reads answers as shipshape_server::api::model types",
                    file.rel
                ));
            }
        }
    }
    assert_none(problems);
}

/// Every file starts with a `//!` line saying what it is for (house style 11): every `.rs`
/// file of the crates (sources, tests, helpers) and of the benchmarks.
/// Who acted is a `Principal` (house style: one identity): the names of the registry's own
/// actors and of the anonymous caller are spelled once, in `meta::principal`. A line of the
/// product's code that names an actor (`actor`, `started_by`, `updated_by`, `created_by`) and
/// spells one of those names in a string is an actor made by hand, which audit ids and access
/// checks would not know.
#[test]
fn actors_are_principals_not_string_literals() {
    const ACTOR_NAMES: &[&str] = &["anonymous", "scheduler", "collector", "gc", "system"];
    const ACTOR_FIELDS: &[&str] = &["actor", "started_by", "updated_by", "created_by"];
    let mut problems = Vec::new();
    for file in source_files() {
        let product = file.rel.contains("/src/") && !file.rel.starts_with("crates/cli/tests/");
        if !product || file.rel == "crates/meta/src/principal.rs" {
            continue;
        }
        for (line, text) in file.code_lines() {
            let code = without_strings(text);
            if !ACTOR_FIELDS.iter().any(|f| names(&code, f)) {
                continue;
            }
            for literal in string_literals(text) {
                if ACTOR_NAMES.contains(&literal.as_str()) {
                    problems.push(format!(
                        "{}:{line}: the actor {literal:?} spelled by hand: take it from a \
                         Principal (meta::principal)",
                        file.rel
                    ));
                }
            }
        }
    }
    assert_none(problems);
}

/// The contents of the string literals of `line` (escapes kept as written).
fn string_literals(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut current, mut in_string, mut escaped) = (String::new(), false, false);
    for c in line.chars() {
        match (in_string, escaped, c) {
            (true, true, _) => {
                escaped = false;
                current.push(c);
            }
            (true, false, '\\') => {
                escaped = true;
                current.push(c);
            }
            (true, false, '"') => {
                in_string = false;
                out.push(std::mem::take(&mut current));
            }
            (true, false, _) => current.push(c),
            (false, _, '"') => in_string = true,
            (false, _, _) => {}
        }
    }
    out
}

#[test]
fn every_file_starts_with_a_doc_line() {
    let problems: Vec<String> = source_files()
        .into_iter()
        .filter(|f| !f.text.starts_with("//!"))
        .map(|f| {
            format!(
                "{}:1: does not start with a `//!` line saying what the file is for",
                f.rel
            )
        })
        .collect();
    assert_none(problems);
}

/// Fails with every problem found, one a line.
fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The workspace's root, two levels above this crate.
fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .nth(2)
        .expect("crates/cli sits two levels below the workspace root")
        .to_path_buf()
}

/// A Rust source file of the workspace.
struct SourceFile {
    /// Its path from the workspace root, with `/` separators.
    rel: String,
    text: String,
}

impl SourceFile {
    /// The lines that are not comments, numbered from 1. Doc and line comments may name
    /// anything; a block comment or a string counts as code.
    fn code_lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .filter(|(_, l)| !l.trim_start().starts_with("//"))
    }
}

/// Every `.rs` file under `crates/` and `bench/`, sorted by path.
fn source_files() -> Vec<SourceFile> {
    let root = root();
    let mut paths = Vec::new();
    for top in ["crates", "bench"] {
        walk(&root.join(top), &mut paths);
    }
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            let rel = p.strip_prefix(&root).unwrap();
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            SourceFile { rel, text }
        })
        .collect()
}

/// Adds every file under `dir` to `out`, skipping build output and hidden directories.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read directory {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("read directory {}: {e}", dir.display()));
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            if name != "target" && !name.starts_with('.') {
                walk(&path, out);
            }
        } else if kind.is_file() {
            out.push(path);
        }
    }
}

/// Whether `line` contains `ident` as a whole identifier (not part of a longer one).
/// `line` with the contents of its string literals blanked out (escapes followed, one line at
/// a time: enough for the identifiers the checks look for).
fn without_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in line.chars() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => {
                in_string = false;
                out.push(c);
            }
            (true, false, _) => {}
            (false, _, '"') => {
                in_string = true;
                out.push(c);
            }
            (false, _, _) => out.push(c),
        }
    }
    out
}

fn names(line: &str, ident: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(ident).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + ident.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// A workspace package as `cargo metadata` describes it.
struct Package {
    name: String,
    /// Its manifest's path from the workspace root.
    manifest: String,
    manifest_text: String,
    dependencies: Vec<Dependency>,
}

/// One entry of a package's dependency tables.
struct Dependency {
    /// The package depended on.
    name: String,
    /// The key it is written under in the manifest (its rename, if any).
    key: String,
    /// normal, dev or build.
    kind: String,
    /// The features it turns on.
    features: Vec<String>,
}

impl Package {
    /// `manifest:line` of the line that declares the dependency written as `key`.
    fn line_of(&self, key: &str) -> String {
        // `key = …`, `key.workspace = true` or a table of its own, `[dependencies.key]`.
        let declares = |l: &str| {
            let l = l.trim();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with([' ', '=', '.']))
                || (l.starts_with('[') && l.ends_with(&format!(".{key}]")))
        };
        let line = self
            .manifest_text
            .lines()
            .position(declares)
            .map_or(1, |i| i + 1);
        format!("{}:{line}", self.manifest)
    }
}

/// The workspace's packages and their dependencies, from `cargo metadata --no-deps`.
fn workspace_packages() -> Vec<Package> {
    let root = root();
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let path = PathBuf::from(text(&p["manifest_path"]));
            let manifest = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let manifest_text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let dependencies = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .map(|d| Dependency {
                    name: text(&d["name"]),
                    key: d["rename"]
                        .as_str()
                        .map_or_else(|| text(&d["name"]), str::to_string),
                    kind: d["kind"].as_str().unwrap_or("normal").to_string(),
                    features: d["features"]
                        .as_array()
                        .map(|f| f.iter().map(text).collect())
                        .unwrap_or_default(),
                })
                .collect();
            Package {
                name: text(&p["name"]),
                manifest,
                manifest_text,
                dependencies,
            }
        })
        .collect()
}
