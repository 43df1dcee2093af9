//! Per-protocol views for `analyze`: what each SMTP and POP3 session did, and every message.

use super::anomalies::AnomalyTable;
use super::table::layout::{self, Column, Value, keep, wrap};
use super::table::{Terminal, section};
use crate::mail::AddressRecord;
use crate::proto::smtp::{MailTransaction, TransactionOutcome};
use crate::session::{Credential, MessageRecord, MessageSource, Protocol, SessionRecord, TlsMode};
use crate::time::Timestamp;

/// Most rows kept per table; later ones are counted, so huge captures stay cheap to report.
pub const MAX_ROWS: usize = 5_000;

/// Longest text shown in a cell, in characters (the JSON keeps everything).
const MAX_CELL_CHARS: usize = 60;

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_CELL_CHARS).collect();
    if s.chars().count() > MAX_CELL_CHARS {
        out.push('…');
    }
    // A cell is one line: control characters from the wire never reach the terminal.
    out.chars()
        .map(|c| if c.is_control() { '·' } else { c })
        .collect()
}

/// Up to `n` items joined, with "+k" for the rest.
fn list(items: &[String], n: usize) -> String {
    if items.is_empty() {
        return "-".into();
    }
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        s.push_str(&format!(" +{}", items.len() - n));
    }
    clip(&s)
}

fn tls_state(rec: &SessionRecord, offered: bool) -> String {
    if let Some(c) = rec.cleartext_instead_of_tls {
        return match c.mode {
            TlsMode::Starttls => "starttls, then clear text".into(),
            TlsMode::Implicit => "clear text on a tls port".into(),
        };
    }
    match rec.tls.as_ref().map(|t| t.mode) {
        Some(TlsMode::Implicit) => "implicit".into(),
        Some(TlsMode::Starttls) => "starttls".into(),
        None if offered => "offered, not used".into(),
        None => "none".into(),
    }
}

/// "user (ok)" for the last attempt of a session, with the number of attempts (proxy logins
/// of a tunnel are not logins to the mail server, and are left out).
fn login(creds: &[Credential]) -> String {
    let creds: Vec<&Credential> = creds.iter().filter(|c| !c.is_proxy_login()).collect();
    let Some(last) = creds.last() else {
        return "-".into();
    };
    let user = last.username.as_deref().unwrap_or("?");
    let outcome = match last.success {
        Some(true) => "ok",
        Some(false) => "failed",
        None => "no reply",
    };
    let mut s = format!("{} {} ({outcome})", last.mechanism, clip(user));
    if creds.len() > 1 {
        s.push_str(&format!(", {} attempts", creds.len()));
    }
    s
}

fn addresses(list: &[AddressRecord]) -> Vec<String> {
    list.iter()
        .map(|a| match (&a.name, &a.address) {
            (_, Some(addr)) => addr.clone(),
            (Some(n), None) => n.clone(),
            (None, None) => "?".into(),
        })
        .collect()
}

/// Rows with a sort key, capped at [`MAX_ROWS`].
#[derive(Debug, Default)]
struct Rows {
    rows: Vec<((Timestamp, u64, usize), Vec<Value>)>,
    not_shown: u64,
}

impl Rows {
    fn push(&mut self, key: (Timestamp, u64, usize), cells: Vec<Value>) {
        if self.rows.len() >= MAX_ROWS {
            self.not_shown += 1;
        } else {
            self.rows.push((key, cells));
        }
    }

    /// The table under its title, fitted to `term`; empty when there are no rows.
    fn render(&mut self, title: &str, columns: &[Column], term: &Terminal) -> String {
        if self.rows.is_empty() {
            return String::new();
        }
        self.rows.sort_by_key(|r| r.0);
        let rows: Vec<Vec<Value>> = self
            .rows
            .iter()
            .take(term.row_limit())
            .map(|r| r.1.clone())
            .collect();
        let fitted = layout::render(columns, &rows, term);
        let total = self.rows.len() as u64 + self.not_shown;
        let hidden = total - rows.len() as u64;
        format!(
            "\n{}",
            section(title, &total.to_string(), hidden, &fitted, term)
        )
    }
}

/// Text cells, as most rows are.
fn texts(cells: Vec<String>) -> Vec<Value> {
    cells.into_iter().map(Value::Text).collect()
}

/// Columns of the SMTP sessions table.
const SMTP_COLUMNS: [Column; 8] = [
    keep("id", "id", 0),
    wrap("client → server", "client → server", 0),
    wrap("helo", "helo", 4),
    wrap("sender", "sender", 3),
    wrap("recipients", "rcpts", 2),
    wrap("auth", "auth", 1),
    wrap("msgs", "msgs", 5).right(),
    wrap("tls", "tls", 6),
];

