//! The POP3 session machine.
//!
//! # Pairing
//! Client lines become commands, appended to a queue of pending commands; server status lines
//! answer the queue's front, in order (this is also RFC 2449 PIPELINING). The greeting answers
//! nothing. Whether `+OK` opens a dot-terminated body is decided by the command it answers
//! (LIST/UIDL without argument, RETR, TOP, CAPA, bare AUTH, bare LANG); `-ERR` is one line.
//! For commands no specification shapes (unknown verbs, XTND) and for replies to lost
//! commands the line after `+OK` decides: `.` or a status line means no body, anything else
//! opens one.
//!
//! # Hold rules (the record must not depend on how the two directions interleave)
//! - The server waits when a status line, a continuation or a gap needs the front of the queue
//!   and the client has not supplied it yet: the line (or gap) and everything after it are held.
//! - The client waits after `STLS` (until its reply says whether TLS follows), after `AUTH
//!   mechanism` whenever the server has not yet sent the continuation (`+ `) that makes the next
//!   client line a SASL response or the verdict that ends the exchange, and while
//!   `max_pending_commands` commands are unanswered.
//! - A side that waits never waits on a side that has finished (FIN or end of session).
//! - Held bytes are bounded (`max(max_ooo_bytes_per_direction, 4 * max_line_len)` per side).
//!   When a side overflows, a `hold_overflow` anomaly is recorded and the session continues
//!   degraded: nobody waits; replies with no command are reported as `reply_without_command`,
//!   a command later found to be older than such a reply is not queued, the client reads lines
//!   after an unanswered `AUTH` as the mechanism sees them ([`SaslExchange::guess_line`]:
//!   responses until the mechanism's usual count is in, unless a known command that cannot be
//!   a response comes first; then a known command or a line that cannot be a response ends
//!   the exchange), and after an unanswered `STLS` switches to TLS if its next byte starts a
//!   TLS record.
//!
//! # Lost commands and the time rule
//! A client gap (or a mid-stream pickup) puts a `Lost` marker into the queue: an unknown
//! number of commands whose replies will still come. A reply meets `Lost` at the front; it
//! answers the next known command if it was captured no earlier than that command, else a lost
//! one (shaped by the next line, see above). This assumes a client that waits for each reply,
//! which nearly all POP3 clients do; pipelined commands lost in a gap can be misattributed.
//!
//! # Resynchronisation rule (server gaps and mid-stream pickup)
//! - A gap inside a body ends its message as incomplete; the rest of the body is skipped up to
//!   the first `.` line, which cannot occur inside a dot-stuffed body, so body lines that start
//!   with `+OK` are never taken for replies. The next line answers the next command.
//! - A gap between replies damages the reply to the front command (its first byte was in the
//!   gap): that command is dropped (an STLS outcome is then read from the next bytes, an AUTH
//!   goes on degraded) and `Lost` takes its place. Until a status line is seen, any other line
//!   is taken as the rest of a body and skipped to its `.` line.
//! - A capture picked up mid-stream (no handshake) starts with `Lost` queued; when the first
//!   server line is not a status line, the capture started inside a body, which is skipped to
//!   its `.` line (`midstream_pickup` anomaly). The first client line counts only if it is a
//!   known command.
//! - Such a skip is reported as a `resync` anomaly. If a gap swallows a terminator too, the
//!   skip runs to the next body's end and replies until then are lost.
//!
//! # Not POP3
//! Lines that fit no POP3 shape are reported and dissected as far as they go, so junk or
//! control bytes before real commands hide nothing. Each side scores its junk since its last
//! valid line (a line counts 1, one with control bytes 4, an unknown command verb 1 without
//! resetting) and the bytes of those lines; at [`NOT_POP3_SCORE`] or [`NOT_POP3_BYTES`] that
//! side is reported as `not_pop3` and its input is dropped from then on: a bound on what a TLS
//! stream or random bytes can cost. At the end, a side that sent junk and not one valid POP3
//! line is reported as `not_pop3` too. Each side decides from its own bytes only, and only
//! the offending side stops: using the other side would make the record depend on how the
//! directions interleave. A stopped client counts as finished (its unanswered replies are
//! reported as such), a stopped server likewise.

mod auth;
mod bodies;
mod client;
mod replies;
mod tls;

