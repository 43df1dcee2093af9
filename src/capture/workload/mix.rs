//! A busy mail link: hundreds of SMTP and POP3 sessions open at once, their packets
//! interleaved, carrying messages from a few KiB to a few MiB, with cleartext logins.
//!
//! [`Mix::write`] keeps [`Mix::concurrent`] connections open from the start until the capture
//! is nearly as large as asked, picking a random open connection for each burst of one to six
//! packets, so that many sessions hold a partial message at any moment, as on a real relay.
//! Message sizes are spread evenly over the octaves between [`Mix::min_message`] and
//! [`Mix::max_message`] (about log-uniform), and the messages are:
//!
//! - 45%: `multipart/mixed` holding a `multipart/alternative` (text and HTML, both
//!   quoted-printable) and one to three base64 attachments;
//! - 35%: `multipart/mixed` with a plain text part and one or two base64 attachments;
//! - 10% (only up to 256 KiB): a `multipart/alternative` alone, quoted-printable;
//! - 10% (only up to 256 KiB): a single quoted-printable text part.
//!
//! Each message is exactly the size drawn (or one byte less). SMTP sessions log in, in
//! [`Mix::auth_percent`] of cases, with AUTH PLAIN or AUTH LOGIN on port 587 (the others relay
//! on port 25 without a login); POP3 sessions always log in with USER/PASS, list and RETR their
//! messages. A seventh of the logins first fail with a wrong password. Everything is derived
//! from [`Mix::seed`], so the same settings give the same bytes, and [`Manifest`] says exactly
//! what was written: every session, message (size and SHA-256 as mailsift computes them),
//! attachment (decoded size and SHA-256) and credential.

use crate::capture::synth::{PcapWriter, Rng, TcpFlow};
use crate::session::Direction;
use crate::time::Timestamp;
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};

/// Settings of a [`Mix`] capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mix {
    /// Approximate size of the capture file in bytes (no more than one session over).
    pub target_bytes: u64,
    /// Seed of the generator.
    pub seed: u64,
    /// Connections open at once (at least 1).
    pub concurrent: usize,
    /// Smallest message, in bytes (at least 1024).
    pub min_message: usize,
    /// Largest message, in bytes.
    pub max_message: usize,
    /// Share (0 to 100) of the mail sessions that are POP3; the others are SMTP.
    pub pop3_percent: u8,
    /// Share (0 to 100) of the SMTP sessions that log in (AUTH PLAIN or LOGIN, in clear).
    pub auth_percent: u8,
    /// Share (0 to 95) of the capture's bytes that are non-mail downloads on ports 80 and 443.
    pub other_percent: u8,
}

impl Default for Mix {
    /// 64 MiB, 500 connections at once, messages of 2 KiB to 2 MiB, 30% POP3, 40% of the SMTP
    /// sessions logging in, no other traffic, seed 42.
    fn default() -> Self {
        Mix {
            target_bytes: 64 << 20,
            seed: 42,
            concurrent: 500,
            min_message: 2 << 10,
            max_message: 2 << 20,
            pop3_percent: 30,
            auth_percent: 40,
            other_percent: 0,
        }
    }
}

/// What [`Mix::write`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    /// Which generator wrote the capture.
    pub generator: String,
    /// The settings it was written with.
    pub settings: Mix,
    /// Counts over the whole capture.
    pub totals: Totals,
    /// Every mail session, in the order they were opened (non-mail flows are only counted).
    pub sessions: Vec<SessionEntry>,
}

/// Counts over a [`Mix`] capture.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Mail sessions (SMTP and POP3).
    pub sessions: u64,
    /// SMTP sessions.
    pub smtp_sessions: u64,
    /// POP3 sessions.
    pub pop3_sessions: u64,
    /// Non-mail TCP connections (ports 80 and 443).
    pub other_flows: u64,
    /// Messages: sent by SMTP DATA or retrieved by POP3 RETR.
    pub messages: u64,
    /// Bytes of the messages, as mailsift measures them (dot-unstuffed, without the final dot).
    pub message_bytes: u64,
    /// Attachments (base64 parts with a file name).
    pub attachments: u64,
    /// Decoded bytes of the attachments.
    pub attachment_bytes: u64,
    /// Authentication attempts (each readable on the wire).
    pub credentials: u64,
    /// Authentication attempts that failed.
    pub failed_credentials: u64,
    /// Packets written.
    pub packets: u64,
    /// Bytes of the capture file.
    pub bytes: u64,
    /// Most connections open at once.
    pub max_open: u64,
    /// Connections open when a packet was written, averaged over the packets.
    pub mean_open: f64,
}

/// One mail session of a [`Mix`] capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionEntry {
    /// `smtp` or `pop3`.
    pub protocol: String,
    /// Client address, `ip:port`.
    pub client: String,
    /// Server address, `ip:port`.
    pub server: String,
    /// Authentication attempts, in order.
    pub credentials: Vec<CredentialEntry>,
    /// Messages, in order.
    pub messages: Vec<MessageEntry>,
}

/// One authentication attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialEntry {
    /// `PLAIN`, `LOGIN` or `USER` (POP3 USER/PASS), as mailsift names them.
    pub mechanism: String,
    /// The user name.
    pub username: String,
    /// The password sent.
    pub password: String,
    /// Whether the server accepted it.
    pub success: bool,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageEntry {
    /// Bytes of the message.
    pub size: u64,
    /// SHA-256 of the message, hex.
    pub sha256: String,
    /// The top-level content type.
    pub content_type: String,
    /// Its attachments, in order.
    pub attachments: Vec<AttachmentEntry>,
}

