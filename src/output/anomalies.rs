//! The anomalies view of `analyze`: every session's anomalies grouped by kind, with how
//! often each occurred and in which sessions.

use super::table::layout::{self, Column, Value, keep, wrap};
use super::table::{Terminal, section};
use crate::session::SessionRecord;
use std::collections::BTreeMap;

/// Session ids listed per kind; the rest are counted (`+12`).
pub const MAX_LISTED_SESSIONS: usize = 8;

/// Most distinct kinds kept; later kinds are counted only (kinds are a short fixed list in
/// practice, this bounds a hostile capture).
pub const MAX_KINDS: usize = 1_000;

/// Longest example detail shown, in characters.
const MAX_DETAIL_CHARS: usize = 100;

#[derive(Debug, Default)]
struct Group {
    /// Occurrences, repeats within a session included.
    count: u64,
    /// Sessions with this kind.
    sessions: u64,
    /// The first of them, in the order they finished.
    listed: Vec<u64>,
    /// The detail of the first occurrence.
    example: String,
}

/// Accumulates anomalies as sessions finish.
#[derive(Debug, Default)]
pub struct AnomalyTable {
    kinds: BTreeMap<String, Group>,
    /// Anomalies of kinds past [`MAX_KINDS`].
    not_kept: u64,
    /// Sessions with at least one anomaly.
    sessions: u64,
}

const COLUMNS: [Column; 4] = [
    keep("kind", "kind", 0),
    keep("count", "n", 0).right(),
    wrap("sessions", "sessions", 1),
    wrap("first example", "example", 2),
];

impl AnomalyTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the anomalies of a session.
    pub fn add(&mut self, rec: &SessionRecord) {
        if rec.anomalies.is_empty() {
            return;
        }
        self.sessions += 1;
        // One session may record a kind once per side: it is listed once.
        let mut seen: Vec<&str> = Vec::new();
        for a in &rec.anomalies {
            if !self.kinds.contains_key(&a.kind) && self.kinds.len() >= MAX_KINDS {
                self.not_kept += a.count;
                continue;
            }
            let g = self.kinds.entry(a.kind.clone()).or_default();
            if g.count == 0 {
                g.example = a.detail.chars().take(MAX_DETAIL_CHARS).collect();
            }
            g.count += a.count;
            if !seen.contains(&a.kind.as_str()) {
                seen.push(&a.kind);
                g.sessions += 1;
                if g.listed.len() < MAX_LISTED_SESSIONS {
                    g.listed.push(rec.id);
                }
            }
        }
    }

    /// Occurrences of all kinds.
    pub fn total(&self) -> u64 {
        self.kinds.values().map(|g| g.count).sum::<u64>() + self.not_kept
    }

    /// Sessions with at least one anomaly.
    pub fn sessions(&self) -> u64 {
        self.sessions
    }

    /// Distinct kinds seen (those kept).
    pub fn kinds(&self) -> usize {
        self.kinds.len()
    }

    /// The table under its title, or a line saying there were none.
    pub fn render(&self, term: &Terminal) -> String {
        if self.kinds.is_empty() {
            return "\nAnomalies: none\n".to_string();
        }
        let rows: Vec<Vec<Value>> = self
            .kinds
            .iter()
            .map(|(kind, g)| {
                let mut ids: Vec<String> = g.listed.iter().map(u64::to_string).collect();
                let mut listed = ids.join(", ");
                if g.sessions > ids.len() as u64 {
                    listed.push_str(&format!(" +{}", g.sessions - ids.len() as u64));
                }
                ids.clear();
                vec![
                    Value::Text(kind.clone()),
                    Value::Text(g.count.to_string()),
                    Value::Text(listed),
                    Value::Text(layout::one_line(&g.example)),
                ]
            })
            .collect();
        let fitted = layout::render(&COLUMNS, &rows, term);
        let mut s = format!(
            "\n{}",
            section(
                "Anomalies by kind",
                &rows.len().to_string(),
                0,
                &fitted,
                term
            )
        );
        if self.not_kept > 0 {
            s.push_str(&format!(
                "({} more of other kinds not listed)\n",
                self.not_kept
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direction::Direction;
    use crate::session::{Endpoint, Protocol};
    use crate::time::Timestamp;

    fn rec(id: u64) -> SessionRecord {
        let ep = |port| Endpoint {
            ip: "192.0.2.1".parse().unwrap(),
            port,
        };
        SessionRecord::new(id, Protocol::Smtp, ep(40000), ep(25), Timestamp(0))
    }

    #[test]
    fn anomalies_group_by_kind_with_counts_and_capped_session_lists() {
        let mut t = AnomalyTable::new();
        for id in 1..=12 {
            let mut r = rec(id);
            r.anomaly(Timestamp(0), Some(Direction::Client), "line_too_long", "x");
            r.anomaly(Timestamp(0), Some(Direction::Server), "line_too_long", "y");
            if id == 3 {
                r.anomaly(Timestamp(0), None, "gap", "4 bytes\r\nmissing");
            }
            t.add(&r);
        }
        t.add(&rec(13));
        assert_eq!((t.total(), t.sessions(), t.kinds()), (25, 12, 2));
        let out = t.render(&Terminal::plain(Some(80)));
        assert!(out.contains("Anomalies by kind (2)"), "{out}");
        assert!(out.contains("1, 2, 3, 4, 5, 6, 7, 8 +4"), "{out}");
        assert!(
            out.contains("24") && out.contains("4 bytes missing"),
            "{out}"
        );
        assert!(
            AnomalyTable::new()
                .render(&Terminal::plain(Some(80)))
                .contains("none")
        );
    }
}
