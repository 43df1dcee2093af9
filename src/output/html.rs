//! `--html FILE` (analyze, export): one self-contained HTML report for reading in a browser
//! and handing on: a summary, the findings, credentials and sessions tables, and a section
//! per session with its transcript (client and server side by side, logins and the TLS
//! switch marked) and its messages (headers, envelope, attachments with hashes).
//!
//! Self-contained: inline CSS, no external resource; a few lines of optional script sort and
//! filter the tables, and everything reads without it. Every text from the capture is
//! HTML-escaped, control and bidirectional-override characters are shown as escapes, so a
//! hostile subject or command can neither inject markup nor disguise itself.
//!
//! Bounded and streamed: each session's section is written to a spool file beside the
//! report as the session finishes; only the table rows (capped) stay in memory. The report
//! is the head and tables, then the spool copied in. Both are [`AtomicFile`]s: the spool is
//! private and never renamed, the report takes its name only when whole. Transcripts show at most
//! [`HtmlLimits::max_events_per_session`] events each and [`HtmlLimits::max_events_total`]
//! in all, long texts are cut, and what is left out is counted in the report.

use super::credentials::secret_text;
use super::file::{Access, AtomicFile};
use super::naming::{rule_name, session_uid};
use crate::capture::InputSummary;
use crate::engine::EngineStats;
use crate::findings::RunFinding;
use crate::mail::AddressRecord;
use crate::output::tally::SessionTally;
use crate::session::{
    Credential, Event, EventKind, MessageRecord, MessageSource, Protocol, SessionRecord, Severity,
    TlsMode,
};
use crate::time::Timestamp;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// How much of a capture the report shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtmlLimits {
    /// Transcript events shown per session.
    pub max_events_per_session: usize,
    /// Transcript events shown in the whole report.
    pub max_events_total: usize,
    /// Rows of the sessions table (and sessions given a section).
    pub max_sessions: usize,
    /// Rows of the findings and of the credentials tables.
    pub max_table_rows: usize,
    /// Messages shown per session.
    pub max_messages_per_session: usize,
    /// Characters of one text shown (an event, a header, a body excerpt).
    pub max_text_chars: usize,
}

impl Default for HtmlLimits {
    fn default() -> Self {
        HtmlLimits {
            max_events_per_session: 2000,
            max_events_total: 200_000,
            max_sessions: 20_000,
            max_table_rows: 10_000,
            max_messages_per_session: 200,
            max_text_chars: 4000,
        }
    }
}

/// What [`HtmlReport::finish`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtmlSummary {
    /// The report file.
    pub path: PathBuf,
    /// Sessions given a section.
    pub sessions_shown: u64,
    /// Transcript events shown and left out.
    pub events_shown: u64,
    /// Transcript events left out by the limits (or dropped by the engine).
    pub events_omitted: u64,
}

