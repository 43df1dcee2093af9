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
//! A side whose lines stop looking like SMTP ([`NOT_SMTP_LINES`] unparseable lines in a row,
//! or control bytes before its first valid line) is declared `not_smtp` and only counted from
//! then on. Each side decides alone, from its own bytes, so this too keeps the contract.

use super::SmtpSummary;
use super::body::DotUnstuffer;
use super::command::{
    BodyType, PathArg, Verb, VerbShape, is_strict_command, parse_auth_arg, parse_bdat_arg,
    parse_mail_arg, parse_rcpt_arg, split_command,
};
use super::reply::{Capabilities, parse_capabilities, parse_enhanced, parse_reply_line};
use crate::limits::Limits;
use crate::mail::{Envelope, KeepBounds, MessageCollector};
use crate::proto::Dissector;
use crate::proto::line::{Line, LineEnding, LineFramer};
use crate::proto::sasl::{GuessedLine, SaslExchange};
use crate::proto::tls::TlsObserver;
use crate::session::{
    Direction, EventKind, MessageAdmission, MessageReply, MessageSource, PerDirection,
    SessionRecord, TlsMode,
};
use crate::time::Timestamp;
use std::borrow::Cow;
use std::collections::VecDeque;

/// Client bytes held while waiting for a reply; beyond this the likely reading is assumed.
pub const PAUSED_BYTES_CAP: usize = 1 << 20;

/// Held bytes a session keeps without asking the run's budget.
const FREE_HELD_BYTES: usize = 16 << 10;
/// Consecutive unparseable lines after which a direction is declared not SMTP.
pub const NOT_SMTP_LINES: u32 = 12;
/// Lines kept per reply event; more are counted.
pub const MAX_REPLY_LINES: usize = 256;
/// Recipients kept per transaction envelope.
pub const MAX_RECIPIENTS: usize = 10_000;
/// Credentials recorded per session (AUTH attempts); later ones are counted in an anomaly.
pub const MAX_CREDENTIALS: usize = 10_000;
/// Longest content of a line RFC 5321 allows (1000 octets with CRLF).
const RFC_LINE_LIMIT: u64 = 998;

/// One piece of a held stream: bytes with their capture time, or a gap.
#[derive(Debug)]
enum HeldChunk {
    Data {
        ts: Timestamp,
        bytes: Vec<u8>,
        /// Bytes before this offset were already consumed.
        start: usize,
    },
    Gap {
        ts: Timestamp,
        len: u64,
    },
}

/// Bytes of one direction waiting for the other side to say how to read them.
#[derive(Debug, Default)]
struct Hold {
    chunks: VecDeque<HeldChunk>,
    bytes: usize,
}

impl Hold {
    fn push_data(&mut self, ts: Timestamp, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.bytes += data.len();
        self.chunks.push_back(HeldChunk::Data {
            ts,
            bytes: data.to_vec(),
            start: 0,
        });
    }

    fn push_gap(&mut self, ts: Timestamp, len: u64) {
        self.chunks.push_back(HeldChunk::Gap { ts, len });
    }

    fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    fn pop_front(&mut self) -> Option<HeldChunk> {
        let chunk = self.chunks.pop_front();
        if let Some(HeldChunk::Data { bytes, start, .. }) = &chunk {
            self.bytes = self
                .bytes
                .saturating_sub(bytes.len().saturating_sub(*start));
        }
        chunk
    }

    /// Puts back the unconsumed rest of a chunk taken with `pop_front`.
    fn push_front_rest(&mut self, ts: Timestamp, bytes: Vec<u8>, start: usize) {
        if start >= bytes.len() {
            return;
        }
        self.bytes += bytes.len() - start;
        self.chunks.push_front(HeldChunk::Data { ts, bytes, start });
    }

    fn first_byte(&self) -> Option<u8> {
        match self.chunks.front()? {
            HeldChunk::Data { bytes, start, .. } => bytes.get(*start).copied(),
            HeldChunk::Gap { .. } => None,
        }
    }

    /// The first held line without its terminator (at most `max` bytes, stopping at a gap).
    fn first_line(&self, max: usize) -> Vec<u8> {
        let mut line = Vec::new();
        for chunk in &self.chunks {
            let HeldChunk::Data { bytes, start, .. } = chunk else {
                break;
            };
            let data = bytes.get(*start..).unwrap_or_default();
            let (part, done) = match memchr::memchr(b'\n', data) {
                Some(i) => (&data[..i], true),
                None => (data, false),
            };
            let room = max.saturating_sub(line.len());
            line.extend_from_slice(&part[..part.len().min(room)]);
            if done || line.len() >= max {
                break;
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        line
    }
}

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
}

impl DataBody {
    fn new() -> Self {
        DataBody {
            unstuffer: DotUnstuffer::new(),
            message: OpenMessage::new(MessageSource::Data),
            skipped: 0,
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
    /// Declared not SMTP: only counted.
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
    /// Declared not SMTP: only counted.
    Stopped,
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

/// Not-SMTP detection for one direction.
#[derive(Debug, Default)]
struct Sanity {
    junk_run: u32,
    valid_seen: bool,
}

/// The current mail transaction.
#[derive(Debug, Default)]
struct Transaction {
    /// MAIL was accepted (or its reply not seen).
    open: bool,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
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

/// First byte of a TLS record (change_cipher_spec, alert, handshake, application data) or of
/// an SSLv2-style hello.
fn looks_like_tls(b: u8) -> bool {
    (0x14..=0x17).contains(&b) || b >= 0x80
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
    /// Commands completed early (queue bound) whose replies are still to come.
    owed_replies: u64,
    /// Replies dropped early (queue bound) whose commands are still to come.
    owed_commands: u64,

    txn: Transaction,
    auth: Option<SaslExchange>,
    tls: Option<TlsObserver>,
    tls_checked: PerDirection<bool>,
    summary: SmtpSummary,
    /// Messages whose end has been read, in client order (which is also record order).
    messages_ended: usize,
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
            client_lines: LineFramer::new(limits.max_line_len).with_budget(limits.budget.clone()),
            server_lines: LineFramer::new(limits.max_line_len).with_budget(limits.budget.clone()),
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
                owed_replies: 0,
                owed_commands: 0,
                txn: Transaction::default(),
                auth: None,
                tls: None,
                tls_checked: PerDirection::default(),
                summary: SmtpSummary::default(),
                messages_ended: 0,
                ended: false,
            },
        }
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
                    let Some(line) = self.client_lines.next_line(&mut input) else {
                        break;
                    };
                    self.core.client_line(line, ts, rec);
                    if matches!(self.core.client, ClientMode::Stopped) {
                        self.client_lines.clear();
                    }
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
                ServerMode::Stopped => input = &[],
                ServerMode::Tls => {
                    self.core.tls_data(Direction::Server, input, ts, rec);
                    input = &[];
                }
                ServerMode::Replies | ServerMode::Resync => {
                    let Some(line) = self.server_lines.next_line(&mut input) else {
                        break;
                    };
                    self.core.server_line(line, ts, rec);
                    if self.core.server == ServerMode::Stopped {
                        self.server_lines.clear();
                    }
                }
            }
        }
        data.len() - input.len()
    }

