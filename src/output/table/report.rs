//! The whole terminal report of `analyze` (and of `sniff` without `--ndjson`): the summary
//! and the top findings first, then every table.

use super::overview::{self, Counts};
use super::sessions::SessionTable;
use super::terminal::Terminal;
use super::{MAX_SESSION_ROWS, section};
use crate::capture::InputSummary;
use crate::engine::EngineStats;
use crate::output::activity::ActivityTables;
use crate::output::review::ReviewReport;
use std::io::{self, Write};

/// The tables a run filled, and what the run reported besides.
pub struct ReportParts<'a> {
    /// The sessions table (and the summary's counts).
    pub sessions: &'a mut SessionTable,
    /// The per-protocol, message and anomaly tables.
    pub activity: &'a mut ActivityTables,
    /// One summary per input.
    pub inputs: &'a [InputSummary],
    /// The engine's run-wide figures.
    pub stats: &'a EngineStats,
    /// The review's credentials and findings tables.
    pub review: &'a mut ReviewReport,
}

/// Writes the report for `term` to `out`.
pub fn write(out: &mut dyn Write, term: &Terminal, parts: ReportParts<'_>) -> io::Result<()> {
    let ReportParts {
        sessions,
        activity,
        inputs,
        stats,
        review,
    } = parts;
    let counts = Counts {
        credentials: review.credentials.as_ref().map_or(0, |c| c.attempts()),
        findings: review
            .findings
            .as_ref()
            .map_or_else(|| "none".to_string(), |f| f.summary()),
        anomalies: (
            activity.anomalies().total(),
            activity.anomalies().sessions(),
        ),
    };
    let lines = sessions.overview().lines(inputs, stats, &counts);
    write!(out, "{}", overview::render(&lines, term))?;
    if let Some(f) = review.findings.as_ref() {
        write!(out, "{}", f.render_top(term))?;
    }
    writeln!(out)?;
    write_sessions(out, term, sessions)?;
    write!(out, "{}", activity.render(term))?;
    if let Some(creds) = review.credentials.as_mut() {
        write!(out, "{}", creds.render(term))?;
    }
    if let Some(findings) = review.findings.as_mut() {
        write!(out, "{}", findings.render(term))?;
    }
    write!(out, "{}", activity.anomalies().render(term))
}

/// The sessions table: fitted and limited to the terminal, or streamed whole under `--wide`.
fn write_sessions(
    out: &mut dyn Write,
    term: &Terminal,
    table: &mut SessionTable,
) -> io::Result<()> {
    let total = table.len() as u64 + table.not_shown();
    if term.width.is_none() {
        if table.not_shown() > 0 {
            writeln!(
                out,
                "Sessions (the first {} of {total}; `mailsift export` lists them all)",
                MAX_SESSION_ROWS
            )?;
        } else {
            writeln!(out, "Sessions ({total})")?;
        }
        // Streamed: a big capture's table is not built in memory first.
        table.write_plain(out, term)?;
        return writeln!(out);
    }
    let fitted = table.render(term, term.row_limit());
    let shown = table.len().min(term.row_limit()) as u64;
    write!(
        out,
        "{}",
        section("Sessions", &total.to_string(), total - shown, &fitted, term)
    )
}