/// Appends `s` HTML-escaped, with control and bidirectional formatting characters shown as
/// `\u{..}` escapes (newlines and tabs kept when `keep_newlines`), cut at `max` characters.
pub fn push_escaped(out: &mut String, s: &str, max: usize, keep_newlines: bool) {
    for (shown, c) in s.chars().enumerate() {
        if shown == max {
            let rest = s.chars().count().saturating_sub(max);
            let _ = write!(out, "… ({rest} more characters)");
            return;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' if keep_newlines => out.push(c),
            c if c.is_control() || is_bidi_control(c) => {
                let _ = write!(out, "<span class=\"esc\">\\u{{{:x}}}</span>", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// Characters that reorder text on screen (Trojan Source style spoofing).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` escaped for HTML, cut at `max` characters.
fn esc(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    push_escaped(&mut out, s, max, false);
    out
}

/// Short cells: at most this many characters.
const CELL_CHARS: usize = 200;

fn cell(s: &str) -> String {
    esc(s, CELL_CHARS)
}

fn opt_cell(s: Option<&str>) -> String {
    s.map_or_else(|| "<span class=\"na\">-</span>".to_string(), cell)
}

/// Clock time of a capture timestamp: `12:00:00.123456`.
fn clock(ts: Timestamp) -> String {
    ts.to_string().get(11..26).unwrap_or_default().to_string()
}

fn severity_class(s: Severity) -> &'static str {
    s.as_str()
}

fn outcome(success: Option<bool>) -> &'static str {
    match success {
        Some(true) => "ok",
        Some(false) => "failed",
        None => "no reply",
    }
}

fn section_id(session: u64) -> String {
    format!("s-{}", session_uid(session))
}

fn session_link(session: u64) -> String {
    format!(
        "<a href=\"#{}\">{}</a>",
        section_id(session),
        session_uid(session)
    )
}

#[derive(Debug, Clone)]
struct SessionRow {
    id: u64,
    protocol: Protocol,
    client: String,
    server: String,
    first_seen: Timestamp,
    duration: f64,
    state: &'static str,
    tls: &'static str,
    who: Option<String>,
    messages: usize,
    credentials: usize,
    findings: usize,
    worst: Option<Severity>,
    has_section: bool,
}

#[derive(Debug, Clone)]
struct FindingRow {
    session: Option<u64>,
    client: String,
    rule: String,
    severity: Severity,
    message: String,
    ts: Timestamp,
}

#[derive(Debug, Clone)]
struct CredentialRow {
    session: u64,
    protocol: Protocol,
    client: String,
    server: String,
    credential: Credential,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// What the summary cards show, counted as the terminal summary counts it.
    tally: SessionTally,
    findings: [u64; 4],
    events_shown: u64,
    events_omitted: u64,
    sessions_shown: u64,
    session_rows_omitted: u64,
    finding_rows_omitted: u64,
    credential_rows_omitted: u64,
}

/// Builds the report while sessions finish; see the module documentation.
pub struct HtmlReport {
    path: PathBuf,
    /// The report under its temporary name; `None` once finished.
    out: Option<AtomicFile>,
    /// Session sections, written as sessions finish; `None` once finished.
    spool: Option<BufWriter<AtomicFile>>,
    limits: HtmlLimits,
    redacted: bool,
    sessions: Vec<SessionRow>,
    findings: Vec<FindingRow>,
    credentials: Vec<CredentialRow>,
    counts: Counts,
    /// One section's text, written at once.
    scratch: String,
}

impl HtmlReport {
    /// Starts a report to be written to `path`; `redacted` is said in the summary.
    pub fn create(path: &Path, redacted: bool, limits: HtmlLimits) -> io::Result<Self> {
        // Fail now, not after the capture was read, when the report cannot be written.
        let out = AtomicFile::create(path, Access::Default)?;
        let spool = AtomicFile::scratch(&path.with_extension("mailsift-spool"))?;
        Ok(HtmlReport {
            path: path.to_path_buf(),
            out: Some(out),
            spool: Some(BufWriter::with_capacity(1 << 16, spool)),
            limits,
            redacted,
            sessions: Vec::new(),
            findings: Vec::new(),
            credentials: Vec::new(),
            counts: Counts::default(),
            scratch: String::new(),
        })
    }

    /// Adds one finished session: its table rows and its section.
    pub fn session(&mut self, rec: &SessionRecord) -> io::Result<()> {
        let c = &mut self.counts;
        c.tally.add(rec);
        for f in &rec.findings {
            if let Some(n) = c.findings.get_mut(f.severity as usize) {
                *n += 1;
            }
            if self.findings.len() < self.limits.max_table_rows {
                self.findings.push(FindingRow {
                    session: Some(rec.id),
                    client: rec.client.ip.to_string(),
                    rule: f.rule.clone(),
                    severity: f.severity,
                    message: f.message.clone(),
                    ts: f.ts,
                });
            } else {
                c.finding_rows_omitted += 1;
            }
        }
        for cred in &rec.credentials {
            if self.credentials.len() < self.limits.max_table_rows {
                self.credentials.push(CredentialRow {
                    session: rec.id,
                    protocol: rec.protocol,
                    client: rec.client.to_string(),
                    server: rec.server.to_string(),
                    credential: cred.clone(),
                });
            } else {
                c.credential_rows_omitted += 1;
            }
        }
        let has_section = self.sessions.len() < self.limits.max_sessions;
        if !has_section {
            c.session_rows_omitted += 1;
            c.events_omitted += rec.events.len() as u64 + rec.events_dropped;
            return Ok(());
        }
        self.sessions.push(SessionRow {
            id: rec.id,
            protocol: rec.protocol,
            client: rec.client.to_string(),
            server: rec.server.to_string(),
            first_seen: rec.first_seen,
            duration: rec.last_seen.seconds_since(rec.first_seen),
            state: rec.state.as_str(),
            tls: tls_label(rec),
            who: rec
                .pop3
                .as_ref()
                .and_then(|p| p.user.clone())
                .or_else(|| rec.smtp.as_ref().and_then(|s| s.helo.clone())),
            messages: rec.messages.len(),
            credentials: rec.credentials.len(),
            findings: rec.findings.len(),
            worst: rec.findings.iter().map(|f| f.severity).max(),
            has_section,
        });
        self.counts.sessions_shown += 1;
        self.write_section(rec)
    }

    fn write_section(&mut self, rec: &SessionRecord) -> io::Result<()> {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        let uid = session_uid(rec.id);
        let _ = write!(
            s,
            "<section class=\"session\" id=\"{}\">\n<h3>{} session {uid} <span class=\"na\">(#{})</span>: {} &rarr; {}</h3>\n",
            section_id(rec.id),
            rec.protocol.as_str().to_ascii_uppercase(),
            rec.id,
            rec.client,
            rec.server,
        );
        s.push_str("<dl>");
        let mut dt = |k: &str, v: String| {
            let _ = write!(s, "<dt>{k}</dt><dd>{v}</dd>");
        };
        dt("start", cell(&rec.first_seen.to_string()));
        dt(
            "duration",
            format!("{:.3} s", rec.last_seen.seconds_since(rec.first_seen)),
        );
        dt("ended", rec.state.as_str().to_string());
        dt(
            "packets / bytes",
            format!(
                "client {} / {}, server {} / {}",
                rec.packets.client, rec.bytes.client, rec.packets.server, rec.bytes.server
            ),
        );
        if rec.missing_bytes.client + rec.missing_bytes.server > 0 {
            dt(
                "missing bytes",
                format!(
                    "client {}, server {}",
                    rec.missing_bytes.client, rec.missing_bytes.server
                ),
            );
        }
        dt("TLS", tls_detail(rec));
        if let Some(helo) = rec.smtp.as_ref().and_then(|x| x.helo.as_deref()) {
            dt("HELO", cell(helo));
        }
        if let Some(user) = rec.pop3.as_ref().and_then(|x| x.user.as_deref()) {
            dt("user", cell(user));
        }
        s.push_str("</dl>\n");

        self.push_transcript(&mut s, rec);
        if !rec.messages.is_empty() {
            let _ = writeln!(s, "<h4>Messages ({})</h4>", rec.messages.len());
            for m in rec
                .messages
                .iter()
                .take(self.limits.max_messages_per_session)
            {
                self.push_message(&mut s, rec, m);
            }
            let more = rec
                .messages
                .len()
                .saturating_sub(self.limits.max_messages_per_session);
            if more > 0 {
                let _ = writeln!(s, "<p class=\"note\">{more} more messages not shown.</p>");
            }
        }
        if !rec.credentials.is_empty() {
            s.push_str("<h4>Authentication</h4>\n<table><tr><th>time</th><th>mechanism</th><th>user</th><th>secret</th><th>outcome</th><th>encrypted</th></tr>\n");
            for c in &rec.credentials {
                let _ = writeln!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"secret\">{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                    clock(c.ts),
                    cell(&c.mechanism),
                    opt_cell(c.username.as_deref()),
                    opt_cell(secret_text(c).as_deref()),
                    outcome(c.success).replace(' ', "-"),
                    outcome(c.success),
                    if c.encrypted { "yes" } else { "no" },
                );
            }
            s.push_str("</table>\n");
        }
        if !rec.findings.is_empty() {
            s.push_str("<h4>Findings</h4>\n<ul class=\"findings\">\n");
            for f in &rec.findings {
                let _ = writeln!(
                    s,
                    "<li><span class=\"sev {}\">{}</span> <code>{}</code> {}</li>",
                    severity_class(f.severity),
                    f.severity.as_str(),
                    cell(&f.rule),
                    cell(&f.message)
                );
            }
            s.push_str("</ul>\n");
        }
        if !rec.anomalies.is_empty() {
            s.push_str("<h4>Anomalies</h4>\n<ul>\n");
            for a in &rec.anomalies {
                let _ = writeln!(
                    s,
                    "<li><code>{}</code> &times;{}: {}</li>",
                    cell(&a.kind),
                    a.count,
                    cell(&a.detail)
                );
            }
            s.push_str("</ul>\n");
        }
        s.push_str("<p class=\"top\"><a href=\"#sessions\">&uarr; sessions</a></p>\n</section>\n");
        let r = match self.spool.as_mut() {
            Some(w) => w.write_all(s.as_bytes()),
            None => Ok(()),
        };
        if s.capacity() > 1 << 20 {
            s = String::new();
        }
        self.scratch = s;
        r
    }

    fn push_transcript(&mut self, s: &mut String, rec: &SessionRecord) {
        if rec.events.is_empty() && rec.events_dropped == 0 {
            return;
        }
        let budget = self
            .limits
            .max_events_total
            .saturating_sub(self.counts.events_shown as usize);
        let shown = rec
            .events
            .len()
            .min(self.limits.max_events_per_session)
            .min(budget);
        s.push_str("<h4>Transcript</h4>\n<div class=\"transcript\">\n");
        let uid = session_uid(rec.id);
        // AUTH steps decoded from what the credential records hold, as in `show`.
        let notes = crate::output::transcript::auth_annotations(rec);
        for (e, note) in rec.events.iter().take(shown).zip(&notes) {
            push_event(s, e, note.as_deref(), &uid, self.limits.max_text_chars);
        }
        s.push_str("</div>\n");
        let omitted = (rec.events.len() - shown) as u64 + rec.events_dropped;
        if omitted > 0 {
            let why = if rec.events_dropped > 0 && shown == rec.events.len() {
                "were not kept by the analysis limits"
            } else if shown == budget {
                "are not shown: the report's event budget is spent"
            } else {
                "are not shown"
            };
            let _ = writeln!(
                s,
                "<p class=\"note\">{omitted} more events {why} (the JSON export has every event kept).</p>"
            );
        }
        self.counts.events_shown += shown as u64;
        self.counts.events_omitted += omitted;
    }

    fn push_message(&self, s: &mut String, rec: &SessionRecord, m: &MessageRecord) {
        let max = self.limits.max_text_chars;
        let h = m.mime.as_ref().map(|x| &x.header);
        let _ = write!(
            s,
            "<article class=\"message\" id=\"m-{}-{}\">\n<h5>Message {} &mdash; {}</h5>\n<table class=\"kv\">\n",
            session_uid(rec.id),
            m.index,
            m.index,
            opt_cell(h.and_then(|h| h.subject.as_deref()))
        );
        let mut kv = |k: &str, v: String| {
            let _ = writeln!(s, "<tr><th>{k}</th><td>{v}</td></tr>");
        };
        let source = match m.source {
            MessageSource::Data => "SMTP DATA",
            MessageSource::Bdat => "SMTP BDAT",
            MessageSource::Retr => "POP3 RETR",
            MessageSource::Top => "POP3 TOP",
        };
        kv("carried by", source.to_string());
        if let Some(from) = &m.mail_from {
            kv("MAIL FROM", esc(from, max));
        }
        if let Some(rcpt) = &m.rcpt_to {
            kv("RCPT TO", esc(&rcpt.join(", "), max));
        }
        if let Some(n) = m.number {
            kv("POP3 number", n.to_string());
        }
        if let Some(h) = h {
            for (name, list) in [
                ("From", &h.from),
                ("Sender", &h.sender),
                ("To", &h.to),
                ("Cc", &h.cc),
                ("Bcc", &h.bcc),
                ("Reply-To", &h.reply_to),
            ] {
                if !list.is_empty() {
                    kv(name, esc(&addresses(list), max));
                }
            }
            for (name, v) in [
                ("Date", h.date_raw.as_deref()),
                ("Message-ID", h.message_id.as_deref()),
                (
                    "User-Agent",
                    h.user_agent.as_deref().or(h.x_mailer.as_deref()),
                ),
                ("X-Originating-IP", h.x_originating_ip.as_deref()),
                ("Content-Type", h.content_type.as_deref()),
            ] {
                if let Some(v) = v {
                    kv(name, esc(v, max));
                }
            }
            if !h.received.is_empty() {
                let hops: Vec<&str> = h.received.iter().map(|r| r.raw.as_str()).collect();
                kv(
                    "Received",
                    format!("<pre>{}</pre>", esc_pre(&hops.join("\n"), max)),
                );
            }
        }
        kv(
            "size",
            format!(
                "{} bytes{}",
                m.size,
                if m.complete { "" } else { " (incomplete)" }
            ),
        );
        if !m.sha256.is_empty() {
            kv("SHA-256", format!("<code>{}</code>", cell(&m.sha256)));
        }
        s.push_str("</table>\n");
        let Some(mime) = &m.mime else {
            s.push_str("</article>\n");
            return;
        };
        if !mime.attachments.is_empty() {
            s.push_str("<table class=\"attachments\"><tr><th>attachment</th><th>type</th><th>size</th><th>MD5</th><th>SHA-1</th><th>SHA-256</th></tr>\n");
            for a in &mime.attachments {
                let _ = writeln!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td>{}{}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                    opt_cell(a.filename.as_deref()),
                    cell(&a.content_type),
                    a.size,
                    if a.complete { "" } else { " (incomplete)" },
                    cell(&a.md5),
                    cell(&a.sha1),
                    cell(&a.sha256),
                );
            }
            s.push_str("</table>\n");
        }
        if let Some(body) = &mime.body_text {
            let _ = writeln!(
                s,
                "<details><summary>text body{}</summary><pre>{}</pre></details>",
                if mime.body_text_truncated {
                    " (beginning)"
                } else {
                    ""
                },
                esc_pre(body, max)
            );
        }
        if !mime.urls.is_empty() {
            let urls: Vec<&str> = mime.urls.iter().map(String::as_str).take(100).collect();
            let _ = writeln!(
                s,
                "<details><summary>URLs ({})</summary><pre>{}</pre></details>",
                mime.urls.len(),
                esc_pre(&urls.join("\n"), max * 4)
            );
        }
        s.push_str("</article>\n");
    }

    /// Writes the report file (head, summary, tables, the sections) and removes the spool.
    pub fn finish(
        mut self,
        inputs: &[InputSummary],
        stats: &EngineStats,
        run_findings: &[RunFinding],
    ) -> io::Result<HtmlSummary> {
        for f in run_findings {
            if let Some(n) = self.counts.findings.get_mut(f.finding.severity as usize) {
                *n += 1;
            }
            if self.findings.len() < self.limits.max_table_rows {
                self.findings.push(FindingRow {
                    session: None,
                    client: f.client.map_or_else(|| "-".into(), |ip| ip.to_string()),
                    rule: f.finding.rule.clone(),
                    severity: f.finding.severity,
                    message: f.finding.message.clone(),
                    ts: f.finding.ts,
                });
            } else {
                self.counts.finding_rows_omitted += 1;
            }
        }
        // The spool goes whatever happened, when the report is dropped.
        self.write_report(inputs, stats)?;
        Ok(HtmlSummary {
            path: self.path.clone(),
            sessions_shown: self.counts.sessions_shown,
            events_shown: self.counts.events_shown,
            events_omitted: self.counts.events_omitted,
        })
    }

    fn write_report(&mut self, inputs: &[InputSummary], stats: &EngineStats) -> io::Result<()> {
        let (Some(spool), Some(out)) = (self.spool.take(), self.out.take()) else {
            return Err(io::Error::other("the report was already written"));
        };
        let mut spool = spool.into_inner().map_err(|e| e.into_error())?;
        let mut out = BufWriter::with_capacity(1 << 16, out);
        let mut s = String::with_capacity(1 << 16);
        self.push_head(&mut s, inputs, stats);
        self.push_findings_table(&mut s);
        self.push_credentials_table(&mut s);
        self.push_sessions_table(&mut s);
        out.write_all(s.as_bytes())?;
        spool.copy_to(&mut out)?;
        out.write_all(FOOT.as_bytes())?;
        out.into_inner().map_err(|e| e.into_error())?.commit()
    }

    fn push_head(&self, s: &mut String, inputs: &[InputSummary], stats: &EngineStats) {
        let c = &self.counts;
        let title = match inputs {
            [one] => format!("mailsift report: {}", cell(&one.path)),
            _ => format!("mailsift report: {} inputs", inputs.len()),
        };
        let _ = write!(
            s,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"generator\" content=\"mailsift {}\">\n<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
             <h1>{title}</h1>\n",
            super::json::VERSION
        );
        if self.redacted {
            s.push_str("<p class=\"note\">Secrets are redacted in this report.</p>\n");
        }
        s.push_str("<nav><a href=\"#summary\">Summary</a> <a href=\"#findings\">Findings</a> <a href=\"#credentials\">Credentials</a> <a href=\"#sessions\">Sessions</a></nav>\n");
        s.push_str("<h2 id=\"summary\">Summary</h2>\n<div class=\"cards\">\n");
        let mut card = |n: String, what: &str| {
            let _ = writeln!(s, "<div class=\"card\"><b>{n}</b>{what}</div>");
        };
        card(c.tally.sessions.to_string(), "sessions");
        card(c.tally.smtp.to_string(), "SMTP");
        card(c.tally.pop3.to_string(), "POP3");
        card(c.tally.tls().to_string(), "with TLS");
        card(c.tally.messages.to_string(), "messages");
        card(c.tally.attachments.to_string(), "attachments");
        card(
            format!("{}", c.tally.credentials),
            &format!("logins ({} in clear text)", c.tally.cleartext_credentials),
        );
        s.push_str("</div>\n<div class=\"cards\">\n");
        for sev in Severity::ALL.into_iter().rev() {
            let n = c.findings.get(sev as usize).copied().unwrap_or(0);
            let _ = writeln!(
                s,
                "<div class=\"card sev {}\"><b>{n}</b>{} findings</div>",
                severity_class(sev),
                sev.as_str()
            );
        }
        s.push_str("</div>\n<table class=\"inputs\"><tr><th>input</th><th>format</th><th>link types</th><th>packets</th><th>bytes</th><th>errors</th></tr>\n");
        for i in inputs {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                cell(&i.path),
                opt_cell(i.format.as_deref()),
                cell(&i.link_types.join(", ")),
                i.packets,
                i.bytes,
                esc(&i.errors.join("; "), 1000),
            );
        }
        let _ = writeln!(
            s,
            "</table>\n<p>{} packets, {} to or from a mail port; {} bytes missing from the capture.</p>",
            stats.packets, stats.mail_packets, stats.reassembly.missing
        );
    }

    fn push_findings_table(&mut self, s: &mut String) {
        self.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.ts.cmp(&b.ts))
                .then(a.session.cmp(&b.session))
        });
        let _ = writeln!(
            s,
            "<h2 id=\"findings\">Findings ({})</h2>",
            self.counts.findings.iter().sum::<u64>()
        );
        if self.findings.is_empty() {
            s.push_str("<p>None.</p>\n");
            return;
        }
        s.push_str(FILTER);
        s.push_str("<table class=\"sortable\"><thead><tr><th>severity</th><th>rule</th><th>session</th><th>client</th><th>time</th><th>message</th></tr></thead><tbody>\n");
        for f in &self.findings {
            let _ = writeln!(
                s,
                "<tr><td data-sort=\"{}\"><span class=\"sev {}\">{}</span></td><td><code title=\"{}\">{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                f.severity as u8,
                severity_class(f.severity),
                f.severity.as_str(),
                cell(&rule_name(&f.rule)),
                cell(&f.rule),
                f.session.map_or_else(|| "run".to_string(), session_link),
                cell(&f.client),
                cell(&f.ts.to_string()),
                cell(&f.message),
            );
        }
        s.push_str("</tbody></table>\n");
        if self.counts.finding_rows_omitted > 0 {
            let _ = writeln!(
                s,
                "<p class=\"note\">{} more findings not listed.</p>",
                self.counts.finding_rows_omitted
            );
        }
    }

    fn push_credentials_table(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "<h2 id=\"credentials\">Credentials ({})</h2>",
            self.counts.tally.credentials
        );
        if self.credentials.is_empty() {
            s.push_str("<p>None seen.</p>\n");
            return;
        }
        s.push_str(FILTER);
        s.push_str("<table class=\"sortable\"><thead><tr><th>time</th><th>session</th><th>client</th><th>server</th><th>protocol</th><th>mechanism</th><th>user</th><th>secret</th><th>outcome</th><th>encrypted</th></tr></thead><tbody>\n");
        for r in &self.credentials {
            let c = &r.credential;
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"secret\">{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                cell(&c.ts.to_string()),
                session_link(r.session),
                cell(&r.client),
                cell(&r.server),
                r.protocol.as_str(),
                cell(&c.mechanism),
                opt_cell(c.username.as_deref()),
                opt_cell(secret_text(c).as_deref()),
                outcome(c.success).replace(' ', "-"),
                outcome(c.success),
                if c.encrypted { "yes" } else { "no" },
            );
        }
        s.push_str("</tbody></table>\n");
        if self.counts.credential_rows_omitted > 0 {
            let _ = writeln!(
                s,
                "<p class=\"note\">{} more attempts not listed.</p>",
                self.counts.credential_rows_omitted
            );
        }
    }

    fn push_sessions_table(&mut self, s: &mut String) {
        self.sessions.sort_by_key(|r| (r.first_seen, r.id));
        let _ = writeln!(
            s,
            "<h2 id=\"sessions\">Sessions ({})</h2>",
            self.counts.tally.sessions
        );
        if self.sessions.is_empty() {
            s.push_str("<p>None.</p>\n");
            return;
        }
        s.push_str(FILTER);
        s.push_str("<table class=\"sortable\"><thead><tr><th>session</th><th>protocol</th><th>client</th><th>server</th><th>start</th><th>duration (s)</th><th>ended</th><th>TLS</th><th>HELO / user</th><th>messages</th><th>logins</th><th>findings</th></tr></thead><tbody>\n");
        for r in &self.sessions {
            let id = if r.has_section {
                session_link(r.id)
            } else {
                session_uid(r.id)
            };
            let findings = match r.worst {
                Some(w) => format!(
                    "<span class=\"sev {}\">{}</span>",
                    severity_class(w),
                    r.findings
                ),
                None => "0".to_string(),
            };
            let _ = writeln!(
                s,
                "<tr><td data-sort=\"{}\">{id}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{findings}</td></tr>",
                r.id,
                r.protocol.as_str(),
                cell(&r.client),
                cell(&r.server),
                cell(&r.first_seen.to_string()),
                r.duration,
                r.state,
                r.tls,
                opt_cell(r.who.as_deref()),
                r.messages,
                r.credentials,
            );
        }
        s.push_str("</tbody></table>\n");
        if self.counts.session_rows_omitted > 0 {
            let _ = writeln!(
                s,
                "<p class=\"note\">{} more sessions not shown (the JSON export has them all).</p>",
                self.counts.session_rows_omitted
            );
        }
        s.push_str("<h2>Session details</h2>\n");
    }
}

