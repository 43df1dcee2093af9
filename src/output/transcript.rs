//! The terminal "follow stream" view: one session as plain text, a header, then one line per
//! event, then its credentials, messages, findings and anomalies.
//!
//! It reads finished (and, with `--redact`, already masked) session records only: what a
//! dissector recorded is shown, never worked out again from the traffic. AUTH responses are
//! shown decoded from the session's credential records, not by decoding their base64 here.

use super::credentials::secret_text;
use super::table::human_bytes;
use crate::mail::MimeSummary;
use crate::session::{
    Credential, Direction, Event, EventKind, MessageRecord, MessageSource, SessionRecord, TlsMode,
};
use crate::time::Timestamp;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Writes sessions as transcripts, one after another, separated by a blank line.
pub struct TranscriptWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> TranscriptWriter<W> {
    /// A writer of transcripts into `out`.
    pub fn new(out: W) -> Self {
        TranscriptWriter { out, written: 0 }
    }

    /// Writes one session's transcript.
    pub fn session(&mut self, rec: &SessionRecord) -> io::Result<()> {
        if self.written > 0 {
            self.out.write_all(b"\n")?;
        }
        self.written += 1;
        self.out.write_all(render(rec).as_bytes())
    }

    /// Flushes and hands back the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The whole transcript of one session, every line ending in a newline.
pub fn render(rec: &SessionRecord) -> String {
    let mut s = String::new();
    push_header(&mut s, rec);
    push_events(&mut s, rec);
    push_credentials(&mut s, &rec.credentials);
    push_messages(&mut s, &rec.messages);
    push_findings(&mut s, rec);
    s
}

/// Captured text made safe for a terminal: control and bidirectional formatting characters
/// (an escape sequence in a reply could otherwise drive the reader's terminal) are shown as
/// `\u{..}` escapes.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `2026-11-26`: the date part of a timestamp.
fn date(ts: Timestamp) -> String {
    ts.to_string().get(..10).unwrap_or_default().to_string()
}

/// `10:46:05.238`: the time of day to the millisecond.
fn clock(ts: Timestamp) -> String {
    ts.to_string().get(11..23).unwrap_or_default().to_string()
}

/// An event's time: the clock, with the date in front only when it is not the session's
/// first date (a session running past midnight).
fn event_time(ts: Timestamp, first: Timestamp) -> String {
    if date(ts) == date(first) {
        clock(ts)
    } else {
        format!("{} {}", date(ts), clock(ts))
    }
}

fn push_header(s: &mut String, rec: &SessionRecord) {
    let _ = writeln!(
        s,
        "session {}: {} {} → {}",
        rec.id,
        rec.protocol.as_str().to_ascii_uppercase(),
        rec.client,
        rec.server
    );
    let end = if date(rec.last_seen) == date(rec.first_seen) {
        clock(rec.last_seen)
    } else {
        format!("{} {}", date(rec.last_seen), clock(rec.last_seen))
    };
    let _ = writeln!(
        s,
        "  time     {} {} to {end} UTC ({:.3} s)",
        date(rec.first_seen),
        clock(rec.first_seen),
        rec.last_seen.seconds_since(rec.first_seen)
    );
    let handshake = if rec.handshake_seen {
        "TCP handshake seen"
    } else {
        "picked up mid-stream"
    };
    let _ = writeln!(s, "  state    {}, {handshake}", rec.state.as_str());
    let _ = writeln!(s, "  TLS      {}", tls_text(rec));
    let _ = writeln!(
        s,
        "  bytes    client {} in {} packets, server {} in {} packets",
        rec.bytes.client, rec.packets.client, rec.bytes.server, rec.packets.server
    );
    let (mc, ms) = (rec.missing_bytes.client, rec.missing_bytes.server);
    if mc + ms == 0 {
        s.push_str("  missing  none\n");
    } else {
        let _ = writeln!(s, "  missing  client {mc} bytes, server {ms} bytes");
    }
}

fn tls_mode(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::Starttls => "STARTTLS",
        TlsMode::Implicit => "implicit TLS",
    }
}

