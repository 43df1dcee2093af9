//! `export --zeek DIR`: Zeek-style tab-separated logs, for analysts whose tooling (zeek-cut,
//! RITA, Splunk and Elastic Zeek parsers, plain awk) already reads Zeek's ASCII format.
//!
//! Five logs, each with Zeek's header (`#separator`, `#set_separator`, `#empty_field`,
//! `#unset_field`, `#path`, `#open`, `#fields`, `#types`) and `#close` footer:
//! - `smtp.log`: Zeek's smtp.log columns, one row per message an SMTP session carried, plus
//!   a row when the session switched to TLS by STARTTLS (as Zeek logs it), and `is_webmail`;
//! - `pop3.log`: one row per POP3 session (mailsift's columns in the same style);
//! - `mail_files.log`: one row per attachment, with its hashes and the message it came in;
//! - `credentials.log`: one row per authentication attempt;
//! - `findings.log`: one row per finding, in the spirit of Zeek's notice.log.
//!
//! `uid` is [`session_uid`], stable across runs, and attachments' `fuid` in smtp.log match
//! mail_files.log. `#open` and `#close` are capture times (mailsift never reads the clock).
//! Values are escaped as Zeek does: control bytes and backslashes as `\xNN`, the set
//! separator inside set elements, and a value that reads as the unset or empty marker.

use super::file::{Access, AtomicFile};
use super::naming::{file_uid, session_uid};
use crate::findings::RunFinding;
use crate::mail::{AddressRecord, HeaderSummary};
use crate::session::{
    Direction, Event, EventKind, Finding, MessageRecord, Protocol, SessionRecord, TlsMode,
};
use crate::time::Timestamp;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

const SEPARATOR: char = '\t';
const SET_SEPARATOR: char = ',';
const EMPTY_FIELD: &str = "(empty)";
const UNSET_FIELD: &str = "-";

/// The connection columns every session log starts with.
const CONN: [(&str, &str); 6] = [
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
];

/// Zeek's smtp.log columns after the connection, then `is_webmail`.
const SMTP_FIELDS: [(&str, &str); 21] = [
    ("trans_depth", "count"),
    ("helo", "string"),
    ("mailfrom", "string"),
    ("rcptto", "set[string]"),
    ("date", "string"),
    ("from", "string"),
    ("to", "set[string]"),
    ("cc", "set[string]"),
    ("reply_to", "string"),
    ("msg_id", "string"),
    ("in_reply_to", "string"),
    ("subject", "string"),
    ("x_originating_ip", "addr"),
    ("first_received", "string"),
    ("second_received", "string"),
    ("last_reply", "string"),
    ("path", "vector[addr]"),
    ("user_agent", "string"),
    ("tls", "bool"),
    ("fuids", "vector[string]"),
    ("is_webmail", "bool"),
];

const POP3_FIELDS: [(&str, &str); 9] = [
    ("user", "string"),
    ("mechanism", "string"),
    ("auth_success", "bool"),
    ("tls", "bool"),
    ("messages_seen", "count"),
    ("retrieved", "set[count]"),
    ("deleted", "set[count]"),
    ("deletions_committed", "bool"),
    ("state", "string"),
];

const FILES_FIELDS: [(&str, &str); 10] = [
    ("fuid", "string"),
    ("proto", "string"),
    ("message_index", "count"),
    ("filename", "string"),
    ("mime_type", "string"),
    ("size", "count"),
    ("md5", "string"),
    ("sha1", "string"),
    ("sha256", "string"),
    ("complete", "bool"),
];

const CREDENTIAL_FIELDS: [(&str, &str); 6] = [
    ("proto", "string"),
    ("mechanism", "string"),
    ("user", "string"),
    ("success", "bool"),
    ("encrypted", "bool"),
    ("secret", "string"),
];

const FINDING_FIELDS: [(&str, &str); 5] = [
    ("proto", "string"),
    ("note", "string"),
    ("msg", "string"),
    ("severity", "string"),
    ("sessions", "set[string]"),
];

/// The log files written, as named in the folder.
pub const LOG_FILES: [&str; 5] = [
    "smtp.log",
    "pop3.log",
    "mail_files.log",
    "credentials.log",
    "findings.log",
];

/// One log file: its header goes out with the first row (or at the end, when it has none).
struct ZeekLog<W: Write> {
    out: W,
    path: &'static str,
    fields: Vec<(&'static str, &'static str)>,
    opened: bool,
    /// The latest row time, for `#close`.
    last: Option<Timestamp>,
    rows: u64,
}

