//! Human-readable tables (comfy-table) built from finished session records.

use crate::session::{Direction, SessionRecord};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

/// Formats a byte count compactly (`512 B`, `1.5 KiB`, `3.2 MiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A table in the house style with the given header.
pub(crate) fn new_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().map(|h| Cell::new(*h)));
    t
}

/// One row of the sessions table, kept small so big captures stay cheap.
#[derive(Debug, Clone)]
struct SessionRow {
    id: u64,
    cells: Vec<String>,
}

/// Accumulates the sessions table as sessions finish; rendered sorted by session id.
#[derive(Debug, Default)]
pub struct SessionTable {
    rows: Vec<SessionRow>,
}

impl SessionTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a session's row.
    pub fn add(&mut self, rec: &SessionRecord) {
        let tls = match &rec.tls {
            None => "-".to_string(),
            Some(t) => match t.mode {
                crate::session::TlsMode::Starttls => "starttls".to_string(),
                crate::session::TlsMode::Implicit => "implicit".to_string(),
            },
        };
        let missing = rec.missing_bytes.client + rec.missing_bytes.server;
        self.rows.push(SessionRow {
            id: rec.id,
            cells: vec![
                rec.id.to_string(),
                rec.client.to_string(),
                rec.server.to_string(),
                rec.protocol.as_str().to_string(),
                rec.first_seen.to_string(),
                format!("{:.3}s", rec.last_seen.seconds_since(rec.first_seen)),
                format!(
                    "{}/{}",
                    rec.packets.get(Direction::Client),
                    rec.packets.get(Direction::Server)
                ),
                human_bytes(rec.bytes.client),
                human_bytes(rec.bytes.server),
                if missing == 0 {
                    "0".to_string()
                } else {
                    human_bytes(missing)
                },
                rec.state.as_str().to_string(),
                tls,
            ],
        });
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders the table.
    pub fn render(&mut self) -> String {
        self.rows.sort_by_key(|r| r.id);
        let mut t = new_table(&[
            "id",
            "client",
            "server",
            "proto",
            "start (UTC)",
            "duration",
            "pkts c/s",
            "bytes c→s",
            "bytes s→c",
            "missing",
            "state",
            "tls",
        ]);
        for r in &self.rows {
            t.add_row(r.cells.iter().map(Cell::new));
        }
        for col in [5, 6, 7, 8, 9] {
            if let Some(c) = t.column_mut(col) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 20), "5.0 MiB");
    }
}
