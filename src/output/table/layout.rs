//! Fitting a table to the terminal: first shorter headers and times, then leaving out the
//! least important columns. Values that must be read whole (addresses, times, secrets) never
//! wrap; free text wraps only between words, and no word is ever split.

use super::terminal::Terminal;
use crate::session::Severity;
use crate::time::Timestamp;
use comfy_table::presets::{ASCII_FULL_CONDENSED, UTF8_FULL_CONDENSED};
use comfy_table::{Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement, Table, Width};
use unicode_width::UnicodeWidthStr;

/// How a column behaves when space is short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Never wrapped: every cell stays on one line (addresses, times, secrets, numbers).
    Keep,
    /// Wrapped between words when needed; the longest word still fits on a line.
    Wrap,
}

/// One column of a fitted table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Header at full width.
    pub header: &'static str,
    /// Header when the table is abbreviated.
    pub short: &'static str,
    /// 0: never left out; among the others, higher numbers are left out first.
    pub drop: u8,
    /// Whether cells may wrap.
    pub fit: Fit,
    /// Right-aligned (numbers).
    pub right: bool,
}

/// A column whose cells never wrap.
pub const fn keep(header: &'static str, short: &'static str, drop: u8) -> Column {
    Column {
        header,
        short,
        drop,
        fit: Fit::Keep,
        right: false,
    }
}

/// A column of free text, wrapped between words.
pub const fn wrap(header: &'static str, short: &'static str, drop: u8) -> Column {
    Column {
        header,
        short,
        drop,
        fit: Fit::Wrap,
        right: false,
    }
}

impl Column {
    /// The same column, right-aligned.
    pub const fn right(mut self) -> Self {
        self.right = true;
        self
    }
}

/// A cell's content, formatted when the layout is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text shown as it is.
    Text(String),
    /// A capture time: RFC 3339 at full width, `HH:MM:SS.mmm` when abbreviated.
    Time(Timestamp),
    /// Text with a shorter form for an abbreviated table (full, short).
    Short(String, String),
    /// A severity, coloured when the terminal is.
    Severity(Severity),
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}

/// A rendered table and what was done to make it fit.
#[derive(Debug, Clone, Default)]
pub struct Fitted {
    /// The table, without a final newline.
    pub text: String,
    /// The UTC date of every time in the table, when times were shortened to the time of day.
    pub date: Option<String>,
    /// Headers of the columns left out.
    pub dropped: Vec<&'static str>,
}

impl Fitted {
    /// A note for the table's title: the date its times are on, e.g. `, times in UTC on
    /// 2024-05-01`.
    pub fn title_note(&self) -> String {
        self.date
            .as_ref()
            .map_or_else(String::new, |d| format!(", times in UTC on {d}"))
    }

    /// A line under the table naming the columns left out, or `None` when none were.
    pub fn dropped_note(&self) -> Option<String> {
        (!self.dropped.is_empty()).then(|| {
            format!(
                "(not shown at this width: {}; --wide shows every column)",
                self.dropped.join(", ")
            )
        })
    }
}

/// `text` on one line: control characters from the wire and runs of white space become one
/// space, so no capture text can move the cursor or break a row.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c != ' ' || !out.ends_with(' ') {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// `text` wrapped between words into lines of at most `width` characters (`None`: one
/// line), every line after the first indented by `indent` spaces. A word longer than a whole
/// line is cut: this is only used for prose, never for the tables' unbreakable values.
pub fn wrap_words(text: &str, width: Option<u16>, indent: usize) -> Vec<String> {
    let Some(width) = width.map(usize::from) else {
        return vec![text.to_string()];
    };
    let room = width.saturating_sub(indent).max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let limit = if lines.is_empty() { width } else { room };
            let gap = usize::from(used > 0);
            if used + gap + word.len() <= limit {
                if gap == 1 {
                    line.push(' ');
                }
                line.extend(word.iter());
                used += gap + word.len();
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                used = 0;
                continue;
            }
            // A word longer than a line: as much as fits, the rest on the next line.
            let rest = word.split_off(limit.min(word.len()));
            line.extend(word.iter());
            lines.push(std::mem::take(&mut line));
            word = rest;
            if word.is_empty() {
                break;
            }
        }
    }
    if used > 0 || lines.is_empty() {
        lines.push(line);
    }
    let pad = " ".repeat(indent);
    for l in lines.iter_mut().skip(1) {
        l.insert_str(0, &pad);
    }
    lines
}