impl<W: Write> ZeekLog<W> {
    fn new(out: W, path: &'static str, specific: &[(&'static str, &'static str)]) -> Self {
        let mut fields = Vec::with_capacity(CONN.len() + specific.len());
        fields.extend_from_slice(&CONN);
        fields.extend_from_slice(specific);
        ZeekLog {
            out,
            path,
            fields,
            opened: false,
            last: None,
            rows: 0,
        }
    }

    fn header(&mut self, open: Timestamp) -> io::Result<()> {
        self.opened = true;
        let names: Vec<&str> = self.fields.iter().map(|f| f.0).collect();
        let types: Vec<&str> = self.fields.iter().map(|f| f.1).collect();
        write!(
            self.out,
            "#separator \\x09\n#set_separator\t{SET_SEPARATOR}\n#empty_field\t{EMPTY_FIELD}\n\
             #unset_field\t{UNSET_FIELD}\n#path\t{}\n#open\t{}\n#fields\t{}\n#types\t{}\n",
            self.path,
            zeek_date(open),
            names.join("\t"),
            types.join("\t"),
        )
    }

    fn row(&mut self, row: &Row) -> io::Result<()> {
        if !self.opened {
            self.header(row.ts)?;
        }
        self.last = Some(self.last.map_or(row.ts, |l| l.max(row.ts)));
        self.rows += 1;
        self.out.write_all(row.line.as_bytes())?;
        self.out.write_all(b"\n")
    }

    /// Writes the footer (and the header of a log without rows); `fallback` dates those.
    fn finish(mut self, fallback: Timestamp) -> io::Result<W> {
        if !self.opened {
            self.header(fallback)?;
        }
        let close = self.last.unwrap_or(fallback);
        writeln!(self.out, "#close\t{}", zeek_date(close))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Capture time as Zeek dates `#open` and `#close`: `2024-05-01-12-00-00`.
fn zeek_date(ts: Timestamp) -> String {
    ts.to_string()
        .chars()
        .take(19)
        .map(|c| if c == 'T' || c == ':' { '-' } else { c })
        .collect()
}

/// One row being built, fields escaped as they are added.
struct Row {
    ts: Timestamp,
    line: String,
}

impl Row {
    fn new(ts: Timestamp) -> Self {
        let mut r = Row {
            ts,
            line: String::with_capacity(256),
        };
        r.line.push_str(&zeek_time(ts));
        r
    }

    /// A row of a session log: time and the connection columns.
    fn conn(ts: Timestamp, rec: &SessionRecord) -> Self {
        let mut r = Row::new(ts);
        r.string(Some(&session_uid(rec.id)));
        r.addr(Some(rec.client.ip));
        r.count(Some(u64::from(rec.client.port)));
        r.addr(Some(rec.server.ip));
        r.count(Some(u64::from(rec.server.port)));
        r
    }

    fn sep(&mut self) {
        self.line.push(SEPARATOR);
    }

    fn unset(&mut self) {
        self.sep();
        self.line.push_str(UNSET_FIELD);
    }

    fn string(&mut self, v: Option<&str>) {
        match v {
            None => self.unset(),
            Some(s) => {
                self.sep();
                push_escaped(&mut self.line, s, false);
            }
        }
    }

    fn count(&mut self, v: Option<u64>) {
        match v {
            None => self.unset(),
            Some(n) => {
                self.sep();
                let _ = write!(self.line, "{n}");
            }
        }
    }

    fn addr(&mut self, v: Option<IpAddr>) {
        match v {
            None => self.unset(),
            Some(ip) => {
                self.sep();
                let _ = write!(self.line, "{ip}");
            }
        }
    }

    fn bool(&mut self, v: Option<bool>) {
        match v {
            None => self.unset(),
            Some(b) => {
                self.sep();
                self.line.push(if b { 'T' } else { 'F' });
            }
        }
    }

    /// A set or vector; `None` is unset, an empty one is `(empty)`.
    fn set<S: AsRef<str>>(&mut self, v: Option<impl IntoIterator<Item = S>>) {
        let Some(items) = v else {
            self.unset();
            return;
        };
        self.sep();
        let start = self.line.len();
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.line.push(SET_SEPARATOR);
            }
            push_escaped(&mut self.line, item.as_ref(), true);
        }
        if self.line.len() == start {
            self.line.push_str(EMPTY_FIELD);
        }
    }
}

