//! Human-readable tables (comfy-table) built from finished session records.

use crate::session::{
    Direction, Endpoint, PerDirection, Protocol, SessionRecord, SessionState, TlsMode,
};
use crate::time::Timestamp;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use std::io::{self, Write};

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

/// One row of the sessions table: the record's figures, formatted only when rendered, so a
/// capture of millions of sessions costs about a hundred bytes per session here.
#[derive(Debug, Clone)]
struct SessionRow {
    id: u64,
    client: Endpoint,
    server: Endpoint,
    protocol: Protocol,
    first_seen: Timestamp,
    last_seen: Timestamp,
    packets: PerDirection<u64>,
    bytes: PerDirection<u64>,
    missing: u64,
    state: SessionState,
    tls: Option<TlsMode>,
    /// Clear text where TLS was expected (the mode it was expected by).
    cleartext: Option<TlsMode>,
}

/// Column titles of the sessions table.
const HEADER: [&str; 12] = [
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
];

/// Columns whose cells are right-aligned (numbers).
const RIGHT_ALIGNED: [usize; 5] = [5, 6, 7, 8, 9];

impl SessionRow {
    fn cells(&self) -> [String; 12] {
        let tls = match (self.cleartext, self.tls) {
            (Some(TlsMode::Starttls), _) => "starttls, clear",
            (Some(TlsMode::Implicit), _) => "clear on tls port",
            (None, None) => "-",
            (None, Some(TlsMode::Starttls)) => "starttls",
            (None, Some(TlsMode::Implicit)) => "implicit",
        };
        [
            self.id.to_string(),
            self.client.to_string(),
            self.server.to_string(),
            self.protocol.as_str().to_string(),
            self.first_seen.to_string(),
            format!("{:.3}s", self.last_seen.seconds_since(self.first_seen)),
            format!(
                "{}/{}",
                self.packets.get(Direction::Client),
                self.packets.get(Direction::Server)
            ),
            human_bytes(self.bytes.client),
            human_bytes(self.bytes.server),
            if self.missing == 0 {
                "0".to_string()
            } else {
                human_bytes(self.missing)
            },
            self.state.as_str().to_string(),
            tls.to_string(),
        ]
    }
}

/// Rows the sessions table keeps; later sessions are counted (the JSON has them all), so
/// `analyze` stays flat in memory on any capture.
pub const MAX_SESSION_ROWS: usize = 20_000;

/// Accumulates the sessions table as sessions finish; rendered sorted by session id.
#[derive(Debug, Default)]
pub struct SessionTable {
    rows: Vec<SessionRow>,
    /// Sessions past [`MAX_SESSION_ROWS`], counted only.
    not_shown: u64,
}