/// The `YYYY-MM-DD` part of a time.
fn date_of(ts: Timestamp) -> String {
    let s = ts.to_string();
    s.get(..10).unwrap_or(&s).to_string()
}

/// `HH:MM:SS.mmm` of a time (truncated, so it is a prefix of the time of day in full).
pub fn time_of_day(ts: Timestamp) -> String {
    let s = ts.to_string();
    s.get(11..23).unwrap_or(&s).to_string()
}

/// The one date all times in `rows` fall on, if they share one.
fn common_date(rows: &[Vec<Value>]) -> Option<String> {
    let mut date: Option<String> = None;
    for v in rows.iter().flatten() {
        if let Value::Time(ts) = v {
            let d = date_of(*ts);
            match &date {
                None => date = Some(d),
                Some(seen) if *seen != d => return None,
                Some(_) => {}
            }
        }
    }
    date
}

/// One way of laying the table out: abbreviated or not, and which columns are shown.
struct Plan {
    abbreviated: bool,
    shown: Vec<usize>,
}

fn severity_color(s: Severity) -> Option<Color> {
    match s {
        Severity::High => Some(Color::Red),
        Severity::Medium => Some(Color::Yellow),
        Severity::Low => Some(Color::Cyan),
        Severity::Info => None,
    }
}

/// Plans from widest to narrowest: all columns at full width, all abbreviated, then the
/// abbreviated table without its least important columns, one at a time.
fn plans(columns: &[Column]) -> Vec<Plan> {
    let all: Vec<usize> = (0..columns.len()).collect();
    let mut order: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| columns[i].drop > 0)
        .collect();
    // Highest number first; of equals, the one further right goes first.
    order.sort_by_key(|&i| (std::cmp::Reverse(columns[i].drop), std::cmp::Reverse(i)));
    let mut out = vec![
        Plan {
            abbreviated: false,
            shown: all.clone(),
        },
        Plan {
            abbreviated: true,
            shown: all.clone(),
        },
    ];
    for k in 1..=order.len() {
        let gone = &order[..k];
        out.push(Plan {
            abbreviated: true,
            shown: all.iter().copied().filter(|i| !gone.contains(i)).collect(),
        });
    }
    out
}

/// The narrowest a column can be: its widest cell when kept whole, its longest word when
/// wrapped.
fn min_width(column: &Column, header: &str, cells: &[&str]) -> usize {
    let measure = |s: &str| match column.fit {
        Fit::Keep => s.width(),
        Fit::Wrap => s.split(' ').map(UnicodeWidthStr::width).max().unwrap_or(0),
    };
    cells
        .iter()
        .map(|c| measure(c))
        .chain([header
            .split(' ')
            .map(UnicodeWidthStr::width)
            .max()
            .unwrap_or(0)])
        .chain(matches!(column.fit, Fit::Keep).then(|| header.width()))
        .max()
        .unwrap_or(0)
}

/// The text of a cell under a plan.
fn format(value: &Value, abbreviated: bool, date: Option<&str>, term: &Terminal) -> String {
    let text = match value {
        Value::Text(s) => s.clone(),
        Value::Time(ts) if !abbreviated => ts.to_string(),
        Value::Time(ts) if date.is_some() => time_of_day(*ts),
        Value::Time(ts) => format!("{} {}", date_of(*ts), time_of_day(*ts)),
        Value::Short(full, _) if !abbreviated => full.clone(),
        Value::Short(_, short) => short.clone(),
        Value::Severity(s) => s.as_str().to_string(),
    };
    term.glyphs(&text)
}