/// Columns of the table of SMTP transactions that delivered nothing.
const REFUSED_COLUMNS: [Column; 6] = [
    keep("time (UTC)", "time", 0),
    keep("session", "sess", 0).right(),
    wrap("sender", "sender", 2),
    wrap("recipients", "rcpts", 1),
    wrap("outcome", "outcome", 0),
    wrap("last reply", "reply", 3),
];

/// Columns of the POP3 sessions table.
const POP3_COLUMNS: [Column; 7] = [
    keep("id", "id", 0),
    wrap("client → server", "client → server", 0),
    keep("user", "user", 2),
    wrap("login", "login", 3),
    wrap("tls", "tls", 4),
    wrap("retrieved", "retr", 1),
    wrap("deleted", "dele", 1),
];

/// Columns of the TLS sessions table.
const TLS_COLUMNS: [Column; 7] = [
    keep("id", "id", 0),
    wrap("client → server", "client → server", 0),
    keep("mode", "mode", 3),
    keep("version", "ver", 2),
    keep("cipher", "cipher", 4),
    keep("sni", "sni", 5),
    wrap("decrypted", "decrypted", 1),
];

/// Columns of the tunnels table.
const TUNNEL_COLUMNS: [Column; 7] = [
    keep("id", "id", 0),
    wrap("client → proxy", "client → proxy", 0),
    keep("kind", "kind", 1),
    keep("target", "target", 0),
    wrap("auth", "auth", 3),
    keep("proxy user", "user", 2),
    wrap("answer", "answer", 1),
];

/// Columns of the messages table.
const MESSAGE_COLUMNS: [Column; 8] = [
    keep("time (UTC)", "time", 0),
    keep("session", "sess", 0).right(),
    wrap("proto", "proto", 4),
    wrap("from", "from", 2),
    wrap("to", "to", 1),
    wrap("subject", "subject", 0),
    keep("size", "size", 3).right(),
    wrap("attachments", "attachments", 5),
];

/// The SMTP, POP3 and message tables of `analyze`, filled as sessions finish.
#[derive(Debug, Default)]
pub struct ActivityTables {
    smtp: Rows,
    pop3: Rows,
    tls: Rows,
    /// SMTP transactions that delivered nothing (delivered ones are in `messages`).
    refused: Rows,
    tunnels: Rows,
    messages: Rows,
    anomalies: AnomalyTable,
}

/// Messages carried, and the transactions the server refused, e.g. "2, 3 refused".
fn mail_count(rec: &SessionRecord) -> String {
    use TransactionOutcome as O;
    let carried = rec.messages.len();
    let refused = rec.smtp.as_ref().map_or(0, |s| {
        s.mail_transactions
            .iter()
            .filter(|t| !matches!(t.outcome, O::Delivered | O::Abandoned | O::Unanswered))
            .count()
    });
    if refused == 0 {
        carried.to_string()
    } else {
        format!("{carried}, {refused} refused")
    }
}

/// What the server said to a message: "delivered 250", "refused 554", "no reply".
fn verdict(m: &MessageRecord) -> String {
    if !matches!(m.source, MessageSource::Data | MessageSource::Bdat) {
        return String::new();
    }
    match m.reply.as_ref().map(|r| r.code) {
        Some(c @ 200..=299) => format!(" → {c}"),
        Some(c @ 400..=499) => format!(" → {c} deferred"),
        Some(c) => format!(" → {c} refused"),
        None => " → no reply".into(),
    }
}

fn transaction_row(t: &MailTransaction) -> Vec<String> {
    let sender = match t.mail_from.as_deref() {
        Some("") => "<>".to_string(),
        Some(f) => f.to_string(),
        None => "?".to_string(),
    };
    let rcpts: Vec<String> = t
        .recipients
        .iter()
        .map(|r| match r.reply {
            Some(c) if c >= 400 => format!("{} ({c})", r.path),
            _ => r.path.clone(),
        })
        .collect();
    let reply = t
        .last_reply
        .as_ref()
        .map_or("-".to_string(), |r| format!("{} {}", r.code, r.text));
    vec![
        clip(&sender),
        list(&rcpts, 3),
        t.outcome.as_str().replace('_', " "),
        clip(&reply),
    ]
}

