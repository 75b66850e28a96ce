//! What the remote commands print: aligned tables with human sizes, or the API's JSON; and the
//! confirmation asked before destructive actions.

use std::fmt::Display;
use std::io::{BufRead, IsTerminal, Write};

use serde_json::Value;

use super::{RemoteError, Result};

/// How results are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns with human-readable sizes and times
    Table,
    /// The API's JSON, unchanged, for scripts
    Json,
}

/// An answer as the server sent it (pretty-printed): what `-o json` shows.
pub fn print_json(v: &Value) {
    // A JSON value always serialises.
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A table printed with every column as wide as its widest cell.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (w, c)) in widths.iter().zip(row).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(c);
                line.extend(std::iter::repeat_n(' ', w - c.chars().count()));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// Bytes in binary units: `0 B`, `512 B`, `1.5 KiB`, `2.0 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A field the API may leave out (null), or `-` when it does.
pub fn or_dash<T: Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// An RFC 3339 time of the API shortened to the second: `2024-05-01 12:00:00`; `-` for none.
pub fn time<'a>(t: impl Into<Option<&'a str>>) -> String {
    match t.into() {
        Some(t) => {
            let t = t.split('.').next().unwrap_or(t).trim_end_matches('Z');
            t.replacen('T', " ", 1)
        }
        None => "-".into(),
    }
}

/// A digest cut to the algorithm and 12 hex digits (the JSON output has it whole); `-` for
/// none.
pub fn digest<'a>(d: impl Into<Option<&'a str>>) -> String {
    match d.into() {
        Some(d) => match d.split_once(':') {
            Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}", &hex[..12]),
            _ => d.to_string(),
        },
        None => "-".into(),
    }
}

/// Asks before a destructive action unless `yes`. Without a terminal to ask on, refuses:
/// a script must say `--yes` explicitly.
pub fn confirm(yes: bool, action: &str) -> Result<()> {
    confirm_listing(yes, action, &[])
}

/// Like `confirm`, listing first what the action touches (one line each, the first 50).
pub fn confirm_listing(yes: bool, action: &str, items: &[String]) -> Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(RemoteError::NotATerminal(action.to_string()));
    }
    const SHOWN: usize = 50;
    for item in items.iter().take(SHOWN) {
        eprintln!("  {item}");
    }
    if items.len() > SHOWN {
        eprintln!("  … and {} more", items.len() - SHOWN);
    }
    eprint!("{action}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| RemoteError::Usage(format!("cannot read the answer: {e}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(RemoteError::Declined),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn columns_align() {
        let mut t = Table::new(&["NAME", "TAGS"]);
        t.row(vec!["a/long-name".into(), "3".into()]);
        t.row(vec!["b".into(), "12".into()]);
        assert_eq!(
            t.render(),
            "NAME         TAGS\na/long-name  3\nb            12\n"
        );
    }

    #[test]
    fn times_and_digests_shorten() {
        assert_eq!(time("2024-05-01T12:00:00.123Z"), "2024-05-01 12:00:00");
        assert_eq!(time(None), "-");
        assert_eq!(
            digest("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            "sha256:0123456789ab"
        );
        assert_eq!(digest(None), "-");
        assert_eq!(or_dash(Some(7)), "7");
        assert_eq!(or_dash(None::<&str>), "-");
    }
}