use super::body::{DotScanner, ScanResult};
use super::command::{Command, ReplyShape, Scope, Verb, parse_command};
use super::mailbox::{
    Capabilities, MAX_AUTH_MECHANISMS, MAX_CAPABILITY_LEN, Pop3State, Pop3Summary, bounded,
};
use super::reply::{
    ServerLine, StatusLine, apop_timestamp, parse_scan_listing, parse_server_line,
    parse_uid_listing,
};
use crate::limits::{Limits, Reservation};
use crate::mail::{Envelope, KeepBounds, MessageCollector};
use crate::proto::Dissector;
use crate::proto::line::{LineEnding, LineFramer};
use crate::proto::sasl::{GuessedLine, Mechanism, SaslExchange};
use crate::proto::tls::{ALERT_RECORD, HANDSHAKE_RECORD, TlsObserver, UpgradeCheck};
use crate::session::{
    Credential, CredentialDetails, Direction, EventKind, MessageAdmission, MessageSource, Protocol,
    SessionRecord, TlsMode,
};
use crate::time::Timestamp;
use std::collections::VecDeque;

/// Junk score in a row (no valid line in between) at which a side stops being dissected.
pub const NOT_POP3_SCORE: u32 = 256;

/// Bytes of junk lines in a row at which a side stops being dissected.
pub const NOT_POP3_BYTES: u64 = 64 << 10;

/// Server challenges of one AUTH exchange kept while the client's responses lag behind.
const MAX_QUEUED_CHALLENGES: usize = 64;

/// A command waiting for its reply, with what the reply will settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    User {
        cred: usize,
    },
    Pass {
        cred: usize,
    },
    Apop {
        cred: usize,
    },
    /// AUTH with a mechanism: the exchange itself lives in `Pop3Dissector::auth`.
    SaslAuth,
    /// AUTH without argument: a listing of mechanisms.
    AuthList,
    Capa,
    Stls,
    Stat,
    List(Scope),
    Uidl(Scope),
    Retr(Option<u64>),
    Top(Option<u64>),
    Dele(Option<u64>),
    Rset,
    Quit,
    /// Accepted only in the TRANSACTION state (NOOP, LAST).
    Transactional,
    /// Anything else, with the reply shape its verb implies.
    Other(ReplyShape),
}

impl Request {
    fn shape(self) -> ReplyShape {
        match self {
            Request::AuthList | Request::Capa | Request::Retr(_) | Request::Top(_) => {
                ReplyShape::MultiLineOnOk
            }
            Request::List(Scope::All) | Request::Uidl(Scope::All) => ReplyShape::MultiLineOnOk,
            Request::Other(shape) => shape,
            _ => ReplyShape::SingleLine,
        }
    }
}

/// Held bytes (both sides) a session keeps without asking the run's budget.
pub const FREE_HELD_BYTES: usize = 1 << 10;

/// An entry of the pending-command queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Command {
        ts: Timestamp,
        request: Request,
    },
    /// Commands that were never captured (client gap, mid-stream pickup).
    Lost,
}

/// A status line whose event waits for its body (or for the line that shapes it).
#[derive(Debug, Clone, PartialEq)]
struct PendingStatus {
    ok: bool,
    text: String,
    resp_code: Option<String>,
    ts: Timestamp,
}

impl PendingStatus {
    fn new(s: &StatusLine<'_>, ts: Timestamp) -> Self {
        PendingStatus {
            ok: s.ok,
            text: s.text.to_string(),
            resp_code: s.resp_code.map(str::to_string),
            ts,
        }
    }

    fn emit(self, body_lines: Option<u64>, ts: Timestamp, rec: &mut SessionRecord) {
        rec.push_event(
            ts,
            Direction::Server,
            EventKind::Status {
                ok: self.ok,
                text: self.text,
                resp_code: self.resp_code,
                body_lines,
            },
        );
    }
}

/// What a listing body's lines fill.
#[derive(Debug)]
enum Listing {
    Sizes,
    Uids,
    Capa(Capabilities),
    AuthMechanisms(Vec<String>),
}

