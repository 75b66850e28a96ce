//! The overview's chart of the storage figures over time (`Registry::storage_history`): the
//! four classes of the storage bar stacked, so their top is what is stored, and a dashed line
//! of what garbage collection runs freed since the first sample. Drawn on the server as SVG,
//! with the figures again in a table under it (for screen readers, keyboards and copying), and
//! a sentence instead while there are fewer than two samples.

use std::time::Duration;

use maud::{Markup, html};
use shipshape_meta::samples::Point;

use super::layout::{bytes, human, when};
use crate::api::model;

/// The drawing's size in its own units; it scales to the page's width.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
/// Room for the byte labels on the left and the times below.
const LEFT: f64 = 78.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 34.0;
/// Horizontal grid lines above zero.
const GRID: u64 = 4;

/// The classes stacked from the bottom up, as the storage bar orders them: CSS class, label,
/// and the figure of a sample.
type Figure = fn(&Point) -> u64;
const CLASSES: [(&str, &str, Figure); 4] = [
    ("live", "Live", |p| p.sample.in_use),
    ("held", "Held for restore", |p| p.sample.held_for_restore),
    ("grace", "In grace", |p| p.sample.in_grace),
    ("reclaim", "Reclaimable now", |p| p.sample.reclaimable),
];

/// The top of the byte axis: at least `max`, and `GRID` times a round step in the unit of
/// `max` (bytes, KiB, MiB, …): a quarter, a half, 1, 2, 2.5 or 5 times a power of ten of it.
pub(crate) fn axis_top(max: u64) -> u64 {
    let mut unit: u64 = 1;
    while unit <= u64::MAX / 1024 && max >= unit * 1024 {
        unit *= 1024;
    }
    let step_wanted = max.div_ceil(GRID).max(1) as u128;
    // In quarters of the unit, so that a quarter and 2.5 stay whole; with bytes as the unit,
    // a step of at least one byte is at least four quarters.
    let quarters = (step_wanted * 4).div_ceil(unit as u128);
    let mut candidates = vec![1u128, 2];
    let mut decade = 1;
    while candidates.last().is_some_and(|q| *q < quarters) {
        candidates.extend([4, 8, 10, 20].map(|m| m * decade));
        decade *= 10;
    }
    let step = candidates
        .into_iter()
        .find(|q| *q >= quarters)
        .unwrap_or(quarters)
        * unit as u128
        / 4;
    (step * GRID as u128).min(u64::MAX as u128) as u64
}

/// Where a point of the plot lies in the drawing.
struct Scale {
    t0: i64,
    span: f64,
    top: f64,
}

impl Scale {
    fn x(&self, t: i64) -> f64 {
        LEFT + (t - self.t0) as f64 / self.span * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, b: u64) -> f64 {
        let h = HEIGHT - TOP - BOTTOM;
        TOP + h - b as f64 / self.top * h
    }
}

