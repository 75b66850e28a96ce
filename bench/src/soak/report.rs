//! The soak's results: `soak.md` (conditions, the first quarter of the steady state beside the
//! last, the misbehaviours seen, a table of the samples), `soak.json` (every sample) and
//! `soak.svg` (p99 latencies, memory, descriptors and sizes over time).

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::Kind;
use super::plot::{Panel, Series, svg};
use super::sample::{OpFigures, Sample};

/// A finished soak.
#[derive(Serialize)]
pub struct Soak {
    pub conditions: Vec<String>,
    pub sample_s: f64,
    /// When the restore window, collection and the activity log's retention have all come round
    /// (seconds after the load started); the summary compares quarters of what follows.
    pub steady_from_s: f64,
    pub fault_count: u64,
    /// The first misbehaviours, as they were printed.
    pub faults: Vec<String>,
    /// Why the soak stopped before its end, if it did.
    pub ended_early: Option<String>,
    pub samples: Vec<Sample>,
}

const MIB: f64 = 1024.0 * 1024.0;

/// A figure of a group of samples (a quarter of the steady state).
type GroupFigure = fn(&[&Sample]) -> f64;
/// A table longer than this is given one row per minute.
const MAX_ROWS: usize = 90;

fn color(kind: Kind) -> &'static str {
    match kind {
        Kind::Push => "#1f77b4",
        Kind::Pull => "#2ca02c",
        Kind::Delete => "#ff7f0e",
        Kind::Policy => "#9467bd",
        Kind::Gc => "#d62728",
    }
}

impl Soak {
    fn end_s(&self) -> f64 {
        self.samples.last().map_or(0.0, |s| s.at_s)
    }

    /// Writes soak.md, soak.json and soak.svg into `out`; returns the Markdown.
    pub fn write(&self, out: &Path) -> std::io::Result<String> {
        std::fs::create_dir_all(out)?;
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(out.join("soak.json"), json)?;
        std::fs::write(out.join("soak.svg"), self.chart())?;
        let md = self.markdown();
        std::fs::write(out.join("soak.md"), &md)?;
        Ok(md)
    }

    /// Time in minutes for a long soak, in seconds for a short one.
    fn time_unit(&self) -> (f64, &'static str) {
        if self.end_s() >= 600.0 {
            (60.0, "min")
        } else {
            (1.0, "s")
        }
    }

    fn chart(&self) -> String {
        let (div, unit) = self.time_unit();
        let at = |s: &Sample| s.at_s / div;
        let latencies = Panel {
            title: "p99 latency per sample window".into(),
            y_label: "ms (log scale)".into(),
            log: true,
            series: Kind::ALL
                .into_iter()
                .map(|k| Series {
                    name: k.name().into(),
                    color: color(k),
                    points: self
                        .samples
                        .iter()
                        .map(|s| (at(s), s.op(k).p99_ms))
                        .collect(),
                    markers: matches!(k, Kind::Policy | Kind::Gc),
                })
                .collect(),
        };
        let line = |name: &str, color, f: fn(&Sample) -> f64| Series {
            name: name.into(),
            color,
            points: self.samples.iter().map(|s| (at(s), Some(f(s)))).collect(),
            markers: false,
        };
        let resources = Panel {
            title: "server process and data directory".into(),
            y_label: "MiB, or count".into(),
            log: false,
            series: vec![
                line("RSS (MiB)", "#1f77b4", |s| s.rss_mib),
                line("of which SQLite (MiB)", "#9467bd", |s| s.sqlite_mib),
                line("open fds", "#ff7f0e", |s| s.open_fds as f64),
                line("catalogue (MiB)", "#2ca02c", |s| {
                    s.catalogue_bytes as f64 / MIB
                }),
                line("of which WAL (MiB)", "#17becf", |s| {
                    s.catalogue_wal_bytes as f64 / MIB
                }),
                line("database pages in use (MiB)", "#e377c2", |s| {
                    s.catalogue_used_bytes as f64 / MIB
                }),
                line("store (MiB)", "#8c564b", |s| s.store_bytes as f64 / MIB),
            ],
        };
        let held = Panel {
            title: "what the catalogue holds".into(),
            y_label: "count".into(),
            log: false,
            series: vec![
                line("tags", "#1f77b4", |s| s.tags as f64),
                line("untagged manifests", "#d62728", |s| {
                    s.untagged_manifests as f64
                }),
            ],
        };
        svg(
            "Shipshape soak",
            &format!("time since the load started ({unit})"),
            self.end_s() / div,
            &[latencies, resources, held],
        )
    }