/// Where a body's content goes.
#[derive(Debug)]
enum BodySink {
    Message {
        collector: Option<MessageCollector>,
        source: MessageSource,
        number: Option<u64>,
    },
    Listing {
        framer: LineFramer,
        listing: Listing,
    },
    /// A body of unknown meaning: lines are counted only.
    Discard,
    /// Resynchronisation: skipping the rest of a body whose start was not seen.
    Skip { reason: &'static str },
}

#[derive(Debug)]
struct Body {
    scanner: DotScanner,
    /// The `+OK` that opened the body; `None` while skipping.
    status: Option<PendingStatus>,
    sink: BodySink,
    last_ts: Timestamp,
    /// A gap cut into it: its message is incomplete, though read on to its end.
    cut: bool,
}

/// What the server stream is expected to carry next.
#[derive(Debug, Default)]
enum ServerPhase {
    /// The first line: the greeting (or, mid-stream, anything).
    #[default]
    Greeting,
    /// Status lines and continuations; after a gap, other lines are the rest of a body.
    Lines { after_gap: bool },
    /// `+OK` to a command of unknown shape: the next line decides whether a body follows.
    Probe(PendingStatus),
    /// Inside a dot-terminated body.
    Body(Box<Body>),
    /// A gap swallowed the reply to STLS: the next bytes show whether TLS began.
    StlsOutcome { cut_line: CutLine },
    /// After an accepted STLS.
    Tls,
}

/// Where the server stream stands relative to the line a gap cut, while the STLS outcome is
/// unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CutLine {
    /// Nothing seen since the gap.
    Unknown,
    /// Inside the rest of the cut line (which may span segments), skipping to its LF.
    Skipping,
    /// Past it: the next byte decides.
    Skipped,
}

/// Something the server side could not interpret yet (it needs the client's commands).
#[derive(Debug)]
enum Held {
    Line {
        text: String,
        binary: bool,
        ts: Timestamp,
    },
    Gap {
        ts: Timestamp,
    },
}

/// An input item kept in order until its side may go on.
#[derive(Debug)]
enum Item {
    Data {
        bytes: Vec<u8>,
        offset: usize,
        ts: Timestamp,
    },
    Gap {
        len: u64,
        ts: Timestamp,
    },
    Fin,
}

/// A side's held input, with its byte count for the hold limit.
#[derive(Debug, Default)]
struct Inbox {
    items: VecDeque<Item>,
    bytes: usize,
}

impl Inbox {
    fn push(&mut self, item: Item) {
        if let Item::Data { bytes, offset, .. } = &item {
            self.bytes += bytes.len() - offset;
        }
        self.items.push_back(item);
    }

    fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }
}

/// State kept per direction.
#[derive(Debug)]
struct Side {
    framer: LineFramer,
    inbox: Inbox,
    /// No more input will come from this side (its FIN, or the end of the session, processed).
    done: bool,
    /// Declared not to speak POP3: its input is dropped.
    stopped: bool,
    fin_queued: bool,
    /// Input came after the FIN (reported once, ignored).
    after_fin: bool,
    junk_score: u32,
    junk_bytes: u64,
    /// When the side's first junk line came, if one did.
    first_junk: Option<Timestamp>,
    /// Whether this side has sent at least one valid POP3 line.
    spoke_pop3: bool,
    last_ts: Timestamp,
    scratch: Vec<u8>,
}

impl Side {
    fn valid_line(&mut self) {
        self.junk_score = 0;
        self.junk_bytes = 0;
        self.spoke_pop3 = true;
    }

    fn new(limits: &Limits) -> Self {
        Side {
            framer: LineFramer::new(limits.max_line_len).with_budget(limits.work_budget.clone()),
            inbox: Inbox::default(),
            done: false,
            stopped: false,
            fin_queued: false,
            after_fin: false,
            junk_score: 0,
            junk_bytes: 0,
            first_junk: None,
            spoke_pop3: false,
            last_ts: Timestamp::default(),
            scratch: Vec::new(),
        }
    }
}

/// One AUTH exchange with a mechanism, from the command to the verdict and the last response.
#[derive(Debug)]
struct AuthFlow {
    exchange: SaslExchange,
    cred: usize,
    ts: Timestamp,
    /// Challenges received but not yet handed to the exchange: each one's turn comes after
    /// the client's previous response, which may not have been read yet.
    queued: VecDeque<String>,
    challenges: u32,
    fed_challenges: u32,
    responses: u32,
    verdict: Option<bool>,
    /// The server cannot settle the exchange (gap, overflow, end): the mechanism guesses which
    /// client lines are its responses.
    forced: bool,
    client_moved_on: bool,
}

