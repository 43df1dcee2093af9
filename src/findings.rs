//! Security findings: rules over a finished [`SessionRecord`] (applied by the engine when a
//! session ends, see [`assess`]) and run-level rules over the logins of all sessions
//! ([`LoginTracker`]: brute force, a login after failures from the same client in other
//! sessions).
//!
//! Rule ids are stable, kebab-case and part of the JSON contract; see [`Rule`]. Messages are
//! one line and never contain a secret (only user names, mechanisms and protocol facts), so
//! redaction never has to rewrite them.
//!
//! Repeated attempts are folded: one finding per rule, mechanism and user name in a session,
//! with the count in the message, so a brute-force session does not flood the list.

use crate::proto::hashcat::hashcat_line;
use crate::proto::tls::{AlertLevel, ClientHelloInfo, TlsVersion};
use crate::session::{
    Credential, Direction, Event, EventKind, Finding, FindingDetails, LoginAttempt, Protocol,
    SessionRecord, Severity, TlsMode,
};
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Failed logins from one client IP that make a `brute-force` finding, unless configured.
pub const DEFAULT_BRUTE_FORCE_THRESHOLD: u64 = 5;

/// Most client IPs whose logins the run keeps counting; later clients are counted in a
/// `login-tracking-limit` finding instead, so hostile traffic cannot grow memory without end.
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

/// Most failed-login user names remembered per client for the brute-force message.
const MAX_REMEMBERED_USERS: usize = 5;

/// Most session ids listed in one run-level finding.
const MAX_LISTED_SESSIONS: usize = 32;

/// Longest user name or other traffic text quoted in a message, in characters.
const MAX_QUOTED_CHARS: usize = 80;

/// The fatal alert level of the TLS alert protocol (RFC 8446 section 6).
const FATAL: AlertLevel = AlertLevel(2);

/// A security rule; its [`id`](Rule::id) is what findings carry in `rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// A password readable on the wire (USER/PASS, AUTH PLAIN or LOGIN outside TLS). High.
    CleartextPassword,
    /// CRAM-MD5, APOP, DIGEST-MD5 or NTLM outside TLS: the password can be cracked offline. Medium.
    CrackableChallengeResponse,
    /// An XOAUTH2 or OAUTHBEARER token readable on the wire (replayable). High.
    CleartextBearerToken,
    /// The server offered STARTTLS/STLS and the client did not use it. Medium with credentials
    /// in clear text, low otherwise.
    StarttlsNotUsed,
    /// STARTTLS/STLS answered with an error. Medium (a downgrade signal).
    StarttlsRefused,
    /// TLS began after STARTTLS/STLS but its handshake did not complete. Medium.
    StarttlsFailed,
    /// Clear text where TLS was expected: after an accepted STARTTLS/STLS, or on an
    /// implicit-TLS port. High (the session was meant to be protected and was not).
    CleartextInsteadOfTls,
    /// Authentication on an SMTP port without TLS. Medium.
    AuthWithoutTls,
    /// A TLS version below 1.2 negotiated, or the client offering nothing newer. Medium.
    WeakTlsVersion,
    /// A weak cipher suite negotiated: NULL or anonymous (high), export, RC4, DES or 3DES
    /// (medium), CBC in TLS 1.2 or older without encrypt-then-MAC (low).
    WeakTlsCipher,
    /// The server's certificate is self-signed. Low.
    SelfSignedCertificate,
    /// The server's certificate was expired (or not yet valid) at the time of the session. Low.
    ExpiredCertificate,
    /// Many failed logins from one client IP in the run. Medium.
    BruteForce,
    /// A successful login after failed ones, in one session or across sessions of one client.
    /// Medium; high when the failures reach the brute-force threshold.
    LoginAfterFailures,
    /// More clients logged in than the run keeps counting; run-level rules are incomplete. Info.
    LoginTrackingLimit,
    /// An attachment that runs when opened: an executable or script extension, or content
    /// that is a PE, ELF or Mach-O binary, a `#!` script or a Windows shortcut. High.
    ExecutableAttachment,
    /// An attachment named like a document with an executable extension after it
    /// (`invoice.pdf.exe`). High.
    DoubleExtension,
    /// An attachment name holding bidirectional control characters (U+202E and others),
    /// which can display its extension reversed or hidden. High.
    FilenameBidiControl,
    /// A macro-enabled Office document by name (medium), or an OLE2 compound file, the
    /// legacy Office format that carries VBA macros (low).
    MacroDocument,
    /// An archive or compressed file by name or content (low), or a disk image by name
    /// (medium): content a gateway may not have scanned.
    ArchiveAttachment,
}