/// Capture time as Zeek writes a `time`: seconds with six decimals.
fn zeek_time(ts: Timestamp) -> String {
    let micros = ts.micros();
    format!(
        "{}.{:06}",
        micros.div_euclid(1_000_000),
        micros.rem_euclid(1_000_000)
    )
}

/// Appends `s` escaped: control characters, backslashes and the separators as `\xNN` (each
/// UTF-8 byte of a control character), and a whole value equal to a marker with its first
/// byte escaped, so a reader can always tell values from markers.
fn push_escaped(out: &mut String, s: &str, in_set: bool) {
    if s.is_empty() {
        out.push_str(EMPTY_FIELD);
        return;
    }
    let marker = s == UNSET_FIELD || s == EMPTY_FIELD;
    for (i, c) in s.chars().enumerate() {
        let escape = c.is_control()
            || c == '\\'
            || c == SEPARATOR
            || (in_set && c == SET_SEPARATOR)
            || (marker && i == 0);
        if escape {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        } else {
            out.push(c);
        }
    }
}

/// Writes the five logs into a folder.
pub struct ZeekLogs {
    dir: PathBuf,
    smtp: ZeekLog<BufWriter<AtomicFile>>,
    pop3: ZeekLog<BufWriter<AtomicFile>>,
    files: ZeekLog<BufWriter<AtomicFile>>,
    credentials: ZeekLog<BufWriter<AtomicFile>>,
    findings: ZeekLog<BufWriter<AtomicFile>>,
    /// The earliest session start, dating logs without rows.
    earliest: Option<Timestamp>,
}

/// What [`ZeekLogs::finish`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeekSummary {
    /// The folder holding the logs.
    pub dir: PathBuf,
    /// Rows written per log, in [`LOG_FILES`] order.
    pub rows: [u64; 5],
}

impl ZeekLogs {
    /// Creates `dir` if needed and the five logs in it, under temporary names until
    /// [`ZeekLogs::finish`] puts them in place (replacing logs of an earlier run, never
    /// writing through a symlink planted in `dir`).
    pub fn create(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let open = |name: &str| -> io::Result<BufWriter<AtomicFile>> {
            Ok(BufWriter::with_capacity(
                1 << 16,
                AtomicFile::create(&dir.join(name), Access::Default)?,
            ))
        };
        Ok(ZeekLogs {
            dir: dir.to_path_buf(),
            smtp: ZeekLog::new(open(LOG_FILES[0])?, "smtp", &SMTP_FIELDS),
            pop3: ZeekLog::new(open(LOG_FILES[1])?, "pop3", &POP3_FIELDS),
            files: ZeekLog::new(open(LOG_FILES[2])?, "mail_files", &FILES_FIELDS),
            credentials: ZeekLog::new(open(LOG_FILES[3])?, "credentials", &CREDENTIAL_FIELDS),
            findings: ZeekLog::new(open(LOG_FILES[4])?, "findings", &FINDING_FIELDS),
            earliest: None,
        })
    }

    /// Writes the rows of one session.
    pub fn session(&mut self, rec: &SessionRecord) -> io::Result<()> {
        self.earliest = Some(
            self.earliest
                .map_or(rec.first_seen, |e| e.min(rec.first_seen)),
        );
        match rec.protocol {
            Protocol::Smtp => {
                for row in smtp_rows(rec) {
                    self.smtp.row(&row)?;
                }
            }
            Protocol::Pop3 => self.pop3.row(&pop3_row(rec))?,
        }
        for m in &rec.messages {
            for row in file_rows(rec, m) {
                self.files.row(&row)?;
            }
        }
        for c in &rec.credentials {
            let mut r = Row::conn(c.ts, rec);
            r.string(Some(rec.protocol.as_str()));
            r.string(Some(&c.mechanism));
            r.string(c.username.as_deref());
            r.bool(c.success);
            r.bool(Some(c.encrypted));
            r.string(super::credentials::secret_text(c).as_deref());
            self.credentials.row(&r)?;
        }
        for f in &rec.findings {
            self.findings.row(&finding_row(rec, f))?;
        }
        Ok(())
    }

    /// Writes run-level findings (no session: the client address only).
    pub fn run_findings(&mut self, findings: &[RunFinding]) -> io::Result<()> {
        for f in findings {
            let mut r = Row::new(f.finding.ts);
            r.unset();
            r.addr(f.client);
            r.unset();
            r.unset();
            r.unset();
            finding_columns(&mut r, None, &f.finding);
            r.set(Some(f.sessions.iter().map(|&id| session_uid(id))));
            self.findings.row(&r)?;
        }
        Ok(())
    }