impl AuthFlow {
    fn feed_due_challenges(&mut self) {
        while self.responses >= self.fed_challenges {
            let Some(c) = self.queued.pop_front() else {
                break;
            };
            self.exchange.server_challenge(&c);
            self.fed_challenges += 1;
        }
    }

    fn on_challenge(&mut self, payload: &str) {
        self.challenges = self.challenges.saturating_add(1);
        if self.queued.len() < MAX_QUEUED_CHALLENGES {
            self.queued.push_back(payload.to_string());
        }
        self.feed_due_challenges();
    }

    /// A client response, or `None` for one lost in a gap.
    fn on_response(&mut self, line: Option<&str>) {
        self.feed_due_challenges();
        if let Some(line) = line {
            self.exchange.client_response(line);
        }
        self.responses = self.responses.saturating_add(1);
        self.feed_due_challenges();
    }

    /// Whether the server asked for client lines the client has not yet been seen to send.
    fn responses_owed(&self) -> bool {
        self.challenges > self.responses
    }

    fn complete(&self) -> bool {
        self.verdict.is_some() && !self.responses_owed()
    }
}

/// Input as delivered by the engine.
#[derive(Debug, Clone, Copy)]
enum Input<'a> {
    Data(&'a [u8]),
    Gap(u64),
    Fin,
}

/// Whether a server line could be interpreted or has to wait for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Held,
}

/// What a server line answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    /// The client has not supplied the command yet.
    Wait,
    /// No command will come (client finished, or degraded).
    Unmatched,
    /// A command that was never captured.
    Lost,
    /// The queue's first command (still queued).
    Command(Request),
}

/// Dissects a clear-text POP3 session into events, credentials, messages and a summary.
#[derive(Debug)]
pub struct Pop3Dissector {
    max_line_len: usize,
    max_pending: usize,
    keep: KeepBounds,
    hold_limit: usize,
    started: bool,
    ended: bool,
    handshake_seen: bool,
    degraded: bool,
    client: Side,
    server: Side,
    server_phase: ServerPhase,
    held: Option<Held>,
    /// The first client line after a gap or a mid-stream pickup may be a fragment.
    client_after_gap: bool,
    client_tls: bool,
    /// What each side sent first after an accepted STLS.
    upgrade: UpgradeCheck,
    queue: VecDeque<Pending>,
    commands_pending: usize,
    /// The run's budget's share for `queue` past its free entries.
    queue_charge: Reservation,
    /// The run's budget's share for the bytes both inboxes hold past [`FREE_HELD_BYTES`].
    inbox_charge: Reservation,
    auth: Option<AuthFlow>,
    stls_wait: bool,
    open_user: Option<usize>,
    tls: Option<TlsObserver>,
    /// Degraded mode: capture time of the latest reply taken as answering no command.
    unmatched_until: Option<Timestamp>,
    /// The session's bounds and key log, for the dissector inside a decrypted TLS layer.
    limits: Limits,
}

fn is_text_byte(b: u8) -> bool {
    matches!(b, 0x20..=0x7e | 0x80..=0xff | b'\r' | b'\n' | b'\t')
}

/// Whether a byte opens a TLS record (change_cipher_spec, alert, handshake, application data).
fn is_tls_record_start(b: u8) -> bool {
    (0x14..=0x17).contains(&b)
}

fn summary(rec: &mut SessionRecord) -> &mut Pop3Summary {
    rec.pop3.get_or_insert_with(Box::default)
}

fn set_success(rec: &mut SessionRecord, cred: usize, ok: bool) {
    if let Some(c) = rec.credentials.get_mut(cred) {
        c.success = Some(ok);
    }
}

fn push_credential(rec: &mut SessionRecord, credential: Credential) -> usize {
    rec.credentials.push(credential);
    rec.credentials.len() - 1
}