impl Rule {
    /// Every rule, in documentation order.
    pub const ALL: [Rule; 20] = [
        Rule::CleartextPassword,
        Rule::CrackableChallengeResponse,
        Rule::CleartextBearerToken,
        Rule::StarttlsNotUsed,
        Rule::StarttlsRefused,
        Rule::StarttlsFailed,
        Rule::CleartextInsteadOfTls,
        Rule::AuthWithoutTls,
        Rule::WeakTlsVersion,
        Rule::WeakTlsCipher,
        Rule::SelfSignedCertificate,
        Rule::ExpiredCertificate,
        Rule::BruteForce,
        Rule::LoginAfterFailures,
        Rule::LoginTrackingLimit,
        Rule::ExecutableAttachment,
        Rule::DoubleExtension,
        Rule::FilenameBidiControl,
        Rule::MacroDocument,
        Rule::ArchiveAttachment,
    ];

    /// The stable kebab-case id, e.g. `cleartext-password`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::CleartextPassword => "cleartext-password",
            Rule::CrackableChallengeResponse => "crackable-challenge-response",
            Rule::CleartextBearerToken => "cleartext-bearer-token",
            Rule::StarttlsNotUsed => "starttls-not-used",
            Rule::StarttlsRefused => "starttls-refused",
            Rule::StarttlsFailed => "starttls-failed",
            Rule::CleartextInsteadOfTls => "cleartext-instead-of-tls",
            Rule::AuthWithoutTls => "auth-without-tls",
            Rule::WeakTlsVersion => "weak-tls-version",
            Rule::WeakTlsCipher => "weak-tls-cipher",
            Rule::SelfSignedCertificate => "self-signed-certificate",
            Rule::ExpiredCertificate => "expired-certificate",
            Rule::BruteForce => "brute-force",
            Rule::LoginAfterFailures => "login-after-failures",
            Rule::LoginTrackingLimit => "login-tracking-limit",
            Rule::ExecutableAttachment => "executable-attachment",
            Rule::DoubleExtension => "double-extension",
            Rule::FilenameBidiControl => "filename-bidi-control",
            Rule::MacroDocument => "macro-document",
            Rule::ArchiveAttachment => "archive-attachment",
        }
    }

    fn finding(self, severity: Severity, ts: Timestamp, message: String) -> Finding {
        Finding {
            rule: self.id().to_string(),
            severity,
            message,
            ts,
            details: None,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

// Severity lives in the session contract; its names and parsing belong with the rules.
impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
    ];

    /// Lower-case name as used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is none of `info`, `low`, `medium`, `high`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected info, low, medium or high")]
pub struct SeverityError(pub String);

impl FromStr for Severity {
    type Err = SeverityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| SeverityError(s.to_string()))
    }
}

/// Runs every session rule on `rec` and appends the findings (ordered by time).
pub fn assess(rec: &mut SessionRecord) {
    let mut found = session_findings(rec);
    rec.findings.append(&mut found);
}

/// The findings of every session rule for `rec`, ordered by time then rule id.
pub fn session_findings(rec: &SessionRecord) -> Vec<Finding> {
    let mut out = Vec::new();
    credential_exposure(rec, &mut out);
    let events = events_in_time_order(rec);
    starttls_not_used(rec, &events, &mut out);
    starttls_refused(rec, &events, &mut out);
    starttls_failed(rec, &mut out);
    cleartext_instead_of_tls(rec, &mut out);
    auth_without_tls(rec, &mut out);
    weak_tls_version(rec, &mut out);
    weak_tls_cipher(rec, &mut out);
    certificate(rec, &mut out);
    login_after_failures(rec, &mut out);
    attachments::attachment_findings(rec, &mut out);
    out.sort_by(|a, b| (a.ts, &a.rule).cmp(&(b.ts, &b.rule)));
    out
}

/// The events in presentation order without reordering the record (the engine orders it
/// after the rules ran; dissectors may have parsed one side ahead of the other).
fn events_in_time_order(rec: &SessionRecord) -> Vec<&Event> {
    crate::session::presentation_order(&rec.events)
        .into_iter()
        .filter_map(|i| rec.events.get(i))
        .collect()
}