    /// Writes the footers, puts the five logs in place, and says how many rows each got.
    pub fn finish(self) -> io::Result<ZeekSummary> {
        let fallback = self.earliest.unwrap_or_default();
        let mut rows = [0u64; 5];
        let logs = [
            self.smtp,
            self.pop3,
            self.files,
            self.credentials,
            self.findings,
        ];
        let mut written = Vec::with_capacity(logs.len());
        for (i, log) in logs.into_iter().enumerate() {
            if let Some(n) = rows.get_mut(i) {
                *n = log.rows;
            }
            written.push(log.finish(fallback)?);
        }
        // Only once all five are whole: a failure leaves the earlier run's logs as they were.
        for out in written {
            out.into_inner().map_err(|e| e.into_error())?.commit()?;
        }
        Ok(ZeekSummary {
            dir: self.dir,
            rows,
        })
    }
}

fn finding_columns(r: &mut Row, proto: Option<Protocol>, f: &Finding) {
    r.string(proto.map(Protocol::as_str));
    r.string(Some(&f.rule));
    r.string(Some(&f.message));
    r.string(Some(f.severity.as_str()));
}

fn finding_row(rec: &SessionRecord, f: &Finding) -> Row {
    let mut r = Row::conn(f.ts, rec);
    finding_columns(&mut r, Some(rec.protocol), f);
    r.set(Some([session_uid(rec.id)]));
    r
}

/// `Name <address>`, or the address alone, as the To and Cc sets show a mailbox.
fn mailbox(a: &AddressRecord) -> Option<String> {
    match (&a.name, &a.address) {
        (Some(n), Some(addr)) if !n.is_empty() => Some(format!("{n} <{addr}>")),
        (_, Some(addr)) => Some(addr.clone()),
        (Some(n), None) => Some(n.clone()),
        (None, None) => None,
    }
}

fn mailboxes(list: &[AddressRecord]) -> Vec<String> {
    list.iter().filter_map(mailbox).collect()
}

/// What the events say about each message: when its transaction began (the MAIL command
/// before its content).
#[derive(Debug, Clone, Default)]
struct TransactionView {
    mail_ts: Option<Timestamp>,
}

fn transaction_views(rec: &SessionRecord) -> Vec<TransactionView> {
    let mut views = vec![TransactionView::default(); rec.messages.len()];
    let mut last_mail: Option<Timestamp> = None;
    for Event { ts, from, kind, .. } in &rec.events {
        match (from, kind) {
            (Direction::Client, EventKind::Command { verb, .. }) if verb == "MAIL" => {
                last_mail = Some(*ts);
            }
            (_, EventKind::MessageData { message, .. }) => {
                if let Some(v) = views.get_mut(*message) {
                    v.mail_ts = v.mail_ts.or(last_mail);
                }
            }
            _ => {}
        }
    }
    views
}

fn reply_text(code: u16, lines: &[String]) -> String {
    match lines.last() {
        Some(text) if !text.is_empty() => format!("{code} {text}"),
        _ => code.to_string(),
    }
}

/// The message transmission path as Zeek logs it: the server, the client, then the hosts
/// the Received headers name (top first).
fn path(rec: &SessionRecord, header: Option<&HeaderSummary>) -> Vec<String> {
    let mut path = vec![rec.server.ip.to_string(), rec.client.ip.to_string()];
    if let Some(h) = header {
        path.extend(
            h.received
                .iter()
                .filter_map(|hop| hop.from_ip.as_deref())
                .filter_map(|ip| ip.trim_matches(['[', ']']).parse::<IpAddr>().ok())
                .map(|ip| ip.to_string()),
        );
    }
    path
}

