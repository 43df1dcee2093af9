//! The SMTP session: client commands and server replies parsed apart, then paired in order.
//!
//! The record must not depend on how the two directions interleave in the capture, so:
//! - the client stream is parsed into commands and the server stream into replies, each on
//!   its own; every client item that expects a reply joins a queue, and replies are matched
//!   to the queue in order (which is also how PIPELINING works). The greeting is the first
//!   reply and answers nothing;
//! - all effects that need both sides (envelope, capabilities, AUTH verdicts, messages,
//!   STARTTLS) happen when a reply is matched, so they follow the command order;
//! - where the meaning of the client's next bytes depends on a reply (DATA: body or
//!   commands; AUTH and each SASL line: another SASL line or commands; STARTTLS: TLS or
//!   commands) the client stream pauses after the command and its bytes (and gaps) are
//!   held with their timestamps until the reply is matched. After a 220 that is not the
//!   greeting the server stream pauses the same way, since TLS may follow it. BDAT needs no
//!   pause: its chunk follows at once;
//! - a reply that arrives before its command waits in a queue for it.
//!
//! Bounds: held bytes per side 1 MiB ([`PAUSED_BYTES_CAP`]), queued commands and queued
//! replies `max_pending_commands` each, lines `max_line_len`. When a bound is hit the most
//! likely reading is taken and an anomaly says so (only then can the interleaving change the
//! record): a paused client reads a DATA body unless its next line is unmistakably a command,
//! TLS after STARTTLS if its next byte starts a TLS record, and after AUTH or a SASL line
//! another SASL line as the mechanism sees it ([`SaslExchange::guess_line`]): until the
//! mechanism's usual responses are in (LOGIN two, PLAIN one...), a line is a response unless
//! it is a known command that cannot be one; after them a known command, or a line that
//! cannot be a response, ends the exchange. The same guesses settle pauses whose reply never
//! came by the end of the capture (e.g. when a crafted segment hides every server reply).
//!
//! Envelope rule: a message's envelope is the MAIL path and the RCPT paths of its
//! transaction that were not rejected, i.e. accepted (2xx/3xx) or never answered; so a capture
//! without the server side keeps every recipient attempted. A rejected MAIL opens no
//! transaction; RSET, an accepted HELO/EHLO, an accepted STARTTLS and the end of a message
//! close it.
//!
//! Gap rules:
//! - inside a DATA body, the message ends there as incomplete (hashed up to the gap); the
//!   bytes after the gap up to the end-of-data line are skipped and counted in an anomaly;
//! - inside a BDAT chunk, the count tells how much was lost: the chunk goes on if the gap
//!   was shorter, otherwise the message is incomplete and the stream re-synchronises;
//! - elsewhere the client re-synchronises on the next line that is unmistakably a known
//!   command, the server on the next reply line; the first item after such a loss is
//!   checked for fitting (a 221 can only answer QUIT, a 354 DATA...) and replies or commands
//!   whose partner was lost are set aside.
//!
//! A stream not seen from its start (`handshake_seen == false`) re-synchronises the same way
//! from its first byte; a lone `.` met meanwhile is taken as the end of a body whose start
//! was missed, so the reply to it lines up.
//!
//! Not SMTP: junk lines (unparseable, or with control bytes) are reported and dissected as far
//! as they go, so junk before or between real commands hides nothing. When a side's junk has
//! gone on for [`NOT_SMTP_SCORE`] (a line counts 1, one with control bytes 4) or
//! [`NOT_SMTP_BYTES`] with no valid line in between (`not_smtp`), its lines are only framed
//! and skipped, a bound on the work and memory a TLS stream or random bytes can cost, until
//! one is unmistakably a command (or a reply): dissection resumes there (`smtp_after_junk`),
//! so no amount of junk can hide the commands after it. At the end, a side that sent junk and not one valid line (a command with a known
//! verb; a reply line) is `not_smtp` too. Each side decides from its own bytes only, so the
//! verdict cannot depend on how the directions interleave; a server that answers in SMTP
//! keeps the client dissected simply because nothing stops a client short of the bound.

mod commands;
mod gaps;
mod hold;
mod messages;
mod replies;
mod transactions;

use hold::{HeldChunk, Hold};

use super::SmtpSummary;
use super::body::DotUnstuffer;
use super::command::{
    BodyType, PathArg, Verb, VerbShape, is_strict_command, parse_auth_arg, parse_bdat_arg,
    parse_mail_arg, parse_rcpt_arg, split_command,
};
use super::reply::{Capabilities, parse_capabilities, parse_enhanced, parse_reply_line};
use crate::limits::{Limits, Reservation};
use crate::mail::{Envelope, KeepBounds, MessageCollector};
use crate::proto::Dissector;
use crate::proto::line::{Line, LineEnding, LineFramer};
use crate::proto::sasl::{GuessedLine, SaslExchange};
use crate::proto::tls::{ALERT_RECORD, HANDSHAKE_RECORD, TlsObserver, UpgradeCheck, may_open_tls};
use crate::session::{
    Direction, EventKind, MessageAdmission, MessageReply, MessageSource, Protocol, SessionRecord,
    TlsMode,
};
use crate::time::Timestamp;
use std::borrow::Cow;
use std::collections::VecDeque;