/// The TLS line of the header: how it began, what the handshake said, whether it was read.
fn tls_text(rec: &SessionRecord) -> String {
    let Some(t) = &rec.tls else {
        return "none (clear text throughout)".to_string();
    };
    let mut parts = vec![format!("{} from {}", tls_mode(t.mode), clock(t.started))];
    if let Some(v) = t.handshake.version {
        parts.push(v.to_string());
    }
    if let Some(c) = &t.handshake.cipher {
        parts.push(clean(c));
    }
    if let Some(sni) = &t.handshake.sni {
        parts.push(format!("SNI {}", clean(sni)));
    }
    parts.push(format!(
        "encrypted client {} bytes, server {} bytes",
        t.encrypted_bytes.client, t.encrypted_bytes.server
    ));
    parts.push(
        if t.decrypted {
            "decrypted"
        } else {
            "not decrypted"
        }
        .to_string(),
    );
    parts.join(", ")
}

fn push_events(s: &mut String, rec: &SessionRecord) {
    s.push_str("transcript\n");
    if rec.events.is_empty() {
        s.push_str("  (no events)\n");
    }
    let decoded = auth_annotations(rec);
    let mut messages_begun: Vec<usize> = Vec::new();
    for (i, e) in rec.events.iter().enumerate() {
        let side = match e.from {
            Direction::Client => "C:",
            Direction::Server => "S:",
        };
        let time = event_time(e.ts, rec.first_seen);
        // Decrypted lines carry a mark, so clear text and what the key log opened differ.
        let mark = if e.tls { "[TLS] " } else { "" };
        let pad = " ".repeat(time.chars().count());
        for (n, text) in event_lines(e, rec, &mut messages_begun).iter().enumerate() {
            let lead = if n == 0 { time.as_str() } else { pad.as_str() };
            let _ = write!(s, "  {lead} {side} {mark}{text}");
            if n == 0
                && let Some(note) = decoded.get(i).and_then(Option::as_ref)
            {
                let _ = write!(s, "  [decoded: {note}]");
            }
            s.push('\n');
        }
    }
    if rec.events_dropped > 0 {
        let _ = writeln!(
            s,
            "  -- {} more events were not kept by the analysis limits --",
            rec.events_dropped
        );
    }
}

/// The text lines of one event: one, or one per line of a multi-line SMTP reply.
fn event_lines(e: &Event, rec: &SessionRecord, begun: &mut Vec<usize>) -> Vec<String> {
    match &e.kind {
        EventKind::Line { text } => vec![clean(text)],
        EventKind::Command { verb, arg } => vec![match arg {
            Some(a) => format!("{} {}", clean(verb), clean(a)),
            None => clean(verb),
        }],
        EventKind::Reply { code, lines, .. } => {
            if lines.is_empty() {
                return vec![code.to_string()];
            }
            let last = lines.len() - 1;
            let sep = |i: usize| if i == last { ' ' } else { '-' };
            let mut out = Vec::with_capacity(lines.len());
            for (i, l) in lines.iter().enumerate() {
                out.push(format!("{code}{}{}", sep(i), clean(l)));
            }
            out
        }
        EventKind::Status {
            ok,
            text,
            resp_code,
            body_lines,
        } => {
            let mut t = String::from(if *ok { "+OK" } else { "-ERR" });
            // The bracketed code is part of the text as recorded; shown once.
            if let Some(code) = resp_code
                && !text.starts_with('[')
            {
                let _ = write!(t, " [{}]", clean(code));
            }
            if !text.is_empty() {
                t.push(' ');
                t.push_str(&clean(text));
            }
            if let Some(n) = body_lines {
                let _ = write!(t, " ({n} lines follow)");
            }
            vec![t]
        }
        EventKind::AuthData { raw } => vec![if raw.is_empty() {
            "(empty SASL line)".to_string()
        } else {
            clean(raw)
        }],
        EventKind::MessageData { message, bytes } => {
            vec![message_event(*message, *bytes, rec, begun)]
        }
        EventKind::TlsStart { mode } => vec![tls_start(*mode, rec)],
        EventKind::Gap { bytes } => vec![format!("-- {bytes} bytes missing --")],
    }
}

/// The marker where TLS begins: what follows is encrypted, unless a key log opened it.
fn tls_start(mode: TlsMode, rec: &SessionRecord) -> String {
    let Some(t) = &rec.tls else {
        return format!("-- TLS started ({}) --", tls_mode(mode));
    };
    let n = t.encrypted_bytes.client + t.encrypted_bytes.server;
    if t.decrypted {
        format!(
            "-- TLS started ({}) / encrypted {n} bytes, decrypted: lines marked [TLS] --",
            tls_mode(mode)
        )
    } else {
        format!(
            "-- TLS started ({}) / encrypted {n} bytes --",
            tls_mode(mode)
        )
    }
}

