//! Session records: what the dissectors build and every output reads (the JSON contract).
//!
//! Field names here are a public interface: tools read them. Add fields; never rename them.

use crate::time::Timestamp;
use serde::Serialize;
use std::net::IpAddr;

pub use crate::direction::{Direction, PerDirection};

/// The application protocol spoken on a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// RFC 5321 SMTP (also submission on 587 and SMTPS on 465).
    Smtp,
    /// RFC 1939 POP3 (also POP3S on 995).
    Pop3,
}

impl Protocol {
    /// Lower-case name as used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Pop3 => "pop3",
        }
    }
}

/// One end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Endpoint {
    /// IPv4 or IPv6 address; IPv6 is written in canonical (RFC 5952) form.
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{}:{}", ip, self.port),
            IpAddr::V6(ip) => write!(f, "[{}]:{}", ip, self.port),
        }
    }
}

/// How a session ended, as far as the capture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Still open when the capture ended.
    #[default]
    Open,
    /// Both sides sent FIN.
    Closed,
    /// Only one side sent FIN before the capture or the flow ended.
    HalfClosed,
    /// A side sent RST.
    Reset,
    /// No packet for longer than the idle timeout (capture time).
    TimedOut,
    /// Dropped early because the flow table was full.
    Evicted,
}

impl SessionState {
    /// Lower-case name as used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Open => "open",
            SessionState::Closed => "closed",
            SessionState::HalfClosed => "half_closed",
            SessionState::Reset => "reset",
            SessionState::TimedOut => "timed_out",
            SessionState::Evicted => "evicted",
        }
    }
}

/// How TLS was entered on a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Upgraded in band by STARTTLS (SMTP) or STLS (POP3).
    Starttls,
    /// TLS from the first byte (ports 465 and 995).
    Implicit,
}

/// Clear text where TLS was expected: the session was meant to be protected and was not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CleartextInsteadOfTls {
    /// How TLS was to be entered.
    pub mode: TlsMode,
    /// Capture time of the first clear-text byte (of either side).
    pub ts: Timestamp,
    /// The client sent clear text where TLS was expected.
    pub client: bool,
    /// The server did.
    pub server: bool,
}

/// What is known about the TLS layer of a session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsInfo {
    /// How TLS was entered.
    pub mode: TlsMode,
    /// When the encrypted part began (the first TLS byte, or the upgrade reply).
    pub started: Timestamp,
    /// Encrypted bytes seen after the upgrade, per direction.
    pub encrypted_bytes: PerDirection<u64>,
    /// Handshake metadata (ClientHello, ServerHello, certificate), as far as it was seen.
    #[serde(flatten)]
    pub handshake: crate::proto::tls::summary::TlsHandshake,
    /// True when a key log opened records of this session and their plaintext was dissected.
    pub decrypted: bool,
    /// What decryption achieved, when a key log was given (null otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decryption: Option<crate::proto::tls::summary::TlsDecryption>,
}

/// One thing that happened on a session, in stream order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Capture time of the packet that completed this event.
    pub ts: Timestamp,
    /// Which side sent it.
    pub from: Direction,
    /// What it was.
    #[serde(flatten)]
    pub kind: EventKind,
    /// True for an event read from decrypted TLS records (omitted when false).
    #[serde(skip_serializing_if = "is_false")]
    pub tls: bool,
}