impl SessionTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a session's row (or counts it, past [`MAX_SESSION_ROWS`]).
    pub fn add(&mut self, rec: &SessionRecord) {
        if self.rows.len() >= MAX_SESSION_ROWS {
            self.not_shown += 1;
            return;
        }
        self.rows.push(SessionRow {
            id: rec.id,
            client: rec.client,
            server: rec.server,
            protocol: rec.protocol,
            first_seen: rec.first_seen,
            last_seen: rec.last_seen,
            packets: rec.packets,
            bytes: rec.bytes,
            missing: rec.missing_bytes.client + rec.missing_bytes.server,
            state: rec.state,
            tls: rec.tls.as_ref().map(|t| t.mode),
            cleartext: rec.cleartext_instead_of_tls.map(|c| c.mode),
        });
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Sessions added past [`MAX_SESSION_ROWS`], which the table does not list.
    pub fn not_shown(&self) -> u64 {
        self.not_shown
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders the table (laid out for the terminal when standard output is one).
    pub fn render(&mut self) -> String {
        self.comfy_table().to_string()
    }

    fn comfy_table(&mut self) -> Table {
        self.rows.sort_by_key(|r| r.id);
        let mut t = new_table(&HEADER);
        for r in &self.rows {
            t.add_row(r.cells().into_iter().map(Cell::new));
        }
        for col in RIGHT_ALIGNED {
            if let Some(c) = t.column_mut(col) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        t
    }

    /// Writes the table as [`SessionTable::render`] does when standard output is not a
    /// terminal, row by row: a big capture's table is never held in memory as text.
    pub fn write_plain(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.rows.sort_by_key(|r| r.id);
        let mut widths = HEADER.map(|h| h.chars().count());
        for r in &self.rows {
            for (w, cell) in widths.iter_mut().zip(r.cells()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let border = |out: &mut dyn Write, [left, fill, join, right]: [char; 4]| {
            let mut line = String::new();
            line.push(left);
            for (i, w) in widths.iter().enumerate() {
                if i > 0 {
                    line.push(join);
                }
                line.extend(std::iter::repeat_n(fill, w + 2));
            }
            line.push(right);
            writeln!(out, "{line}")
        };
        let mut line = String::new();
        let mut row = |out: &mut dyn Write, cells: &[&str]| {
            line.clear();
            line.push('│');
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i > 0 {
                    line.push('┆');
                }
                let pad = w.saturating_sub(cell.chars().count());
                let (left, right) = if RIGHT_ALIGNED.contains(&i) {
                    (pad, 0)
                } else {
                    (0, pad)
                };
                line.push(' ');
                line.extend(std::iter::repeat_n(' ', left));
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', right + 1));
            }
            line.push('│');
            writeln!(out, "{line}")
        };
        border(out, ['┌', '─', '┬', '┐'])?;
        row(out, &HEADER)?;
        border(out, ['╞', '═', '╪', '╡'])?;
        for r in &self.rows {
            let cells = r.cells();
            let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
            row(out, &cells)?;
        }
        // The last line ends without a newline, like `render`.
        let mut last = Vec::new();
        border(&mut last, ['└', '─', '┴', '┘'])?;
        out.write_all(last.strip_suffix(b"\n").unwrap_or(&last))
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

    fn record(n: u64) -> SessionRecord {
        let mut rng = crate::capture::synth::Rng::new(n + 1);
        let ep = |rng: &mut crate::capture::synth::Rng| Endpoint {
            ip: if rng.below(3) == 0 {
                std::net::IpAddr::V6(std::net::Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0,
                    0,
                    0,
                    0,
                    rng.below(9) as u16,
                    rng.below(70000) as u16,
                ))
            } else {
                std::net::IpAddr::V4(std::net::Ipv4Addr::from(rng.next_u64() as u32))
            },
            port: rng.below(65536) as u16,
        };
        let (client, server) = (ep(&mut rng), ep(&mut rng));
        let first = Timestamp(1_700_000_000_000_000_000 + rng.below(1 << 40) as i64);
        let mut rec = SessionRecord::new(
            rng.below(1 << 40) as u64,
            if rng.below(2) == 0 {
                Protocol::Smtp
            } else {
                Protocol::Pop3
            },
            client,
            server,
            first,
        );
        // Sizes from a few bytes to terabytes, so numbers outgrow their headers.
        let big = |rng: &mut crate::capture::synth::Rng| rng.next_u64() >> (rng.below(64) as u32);
        rec.last_seen = Timestamp(first.0 + (big(&mut rng) >> 10) as i64);
        rec.packets = PerDirection {
            client: big(&mut rng),
            server: big(&mut rng),
        };
        rec.bytes = PerDirection {
            client: big(&mut rng),
            server: big(&mut rng),
        };
        rec.missing_bytes.server = if rng.below(2) == 0 { 0 } else { big(&mut rng) };
        rec.state = [
            SessionState::Closed,
            SessionState::Reset,
            SessionState::Open,
            SessionState::TimedOut,
        ][rng.below(4)];
        rec
    }

    #[test]
    fn the_table_keeps_a_bounded_number_of_rows_and_counts_the_rest() {
        let mut table = SessionTable::new();
        let rec = record(1);
        for _ in 0..MAX_SESSION_ROWS + 25 {
            table.add(&rec);
        }
        assert_eq!(table.len(), MAX_SESSION_ROWS);
        assert_eq!(table.not_shown(), 25);
    }

    #[test]
    fn plain_rendering_is_what_comfy_table_prints_off_a_terminal() {
        for rows in [0u64, 1, 2, 7, 40] {
            let mut table = SessionTable::new();
            for n in 0..rows {
                table.add(&record(rows * 100 + n));
            }
            let mut want = table.comfy_table();
            want.force_no_tty();
            let mut got = Vec::new();
            table.write_plain(&mut got).expect("write");
            assert_eq!(
                String::from_utf8(got).expect("utf8"),
                want.to_string(),
                "{rows} rows"
            );
        }
    }
}