/// Client bytes held while waiting for a reply; beyond this the likely reading is assumed.
pub const PAUSED_BYTES_CAP: usize = 1 << 20;

/// Held bytes a session keeps without asking the run's budget.
const FREE_HELD_BYTES: usize = 1 << 10;
/// Junk score (a line 1, a line with control bytes 4) in a row after which a side stops.
pub const NOT_SMTP_SCORE: u32 = 256;
/// Junk bytes in a row (no valid line in between) after which a side stops.
pub const NOT_SMTP_BYTES: u64 = 64 << 10;
/// Lines kept per reply event; more are counted.
pub const MAX_REPLY_LINES: usize = 256;
/// Recipients kept per transaction envelope.
pub const MAX_RECIPIENTS: usize = 10_000;
/// Bytes of a session's transaction records kept without asking the run's budget.
const FREE_SUMMARY_BYTES: usize = 1 << 10;
/// Heap bytes of one transaction's recipients kept without asking the run's budget.
const FREE_RECIPIENT_BYTES: usize = 1 << 10;
/// Credentials recorded per session (AUTH attempts); later ones are counted in an anomaly.
pub const MAX_CREDENTIALS: usize = 10_000;
/// Longest content of a line RFC 5321 allows (1000 octets with CRLF).
const RFC_LINE_LIMIT: u64 = 998;

/// A message whose content is still arriving.
#[derive(Debug)]
struct OpenMessage {
    source: MessageSource,
    collector: Option<MessageCollector>,
    complete: bool,
}

impl OpenMessage {
    fn new(source: MessageSource) -> Self {
        OpenMessage {
            source,
            collector: None,
            complete: true,
        }
    }

    fn push(&mut self, bytes: &[u8], ts: Timestamp, keep: &KeepBounds) {
        if bytes.is_empty() {
            return;
        }
        let source = self.source;
        self.collector
            .get_or_insert_with(|| keep.collector(source, ts))
            .push(bytes, ts);
    }

    /// The capture missed `len` bytes of the content here.
    fn gap(&mut self, len: u64, ts: Timestamp, keep: &KeepBounds) {
        self.complete = false;
        let source = self.source;
        self.collector
            .get_or_insert_with(|| keep.collector(source, ts))
            .gap(len, ts);
    }

    /// Content bytes so far.
    fn size(&self) -> u64 {
        self.collector.as_ref().map_or(0, MessageCollector::size)
    }

    fn close(self, end_ts: Timestamp, keep: &KeepBounds, index: Option<usize>) -> EndedMessage {
        let source = self.source;
        EndedMessage {
            collector: self
                .collector
                .unwrap_or_else(|| keep.collector(source, end_ts)),
            complete: self.complete,
            end_ts,
            index,
        }
    }
}

/// A message whose content is all in, waiting for its place in the command order.
#[derive(Debug)]
struct EndedMessage {
    collector: MessageCollector,
    complete: bool,
    end_ts: Timestamp,
    /// Its index in the session's messages, fixed when its end was read; `None` past the
    /// per-session message bound (counted, not recorded).
    index: Option<usize>,
}

/// A DATA body being read.
#[derive(Debug)]
struct DataBody {
    unstuffer: DotUnstuffer,
    message: OpenMessage,
    /// Bytes skipped after a gap while looking for the end-of-data line.
    skipped: u64,
    /// Lines read since the last gap (saturating), and whether the first was empty: a gap
    /// that took the end-of-data line shows as a command in one of the first two.
    lines_after_gap: u8,
    blank_after_gap: bool,
}

impl DataBody {
    fn new() -> Self {
        DataBody {
            unstuffer: DotUnstuffer::new(),
            message: OpenMessage::new(MessageSource::Data),
            skipped: 0,
            lines_after_gap: 0,
            blank_after_gap: false,
        }
    }
}

/// How the client's next bytes are to be read.
#[derive(Debug)]
enum ClientMode {
    /// Command lines.
    Commands,
    /// Skipping lines until one is unmistakably a command (after a gap, or mid-stream).
    Resync,
    /// The next line answers a 334 challenge.
    SaslLine,
    /// Waiting for the reply to the last queued command; bytes are held.
    Paused,
    /// A DATA body.
    Body(Box<DataBody>),
    /// A DATA body cut by a gap: skipping to its end-of-data line.
    BodyAfterGap(Box<DataBody>),
    /// BDAT chunk bytes (the message is `Core::bdat`).
    Chunk { remaining: u64, last: bool },
    /// TLS after STARTTLS.
    Tls,
    /// The session has ended: nothing more is read.
    Stopped,
}

/// How the server's next bytes are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerMode {
    /// Reply lines.
    Replies,
    /// Skipping lines until one is a reply line.
    Resync,
    /// After a 220 that may accept STARTTLS: held until it is matched.
    Paused,
    /// TLS after STARTTLS.
    Tls,
}