/// The kinds of session events; `type` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A raw text line kept verbatim (transcript mode, or bytes no parser claimed).
    Line {
        /// The line without its terminator, lossily decoded as UTF-8.
        text: String,
    },
    /// A client command.
    Command {
        /// The command verb, upper-cased (e.g. `MAIL`, `RETR`).
        verb: String,
        /// Everything after the verb, verbatim, or null.
        arg: Option<String>,
    },
    /// A complete SMTP reply (all lines of a multi-line reply).
    Reply {
        /// The three-digit reply code.
        code: u16,
        /// The RFC 3463 enhanced status code of the first line, if any (e.g. `5.7.8`).
        enhanced: Option<String>,
        /// The text of each line after the code and separator.
        lines: Vec<String>,
    },
    /// A POP3 status line (`+OK` / `-ERR`).
    Status {
        /// True for `+OK`, false for `-ERR`.
        ok: bool,
        /// The text after the status indicator.
        text: String,
        /// RFC 2449 response code in brackets, e.g. `IN-USE` or `SYS/TEMP`.
        resp_code: Option<String>,
        /// Number of lines in the multi-line body that followed, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        body_lines: Option<u64>,
    },
    /// A SASL exchange line (a challenge or a response), decoded where it is text.
    AuthData {
        /// The line as sent (base64 or `*`).
        raw: String,
    },
    /// Message content carried by DATA, BDAT, RETR or TOP.
    MessageData {
        /// Index into the session's `messages`.
        message: usize,
        /// Bytes of message content in this event.
        bytes: u64,
    },
    /// The session switched to TLS; nothing after this is dissected as text.
    TlsStart {
        /// How TLS was entered.
        mode: TlsMode,
    },
    /// Bytes that were never captured.
    Gap {
        /// How many bytes are missing.
        bytes: u64,
    },
}

impl EventKind {
    /// Heap bytes the event holds beyond its own size, for the memory bounds.
    pub fn heap_bytes(&self) -> usize {
        fn opt(s: &Option<String>) -> usize {
            s.as_ref().map_or(0, String::capacity)
        }
        match self {
            EventKind::Line { text } => text.capacity(),
            EventKind::Command { verb, arg } => verb.capacity() + opt(arg),
            EventKind::Reply {
                enhanced, lines, ..
            } => {
                opt(enhanced)
                    + lines.capacity() * std::mem::size_of::<String>()
                    + lines.iter().map(String::capacity).sum::<usize>()
            }
            EventKind::Status {
                text, resp_code, ..
            } => text.capacity() + opt(resp_code),
            EventKind::AuthData { raw } => raw.capacity(),
            EventKind::MessageData { .. } | EventKind::TlsStart { .. } | EventKind::Gap { .. } => 0,
        }
    }
}

/// Mechanism-specific fields of a credential, all optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CredentialDetails {
    /// SASL authorization identity (PLAIN), when different from the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authzid: Option<String>,
    /// Server challenge (CRAM-MD5, DIGEST-MD5 nonce, APOP timestamp, NTLM server challenge hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    /// Client response to the challenge (CRAM-MD5 / APOP digest hex, DIGEST-MD5 response).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// Bearer token (XOAUTH2, OAUTHBEARER).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Realm or NTLM domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// NTLM workstation name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workstation: Option<String>,
    /// NTLM version of the response: `v1`, `v1-ess` or `v2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ntlm_version: Option<String>,
    /// NTLM NT response (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nt_response: Option<String>,
    /// NTLM LM response (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lm_response: Option<String>,
    /// DIGEST-MD5 client nonce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnonce: Option<String>,
    /// DIGEST-MD5 nonce count (8 hex digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nc: Option<String>,
    /// DIGEST-MD5 quality of protection chosen by the client (`auth`, `auth-int`, `auth-conf`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qop: Option<String>,
    /// DIGEST-MD5 digest-uri (e.g. `smtp/mail.example.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_uri: Option<String>,
    /// The exchange was cancelled by the client with `*`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
}

/// One authentication attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Credential {
    /// When the attempt began.
    pub ts: Timestamp,
    /// `USER` (POP3 USER/PASS), `APOP`, the SASL mechanism name (`PLAIN`, `LOGIN`, `CRAM-MD5`,
    /// ...), or a proxy login of the session's tunnel: `SOCKS5` (RFC 1929), `HTTP-BASIC`.
    pub mechanism: String,
    /// The user name, if it could be recovered.
    pub username: Option<String>,
    /// The cleartext password, if one was sent.
    pub password: Option<String>,
    /// True on a success reply, false on a failure reply, null when no reply was seen.
    pub success: Option<bool>,
    /// Whether the channel was encrypted when the secret was sent (false: readable on the wire).
    pub encrypted: bool,
    /// Mechanism-specific fields.
    #[serde(flatten)]
    pub details: CredentialDetails,
}