/// One row of the tunnels table: the proxy handshake a session opened with.
fn tunnel_row(rec: &SessionRecord, t: &crate::proto::tunnel::TunnelInfo) -> Vec<String> {
    use crate::proto::tunnel::{TunnelAuth, TunnelKind};
    let kind = match t.kind {
        TunnelKind::HttpConnect => "HTTP CONNECT",
        TunnelKind::Socks4 => "SOCKS4",
        TunnelKind::Socks4a => "SOCKS4a",
        TunnelKind::Socks5 => "SOCKS5",
    };
    let target = match (&t.target_host, t.target_port) {
        (Some(h), Some(p)) if h.contains(':') => format!("[{h}]:{p}"),
        (Some(h), Some(p)) => format!("{h}:{p}"),
        _ => "?".into(),
    };
    let auth = match t.auth {
        None | Some(TunnelAuth::None) => "-",
        Some(TunnelAuth::Gssapi) => "GSSAPI",
        Some(TunnelAuth::UsernamePassword) => "username/password",
        Some(TunnelAuth::NoAcceptable) => "no acceptable method",
        Some(TunnelAuth::Basic) => "Basic",
        Some(TunnelAuth::Other) => "other",
    };
    let answer = match (t.established, t.status, &t.reply) {
        (None, ..) => "not seen".to_string(),
        (Some(ok), status, reply) => format!(
            "{}{}{}",
            if ok { "open" } else { "refused" },
            status.map(|s| format!(" {s}")).unwrap_or_default(),
            reply
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        ),
    };
    vec![
        rec.id.to_string(),
        format!("{} → {}", rec.client, rec.server),
        kind.into(),
        clip(&target),
        auth.into(),
        clip(t.username.as_deref().unwrap_or("-")),
        clip(&answer),
    ]
}

/// What decryption achieved, in a few words, or `-` without a key log.
fn decryption_state(tls: &crate::session::TlsInfo) -> String {
    use crate::proto::tls::DecryptionStatus as S;
    let Some(d) = &tls.decryption else {
        return "-".into();
    };
    let ok = d.records_decrypted.client + d.records_decrypted.server;
    let bad = d.records_failed.client + d.records_failed.server;
    match d.status {
        S::Decrypted => format!("yes ({ok} records)"),
        S::Partial => format!("partly ({ok} ok, {bad} failed)"),
        S::Failed => format!("no: {bad} records failed"),
        S::NoKey => "no key".into(),
        S::Unsupported => "unsupported".into(),
        S::HandshakeIncomplete => "no handshake".into(),
    }
}

/// The TLS table's row of a session.
fn tls_row(rec: &SessionRecord, tls: &crate::session::TlsInfo) -> Vec<String> {
    let hs = &tls.handshake;
    vec![
        rec.id.to_string(),
        format!("{} → {}", rec.client, rec.server),
        match tls.mode {
            TlsMode::Implicit => "implicit".into(),
            TlsMode::Starttls => "starttls".into(),
        },
        hs.version.map_or("-".into(), |v| v.to_string()),
        clip(hs.cipher.as_deref().unwrap_or("-")),
        clip(hs.sni.as_deref().unwrap_or("-")),
        decryption_state(tls),
    ]
}

impl ActivityTables {
    /// Empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a finished session's rows.
    pub fn add(&mut self, rec: &SessionRecord) {
        let key = (rec.first_seen, rec.id, 0);
        match rec.protocol {
            Protocol::Smtp => {
                let s = rec.smtp.as_ref();
                let mut senders: Vec<String> = Vec::new();
                let mut rcpts: Vec<String> = Vec::new();
                for m in &rec.messages {
                    if let Some(f) = &m.mail_from
                        && !senders.contains(f)
                    {
                        senders.push(if f.is_empty() { "<>".into() } else { f.clone() });
                    }
                    for r in m.rcpt_to.iter().flatten() {
                        if !rcpts.contains(r) {
                            rcpts.push(r.clone());
                        }
                    }
                }
                self.smtp.push(
                    key,
                    texts(vec![
                        rec.id.to_string(),
                        format!("{} → {}", rec.client, rec.server),
                        clip(s.and_then(|s| s.helo.as_deref()).unwrap_or("-")),
                        list(&senders, 2),
                        list(&rcpts, 3),
                        login(&rec.credentials),
                        mail_count(rec),
                        tls_state(rec, s.is_some_and(|s| s.starttls_offered)),
                    ]),
                );
                for (i, t) in s
                    .iter()
                    .flat_map(|s| s.mail_transactions.iter())
                    .enumerate()
                {
                    if t.outcome == TransactionOutcome::Delivered {
                        continue;
                    }
                    let mut cells = vec![Value::Time(t.ts), Value::Text(rec.id.to_string())];
                    cells.extend(texts(transaction_row(t)));
                    self.refused.push((t.ts, rec.id, i), cells);
                }
            }
            Protocol::Pop3 => {
                let p = rec.pop3.as_ref();
                let numbers = |set: Option<&std::collections::BTreeSet<u64>>| -> Vec<String> {
                    set.map(|s| s.iter().map(u64::to_string).collect())
                        .unwrap_or_default()
                };
                let retrieved = numbers(p.map(|p| &p.mailbox.retrieved));
                let deleted = numbers(p.map(|p| &p.mailbox.deleted));
                let committed = p.is_some_and(|p| p.mailbox.deletions_committed);
                let stls_offered = p
                    .and_then(|p| p.capabilities.as_ref())
                    .is_some_and(|c| c.stls);
                self.pop3.push(
                    key,
                    texts(vec![
                        rec.id.to_string(),
                        format!("{} → {}", rec.client, rec.server),
                        clip(p.and_then(|p| p.user.as_deref()).unwrap_or("-")),
                        login(&rec.credentials),
                        tls_state(rec, stls_offered),
                        numbered(&retrieved),
                        if deleted.is_empty() {
                            "-".into()
                        } else {
                            format!(
                                "{} {}",
                                numbered(&deleted),
                                if committed {
                                    "committed"
                                } else {
                                    "not committed"
                                }
                            )
                        },
                    ]),
                );
            }
        }
        if let Some(tls) = rec.tls.as_deref() {
            self.tls.push(key, texts(tls_row(rec, tls)));
        }
        if let Some(t) = rec.tunnel.as_deref() {
            self.tunnels.push(key, texts(tunnel_row(rec, t)));
        }
        for m in &rec.messages {
            self.messages
                .push((m.first_seen, rec.id, m.index), message_row(rec, m));
        }
        self.anomalies.add(rec);
    }

