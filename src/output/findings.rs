//! The findings table: every session finding and every run-level finding, most severe first.

use super::table::layout::{self, Column, Value, keep, wrap};
use super::table::{Terminal, section};
use crate::findings::RunFinding;
use crate::session::{Finding, SessionRecord, Severity};
use std::cmp::Reverse;
use std::collections::HashMap;

/// Rules the summary names, most severe and most frequent first.
pub const TOP_RULES: usize = 5;

/// Sessions named per rule in the summary; the rest are counted.
const EXAMPLE_SESSIONS: usize = 3;

/// Most rows kept; later findings are only counted.
pub const MAX_FINDING_ROWS: usize = 10_000;

#[derive(Debug, Clone)]
struct Row {
    /// Session id, or `None` for a run-level finding.
    session: Option<u64>,
    client: String,
    finding: Finding,
}

/// The findings of one rule, for the summary.
#[derive(Debug, Clone)]
struct RuleGroup {
    severity: Severity,
    count: u64,
    /// The first sessions it was found in (`None`: the run as a whole).
    sessions: Vec<Option<u64>>,
    /// The first finding's message.
    example: String,
}

/// Accumulates findings as sessions finish; rendered by severity (highest first), then time.
#[derive(Debug, Default)]
pub struct FindingsTable {
    rows: Vec<Row>,
    total: u64,
    per_severity: [u64; 4],
    /// Every finding counted by rule, including those past [`MAX_FINDING_ROWS`].
    rules: HashMap<String, RuleGroup>,
}

/// Columns of the findings table.
const COLUMNS: [Column; 6] = [
    keep("severity", "sev", 0),
    keep("rule", "rule", 0),
    keep("session", "sess", 1).right(),
    keep("client", "client", 2),
    keep("time (UTC)", "time", 3),
    wrap("finding", "finding", 0),
];

/// Columns of the summary's findings by rule.
const TOP_COLUMNS: [Column; 5] = [
    keep("severity", "sev", 0),
    keep("rule", "rule", 0),
    keep("count", "n", 0).right(),
    wrap("sessions", "sessions", 1),
    wrap("first example", "example", 2),
];

impl FindingsTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, row: Row) {
        self.total += 1;
        let f = &row.finding;
        let g = self
            .rules
            .entry(f.rule.clone())
            .or_insert_with(|| RuleGroup {
                severity: f.severity,
                count: 0,
                sessions: Vec::new(),
                example: layout::one_line(&f.message),
            });
        g.count += 1;
        g.severity = g.severity.max(f.severity);
        if g.sessions.len() < EXAMPLE_SESSIONS && !g.sessions.contains(&row.session) {
            g.sessions.push(row.session);
        }
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

    /// The findings table under its title, fitted to `term`, or a line saying there were none.
    pub fn render(&mut self, term: &Terminal) -> String {
        if self.is_empty() {
            return "\nFindings: none\n".to_string();
        }
        self.rows.sort_by_key(|r| {
            (
                Reverse(r.finding.severity),
                r.finding.ts,
                r.session.unwrap_or(u64::MAX),
            )
        });
        let rows: Vec<Vec<Value>> = self
            .rows
            .iter()
            .take(term.row_limit())
            .map(|r| {
                let session = r
                    .session
                    .map_or_else(|| "run".to_string(), |id| id.to_string());
                vec![
                    Value::Severity(r.finding.severity),
                    Value::Text(r.finding.rule.clone()),
                    Value::Text(session),
                    Value::Text(r.client.clone()),
                    Value::Time(r.finding.ts),
                    Value::Text(layout::one_line(&r.finding.message)),
                ]
            })
            .collect();
        let fitted = layout::render(&COLUMNS, &rows, term);
        let hidden = self.total - rows.len() as u64;
        format!(
            "\n{}",
            section("Findings", &self.summary(), hidden, &fitted, term)
        )
    }

    /// The most important rules (most severe, then most frequent) with their counts, the
    /// first sessions and the first message, for the summary; empty without findings.
    pub fn render_top(&self, term: &Terminal) -> String {
        let mut groups: Vec<(&String, &RuleGroup)> = self.rules.iter().collect();
        groups.sort_by_key(|(rule, g)| (Reverse(g.severity), Reverse(g.count), *rule));
        let rows: Vec<Vec<Value>> = groups
            .iter()
            .take(TOP_RULES)
            .map(|(rule, g)| {
                let mut sessions: Vec<String> = g
                    .sessions
                    .iter()
                    .map(|s| s.map_or_else(|| "run".to_string(), |id| id.to_string()))
                    .collect();
                let more = g.count.saturating_sub(sessions.len() as u64);
                if more > 0 {
                    sessions.push(format!("+{more}"));
                }
                vec![
                    Value::Severity(g.severity),
                    Value::Text((*rule).clone()),
                    Value::Text(g.count.to_string()),
                    Value::Text(sessions.join(", ")),
                    Value::Text(g.example.clone()),
                ]
            })
            .collect();
        if rows.is_empty() {
            return String::new();
        }
        let fitted = layout::render(&TOP_COLUMNS, &rows, term);
        let count = super::table::plural(groups.len() as u64, "rule", "rules");
        let mut s = format!(
            "\n{}",
            section("Top findings by rule", &count, 0, &fitted, term)
        );
        if groups.len() > TOP_RULES {
            s.push_str(&format!(
                "({} more rules in the findings table)\n",
                groups.len() - TOP_RULES
            ));
        }
        s
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
        let out = t.render(&Terminal::plain(None));
        let top = t.render_top(&Terminal::plain(Some(80)));
        assert!(top.contains("Top findings by rule (4 rules)"), "{top}");
        let first = top.lines().position(|l| l.contains("cleartext-password"));
        let last = top.lines().position(|l| l.contains("starttls-not-used"));
        assert!(first < last, "most severe first: {top}");
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
