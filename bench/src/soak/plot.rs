//! A hand-written SVG line chart: panels stacked over one time axis, each with its own y axis
//! (linear, or logarithmic for latencies that span decades), a grid and a legend. Gaps in a
//! series (no operation of that kind in a window) break its line.

use std::fmt::Write as _;

/// One line of a panel: `(x, y)` points, `None` where there is no value.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(f64, Option<f64>)>,
    /// Draws every point as a dot too: for sparse series (a run every few minutes).
    pub markers: bool,
}

pub struct Panel {
    pub title: String,
    pub y_label: String,
    pub log: bool,
    pub series: Vec<Series>,
}

const WIDTH: f64 = 1010.0;
const LEFT: f64 = 80.0;
/// Room right of the panels for the legend: its longest label, "database pages in use (MiB)".
const LEGEND: f64 = 220.0;
const PANEL_HEIGHT: f64 = 260.0;
/// Room above a panel for its title and below it for the x axis's labels.
const PANEL_GAP: f64 = 80.0;
const TOP: f64 = 60.0;

fn plot_width() -> f64 {
    WIDTH - LEFT - LEGEND
}

/// A step of 1, 2 or 5 times a power of ten giving about `target` ticks over `range`.
fn nice_step(range: f64, target: f64) -> f64 {
    let raw = (range / target).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn label(v: f64) -> String {
    if v == 0.0 || v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Maps values to the panel's height: linear from 0, or by decades.
struct YScale {
    log: bool,
    lo: f64,
    hi: f64,
}

impl YScale {
    fn fit(panel: &Panel) -> YScale {
        let values: Vec<f64> = panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|p| p.1))
            .filter(|v| !panel.log || *v > 0.0)
            .collect();
        let max = values.iter().copied().fold(f64::NAN, f64::max);
        if panel.log {
            let min = values.iter().copied().fold(f64::NAN, f64::min);
            let lo = if min.is_nan() {
                0.0
            } else {
                min.log10().floor()
            };
            let hi = if max.is_nan() {
                1.0
            } else {
                max.log10().ceil()
            };
            YScale {
                log: true,
                lo,
                hi: hi.max(lo + 1.0),
            }
        } else {
            let max = if max.is_nan() || max <= 0.0 { 1.0 } else { max };
            let step = nice_step(max, 5.0);
            YScale {
                log: false,
                lo: 0.0,
                hi: (max / step).ceil() * step,
            }
        }
    }

    /// From 0 (bottom) to 1 (top); `None` for what a log axis cannot show.
    fn fraction(&self, v: f64) -> Option<f64> {
        if self.log {
            (v > 0.0).then(|| (v.log10() - self.lo) / (self.hi - self.lo))
        } else {
            Some((v - self.lo) / (self.hi - self.lo))
        }
    }

    /// Grid lines: `(value, major)`.
    fn ticks(&self) -> Vec<(f64, bool)> {
        if self.log {
            let mut ticks = Vec::new();
            for decade in self.lo as i32..=self.hi as i32 {
                let d = 10f64.powi(decade);
                ticks.push((d, true));
                if (decade as f64) < self.hi {
                    ticks.extend([(2.0 * d, false), (5.0 * d, false)]);
                }
            }
            ticks
        } else {
            let step = nice_step(self.hi, 5.0);
            (0..=(self.hi / step).round() as usize)
                .map(|i| (i as f64 * step, true))
                .collect()
        }
    }
}

/// The chart: `title` over `panels`, x from 0 to `x_max` in `x_label`'s unit.
pub fn svg(title: &str, x_label: &str, x_max: f64, panels: &[Panel]) -> String {
    let height = TOP + panels.len() as f64 * (PANEL_HEIGHT + PANEL_GAP);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="24" font-size="16" font-weight="bold" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    for (i, panel) in panels.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL_HEIGHT + PANEL_GAP) + 20.0;
        draw_panel(&mut out, panel, top, x_max, x_label);
    }
    out.push_str("</svg>\n");
    out
}

fn draw_panel(out: &mut String, panel: &Panel, top: f64, x_max: f64, x_label: &str) {
    let (pw, bottom) = (plot_width(), top + PANEL_HEIGHT);
    let y = YScale::fit(panel);
    let x_max = if x_max > 0.0 { x_max } else { 1.0 };
    let px = |x: f64| LEFT + x / x_max * pw;
    let py = |f: f64| bottom - f * PANEL_HEIGHT;
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}" font-size="14" font-weight="bold">{}</text>"#,
        top - 10.0,
        escape(&panel.title)
    );
    for (v, major) in y.ticks() {
        let Some(f) = y.fraction(v).filter(|f| (-1e-9..=1.0 + 1e-9).contains(f)) else {
            continue;
        };
        let (stroke, yy) = (if major { "#ccc" } else { "#eee" }, py(f));
        let _ = writeln!(
            out,
            r#"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{stroke}"/>"#,
            LEFT + pw
        );
        if major || !y.log {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                yy + 4.0,
                label(v)
            );
        }
    }
    let x_step = nice_step(x_max, 8.0);
    for k in 0..=(x_max / x_step).floor() as usize {
        let x = k as f64 * x_step;
        let xx = px(x);
        let _ = writeln!(
            out,
            r##"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{bottom}" stroke="#eee"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            bottom + 16.0,
            label(x)
        );
    }
    let _ = writeln!(
        out,
        r#"<rect x="{LEFT}" y="{top}" width="{pw}" height="{PANEL_HEIGHT}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        bottom + 34.0,
        escape(x_label)
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate({:.1},{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        LEFT - 55.0,
        top + PANEL_HEIGHT / 2.0,
        escape(&panel.y_label)
    );
    for (i, s) in panel.series.iter().enumerate() {
        let points: Vec<Option<(f64, f64)>> = s
            .points
            .iter()
            .map(|&(x, v)| Some((px(x), py(y.fraction(v?)?))))
            .collect();
        draw_series(out, s, &points);
        let ly = top + 14.0 + i as f64 * 20.0;
        let lx = LEFT + pw + 14.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2.5"/><text x="{}" y="{}">{}</text>"#,
            lx + 24.0,
            s.color,
            lx + 30.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
}

/// The series' line, broken at missing points; a point with no neighbour is drawn as a dot so
/// that it is seen.
fn draw_series(out: &mut String, s: &Series, points: &[Option<(f64, f64)>]) {
    for run in points.split(Option::is_none) {
        let coords: Vec<String> = run
            .iter()
            .flatten()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        if coords.len() > 1 {
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.6"/>"#,
                coords.join(" "),
                s.color
            );
        }
        if s.markers || coords.len() == 1 {
            for (x, y) in run.iter().flatten() {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{}"/>"#,
                    s.color
                );
            }
        }
    }
}