    fn markdown(&self) -> String {
        let mut md = String::from(
            "# Soak\n\n![p99 latencies, memory, descriptors and sizes over time](soak.svg)\n\n## Conditions\n\n",
        );
        for c in &self.conditions {
            let _ = writeln!(md, "- {c}");
        }
        md.push('\n');
        md.push_str(&self.verdict());
        md.push_str(&self.summary());
        md.push_str(&self.table());
        md
    }

    fn verdict(&self) -> String {
        let mut md = String::from("## Misbehaviour\n\n");
        if let Some(why) = &self.ended_early {
            let _ = writeln!(md, "**The soak stopped early: {why}.**\n");
        }
        if self.fault_count == 0 {
            md.push_str("No request got an answer a correct registry never gives.\n\n");
        } else {
            let _ = writeln!(
                md,
                "**{} answers a correct registry never gives.** The first:\n",
                self.fault_count
            );
            for f in &self.faults {
                let _ = writeln!(md, "- `{}`", f.replace('`', "'"));
            }
            md.push('\n');
        }
        md
    }

    /// The first quarter of the steady state beside the last.
    fn summary(&self) -> String {
        let end = self.end_s();
        let steady = self.steady_from_s.min(end / 2.0);
        let quarter = (end - steady) / 4.0;
        let first: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.at_s > steady && s.at_s <= steady + quarter + 1e-9)
            .collect();
        let last: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.at_s > end - quarter - 1e-9)
            .collect();
        let capped = if steady < self.steady_from_s {
            format!(
                " (half the run: the settings' steady state, {:.0} s, is past its end)",
                self.steady_from_s
            )
        } else {
            String::new()
        };
        let mut md = format!(
            "## Steady state: its first quarter beside its last\n\nSteady from {steady:.0} s{capped}; first quarter {steady:.0}–{:.0} s ({} samples), last quarter {:.0}–{end:.0} s ({} samples). Means unless said; the change is last against first.\n\n| figure | first quarter | last quarter | change |\n|---|---:|---:|---:|\n",
            steady + quarter,
            first.len(),
            end - quarter,
            last.len()
        );
        if first.is_empty() || last.is_empty() {
            md.push_str("| (too few samples) | | | |\n\n");
            return md;
        }
        let rows: [(&str, GroupFigure); 13] = [
            ("RSS (MiB)", |g| mean(g, |s| s.rss_mib)),
            ("RSS, largest (MiB)", |g| max(g, |s| s.rss_mib)),
            ("of which SQLite's memory (MiB)", |g| {
                mean(g, |s| s.sqlite_mib)
            }),
            ("threads, most", |g| max(g, |s| s.threads as f64)),
            ("open fds, most", |g| max(g, |s| s.open_fds as f64)),
            ("catalogue on disk, largest (MiB)", |g| {
                max(g, |s| s.catalogue_bytes as f64 / MIB)
            }),
            ("of which the write-ahead log, largest (MiB)", |g| {
                max(g, |s| s.catalogue_wal_bytes as f64 / MIB)
            }),
            ("database pages in use (MiB)", |g| {
                mean(g, |s| s.catalogue_used_bytes as f64 / MIB)
            }),
            ("store on disk, largest (MiB)", |g| {
                max(g, |s| s.store_bytes as f64 / MIB)
            }),
            ("store files, most", |g| max(g, |s| s.store_files as f64)),
            ("tags", |g| mean(g, |s| s.tags as f64)),
            ("untagged manifests (held for restore)", |g| {
                mean(g, |s| s.untagged_manifests as f64)
            }),
            ("errors per 1 000 operations", error_rate),
        ];
        for (name, f) in rows {
            row(&mut md, name, Some(f(&first)), Some(f(&last)));
        }
        let (a, b) = (merged(&first), merged(&last));
        let (span_a, span_b) = (span(&first, self.sample_s), span(&last, self.sample_s));
        for k in Kind::ALL {
            let (x, y) = (a.op(k), b.op(k));
            // Runs come every few minutes: their count says more than a rate.
            if matches!(k, Kind::Policy | Kind::Gc) {
                let (n, m) = (x.count as f64, y.count as f64);
                row(&mut md, &format!("{}s", k.name()), Some(n), Some(m));
            } else {
                let (n, m) = (x.count as f64 / span_a, y.count as f64 / span_b);
                row(
                    &mut md,
                    &format!("{} per second", k.name()),
                    Some(n),
                    Some(m),
                );
            }
            row(
                &mut md,
                &format!("{} p50 (ms)", k.name()),
                x.p50_ms,
                y.p50_ms,
            );
            row(
                &mut md,
                &format!("{} p99 (ms)", k.name()),
                x.p99_ms,
                y.p99_ms,
            );
        }
        md.push('\n');
        md
    }

    fn table(&self) -> String {
        let per = if self.samples.len() > MAX_ROWS {
            (60.0 / self.sample_s).round().max(1.0) as usize
        } else {
            1
        };
        let mut md = format!(
            "## Samples\n\n{}Operations per cell: succeeded · errors · p50 / p99 ms (`gone`: tags deleted meanwhile, correct 404s).\n\n| t (s) | RSS MiB | fds | catalogue MiB (WAL) | store MiB | store files | tags | untagged | {} |\n|---:|---:|---:|---:|---:|---:|---:|---:|{}\n",
            if per > 1 {
                format!(
                    "One row per {per} samples (a minute): the state at its end, the operations of all.\n\n"
                )
            } else {
                String::new()
            },
            Kind::ALL.map(Kind::name).join(" | "),
            "---|".repeat(Kind::ALL.len())
        );
        for group in self.samples.chunks(per) {
            let s = Sample::merge(group);
            let _ = writeln!(
                md,
                "| {:.0} | {:.1} | {} | {:.2} ({:.2}) | {:.2} | {} | {} | {} | {} |",
                s.at_s,
                s.rss_mib,
                s.open_fds,
                s.catalogue_bytes as f64 / MIB,
                s.catalogue_wal_bytes as f64 / MIB,
                s.store_bytes as f64 / MIB,
                s.store_files,
                s.tags,
                s.untagged_manifests,
                s.ops.iter().map(cell).collect::<Vec<_>>().join(" | ")
            );
        }
        md
    }
}