fn coords(points: impl Iterator<Item = (f64, f64)>) -> String {
    points
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An RFC 3339 time to the minute, as the page shows times.
fn minute(ms: i64) -> String {
    let t = model::time(ms);
    format!("{} UTC", t.get(..16).unwrap_or(&t).replace('T', " "))
}

/// When samples are taken, in words, given the sampling interval.
fn schedule(interval: Duration) -> String {
    if interval.is_zero() {
        "Samples are taken as garbage collection runs end".into()
    } else {
        format!(
            "Samples are taken every {} and as garbage collection runs end",
            humantime::format_duration(interval)
        )
    }
}

/// The chart, or a sentence while there are fewer than two samples; `interval`: how often
/// samples are taken.
pub(crate) fn storage_history(points: &[Point], interval: Duration) -> Markup {
    let (first, last) = match points {
        [] => {
            return html! {
                p.note data-testid="storage-history-empty" {
                    "No storage figures have been recorded yet. " (schedule(interval))
                    "; the chart is drawn from the second."
                }
            };
        }
        [one] => {
            return html! {
                p.note data-testid="storage-history-empty" {
                    "One sample so far: " (bytes(one.sample.stored)) " stored at "
                    (when(&model::time(one.sample.at))) ". " (schedule(interval))
                    "; the chart is drawn from the second."
                }
            };
        }
        [first, .., last] => (first, last),
    };
    let top = axis_top(
        points
            .iter()
            .map(|p| p.sample.stored.max(p.freed_by_runs))
            .max()
            .unwrap_or(0),
    );
    let s = Scale {
        t0: first.sample.at,
        span: (last.sample.at - first.sample.at).max(1) as f64,
        top: top.max(1) as f64,
    };
    // Each class's band: its top edge left to right, then the edge below it right to left.
    let mut below = vec![0u64; points.len()];
    let bands: Vec<(&str, String)> = CLASSES
        .iter()
        .map(|(class, _, figure)| {
            let above: Vec<u64> = points
                .iter()
                .zip(&below)
                .map(|(p, b)| b + figure(p))
                .collect();
            let upper = points
                .iter()
                .zip(&above)
                .map(|(p, a)| (s.x(p.sample.at), s.y(*a)));
            let lower = points
                .iter()
                .zip(&below)
                .rev()
                .map(|(p, b)| (s.x(p.sample.at), s.y(*b)));
            let band = coords(upper.chain(lower));
            below = above;
            (*class, band)
        })
        .collect();
    // A step at each sample: what runs freed changes only as a run ends, and each run's end
    // is a sample; a slope would say bytes were freed between.
    let freed = coords(points.iter().enumerate().flat_map(|(i, p)| {
        let x = s.x(p.sample.at);
        let before = i.checked_sub(1).map(|j| (x, s.y(points[j].freed_by_runs)));
        before.into_iter().chain([(x, s.y(p.freed_by_runs))])
    }));
    let (from, to) = (minute(first.sample.at), minute(last.sample.at));
    let title = format!("Bytes stored and bytes freed by garbage collection runs, {from} to {to}");
    let desc = format!(
        "Stored went from {} to {} ({} live, {} held for restore, {} in grace, {} reclaimable \
         now at the end). Garbage collection runs freed {} in that time.",
        human(first.sample.stored),
        human(last.sample.stored),
        human(last.sample.in_use),
        human(last.sample.held_for_restore),
        human(last.sample.in_grace),
        human(last.sample.reclaimable),
        human(last.freed_by_runs),
    );
    let grid: Vec<u64> = (0..=GRID).map(|i| top / GRID * i).collect();
    html! {
        figure.chart data-testid="storage-chart" {
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
                aria-labelledby="storage-chart-title storage-chart-desc"
                xmlns="http://www.w3.org/2000/svg" {
                title #storage-chart-title { (title) }
                desc #storage-chart-desc { (desc) }
                @for g in &grid {
                    @let y = format!("{:.1}", s.y(*g));
                    line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y) y2=(y) {}
                    text.axis x=(LEFT - 6.0) y=(y) text-anchor="end" dominant-baseline="middle" { (human(*g)) }
                }
                @for (class, points) in &bands {
                    polygon class=(class) points=(points) {}
                }
                polyline.freed points=(freed) {}
                text.axis x=(LEFT) y=(HEIGHT - 10.0) text-anchor="start" { (from) }
                text.axis x=(WIDTH - RIGHT) y=(HEIGHT - 10.0) text-anchor="end" { (to) }
            }
            figcaption {
                @for (class, label, _) in CLASSES {
                    span.legend { span class={ "swatch " (class) } {} (label) }
                }
                span.legend {
                    // The line's own dash, drawn small: the legend says it in words too.
                    svg.key width="24" height="10" aria-hidden="true" {
                        line.freed x1="0" y1="5" x2="24" y2="5" {}
                    }
                    "Freed by garbage collection runs since " (when(&model::time(first.sample.at)))
                    ": " span data-testid="chart-freed" { (bytes(last.freed_by_runs)) }
                }
            }
        }
        details data-testid="storage-history" {
            summary { "The chart's figures as a table (" (points.len()) " samples)" }
            table {
                caption { "Storage figures sampled over time, oldest first" }
                thead { tr {
                    th scope="col" { "Sampled" }
                    th scope="col" class="num" { "Stored" }
                    @for (_, label, _) in CLASSES { th scope="col" class="num" { (label) } }
                    th scope="col" class="num" { "Freed by GC runs since the first" }
                } }
                tbody {
                    @for (i, p) in points.iter().enumerate() {
                        tr data-testid={ "sample-" (i) } {
                            td {
                                (when(&model::time(p.sample.at)))
                                @if let Some(run) = p.sample.gc_run {
                                    " " a href={ "/ui/gc/runs/" (run) } { "after GC run " (run) }
                                }
                            }
                            td.num data-testid="sample-stored" { (bytes(p.sample.stored)) }
                            @for (class, _, figure) in CLASSES {
                                td.num data-testid={ "sample-" (class) } { (bytes(figure(p))) }
                            }
                            td.num data-testid="sample-freed" { (bytes(p.freed_by_runs)) }
                        }
                    }
                }
            }
        }
        p.note {
            "The online collector's deletions show as drops of what is stored; the dashed line "
            "counts the bytes garbage collection runs freed."
        }
    }
}