fn esc_pre(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    push_escaped(&mut out, s, max, true);
    out
}

fn addresses(list: &[AddressRecord]) -> String {
    list.iter()
        .map(|a| match (&a.name, &a.address) {
            (Some(n), Some(addr)) if !n.is_empty() => format!("{n} <{addr}>"),
            (_, Some(addr)) => addr.clone(),
            (Some(n), None) => n.clone(),
            (None, None) => "?".to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn tls_label(rec: &SessionRecord) -> &'static str {
    match rec.tls.as_ref().map(|t| t.mode) {
        Some(TlsMode::Starttls) => "STARTTLS",
        Some(TlsMode::Implicit) => "implicit",
        None => "none",
    }
}

fn tls_detail(rec: &SessionRecord) -> String {
    let Some(t) = &rec.tls else {
        return "none: the session stayed in clear text".to_string();
    };
    let h = &t.handshake;
    let mut parts = vec![format!("{} from {}", tls_label(rec), clock(t.started))];
    if let Some(v) = h.version {
        parts.push(v.to_string());
    }
    if let Some(c) = &h.cipher {
        parts.push(cell(c));
    }
    if let Some(sni) = &h.sni {
        parts.push(format!("SNI {}", cell(sni)));
    }
    if !h.established {
        parts.push("handshake not seen to complete".to_string());
    }
    parts.join(", ")
}

/// One transcript line: client on the left, server on the right, marked by kind.
fn push_event(s: &mut String, e: &Event, note: Option<&str>, uid: &str, max: usize) {
    let side = e.from.as_str();
    let (class, mut text) = match &e.kind {
        EventKind::Line { text } => ("line", esc_pre(text, max)),
        EventKind::Command { verb, arg } => {
            let class = if verb == "AUTH" || verb == "USER" || verb == "PASS" || verb == "APOP" {
                "auth"
            } else if verb == "STARTTLS" || verb == "STLS" {
                "tls"
            } else {
                "cmd"
            };
            let mut t = String::new();
            t.push_str("<b>");
            t.push_str(&esc(verb, 64));
            t.push_str("</b>");
            if let Some(arg) = arg {
                t.push(' ');
                t.push_str(&esc_pre(arg, max));
            }
            (class, t)
        }
        EventKind::Reply { code, lines, .. } => {
            let mut joined = String::new();
            let last = lines.len().saturating_sub(1);
            for (i, l) in lines.iter().enumerate() {
                let sep = if i == last { ' ' } else { '-' };
                let _ = write!(joined, "{code}{sep}{l}");
                if i != last {
                    joined.push('\n');
                }
            }
            if lines.is_empty() {
                joined = code.to_string();
            }
            let class = if *code >= 400 { "err" } else { "reply" };
            (class, esc_pre(&joined, max))
        }
        EventKind::Status {
            ok,
            text,
            resp_code,
            body_lines,
        } => {
            let mut t = String::from(if *ok { "+OK" } else { "-ERR" });
            if let Some(code) = resp_code {
                let _ = write!(t, " [{code}]");
            }
            if !text.is_empty() {
                t.push(' ');
                t.push_str(text);
            }
            let mut out = esc_pre(&t, max);
            if let Some(n) = body_lines {
                let _ = write!(out, " <span class=\"na\">({n} lines follow)</span>");
            }
            (if *ok { "reply" } else { "err" }, out)
        }
        EventKind::AuthData { raw } => ("auth", esc_pre(raw, max)),
        EventKind::MessageData { message, bytes } => (
            "data",
            format!("<a href=\"#m-{uid}-{message}\">message {message}</a>: {bytes} bytes"),
        ),
        EventKind::TlsStart { mode } => (
            "tlsstart",
            format!(
                "TLS begins ({}); nothing after this is readable",
                match mode {
                    TlsMode::Starttls => "STARTTLS",
                    TlsMode::Implicit => "implicit",
                }
            ),
        ),
        EventKind::Gap { bytes } => ("gap", format!("{bytes} bytes missing from the capture")),
    };
    if let Some(note) = note {
        let _ = write!(
            text,
            " <span class=\"na\">[decoded: {}]</span>",
            esc(note, max)
        );
    }
    let _ = writeln!(
        s,
        "<div class=\"ev {side} {class}\"><span class=\"t\">{}</span><pre>{text}</pre></div>",
        clock(e.ts)
    );
}

const CSS: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:0 1em;color:#1d1d1f;background:#fff}\
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}h3{background:#f0f2f5;padding:.4em;margin-top:2em}\
nav a{margin-right:1em}table{border-collapse:collapse;margin:.5em 0;font-size:13px}\
th,td{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
th{background:#f6f6f6}table.sortable th{cursor:pointer}code{font-size:12px;word-break:break-all}\
.cards{display:flex;flex-wrap:wrap;gap:.5em;margin:.5em 0}.card{border:1px solid #ddd;border-radius:6px;padding:.4em .8em;min-width:7em}\
.card b{display:block;font-size:1.4em}.sev{border-radius:4px;padding:0 4px}\
.sev.high{background:#fdd;color:#900}.sev.medium{background:#ffe6c7;color:#8a4b00}.sev.low{background:#fff6bf;color:#665c00}.sev.info{background:#e3efff;color:#0b3d91}\
.na{color:#888}.note{color:#8a4b00;font-style:italic}.esc{color:#b00;font-family:monospace}\
dl{display:grid;grid-template-columns:max-content auto;gap:2px 1em}dt{font-weight:600}dd{margin:0}\
.transcript{border:1px solid #ddd;border-radius:6px;padding:.5em;max-height:40em;overflow:auto;background:#fafafa}\
.ev{display:flex;gap:.6em;margin:2px 0;max-width:80%}.ev pre{margin:0;white-space:pre-wrap;word-break:break-all;padding:2px 8px;border-radius:8px}\
.ev .t{color:#888;font-size:11px;white-space:nowrap;padding-top:3px}\
.ev.client{margin-right:auto}.ev.client pre{background:#e3efff}\
.ev.server{margin-left:auto;flex-direction:row-reverse}.ev.server pre{background:#e9f7e9}\
.ev.auth pre{background:#fde2e2;outline:1px solid #e99}.ev.err pre{background:#ffe6c7}\
.ev.tls pre,.ev.tlsstart pre{background:#ece3ff}.ev.tlsstart{max-width:100%;margin:4px auto}\
.ev.gap pre{background:#eee;color:#666;font-style:italic}.ev.data pre{background:#f3f3f3}\
.failed{color:#900}.ok{color:#060}.secret{font-family:monospace;word-break:break-all}\
article.message{border-left:3px solid #bcd;padding-left:.8em;margin:1em 0}table.kv th{width:10em}\
input.filter{margin:.3em 0;padding:2px 6px;width:20em}.top{font-size:12px}\
";

/// A filter box for the table after it; only useful with script enabled, harmless without.
const FILTER: &str = "<input class=\"filter\" type=\"search\" placeholder=\"filter rows\" aria-label=\"filter rows\">\n";

/// The end of the document: a small optional script that sorts tables by a clicked header
/// and filters them by the box before them. The report reads the same without it.
const FOOT: &str = "<script>\n\
document.querySelectorAll('input.filter').forEach(function(box){\n\
  var table=box.nextElementSibling;\n\
  box.addEventListener('input',function(){\n\
    var q=box.value.toLowerCase();\n\
    table.querySelectorAll('tbody tr').forEach(function(tr){\n\
      tr.style.display=tr.textContent.toLowerCase().indexOf(q)<0?'none':'';});});});\n\
document.querySelectorAll('table.sortable th').forEach(function(th,i){\n\
  th.addEventListener('click',function(){\n\
    var table=th.closest('table'),body=table.tBodies[0],col=th.cellIndex;\n\
    var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';\n\
    var key=function(tr){var td=tr.cells[col];var v=td.dataset.sort||td.textContent;var n=parseFloat(v);return isNaN(n)?v:n;};\n\
    Array.from(body.rows).sort(function(a,b){var x=key(a),y=key(b);var c=x<y?-1:x>y?1:0;return asc?c:-c;})\n\
      .forEach(function(tr){body.appendChild(tr);});});});\n\
</script>\n</body>\n</html>\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::MimeSummary;
    use crate::session::{Direction, Endpoint, Finding};
    use std::fs;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "mailsift-html-{}-{name}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ))
    }

    fn hostile_session(events: usize) -> SessionRecord {
        let ep = |port| Endpoint {
            ip: "192.0.2.1".parse().unwrap(),
            port,
        };
        let mut r = SessionRecord::new(3, Protocol::Smtp, ep(40000), ep(25), Timestamp(0));
        for i in 0..events {
            r.push_event(
                Timestamp(i as i64),
                Direction::Client,
                EventKind::Command {
                    verb: "MAIL".into(),
                    arg: Some("FROM:<a@b> <img src=x onerror=alert(1)>".into()),
                },
            );
        }
        let mut mime = MimeSummary::default();
        mime.header.subject = Some("<script>alert('x')</script>\u{202e}fdp.exe".into());
        r.messages.push(MessageRecord {
            index: 0,
            source: MessageSource::Data,
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
            mail_from: Some("\"><b>x</b>@evil".into()),
            rcpt_to: None,
            number: None,
            uidl: None,
            missing_bytes: 0,
            reply: None,
            size: 1,
            sha256: "ab".into(),
            complete: true,
            mime: Some(mime),
        });
        r.findings.push(Finding {
            rule: "cleartext-password".into(),
            severity: Severity::High,
            message: "x".into(),
            ts: Timestamp(0),
            details: None,
        });
        r
    }

    fn render(rec: &SessionRecord, limits: HtmlLimits) -> (String, HtmlSummary) {
        let path = temp("r.html");
        let mut report = HtmlReport::create(&path, false, limits).unwrap();
        report.session(rec).unwrap();
        let summary = report.finish(&[], &EngineStats::default(), &[]).unwrap();
        let html = fs::read_to_string(&path).unwrap();
        let _ = fs::remove_file(&path);
        (html, summary)
    }

    #[test]
    fn capture_text_is_escaped_everywhere() {
        let (html, _) = render(&hostile_session(2), HtmlLimits::default());
        assert!(!html.contains("<script>alert"), "subject escaped");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(!html.contains("<img"), "command argument escaped");
        assert!(!html.contains("<b>x</b>"), "envelope escaped");
        assert!(
            !html.contains('\u{202e}'),
            "bidi override shown as an escape"
        );
        assert!(html.contains("\\u{202e}"));
        // The only script is the report's own.
        assert_eq!(html.matches("<script>").count(), 1);
        assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    }

    #[test]
    fn structure_links_sessions_and_closes_the_document() {
        let (html, summary) = render(&hostile_session(2), HtmlLimits::default());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        assert!(html.contains("<a href=\"#s-C3\">C3</a>"));
        assert!(html.contains("<section class=\"session\" id=\"s-C3\">"));
        assert!(html.contains("id=\"m-C3-0\""));
        assert!(html.contains("<b>1</b>high findings"));
        assert_eq!(summary.sessions_shown, 1);
        assert_eq!(summary.events_shown, 2);
    }

    #[test]
    fn transcripts_are_capped_and_the_rest_counted() {
        let limits = HtmlLimits {
            max_events_per_session: 10,
            ..HtmlLimits::default()
        };
        let (html, summary) = render(&hostile_session(25), limits);
        assert_eq!(summary.events_shown, 10);
        assert_eq!(summary.events_omitted, 15);
        assert_eq!(html.matches("class=\"ev client").count(), 10);
        assert!(html.contains("15 more events are not shown"));
    }

    #[test]
    fn the_spool_is_removed_whether_finished_or_abandoned() {
        let dir = temp("spool");
        fs::create_dir_all(&dir).unwrap();
        let names = || -> Vec<String> {
            let entries = fs::read_dir(&dir).unwrap();
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into())
                .collect()
        };
        let path = dir.join("r.html");
        let report = HtmlReport::create(&path, false, HtmlLimits::default()).unwrap();
        assert_eq!(names().len(), 2, "report and spool, both temporary");
        assert!(!path.exists());
        drop(report);
        assert!(names().is_empty());
        // A symlink planted at the report's or the spool's name is not followed.
        let victim = temp("victim");
        fs::write(&victim, b"keep").unwrap();
        #[cfg(unix)]
        for planted in [path.clone(), path.with_extension("mailsift-spool")] {
            std::os::unix::fs::symlink(&victim, planted).unwrap();
        }
        let report = HtmlReport::create(&path, true, HtmlLimits::default()).unwrap();
        report.finish(&[], &EngineStats::default(), &[]).unwrap();
        let html = fs::read_to_string(&path).unwrap();
        assert!(html.contains("Secrets are redacted"));
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert!(fs::symlink_metadata(&path).unwrap().is_file());
        let _ = (fs::remove_dir_all(&dir), fs::remove_file(&victim));
    }

    #[test]
    fn long_text_is_cut_with_a_count() {
        let mut out = String::new();
        push_escaped(&mut out, &"a".repeat(10), 4, false);
        assert_eq!(out, "aaaa… (6 more characters)");
    }
}