fn cell(o: &OpFigures) -> String {
    let ms = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1}"));
    let gone = if o.gone > 0 {
        format!(" ({} gone)", o.gone)
    } else {
        String::new()
    };
    format!(
        "{} · {} · {} / {}{gone}",
        o.count,
        o.errors,
        ms(o.p50_ms),
        ms(o.p99_ms)
    )
}

fn row(md: &mut String, name: &str, first: Option<f64>, last: Option<f64>) {
    let show = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.2}"));
    let change = match (first, last) {
        (Some(a), Some(b)) if a != 0.0 => format!("{:+.1}%", (b - a) / a * 100.0),
        _ => "–".into(),
    };
    let _ = writeln!(
        md,
        "| {name} | {} | {} | {change} |",
        show(first),
        show(last)
    );
}

fn mean(g: &[&Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    g.iter().map(|s| f(s)).sum::<f64>() / g.len() as f64
}

fn max(g: &[&Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    g.iter().map(|s| f(s)).fold(f64::NAN, f64::max)
}

fn merged(g: &[&Sample]) -> Sample {
    Sample::merge(&g.iter().map(|s| (*s).clone()).collect::<Vec<_>>())
}

/// Seconds the group's windows cover.
fn span(g: &[&Sample], sample_s: f64) -> f64 {
    g.len() as f64 * sample_s
}

fn error_rate(g: &[&Sample]) -> f64 {
    let (mut ops, mut errors) = (0, 0);
    for o in g.iter().flat_map(|s| &s.ops) {
        ops += o.count + o.errors + o.gone;
        errors += o.errors;
    }
    1000.0 * errors as f64 / ops.max(1) as f64
}