/// Lays `rows` out under `columns` for `term`: fitted to its width (see the module
/// documentation), or at natural width with everything in full under `--wide`.
pub fn render(columns: &[Column], rows: &[Vec<Value>], term: &Terminal) -> Fitted {
    let date = common_date(rows);
    let Some(width) = term.width.map(usize::from) else {
        let all: Vec<usize> = (0..columns.len()).collect();
        let plan = Plan {
            abbreviated: false,
            shown: all,
        };
        return Fitted {
            text: build(columns, rows, &plan, None, term, None).to_string(),
            date: None,
            dropped: Vec::new(),
        };
    };
    let plans = plans(columns);
    let mut last = String::new();
    let mut last_dropped = Vec::new();
    for plan in &plans {
        let date = date.as_deref().filter(|_| plan.abbreviated);
        let texts: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                plan.shown
                    .iter()
                    .map(|&i| {
                        r.get(i)
                            .map_or_else(String::new, |v| format(v, plan.abbreviated, date, term))
                    })
                    .collect()
            })
            .collect();
        let mut needed = 1;
        for (k, &i) in plan.shown.iter().enumerate() {
            let header = header_text(&columns[i], plan.abbreviated, term);
            let cells: Vec<&str> = texts.iter().map(|r| r[k].as_str()).collect();
            // In full, nothing wraps: a table that only fits by wrapping is abbreviated first.
            let column = if plan.abbreviated {
                columns[i]
            } else {
                Column {
                    fit: Fit::Keep,
                    ..columns[i]
                }
            };
            needed += min_width(&column, &header, &cells) + 3;
        }
        let dropped: Vec<&'static str> = (0..columns.len())
            .filter(|i| !plan.shown.contains(i))
            .map(|i| columns[i].header)
            .collect();
        let is_last = std::ptr::eq(plan, plans.last().unwrap_or(plan));
        if needed > width && !is_last {
            continue;
        }
        let text = build(columns, rows, plan, date, term, Some((width, &texts))).to_string();
        // comfy-table's arrangement is trusted only as far as the result shows.
        if text.lines().all(|l| l.width() <= width) {
            return Fitted {
                text,
                date: date.map(str::to_string),
                dropped,
            };
        }
        last = text;
        last_dropped = dropped;
    }
    Fitted {
        text: last,
        date: None,
        dropped: last_dropped,
    }
}

fn header_text(column: &Column, abbreviated: bool, term: &Terminal) -> String {
    term.glyphs(if abbreviated {
        column.short
    } else {
        column.header
    })
}