/// What a reply (or a guess) says about the client's next bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    /// A DATA body.
    Body,
    /// More commands.
    Commands,
    /// A SASL response line.
    Sasl,
    /// TLS.
    Tls,
}

/// What a queued client item was, for its reply to act on.
#[derive(Debug)]
enum Step {
    Helo {
        ehlo: bool,
    },
    Mail {
        path: Option<String>,
    },
    Rcpt {
        path: Option<String>,
    },
    Data,
    DataEnd(Box<EndedMessage>),
    Bdat(Option<Box<EndedMessage>>),
    Rset,
    Quit,
    Starttls,
    /// An AUTH command or a SASL response line.
    Auth,
    /// A lone `.` line met while re-synchronising: the end of a body never seen.
    LostDataEnd,
    Other,
}

/// What a queued message that has ended counts for against the budget: the box itself (its
/// record was charged when the message was admitted).
const ENDED_MESSAGE_BYTES: usize = std::mem::size_of::<EndedMessage>();

impl Step {
    /// Heap bytes it holds, for the queue's charge.
    fn heap_bytes(&self) -> usize {
        match self {
            Step::Mail { path } | Step::Rcpt { path } => path.as_ref().map_or(0, String::len),
            Step::DataEnd(_) | Step::Bdat(Some(_)) => ENDED_MESSAGE_BYTES,
            _ => 0,
        }
    }
}

/// A client item waiting for its reply.
#[derive(Debug)]
struct Pending {
    ts: Timestamp,
    step: Step,
    /// The client's next bytes cannot be read until this reply is known.
    pauses_client: bool,
    /// The reply was guessed (buffer bound or end of capture) and the client moved on.
    assumed: Option<Resolution>,
    /// Commands may have been lost just before this one (gap, mid-stream start).
    uncertain: bool,
    /// Its reply was dropped at the reply-queue bound: complete it without one.
    reply_lost: bool,
    /// A BDAT message this command abandoned, to be recorded first.
    abandoned: Option<Box<EndedMessage>>,
}

impl HeldReply {
    /// Heap bytes it holds, for the queue's charge.
    fn heap_bytes(&self) -> usize {
        self.text.len()
            + self
                .more
                .iter()
                .map(|l| l.len() + std::mem::size_of::<String>())
                .sum::<usize>()
    }
}

/// Whether a reply starts the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Greeting {
    /// First reply of a stream seen from its start.
    Definite,
    /// First reply, a 220, of a stream picked up late: a greeting unless it answers STARTTLS.
    Maybe,
    /// Not a greeting.
    No,
}

/// A complete reply waiting for its command.
#[derive(Debug)]
struct HeldReply {
    code: u16,
    ts: Timestamp,
    /// Text of the first line.
    text: String,
    /// Lines after the first (EHLO capabilities, a refusal's explanation), bounded.
    more: Vec<String>,
    greeting: Greeting,
    /// Replies may have been lost just before this one (gap, mid-stream start).
    after_gap: bool,
    /// Its code already closed one command as unanswered; it will not close another.
    slipped: bool,
}

/// A reply whose lines are still arriving.
#[derive(Debug)]
struct ReplyBuilder {
    code: u16,
    ts: Timestamp,
    lines: Vec<String>,
    dropped_lines: u64,
    after_gap: bool,
    cut_by_gap: bool,
}

/// Not-SMTP detection for one direction, from its own bytes only.
#[derive(Debug, Default)]
struct Sanity {
    /// Junk since the last valid line: weighted lines, and bytes.
    junk_score: u32,
    junk_bytes: u64,
    /// When the side's first junk line came, if one did.
    first_junk: Option<Timestamp>,
    valid_seen: bool,
    /// Junk reached the bound: lines are skipped until one is unmistakably SMTP.
    stopped: bool,
}

/// The current mail transaction.
#[derive(Debug, Default)]
struct Transaction {
    /// MAIL was accepted (or its reply not seen).
    open: bool,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    /// RCPT commands answered in it, accepted or not.
    rcpt_named: u64,
    /// Heap bytes of `rcpt_to`, for the budget's charge.
    rcpt_bytes: usize,
}

impl Transaction {
    fn envelope(&self) -> Envelope {
        Envelope {
            mail_from: self.mail_from.clone(),
            rcpt_to: (self.open || !self.rcpt_to.is_empty()).then(|| self.rcpt_to.clone()),
            number: None,
            uidl: None,
        }
    }
}

/// Facts about a line's bytes worth an anomaly.
#[derive(Debug, Default, Clone, Copy)]
struct LineFacts {
    /// Control bytes other than tab and CR.
    binary: bool,
    nul: bool,
    bare_cr: bool,
}

fn line_facts(bytes: &[u8]) -> LineFacts {
    let mut f = LineFacts::default();
    for &b in bytes {
        match b {
            0 => {
                f.nul = true;
                f.binary = true;
            }
            b'\r' => f.bare_cr = true,
            b'\t' => {}
            0x01..=0x1f | 0x7f => f.binary = true,
            _ => {}
        }
    }
    f
}