impl Credential {
    /// True for a login to a proxy that opened the session's tunnel (`SOCKS5`, `HTTP-BASIC`),
    /// not to the mail server.
    pub fn is_proxy_login(&self) -> bool {
        crate::proto::tunnel::PROXY_MECHANISMS.contains(&self.mechanism.as_str())
    }
}

/// How a message travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageSource {
    /// SMTP DATA.
    Data,
    /// SMTP BDAT chunks.
    Bdat,
    /// POP3 RETR.
    Retr,
    /// POP3 TOP (headers and the first lines only).
    Top,
}

/// One message carried by a session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageRecord {
    /// Position in the session's message list.
    pub index: usize,
    /// How the message travelled.
    pub source: MessageSource,
    /// When its first content byte was seen.
    pub first_seen: Timestamp,
    /// When its last content byte was seen.
    pub last_seen: Timestamp,
    /// SMTP envelope sender (the MAIL FROM path, without angle brackets; empty for `<>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_from: Option<String>,
    /// SMTP envelope recipients accepted or attempted (RCPT TO paths).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcpt_to: Option<Vec<String>>,
    /// POP3 message number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    /// POP3 unique id from UIDL, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uidl: Option<String>,
    /// Size in bytes of the message content captured (after dot-unstuffing).
    pub size: u64,
    /// Bytes of the message the capture missed (gaps inside it).
    #[serde(skip_serializing_if = "is_zero")]
    pub missing_bytes: u64,
    /// SHA-256 of the message content, hex.
    pub sha256: String,
    /// False when a gap, TOP, a limit or the end of the capture cut the message short.
    pub complete: bool,
    /// The server's verdict on an SMTP message: the reply to its end of data (or BDAT LAST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<MessageReply>,
    /// Decoded headers and MIME structure.
    #[serde(flatten)]
    pub mime: Option<crate::mail::MimeSummary>,
}

/// The server's reply that accepted or refused an SMTP message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageReply {
    /// The reply code (250 delivered or queued, 4xx deferred, 5xx refused).
    pub code: u16,
    /// The reply text, lines joined by a space (the enhanced status code included).
    pub text: String,
}

/// Severity of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// A weakness.
    Low,
    /// A weakness an attacker can use with effort.
    Medium,
    /// Readable secrets or an easy compromise.
    High,
}

/// A security observation about a session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Stable rule identifier, e.g. `cleartext-password`.
    pub rule: String,
    /// How serious it is.
    pub severity: Severity,
    /// One-line explanation for a human.
    pub message: String,
    /// When it was observed.
    pub ts: Timestamp,
    /// The facts it is about, for machines (which message and attachment, which logins);
    /// left out when the message says all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Box<FindingDetails>>,
}

/// The facts behind a finding; each field is left out when it does not apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FindingDetails {
    /// `index` of the message concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_index: Option<usize>,
    /// Section number of the attachment concerned (its part's `path`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment_path: Option<String>,
    /// The attachment's file name as decoded (unescaped; the message quotes it safely).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The file name's real extension, lower case, without bidirectional controls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// What the attachment's content is, from its first bytes (the part's `content_kind`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_kind: Option<crate::mail::ContentKind>,
    /// The successful login the finding is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginAttempt>,
    /// Failed logins before it, earliest first (at most ten).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<LoginAttempt>,
    /// Failed logins before it not listed in `failures`.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_failures: u64,
}

/// One login attempt named by a finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoginAttempt {
    /// When the attempt was made.
    pub ts: Timestamp,
    /// Id of its session; left out in a session's own findings (it is that session, whose id
    /// depends on where the capture starts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
    /// The user name given, if any.
    pub user: Option<String>,
    /// The mechanism (`USER`, `PLAIN`, `LOGIN`, ...), as in credentials.
    pub mechanism: String,
}