/// Records the anomalies a protocol line shows; returns whether it holds binary bytes.
fn line_anomalies(
    dir: Direction,
    bytes: &[u8],
    ending: LineEnding,
    discarded: u64,
    ts: Timestamp,
    rec: &mut SessionRecord,
) -> bool {
    if discarded > 0 {
        rec.anomaly(
            ts,
            Some(dir),
            "line_too_long",
            format!(
                "line of {} bytes cut to {}",
                bytes.len() as u64 + discarded,
                bytes.len()
            ),
        );
    }
    match ending {
        LineEnding::CrLf => {}
        LineEnding::Lf => rec.anomaly(ts, Some(dir), "bare_lf", "line ended by LF without CR"),
        LineEnding::None => rec.anomaly(
            ts,
            Some(dir),
            "unterminated_line",
            "the stream ended inside a line",
        ),
    }
    let (mut nul, mut control, mut non_ascii) = (false, false, false);
    for &b in bytes {
        match b {
            0 => nul = true,
            b'\t' | b'\r' => {}
            0x01..=0x1f | 0x7f => control = true,
            0x80..=0xff => non_ascii = true,
            _ => {}
        }
    }
    if nul {
        rec.anomaly(ts, Some(dir), "nul_byte", "NUL byte in a protocol line");
    }
    if control {
        rec.anomaly(
            ts,
            Some(dir),
            "control_bytes",
            "control bytes in a protocol line",
        );
    }
    if non_ascii {
        rec.anomaly(ts, Some(dir), "non_ascii", "8-bit bytes in a protocol line");
    }
    nul || control
}

/// Applies one line of a listing body (LIST, UIDL, CAPA, bare AUTH).
fn listing_line(
    listing: &mut Listing,
    bytes: &[u8],
    overlong: bool,
    ts: Timestamp,
    rec: &mut SessionRecord,
) {
    let dir = Some(Direction::Server);
    if overlong {
        rec.anomaly(ts, dir, "line_too_long", "listing line cut");
    }
    let text = String::from_utf8_lossy(bytes);
    let full = |rec: &mut SessionRecord| {
        rec.anomaly(
            ts,
            dir,
            "mailbox_limit",
            format!(
                "more than {} entries; later ones are not kept",
                super::mailbox::MAX_MAILBOX_ENTRIES
            ),
        );
    };
    match listing {
        Listing::Sizes => match parse_scan_listing(&text) {
            Some((n, size)) => {
                if summary(rec).mailbox.set_size(n, size).is_err() {
                    full(rec);
                }
            }
            None => rec.anomaly(ts, dir, "bad_listing_line", format!("LIST line {text:?}")),
        },
        Listing::Uids => match parse_uid_listing(&text) {
            Some((n, uid, cut)) => {
                if cut {
                    rec.anomaly(ts, dir, "uid_too_long", "unique id cut");
                }
                if summary(rec).mailbox.set_uid(n, uid).is_err() {
                    full(rec);
                }
            }
            None => rec.anomaly(ts, dir, "bad_listing_line", format!("UIDL line {text:?}")),
        },
        Listing::Capa(caps) => {
            if !caps.add_line(&text) {
                rec.anomaly(
                    ts,
                    dir,
                    "capability_limit",
                    "too many capability lines; later ones dropped",
                );
            }
        }
        Listing::AuthMechanisms(mechs) => {
            if let Some(name) = text.split_ascii_whitespace().next() {
                if mechs.len() < MAX_AUTH_MECHANISMS {
                    mechs.push(bounded(name, MAX_CAPABILITY_LEN));
                } else {
                    rec.anomaly(
                        ts,
                        dir,
                        "capability_limit",
                        "too many mechanisms; later ones dropped",
                    );
                }
            }
        }
    }
}

impl Pop3Dissector {
    /// A dissector for one clear-text POP3 session.
    pub fn new(limits: &Limits) -> Self {
        Pop3Dissector {
            max_line_len: limits.max_line_len,
            max_pending: limits.max_pending_commands.max(1),
            keep: KeepBounds::from_limits(limits),
            hold_limit: limits
                .max_ooo_bytes_per_direction
                .max(limits.max_line_len.saturating_mul(4)),
            started: false,
            ended: false,
            handshake_seen: false,
            degraded: false,
            client: Side::new(limits),
            server: Side::new(limits),
            server_phase: ServerPhase::Greeting,
            held: None,
            client_after_gap: false,
            client_tls: false,
            upgrade: UpgradeCheck::default(),
            queue: VecDeque::new(),
            commands_pending: 0,
            queue_charge: Reservation::new(limits.work_budget.clone()),
            inbox_charge: Reservation::new(limits.work_budget.clone()),
            auth: None,
            stls_wait: false,
            open_user: None,
            tls: None,
            unmatched_until: None,
            limits: limits.clone(),
        }
    }

    /// A dissector for the plaintext of a decrypted TLS layer; `after_upgrade` when TLS
    /// followed STLS, so the greeting came before and the client speaks first.
    pub fn inside_tls(limits: &Limits, after_upgrade: bool) -> Self {
        let mut d = Pop3Dissector::new(limits);
        if after_upgrade {
            d.started = true;
            d.handshake_seen = true;
            d.server_phase = ServerPhase::Lines { after_gap: false };
        }
        d
    }