fn is_positive(code: Option<u16>) -> bool {
    code.is_some_and(|c| (200..300).contains(&c))
}

fn is_rejection(code: Option<u16>) -> bool {
    code.is_some_and(|c| c >= 400)
}

/// Whether `code` could answer `step`: used only where alignment is in doubt.
fn plausible(step: &Step, code: u16) -> bool {
    let class = code / 100;
    if class == 4 || class == 5 {
        return true;
    }
    let distinctive = matches!(code, 220 | 221 | 235 | 334 | 354);
    match step {
        Step::Data => class == 3,
        Step::Auth => class == 3 || class == 2,
        Step::Starttls => code == 220,
        Step::Quit => code == 221,
        _ => class == 2 && !distinctive,
    }
}

/// How replies and commands slipped out of step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slip {
    /// The reply answers a command not in the queue: drop the reply.
    ExtraReply,
    /// The front command's reply is missing: close it without one.
    ReplyLost,
}

/// Codes that cannot answer `step` whatever the server, showing a slip even where alignment
/// seemed sure (e.g. a multi-line reply whose last line never came swallowed the next reply).
fn sequence_slip(step: &Step, code: u16) -> Option<Slip> {
    match (step, code) {
        (Step::Data, 354) | (Step::Auth, 334 | 235) => None,
        (_, 354 | 334 | 235) => Some(Slip::ReplyLost),
        (Step::Data, 200..=299) => Some(Slip::ExtraReply),
        _ => None,
    }
}

/// What a reply to `step` says about the client's next bytes.
fn resolution_for(step: &Step, code: u16) -> Resolution {
    match step {
        Step::Data if (300..400).contains(&code) => Resolution::Body,
        Step::Auth if (300..400).contains(&code) => Resolution::Sasl,
        Step::Starttls if code == 220 => Resolution::Tls,
        _ => Resolution::Commands,
    }
}

/// Everything but the line framers, so line handlers can borrow it while a framer lends a line.
#[derive(Debug)]
struct Core {
    max_line_len: usize,
    max_pending: usize,
    keep: KeepBounds,

    client: ClientMode,
    client_hold: Hold,
    client_started: bool,
    client_sanity: Sanity,
    /// The next queued client item follows a loss of alignment.
    next_uncertain: bool,
    /// The BDAT message being transferred, if any.
    bdat: Option<OpenMessage>,

    server: ServerMode,
    server_hold: Hold,
    /// Held bytes of both sides beyond [`FREE_HELD_BYTES`] reserved against the run's budget.
    hold_reserved: usize,
    /// The budget refused the held bytes: a paused side must move on as if over its bound.
    holds_over_budget: bool,
    server_started: bool,
    server_sanity: Sanity,
    reply: Option<ReplyBuilder>,
    next_after_gap: bool,
    replies_parsed: u64,
    /// The server stream was seen from its first byte (handshake seen, no gap yet).
    clean_start: bool,

    pending: VecDeque<Pending>,
    replies: VecDeque<HeldReply>,
    /// The run's budget's share for `pending` and `replies` past their free entries.
    pending_charge: Reservation,
    replies_charge: Reservation,
    /// The run's budget's share for the open transaction's recipients past the free part.
    rcpt_charge: Reservation,
    /// The run's budget's share for the transaction records of the summary.
    summary_charge: Reservation,
    /// Commands completed early (queue bound) whose replies are still to come.
    owed_replies: u64,
    /// Replies dropped early (queue bound) whose commands are still to come.
    owed_commands: u64,

    txn: Transaction,
    /// Index of the open transaction's record in the summary, while one is open and kept.
    txn_record: Option<usize>,
    /// Client bytes were lost (a gap, or a stream not seen from its start): a DATA outside
    /// a transaction may only look so.
    commands_lost: bool,
    auth: Option<SaslExchange>,
    tls: Option<TlsObserver>,
    /// What each side sent first after an accepted STARTTLS.
    upgrade: UpgradeCheck,
    /// The session's bounds and key log, for the dissector inside a decrypted TLS layer.
    limits: Limits,
    summary: SmtpSummary,
    ended: bool,
}

/// Dissects one SMTP session (plain text, possibly upgraded by STARTTLS).
#[derive(Debug)]
pub struct SmtpDissector {
    client_lines: LineFramer,
    server_lines: LineFramer,
    core: Core,
}