/// Something unusual or damaged in the traffic, reported instead of failing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    /// When it was first seen.
    pub ts: Timestamp,
    /// The side it concerns, if one.
    pub from: Option<Direction>,
    /// Stable machine-readable kind, e.g. `line_too_long`.
    pub kind: String,
    /// Human-readable detail.
    pub detail: String,
    /// How many times it occurred on this session (repeats are folded).
    pub count: u64,
}

/// Raw bytes a dissector hands to the output side (message extraction), outside the JSON record.
#[derive(Debug, Clone)]
pub struct MessageBlob {
    /// Index of the message in the session's `messages`.
    pub message: usize,
    /// The spool files holding the message as captured and its decoded attachments.
    pub files: crate::mail::SpooledMessage,
}

/// How much of a message the session records (see [`SessionRecord::admit_message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAdmission {
    /// A full record, MIME structure decoded.
    Decoded,
    /// Envelope, size and hash, without the MIME structure.
    HashOnly,
    /// No record; counted in `messages_dropped`.
    Dropped,
}

/// Budget charged for any message record: the record and its envelope.
const MESSAGE_RECORD_BASE_COST: usize = 1024;

/// Most of a message's size charged for its decoded record (headers, excerpts, parts).
const MESSAGE_RECORD_MAX_CONTENT_COST: usize = 48 << 10;

/// Cap on anomalies of distinct kinds per session, so a hostile flow cannot grow the list.
pub const MAX_ANOMALY_KINDS: usize = 256;