    fn side(&mut self, dir: Direction) -> &mut Side {
        match dir {
            Direction::Client => &mut self.client,
            Direction::Server => &mut self.server,
        }
    }

    fn begin(&mut self, rec: &mut SessionRecord) {
        if self.started {
            return;
        }
        self.started = true;
        self.handshake_seen = rec.handshake_seen;
        let s = summary(rec);
        if !self.handshake_seen {
            s.state = Pop3State::Unknown;
            self.queue.push_back(Pending::Lost);
            self.client_after_gap = true;
        }
    }

    // ----- input plumbing: inboxes, holding, pumping -------------------------------------

    fn input(&mut self, dir: Direction, input: Input<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        self.begin(rec);
        if self.side(dir).stopped {
            return;
        }
        if self.side(dir).fin_queued && !matches!(input, Input::Fin) {
            // The FIN ended this side's stream (the reassembler drops what lies beyond it); what
            // is read after it would depend on how far the dissection had got at the FIN.
            if !std::mem::replace(&mut self.side(dir).after_fin, true) {
                rec.anomaly(
                    ts,
                    Some(dir),
                    "data_after_fin",
                    "bytes or a gap after this side's FIN; ignored",
                );
            }
            return;
        }
        let direct = self.side(dir).inbox.items.is_empty();
        match input {
            Input::Data(data) if direct => {
                let n = self.feed(dir, data, ts, rec);
                if n < data.len() && !self.side(dir).stopped {
                    self.side(dir).inbox.push(Item::Data {
                        bytes: data[n..].to_vec(),
                        offset: 0,
                        ts,
                    });
                }
            }
            Input::Data(data) => self.side(dir).inbox.push(Item::Data {
                bytes: data.to_vec(),
                offset: 0,
                ts,
            }),
            Input::Gap(len) => self.side(dir).inbox.push(Item::Gap { len, ts }),
            Input::Fin => self.side(dir).inbox.push(Item::Fin),
        }
        self.pump(rec);
        // Held bytes past a small allowance are the run's: when its budget cannot hold them,
        // the session moves on as at its own hold bound.
        let held = self.client.inbox.bytes + self.server.inbox.bytes;
        let refused = !self.inbox_charge.set(held.saturating_sub(FREE_HELD_BYTES));
        if !self.degraded
            && !self.side(dir).stopped
            && (self.side(dir).inbox.bytes > self.hold_limit || refused)
        {
            self.degraded = true;
            rec.anomaly(
                ts,
                Some(dir),
                "hold_overflow",
                format!(
                    "more than {} bytes from the {} waited for the other side; going on with the most likely reading",
                    self.hold_limit.min(held),
                    dir.as_str()
                ),
            );
            self.pump(rec);
        }
        let held = self.client.inbox.bytes + self.server.inbox.bytes;
        self.inbox_charge.set(held.saturating_sub(FREE_HELD_BYTES));
        self.queue_charge.settle(&mut self.queue, |_| 0);
    }

    /// Runs both sides until neither can go on.
    fn pump(&mut self, rec: &mut SessionRecord) {
        loop {
            let client = self.drain(Direction::Client, rec);
            let server = self.drain(Direction::Server, rec);
            if !client && !server {
                return;
            }
        }
    }

    /// Processes a side's held input in order; true if anything moved.
    fn drain(&mut self, dir: Direction, rec: &mut SessionRecord) -> bool {
        let mut progress = false;
        if dir == Direction::Server
            && let Some(held) = self.held.take()
        {
            if !self.retry_held(held, rec) {
                return false;
            }
            progress = true;
        }
        loop {
            if self.side(dir).stopped {
                self.side(dir).inbox.clear();
                return progress;
            }
            if self.blocked(dir) {
                return progress;
            }
            let Some(item) = self.side(dir).inbox.items.pop_front() else {
                return progress;
            };
            match item {
                Item::Data { bytes, offset, ts } => {
                    let rest = bytes.len() - offset;
                    let n = self.feed(dir, &bytes[offset..], ts, rec);
                    if n < rest && !self.side(dir).stopped {
                        let side = self.side(dir);
                        side.inbox.bytes = side.inbox.bytes.saturating_sub(n);
                        side.inbox.items.push_front(Item::Data {
                            bytes,
                            offset: offset + n,
                            ts,
                        });
                        return progress || n > 0;
                    }
                    let side = self.side(dir);
                    side.inbox.bytes = side.inbox.bytes.saturating_sub(rest);
                    progress = true;
                }
                Item::Gap { len, ts } => {
                    self.gap(dir, len, ts, rec);
                    progress = true;
                }
                Item::Fin => {
                    if !self.fin(dir, rec) {
                        self.side(dir).inbox.items.push_front(Item::Fin);
                        return progress;
                    }
                    progress = true;
                }
            }
        }
    }

