//! The summary block that opens the terminal report: what was read, when, and what was
//! found, in a few lines. Run-wide figures come from the engine's statistics; the rest are
//! counted from the finished session records as they pass.

use super::layout::{time_of_day, wrap_words};
use super::terminal::Terminal;
use super::{human_bytes, plural};
use crate::capture::InputSummary;
use crate::engine::EngineStats;
use crate::output::tally::SessionTally;
use crate::session::SessionRecord;
use crate::time::Timestamp;

/// Counts over the reported sessions that the engine's statistics do not keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOverview {
    tally: SessionTally,
}

/// What the rest of the report contributes to the summary.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Authentication attempts (the credentials table's count).
    pub credentials: u64,
    /// Findings per severity, e.g. `2 high, 1 low`, or `none`.
    pub findings: String,
    /// Anomalies, and the sessions they are on.
    pub anomalies: (u64, u64),
}

impl RunOverview {
    /// Counts a finished session.
    pub fn add(&mut self, rec: &SessionRecord) {
        self.tally.add(rec);
    }

    /// The summary's lines as (label, text), before they are wrapped to the terminal.
    pub fn lines(
        &self,
        inputs: &[InputSummary],
        stats: &EngineStats,
        counts: &Counts,
    ) -> Vec<(&'static str, String)> {
        let mut out = input_lines(inputs);
        out.push(("time span", self.span()));
        out.push((
            "packets",
            format!(
                "{}, {} to or from a mail port",
                stats.packets, stats.mail_packets
            ),
        ));
        let by_port = stats.sessions.saturating_sub(stats.detected_sessions);
        out.push((
            "sessions",
            format!(
                "{} ({} SMTP, {} POP3): {} by port, {} by content on other ports{}",
                stats.sessions,
                self.tally.smtp,
                self.tally.pop3,
                by_port,
                stats.detected_sessions,
                if self.tally.proxied > 0 {
                    format!(", {} through a proxy", self.tally.proxied)
                } else {
                    String::new()
                }
            ),
        ));
        if stats.empty_sessions > 0 {
            out.push((
                "",
                format!(
                    "{} without payload either way not listed (--empty-sessions lists them)",
                    plural(stats.empty_sessions, "connection", "connections")
                ),
            ));
        }
        out.push((
            "bytes",
            format!(
                "{} of TCP payload, {} missing from the capture",
                human_bytes(stats.reassembly.delivered),
                human_bytes(stats.reassembly.missing)
            ),
        ));
        let tls = self.tally.starttls + self.tally.implicit_tls;
        out.push((
            "TLS",
            if tls == 0 {
                "no session".to_string()
            } else {
                format!(
                    "{} ({} STARTTLS, {} implicit), {} decrypted",
                    plural(tls, "session", "sessions"),
                    self.tally.starttls,
                    self.tally.implicit_tls,
                    self.tally.decrypted
                )
            },
        ));
        out.push((
            "found",
            format!(
                "{} ({} in clear text), {}, {}",
                plural(counts.credentials, "credential", "credentials"),
                self.tally.cleartext_credentials,
                plural(self.tally.messages, "message", "messages"),
                plural(self.tally.attachments, "attachment", "attachments")
            ),
        ));
        out.push(("findings", counts.findings.clone()));
        let (anomalies, on) = counts.anomalies;
        out.push((
            "anomalies",
            if anomalies == 0 {
                "none".to_string()
            } else {
                format!("{anomalies} in {}", plural(on, "session", "sessions"))
            },
        ));
        if stats.retention.refusals > 0 {
            out.push((
                "memory",
                format!(
                    "budget of {} MiB spent {} times: see the sessions' memory_budget anomalies",
                    stats.retention.limit_bytes >> 20,
                    stats.retention.refusals
                ),
            ));
        }
        out
    }