/// One attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentEntry {
    /// File name.
    pub filename: String,
    /// Content type.
    pub content_type: String,
    /// Decoded bytes.
    pub size: u64,
    /// SHA-256 of the decoded bytes, hex.
    pub sha256: String,
}

/// Segment payload size.
const MSS: usize = 1460;
/// The receiver acknowledges every this many data segments (and the end of each turn).
const SEGMENTS_PER_ACK: usize = 2;
/// Messages larger than this always carry attachments.
const MAX_TEXT_ONLY: usize = 256 << 10;

/// One step of a session's script.
enum Step {
    /// One side sends these bytes.
    Send(Direction, Vec<u8>),
    /// A message of `size` bytes, made when its turn comes: by the client after DATA (SMTP),
    /// or by the server after `+OK ... octets` (POP3 RETR).
    Message { from: Direction, size: usize },
    /// The server sends `size` bytes of filler (a non-mail download).
    Filler(usize),
}

/// A connection being written.
struct Open {
    /// Index in the manifest's sessions; `None` for non-mail flows.
    entry: Option<usize>,
    /// Number of the connection, for names.
    n: usize,
    flow: TcpFlow,
    rng: Rng,
    steps: VecDeque<Step>,
    /// Bytes being sent: by whom, what, how far.
    sending: Option<(Direction, Vec<u8>, usize)>,
    frames: VecDeque<Vec<u8>>,
    closed: bool,
    /// Estimated capture bytes still to be written.
    remaining: u64,
    /// Messages made so far.
    made: usize,
}

/// About the payload bytes of a script (messages grow by a line in 500 for dot-stuffing).
fn payload(steps: &VecDeque<Step>) -> u64 {
    steps
        .iter()
        .map(|s| match s {
            Step::Send(_, b) => b.len() as u64,
            Step::Message { size, .. } => *size as u64 + 32 + *size as u64 / 500,
            Step::Filler(size) => *size as u64 + 64,
        })
        .sum()
}

/// Capture bytes (record header and frame) of `payload` bytes sent in full segments with ACKs.
fn wire_estimate(payload: u64) -> u64 {
    let segments = payload.div_ceil(MSS as u64);
    payload + segments * (16 + 54) + segments.div_ceil(SEGMENTS_PER_ACK as u64) * (16 + 54)
}

impl Open {
    /// The next frame of the connection, `None` once it is closed.
    fn next_frame(&mut self, sessions: &mut [SessionEntry]) -> Option<Vec<u8>> {
        loop {
            if let Some(f) = self.frames.pop_front() {
                return Some(f);
            }
            if let Some((from, bytes, off)) = &mut self.sending {
                for _ in 0..SEGMENTS_PER_ACK {
                    if *off < bytes.len() {
                        let end = (*off + MSS).min(bytes.len());
                        self.frames
                            .push_back(self.flow.data(*from, &bytes[*off..end]));
                        *off = end;
                    }
                }
                self.frames.push_back(self.flow.ack(from.opposite()));
                if *off == bytes.len() {
                    self.sending = None;
                }
                continue;
            }
            match self.steps.pop_front() {
                Some(Step::Send(from, bytes)) => self.sending = Some((from, bytes, 0)),
                Some(Step::Message { from, size }) => {
                    let id = format!("m{}.{}", self.n, self.made);
                    self.made += 1;
                    let (msg, entry) = message(&mut self.rng, &id, self.n, size);
                    let mut wire = Vec::with_capacity(msg.len() + 64);
                    if from == Direction::Server {
                        wire.extend_from_slice(format!("+OK {} octets\r\n", msg.len()).as_bytes());
                    }
                    dot_stuff(&msg, &mut wire);
                    wire.extend_from_slice(b".\r\n");
                    if let Some(s) = self.entry {
                        sessions[s].messages.push(entry);
                    }
                    self.sending = Some((from, wire, 0));
                }
                Some(Step::Filler(size)) => {
                    let mut body = Vec::with_capacity(size + 64);
                    if self.flow.server().port() == 80 {
                        body.extend_from_slice(
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").as_bytes(),
                        );
                    }
                    // Cheap filler: a random 4 KiB block repeated.
                    let block = random_bytes(&mut self.rng, 4096);
                    while body.len() < size {
                        let take = (size - body.len()).min(block.len());
                        body.extend_from_slice(&block[..take]);
                    }
                    self.sending = Some((Direction::Server, body, 0));
                }
                None if !self.closed => {
                    self.closed = true;
                    self.frames.extend(self.flow.close());
                }
                None => return None,
            }
        }
    }
}

/// Copies `msg` to `out` with a dot doubled at the start of each line (SMTP DATA, POP3 RETR).
fn dot_stuff(msg: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    if msg.first() == Some(&b'.') {
        out.push(b'.');
    }
    for pos in memchr::memmem::find_iter(msg, b"\r\n.") {
        out.extend_from_slice(&msg[start..pos + 2]);
        out.push(b'.');
        start = pos + 2;
    }
    out.extend_from_slice(&msg[start..]);
}

fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(n);
    out
}

/// A number in `lo..=hi`.
fn between(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    lo + rng.below(hi.saturating_sub(lo) + 1)
}