fn smtp_rows(rec: &SessionRecord) -> Vec<Row> {
    let helo = rec.smtp.as_ref().and_then(|s| s.helo.as_deref());
    let views = transaction_views(rec);
    let mut rows = Vec::with_capacity(rec.messages.len() + 1);
    for (m, view) in rec.messages.iter().zip(&views) {
        let h = m.mime.as_ref().map(|mime| &mime.header);
        let mut r = Row::conn(view.mail_ts.unwrap_or(m.first_seen), rec);
        r.count(Some(m.index as u64 + 1));
        r.string(helo);
        r.string(m.mail_from.as_deref());
        r.set(m.rcpt_to.as_ref());
        r.string(h.and_then(|h| h.date_raw.as_deref()));
        r.string(h.and_then(|h| h.from_raw.as_deref()));
        r.set(h.map(|h| mailboxes(&h.to)).filter(|v| !v.is_empty()));
        r.set(h.map(|h| mailboxes(&h.cc)).filter(|v| !v.is_empty()));
        r.string(h.and_then(|h| h.reply_to_raw.as_deref()));
        r.string(
            h.and_then(|h| h.message_id.as_deref())
                .map(|id| format!("<{id}>"))
                .as_deref(),
        );
        let in_reply_to = h.filter(|h| !h.in_reply_to.is_empty()).map(|h| {
            h.in_reply_to
                .iter()
                .map(|id| format!("<{id}>"))
                .collect::<Vec<_>>()
                .join(" ")
        });
        r.string(in_reply_to.as_deref());
        r.string(h.and_then(|h| h.subject_raw.as_deref().or(h.subject.as_deref())));
        r.addr(
            h.and_then(|h| h.x_originating_ip.as_deref())
                .and_then(|ip| ip.trim().trim_matches(['[', ']']).parse().ok()),
        );
        r.string(
            h.and_then(|h| h.received.first())
                .map(|hop| hop.raw.as_str()),
        );
        r.string(
            h.and_then(|h| h.received.get(1))
                .map(|hop| hop.raw.as_str()),
        );
        // The verdict the dissector recorded on the message, as Zeek writes a reply.
        let verdict = m.reply.as_ref().map(|v| {
            if v.text.is_empty() {
                v.code.to_string()
            } else {
                format!("{} {}", v.code, v.text)
            }
        });
        r.string(verdict.as_deref());
        r.set(Some(path(rec, h)));
        r.string(h.and_then(|h| h.user_agent.as_deref().or(h.x_mailer.as_deref())));
        r.bool(Some(
            rec.tls.as_ref().is_some_and(|t| t.started <= m.first_seen),
        ));
        let fuids = m.mime.as_ref().map(|mime| {
            (0..mime.attachments.len())
                .map(|i| file_uid(rec.id, m.index, i))
                .collect::<Vec<_>>()
        });
        r.set(Some(fuids.unwrap_or_default()));
        r.bool(Some(false));
        rows.push(r);
    }
    if let Some(tls) = rec.tls.as_ref().filter(|t| t.mode == TlsMode::Starttls) {
        // Zeek logs the upgrade itself: the transaction state at STARTTLS, with tls T.
        let reply = rec
            .events
            .iter()
            .rev()
            .filter(|e| e.ts <= tls.started)
            .find_map(|e| match &e.kind {
                EventKind::Reply { code, lines, .. } => Some(reply_text(*code, lines)),
                _ => None,
            });
        let mut r = Row::conn(tls.started, rec);
        r.count(Some(rec.messages.len() as u64 + 1));
        r.string(helo);
        for _ in 0..13 {
            r.unset();
        }
        r.string(reply.as_deref());
        r.set(Some(path(rec, None)));
        r.unset();
        r.bool(Some(true));
        r.set(Some(Vec::<String>::new()));
        r.bool(Some(false));
        rows.push(r);
    }
    rows
}

fn pop3_row(rec: &SessionRecord) -> Row {
    let pop3 = rec.pop3.as_ref();
    let last = rec.credentials.last();
    let mut r = Row::conn(rec.first_seen, rec);
    r.string(
        pop3.and_then(|p| p.user.as_deref())
            .or_else(|| last.and_then(|c| c.username.as_deref())),
    );
    r.string(last.map(|c| c.mechanism.as_str()));
    r.bool(last.and_then(|c| c.success));
    r.bool(Some(rec.tls.is_some()));
    r.count(Some(rec.messages.len() as u64));
    let mailbox = pop3.map(|p| &p.mailbox);
    r.set(mailbox.map(|m| m.retrieved.iter().map(u64::to_string).collect::<Vec<_>>()));
    r.set(mailbox.map(|m| m.deleted.iter().map(u64::to_string).collect::<Vec<_>>()));
    r.bool(mailbox.map(|m| m.deletions_committed));
    let state = pop3.and_then(|p| serde_json::to_value(p.state).ok());
    r.string(state.as_ref().and_then(|v| v.as_str()));
    r
}