/// Whether `c` reorders displayed text (bidirectional embeddings, overrides, isolates, marks):
/// a hostile user name could otherwise make a message or table row read differently.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Traffic text made safe for a one-line message: control and bidirectional-control
/// characters escaped, length capped.
pub fn quoted(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_QUOTED_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || is_bidi_control(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn user_shown(username: Option<&str>) -> String {
    match username {
        Some(u) if !u.is_empty() => quoted(u),
        Some(_) => "an empty user name".to_string(),
        None => "an unknown user".to_string(),
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Smtp => "SMTP",
        Protocol::Pop3 => "POP3",
    }
}

/// How a mechanism is named in messages: `USER/PASS`, `APOP`, `AUTH PLAIN`.
pub fn mechanism_label(mechanism: &str) -> String {
    match mechanism {
        "USER" => "USER/PASS".to_string(),
        "APOP" => "APOP".to_string(),
        "SOCKS5" => "SOCKS5 proxy login".to_string(),
        "HTTP-BASIC" => "HTTP proxy Basic login".to_string(),
        m => format!("AUTH {}", quoted(m)),
    }
}

/// What a credential exposes to anyone reading the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Exposure {
    Password,
    ChallengeResponse,
    BearerToken,
}

fn is_challenge_response(mechanism: &str) -> bool {
    matches!(mechanism, "CRAM-MD5" | "APOP" | "DIGEST-MD5" | "NTLM")
}

fn exposure(c: &Credential) -> Option<Exposure> {
    if c.encrypted {
        return None;
    }
    let d = &c.details;
    match c.mechanism.as_str() {
        "XOAUTH2" | "OAUTHBEARER" => d.token.as_ref().map(|_| Exposure::BearerToken),
        m if is_challenge_response(m) => {
            (d.response.is_some() || d.nt_response.is_some()).then_some(Exposure::ChallengeResponse)
        }
        _ => c.password.as_ref().map(|_| Exposure::Password),
    }
}

/// Outcomes of a group of attempts.
#[derive(Debug, Clone, Copy, Default)]
struct Outcomes {
    first: Option<Timestamp>,
    attempts: u64,
    succeeded: u64,
    failed: u64,
}

impl Outcomes {
    fn add(&mut self, c: &Credential) {
        self.first = Some(self.first.map_or(c.ts, |t| t.min(c.ts)));
        self.attempts += 1;
        match c.success {
            Some(true) => self.succeeded += 1,
            Some(false) => self.failed += 1,
            None => {}
        }
    }

    fn describe(&self) -> String {
        let unknown = self.attempts - self.succeeded - self.failed;
        if self.attempts == 1 {
            return match (self.succeeded, self.failed) {
                (1, _) => "login succeeded".to_string(),
                (_, 1) => "login failed".to_string(),
                _ => "no verdict seen".to_string(),
            };
        }
        let mut parts = Vec::new();
        for (n, what) in [
            (self.succeeded, "succeeded"),
            (self.failed, "failed"),
            (unknown, "without a verdict"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        format!("{} attempts: {}", self.attempts, parts.join(", "))
    }
}

fn credential_exposure(rec: &SessionRecord, out: &mut Vec<Finding>) {
    type Key<'a> = (Exposure, &'a str, Option<&'a str>);
    let mut groups: BTreeMap<Key<'_>, (Outcomes, &Credential)> = BTreeMap::new();
    for c in &rec.credentials {
        let Some(kind) = exposure(c) else {
            continue;
        };
        let key = (kind, c.mechanism.as_str(), c.username.as_deref());
        groups
            .entry(key)
            .or_insert_with(|| (Outcomes::default(), c))
            .0
            .add(c);
    }
    let proto = protocol_name(rec.protocol);
    for ((kind, mechanism, username), (outcomes, first)) in groups {
        let user = user_shown(username);
        let mech = mechanism_label(mechanism);
        let outcome = outcomes.describe();
        let ts = outcomes.first.unwrap_or(rec.first_seen);
        let finding = match kind {
            Exposure::Password => Rule::CleartextPassword.finding(
                Severity::High,
                ts,
                format!("password for {user} sent in clear text over {proto} {mech} ({outcome})"),
            ),
            Exposure::ChallengeResponse => {
                let hint = hashcat_line(first)
                    .map(|l| format!(", hashcat -m {}", l.mode))
                    .unwrap_or_default();
                Rule::CrackableChallengeResponse.finding(
                    Severity::Medium,
                    ts,
                    format!(
                        "{mech} challenge and response for {user} sent outside TLS over {proto}: \
                         the password can be cracked offline ({outcome}{hint})"
                    ),
                )
            }
            Exposure::BearerToken => Rule::CleartextBearerToken.finding(
                Severity::High,
                ts,
                format!(
                    "bearer token for {user} sent in clear text over {proto} {mech}: \
                     replayable until it expires ({outcome})"
                ),
            ),
        };
        out.push(finding);
    }
}

/// The upgrade command of the session's protocol.
fn starttls_verb(p: Protocol) -> &'static str {
    match p {
        Protocol::Smtp => "STARTTLS",
        Protocol::Pop3 => "STLS",
    }
}

fn is_starttls_command(e: &Event, verb: &str) -> bool {
    e.from == Direction::Client
        && matches!(&e.kind, EventKind::Command { verb: v, .. } if v.eq_ignore_ascii_case(verb))
}

/// When the server offered the upgrade: an SMTP EHLO reply listing STARTTLS, or a POP3 CAPA
/// reply listing STLS (the reply after the first CAPA, else the session start).
fn starttls_offered(rec: &SessionRecord, events: &[&Event]) -> Option<Timestamp> {
    match rec.protocol {
        Protocol::Smtp => events.iter().find_map(|e| match &e.kind {
            EventKind::Reply {
                code: 250, lines, ..
            } if e.from == Direction::Server
                && lines.iter().any(|l| {
                    l.split_ascii_whitespace()
                        .next()
                        .is_some_and(|w| w.eq_ignore_ascii_case("STARTTLS"))
                }) =>
            {
                Some(e.ts)
            }
            _ => None,
        }),
        Protocol::Pop3 => {
            let offered = rec
                .pop3
                .as_ref()
                .and_then(|p| p.capabilities.as_ref())
                .is_some_and(|c| c.stls);
            if !offered {
                return None;
            }
            let capa = events.iter().position(|e| {
                e.from == Direction::Client
                    && matches!(&e.kind, EventKind::Command { verb, .. } if verb == "CAPA")
            });
            let reply = capa.and_then(|i| {
                events
                    .get(i + 1..)?
                    .iter()
                    .find(|e| e.from == Direction::Server)
            });
            Some(reply.map_or(rec.first_seen, |e| e.ts))
        }
    }
}

fn sent_credentials_in_clear(rec: &SessionRecord) -> bool {
    rec.credentials
        .iter()
        .any(|c| !c.encrypted && !c.details.cancelled)
}

fn starttls_not_used(rec: &SessionRecord, events: &[&Event], out: &mut Vec<Finding>) {
    let verb = starttls_verb(rec.protocol);
    let used = rec.tls.is_some() || events.iter().any(|e| is_starttls_command(e, verb));
    if used {
        return;
    }
    let Some(ts) = starttls_offered(rec, events) else {
        return;
    };
    let (severity, consequence) = if sent_credentials_in_clear(rec) {
        (
            Severity::Medium,
            "credentials then went over the wire in clear text",
        )
    } else {
        (Severity::Low, "the session stayed in clear text")
    };
    out.push(Rule::StarttlsNotUsed.finding(
        severity,
        ts,
        format!("server offered {verb} but the client did not use it; {consequence}"),
    ));
}

/// A server answer as text, for messages (`454 4.7.0 TLS not available`, `-ERR busy`).
fn answer_text(e: &Event) -> Option<(bool, String)> {
    match &e.kind {
        EventKind::Reply { code, lines, .. } => {
            let first = lines.first().map(String::as_str).unwrap_or("");
            Some((*code >= 400, quoted(format!("{code} {first}").trim_end())))
        }
        EventKind::Status { ok, text, .. } => {
            let sign = if *ok { "+OK" } else { "-ERR" };
            Some((!ok, quoted(format!("{sign} {text}").trim_end())))
        }
        _ => None,
    }
}

fn starttls_refused(rec: &SessionRecord, events: &[&Event], out: &mut Vec<Finding>) {
    let verb = starttls_verb(rec.protocol);
    for (i, e) in events.iter().enumerate() {
        if !is_starttls_command(e, verb) {
            continue;
        }
        let answer = events
            .get(i + 1..)
            .unwrap_or_default()
            .iter()
            .filter(|r| r.from == Direction::Server)
            .find_map(|r| answer_text(r).map(|a| (r.ts, a)));
        if let Some((ts, (true, text))) = answer {
            let after = if sent_credentials_in_clear(rec) {
                "; credentials were sent in clear text"
            } else {
                ""
            };
            out.push(Rule::StarttlsRefused.finding(
                Severity::Medium,
                ts,
                format!(
                    "server refused {verb} with \"{text}\"; the session stayed in clear text \
                     (possible downgrade){after}"
                ),
            ));
            // One refusal tells the story; retries would only repeat it.
            return;
        }
    }
}

fn starttls_failed(rec: &SessionRecord, out: &mut Vec<Finding>) {
    let Some(tls) = rec.tls.as_ref().filter(|t| t.mode == TlsMode::Starttls) else {
        return;
    };
    if rec.cleartext_instead_of_tls.is_some() {
        // Said more precisely by cleartext-instead-of-tls.
        return;
    }
    let verb = starttls_verb(rec.protocol);
    let hs = &tls.handshake;
    let fatal = hs.alerts.iter().find(|a| a.level == FATAL);
    let whole_capture = rec.missing_bytes.client == 0 && rec.missing_bytes.server == 0;
    let why = if rec.has_anomaly("not_tls") {
        "the bytes after the upgrade were not TLS".to_string()
    } else if hs.established {
        return;
    } else if let Some(alert) = fatal {
        let name = alert.description.name().unwrap_or("unknown");
        format!(
            "the {} sent the fatal alert {name} during the handshake",
            alert.from.as_str()
        )
    } else if whole_capture {
        "the TLS handshake never completed".to_string()
    } else {
        // Bytes are missing, so an unfinished handshake may only be unseen.
        return;
    };
    out.push(Rule::StarttlsFailed.finding(
        Severity::Medium,
        tls.started,
        format!(
            "{verb} was accepted but TLS did not start: {why} (possible downgrade or interception)"
        ),
    ));
}

fn cleartext_instead_of_tls(rec: &SessionRecord, out: &mut Vec<Finding>) {
    let Some(clear) = rec.cleartext_instead_of_tls else {
        return;
    };
    let who = match (clear.client, clear.server) {
        (true, true) => "both sides",
        (true, false) => "the client",
        _ => "the server",
    };
    let exposed = if clear.client && !rec.credentials.is_empty() {
        ", credentials included"
    } else {
        ""
    };
    let message = match clear.mode {
        TlsMode::Starttls => format!(
            "{} was accepted but {who} went on in clear text: what followed was readable on the \
             wire{exposed} (a stripped or broken TLS layer)",
            starttls_verb(rec.protocol)
        ),
        TlsMode::Implicit => format!(
            "port {} is for TLS from the first byte, but {who} spoke clear text: the session was \
             not protected{exposed}",
            rec.server.port
        ),
    };
    out.push(Rule::CleartextInsteadOfTls.finding(Severity::High, clear.ts, message));
}

fn auth_without_tls(rec: &SessionRecord, out: &mut Vec<Finding>) {
    if rec.protocol != Protocol::Smtp {
        return;
    }
    let mut first: Option<Timestamp> = None;
    let mut mechanisms: Vec<&str> = Vec::new();
    for c in rec
        .credentials
        .iter()
        .filter(|c| !c.encrypted && !c.details.cancelled && !c.is_proxy_login())
    {
        first = Some(first.map_or(c.ts, |t| t.min(c.ts)));
        if !mechanisms.contains(&c.mechanism.as_str()) {
            mechanisms.push(&c.mechanism);
        }
    }
    let Some(ts) = first else {
        return;
    };
    let list = quoted(&mechanisms.join(", "));
    out.push(Rule::AuthWithoutTls.finding(
        Severity::Medium,
        ts,
        format!(
            "authentication (AUTH {list}) on SMTP port {} without TLS",
            rec.server.port
        ),
    ));
}

/// The highest version a ClientHello offered: the best of supported_versions, else its
/// legacy_version.
fn offered_max(ch: &ClientHelloInfo) -> TlsVersion {
    ch.supported_versions
        .iter()
        .copied()
        .filter(|v| v.rank().is_some())
        .max_by_key(|v| v.rank())
        .unwrap_or(ch.legacy_version)
}

fn weak_tls_version(rec: &SessionRecord, out: &mut Vec<Finding>) {
    let Some(tls) = &rec.tls else {
        return;
    };
    let hs = &tls.handshake;
    let message = match (hs.version, &hs.client_hello) {
        (Some(v), _) if v.is_below_tls12() => {
            format!("{v} negotiated; versions below TLS 1.2 are deprecated (RFC 8996)")
        }
        (None, Some(ch)) if offered_max(ch).is_below_tls12() => format!(
            "client offered at most {}; versions below TLS 1.2 are deprecated (RFC 8996)",
            offered_max(ch)
        ),
        _ => return,
    };
    out.push(Rule::WeakTlsVersion.finding(Severity::Medium, tls.started, message));
}

/// What is weak about a cipher suite, judged from its IANA name, and how much it matters.
fn cipher_weakness(name: &str, version: TlsVersion, etm: bool) -> Option<(Severity, String)> {
    let has = |part: &str| name.split('_').any(|p| p == part);
    let weakness = if has("NULL") {
        (Severity::High, "encrypts nothing (NULL cipher)".to_string())
    } else if has("anon") {
        (
            Severity::High,
            "authenticates no server (anonymous key exchange): anyone in the path can intercept"
                .to_string(),
        )
    } else if has("EXPORT") || has("EXPORT1024") {
        (Severity::Medium, "uses export-grade keys".to_string())
    } else if has("RC4") {
        (
            Severity::Medium,
            "uses RC4 (prohibited by RFC 7465)".to_string(),
        )
    } else if has("DES") || has("3DES") || has("DES40") {
        (
            Severity::Medium,
            "uses a 64-bit block cipher (DES/3DES, Sweet32)".to_string(),
        )
    } else if has("CBC") && !etm && version.rank().is_some_and(|r| r <= 4) {
        (
            Severity::Low,
            "uses CBC with MAC-then-encrypt (no encrypt_then_mac, RFC 7366): padding-oracle \
             attacks such as Lucky Thirteen apply"
                .to_string(),
        )
    } else {
        return None;
    };
    Some(weakness)
}

fn weak_tls_cipher(rec: &SessionRecord, out: &mut Vec<Finding>) {
    let Some(tls) = &rec.tls else {
        return;
    };
    let hs = &tls.handshake;
    let (Some(name), Some(sh)) = (&hs.cipher, &hs.server_hello) else {
        return;
    };
    let etm = sh
        .extensions
        .contains(&crate::proto::tls::ExtensionType::ENCRYPT_THEN_MAC);
    let version = hs.version.unwrap_or(sh.legacy_version);
    if let Some((severity, why)) = cipher_weakness(name, version, etm) {
        out.push(Rule::WeakTlsCipher.finding(
            severity,
            tls.started,
            format!("cipher suite {name} negotiated: it {why}"),
        ));
    }
}

fn certificate(rec: &SessionRecord, out: &mut Vec<Finding>) {
    let Some(tls) = &rec.tls else {
        return;
    };
    let Some(cert) = &tls.handshake.certificate else {
        return;
    };
    let subject = quoted(&cert.subject);
    if cert.self_signed {
        out.push(Rule::SelfSignedCertificate.finding(
            Severity::Low,
            tls.started,
            format!(
                "server certificate {subject} is self-signed: clients that accept it cannot tell \
                 the server from an interceptor"
            ),
        ));
    }
    let at = tls.started;
    let problem = if at > cert.not_after {
        Some(format!("expired on {}", cert.not_after))
    } else if at < cert.not_before {
        Some(format!("not valid until {}", cert.not_before))
    } else {
        None
    };
    if let Some(problem) = problem {
        out.push(Rule::ExpiredCertificate.finding(
            Severity::Low,
            at,
            format!("server certificate {subject} {problem} (session at {at})"),
        ));
    }
}

mod attachments;
mod logins;
pub use attachments::{
    ARCHIVE_EXTENSIONS, DISK_IMAGE_EXTENSIONS, DOCUMENT_EXTENSIONS, EXECUTABLE_EXTENSIONS,
    MACRO_EXTENSIONS,
};
#[cfg(test)]
use logins::MAX_PENDING_SUCCESSES;
use logins::login_after_failures;
pub use logins::{LoginTracker, MAX_LISTED_FAILURES, MAX_TIMED_FAILURES, RunFinding};

#[cfg(test)]
mod tests;