impl SmtpDissector {
    /// A dissector for a new session, bounded by `limits`.
    pub fn new(limits: &Limits) -> Self {
        SmtpDissector {
            client_lines: LineFramer::new(limits.max_line_len)
                .with_budget(limits.work_budget.clone()),
            server_lines: LineFramer::new(limits.max_line_len)
                .with_budget(limits.work_budget.clone()),
            core: Core {
                max_line_len: limits.max_line_len.max(1),
                max_pending: limits.max_pending_commands.max(1),
                keep: KeepBounds::from_limits(limits),
                client: ClientMode::Commands,
                client_hold: Hold::default(),
                client_started: false,
                client_sanity: Sanity::default(),
                next_uncertain: false,
                bdat: None,
                server: ServerMode::Replies,
                server_hold: Hold::default(),
                hold_reserved: 0,
                holds_over_budget: false,
                server_started: false,
                server_sanity: Sanity::default(),
                reply: None,
                next_after_gap: false,
                replies_parsed: 0,
                clean_start: false,
                pending: VecDeque::new(),
                replies: VecDeque::new(),
                pending_charge: Reservation::new(limits.work_budget.clone()),
                replies_charge: Reservation::new(limits.work_budget.clone()),
                rcpt_charge: Reservation::new(limits.work_budget.clone()),
                summary_charge: Reservation::new(limits.work_budget.clone()),
                owed_replies: 0,
                owed_commands: 0,
                txn: Transaction::default(),
                txn_record: None,
                commands_lost: false,
                auth: None,
                tls: None,
                upgrade: UpgradeCheck::default(),
                limits: limits.clone(),
                summary: SmtpSummary::default(),
                ended: false,
            },
        }
    }

    /// A dissector for the plaintext of a decrypted TLS layer; `after_upgrade` when TLS
    /// followed STARTTLS, so the greeting came before and the client speaks first.
    pub fn inside_tls(limits: &Limits, after_upgrade: bool) -> Self {
        let mut d = SmtpDissector::new(limits);
        if after_upgrade {
            let core = &mut d.core;
            core.client_started = true;
            core.server_started = true;
            core.clean_start = false;
            // The greeting was the first reply, before TLS: none of these replies is one.
            core.replies_parsed = 1;
        }
        d
    }

    /// The summary as built so far (it is copied into the record at the end).
    pub fn summary(&self) -> &SmtpSummary {
        &self.core.summary
    }

    /// Queued commands, queued replies and held bytes, for tests of the bounds.
    #[cfg(test)]
    pub(crate) fn queue_sizes(&self) -> (usize, usize, usize) {
        let core = &self.core;
        (
            core.pending.len(),
            core.replies.len(),
            core.client_hold.bytes + core.server_hold.bytes,
        )
    }

    /// Parses client bytes until they run out or the client must wait for a reply;
    /// returns how many were consumed.
    fn feed_client(&mut self, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) -> usize {
        let mut input = data;
        while !input.is_empty() {
            let core = &mut self.core;
            let keep = &core.keep;
            match &mut core.client {
                ClientMode::Paused => break,
                ClientMode::Stopped => input = &[],
                ClientMode::Tls => {
                    if core.clear_after_starttls(Direction::Client, input, ts, rec) {
                        core.client = ClientMode::Commands;
                        continue;
                    }
                    core.tls_data(Direction::Client, input, ts, rec);
                    input = &[];
                }
                ClientMode::Body(body) => {
                    let DataBody {
                        unstuffer, message, ..
                    } = &mut **body;
                    match unstuffer.feed(input, &mut |s| message.push(s, ts, keep)) {
                        Some(end) => {
                            input = input.get(end.consumed..).unwrap_or_default();
                            core.end_body(end.canonical, ts, rec);
                        }
                        None => input = &[],
                    }
                }
                ClientMode::Chunk { remaining, last } => {
                    let n = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                    *remaining -= n as u64;
                    let (done, last) = (*remaining == 0, *last);
                    let (chunk, rest) = input.split_at(n);
                    core.bdat
                        .get_or_insert_with(|| OpenMessage::new(MessageSource::Bdat))
                        .push(chunk, ts, keep);
                    input = rest;
                    if done {
                        core.chunk_done(last, ts, rec);
                    }
                }
                ClientMode::Commands
                | ClientMode::Resync
                | ClientMode::SaslLine
                | ClientMode::BodyAfterGap(_) => {
                    if core.upgrade.clear(Direction::Client)
                        && matches!(core.client, ClientMode::Commands)
                        && self.client_lines.is_empty()
                        && input.first() == Some(&HANDSHAKE_RECORD)
                    {
                        // Commands injected before the handshake, then TLS after all.
                        core.client = ClientMode::Tls;
                        continue;
                    }
                    let Some(line) = self.client_lines.next_line(&mut input) else {
                        break;
                    };
                    self.core.client_line(line, ts, rec);
                }
            }
        }
        data.len() - input.len()
    }

    /// Parses server bytes until they run out or the server must wait; returns bytes consumed.
    fn feed_server(&mut self, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) -> usize {
        let mut input = data;
        while !input.is_empty() {
            match self.core.server {
                ServerMode::Paused => break,
                ServerMode::Tls => {
                    if self
                        .core
                        .clear_after_starttls(Direction::Server, input, ts, rec)
                    {
                        self.core.server = ServerMode::Replies;
                        continue;
                    }
                    self.core.tls_data(Direction::Server, input, ts, rec);
                    input = &[];
                }
                ServerMode::Replies | ServerMode::Resync => {
                    if self.core.upgrade.clear(Direction::Server)
                        && self.core.server == ServerMode::Replies
                        && self.server_lines.is_empty()
                        && input
                            .first()
                            .is_some_and(|b| [HANDSHAKE_RECORD, ALERT_RECORD].contains(b))
                    {
                        self.core.server = ServerMode::Tls;
                        continue;
                    }
                    let Some(line) = self.server_lines.next_line(&mut input) else {
                        break;
                    };
                    self.core.server_line(line, ts, rec);
                }
            }
        }
        data.len() - input.len()
    }