/// A message's content in the transcript: its summary the first time, a byte count after
/// (BDAT carries one message in several chunks).
fn message_event(index: usize, bytes: u64, rec: &SessionRecord, begun: &mut Vec<usize>) -> String {
    if begun.contains(&index) {
        return format!("[message {} continued: {bytes} bytes]", index + 1);
    }
    begun.push(index);
    match rec.messages.iter().find(|m| m.index == index) {
        Some(m) => format!("[{}]", message_summary(m)),
        None => format!("[message {}: {bytes} bytes, not recorded]", index + 1),
    }
}

/// `message 1: 2.3 KiB, subject "…", 2 attachments`, numbered from 1.
fn message_summary(m: &MessageRecord) -> String {
    let mut t = format!("message {}: {}", m.index + 1, human_bytes(m.size));
    let mime = m.mime.as_ref();
    if let Some(subject) = mime.and_then(|x| x.header.subject.as_deref()) {
        let _ = write!(t, ", subject \"{}\"", clean(subject));
    }
    let n = mime.map_or(0, |x| x.attachments.len());
    match n {
        0 => {}
        1 => t.push_str(", 1 attachment"),
        n => {
            let _ = write!(t, ", {n} attachments");
        }
    }
    if !m.complete {
        t.push_str(", incomplete");
    }
    t
}

/// For each event, what the credential records say its AUTH response carried, if anything
/// (the HTML report's transcript shows the same notes).
pub fn auth_annotations(rec: &SessionRecord) -> Vec<Option<String>> {
    let mut notes = vec![None; rec.events.len()];
    for (i, e) in rec.events.iter().enumerate() {
        let EventKind::Command { verb, arg } = &e.kind else {
            continue;
        };
        if e.from != Direction::Client || !verb.eq_ignore_ascii_case("AUTH") {
            continue;
        }
        let arg = arg.as_deref().unwrap_or("").trim();
        let mechanism = arg.split_whitespace().next().unwrap_or("");
        let Some(cred) = rec
            .credentials
            .iter()
            .find(|c| c.ts == e.ts && c.mechanism.eq_ignore_ascii_case(mechanism))
        else {
            continue;
        };
        let responses = exchange_responses(rec, i, arg.contains(char::is_whitespace));
        for (slot, note) in responses.iter().zip(response_notes(cred, responses.len())) {
            notes[*slot] = note;
        }
    }
    notes
}

/// Indexes of the client's responses in the SASL exchange begun at event `start`: the
/// initial response on the AUTH line, then client SASL lines until the server's final reply.
fn exchange_responses(rec: &SessionRecord, start: usize, initial: bool) -> Vec<usize> {
    let mut out = Vec::new();
    if initial {
        out.push(start);
    }
    for (j, e) in rec.events.iter().enumerate().skip(start + 1) {
        match (&e.kind, e.from) {
            (EventKind::AuthData { .. }, Direction::Client) => out.push(j),
            (EventKind::AuthData { .. }, Direction::Server) => {}
            _ => break,
        }
    }
    out
}

/// What each of `n` responses carried, from the credential: LOGIN sends the user name and
/// then the password in separate lines; the other mechanisms answer with one final line.
fn response_notes(c: &Credential, n: usize) -> Vec<Option<String>> {
    let user = c
        .username
        .as_deref()
        .map(|u| format!("user \"{}\"", clean(u)));
    let secret = secret_text(c).map(|p| {
        let what = if c.password.is_some() {
            "password"
        } else if c.details.token.is_some() {
            "token"
        } else {
            "response"
        };
        format!("{what} \"{}\"", clean(&p))
    });
    if c.details.cancelled {
        let mut notes = vec![None; n];
        if let Some(last) = notes.last_mut() {
            *last = Some("cancelled by the client".to_string());
        }
        return notes;
    }
    if c.mechanism.eq_ignore_ascii_case("LOGIN") && n >= 2 {
        let mut notes = vec![user, secret];
        notes.resize(n, None);
        return notes;
    }
    let mut parts: Vec<String> = Vec::new();
    if let Some(z) = c.details.authzid.as_deref() {
        parts.push(format!("authzid \"{}\"", clean(z)));
    }
    parts.extend(user);
    parts.extend(secret);
    let mut notes = vec![None; n];
    if let Some(last) = notes.last_mut()
        && !parts.is_empty()
    {
        *last = Some(parts.join(", "));
    }
    notes
}