    fn blocked(&self, dir: Direction) -> bool {
        match dir {
            Direction::Client => self.client_blocked(),
            Direction::Server => self.held.is_some(),
        }
    }

    /// Whether the client must wait for the server before its next line can be read.
    fn client_blocked(&self) -> bool {
        if self.degraded || self.server.done || self.server.stopped || self.client_tls {
            return false;
        }
        if self.stls_wait {
            return true;
        }
        if let Some(flow) = &self.auth
            && !flow.forced
            && flow.verdict.is_none()
            && !flow.responses_owed()
        {
            return true;
        }
        self.commands_pending >= self.max_pending || !self.queue_charge.fits(&self.queue, 0)
    }

    /// Whether no further client command can come to be answered.
    fn client_exhausted(&self) -> bool {
        // A client in TLS sends no more commands, unless its first bytes after STLS have yet to
        // show whether it went on in clear text.
        self.client.done
            || self.client.stopped
            || self.degraded
            || (self.client_tls && self.upgrade.checked(Direction::Client))
    }

    fn feed(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> usize {
        if self.side(dir).stopped {
            return data.len();
        }
        self.side(dir).last_ts = ts;
        match dir {
            Direction::Client => self.feed_client(data, ts, rec),
            Direction::Server => self.feed_server(data, ts, rec),
        }
    }

    /// End of a side's input: its unterminated last line, if any, is taken as a line.
    /// False when that line has to wait for the client (the FIN is then retried).
    fn fin(&mut self, dir: Direction, rec: &mut SessionRecord) -> bool {
        let side = self.side(dir);
        let ts = side.last_ts;
        let mut scratch = std::mem::take(&mut side.scratch);
        let flushed = side.framer.flush().map(|l| {
            scratch.clear();
            scratch.extend_from_slice(l.bytes);
            (l.ending, l.discarded)
        });
        let mut through = true;
        if let Some((ending, discarded)) = flushed
            && !self.side(dir).stopped
        {
            match dir {
                Direction::Client => {
                    if !self.client_tls {
                        self.client_line(&scratch, ending, discarded, ts, rec);
                    }
                }
                Direction::Server => {
                    through = self.server_line_framed(&scratch, ending, discarded, ts, rec)
                        == Outcome::Done;
                }
            }
        }
        self.side(dir).scratch = scratch;
        if through {
            self.side(dir).done = true;
            if let Some(tls) = self.tls.as_mut() {
                tls.on_fin(dir, ts, rec);
            }
        }
        through
    }

    fn not_pop3(&mut self, dir: Direction, ts: Timestamp, rec: &mut SessionRecord, why: &str) {
        rec.anomaly(
            ts,
            Some(dir),
            "not_pop3",
            format!(
                "the {} does not speak POP3 ({why}); dissection stopped",
                dir.as_str()
            ),
        );
        self.side(dir).stopped = true;
        self.side(dir).inbox.clear();
        if dir == Direction::Server {
            self.held = None;
        }
    }

    /// Scores a line of `len` bytes that fits no POP3 shape; enough junk in a row ends the
    /// dissection of that side.
    fn junk(
        &mut self,
        dir: Direction,
        binary: bool,
        len: u64,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) {
        let side = self.side(dir);
        side.junk_score = side.junk_score.saturating_add(if binary { 4 } else { 1 });
        side.junk_bytes = side.junk_bytes.saturating_add(len);
        side.first_junk.get_or_insert(ts);
        if side.junk_score >= NOT_POP3_SCORE || side.junk_bytes >= NOT_POP3_BYTES {
            self.not_pop3(dir, ts, rec, "too much junk with no POP3 line in between");
        }
    }

    /// At the end: a side that sent junk and never one valid POP3 line does not speak POP3.
    fn not_pop3_verdict(&mut self, rec: &mut SessionRecord) {
        for dir in [Direction::Client, Direction::Server] {
            let side = self.side(dir);
            if let Some(ts) = side
                .first_junk
                .filter(|_| !side.spoke_pop3 && !side.stopped)
            {
                rec.anomaly(
                    ts,
                    Some(dir),
                    "not_pop3",
                    format!(
                        "the {} does not speak POP3 (not one of its lines is POP3)",
                        dir.as_str()
                    ),
                );
            }
        }
    }

    fn gap(&mut self, dir: Direction, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        match dir {
            Direction::Client => self.client_gap(len, ts, rec),
            Direction::Server => self.server_gap(len, ts, rec),
        }
    }

    /// Settles everything still open at the end of the session.
    fn finish(&mut self, ts: Timestamp, rec: &mut SessionRecord) {
        if self.held.is_some()
            || !self.client.inbox.items.is_empty()
            || !self.server.inbox.items.is_empty()
        {
            // Both sides are finished, so nothing should wait; if something does, stop waiting.
            self.degraded = true;
            self.pump(rec);
        }
        // A decrypted TLS layer ends its own dissector, whose credentials count below.
        if let Some(tls) = self.tls.as_mut() {
            tls.finish(ts, rec);
        }
        let phase = std::mem::replace(
            &mut self.server_phase,
            ServerPhase::Lines { after_gap: false },
        );
        match phase {
            ServerPhase::Body(body) => {
                let last = body.last_ts;
                self.finish_body(*body, last, false, rec);
            }
            ServerPhase::Probe(status) => {
                let status_ts = status.ts;
                status.emit(None, status_ts, rec);
            }
            other => self.server_phase = other,
        }
        if let Some(flow) = self.auth.take() {
            self.finish_auth(flow, rec);
        }
        self.not_pop3_verdict(rec);
        let mut unanswered: Option<(Timestamp, usize)> = None;
        let queue = std::mem::take(&mut self.queue);
        for pending in &queue {
            if let Pending::Command { ts: sent, request } = pending {
                let entry = unanswered.get_or_insert((*sent, 0));
                entry.1 += 1;
                if let Request::Apop { cred } = request {
                    self.fill_apop_challenge(*cred, rec);
                }
            }
        }
        self.commands_pending = 0;
        if let Some((first, count)) = unanswered
            && !self.client.stopped
            && !self.server.stopped
        {
            rec.anomaly(
                first,
                Some(Direction::Client),
                "unanswered_commands",
                format!("{count} commands got no reply in the capture"),
            );
        }
        let _ = ts;
        let creds = &rec.credentials;
        let user = creds
            .iter()
            .rev()
            .find(|c| c.success == Some(true) && c.username.is_some())
            .or_else(|| creds.iter().rev().find(|c| c.username.is_some()))
            .and_then(|c| c.username.clone());
        summary(rec).user = user;
        // Anomalies are kept in capture-time order, like events, so that the order in which
        // the two directions happened to be read leaves no trace.
        rec.anomalies
            .sort_by(|a, b| (a.ts, a.from, &a.kind).cmp(&(b.ts, b.from, &b.kind)));
    }
}

fn listing_full(ts: Timestamp, rec: &mut SessionRecord) {
    rec.anomaly(
        ts,
        Some(Direction::Server),
        "mailbox_limit",
        format!(
            "more than {} entries; later ones are not kept",
            super::mailbox::MAX_MAILBOX_ENTRIES
        ),
    );
}

impl Dissector for Pop3Dissector {
    fn on_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) {
        self.input(dir, Input::Data(data), ts, rec);
    }

    fn on_gap(&mut self, dir: Direction, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        self.input(dir, Input::Gap(len), ts, rec);
    }

    fn on_fin(&mut self, dir: Direction, ts: Timestamp, rec: &mut SessionRecord) {
        if !self.side(dir).fin_queued {
            self.side(dir).fin_queued = true;
            self.input(dir, Input::Fin, ts, rec);
        }
    }

    fn on_end(&mut self, ts: Timestamp, rec: &mut SessionRecord) {
        if self.ended {
            return;
        }
        for dir in [Direction::Client, Direction::Server] {
            self.on_fin(dir, ts, rec);
        }
        self.begin(rec);
        self.finish(ts, rec);
        self.ended = true;
    }
}