    /// Feeds held client bytes while the client is not waiting; true if any were fed.
    fn replay_client(&mut self, rec: &mut SessionRecord) -> bool {
        let mut fed = false;
        while !matches!(self.core.client, ClientMode::Paused) {
            let Some(chunk) = self.core.client_hold.pop_front() else {
                break;
            };
            fed = true;
            match chunk {
                HeldChunk::Data { ts, bytes, start } => {
                    let rest = bytes.get(start..).unwrap_or_default();
                    let n = self.feed_client(rest, ts, rec);
                    self.core.client_hold.push_front_rest(ts, bytes, start + n);
                }
                HeldChunk::Gap { ts, len } => self.apply_client_gap(len, ts, rec),
            }
        }
        fed
    }

    /// Feeds held server bytes while the server is not waiting; true if any were fed.
    fn replay_server(&mut self, rec: &mut SessionRecord) -> bool {
        let mut fed = false;
        while self.core.server != ServerMode::Paused {
            let Some(chunk) = self.core.server_hold.pop_front() else {
                break;
            };
            fed = true;
            match chunk {
                HeldChunk::Data { ts, bytes, start } => {
                    let rest = bytes.get(start..).unwrap_or_default();
                    let n = self.feed_server(rest, ts, rec);
                    self.core.server_hold.push_front_rest(ts, bytes, start + n);
                }
                HeldChunk::Gap { ts, len } => self.apply_server_gap(len, ts, rec),
            }
        }
        fed
    }

    /// Runs held bytes and reply matching until nothing more can move.
    fn pump(&mut self, rec: &mut SessionRecord) {
        loop {
            self.core.account_holds();
            if self.replay_client(rec) || self.replay_server(rec) {
                continue;
            }
            if self.core.match_next(rec)
                || self.core.resolve_stuck_pause(false, rec)
                || self.core.resolve_server_overflow(rec)
            {
                continue;
            }
            break;
        }
    }

    /// At the end: parses an unterminated last client line, if one is waiting.
    fn flush_client_line(&mut self, ts: Timestamp, rec: &mut SessionRecord) -> bool {
        let line_mode = matches!(
            self.core.client,
            ClientMode::Commands
                | ClientMode::Resync
                | ClientMode::SaslLine
                | ClientMode::BodyAfterGap(_)
        );
        if !line_mode || !self.core.client_hold.is_empty() {
            return false;
        }
        let Some(line) = self.client_lines.flush() else {
            return false;
        };
        self.core.client_line(line, ts, rec);
        self.client_lines.clear();
        true
    }

    /// At the end: parses an unterminated last server line, if one is waiting.
    fn flush_server_line(&mut self, ts: Timestamp, rec: &mut SessionRecord) -> bool {
        let line_mode = matches!(self.core.server, ServerMode::Replies | ServerMode::Resync);
        if !line_mode || !self.core.server_hold.is_empty() {
            return false;
        }
        let Some(line) = self.server_lines.flush() else {
            return false;
        };
        self.core.server_line(line, ts, rec);
        self.server_lines.clear();
        true
    }
}

impl Drop for SmtpDissector {
    fn drop(&mut self) {
        self.core.keep.budget.release(self.core.hold_reserved);
    }
}

impl Dissector for SmtpDissector {
    fn on_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) {
        if self.core.ended || data.is_empty() {
            return;
        }
        self.core.start(dir, rec);
        match dir {
            Direction::Client => {
                if self.core.client_hold.is_empty() {
                    let n = self.feed_client(data, ts, rec);
                    self.core
                        .client_hold
                        .push_data(ts, data.get(n..).unwrap_or_default());
                } else {
                    self.core.client_hold.push_data(ts, data);
                }
            }
            Direction::Server => {
                if self.core.server_hold.is_empty() {
                    let n = self.feed_server(data, ts, rec);
                    self.core
                        .server_hold
                        .push_data(ts, data.get(n..).unwrap_or_default());
                } else {
                    self.core.server_hold.push_data(ts, data);
                }
            }
        }
        self.pump(rec);
        self.core.settle_queues();
    }

    fn on_gap(&mut self, dir: Direction, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        if self.core.ended {
            return;
        }
        self.core.start(dir, rec);
        match dir {
            Direction::Client => self.gap_client(len, ts, rec),
            Direction::Server => self.gap_server(len, ts, rec),
        }
        self.pump(rec);
        self.core.settle_queues();
    }

    fn on_end(&mut self, ts: Timestamp, rec: &mut SessionRecord) {
        if self.core.ended {
            return;
        }
        loop {
            self.pump(rec);
            if self.flush_client_line(ts, rec) || self.flush_server_line(ts, rec) {
                continue;
            }
            let core = &mut self.core;
            if core.finish_open_reply(rec)
                || core.resolve_stuck_pause(true, rec)
                || core.settle_greeting_at_end(rec)
                || core.release_stuck_server()
            {
                continue;
            }
            break;
        }
        self.core.finish(ts, rec);
    }
}

