//! The results table: each figure for both registries, the ratio, and the spread, written as
//! Markdown (printed too) and as JSON with every raw sample.

use std::path::Path;

use serde::Serialize;

use crate::stats::Samples;

/// Whether a larger number is the better one (throughput) or a smaller one (time, memory).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

/// One measured figure.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub section: String,
    pub name: String,
    pub unit: String,
    pub better: Better,
    pub shipshape: Samples,
    /// `None` where Distribution has no counterpart (or is not measured for this figure).
    pub distribution: Option<Samples>,
    /// The machine's limit for this figure (disk rate, hash rate), when one applies.
    pub limit: Option<f64>,
    pub note: String,
}

impl Figure {
    pub fn new(section: &str, name: &str, unit: &str, better: Better) -> Self {
        Figure {
            section: section.into(),
            name: name.into(),
            unit: unit.into(),
            better,
            shipshape: Samples::default(),
            distribution: None,
            limit: None,
            note: String::new(),
        }
    }

    /// How many times better Shipshape is: above 1 means Shipshape wins, whichever way is better.
    pub fn ratio(&self) -> Option<f64> {
        let d = self.distribution.as_ref()?.median();
        let s = self.shipshape.median();
        Some(match self.better {
            Better::Higher => s / d,
            Better::Lower => d / s,
        })
    }
}

/// A set of figures with a title and the conditions they were measured under.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub title: String,
    pub conditions: Vec<String>,
    pub figures: Vec<Figure>,
}

impl Report {
    pub fn new(title: &str) -> Self {
        Report {
            title: title.into(),
            conditions: Vec::new(),
            figures: Vec::new(),
        }
    }

    pub fn condition(&mut self, line: impl Into<String>) {
        self.conditions.push(line.into());
    }

    pub fn add(&mut self, f: Figure) {
        self.figures.push(f);
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n", self.title);
        for c in &self.conditions {
            out += &format!("- {c}\n");
        }
        if !self.conditions.is_empty() {
            out += "\n";
        }
        out += "| figure | unit | Shipshape | Distribution | ratio | of limit | runs, spread | note |\n";
        out += "|---|---|---:|---:|---:|---:|---|---|\n";
        let mut section = "";
        for f in &self.figures {
            if f.section != section {
                section = &f.section;
                out += &format!("| **{section}** | | | | | | | |\n");
            }
            let dist = f
                .distribution
                .as_ref()
                .map(|d| num(d.median()))
                .unwrap_or_else(|| "—".into());
            let ratio = f
                .ratio()
                .filter(|r| r.is_finite() && *r > 0.0)
                .map(|r| format!("{r:.2}×"))
                .unwrap_or_else(|| "—".into());
            let of_limit = f
                .limit
                .map(|l| format!("{:.0}%", 100.0 * f.shipshape.median() / l))
                .unwrap_or_else(|| "—".into());
            let mut runs = format!(
                "{} runs, ±{:.0}%",
                f.shipshape.len(),
                100.0 * f.shipshape.spread()
            );
            if let Some(d) = &f.distribution {
                runs += &format!(" / {} runs, ±{:.0}%", d.len(), 100.0 * d.spread());
            }
            out += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                f.name,
                f.unit,
                num(f.shipshape.median()),
                dist,
                ratio,
                of_limit,
                runs,
                f.note
            );
        }
        out
    }

    /// Writes `<stem>.md` and `<stem>.json` into `dir` and prints the Markdown.
    pub fn write(&self, dir: &Path, stem: &str) -> std::io::Result<()> {
        write_files(dir, stem, &self.markdown(), self)
    }
}

/// Writes a report as `<stem>.md` (`markdown`) and `<stem>.json` (`figures` with every raw
/// sample) into `dir`, and prints the Markdown.
pub fn write_files(
    dir: &Path,
    stem: &str,
    markdown: &str,
    figures: &impl Serialize,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("{stem}.md")), markdown)?;
    let json = serde_json::to_string_pretty(figures).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(format!("{stem}.json")), json)?;
    println!("{markdown}");
    Ok(())
}

/// Three significant digits, without scientific notation for the sizes seen here.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_says_how_many_times_better_shipshape_is() {
        let mut f = Figure::new("gc", "reclaim", "s", Better::Lower);
        f.shipshape.push(1.0);
        f.distribution = Some([4.0].into_iter().collect());
        assert_eq!(f.ratio(), Some(4.0));
        f.better = Better::Higher;
        assert_eq!(f.ratio(), Some(0.25));
        let mut r = Report::new("t");
        r.add(f);
        assert!(
            r.markdown()
                .contains("| reclaim | s | 1.00 | 4.00 | 0.25× |")
        );
    }
}