    /// The anomalies of every session, grouped by kind.
    pub fn anomalies(&mut self) -> &mut AnomalyTable {
        &mut self.anomalies
    }

    /// Renders the tables that have rows, each under a title, fitted to `term`.
    pub fn render(&mut self, term: &Terminal) -> String {
        [
            self.smtp.render("SMTP sessions", &SMTP_COLUMNS, term),
            self.refused.render(
                "SMTP transactions that delivered nothing",
                &REFUSED_COLUMNS,
                term,
            ),
            self.pop3.render("POP3 sessions", &POP3_COLUMNS, term),
            self.tls.render("TLS sessions", &TLS_COLUMNS, term),
            self.tunnels.render("Tunnels", &TUNNEL_COLUMNS, term),
            self.messages.render("Messages", &MESSAGE_COLUMNS, term),
        ]
        .concat()
    }
}

/// Message numbers with how many there are: `2 [4, 5]`, or `-` for none.
fn numbered(numbers: &[String]) -> String {
    if numbers.is_empty() {
        "-".into()
    } else {
        format!("{} [{}]", numbers.len(), list(numbers, 8))
    }
}

fn message_row(rec: &SessionRecord, m: &MessageRecord) -> Vec<Value> {
    let header = m.mime.as_ref().map(|x| &x.header);
    let from = header.map(|h| addresses(&h.from)).unwrap_or_default();
    let mut to = header.map(|h| addresses(&h.to)).unwrap_or_default();
    if to.is_empty()
        && let Some(r) = &m.rcpt_to
    {
        to = r.clone();
    }
    let attachments: Vec<String> = m
        .mime
        .as_ref()
        .map(|x| {
            x.attachments
                .iter()
                .map(|a| a.filename.clone().unwrap_or_else(|| a.content_type.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut size = super::table::human_bytes(m.size);
    if !m.complete {
        size.push_str(" (partial)");
    }
    let mut cells = vec![Value::Time(m.first_seen)];
    cells.extend(texts(vec![
        rec.id.to_string(),
        format!("{} {}{}", rec.protocol.as_str(), source_name(m), verdict(m)),
        list(&from, 2),
        list(&to, 3),
        clip(header.and_then(|h| h.subject.as_deref()).unwrap_or("-")),
        size,
        list(&attachments, 3),
    ]));
    cells
}

fn source_name(m: &MessageRecord) -> &'static str {
    match m.source {
        crate::session::MessageSource::Data => "DATA",
        crate::session::MessageSource::Bdat => "BDAT",
        crate::session::MessageSource::Retr => "RETR",
        crate::session::MessageSource::Top => "TOP",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_one_line_and_bounded() {
        let s = clip(&format!("a\r\nb\x1b[31m{}", "x".repeat(200)));
        assert!(!s.contains('\n') && !s.contains('\x1b'));
        assert!(s.chars().count() <= MAX_CELL_CHARS + 1);
        assert_eq!(list(&["a".into(), "b".into(), "c".into()], 2), "a, b +1");
        assert_eq!(list(&[], 2), "-");
    }
}