    /// First and last packet of the reported sessions, e.g.
    /// `2024-05-01 10:00:00.000 to 10:05:00.250 UTC (300.250 s)`.
    fn span(&self) -> String {
        let (Some(first), Some(last)) = (self.tally.first, self.tally.last) else {
            return "no session".to_string();
        };
        let date = |t: Timestamp| t.to_string().get(..10).unwrap_or_default().to_string();
        let end = if date(first) == date(last) {
            time_of_day(last)
        } else {
            format!("{} {}", date(last), time_of_day(last))
        };
        format!(
            "{} {} to {end} UTC ({:.3} s)",
            date(first),
            time_of_day(first),
            last.seconds_since(first)
        )
    }
}

/// One line per input: its path, format, packets and bytes, and errors if any.
fn input_lines(inputs: &[InputSummary]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let format = input.format.as_deref().unwrap_or("unreadable");
        let mut text = format!(
            "{} ({format}, {}, {})",
            input.path,
            plural(input.packets, "packet", "packets"),
            human_bytes(input.bytes)
        );
        if !input.errors.is_empty() {
            let errors = plural(input.errors.len() as u64, "error", "errors");
            text.push_str(&format!(", {errors}"));
        }
        out.push((if i == 0 { "input" } else { "" }, text));
    }
    out
}

/// Width of the label column of the summary.
const LABEL: usize = 11;

/// The summary block, each line's text wrapped between words under its label.
pub fn render(lines: &[(&'static str, String)], term: &Terminal) -> String {
    let mut out = String::from("Summary\n");
    for (label, text) in lines {
        let room = term
            .width
            .map(|w| w.saturating_sub(LABEL as u16 + 2).max(1));
        for (i, l) in wrap_words(&term.glyphs(text), room, 0).iter().enumerate() {
            let label = if i == 0 { label } else { "" };
            out.push_str(format!("  {label:<LABEL$}{l}").trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Protocol;

    #[test]
    fn summary_lines_wrap_between_words_under_their_label() {
        let lines = vec![
            ("input", "a/b.pcap (pcap, 1 packet, 60 B)".to_string()),
            (
                "found",
                "one two three four five six seven eight nine ten".repeat(3),
            ),
        ];
        let out = render(&lines, &Terminal::plain(Some(40)));
        assert!(out.starts_with("Summary\n  input      a/b.pcap"), "{out}");
        for line in out.lines() {
            assert!(line.chars().count() <= 40, "{line}");
        }
        let found = out.lines().position(|l| l.starts_with("  found")).unwrap();
        let words: Vec<&str> = out
            .lines()
            .skip(found)
            .flat_map(|l| l.split_whitespace())
            .collect();
        assert_eq!(words[0], "found");
        assert_eq!(words[1..].join(" "), lines[1].1);
    }

    #[test]
    fn counts_and_time_span_come_from_the_sessions() {
        let ep = |port| crate::session::Endpoint {
            ip: "192.0.2.1".parse().unwrap(),
            port,
        };
        let mut o = RunOverview::default();
        let mut a = SessionRecord::new(
            1,
            Protocol::Smtp,
            ep(4000),
            ep(25),
            Timestamp::from_parts(1_700_000_000, 0),
        );
        a.last_seen = Timestamp::from_parts(1_700_000_002, 500_000_000);
        o.add(&a);
        let b = SessionRecord::new(
            2,
            Protocol::Pop3,
            ep(4001),
            ep(110),
            Timestamp::from_parts(1_700_000_001, 0),
        );
        o.add(&b);
        let stats = EngineStats {
            sessions: 2,
            detected_sessions: 1,
            ..Default::default()
        };
        let lines = o.lines(&[], &stats, &Counts::default());
        let get = |l: &str| lines.iter().find(|(k, _)| *k == l).unwrap().1.clone();
        assert_eq!(
            get("time span"),
            "2023-11-14 22:13:20.000 to 22:13:22.500 UTC (2.500 s)"
        );
        assert!(get("sessions").starts_with("2 (1 SMTP, 1 POP3): 1 by port, 1 by content"));
        assert_eq!(
            get("found"),
            "0 credentials (0 in clear text), 0 messages, 0 attachments"
        );
    }
}