fn client_addr(n: usize, port: u16) -> SocketAddr {
    // 10.0.0.1 onwards: one address per connection.
    let ip = Ipv4Addr::from(0x0a00_0000u32 | ((n as u32 + 1) & 0x00ff_ffff));
    SocketAddr::from((ip, port))
}

fn server_addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(192, 0, 2, last), port))
}

fn password(rng: &mut Rng) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    (0..between(rng, 8, 14))
        .map(|_| char::from(ALNUM[rng.below(ALNUM.len())]))
        .collect()
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Bytes of `n` bytes base64-encoded in lines of 76 characters, each ending in CRLF.
fn base64_lines_len(n: usize) -> usize {
    let chars = n.div_ceil(3) * 4;
    chars + 2 * chars.div_ceil(76)
}

/// Most bytes whose base64 lines fit in `avail` bytes, leaving anything but exactly one byte
/// over (which no CRLF-ended padding could fill).
fn base64_fit(avail: usize) -> usize {
    let mut n = avail / 78 * 57 + (avail % 78) * 3 / 4 + 3;
    while n > 0 && (base64_lines_len(n) > avail || avail - base64_lines_len(n) == 1) {
        n -= 1;
    }
    n
}

fn push_base64_lines(raw: &[u8], out: &mut Vec<u8>) {
    let enc = B64.encode(raw);
    for line in enc.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `text` (one line, no CRLF) quoted-printable encoded, with soft line breaks.
fn push_qp_line(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let mut col = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let last = i + 1 == bytes.len();
        let encode = b == b'=' || b >= 0x7f || (b < 0x20 && b != b'\t') || (last && b == b' ');
        let width = if encode { 3 } else { 1 };
        if col + width > 75 {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        if encode {
            out.extend_from_slice(format!("={b:02X}").as_bytes());
        } else {
            out.push(b);
        }
        col += width;
    }
    out.extend_from_slice(b"\r\n");
}

const WORDS: &[&str] = &[
    "the",
    "report",
    "meeting",
    "budget",
    "review",
    "attached",
    "please",
    "find",
    "numbers",
    "quarter",
    "team",
    "réunion",
    "équipe",
    "prévu",
    "Straße",
    "Grüße",
    "naïve",
    "café",
    "€",
    "deadline",
    "invoice",
    "contract",
    "draft",
    "sign",
    "Monday",
    "schedule",
    "a=b",
    "project",
    "données",
    "año",
    "über",
    "follow-up",
    "thanks",
    "regards",
    "details",
    "update",
];

/// A line of text of about `len` bytes; one line in twenty ends with a URL (so even a
/// 256 KiB text stays under mailsift's 500 URLs a message, as real mail does).
fn text_line(rng: &mut Rng, len: usize, n: usize) -> String {
    let mut s = String::with_capacity(len + 40);
    // Lines never start with a dot.
    s.push_str(WORDS[rng.below(WORDS.len())]);
    while s.len() < len {
        s.push(' ');
        s.push_str(WORDS[rng.below(WORDS.len())]);
        if rng.below(9) == 0 {
            s.push('.');
        }
    }
    if rng.below(20) == 0 {
        s.push_str(&format!(
            " https://example.test/d/{n}/{}",
            rng.below(10_000)
        ));
    }
    s
}

/// Quoted-printable text lines appended until `out` is `goal` bytes long; the last line is
/// plain letters so that the length is exact (`goal` must leave room for one short line).
fn fill_qp_text(rng: &mut Rng, out: &mut Vec<u8>, goal: usize, n: usize, html: bool) {
    let mut line = Vec::new();
    loop {
        let len = between(rng, 30, 110);
        let text = text_line(rng, len, n);
        let text = if html {
            format!("<p class=\"t\">{text}</p>")
        } else {
            text
        };
        line.clear();
        push_qp_line(&text, &mut line);
        if out.len() + line.len() + 4 > goal {
            break;
        }
        out.extend_from_slice(&line);
    }
    pad(out, goal);
}

/// Appends CRLF-ended lines of letters until `out` is `goal` bytes long (or one byte short,
/// when exactly one byte is missing).
fn pad(out: &mut Vec<u8>, goal: usize) {
    while goal.saturating_sub(out.len()) >= 2 {
        let left = goal - out.len();
        // Lines of at most 76 letters, never leaving exactly one byte over.
        let take = if left > 78 { (left - 2).min(76) } else { left };
        let take = if left > 78 && left - take == 1 {
            take - 1
        } else {
            take
        };
        out.extend(std::iter::repeat_n(b'x', take - 2));
        out.extend_from_slice(b"\r\n");
    }
}

const ATTACHMENT_TYPES: &[(&str, &str, &str)] = &[
    ("report", "pdf", "application/pdf"),
    ("photo", "jpg", "image/jpeg"),
    ("archive", "zip", "application/zip"),
    ("data", "bin", "application/octet-stream"),
    (
        "sheet",
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("scan", "png", "image/png"),
];

/// The header of an attachment part (its type and file name drawn from `rng`).
fn attachment_head(
    rng: &mut Rng,
    boundary: &str,
    id: &str,
    k: usize,
) -> (String, String, &'static str) {
    let (stem, ext, ct) = ATTACHMENT_TYPES[rng.below(ATTACHMENT_TYPES.len())];
    let filename = format!("{stem}-{id}-{k}.{ext}");
    let head = format!(
        "--{boundary}\r\nContent-Type: {ct}; name=\"{filename}\"\r\n\
         Content-Disposition: attachment; filename=\"{filename}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    );
    (head, filename, ct)
}

/// Appends an attachment part (`head`, then `raw` random bytes in base64) and records it.
fn attachment(
    rng: &mut Rng,
    out: &mut Vec<u8>,
    (head, filename, ct): (String, String, &str),
    raw: usize,
    entries: &mut Vec<AttachmentEntry>,
) {
    out.extend_from_slice(head.as_bytes());
    let bytes = random_bytes(rng, raw);
    push_base64_lines(&bytes, out);
    entries.push(AttachmentEntry {
        filename,
        content_type: ct.to_string(),
        size: raw as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
    });
}

/// About the bytes of an attachment part's header, to plan how many fit.
const ATTACHMENT_HEAD: usize = 260;

const SUBJECTS: &[&str] = &[
    "Quarterly report",
    "=?UTF-8?B?UmFwcG9ydCB0cmltZXN0cmllbCDigJMgbsKw?=",
    "=?UTF-8?Q?R=C3=A9union_de_lundi?=",
    "Re: invoice and contract",
    "Fwd: scans from the office",
];

const SENDERS: &[&str] = &[
    "Alice Martin",
    "\"Dupont, Bob\"",
    "=?UTF-8?Q?Chlo=C3=A9_N=C3=BA=C3=B1ez?=",
    "Dmitri Ivanov",
];

/// A message of exactly `size` bytes (or one less) and what it holds.
fn message(rng: &mut Rng, id: &str, n: usize, size: usize) -> (Vec<u8>, MessageEntry) {
    let mut m = Vec::with_capacity(size + 8);
    let sender = SENDERS[rng.below(SENDERS.len())];
    let subject = SUBJECTS[rng.below(SUBJECTS.len())];
    m.extend_from_slice(
        format!(
            "Received: from client{n}.example.test (client{n}.example.test [{ip}])\r\n\
             \tby mx.example.test with ESMTP id {id}; Tue, 14 Nov 2023 22:13:20 +0000\r\n\
             From: {sender} <sender{n}@example.test>\r\n\
             To: rcpt{n}@example.test\r\n\
             Subject: {subject} {id}\r\n\
             Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
             Message-ID: <{id}@example.test>\r\n\
             MIME-Version: 1.0\r\n",
            ip = client_addr(n, 0).ip(),
        )
        .as_bytes(),
    );
    let mut attachments = Vec::new();
    let mut variant = rng.below(100);
    if size > MAX_TEXT_ONLY && variant >= 80 {
        variant %= 80;
    }
    let outer = format!("=_mix_{id}_0");
    let inner = format!("=_mix_{id}_1");
    // Text parts are a small share of a message with attachments.
    let text_goal = (size / between(rng, 8, 16)).clamp(120, 24 << 10);
    let content_type;
    match variant {
        // multipart/mixed: text (alternative or plain), then attachments.
        0..80 => {
            content_type = "multipart/mixed";
            m.extend_from_slice(
                format!(
                    "Content-Type: multipart/mixed; boundary=\"{outer}\"\r\n\r\n\
                     This is a multi-part message in MIME format.\r\n"
                )
                .as_bytes(),
            );
            if variant < 45 {
                m.extend_from_slice(
                    format!(
                        "--{outer}\r\nContent-Type: multipart/alternative; boundary=\"{inner}\"\r\n\r\n\
                         --{inner}\r\nContent-Type: text/plain; charset=utf-8\r\n\
                         Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                    )
                    .as_bytes(),
                );
                let goal = m.len() + text_goal / 2;
                fill_qp_text(rng, &mut m, goal, n, false);
                m.extend_from_slice(
                    format!(
                        "--{inner}\r\nContent-Type: text/html; charset=utf-8\r\n\
                         Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                    )
                    .as_bytes(),
                );
                let goal = m.len() + text_goal / 2;
                fill_qp_text(rng, &mut m, goal, n, true);
                m.extend_from_slice(format!("--{inner}--\r\n").as_bytes());
            } else {
                m.extend_from_slice(
                    format!(
                        "--{outer}\r\nContent-Type: text/plain; charset=us-ascii\r\n\
                         Content-Transfer-Encoding: 7bit\r\n\r\n"
                    )
                    .as_bytes(),
                );
                let goal = m.len() + text_goal;
                while m.len() + 120 < goal {
                    let len = between(rng, 30, 70);
                    let line = text_line(rng, len, n);
                    let ascii: String = line.chars().filter(char::is_ascii).collect();
                    m.extend_from_slice(ascii.trim_start_matches('.').as_bytes());
                    m.extend_from_slice(b"\r\n");
                }
            }
            let closing = format!("--{outer}--\r\n");
            let wanted = if variant < 45 {
                between(rng, 1, 3)
            } else {
                between(rng, 1, 2)
            };
            // Only as many attachments as leave each at least a few lines.
            let room = size.saturating_sub(m.len() + closing.len());
            let count = wanted.min(room / (ATTACHMENT_HEAD + 400)).max(1);
            let weights: Vec<usize> = (0..count).map(|_| between(rng, 1, 4)).collect();
            let total_weight: usize = weights.iter().sum();
            let shared = room.saturating_sub(count * ATTACHMENT_HEAD);
            for (k, w) in weights.iter().enumerate() {
                let head = attachment_head(rng, &outer, id, k);
                let raw = if k + 1 < count {
                    base64_fit(shared * w / total_weight)
                } else {
                    // The last one fills the message to its size, less the closing line.
                    base64_fit(size.saturating_sub(m.len() + head.0.len() + closing.len()))
                };
                attachment(rng, &mut m, head, raw, &mut attachments);
            }
            m.extend_from_slice(closing.as_bytes());
        }
        // multipart/alternative alone.
        80..90 => {
            content_type = "multipart/alternative";
            m.extend_from_slice(
                format!(
                    "Content-Type: multipart/alternative; boundary=\"{inner}\"\r\n\r\n\
                     --{inner}\r\nContent-Type: text/plain; charset=utf-8\r\n\
                     Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                )
                .as_bytes(),
            );
            let closing = format!("--{inner}--\r\n");
            let html_head = format!(
                "--{inner}\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            );
            let rest = size.saturating_sub(m.len() + html_head.len() + closing.len());
            let goal = m.len() + rest / 3;
            fill_qp_text(rng, &mut m, goal, n, false);
            m.extend_from_slice(html_head.as_bytes());
            let goal = size.saturating_sub(closing.len());
            fill_qp_text(rng, &mut m, goal, n, true);
            m.extend_from_slice(closing.as_bytes());
        }
        // One quoted-printable text part.
        _ => {
            content_type = "text/plain";
            m.extend_from_slice(
                b"Content-Type: text/plain; charset=utf-8\r\n\
                  Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            );
            fill_qp_text(rng, &mut m, size, n, false);
        }
    }
    // Whatever the parts left (a few bytes at most), in lines after the last one.
    pad(&mut m, size);
    let entry = MessageEntry {
        size: m.len() as u64,
        sha256: hex::encode(Sha256::digest(&m)),
        content_type: content_type.to_string(),
        attachments,
    };
    (m, entry)
}

impl Mix {
    /// The default mix at `target_bytes`.
    pub fn new(target_bytes: u64) -> Self {
        Mix {
            target_bytes,
            ..Mix::default()
        }
    }

    /// A message size: an octave between the smallest and largest size picked evenly, then a
    /// size within it (integers only, so every platform draws the same).
    fn message_size(&self, rng: &mut Rng) -> usize {
        let lo = self.min_message.max(1024) + 1;
        let hi = self.max_message.max(lo);
        let mut octaves = 0;
        while (lo << octaves) < hi {
            octaves += 1;
        }
        loop {
            let base = lo << rng.below(octaves.max(1));
            let size = base + rng.below(base);
            if size <= hi {
                return size.max(lo);
            }
        }
    }

    /// Opens connection `n`: a mail session, or a download when other traffic is behind its
    /// share of the bytes planned so far.
    fn open(&self, rng: &mut Rng, n: usize, man: &mut Manifest, planned: &mut [u64; 2]) -> Open {
        let mut r = Rng::new(rng.next_u64());
        let other = u64::from(self.other_percent.min(95));
        let download = other > 0 && planned[1] * 100 < other * (planned[0] + planned[1]);
        let port = between(&mut r, 1025, 65_000) as u16;
        let isn = (r.next_u64() as u32, r.next_u64() as u32);
        let mut steps = VecDeque::new();
        let send = |steps: &mut VecDeque<Step>, from: Direction, text: String| {
            steps.push_back(Step::Send(from, text.into_bytes()));
        };
        let (c, s) = (Direction::Client, Direction::Server);
        let mut entry = None;
        let server;
        if download {
            let tls = r.below(2) == 0;
            server =
                SocketAddr::from((Ipv4Addr::new(198, 51, 100, 80), if tls { 443 } else { 80 }));
            let size = between(&mut r, 16 << 10, 4 << 20);
            if tls {
                send(
                    &mut steps,
                    c,
                    "\u{16}\u{3}\u{1}\u{0}\u{4}\u{1}\u{0}\u{0}\u{0}".into(),
                );
            } else {
                send(
                    &mut steps,
                    c,
                    format!("GET /file/{n} HTTP/1.1\r\nHost: cdn.example.test\r\n\r\n"),
                );
            }
            steps.push_back(Step::Filler(size));
            planned[1] += payload(&steps);
            man.totals.other_flows += 1;
        } else if r.below(100) < usize::from(self.pop3_percent) {
            server = server_addr(110 + r.below(2) as u8, 110);
            let user = format!("user{n}");
            let pass = password(&mut r);
            let mut creds = Vec::new();
            send(&mut steps, s, "+OK POP3 server ready\r\n".into());
            if r.below(7) == 0 {
                let wrong = password(&mut r);
                send(&mut steps, c, format!("USER {user}\r\n"));
                send(&mut steps, s, "+OK\r\n".into());
                send(&mut steps, c, format!("PASS {wrong}\r\n"));
                send(
                    &mut steps,
                    s,
                    "-ERR [AUTH] Authentication failed.\r\n".into(),
                );
                creds.push(CredentialEntry {
                    mechanism: "USER".into(),
                    username: user.clone(),
                    password: wrong,
                    success: false,
                });
            }
            send(&mut steps, c, format!("USER {user}\r\n"));
            send(&mut steps, s, "+OK\r\n".into());
            send(&mut steps, c, format!("PASS {pass}\r\n"));
            send(&mut steps, s, "+OK Logged in.\r\n".into());
            creds.push(CredentialEntry {
                mechanism: "USER".into(),
                username: user,
                password: pass,
                success: true,
            });
            let sizes: Vec<usize> = (0..between(&mut r, 1, 4))
                .map(|_| self.message_size(&mut r))
                .collect();
            let total: usize = sizes.iter().sum();
            send(&mut steps, c, "STAT\r\n".into());
            send(&mut steps, s, format!("+OK {} {total}\r\n", sizes.len()));
            send(&mut steps, c, "LIST\r\n".into());
            let mut list = format!("+OK {} messages ({total} octets)\r\n", sizes.len());
            for (i, size) in sizes.iter().enumerate() {
                list.push_str(&format!("{} {size}\r\n", i + 1));
            }
            list.push_str(".\r\n");
            send(&mut steps, s, list);
            for (i, &size) in sizes.iter().enumerate() {
                send(&mut steps, c, format!("RETR {}\r\n", i + 1));
                steps.push_back(Step::Message { from: s, size });
                if r.below(2) == 0 {
                    send(&mut steps, c, format!("DELE {}\r\n", i + 1));
                    send(&mut steps, s, "+OK Marked to be deleted.\r\n".into());
                }
            }
            send(&mut steps, c, "QUIT\r\n".into());
            send(&mut steps, s, "+OK Logging out.\r\n".into());
            man.totals.pop3_sessions += 1;
            entry = Some(SessionEntry {
                protocol: "pop3".into(),
                client: String::new(),
                server: server.to_string(),
                credentials: creds,
                messages: Vec::new(),
            });
        } else {
            let auth = r.below(100) < usize::from(self.auth_percent);
            server = server_addr(25 + r.below(4) as u8, if auth { 587 } else { 25 });
            let mut creds = Vec::new();
            send(&mut steps, s, "220 mx.example.test ESMTP ready\r\n".into());
            send(&mut steps, c, format!("EHLO client{n}.example.test\r\n"));
            send(
                &mut steps,
                s,
                "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n\
                 250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
                    .into(),
            );
            if auth {
                let user = format!("user{n}@example.test");
                let mechanism = if r.below(2) == 0 { "PLAIN" } else { "LOGIN" };
                let mut attempts = Vec::new();
                if r.below(7) == 0 {
                    attempts.push((password(&mut r), false));
                }
                attempts.push((password(&mut r), true));
                for (pass, ok) in attempts {
                    if mechanism == "PLAIN" {
                        let blob = B64.encode(format!("\0{user}\0{pass}"));
                        send(&mut steps, c, format!("AUTH PLAIN {blob}\r\n"));
                    } else {
                        send(&mut steps, c, "AUTH LOGIN\r\n".into());
                        send(&mut steps, s, "334 VXNlcm5hbWU6\r\n".into());
                        send(&mut steps, c, format!("{}\r\n", B64.encode(&user)));
                        send(&mut steps, s, "334 UGFzc3dvcmQ6\r\n".into());
                        send(&mut steps, c, format!("{}\r\n", B64.encode(&pass)));
                    }
                    let reply = if ok {
                        "235 2.7.0 Authentication successful\r\n"
                    } else {
                        "535 5.7.8 Error: authentication failed\r\n"
                    };
                    send(&mut steps, s, reply.into());
                    creds.push(CredentialEntry {
                        mechanism: mechanism.into(),
                        username: user.clone(),
                        password: pass,
                        success: ok,
                    });
                }
            }
            for m in 0..between(&mut r, 1, 3) {
                let size = self.message_size(&mut r);
                send(
                    &mut steps,
                    c,
                    format!("MAIL FROM:<sender{n}@example.test> SIZE={size}\r\n"),
                );
                send(&mut steps, s, "250 2.1.0 Ok\r\n".into());
                send(
                    &mut steps,
                    c,
                    format!("RCPT TO:<rcpt{n}.{m}@example.test>\r\n"),
                );
                send(&mut steps, s, "250 2.1.5 Ok\r\n".into());
                send(&mut steps, c, "DATA\r\n".into());
                send(
                    &mut steps,
                    s,
                    "354 End data with <CR><LF>.<CR><LF>\r\n".into(),
                );
                steps.push_back(Step::Message { from: c, size });
                send(
                    &mut steps,
                    s,
                    format!("250 2.0.0 Ok: queued as {:010X}\r\n", r.next_u64() >> 24),
                );
            }
            send(&mut steps, c, "QUIT\r\n".into());
            send(&mut steps, s, "221 2.0.0 Bye\r\n".into());
            man.totals.smtp_sessions += 1;
            entry = Some(SessionEntry {
                protocol: "smtp".into(),
                client: String::new(),
                server: server.to_string(),
                credentials: creds,
                messages: Vec::new(),
            });
        }
        let client = client_addr(n, port);
        let payload = payload(&steps);
        let index = entry.map(|mut e| {
            e.client = client.to_string();
            planned[0] += payload;
            man.totals.sessions += 1;
            man.sessions.push(e);
            man.sessions.len() - 1
        });
        let mut flow = TcpFlow::new(client, server, isn);
        let frames: VecDeque<Vec<u8>> = flow.handshake().into_iter().collect();
        Open {
            entry: index,
            n,
            flow,
            rng: r,
            steps,
            sending: None,
            frames,
            closed: false,
            // Data, ACKs, and six frames for the handshake and the close.
            remaining: wire_estimate(payload) + 6 * (16 + 54),
            made: 0,
        }
    }

    /// Writes the capture as classic pcap (Ethernet, microseconds) to `out`.
    pub fn write<W: Write>(&self, out: W) -> io::Result<Manifest> {
        let mut w = PcapWriter::new(out, 1)?;
        let mut rng = Rng::new(self.seed);
        let mut man = Manifest {
            generator: "mailsift capture::workload::Mix".into(),
            settings: self.clone(),
            totals: Totals {
                bytes: 24,
                ..Totals::default()
            },
            sessions: Vec::new(),
        };
        let concurrent = self.concurrent.max(1);
        let mut open: Vec<Open> = Vec::with_capacity(concurrent);
        // Estimated bytes the open connections have still to write.
        let mut pending = 0u64;
        let mut planned = [0u64; 2];
        let mut n = 0usize;
        let mut t = Timestamp::from_parts(1_700_000_000, 0);
        let mut open_sum = 0u128;
        loop {
            // New connections while the ones open do not already fill the capture.
            while open.len() < concurrent && man.totals.bytes + pending < self.target_bytes {
                let o = self.open(&mut rng, n, &mut man, &mut planned);
                pending += o.remaining;
                open.push(o);
                n += 1;
            }
            if open.is_empty() {
                break;
            }
            let i = rng.below(open.len());
            for _ in 0..between(&mut rng, 1, 6) {
                let Some(frame) = open[i].next_frame(&mut man.sessions) else {
                    pending -= open[i].remaining;
                    open.swap_remove(i);
                    break;
                };
                w.packet(t, &frame, frame.len() as u32)?;
                let cost = 16 + frame.len() as u64;
                let counted = cost.min(open[i].remaining);
                open[i].remaining -= counted;
                pending -= counted;
                man.totals.bytes += cost;
                man.totals.packets += 1;
                open_sum += open.len() as u128;
                man.totals.max_open = man.totals.max_open.max(open.len() as u64);
                // A 1 Gbit/s link: 8 ns a byte, and at least a microsecond between packets.
                t = Timestamp(t.0 + 1_000 + 8 * frame.len() as i64);
            }
        }
        w.finish()?;
        let tot = &mut man.totals;
        tot.mean_open = if tot.packets == 0 {
            0.0
        } else {
            (open_sum as f64 / tot.packets as f64 * 10.0).round() / 10.0
        };
        for s in &man.sessions {
            tot.credentials += s.credentials.len() as u64;
            tot.failed_credentials += s.credentials.iter().filter(|c| !c.success).count() as u64;
            tot.messages += s.messages.len() as u64;
            for m in &s.messages {
                tot.message_bytes += m.size;
                tot.attachments += m.attachments.len() as u64;
                tot.attachment_bytes += m.attachments.iter().map(|a| a.size).sum::<u64>();
            }
        }
        Ok(man)
    }

    /// The capture as bytes in memory, and its manifest.
    pub fn to_bytes(&self) -> (Vec<u8>, Manifest) {
        let mut out = Vec::with_capacity(self.target_bytes as usize + (1 << 20));
        // Writing to a Vec cannot fail.
        let man = self.write(&mut out).expect("writing to a Vec cannot fail");
        (out, man)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::PacketSource;
    use crate::capture::file::FileSource;
    use crate::engine::{Engine, EngineConfig, SessionSink};
    use crate::session::SessionRecord;
    use std::collections::{BTreeMap, HashSet};

    fn small(concurrent: usize, seed: u64) -> Mix {
        Mix {
            target_bytes: 3 << 20,
            seed,
            concurrent,
            min_message: 2048,
            max_message: 64 << 10,
            ..Mix::default()
        }
    }

    #[test]
    fn same_settings_give_the_same_bytes_and_another_seed_other_bytes() {
        let (a, ma) = small(30, 1).to_bytes();
        let (b, mb) = small(30, 1).to_bytes();
        assert!(a == b, "two runs with the same settings differ");
        assert_eq!(ma, mb);
        let (c, _) = small(30, 2).to_bytes();
        assert!(a != c);
        assert_eq!(ma.totals.bytes, a.len() as u64);
        assert!(
            a.len() >= 3 << 20 && a.len() < (3 << 20) + (1 << 20),
            "{}",
            a.len()
        );
    }

    #[test]
    fn message_sizes_stay_in_range_and_spread_over_the_octaves() {
        let mix = Mix {
            target_bytes: 24 << 20,
            concurrent: 50,
            ..Mix::default()
        };
        let (_, man) = mix.to_bytes();
        let sizes: Vec<u64> = man
            .sessions
            .iter()
            .flat_map(|s| s.messages.iter().map(|m| m.size))
            .collect();
        assert!(sizes.len() > 40, "{}", sizes.len());
        for &s in &sizes {
            assert!((2048..=2 << 20).contains(&s), "message of {s} bytes");
        }
        // About log-uniform: small and large messages both common.
        let under_16k = sizes.iter().filter(|&&s| s < 16 << 10).count();
        let over_256k = sizes.iter().filter(|&&s| s > 256 << 10).count();
        assert!(
            under_16k * 6 > sizes.len(),
            "{under_16k} of {}",
            sizes.len()
        );
        assert!(
            over_256k * 6 > sizes.len(),
            "{over_256k} of {}",
            sizes.len()
        );
        let with_attachments = man
            .sessions
            .iter()
            .flat_map(|s| &s.messages)
            .filter(|m| !m.attachments.is_empty())
            .count();
        assert!(with_attachments * 10 >= sizes.len() * 6);
    }

    #[test]
    fn that_many_connections_are_open_at_once_on_the_wire() {
        let concurrent = 40;
        let (bytes, man) = small(concurrent, 5).to_bytes();
        assert_eq!(man.totals.max_open, concurrent as u64);
        // Count from the packets themselves: open from the SYN to the second FIN.
        let mut src = FileSource::from_reader("mix.pcap", Box::new(std::io::Cursor::new(bytes)))
            .expect("a pcap");
        let mut open: HashSet<(u32, u16)> = HashSet::new();
        let mut fins: BTreeMap<(u32, u16), u8> = BTreeMap::new();
        let mut data_flows_in_window: Vec<HashSet<(u32, u16)>> = vec![HashSet::new()];
        let (mut most, mut packets) = (0, 0);
        while let Some(p) = src.next_packet().expect("readable") {
            let s = etherparse::SlicedPacket::from_ethernet(p.data).expect("a frame");
            let Some(etherparse::NetSlice::Ipv4(ip)) = &s.net else {
                panic!("not IPv4")
            };
            let Some(etherparse::TransportSlice::Tcp(tcp)) = &s.transport else {
                panic!("not TCP")
            };
            let (src_ip, dst_ip) = (ip.header().source(), ip.header().destination());
            // Clients are 10.x, servers 192.0.2.x.
            let key = if src_ip[0] == 10 {
                (u32::from_be_bytes(src_ip), tcp.source_port())
            } else {
                (u32::from_be_bytes(dst_ip), tcp.destination_port())
            };
            if tcp.syn() && !tcp.ack() {
                open.insert(key);
            }
            if tcp.fin() {
                let n = fins.entry(key).or_default();
                *n += 1;
                if *n == 2 {
                    open.remove(&key);
                }
            }
            if !tcp.payload().is_empty() {
                data_flows_in_window.last_mut().unwrap().insert(key);
            }
            packets += 1;
            if packets % 2000 == 0 {
                data_flows_in_window.push(HashSet::new());
            }
            most = most.max(open.len());
        }
        assert!(open.is_empty(), "{} never closed", open.len());
        assert!(most > concurrent * 9 / 10 && most <= concurrent, "{most}");
        // Interleaved: within 2000 packets, data of most open sessions.
        let busiest = data_flows_in_window.iter().map(HashSet::len).max().unwrap();
        assert!(busiest >= concurrent * 3 / 4, "{busiest}");
    }

    /// Every session, message, attachment and credential of the manifest, as mailsift finds it.
    #[test]
    fn mailsift_finds_everything_the_manifest_lists() {
        struct Keep(Vec<SessionRecord>);
        impl SessionSink for Keep {
            fn session(&mut self, rec: SessionRecord) {
                self.0.push(rec);
            }
        }
        let mut mix = small(25, 9);
        mix.other_percent = 30;
        let (bytes, man) = mix.to_bytes();
        assert!(man.totals.other_flows > 0);
        assert!(man.totals.credentials > 0);
        let mut src = FileSource::from_reader("mix.pcap", Box::new(std::io::Cursor::new(bytes)))
            .expect("a pcap");
        let mut engine = Engine::new(EngineConfig::default());
        let mut sink = Keep(Vec::new());
        engine.run_source(&mut src, &mut None, &mut sink);
        engine.finish(&mut sink);
        let mut got: BTreeMap<String, &SessionRecord> = BTreeMap::new();
        for r in &sink.0 {
            got.insert(format!("{}:{}", r.client.ip, r.client.port), r);
        }
        assert_eq!(sink.0.len(), man.sessions.len());
        for want in &man.sessions {
            let rec = got.get(&want.client).expect("session found");
            assert_eq!(rec.protocol.as_str(), want.protocol);
            assert!(rec.anomalies.is_empty(), "{:?}", rec.anomalies);
            let creds: Vec<_> = rec
                .credentials
                .iter()
                .map(|c| {
                    (
                        c.mechanism.clone(),
                        c.username.clone().unwrap_or_default(),
                        c.password.clone().unwrap_or_default(),
                        c.success == Some(true),
                    )
                })
                .collect();
            let wanted: Vec<_> = want
                .credentials
                .iter()
                .map(|c| {
                    (
                        c.mechanism.clone(),
                        c.username.clone(),
                        c.password.clone(),
                        c.success,
                    )
                })
                .collect();
            assert_eq!(creds, wanted);
            assert_eq!(rec.messages.len(), want.messages.len());
            for (m, w) in rec.messages.iter().zip(&want.messages) {
                assert_eq!((m.size, &m.sha256), (w.size, &w.sha256));
                assert!(m.complete);
                let mime = m.mime.as_ref().expect("decoded");
                let atts: Vec<_> = mime
                    .attachments
                    .iter()
                    .map(|a| {
                        (
                            a.filename.clone().unwrap_or_default(),
                            a.size,
                            a.sha256.clone(),
                        )
                    })
                    .collect();
                let wanted: Vec<_> = w
                    .attachments
                    .iter()
                    .map(|a| (a.filename.clone(), a.size, a.sha256.clone()))
                    .collect();
                assert_eq!(atts, wanted);
            }
        }
    }
}