/// The comfy-table of a plan; `fit` gives the width and the cells' texts when fitting.
fn build(
    columns: &[Column],
    rows: &[Vec<Value>],
    plan: &Plan,
    date: Option<&str>,
    term: &Terminal,
    fit: Option<(usize, &Vec<Vec<String>>)>,
) -> Table {
    let mut t = Table::new();
    t.load_style(if term.ascii {
        ASCII_FULL_CONDENSED
    } else {
        UTF8_FULL_CONDENSED
    });
    // Colour is decided by `term`, not by comfy-table's look at standard output.
    t.force_no_tty();
    if term.color {
        t.enforce_styling();
    }
    t.set_header(
        plan.shown
            .iter()
            .map(|&i| Cell::new(header_text(&columns[i], plan.abbreviated, term))),
    );
    for (n, row) in rows.iter().enumerate() {
        let cells = plan.shown.iter().enumerate().map(|(k, &i)| {
            let text = match fit {
                Some((_, texts)) => texts[n][k].clone(),
                None => row
                    .get(i)
                    .map_or_else(String::new, |v| format(v, plan.abbreviated, date, term)),
            };
            let cell = Cell::new(text);
            match row.get(i) {
                Some(Value::Severity(s)) if term.color => match severity_color(*s) {
                    Some(c) => cell.fg(c),
                    None => cell,
                },
                _ => cell,
            }
        });
        t.add_row(cells.collect::<Vec<_>>());
    }
    match fit {
        Some((width, texts)) => {
            t.set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(u16::try_from(width).unwrap_or(u16::MAX));
            for (k, &i) in plan.shown.iter().enumerate() {
                let column = &columns[i];
                let constraint = match column.fit {
                    Fit::Keep => ColumnConstraint::ContentWidth,
                    Fit::Wrap => {
                        let header = header_text(column, plan.abbreviated, term);
                        let cells: Vec<&str> = texts.iter().map(|r| r[k].as_str()).collect();
                        let min = min_width(column, &header, &cells) + 2;
                        ColumnConstraint::LowerBoundary(Width::Fixed(
                            u16::try_from(min).unwrap_or(u16::MAX),
                        ))
                    }
                };
                if let Some(c) = t.column_mut(k) {
                    c.set_constraint(constraint);
                }
            }
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    for (k, &i) in plan.shown.iter().enumerate() {
        if columns[i].right
            && let Some(c) = t.column_mut(k)
        {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [Column; 4] = [
        keep("id", "id", 0),
        keep("address", "addr", 0),
        wrap("description", "desc", 1),
        keep("start (UTC)", "start", 2),
    ];

    fn rows(n: usize) -> Vec<Vec<Value>> {
        (0..n)
            .map(|i| {
                vec![
                    Value::Text(i.to_string()),
                    Value::Text(format!("[2001:db8::{i:x}]:{}", 40000 + i)),
                    Value::Text("a rather long description of what happened, in words".into()),
                    Value::Time(Timestamp::from_parts(1_700_000_000 + i as i64, 123_456_789)),
                ]
            })
            .collect()
    }

    #[test]
    fn a_table_that_fits_is_left_alone() {
        let f = render(&COLUMNS, &rows(3), &Terminal::plain(Some(200)));
        assert!(f.text.contains("2023-11-14T22:13:20.123456Z"), "{}", f.text);
        assert!(f.text.contains("start (UTC)"));
        assert_eq!((f.date, f.dropped.len()), (None, 0));
    }

    #[test]
    fn narrower_tables_shorten_times_then_wrap_words_then_drop_columns() {
        let rows = rows(3);
        for width in [40usize, 50, 60, 70, 80, 90] {
            let f = render(&COLUMNS, &rows, &Terminal::plain(Some(width as u16)));
            for line in f.text.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{width}: {line:?}\n{}",
                    f.text
                );
            }
            for r in &rows {
                let Value::Text(addr) = &r[1] else { panic!() };
                assert!(
                    f.text.lines().any(|l| l.contains(addr.as_str())),
                    "{width}: {addr}"
                );
            }
            // Words are never split: every line's description words are whole words.
            for line in f.text.lines() {
                for word in line.split(['│', '┆', ' ']) {
                    let header = ["id", "address", "addr", "description", "desc", "start"];
                    if word.chars().all(|c| c.is_ascii_lowercase() || c == ',')
                        && !word.is_empty()
                        && !header.contains(&word)
                    {
                        assert!(
                            "a rather long description of what happened, in words"
                                .split(' ')
                                .any(|w| w == word),
                            "{width}: split word {word:?}\n{}",
                            f.text
                        );
                    }
                }
            }
        }
        let f = render(&COLUMNS, &rows, &Terminal::plain(Some(80)));
        assert_eq!(f.date.as_deref(), Some("2023-11-14"));
        assert!(f.text.contains("22:13:20.123") && !f.text.contains("2023-11-14T"));
        let f = render(&COLUMNS, &rows, &Terminal::plain(Some(40)));
        assert_eq!(f.dropped, ["description", "start (UTC)"]);
        assert!(f.dropped_note().unwrap().contains("--wide"));
    }

    #[test]
    fn wide_is_natural_width_and_ascii_uses_ascii_borders() {
        let f = render(&COLUMNS, &rows(2), &Terminal::plain(None));
        assert!(f.text.lines().next().unwrap().chars().count() > 100);
        let ascii = Terminal {
            width: Some(80),
            ascii: true,
            color: false,
        };
        let f = render(&COLUMNS, &rows(2), &ascii);
        assert!(f.text.is_ascii(), "{}", f.text);
        assert!(f.text.starts_with('+'));
    }

    #[test]
    fn times_on_several_days_keep_their_date() {
        let mut rows = rows(2);
        rows[1][3] = Value::Time(Timestamp::from_parts(1_700_100_000, 0));
        let f = render(&COLUMNS, &rows, &Terminal::plain(Some(70)));
        assert_eq!(f.date, None);
        assert!(f.text.contains("2023-11-14 22:13:20.123"), "{}", f.text);
    }

    #[test]
    fn prose_wraps_between_words_and_cuts_only_words_longer_than_a_line() {
        let text = "one two three fourfivesixseveneightnineten eleven";
        let lines = wrap_words(text, Some(12), 2);
        let want = [
            "one two",
            "  three",
            "  fourfivesi",
            "  xseveneigh",
            "  tnineten",
            "  eleven",
        ];
        assert_eq!(lines, want);
        assert_eq!(wrap_words(text, None, 2), [text]);
    }

    #[test]
    fn severities_are_coloured_only_when_asked() {
        let cols = [keep("severity", "sev", 0)];
        let rows = vec![vec![Value::Severity(Severity::High)]];
        let mut term = Terminal::plain(Some(80));
        assert!(!render(&cols, &rows, &term).text.contains('\x1b'));
        term.color = true;
        assert!(render(&cols, &rows, &term).text.contains("\x1b["));
    }
}
