//! The findings table: every session finding and every run-level finding, most severe first.

use super::table::new_table;
use crate::findings::RunFinding;
use crate::session::{Finding, SessionRecord, Severity};
use comfy_table::Cell;
use std::cmp::Reverse;

/// Most rows kept; later findings are only counted.
pub const MAX_FINDING_ROWS: usize = 10_000;

#[derive(Debug, Clone)]
struct Row {
    /// Session id, or `None` for a run-level finding.
    session: Option<u64>,
    client: String,
    finding: Finding,
}

/// Accumulates findings as sessions finish; rendered by severity (highest first), then time.
#[derive(Debug, Default)]
pub struct FindingsTable {
    rows: Vec<Row>,
    total: u64,
    per_severity: [u64; 4],
}

impl FindingsTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, row: Row) {
        self.total += 1;
        if let Some(n) = self.per_severity.get_mut(row.finding.severity as usize) {
            *n += 1;
        }
        if self.rows.len() < MAX_FINDING_ROWS {
            self.rows.push(row);
        }
    }

    /// Adds the findings of a session.
    pub fn add_session(&mut self, rec: &SessionRecord) {
        for f in &rec.findings {
            self.push(Row {
                session: Some(rec.id),
                client: rec.client.ip.to_string(),
                finding: f.clone(),
            });
        }
    }

    /// Adds run-level findings.
    pub fn add_run(&mut self, findings: &[RunFinding]) {
        for f in findings {
            self.push(Row {
                session: None,
                client: f
                    .client
                    .map_or_else(|| "-".to_string(), |ip| ip.to_string()),
                finding: f.finding.clone(),
            });
        }
    }

    /// Findings added (including those past [`MAX_FINDING_ROWS`]).
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether there are no findings.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Findings added that did not fit in the table.
    pub fn not_shown(&self) -> u64 {
        self.total - self.rows.len() as u64
    }

    /// A one-line count per severity, e.g. `2 high, 1 medium`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = Severity::ALL
            .iter()
            .rev()
            .filter_map(|s| {
                let n = self.per_severity.get(*s as usize).copied().unwrap_or(0);
                (n > 0).then(|| format!("{n} {s}"))
            })
            .collect();
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// Renders the table.
    pub fn render(&mut self) -> String {
        self.rows.sort_by_key(|r| {
            (
                Reverse(r.finding.severity),
                r.finding.ts,
                r.session.unwrap_or(u64::MAX),
            )
        });
        let mut t = new_table(&[
            "severity",
            "rule",
            "session",
            "client",
            "time (UTC)",
            "finding",
        ]);
        for r in &self.rows {
            let session = r
                .session
                .map_or_else(|| "run".to_string(), |id| id.to_string());
            t.add_row(vec![
                Cell::new(r.finding.severity),
                Cell::new(&r.finding.rule),
                Cell::new(session),
                Cell::new(&r.client),
                Cell::new(r.finding.ts),
                Cell::new(&r.finding.message),
            ]);
        }
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Endpoint, Protocol};
    use crate::time::Timestamp;

    fn finding(rule: &str, severity: Severity, ts: i64) -> Finding {
        Finding {
            rule: rule.into(),
            severity,
            message: format!("{rule} happened"),
            ts: Timestamp::from_parts(ts, 0),
            details: None,
        }
    }

    #[test]
    fn most_severe_first_then_by_time_and_run_rows_marked() {
        let ep = |port| Endpoint {
            ip: "192.0.2.9".parse().unwrap(),
            port,
        };
        let mut rec = SessionRecord::new(7, Protocol::Smtp, ep(40000), ep(587), Timestamp(0));
        rec.findings = vec![
            finding("starttls-not-used", Severity::Low, 1),
            finding("cleartext-password", Severity::High, 3),
            finding("auth-without-tls", Severity::Medium, 2),
        ];
        let mut t = FindingsTable::new();
        t.add_session(&rec);
        t.add_run(&[RunFinding {
            finding: finding("brute-force", Severity::Medium, 0),
            client: Some("192.0.2.9".parse().unwrap()),
            sessions: vec![7],
        }]);
        assert_eq!(t.len(), 4);
        assert_eq!(t.summary(), "1 high, 2 medium, 1 low");
        let out = t.render();
        let order: Vec<&str> = t.rows.iter().map(|r| r.finding.rule.as_str()).collect();
        assert_eq!(
            order,
            [
                "cleartext-password",
                "brute-force",
                "auth-without-tls",
                "starttls-not-used"
            ]
        );
        assert!(out.contains("run") && out.contains("brute-force happened"));
        assert_eq!(FindingsTable::new().summary(), "none");
    }
}