impl Core {
    /// Gives back the budget's share for queue entries that have been answered.
    fn settle_queues(&mut self) {
        self.pending_charge.settle(&mut self.pending, |p| {
            p.step.heap_bytes() + p.abandoned.as_ref().map_or(0, |_| ENDED_MESSAGE_BYTES)
        });
        self.replies_charge
            .settle(&mut self.replies, HeldReply::heap_bytes);
        let need = self.txn.rcpt_bytes.saturating_sub(FREE_RECIPIENT_BYTES);
        if need < self.rcpt_charge.reserved() {
            self.rcpt_charge.set(need);
        }
    }

    /// Whether the open transaction may keep a recipient of `cost` heap bytes: past the free
    /// part, the run's budget must hold it.
    fn may_keep_recipient(&mut self, cost: usize) -> bool {
        let need = (self.txn.rcpt_bytes + cost).saturating_sub(FREE_RECIPIENT_BYTES);
        self.txn.rcpt_to.len() < MAX_RECIPIENTS
            && (need <= self.rcpt_charge.reserved() || self.rcpt_charge.set(need))
    }

    /// Keeps the reservation for held bytes in step with what both sides hold.
    fn account_holds(&mut self) {
        let need =
            (self.client_hold.bytes + self.server_hold.bytes).saturating_sub(FREE_HELD_BYTES);
        if need > self.hold_reserved {
            self.holds_over_budget = !self.keep.budget.try_reserve(need - self.hold_reserved);
            if !self.holds_over_budget {
                self.hold_reserved = need;
            }
        } else {
            self.keep.budget.release(self.hold_reserved - need);
            self.hold_reserved = need;
            self.holds_over_budget = false;
        }
    }

    /// Sets a direction up on its first bytes: a stream not seen from its start re-synchronises.
    fn start(&mut self, dir: Direction, rec: &SessionRecord) {
        match dir {
            Direction::Client if !self.client_started => {
                self.client_started = true;
                if !rec.handshake_seen {
                    self.client = ClientMode::Resync;
                    self.next_uncertain = true;
                    self.commands_lost = true;
                }
            }
            Direction::Server if !self.server_started => {
                self.server_started = true;
                self.clean_start = rec.handshake_seen;
                if !rec.handshake_seen {
                    self.server = ServerMode::Resync;
                    self.next_after_gap = true;
                }
            }
            _ => {}
        }
    }

    /// Starts the TLS layer after STARTTLS (once, whichever side shows it first); with a key
    /// log, what it decrypts goes to a dissector of its own, which expects no new greeting.
    fn start_tls(&mut self, dir: Direction, ts: Timestamp, rec: &mut SessionRecord) {
        if self.tls.is_some() {
            return;
        }
        let mut observer = TlsObserver::start(TlsMode::Starttls, dir, ts, rec);
        if let Some(keys) = self.limits.keys.clone() {
            let inner = crate::proto::inner_dissector(Protocol::Smtp, true, &self.limits);
            observer = observer.decrypting(keys, inner);
        }
        self.tls = Some(observer);
    }

    /// Whether `dir`'s first bytes after an accepted STARTTLS are clear text (then read as
    /// SMTP again).
    fn clear_after_starttls(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> bool {
        let detail = match dir {
            Direction::Client => {
                "client bytes after STARTTLS are not TLS (a stripped or broken TLS layer, or \
                 commands injected before the handshake, CVE-2011-0411 style); read as clear text"
            }
            Direction::Server => {
                "server bytes after the STARTTLS 220 reply are not TLS; read as clear text"
            }
        };
        self.upgrade
            .goes_clear(dir, data, ts, rec, ("starttls_plaintext", detail))
    }

    fn tls_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) {
        if let Some(tls) = self.tls.as_mut() {
            tls.on_data(dir, data, ts, rec);
        }
    }

    /// Reports what is irregular about a line; returns its facts.
    fn report_line(
        &self,
        line: &Line<'_>,
        dir: Direction,
        ts: Timestamp,
        rec: &mut SessionRecord,
        rfc_limit: bool,
    ) -> LineFacts {
        if line.overlong() {
            rec.anomaly(
                ts,
                Some(dir),
                "line_truncated",
                format!(
                    "line of {} bytes cut to the {}-byte line limit",
                    line.wire_len(),
                    self.max_line_len
                ),
            );
        }
        if rfc_limit && line.bytes.len() as u64 + line.discarded > RFC_LINE_LIMIT {
            rec.anomaly(
                ts,
                Some(dir),
                "line_too_long",
                "line longer than the 998 characters RFC 5321 allows",
            );
        }
        match line.ending {
            LineEnding::CrLf => {}
            LineEnding::Lf => rec.anomaly(ts, Some(dir), "bare_lf", "line ended by LF without CR"),
            LineEnding::None => rec.anomaly(
                ts,
                Some(dir),
                "unterminated_line",
                "line without CRLF at a gap or at the end of the stream",
            ),
        }
        let facts = line_facts(line.bytes);
        if facts.nul {
            rec.anomaly(ts, Some(dir), "nul_byte", "NUL byte in a line");
        }
        if facts.bare_cr {
            rec.anomaly(ts, Some(dir), "bare_cr", "CR without LF inside a line");
        }
        facts
    }

