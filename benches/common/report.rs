//! Statistics over repeated runs and the markdown the bench prints and writes.

use std::fmt::Write as _;

/// Median of the values that are finite; NaN when there are none.
pub fn median(values: &[f64]) -> f64 {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return f64::NAN;
    }
    finite.sort_by(f64::total_cmp);
    let mid = finite.len() / 2;
    if finite.len() % 2 == 1 {
        finite[mid]
    } else {
        (finite[mid - 1] + finite[mid]) / 2.0
    }
}

/// Nearest-rank percentile (`p` in 0..=100) of sorted samples; 0 when there are none.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A number with `decimals` places, or "n/a" when it was not measured.
pub fn num(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "n/a".to_owned()
    }
}

/// The values of each run, for the reader who wants the spread behind a median.
pub fn runs(values: &[f64], decimals: usize) -> String {
    let parts: Vec<String> = values.iter().map(|v| num(*v, decimals)).collect();
    parts.join(" / ")
}

pub struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(title: &str, headers: &[&str]) -> Self {
        Self {
            title: title.to_owned(),
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "## {}\n", self.title);
        let _ = writeln!(out, "| {} |", self.headers.join(" | "));
        let rule: Vec<&str> = self.headers.iter().map(|_| "---").collect();
        let _ = writeln!(out, "| {} |", rule.join(" | "));
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out.push('\n');
        out
    }
}

/// Checks of the pure helpers, run by `cargo test --benches` (see each bench's main).
pub fn self_check() {
    let cases: [(&[f64], f64); 4] = [
        (&[3.0, 1.0, 2.0], 2.0),
        (&[4.0, 1.0, 3.0, 2.0], 2.5),
        (&[5.0, f64::NAN], 5.0),
        (&[7.0], 7.0),
    ];
    for (values, want) in cases {
        assert_eq!(median(values), want, "{values:?}");
    }
    assert!(median(&[]).is_nan());
    let sorted: Vec<u64> = (1..=100).collect();
    let cases = [(50.0, 50), (99.0, 99), (100.0, 100), (0.0, 1), (99.9, 100)];
    for (p, want) in cases {
        assert_eq!(percentile(&sorted, p), want, "p{p}");
    }
    assert_eq!(percentile(&[], 50.0), 0);
    let mut table = Table::new("T", &["a", "b"]);
    table.row(vec!["1".into(), num(f64::NAN, 1)]);
    table.note("n");
    assert_eq!(
        table.render(),
        "## T\n\n| a | b |\n| --- | --- |\n| 1 | n/a |\n\n- n\n\n"
    );
}
