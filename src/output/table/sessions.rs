//! The sessions table: one row per session, sorted by id.

use super::human_bytes;
use super::layout::{self, Column, Fitted, Value, keep, wrap};
use super::overview::RunOverview;
use super::terminal::Terminal;
use crate::session::{
    Direction, Endpoint, PerDirection, Protocol, SessionRecord, SessionState, TlsMode,
};
use crate::time::Timestamp;
use std::io::{self, Write};

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

/// The sessions table's columns; `--wide` and the streamed plain text show them all.
const COLUMNS: [Column; 11] = [
    keep("id", "id", 0),
    // One column for both ends: two IPv6 endpoints side by side do not fit in 80 columns,
    // one above the other do, and neither is ever broken.
    wrap("client → server", "client → server", 0),
    keep("proto", "proto", 4),
    keep("start (UTC)", "start", 0),
    keep("duration", "dur", 5).right(),
    keep("pkts c/s", "pkts", 8).right(),
    keep("bytes c→s", "c→s", 7).right(),
    keep("bytes s→c", "s→c", 6).right(),
    keep("missing", "miss", 2).right(),
    keep("state", "state", 3),
    wrap("tls", "tls", 1),
];

/// The border characters of the streamed text: (top, header rule, bottom) as
/// `[left, fill, join, right]`, and the cell separators `[left, middle, right]`.
struct Borders {
    top: [char; 4],
    rule: [char; 4],
    bottom: [char; 4],
    sides: [char; 3],
}

/// comfy-table's UTF8_FULL_CONDENSED and ASCII_FULL_CONDENSED, as the fitted tables use.
const UTF8_BORDERS: Borders = Borders {
    top: ['┌', '─', '┬', '┐'],
    rule: ['╞', '═', '╪', '╡'],
    bottom: ['└', '─', '┴', '┘'],
    sides: ['│', '┆', '│'],
};
const ASCII_BORDERS: Borders = Borders {
    top: ['+', '-', '+', '+'],
    rule: ['+', '=', '=', '+'],
    bottom: ['+', '-', '+', '+'],
    sides: ['|', '|', '|'],
};

impl SessionRow {
    /// The cells of a fitted table: the start is a time, shortened with the others.
    fn values(&self) -> Vec<Value> {
        let mut cells: Vec<Value> = self.cells().into_iter().map(Value::Text).collect();
        if let Some(start) = cells.get_mut(3) {
            *start = Value::Time(self.first_seen);
        }
        cells
    }

    fn cells(&self) -> [String; 11] {
        let tls = match (self.cleartext, self.tls) {
            (Some(TlsMode::Starttls), _) => "starttls, clear",
            (Some(TlsMode::Implicit), _) => "clear on tls port",
            (None, None) => "-",
            (None, Some(TlsMode::Starttls)) => "starttls",
            (None, Some(TlsMode::Implicit)) => "implicit",
        };
        [
            self.id.to_string(),
            format!("{} → {}", self.client, self.server),
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
    /// The summary's counts, over every session added.
    overview: RunOverview,
}

impl SessionTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a session's row (or counts it, past [`MAX_SESSION_ROWS`]).
    pub fn add(&mut self, rec: &SessionRecord) {
        self.overview.add(rec);
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

    /// The summary's counts over every session added.
    pub fn overview(&self) -> &RunOverview {
        &self.overview
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders the first `limit` rows (by id) fitted to `term`.
    pub fn render(&mut self, term: &Terminal, limit: usize) -> Fitted {
        self.rows.sort_by_key(|r| r.id);
        let rows: Vec<Vec<Value>> = self
            .rows
            .iter()
            .take(limit)
            .map(SessionRow::values)
            .collect();
        layout::render(&COLUMNS, &rows, term)
    }

    /// Writes every row at natural width, as [`SessionTable::render`] does under `--wide`,
    /// row by row: a big capture's table is never held in memory as text.
    pub fn write_plain(&mut self, out: &mut dyn Write, term: &Terminal) -> io::Result<()> {
        self.rows.sort_by_key(|r| r.id);
        let borders = if term.ascii {
            &ASCII_BORDERS
        } else {
            &UTF8_BORDERS
        };
        let header = COLUMNS.map(|c| term.glyphs(c.header));
        let mut widths = header.clone().map(|h| h.chars().count());
        for r in &self.rows {
            for (w, cell) in widths.iter_mut().zip(r.cells()) {
                *w = (*w).max(term.glyphs(&cell).chars().count());
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
        let [side, middle, end] = borders.sides;
        let mut line = String::new();
        let mut row = |out: &mut dyn Write, cells: &[&str]| {
            line.clear();
            line.push(side);
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i > 0 {
                    line.push(middle);
                }
                let pad = w.saturating_sub(cell.chars().count());
                let (left, right) = if COLUMNS[i].right { (pad, 0) } else { (0, pad) };
                line.push(' ');
                line.extend(std::iter::repeat_n(' ', left));
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', right + 1));
            }
            line.push(end);
            writeln!(out, "{line}")
        };
        border(out, borders.top)?;
        row(out, &header.each_ref().map(String::as_str))?;
        border(out, borders.rule)?;
        for r in &self.rows {
            let cells = r.cells().map(|c| term.glyphs(&c));
            row(out, &cells.each_ref().map(String::as_str))?;
        }
        // The last line ends without a newline, like `render`.
        let mut last = Vec::new();
        border(&mut last, borders.bottom)?;
        out.write_all(last.strip_suffix(b"\n").unwrap_or(&last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn plain_rendering_is_what_the_wide_layout_prints() {
        for ascii in [false, true] {
            let term = Terminal {
                width: None,
                ascii,
                color: false,
            };
            for rows in [0u64, 1, 2, 7, 40] {
                let mut table = SessionTable::new();
                for n in 0..rows {
                    table.add(&record(rows * 100 + n));
                }
                let want = table.render(&term, usize::MAX).text;
                let mut got = Vec::new();
                table.write_plain(&mut got, &term).expect("write");
                assert_eq!(
                    String::from_utf8(got).expect("utf8"),
                    want,
                    "{rows} rows, ascii {ascii}"
                );
            }
        }
    }

    #[test]
    fn fitted_tables_keep_endpoints_and_start_times_whole() {
        let mut table = SessionTable::new();
        for n in 0..30 {
            table.add(&record(n));
        }
        for width in [80u16, 120, 200] {
            let f = table.render(&Terminal::plain(Some(width)), 25);
            for line in f.text.lines() {
                assert!(line.chars().count() <= usize::from(width), "{line}");
            }
            for r in table.rows.iter().take(25) {
                for ep in [r.client.to_string(), r.server.to_string()] {
                    assert!(f.text.lines().any(|l| l.contains(&ep)), "{width}: {ep}");
                }
                let start = layout::time_of_day(r.first_seen);
                assert!(
                    f.text.lines().any(|l| l.contains(&start)),
                    "{width}: {start}"
                );
            }
        }
    }
}
