//! The bench report as Markdown (BENCHMARKS.md's tables) and its number formatting.

use super::BenchReport;

/// A figure with at least three significant digits (all of them from 1,000 up) and thousands
/// separators: the slow side of a ratio, tens of items/s, keeps its first decimal.
pub fn human(rate: f64) -> String {
    if rate >= 1000.0 {
        let rounded = rate.round() as u64;
        let digits = rounded.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if rate >= 100.0 {
        format!("{rate:.0}")
    } else if rate >= 10.0 {
        format!("{rate:.1}")
    } else {
        format!("{rate:.2}")
    }
}

impl BenchReport {
    /// The two tables (generation, scoring) as Markdown.
    pub fn markdown(&self) -> String {
        let n = self.threads;
        let mut out = format!(
            "triad {} on {} ({} cores, {}); window {:.2} s; {n} threads for the all-threads columns\n\n",
            self.triad_version,
            self.machine.cpu,
            self.machine.cores,
            self.machine.os,
            self.window_s
        );
        out.push_str(&format!(
            "Generation (items/s)\n\n| family | level | generate 1t | generate {n}t | generate + Z3 {n}t | Z3 checks 1t | into Parquet 1t | into Parquet {n}t |\n|---|---|---|---|---|---|---|---|\n"
        ));
        for l in &self.levels {
            let mark = if l.end_to_end_exhausted {
                " (exh.)"
            } else {
                ""
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {}{mark} | {}{mark} |\n",
                l.family,
                l.level,
                human(l.generate_1t),
                human(l.generate_nt),
                human(l.generate_certify_nt),
                human(l.z3_checks_1t),
                human(l.end_to_end_1t),
                human(l.end_to_end_nt)
            ));
        }
        let kinds: Vec<&str> = self
            .levels
            .first()
            .map(|l| l.score_1t.iter().map(|(k, _)| k.as_str()).collect())
            .unwrap_or_default();
        out.push_str(
            "\nScoring (rollouts/s; ~3 KB of thinking unless noted)\n\n| family | level |",
        );
        for k in &kinds {
            out.push_str(&format!(" {k} 1t |"));
        }
        out.push_str(&format!(" correct {n}t |\n|---|---|"));
        for _ in 0..=kinds.len() {
            out.push_str("---|");
        }
        out.push('\n');
        for l in &self.levels {
            out.push_str(&format!("| {} | {} |", l.family, l.level));
            for (_, rate) in &l.score_1t {
                out.push_str(&format!(" {} |", human(*rate)));
            }
            out.push_str(&format!(" {} |\n", human(l.score_correct_nt)));
        }
        if self.levels.iter().any(|l| l.end_to_end_exhausted) {
            out.push_str("\n(exh.): the level has fewer distinct items than the run asked for; the figure includes the search for the rest.\n");
        }
        out.push_str(&format!("\n{:.1} s in all\n", self.seconds));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_figures() {
        assert_eq!(human(1234567.8), "1,234,568");
        assert_eq!(human(123.4), "123");
        assert_eq!(human(22.24), "22.2");
        assert_eq!(human(3.214), "3.21");
    }
}