/// Everything mailsift knows about one TCP session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRecord {
    /// Stable id: the number (1-based, across all inputs) of the session's first packet.
    pub id: u64,
    /// Application protocol, decided by the server port.
    pub protocol: Protocol,
    /// Connection initiator.
    pub client: Endpoint,
    /// Side on the mail port.
    pub server: Endpoint,
    /// Time of the first packet.
    pub first_seen: Timestamp,
    /// Time of the last packet.
    pub last_seen: Timestamp,
    /// How the session ended.
    pub state: SessionState,
    /// Packets per direction.
    pub packets: PerDirection<u64>,
    /// TCP payload bytes delivered per direction (after reassembly, without duplicates).
    pub bytes: PerDirection<u64>,
    /// Bytes never captured, per direction.
    pub missing_bytes: PerDirection<u64>,
    /// Whether the handshake was seen (false: picked up mid-stream).
    pub handshake_seen: bool,
    /// True when the protocol was recognised by content on a port no mapping names (omitted
    /// when false).
    #[serde(skip_serializing_if = "is_false")]
    pub detected_by_content: bool,
    /// The proxy handshake (HTTP CONNECT, SOCKS4/4a/5) the session opened with, if any
    /// (omitted otherwise); the mail dialogue recorded is the one inside the tunnel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<Box<crate::proto::tunnel::TunnelInfo>>,
    /// TLS state, or null when the session stayed in clear text.
    pub tls: Option<Box<TlsInfo>>,
    /// Clear text where TLS was expected (after an accepted STARTTLS/STLS, or on an
    /// implicit-TLS port); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleartext_instead_of_tls: Option<CleartextInsteadOfTls>,
    /// SMTP summary (helo, capabilities, transaction state), on SMTP sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<Box<crate::proto::smtp::SmtpSummary>>,
    /// POP3 summary (user, mailbox view), on POP3 sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pop3: Option<Box<crate::proto::pop3::Pop3Summary>>,
    /// Commands, replies and other events in stream order.
    pub events: Vec<Event>,
    /// Authentication attempts.
    pub credentials: Vec<Credential>,
    /// Messages carried.
    pub messages: Vec<MessageRecord>,
    /// Security findings.
    pub findings: Vec<Finding>,
    /// Damage and oddities, folded by kind.
    pub anomalies: Vec<Anomaly>,
    /// Events dropped after the per-session event limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub events_dropped: u64,
    /// Messages not recorded past the per-session limit or the run's retention budget.
    #[serde(skip_serializing_if = "is_zero")]
    pub messages_dropped: u64,
    /// Message bytes waiting for the extraction output; drained by the engine.
    #[serde(skip)]
    pub blobs: Vec<MessageBlob>,
    /// Most events kept; later ones are counted in `events_dropped`.
    #[serde(skip)]
    pub max_events: usize,
    /// Messages being decoded on a worker; resolved before the session is reported.
    #[serde(skip)]
    pub deferred: Vec<crate::mail::DeferredMessage>,
    /// Whether messages, parts and attachments are hashed (see [`crate::limits::Limits::content_hashes`]).
    #[serde(skip)]
    pub content_hashes: bool,
    /// Most bytes of events kept; later events are counted in `events_dropped`.
    #[serde(skip)]
    pub max_event_bytes: usize,
    /// Bytes of the events kept, as estimated by [`EventKind::heap_bytes`].
    #[serde(skip)]
    pub event_bytes: usize,
    /// Most messages recorded; later ones are counted in `messages_dropped`.
    #[serde(skip)]
    pub max_messages: usize,
    /// Bytes reserved against `budget` (events and message records) until the session ends.
    #[serde(skip)]
    pub reserved_bytes: usize,
    /// The run's retention budget; `event_bytes` are reserved against it until the session ends.
    #[serde(skip)]
    pub budget: crate::limits::RetentionBudget,
    /// Set while a TLS layer hands decrypted bytes to the dissector inside it, so the events
    /// that dissector records say they came from inside TLS.
    #[serde(skip)]
    pub inside_tls: bool,
    /// Messages admitted so far (recorded now or later), which numbers them in the order they
    /// ended, across the layers of a session (clear text, then inside TLS).
    #[serde(skip)]
    pub messages_admitted: usize,
    /// Set when content detection found the flow is not mail: it is not reported.
    #[serde(skip)]
    pub not_mail: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl SessionRecord {
    /// An empty record for a new session.
    pub fn new(
        id: u64,
        protocol: Protocol,
        client: Endpoint,
        server: Endpoint,
        ts: Timestamp,
    ) -> Self {
        SessionRecord {
            id,
            protocol,
            client,
            server,
            first_seen: ts,
            last_seen: ts,
            state: SessionState::Open,
            packets: PerDirection::default(),
            bytes: PerDirection::default(),
            missing_bytes: PerDirection::default(),
            handshake_seen: false,
            tls: None,
            cleartext_instead_of_tls: None,
            smtp: None,
            pop3: None,
            events: Vec::new(),
            credentials: Vec::new(),
            messages: Vec::new(),
            findings: Vec::new(),
            anomalies: Vec::new(),
            events_dropped: 0,
            messages_dropped: 0,
            blobs: Vec::new(),
            max_events: usize::MAX,
            deferred: Vec::new(),
            content_hashes: true,
            max_event_bytes: usize::MAX,
            event_bytes: 0,
            max_messages: usize::MAX,
            reserved_bytes: 0,
            budget: crate::limits::RetentionBudget::unlimited(),
            inside_tls: false,
            messages_admitted: 0,
            not_mail: false,
            detected_by_content: false,
            tunnel: None,
        }
    }

    /// Appends an event, or counts it as dropped past the event limits (number and bytes per
    /// session, and the run's retention budget).
    pub fn push_event(&mut self, ts: Timestamp, from: Direction, kind: EventKind) {
        let cost = std::mem::size_of::<Event>() + kind.heap_bytes();
        let refusal = if self.events.len() >= self.max_events {
            Some((
                "event_limit",
                format!("more than {} events", self.max_events),
            ))
        } else if self.event_bytes.saturating_add(cost) > self.max_event_bytes {
            Some((
                "event_limit",
                format!("more than {} bytes of events", self.max_event_bytes),
            ))
        } else if !self.budget.try_reserve(cost) {
            let limit = self.budget.limit().unwrap_or(0);
            Some((
                "memory_budget",
                format!(
                    "the {limit}-byte budget for what open sessions keep (events, message records, held bytes) was spent"
                ),
            ))
        } else {
            None
        };
        if let Some((kind, why)) = refusal {
            if self.events_dropped == 0 {
                self.anomaly(
                    ts,
                    Some(from),
                    kind,
                    format!("{why}; later events are counted, not kept"),
                );
            }
            self.events_dropped += 1;
            return;
        }
        self.event_bytes += cost;
        self.reserved_bytes += cost;
        self.events.push(Event {
            ts,
            from,
            kind,
            tls: self.inside_tls,
        });
    }

    /// Lets go of the events past the first `keep` bytes of them, and keeps no more from now
    /// on: the run's retention budget ran short and this session held more than others.
    /// Returns the bytes given back to the budget.
    pub fn yield_events(&mut self, keep: usize, ts: Timestamp) -> usize {
        if self.event_bytes <= keep {
            return 0;
        }
        let mut kept_bytes = 0;
        let mut kept = 0;
        for e in &self.events {
            let cost = std::mem::size_of::<Event>() + e.kind.heap_bytes();
            if kept_bytes + cost > keep {
                break;
            }
            kept_bytes += cost;
            kept += 1;
        }
        let freed = self.event_bytes - kept_bytes;
        self.events_dropped += (self.events.len() - kept) as u64;
        self.events.truncate(kept);
        self.events.shrink_to_fit();
        self.event_bytes = kept_bytes;
        self.max_event_bytes = kept_bytes;
        self.reserved_bytes = self.reserved_bytes.saturating_sub(freed);
        self.budget.release(freed);
        self.anomaly(
            ts,
            None,
            "memory_budget",
            format!(
                "the run's budget for what open sessions keep ran short and this session held \
                 more events than most; events past the first {kept_bytes} bytes are counted, \
                 not kept"
            ),
        );
        freed
    }

    /// Whether a message of `content_bytes` gets a record, and how much of one: within the
    /// per-session limit and the run's retention budget. A message the budget cannot hold
    /// decoded is recorded with its size and hash only; past the limit, or when not even
    /// that fits, it is counted in `messages_dropped`. Refusals are reported.
    pub fn admit_message(
        &mut self,
        ts: Timestamp,
        from: Direction,
        content_bytes: u64,
    ) -> MessageAdmission {
        // A decoded record holds the headers, body excerpts and part list: about the size of
        // a small message, never more than the excerpt and header bounds allow.
        let decoded_cost = MESSAGE_RECORD_BASE_COST
            + usize::try_from(content_bytes).map_or(MESSAGE_RECORD_MAX_CONTENT_COST, |n| {
                n.min(MESSAGE_RECORD_MAX_CONTENT_COST)
            });
        let budget_note = |limit: Option<usize>| {
            format!(
                "the {}-byte budget for what open sessions keep (events, message records, held bytes) was spent",
                limit.unwrap_or(0)
            )
        };
        if self.messages.len() >= self.max_messages {
            let why = format!(
                "more than {} messages; later ones are counted, not recorded",
                self.max_messages
            );
            self.anomaly(ts, Some(from), "message_limit", why);
        } else if self.budget.try_reserve(decoded_cost) {
            self.reserved_bytes += decoded_cost;
            self.messages_admitted += 1;
            return MessageAdmission::Decoded;
        } else if self.budget.try_reserve(MESSAGE_RECORD_BASE_COST) {
            self.reserved_bytes += MESSAGE_RECORD_BASE_COST;
            self.messages_admitted += 1;
            let why = budget_note(self.budget.limit());
            self.anomaly(
                ts,
                Some(from),
                "memory_budget",
                format!("{why}; messages are recorded with size and hash only"),
            );
            return MessageAdmission::HashOnly;
        } else {
            let why = budget_note(self.budget.limit());
            self.anomaly(
                ts,
                Some(from),
                "memory_budget",
                format!("{why}; later messages are counted, not recorded"),
            );
        }
        self.messages_dropped += 1;
        MessageAdmission::Dropped
    }

    /// Returns the bytes this record reserved against the run's budget: the session is
    /// finished, and its record leaves the engine's care.
    pub fn release_retained(&mut self) {
        self.budget
            .release(std::mem::take(&mut self.reserved_bytes));
    }

    /// Records an anomaly, folding repeats of the same kind and side into a count.
    pub fn anomaly(
        &mut self,
        ts: Timestamp,
        from: Option<Direction>,
        kind: &str,
        detail: impl Into<String>,
    ) {
        if let Some(a) = self
            .anomalies
            .iter_mut()
            .find(|a| a.kind == kind && a.from == from)
        {
            a.count += 1;
            return;
        }
        if self.anomalies.len() >= MAX_ANOMALY_KINDS {
            return;
        }
        self.anomalies.push(Anomaly {
            ts,
            from,
            kind: kind.to_string(),
            detail: detail.into(),
            count: 1,
        });
    }

    /// Whether an anomaly of this kind was recorded.
    pub fn has_anomaly(&self, kind: &str) -> bool {
        self.anomalies.iter().any(|a| a.kind == kind)
    }

    /// Whether the client's bytes are encrypted as of now (TLS started and the client did
    /// not go on in clear text).
    pub fn in_tls(&self) -> bool {
        self.tls.is_some() && !self.cleartext_instead_of_tls.is_some_and(|c| c.client)
    }

    /// Notes that `dir` sent clear text at `ts` where TLS (entered by `mode`) was expected.
    pub fn note_cleartext_instead_of_tls(&mut self, mode: TlsMode, dir: Direction, ts: Timestamp) {
        let c = self
            .cleartext_instead_of_tls
            .get_or_insert(CleartextInsteadOfTls {
                mode,
                ts,
                client: false,
                server: false,
            });
        // The earliest side's time, so the record does not depend on interleaving.
        c.ts = c.ts.min(ts);
        match dir {
            Direction::Client => c.client = true,
            Direction::Server => c.server = true,
        }
    }
}

