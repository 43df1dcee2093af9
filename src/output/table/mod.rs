//! The terminal report of `analyze`: a summary, then tables fitted to the terminal's width
//! (comfy-table), built from finished session records.

pub mod layout;
pub mod overview;
pub mod report;
pub mod sessions;
pub mod terminal;

pub use sessions::{MAX_SESSION_ROWS, SessionTable};
pub use terminal::{ColorChoice, Terminal};

/// Rows a fitted table shows; the rest are counted under it (`--wide` shows every row kept).
pub const TERMINAL_ROWS: usize = 40;

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

/// `n` with the singular or plural noun, e.g. `1 attempt`, `2 attempts`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A table under its title, e.g. `Messages (7), times in UTC on 2024-05-01`, followed by what
/// was left out: columns that did not fit, and `hidden` rows past the terminal's limit.
pub fn section(
    title: &str,
    count: &str,
    hidden: u64,
    fitted: &layout::Fitted,
    term: &Terminal,
) -> String {
    let mut s = format!(
        "{title} ({count}){}\n{}\n",
        fitted.title_note(),
        fitted.text
    );
    let mut notes: Vec<String> = fitted.dropped_note().into_iter().collect();
    if hidden > 0 {
        notes.push(format!(
            "({} not shown: --wide lists more, `mailsift export` lists them all)",
            plural(hidden, "more row", "more rows")
        ));
    }
    for note in notes {
        s.push_str(&note_lines(&note, term));
    }
    s
}

/// A note under a table, wrapped to the terminal.
pub fn note_lines(note: &str, term: &Terminal) -> String {
    let mut s = String::new();
    for line in layout::wrap_words(&term.glyphs(note), term.width, 1) {
        s.push_str(&line);
        s.push('\n');
    }
    s
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

    #[test]
    fn plurals_agree_with_their_number() {
        assert_eq!(plural(1, "attempt", "attempts"), "1 attempt");
        assert_eq!(plural(0, "attempt", "attempts"), "0 attempts");
        assert_eq!(plural(2, "message", "messages"), "2 messages");
    }
}