    /// Counts a junk line of `len` bytes on the wire; returns true if the side now stops.
    fn junk_line(
        &mut self,
        dir: Direction,
        binary: bool,
        len: u64,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> bool {
        if binary {
            rec.anomaly(
                ts,
                Some(dir),
                "control_bytes",
                "control bytes in a line where SMTP text was expected",
            );
        }
        let sanity = match dir {
            Direction::Client => &mut self.client_sanity,
            Direction::Server => &mut self.server_sanity,
        };
        sanity.junk_score = sanity.junk_score.saturating_add(if binary { 4 } else { 1 });
        sanity.junk_bytes = sanity.junk_bytes.saturating_add(len);
        sanity.first_junk.get_or_insert(ts);
        if sanity.junk_score < NOT_SMTP_SCORE && sanity.junk_bytes < NOT_SMTP_BYTES {
            return false;
        }
        sanity.stopped = true;
        self.summary.not_smtp = true;
        rec.anomaly(
            ts,
            Some(dir),
            "not_smtp",
            "junk went on too long with no SMTP line in between; lines are skipped until one is unmistakably SMTP",
        );
        // Not the end: a side skips lines (cheaply) until one is a strict command or a
        // reply, so no amount of junk before real commands can hide them.
        match dir {
            Direction::Client => self.client = ClientMode::Resync,
            Direction::Server => self.server = ServerMode::Resync,
        }
        true
    }

    /// Whether `dir` is skipping lines after its junk reached the bound.
    fn skipping_junk(&self, dir: Direction) -> bool {
        match dir {
            Direction::Client => self.client_sanity.stopped,
            Direction::Server => self.server_sanity.stopped,
        }
    }

    /// A side that was skipping junk sent an SMTP line again: it is dissected from here on.
    fn resume_after_junk(&mut self, dir: Direction, ts: Timestamp, rec: &mut SessionRecord) {
        let sanity = match dir {
            Direction::Client => &mut self.client_sanity,
            Direction::Server => &mut self.server_sanity,
        };
        if !std::mem::take(&mut sanity.stopped) {
            return;
        }
        rec.anomaly(
            ts,
            Some(dir),
            "smtp_after_junk",
            "SMTP resumed after a long run of junk lines",
        );
        self.summary.not_smtp = self.client_sanity.stopped || self.server_sanity.stopped;
    }

    fn valid_line(&mut self, dir: Direction) {
        let sanity = match dir {
            Direction::Client => &mut self.client_sanity,
            Direction::Server => &mut self.server_sanity,
        };
        sanity.junk_score = 0;
        sanity.junk_bytes = 0;
        sanity.valid_seen = true;
    }

    /// At the end: a side that sent junk and never one valid line is not SMTP.
    fn not_smtp_verdict(&mut self, rec: &mut SessionRecord) {
        for dir in [Direction::Client, Direction::Server] {
            let sanity = match dir {
                Direction::Client => &self.client_sanity,
                Direction::Server => &self.server_sanity,
            };
            if let Some(ts) = sanity
                .first_junk
                .filter(|_| !sanity.valid_seen && !sanity.stopped)
            {
                self.summary.not_smtp = true;
                rec.anomaly(
                    ts,
                    Some(dir),
                    "not_smtp",
                    "not one line of this side was SMTP",
                );
            }
        }
    }

    fn push_pending(
        &mut self,
        step: Step,
        ts: Timestamp,
        pauses_client: bool,
        abandoned: Option<Box<EndedMessage>>,
        rec: &mut SessionRecord,
    ) {
        let reply_lost = self.owed_commands > 0;
        if reply_lost {
            self.owed_commands -= 1;
        }
        // Past the per-session bound, or when the run's budget cannot hold one more, the
        // oldest command gives way: a flood of pipelined commands costs its own session only.
        let text = step.heap_bytes() + abandoned.as_ref().map_or(0, |_| ENDED_MESSAGE_BYTES);
        let full = self.pending.len() >= self.max_pending
            || !self.pending_charge.admit(&self.pending, text);
        if full && let Some(oldest) = self.pending.pop_front() {
            rec.anomaly(
                ts,
                None,
                "pending_commands_limit",
                "too many commands without replies; the oldest was closed without one",
            );
            if !oldest.reply_lost {
                self.owed_replies += 1;
            }
            self.complete(oldest, None, rec);
        }
        self.pending.push_back(Pending {
            ts,
            step,
            pauses_client,
            assumed: None,
            uncertain: std::mem::take(&mut self.next_uncertain),
            reply_lost,
            abandoned,
        });
        if pauses_client {
            self.client = ClientMode::Paused;
        }
    }
}