/// Indices of `events` in presentation order: each side's events keep their stream order (the
/// order the dissector produced them), and the two sides are interleaved by capture time.
///
/// Dissectors may parse one side ahead of the other, so the sides need merging; but a plain
/// sort by time would also reorder one side's own events whenever capture times run backwards
/// (a capture merged from several taps, or data held for reassembly and delivered with its
/// own earlier time), showing e.g. `RCPT` before `MAIL`. Ties (same packet time on both sides,
/// common on loopback) go to the client, so the order never depends on which direction the
/// capture delivered first.
pub fn presentation_order(events: &[Event]) -> Vec<usize> {
    let side = |from: Direction| {
        events
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.from == from)
            .peekable()
    };
    let (mut client, mut server) = (side(Direction::Client), side(Direction::Server));
    let mut order = Vec::with_capacity(events.len());
    loop {
        let take_client = match (client.peek(), server.peek()) {
            (Some((_, c)), Some((_, s))) => c.ts <= s.ts,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_client {
            client.next()
        } else {
            server.next()
        };
        order.extend(next.map(|(i, _)| i));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(ts: i64, from: Direction, verb: &str) -> Event {
        Event {
            ts: Timestamp(ts),
            from,
            kind: EventKind::Command {
                verb: verb.into(),
                arg: None,
            },
            tls: false,
        }
    }

    #[test]
    fn presentation_keeps_each_sides_stream_order_when_times_run_backwards() {
        use Direction::{Client, Server};
        // The client's RCPT arrived in a packet stamped before its MAIL (merged taps).
        let events = vec![
            command(10, Server, "S1"),
            command(30, Client, "MAIL"),
            command(20, Client, "RCPT"),
            command(25, Server, "S2"),
            command(30, Server, "S3"),
        ];
        let verbs: Vec<&str> = presentation_order(&events)
            .into_iter()
            .map(|i| match &events[i].kind {
                EventKind::Command { verb, .. } => verb.as_str(),
                _ => "",
            })
            .collect();
        // Each side's order is kept; at equal times the client goes first.
        assert_eq!(verbs, ["S1", "S2", "MAIL", "RCPT", "S3"]);
    }
    use std::net::Ipv6Addr;

    fn rec() -> SessionRecord {
        SessionRecord::new(
            7,
            Protocol::Smtp,
            Endpoint {
                ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
                port: 40000,
            },
            Endpoint {
                ip: "127.0.0.1".parse().unwrap(),
                port: 25,
            },
            Timestamp::from_parts(1, 0),
        )
    }

    #[test]
    fn message_records_draw_on_the_budget_and_return_it_at_the_end() {
        let budget = crate::limits::RetentionBudget::new(8 << 10);
        let mut r = rec();
        r.budget = budget.clone();
        let t = Timestamp(5);
        let admit = |r: &mut SessionRecord, bytes| r.admit_message(t, Direction::Client, bytes);
        assert_eq!(admit(&mut r, 100), MessageAdmission::Decoded);
        assert_eq!(budget.used(), MESSAGE_RECORD_BASE_COST + 100);
        // A huge message is charged its capped record cost, which this budget cannot hold;
        // a record without the MIME structure still fits, until it no longer does.
        assert_eq!(admit(&mut r, 1 << 30), MessageAdmission::HashOnly);
        assert!(r.has_anomaly("memory_budget"));
        let mut outcomes = Vec::new();
        for _ in 0..8 {
            outcomes.push(admit(&mut r, 1 << 30));
        }
        assert_eq!(outcomes.last(), Some(&MessageAdmission::Dropped));
        assert!(budget.used() <= 8 << 10);
        assert_eq!(
            r.messages_dropped as usize,
            outcomes
                .iter()
                .filter(|&&o| o == MessageAdmission::Dropped)
                .count()
        );
        r.release_retained();
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn anomalies_fold_by_kind_and_side() {
        let mut r = rec();
        let t = Timestamp(5);
        r.anomaly(t, Some(Direction::Client), "line_too_long", "x");
        r.anomaly(t, Some(Direction::Client), "line_too_long", "y");
        r.anomaly(t, Some(Direction::Server), "line_too_long", "z");
        assert_eq!(r.anomalies.len(), 2);
        assert_eq!(r.anomalies[0].count, 2);
        assert_eq!(r.anomalies[0].detail, "x");
    }

    #[test]
    fn event_limit_counts_and_reports() {
        let mut r = rec();
        r.max_events = 2;
        for _ in 0..5 {
            r.push_event(
                Timestamp(1),
                Direction::Client,
                EventKind::Line { text: "x".into() },
            );
        }
        assert_eq!(r.events.len(), 2);
        assert_eq!(r.events_dropped, 3);
        assert!(r.has_anomaly("event_limit"));
    }

    #[test]
    fn serialises_contract_names() {
        let mut r = rec();
        r.push_event(
            Timestamp(1),
            Direction::Server,
            EventKind::Reply {
                code: 250,
                enhanced: Some("2.0.0".into()),
                lines: vec!["ok".into()],
            },
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["client"]["ip"], "::1");
        assert_eq!(v["server"]["port"], 25);
        assert_eq!(v["protocol"], "smtp");
        assert_eq!(v["first_seen"], "1970-01-01T00:00:01.000000Z");
        assert_eq!(v["events"][0]["type"], "reply");
        assert_eq!(v["events"][0]["from"], "server");
        assert_eq!(v["events"][0]["code"], 250);
        assert!(v["tls"].is_null());
        for key in ["credentials", "messages", "findings", "anomalies"] {
            assert!(v[key].as_array().unwrap().is_empty(), "{key}");
        }
    }
}