fn push_credentials(s: &mut String, creds: &[Credential]) {
    if creds.is_empty() {
        return;
    }
    s.push_str("credentials\n");
    for c in creds {
        let outcome = match c.success {
            Some(true) => "succeeded",
            Some(false) => "failed",
            None => "no reply seen",
        };
        let channel = if c.encrypted {
            "encrypted"
        } else {
            "in clear text"
        };
        let user = c.username.as_deref().map_or("-".to_string(), clean);
        let secret = secret_text(c).map_or("-".to_string(), |t| clean(&t));
        let _ = writeln!(
            s,
            "  {} {} user {user}, secret {secret}: {outcome}, {channel}",
            clock(c.ts),
            clean(&c.mechanism)
        );
    }
}

fn push_messages(s: &mut String, messages: &[MessageRecord]) {
    if messages.is_empty() {
        return;
    }
    s.push_str("messages\n");
    for m in messages {
        let source = match m.source {
            MessageSource::Data => "SMTP DATA",
            MessageSource::Bdat => "SMTP BDAT",
            MessageSource::Retr => "POP3 RETR",
            MessageSource::Top => "POP3 TOP",
        };
        let _ = writeln!(s, "  {} ({source})", message_summary(m));
        if let Some(from) = &m.mail_from {
            let rcpt = m.rcpt_to.as_deref().unwrap_or_default().join(", ");
            let _ = writeln!(
                s,
                "    envelope  from <{}> to {}",
                clean(from),
                clean(&rcpt)
            );
        }
        if let Some(r) = &m.reply {
            let _ = writeln!(s, "    reply     {} {}", r.code, clean(&r.text));
        }
        if !m.sha256.is_empty() {
            let _ = writeln!(s, "    sha256    {}", m.sha256);
        }
        if let Some(mime) = &m.mime {
            push_attachments(s, mime);
        }
    }
}

fn push_attachments(s: &mut String, mime: &MimeSummary) {
    for a in &mime.attachments {
        let name = a
            .filename
            .as_deref()
            .map_or("(no name)".to_string(), |f| format!("\"{}\"", clean(f)));
        let sha = if a.sha256.is_empty() {
            String::new()
        } else {
            format!(", sha256 {}", a.sha256)
        };
        let cut = if a.complete { "" } else { ", incomplete" };
        let _ = writeln!(
            s,
            "    attachment {name} {}, {}{cut}{sha}",
            clean(&a.content_type),
            human_bytes(a.size)
        );
    }
}

fn push_findings(s: &mut String, rec: &SessionRecord) {
    if !rec.findings.is_empty() {
        s.push_str("findings\n");
        for f in &rec.findings {
            let _ = writeln!(
                s,
                "  {} {}: {}",
                f.severity.as_str(),
                clean(&f.rule),
                clean(&f.message)
            );
        }
    }
    if !rec.anomalies.is_empty() {
        s.push_str("anomalies\n");
        for a in &rec.anomalies {
            let _ = writeln!(s, "  {} ×{}: {}", clean(&a.kind), a.count, clean(&a.detail));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(clean("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(clean("plain → text"), "plain → text");
    }

    fn credential(mechanism: &str) -> Credential {
        Credential {
            ts: Timestamp(0),
            mechanism: mechanism.to_string(),
            username: Some("bob".to_string()),
            password: Some("pw".to_string()),
            success: Some(true),
            encrypted: false,
            details: Default::default(),
        }
    }

    #[test]
    fn login_answers_user_then_password_and_others_on_the_last_line() {
        let notes = response_notes(&credential("LOGIN"), 2);
        assert_eq!(notes[0].as_deref(), Some("user \"bob\""));
        assert_eq!(notes[1].as_deref(), Some("password \"pw\""));
        let notes = response_notes(&credential("PLAIN"), 1);
        assert_eq!(notes[0].as_deref(), Some("user \"bob\", password \"pw\""));
        let mut cancelled = credential("PLAIN");
        cancelled.details.cancelled = true;
        let notes = response_notes(&cancelled, 2);
        assert_eq!(notes[0], None);
        assert_eq!(notes[1].as_deref(), Some("cancelled by the client"));
    }

    #[test]
    fn the_date_is_repeated_only_past_midnight() {
        let first = Timestamp::from_parts(86_400 - 1, 0);
        assert_eq!(event_time(first, first), "23:59:59.000");
        let next = Timestamp::from_parts(86_400 + 1, 500_000_000);
        assert_eq!(event_time(next, first), "1970-01-02 00:00:01.500");
    }
}