#[cfg(test)]
mod tests {
    use shipshape_meta::samples::{Point, Sample};

    use super::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;

    #[test]
    fn the_byte_axis_ends_on_a_round_figure_the_grid_divides_evenly() {
        for (max, top) in [
            (0, 4),
            (1, 4),
            (4, 4),
            (5, 8),
            (900, 1000),
            (1000, 1000),
            (1001, 2000),
            (3 * KIB, 4 * KIB),
            (9 * KIB, 10 * KIB),
            (11 * KIB, 20 * KIB),
            (500 * MIB, 800 * MIB),
            (700 * MIB, 800 * MIB),
            (801 * MIB, 1000 * MIB),
            (3 * GIB + 1, 4 * GIB),
            (150 * GIB, 200 * GIB),
            (9 * GIB / 2, 8 * GIB),
            (KIB + 100, 2 * KIB),
            (1900, 2 * KIB),
        ] {
            let got = axis_top(max);
            assert_eq!(got, top, "axis_top({max}) = {got}, not {top}");
            assert!(got >= max && got.is_multiple_of(GRID));
        }
    }

    fn point(at: i64, live: u64, reclaimable: u64, freed: u64) -> Point {
        Point {
            sample: Sample {
                at,
                stored: live + reclaimable,
                in_use: live,
                reclaimable,
                ..Sample::default()
            },
            freed_by_runs: freed,
        }
    }

    #[test]
    fn fewer_than_two_samples_are_said_in_a_sentence() {
        let none = storage_history(&[], Duration::from_secs(900)).into_string();
        assert!(
            none.contains("No storage figures have been recorded yet"),
            "{none}"
        );
        assert!(
            none.contains("every 15m and as garbage collection runs end"),
            "{none}"
        );
        assert!(!none.contains("<svg"));
        let one = storage_history(&[point(0, 2048, 0, 0)], Duration::ZERO).into_string();
        assert!(one.contains("One sample so far"), "{one}");
        assert!(
            one.contains("Samples are taken as garbage collection runs end"),
            "{one}"
        );
        assert!(one.contains(r#"<data value="2048""#), "{one}");
        assert!(!one.contains("<svg"));
    }

    #[test]
    fn the_chart_stacks_the_classes_draws_what_runs_freed_and_tables_every_figure() {
        let points = [point(0, 3 * KIB, KIB, 0), point(60_000, 3 * KIB, 0, KIB)];
        let html = storage_history(&points, Duration::from_secs(900)).into_string();
        assert!(html.contains(r#"role="img""#));
        assert!(html.contains("<title id=\"storage-chart-title\">"));
        assert!(
            html.contains("Stored went from 4.0 KiB to 3.0 KiB"),
            "{html}"
        );
        assert!(html.contains("runs freed 1.0 KiB"), "{html}");
        // The axis ends at 4 KiB; live is the bottom band, from the axis to 3 KiB on both ends.
        let (bottom, three) = (
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM - 0.75 * (HEIGHT - TOP - BOTTOM),
        );
        let live = format!(
            r#"<polygon class="live" points="{LEFT:.1},{three:.1} {:.1},{three:.1} {:.1},{bottom:.1} {LEFT:.1},{bottom:.1}">"#,
            WIDTH - RIGHT,
            WIDTH - RIGHT,
        );
        assert!(html.contains(&live), "{live} in {html}");
        // What runs freed steps up at the sample it was freed by.
        let freed = format!(
            r#"<polyline class="freed" points="{LEFT:.1},{bottom:.1} {:.1},{bottom:.1} {:.1},{:.1}">"#,
            WIDTH - RIGHT,
            WIDTH - RIGHT,
            HEIGHT - BOTTOM - 0.25 * (HEIGHT - TOP - BOTTOM),
        );
        assert!(html.contains(&freed), "{freed} in {html}");
        for id in ["sample-0", "sample-1"] {
            assert!(html.contains(&format!(r#"data-testid="{id}""#)));
        }
        assert!(
            html.contains(r#"<td class="num" data-testid="sample-freed"><data value="1024""#),
            "{html}"
        );
    }
}