    /// A gap in the client stream, in order: held bytes ahead of it go first.
    fn gap_client(&mut self, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        let core = &mut self.core;
        if matches!(core.client, ClientMode::Paused) || !core.client_hold.is_empty() {
            core.client_hold.push_gap(ts, len);
            return;
        }
        self.apply_client_gap(len, ts, rec);
    }

    fn apply_client_gap(&mut self, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        let core = &mut self.core;
        if !matches!(core.client, ClientMode::Tls) {
            rec.push_event(ts, Direction::Client, EventKind::Gap { bytes: len });
        }
        if !self.client_lines.is_empty() {
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "line_cut_by_gap",
                "a partial line before a gap was dropped",
            );
        }
        self.client_lines.clear();
        let mode = std::mem::replace(&mut core.client, ClientMode::Commands);
        core.client = match mode {
            ClientMode::Tls => {
                core.tls_checked.client = true;
                if let Some(tls) = core.tls.as_mut() {
                    tls.on_gap(Direction::Client, len, ts, rec);
                }
                ClientMode::Tls
            }
            ClientMode::Stopped => ClientMode::Stopped,
            ClientMode::Paused => ClientMode::Paused,
            ClientMode::Commands | ClientMode::Resync => {
                core.next_uncertain = true;
                ClientMode::Resync
            }
            ClientMode::SaslLine => {
                // The lost line was a SASL response: its reply still comes.
                core.push_pending(Step::Auth, ts, false, None, rec);
                core.next_uncertain = true;
                ClientMode::Resync
            }
            ClientMode::Body(mut body) | ClientMode::BodyAfterGap(mut body) => {
                // The message goes on after the gap: its MIME walk resumes at the next boundary.
                body.message.gap(len, ts, &core.keep);
                ClientMode::BodyAfterGap(body)
            }
            ClientMode::Chunk { remaining, last } => {
                core.bdat
                    .get_or_insert_with(|| OpenMessage::new(MessageSource::Bdat))
                    .gap(len.min(remaining), ts, &core.keep);
                if len < remaining {
                    ClientMode::Chunk {
                        remaining: remaining - len,
                        last,
                    }
                } else {
                    // The chunk ended inside the gap; whatever followed it is lost too.
                    core.chunk_done(last, ts, rec);
                    if len > remaining {
                        core.next_uncertain = true;
                        ClientMode::Resync
                    } else {
                        ClientMode::Commands
                    }
                }
            }
        };
    }

    /// A gap in the server stream, in order: held bytes ahead of it go first.
    fn gap_server(&mut self, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        let core = &mut self.core;
        if core.server == ServerMode::Paused || !core.server_hold.is_empty() {
            core.server_hold.push_gap(ts, len);
            return;
        }
        self.apply_server_gap(len, ts, rec);
    }

    fn apply_server_gap(&mut self, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        let core = &mut self.core;
        match core.server {
            ServerMode::Tls => {
                core.tls_checked.server = true;
                if let Some(tls) = core.tls.as_mut() {
                    tls.on_gap(Direction::Server, len, ts, rec);
                }
            }
            ServerMode::Stopped => {
                rec.push_event(ts, Direction::Server, EventKind::Gap { bytes: len });
            }
            ServerMode::Replies | ServerMode::Resync | ServerMode::Paused => {
                rec.push_event(ts, Direction::Server, EventKind::Gap { bytes: len });
                if !self.server_lines.is_empty() {
                    rec.anomaly(
                        ts,
                        Some(Direction::Server),
                        "line_cut_by_gap",
                        "a partial line before a gap was dropped",
                    );
                }
                self.server_lines.clear();
                if let Some(b) = core.reply.as_mut() {
                    b.cut_by_gap = true;
                }
                core.server = ServerMode::Resync;
                core.next_after_gap = true;
                if core.replies_parsed == 0 {
                    core.clean_start = false;
                }
            }
        }
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

    fn tls_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) {
        let checked = self.tls_checked.get_mut(dir);
        if !*checked {
            *checked = true;
            if data.first().is_some_and(|&b| !looks_like_tls(b)) {
                let detail = match dir {
                    Direction::Client => {
                        "client bytes after STARTTLS are not TLS: commands sent before the \
                         handshake may be injected (CVE-2011-0411 style)"
                    }
                    Direction::Server => "server bytes after the STARTTLS 220 reply are not TLS",
                };
                rec.anomaly(ts, Some(dir), "starttls_plaintext", detail);
            }
        }
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

    /// Counts an unparseable line; returns true if the direction is now declared not SMTP.
    fn junk_line(
        &mut self,
        dir: Direction,
        binary: bool,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> bool {
        let sanity = match dir {
            Direction::Client => &mut self.client_sanity,
            Direction::Server => &mut self.server_sanity,
        };
        sanity.junk_run += 1;
        if (binary && !sanity.valid_seen) || sanity.junk_run >= NOT_SMTP_LINES {
            self.summary.not_smtp = true;
            let detail = if binary {
                "binary bytes where SMTP text was expected; the rest of this side is only counted"
            } else {
                "too many lines that are not SMTP; the rest of this side is only counted"
            };
            rec.anomaly(ts, Some(dir), "not_smtp", detail);
            match dir {
                Direction::Client => self.client = ClientMode::Stopped,
                Direction::Server => self.server = ServerMode::Stopped,
            }
            return true;
        }
        false
    }

    fn valid_line(&mut self, dir: Direction) {
        let sanity = match dir {
            Direction::Client => &mut self.client_sanity,
            Direction::Server => &mut self.server_sanity,
        };
        sanity.junk_run = 0;
        sanity.valid_seen = true;
    }

    fn client_line(&mut self, line: Line<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        match self.client {
            ClientMode::SaslLine => self.sasl_line(line, ts, rec),
            ClientMode::Resync => self.resync_line(line, ts, rec),
            ClientMode::BodyAfterGap(_) => self.skip_body_line(line, ts, rec),
            _ => self.command_line(line, ts, rec),
        }
    }

    fn command_line(&mut self, line: Line<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        const C: Option<Direction> = Some(Direction::Client);
        let facts = self.report_line(&line, Direction::Client, ts, rec, true);
        let text = line.text();
        if matches!(text, Cow::Owned(_)) {
            rec.anomaly(ts, C, "invalid_utf8", "command line is not valid UTF-8");
        }
        let cmd = split_command(&text);
        let junk = facts.binary || cmd.is_none_or(|c| c.shape != VerbShape::Word);
        if junk {
            if self.junk_line(Direction::Client, facts.binary, ts, rec) {
                return;
            }
        } else {
            self.valid_line(Direction::Client);
        }
        let Some(cmd) = cmd else {
            rec.anomaly(
                ts,
                C,
                "empty_command_line",
                "empty line where a command was expected",
            );
            // Servers answer an empty line with a syntax error: it still takes a reply.
            self.push_pending(Step::Other, ts, false, None, rec);
            return;
        };
        match cmd.shape {
            VerbShape::Word => {}
            VerbShape::NonAscii => rec.anomaly(
                ts,
                C,
                "non_ascii_command",
                "command verb with non-ASCII characters",
            ),
            VerbShape::Malformed => rec.anomaly(
                ts,
                C,
                "malformed_command",
                "line does not start with a command verb",
            ),
        }
        rec.push_event(
            ts,
            Direction::Client,
            EventKind::Command {
                verb: cmd.token.to_ascii_uppercase(),
                arg: cmd.arg.map(str::to_string),
            },
        );
        self.summary.commands += 1;
        match cmd.verb {
            Verb::Helo | Verb::Ehlo => {
                let ehlo = cmd.verb == Verb::Ehlo;
                match cmd.arg.map(str::trim).filter(|n| !n.is_empty()) {
                    Some(name) => self.summary.helo = Some(name.to_string()),
                    None => rec.anomaly(ts, C, "helo_without_name", "HELO/EHLO without a domain"),
                }
                self.summary.helo_verb = Some(if ehlo { "EHLO" } else { "HELO" }.to_string());
                let abandoned = self.abandon_bdat(ts, rec);
                self.push_pending(Step::Helo { ehlo }, ts, false, abandoned, rec);
            }
            Verb::Mail => {
                let path = self.path_arg(cmd.arg, parse_mail_arg, ts, rec);
                let abandoned = self.abandon_bdat(ts, rec);
                self.push_pending(Step::Mail { path }, ts, false, abandoned, rec);
            }
            Verb::Rcpt => {
                let path = self.path_arg(cmd.arg, parse_rcpt_arg, ts, rec);
                self.push_pending(Step::Rcpt { path }, ts, false, None, rec);
            }
            Verb::Data => {
                if cmd.arg.is_some() {
                    rec.anomaly(ts, C, "data_with_argument", "DATA takes no argument");
                }
                let abandoned = self.abandon_bdat(ts, rec);
                self.push_pending(Step::Data, ts, true, abandoned, rec);
            }
            Verb::Bdat => match parse_bdat_arg(cmd.arg) {
                Ok(arg) => {
                    self.client = ClientMode::Chunk {
                        remaining: arg.size,
                        last: arg.last,
                    };
                    if arg.size == 0 {
                        self.chunk_done(arg.last, ts, rec);
                    }
                }
                Err(e) => {
                    // The server cannot know the chunk's length either: it rejects the command
                    // and reads on for commands, which is what we do too.
                    rec.anomaly(ts, C, "bdat_invalid", e.to_string());
                    if let Some(m) = self.bdat.as_mut() {
                        m.complete = false;
                    }
                    self.push_pending(Step::Bdat(None), ts, false, None, rec);
                    self.client = ClientMode::Resync;
                }
            },
            Verb::Rset => {
                let abandoned = self.abandon_bdat(ts, rec);
                self.push_pending(Step::Rset, ts, false, abandoned, rec);
            }
            Verb::Quit => {
                self.summary.quit = true;
                let abandoned = self.abandon_bdat(ts, rec);
                self.push_pending(Step::Quit, ts, false, abandoned, rec);
            }
            Verb::Starttls => {
                self.summary.starttls_attempted = true;
                let abandoned = self.abandon_bdat(ts, rec);
                self.push_pending(Step::Starttls, ts, true, abandoned, rec);
            }
            Verb::Auth => self.start_auth(cmd.arg, ts, rec),
            Verb::Vrfy | Verb::Expn | Verb::Help | Verb::Noop | Verb::Etrn => {
                self.push_pending(Step::Other, ts, false, None, rec);
            }
            Verb::Unknown => {
                self.summary.unknown_commands += 1;
                self.push_pending(Step::Other, ts, false, None, rec);
            }
        }
    }

    /// Parses a MAIL/RCPT argument, reporting leniencies; returns the path to record.
    fn path_arg(
        &mut self,
        arg: Option<&str>,
        parse: for<'a> fn(&'a str) -> Option<PathArg<'a>>,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> Option<String> {
        const C: Option<Direction> = Some(Direction::Client);
        let Some(p) = arg.and_then(parse) else {
            rec.anomaly(
                ts,
                C,
                "malformed_path_command",
                "MAIL/RCPT without a FROM:/TO: path",
            );
            return None;
        };
        let pr = p.problems;
        if pr.missing_colon {
            rec.anomaly(ts, C, "path_missing_colon", "no colon after FROM/TO");
        }
        if pr.space_after_colon {
            rec.anomaly(
                ts,
                C,
                "path_space_after_colon",
                "space between the colon and the path",
            );
        }
        if pr.missing_brackets {
            rec.anomaly(
                ts,
                C,
                "path_missing_brackets",
                "path not enclosed in angle brackets",
            );
        }
        if pr.unterminated {
            rec.anomaly(
                ts,
                C,
                "path_unterminated",
                "path with an unclosed bracket or quote",
            );
        }
        if pr.malformed_mailbox {
            rec.anomaly(
                ts,
                C,
                "malformed_address",
                "mailbox does not follow RFC 5321 syntax",
            );
        }
        if pr.bad_parameter {
            rec.anomaly(
                ts,
                C,
                "bad_esmtp_parameter",
                "malformed or unknown-valued ESMTP parameter",
            );
        }
        if p.path.source_route.is_some() {
            rec.anomaly(
                ts,
                C,
                "source_route",
                "obsolete source route in a path (ignored)",
            );
        }
        if !p.path.mailbox.is_ascii() && !p.smtputf8() {
            rec.anomaly(
                ts,
                C,
                "utf8_address_without_smtputf8",
                "non-ASCII address without the SMTPUTF8 parameter",
            );
        }
        if p.body() == Some(BodyType::BinaryMime) {
            self.summary.binarymime_used = true;
        }
        Some(p.path.mailbox.to_string())
    }

    fn start_auth(&mut self, arg: Option<&str>, ts: Timestamp, rec: &mut SessionRecord) {
        self.summary.auth_attempts += 1;
        if let Some(stale) = self.auth.take() {
            self.finish_auth(stale, None, rec);
        }
        let (mechanism, initial) = match parse_auth_arg(arg) {
            Some(a) => (a.mechanism, a.initial_response),
            None => {
                rec.anomaly(
                    ts,
                    Some(Direction::Client),
                    "auth_malformed",
                    "AUTH without a well-formed mechanism name",
                );
                (arg.and_then(|a| a.split(' ').next()).unwrap_or(""), None)
            }
        };
        self.auth = Some(SaslExchange::start(mechanism, initial, ts, rec.in_tls()));
        self.push_pending(Step::Auth, ts, true, None, rec);
    }

    fn sasl_line(&mut self, line: Line<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        self.report_line(&line, Direction::Client, ts, rec, false);
        let text = line.text();
        rec.push_event(
            ts,
            Direction::Client,
            EventKind::AuthData {
                raw: text.to_string(),
            },
        );
        if let Some(auth) = self.auth.as_mut() {
            auth.client_response(&text);
        }
        self.push_pending(Step::Auth, ts, true, None, rec);
    }

    fn resync_line(&mut self, line: Line<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        let strict = {
            let text = line.text();
            split_command(&text).is_some_and(|c| is_strict_command(&c))
        };
        if strict {
            self.client = ClientMode::Commands;
            self.command_line(line, ts, rec);
        } else if line.bytes == b"." && line.ending != LineEnding::None {
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "lost_data_end",
                "end of a message body whose start was not captured",
            );
            self.push_pending(Step::LostDataEnd, ts, false, None, rec);
        } else {
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "client_resync_skipped",
                "lines skipped while looking for a command after a gap or mid-stream start",
            );
        }
    }

    fn skip_body_line(&mut self, line: Line<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        let ClientMode::BodyAfterGap(body) = &mut self.client else {
            return;
        };
        if line.bytes != b"." || line.ending == LineEnding::None {
            // Line starts are known again, so dot-stuffing can be undone line by line.
            let content = line.bytes.strip_prefix(b".").unwrap_or(line.bytes);
            body.message.push(content, ts, &self.keep);
            let ending: &[u8] = match line.ending {
                LineEnding::CrLf => b"\r\n",
                LineEnding::Lf => b"\n",
                LineEnding::None => b"",
            };
            body.message.push(ending, ts, &self.keep);
            body.skipped += line.wire_len();
            return;
        }
        let ClientMode::BodyAfterGap(body) =
            std::mem::replace(&mut self.client, ClientMode::Commands)
        else {
            return;
        };
        rec.anomaly(
            ts,
            Some(Direction::Client),
            "data_after_gap",
            format!(
                "{} body bytes after a gap were read into the message, which is incomplete",
                body.skipped
            ),
        );
        let ended = self.close_message(body.message, ts, rec);
        self.push_pending(Step::DataEnd(Box::new(ended)), ts, false, None, rec);
    }

    /// The end-of-data line was read: the message waits for its reply in the queue.
    fn end_body(&mut self, canonical: bool, ts: Timestamp, rec: &mut SessionRecord) {
        let ClientMode::Body(body) = std::mem::replace(&mut self.client, ClientMode::Commands)
        else {
            return;
        };
        const C: Option<Direction> = Some(Direction::Client);
        let stats = body.unstuffer.stats();
        if stats.bare_lf_lines > 0 {
            rec.anomaly(
                ts,
                C,
                "bare_lf_in_body",
                format!("{} body lines ended by LF without CR", stats.bare_lf_lines),
            );
        }
        if stats.long_lines > 0 {
            rec.anomaly(
                ts,
                C,
                "body_line_too_long",
                format!("{} body lines longer than 998 characters", stats.long_lines),
            );
        }
        if !canonical {
            rec.anomaly(
                ts,
                C,
                "nonstandard_end_of_data",
                "end of data not written as CRLF.CRLF; servers disagree on such endings \
                 (SMTP smuggling)",
            );
        }
        let ended = self.close_message(body.message, ts, rec);
        self.push_pending(Step::DataEnd(Box::new(ended)), ts, false, None, rec);
    }

    /// A BDAT chunk is complete: the command now waits for its reply.
    fn chunk_done(&mut self, last: bool, ts: Timestamp, rec: &mut SessionRecord) {
        self.client = ClientMode::Commands;
        let message = if last {
            let open = self
                .bdat
                .take()
                .unwrap_or_else(|| OpenMessage::new(MessageSource::Bdat));
            Some(Box::new(self.close_message(open, ts, rec)))
        } else {
            None
        };
        self.push_pending(Step::Bdat(message), ts, false, None, rec);
    }

    /// A command that ends a BDAT transfer without LAST takes the partial message along.
    fn abandon_bdat(
        &mut self,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> Option<Box<EndedMessage>> {
        let mut open = self.bdat.take()?;
        open.complete = false;
        rec.anomaly(
            ts,
            Some(Direction::Client),
            "bdat_message_abandoned",
            "BDAT transfer ended without a LAST chunk",
        );
        Some(Box::new(self.close_message(open, ts, rec)))
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
        if self.pending.len() >= self.max_pending
            && let Some(oldest) = self.pending.pop_front()
        {
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

    fn server_line(&mut self, line: Line<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        let text = line.text();
        let Some(parsed) = parse_reply_line(&text) else {
            if self.server == ServerMode::Resync {
                rec.anomaly(
                    ts,
                    Some(Direction::Server),
                    "server_resync_skipped",
                    "lines skipped while looking for a reply after a gap or mid-stream start",
                );
                return;
            }
            let facts = self.report_line(&line, Direction::Server, ts, rec, true);
            if self.junk_line(Direction::Server, facts.binary, ts, rec) {
                return;
            }
            rec.anomaly(
                ts,
                Some(Direction::Server),
                "unparseable_reply_line",
                "server line that is not a reply",
            );
            rec.push_event(
                ts,
                Direction::Server,
                EventKind::Line {
                    text: text.into_owned(),
                },
            );
            return;
        };
        if self.server == ServerMode::Resync {
            self.server = ServerMode::Replies;
        }
        self.report_line(&line, Direction::Server, ts, rec, true);
        self.valid_line(Direction::Server);
        let continues = match self.reply.as_ref() {
            None => false,
            Some(b) if b.code == parsed.code => true,
            Some(b) if b.cut_by_gap => {
                self.finish_reply(rec);
                false
            }
            Some(_) => {
                // All lines of a reply carry one code: a new code means the previous reply
                // never sent its last line, and this line starts the next reply.
                rec.anomaly(
                    ts,
                    Some(Direction::Server),
                    "reply_code_mismatch",
                    "multi-line reply cut short by a line with another code",
                );
                self.finish_reply(rec);
                false
            }
        };
        if !continues {
            self.reply = Some(ReplyBuilder {
                code: parsed.code,
                ts,
                lines: Vec::new(),
                dropped_lines: 0,
                after_gap: std::mem::take(&mut self.next_after_gap),
                cut_by_gap: false,
            });
        }
        if let Some(b) = self.reply.as_mut() {
            b.ts = ts;
            if b.lines.len() < MAX_REPLY_LINES {
                b.lines.push(parsed.text.to_string());
            } else {
                b.dropped_lines += 1;
            }
        }
        if !parsed.more {
            self.finish_reply(rec);
        }
    }

    /// A reply is complete: record its event and queue it for its command.
    fn finish_reply(&mut self, rec: &mut SessionRecord) {
        let Some(b) = self.reply.take() else {
            return;
        };
        const S: Option<Direction> = Some(Direction::Server);
        if b.cut_by_gap {
            rec.anomaly(
                b.ts,
                S,
                "reply_cut_by_gap",
                "multi-line reply interrupted by a gap",
            );
        }
        if b.dropped_lines > 0 {
            rec.anomaly(
                b.ts,
                S,
                "reply_too_many_lines",
                format!("reply of more than {MAX_REPLY_LINES} lines; the rest were counted"),
            );
        }
        self.summary.replies += 1;
        let greeting = if self.replies_parsed > 0 {
            Greeting::No
        } else if self.clean_start && (b.code == 220 || b.code >= 400) {
            // 220, or a refusal (421, 554): other codes cannot open a session, so the
            // greeting was not sent or not captured and this reply answers a command.
            Greeting::Definite
        } else if b.code == 220 {
            Greeting::Maybe
        } else {
            Greeting::No
        };
        self.replies_parsed += 1;
        let text = b.lines.first().cloned().unwrap_or_default();
        let more = b.lines.get(1..).unwrap_or_default().to_vec();
        let kind = if b.code == 334 {
            EventKind::AuthData { raw: text.clone() }
        } else {
            EventKind::Reply {
                code: b.code,
                enhanced: parse_enhanced(b.code, &text).map(|c| c.to_string()),
                lines: b.lines,
            }
        };
        rec.push_event(b.ts, Direction::Server, kind);
        if self.replies.len() >= self.max_pending
            && let Some(dropped) = self.replies.pop_front()
        {
            rec.anomaly(
                b.ts,
                S,
                "too_many_unanswered_replies",
                "too many replies ahead of their commands; the oldest was dropped",
            );
            if dropped.greeting == Greeting::No {
                self.owed_commands += 1;
            }
        }
        self.replies.push_back(HeldReply {
            code: b.code,
            ts: b.ts,
            text,
            more,
            greeting,
            after_gap: b.after_gap,
            slipped: false,
        });
        if b.code == 220 && greeting != Greeting::Definite {
            // It may accept STARTTLS, after which the server speaks TLS.
            self.server = ServerMode::Paused;
        }
    }

    /// After a paused-on reply is consumed, the server stream may be read on.
    fn release_server(&mut self) {
        if self.server == ServerMode::Paused && self.replies.is_empty() {
            self.server = ServerMode::Replies;
        }
    }

    /// Pairs the next reply with its command; true if anything was done.
    fn match_next(&mut self, rec: &mut SessionRecord) -> bool {
        if let Some(front) = self.replies.front() {
            let greeting = match front.greeting {
                Greeting::Definite => true,
                Greeting::Maybe => match self.pending.front() {
                    None => return false,
                    Some(p) => !matches!(p.step, Step::Starttls),
                },
                Greeting::No => false,
            };
            if greeting {
                if let Some(r) = self.replies.pop_front() {
                    self.summary.greeting_code = Some(r.code);
                    self.summary.greeting = Some(r.text);
                }
                self.release_server();
                return true;
            }
        }
        // The client waits on the front entry: a guess made now could depend on whether its
        // next bytes have arrived yet, so a lost reply waits for the bound or the end.
        let waits_on_front = self.pending.len() == 1
            && matches!(self.client, ClientMode::Paused)
            && self
                .pending
                .front()
                .is_some_and(|p| p.pauses_client && p.assumed.is_none());
        if self.pending.front().is_some_and(|p| p.reply_lost) {
            if waits_on_front {
                return false;
            }
            if let Some(p) = self.pending.pop_front() {
                self.complete(p, None, rec);
            }
            return true;
        }
        if self.owed_replies > 0 && !self.replies.is_empty() {
            self.owed_replies -= 1;
            self.replies.pop_front();
            self.release_server();
            return true;
        }
        let (Some(p), Some(r)) = (self.pending.front(), self.replies.front()) else {
            return false;
        };
        let slip = if (p.uncertain || r.after_gap) && !plausible(&p.step, r.code) {
            // Alignment is in doubt here and the code does not fit.
            if p.uncertain {
                Some((
                    Slip::ExtraReply,
                    "reply_for_lost_command",
                    "reply that fits no command seen: its command was not captured",
                ))
            } else {
                Some((
                    Slip::ReplyLost,
                    "reply_lost_in_gap",
                    "command whose reply was not captured",
                ))
            }
        } else {
            // A stray code may close one command as unanswered, not a whole queue.
            let once = |slip| match slip {
                Slip::ReplyLost if r.slipped => Slip::ExtraReply,
                other => other,
            };
            sequence_slip(&p.step, r.code).map(|slip| {
                (
                    once(slip),
                    "reply_sequence_mismatch",
                    "a reply code that cannot answer its command: replies and commands re-aligned",
                )
            })
        };
        if let Some((slip, kind, detail)) = slip {
            let at = r.ts;
            rec.anomaly(at, Some(Direction::Server), kind, detail);
            match slip {
                Slip::ExtraReply => {
                    self.replies.pop_front();
                    self.release_server();
                }
                Slip::ReplyLost if waits_on_front => {
                    if let Some(p) = self.pending.front_mut() {
                        p.reply_lost = true;
                    }
                }
                Slip::ReplyLost => {
                    if let Some(r) = self.replies.front_mut() {
                        r.slipped = true;
                    }
                    if let Some(p) = self.pending.pop_front() {
                        self.complete(p, None, rec);
                    }
                }
            }
            return true;
        }
        let (Some(p), Some(r)) = (self.pending.pop_front(), self.replies.pop_front()) else {
            return false;
        };
        self.complete(p, Some(r), rec);
        self.release_server();
        true
    }

    /// Applies a command's outcome; `reply` is `None` when it never came.
    fn complete(&mut self, p: Pending, reply: Option<HeldReply>, rec: &mut SessionRecord) {
        if let Some(m) = p.abandoned {
            self.finish_message(*m, None, rec);
        }
        let code = reply.as_ref().map(|r| r.code);
        let resolution = p.pauses_client.then(|| match code {
            Some(c) => resolution_for(&p.step, c),
            None => self.guess(&p.step),
        });
        match p.step {
            Step::Helo { ehlo } => {
                // A rejected HELO/EHLO changes nothing; an accepted one resets the transaction.
                if !is_rejection(code) {
                    self.txn = Transaction::default();
                }
                if ehlo
                    && is_positive(code)
                    && let Some(r) = reply.as_ref()
                {
                    self.apply_capabilities(parse_capabilities(&r.more));
                }
            }
            Step::Mail { path } => {
                if !is_rejection(code) {
                    self.txn = Transaction {
                        open: true,
                        mail_from: path,
                        rcpt_to: Vec::new(),
                    };
                    self.summary.transactions += 1;
                }
            }
            Step::Rcpt { path } => {
                if is_rejection(code) {
                    self.summary.recipients_rejected += 1;
                } else if let Some(path) = path {
                    if self.txn.rcpt_to.len() < MAX_RECIPIENTS {
                        self.txn.rcpt_to.push(path);
                    } else {
                        rec.anomaly(
                            p.ts,
                            Some(Direction::Client),
                            "too_many_recipients",
                            format!("more than {MAX_RECIPIENTS} recipients; the rest not kept"),
                        );
                    }
                }
            }
            Step::Data | Step::Bdat(None) | Step::Quit | Step::Other => {}
            Step::DataEnd(m) | Step::Bdat(Some(m)) => {
                let verdict = reply.as_ref().map(|r| {
                    let mut text = r.text.clone();
                    for more in &r.more {
                        text.push(' ');
                        text.push_str(more);
                    }
                    MessageReply { code: r.code, text }
                });
                self.finish_message(*m, verdict, rec);
                self.txn = Transaction::default();
            }
            Step::Rset | Step::LostDataEnd => self.txn = Transaction::default(),
            Step::Starttls => {
                if code == Some(220) {
                    self.summary.starttls_accepted = true;
                    self.txn = Transaction::default();
                    let ts = reply.as_ref().map_or(p.ts, |r| r.ts);
                    if self.tls.is_none() {
                        self.tls = Some(TlsObserver::start(
                            TlsMode::Starttls,
                            Direction::Server,
                            ts,
                            rec,
                        ));
                    }
                    if matches!(self.server, ServerMode::Paused | ServerMode::Tls) {
                        self.server = ServerMode::Tls;
                    } else {
                        rec.anomaly(
                            p.ts,
                            None,
                            "assumed_reply_contradicted",
                            "a reply arrived too late and contradicts the reading taken",
                        );
                    }
                } else if is_positive(code) {
                    rec.anomaly(
                        p.ts,
                        Some(Direction::Server),
                        "unexpected_starttls_reply",
                        "STARTTLS answered with a 2xx other than 220; taken as refused",
                    );
                }
            }
            Step::Auth => self.auth_reply(reply.as_ref(), rec),
        }
        if let Some(resolution) = resolution {
            match p.assumed {
                Some(assumed) => {
                    if code.is_some() && assumed != resolution {
                        rec.anomaly(
                            p.ts,
                            None,
                            "assumed_reply_contradicted",
                            "a reply arrived too late and contradicts the reading taken",
                        );
                    }
                }
                None => {
                    if matches!(self.client, ClientMode::Paused) {
                        self.resume_client(resolution, p.ts, rec);
                    }
                }
            }
        }
    }

    fn apply_capabilities(&mut self, caps: Capabilities) {
        let s = &mut self.summary;
        s.capabilities = caps.raw;
        s.pipelining = caps.pipelining;
        s.starttls_offered = caps.starttls;
        s.chunking = caps.chunking;
        s.eightbitmime = caps.eightbitmime;
        s.binarymime = caps.binarymime;
        s.smtputf8 = caps.smtputf8;
        s.dsn = caps.dsn;
        s.enhanced_status_codes = caps.enhanced_status_codes;
        s.size_limit = caps.size_limit;
        s.auth_mechanisms = caps.auth_mechanisms;
    }

    fn auth_reply(&mut self, reply: Option<&HeldReply>, rec: &mut SessionRecord) {
        let Some(reply) = reply else {
            if let Some(auth) = self.auth.take() {
                self.finish_auth(auth, None, rec);
            }
            return;
        };
        if (300..400).contains(&reply.code) {
            if reply.code != 334 {
                rec.anomaly(
                    reply.ts,
                    Some(Direction::Server),
                    "unexpected_auth_reply",
                    "AUTH step answered with a 3xx other than 334",
                );
            }
            if let Some(auth) = self.auth.as_mut() {
                auth.server_challenge(&reply.text);
            }
        } else if let Some(auth) = self.auth.take() {
            let success = (200..300).contains(&reply.code);
            self.finish_auth(auth, Some(success), rec);
        }
    }

    fn finish_auth(&mut self, auth: SaslExchange, success: Option<bool>, rec: &mut SessionRecord) {
        let problems: Vec<String> = auth.problems().to_vec();
        let credential = auth.finish(success);
        for problem in problems {
            rec.anomaly(
                credential.ts,
                Some(Direction::Client),
                "sasl_malformed",
                problem,
            );
        }
        if success == Some(true) {
            self.summary.authenticated = true;
        }
        if rec.credentials.len() < MAX_CREDENTIALS {
            rec.credentials.push(credential);
        } else {
            rec.anomaly(
                credential.ts,
                Some(Direction::Client),
                "credential_limit",
                format!("more than {MAX_CREDENTIALS} AUTH attempts; later ones are counted only"),
            );
        }
    }

    /// The end of a message was read: its event is recorded now, in client-stream order, so
    /// that events sharing a timestamp keep their order whatever the interleaving; the record
    /// itself waits for the message's place in the command order.
    fn close_message(
        &mut self,
        mut open: OpenMessage,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> EndedMessage {
        let size = open.size();
        let complete = open.complete;
        if let Some(c) = open.collector.as_mut() {
            // The content is all in: decode and free it now; only the record waits for the reply.
            c.end(complete);
        }
        // Recorded messages are numbered in the order they end, which is the order they are
        // recorded in; one refused here is counted by the record and leaves no gap.
        let admission = rec.admit_message(ts, Direction::Client, size);
        let index = (admission != MessageAdmission::Dropped).then(|| {
            self.messages_ended += 1;
            self.messages_ended - 1
        });
        let mut ended = open.close(ts, &self.keep, index);
        if admission == MessageAdmission::HashOnly {
            ended.collector.skip_mime();
        }
        if let Some(index) = index {
            rec.push_event(
                ts,
                Direction::Client,
                EventKind::MessageData {
                    message: index,
                    bytes: ended.collector.size(),
                },
            );
        }
        ended
    }

    fn finish_message(
        &mut self,
        m: EndedMessage,
        verdict: Option<MessageReply>,
        rec: &mut SessionRecord,
    ) {
        let final_code = verdict.as_ref().map(|v| v.code);
        if let Some(announced) = m.index {
            let index = m.collector.finish(self.txn.envelope(), m.complete, rec);
            if let Some(record) = rec.messages.get_mut(index) {
                record.reply = verdict;
            }
            if index != announced {
                // Messages end in client order and are recorded in command order, which
                // agree; say so loudly if they ever do not.
                rec.anomaly(
                    m.end_ts,
                    None,
                    "message_index_mismatch",
                    format!("message recorded at {index}, announced at {announced}"),
                );
            }
        }
        match final_code {
            Some(c) if (200..300).contains(&c) => self.summary.messages_accepted += 1,
            Some(_) => self.summary.messages_rejected += 1,
            None => {}
        }
    }

    /// The most likely reply to a pausing command, judged from the client's held bytes.
    fn guess(&self, step: &Step) -> Resolution {
        let first_line = || {
            let line = self.client_hold.first_line(self.max_line_len);
            String::from_utf8_lossy(&line).into_owned()
        };
        let is_strict = |text: &str| split_command(text).is_some_and(|c| is_strict_command(&c));
        match step {
            Step::Data if self.client_hold.is_empty() || is_strict(&first_line()) => {
                Resolution::Commands
            }
            Step::Data => Resolution::Body,
            Step::Auth if self.client_hold.is_empty() => Resolution::Commands,
            Step::Auth => {
                let text = first_line();
                let command = match &self.auth {
                    // The mechanism knows how many responses it sends and what they look
                    // like; a command verb with a sloppy argument (`MAIL FROM: <a>`) still
                    // counts as a command once they are all in.
                    Some(auth) => {
                        let known = split_command(&text)
                            .is_some_and(|c| c.shape == VerbShape::Word && c.verb != Verb::Unknown);
                        auth.guess_line(&text, known) == GuessedLine::Command
                    }
                    None => is_strict(&text),
                };
                if command {
                    Resolution::Commands
                } else {
                    Resolution::Sasl
                }
            }
            Step::Starttls if self.client_hold.first_byte().is_some_and(looks_like_tls) => {
                Resolution::Tls
            }
            _ => Resolution::Commands,
        }
    }

    fn resume_client(&mut self, resolution: Resolution, ts: Timestamp, rec: &mut SessionRecord) {
        self.client = match resolution {
            Resolution::Body => ClientMode::Body(Box::new(DataBody::new())),
            Resolution::Commands => ClientMode::Commands,
            Resolution::Sasl => ClientMode::SaslLine,
            Resolution::Tls => {
                if self.tls.is_none() {
                    self.tls = Some(TlsObserver::start(
                        TlsMode::Starttls,
                        Direction::Client,
                        ts,
                        rec,
                    ));
                }
                ClientMode::Tls
            }
        };
    }

    /// A paused client whose reply cannot come (held bytes over the bound, reply dropped, or
    /// the end of the capture) moves on with the likely reading.
    fn resolve_stuck_pause(&mut self, at_end: bool, rec: &mut SessionRecord) -> bool {
        if !matches!(self.client, ClientMode::Paused) {
            return false;
        }
        let overflow = self.client_hold.bytes > PAUSED_BYTES_CAP
            || (self.holds_over_budget && !self.client_hold.is_empty());
        let Some(p) = self.pending.back() else {
            self.client = ClientMode::Commands;
            return true;
        };
        if !(at_end || overflow) {
            return false;
        }
        let guess = self.guess(&p.step);
        let ts = p.ts;
        if overflow {
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "paused_client_overflow",
                "over 1 MiB (or the run's memory budget) sent while waiting for a reply; the likely reply was assumed",
            );
        }
        if let Some(p) = self.pending.back_mut() {
            p.assumed = Some(guess);
        }
        self.resume_client(guess, ts, rec);
        true
    }

    /// At the end: a possible greeting with no command to decide against is the greeting.
    fn settle_greeting_at_end(&mut self, _rec: &mut SessionRecord) -> bool {
        match self.replies.front_mut() {
            Some(r) if r.greeting == Greeting::Maybe && self.pending.is_empty() => {
                r.greeting = Greeting::Definite;
                true
            }
            _ => false,
        }
    }

    /// At the end: a server paused on a reply no command will claim reads on.
    fn release_stuck_server(&mut self) -> bool {
        if self.server == ServerMode::Paused && self.pending.is_empty() {
            self.server = ServerMode::Replies;
            return true;
        }
        false
    }

    /// A server paused on a 220 past the bound reads on: as TLS if its next bytes look like
    /// TLS, as replies otherwise.
    fn resolve_server_overflow(&mut self, rec: &mut SessionRecord) -> bool {
        let over = self.server_hold.bytes > PAUSED_BYTES_CAP
            || (self.holds_over_budget && !self.server_hold.is_empty());
        if self.server != ServerMode::Paused || !over {
            return false;
        }
        let ts = self.replies.back().map_or(Timestamp::default(), |r| r.ts);
        rec.anomaly(
            ts,
            Some(Direction::Server),
            "paused_server_overflow",
            "over 1 MiB (or the run's memory budget) sent after a 220 that no command claimed yet; the likely reading was taken",
        );
        if let Some(r) = self.replies.back_mut()
            && r.greeting == Greeting::Maybe
        {
            r.greeting = Greeting::Definite;
        }
        if self.server_hold.first_byte().is_some_and(looks_like_tls) {
            if self.tls.is_none() {
                self.tls = Some(TlsObserver::start(
                    TlsMode::Starttls,
                    Direction::Server,
                    ts,
                    rec,
                ));
            }
            self.server = ServerMode::Tls;
        } else {
            self.server = ServerMode::Replies;
        }
        true
    }

    /// At the end: a multi-line reply whose last line never came is complete as it is.
    fn finish_open_reply(&mut self, rec: &mut SessionRecord) -> bool {
        let Some(b) = self.reply.as_ref() else {
            return false;
        };
        if self.server == ServerMode::Paused || !self.server_hold.is_empty() {
            return false;
        }
        rec.anomaly(
            b.ts,
            Some(Direction::Server),
            "reply_unterminated",
            "multi-line reply without its last line",
        );
        self.finish_reply(rec);
        true
    }

    /// Closes everything still open and writes the summary.
    fn finish(&mut self, ts: Timestamp, rec: &mut SessionRecord) {
        self.ended = true;
        while let Some(p) = self.pending.pop_front() {
            self.complete(p, None, rec);
        }
        let mode = std::mem::replace(&mut self.client, ClientMode::Stopped);
        if let ClientMode::Body(body) | ClientMode::BodyAfterGap(body) = mode {
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "data_unterminated",
                "message body without its end-of-data line",
            );
            let mut message = body.message;
            message.complete = false;
            let ended = self.close_message(message, ts, rec);
            self.finish_message(ended, None, rec);
        }
        if let Some(mut open) = self.bdat.take() {
            open.complete = false;
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "bdat_unterminated",
                "BDAT transfer without its LAST chunk",
            );
            let ended = self.close_message(open, ts, rec);
            self.finish_message(ended, None, rec);
        }
        for r in self.replies.drain(..) {
            if r.greeting == Greeting::No {
                rec.anomaly(
                    r.ts,
                    Some(Direction::Server),
                    "reply_without_command",
                    "reply with no command to answer",
                );
            }
        }
        if let Some(auth) = self.auth.take() {
            self.finish_auth(auth, None, rec);
        }
        self.client_hold = Hold::default();
        self.server_hold = Hold::default();
        rec.smtp = Some(Box::new(self.summary.clone()));
    }
}