fn file_rows(rec: &SessionRecord, m: &MessageRecord) -> Vec<Row> {
    let Some(mime) = &m.mime else {
        return Vec::new();
    };
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    mime.attachments
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut r = Row::conn(m.last_seen, rec);
            r.string(Some(&file_uid(rec.id, m.index, i)));
            r.string(Some(rec.protocol.as_str()));
            r.count(Some(m.index as u64));
            r.string(a.filename.as_deref());
            r.string(Some(&a.content_type));
            r.count(Some(a.size));
            r.string(non_empty(&a.md5).as_deref());
            r.string(non_empty(&a.sha1).as_deref());
            r.string(non_empty(&a.sha256).as_deref());
            r.bool(Some(a.complete));
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str, in_set: bool) -> String {
        let mut out = String::new();
        push_escaped(&mut out, s, in_set);
        out
    }

    #[test]
    fn values_are_escaped_as_zeek_does() {
        assert_eq!(escaped("a\tb", false), "a\\x09b");
        assert_eq!(escaped("line\r\nbreak", false), "line\\x0d\\x0abreak");
        assert_eq!(escaped("back\\slash", false), "back\\x5cslash");
        assert_eq!(escaped("a,b", false), "a,b");
        assert_eq!(escaped("a,b", true), "a\\x2cb");
        assert_eq!(escaped("-", false), "\\x2d");
        assert_eq!(escaped("(empty)", false), "\\x28empty)");
        assert_eq!(escaped("", false), "(empty)");
        assert_eq!(escaped("Grüße", false), "Grüße");
        assert_eq!(escaped("\u{85}", false), "\\xc2\\x85");
    }

    #[test]
    fn times_and_dates_are_zeek_shaped() {
        let ts = Timestamp::from_parts(1_254_722_767, 492_060_123);
        assert_eq!(zeek_time(ts), "1254722767.492060");
        assert_eq!(zeek_date(ts), "2009-10-05-06-06-07");
        assert_eq!(zeek_time(Timestamp(-1_500_000)), "-1.998500");
    }

    #[test]
    fn sets_distinguish_unset_from_empty() {
        let mut r = Row::new(Timestamp(0));
        r.set(None::<Vec<String>>);
        r.set(Some(Vec::<String>::new()));
        r.set(Some(["a,b", "c"]));
        assert_eq!(r.line, "0.000000\t-\t(empty)\ta\\x2cb,c");
    }

    /// A fresh folder for one test: the Zeek folder, with a victim file outside it.
    fn zeek_test_dir(tag: &str) -> (PathBuf, PathBuf) {
        let root = std::env::temp_dir().join(format!(
            "mailsift-zeek-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&root);
        let logs = root.join("logs");
        fs::create_dir_all(&logs).unwrap();
        let victim = root.join("victim");
        fs::write(&victim, b"not a log").unwrap();
        (logs, victim)
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_planted_in_the_folder_are_replaced_not_followed() {
        let (dir, victim) = zeek_test_dir("symlink");
        for name in LOG_FILES {
            std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
        }
        let logs = ZeekLogs::create(&dir).unwrap();
        logs.finish().unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"not a log");
        for name in LOG_FILES {
            let path = dir.join(name);
            assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
            let text = fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("#separator") && text.contains("#close"),
                "{text}"
            );
        }
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut expected = LOG_FILES.map(String::from).to_vec();
        expected.sort();
        assert_eq!(names, expected, "no temporary left behind");
        let _ = fs::remove_dir_all(dir.parent().unwrap());
    }

    #[test]
    fn logs_abandoned_before_finish_leave_the_old_ones() {
        let (dir, _) = zeek_test_dir("abandon");
        fs::write(dir.join(LOG_FILES[0]), b"an earlier run").unwrap();
        drop(ZeekLogs::create(&dir).unwrap());
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [LOG_FILES[0]]);
        assert_eq!(fs::read(dir.join(LOG_FILES[0])).unwrap(), b"an earlier run");
        let _ = fs::remove_dir_all(dir.parent().unwrap());
    }

    #[test]
    fn a_log_without_rows_still_has_its_header_and_footer() {
        let log = ZeekLog::new(Vec::new(), "pop3", &POP3_FIELDS);
        let out = String::from_utf8(log.finish(Timestamp(0)).unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "#separator \\x09");
        assert_eq!(lines[1], "#set_separator\t,");
        assert_eq!(lines[4], "#path\tpop3");
        assert_eq!(lines[5], "#open\t1970-01-01-00-00-00");
        assert!(lines[6].starts_with("#fields\tts\tuid\tid.orig_h"));
        assert_eq!(
            lines[6].split('\t').count(),
            lines[7].split('\t').count(),
            "as many types as fields"
        );
        assert_eq!(lines[8], "#close\t1970-01-01-00-00-00");
    }
}
