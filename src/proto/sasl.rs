//! SASL mechanisms shared by SMTP AUTH and POP3 AUTH: each step decoded into a credential.
//!
//! Text recovered from the wire (user names, passwords, realms...) is meant to be UTF-8 (or
//! UTF-16LE for NTLM in Unicode mode). When it is not, no byte is dropped: each byte that is
//! not part of valid text is written `\xNN` (an unpaired UTF-16 surrogate `\uNNNN`) and every
//! literal backslash is doubled, so the string stays unambiguous; a problem is recorded so
//! the reader knows the value is escaped. Valid text is kept exactly as sent.

mod directives;
mod ntlm;
#[cfg(test)]
pub(crate) mod testing;

use crate::session::{Credential, CredentialDetails};
use crate::time::Timestamp;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use directives::Directives;
use ntlm::{Field, NtlmMessage};
use std::fmt::Write as _;

/// Problems kept per exchange; a hostile client could otherwise grow the list without end.
const MAX_PROBLEMS: usize = 16;

/// A SASL mechanism, by its IANA name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// The de-facto LOGIN mechanism (username and password as two base64 answers).
    Login,
    /// RFC 2195.
    CramMd5,
    /// RFC 2831.
    DigestMd5,
    /// Google's XOAUTH2.
    XOAuth2,
    /// RFC 7628.
    OAuthBearer,
    /// NTLM (NTLMSSP messages in base64).
    Ntlm,
    /// RFC 4752 (Kerberos).
    Gssapi,
    /// RFC 4422 EXTERNAL (e.g. TLS client certificate).
    External,
    /// RFC 5802 / RFC 7677 SCRAM family (`SCRAM-SHA-1`, `SCRAM-SHA-256-PLUS`...), upper-cased.
    Scram(String),
    /// Any other mechanism, upper-cased as sent.
    Other(String),
}

impl Mechanism {
    /// Parses a mechanism name, case-insensitively.
    pub fn parse(name: &str) -> Mechanism {
        match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Mechanism::Plain,
            "LOGIN" => Mechanism::Login,
            "CRAM-MD5" => Mechanism::CramMd5,
            "DIGEST-MD5" => Mechanism::DigestMd5,
            "XOAUTH2" => Mechanism::XOAuth2,
            "OAUTHBEARER" => Mechanism::OAuthBearer,
            "NTLM" => Mechanism::Ntlm,
            "GSSAPI" => Mechanism::Gssapi,
            "EXTERNAL" => Mechanism::External,
            scram if scram.starts_with("SCRAM-") => Mechanism::Scram(scram.to_string()),
            other => Mechanism::Other(other.to_string()),
        }
    }

    /// The canonical upper-case name.
    pub fn name(&self) -> &str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::DigestMd5 => "DIGEST-MD5",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::Ntlm => "NTLM",
            Mechanism::Gssapi => "GSSAPI",
            Mechanism::External => "EXTERNAL",
            Mechanism::Scram(s) | Mechanism::Other(s) => s,
        }
    }
}

/// What the exchange has seen so far, beyond the credential fields themselves.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Client responses seen, the initial response included.
    client_steps: u32,
    /// The mechanism's credential-bearing client message was decoded; later ones are extra.
    credential_seen: bool,
    /// CRAM-MD5 / DIGEST-MD5: the server's first real challenge was decoded.
    challenge_seen: bool,
    /// DIGEST-MD5: the nonce the server offered, to compare with the one the client echoes.
    digest_server_nonce: Option<Vec<u8>>,
    /// NTLM: flags from the client's Type 1 message.
    ntlm_negotiate_flags: Option<u32>,
    /// NTLM: flags from the server's Type 2 message.
    ntlm_challenge_flags: Option<u32>,
}

/// How a client line is read while an exchange waits for a server reply the capture lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuessedLine {
    /// Another SASL response.
    Response,
    /// A command: the exchange is over.
    Command,
}

/// Follows one AUTH exchange from the command to the server's verdict.
///
/// The protocol dissector frames the lines (SMTP `334 ...`, POP3 `+ ...`) and feeds their
/// payloads here; this type knows nothing of SMTP or POP3.
#[derive(Debug, Clone)]
pub struct SaslExchange {
    mechanism: Mechanism,
    ts: Timestamp,
    encrypted: bool,
    details: CredentialDetails,
    username: Option<String>,
    password: Option<String>,
    problems: Vec<String>,
    progress: Progress,
}

impl SaslExchange {
    /// Starts an exchange; `initial_response` is the optional argument after the mechanism,
    /// as sent (base64, or `=` for an empty one).
    pub fn start(
        mechanism: &str,
        initial_response: Option<&str>,
        ts: Timestamp,
        encrypted: bool,
    ) -> Self {
        let mut exchange = SaslExchange {
            mechanism: Mechanism::parse(mechanism),
            ts,
            encrypted,
            details: CredentialDetails::default(),
            username: None,
            password: None,
            problems: Vec::new(),
            progress: Progress::default(),
        };
        if let Some(response) = initial_response {
            exchange.client_line(response, "initial response");
        }
        exchange
    }

    /// The mechanism in use.
    pub fn mechanism(&self) -> &Mechanism {
        &self.mechanism
    }

    /// A server challenge: the text after `334 ` (SMTP) or `+ ` (POP3), as sent.
    pub fn server_challenge(&mut self, payload: &str) {
        if self.details.cancelled {
            return;
        }
        // Only mechanisms whose challenges carry something worth keeping are decoded: LOGIN
        // prompts are free text, and OAuth error challenges are not credentials.
        match self.mechanism {
            Mechanism::CramMd5 => {
                if let Some(data) = self.decode(payload, "challenge") {
                    self.on_cram_md5_challenge(&data);
                }
            }
            Mechanism::DigestMd5 => {
                if let Some(data) = self.decode(payload, "challenge") {
                    self.on_digest_md5_challenge(&data);
                }
            }
            Mechanism::Ntlm => {
                if let Some(data) = self.decode(payload, "challenge") {
                    self.on_ntlm_server_message(&data);
                }
            }
            _ => {}
        }
    }

    /// A client response line, as sent (base64, or `*` to cancel).
    pub fn client_response(&mut self, line: &str) {
        self.client_line(line, "response");
    }

    /// Whether the client cancelled with `*`.
    pub fn cancelled(&self) -> bool {
        self.details.cancelled
    }

    /// Malformed steps met so far (bad base64, truncated NTLM message...), for anomalies.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Client responses the mechanism normally sends, the initial response included: the
    /// messages that carry its credentials (LOGIN: user, password; NTLM: Type 1, Type 3;
    /// DIGEST-MD5 and SCRAM: two messages; GSSAPI: token, empty answer, security layer;
    /// PLAIN, CRAM-MD5, XOAUTH2, OAUTHBEARER, EXTERNAL and unknown mechanisms: one).
    pub fn expected_responses(&self) -> u32 {
        match self.mechanism {
            Mechanism::Plain
            | Mechanism::CramMd5
            | Mechanism::XOAuth2
            | Mechanism::OAuthBearer
            | Mechanism::External
            | Mechanism::Other(_) => 1,
            Mechanism::Login | Mechanism::DigestMd5 | Mechanism::Ntlm | Mechanism::Scram(_) => 2,
            Mechanism::Gssapi => 3,
        }
    }

    /// Whether the client has sent every response the mechanism expects, or cancelled.
    pub fn responses_complete(&self) -> bool {
        self.details.cancelled || self.progress.client_steps >= self.expected_responses()
    }

    /// Whether `line` could be a client response of this mechanism: empty, `*`, or base64
    /// whose content has the mechanism's shape (text for the text mechanisms, an NTLMSSP
    /// message for NTLM, a GSS-API token for GSSAPI). A bare command verb such as `QUIT` is
    /// valid base64, but decodes to control bytes, which no text mechanism sends.
    pub fn could_be_response(&self, line: &str) -> bool {
        let line = line.trim_ascii();
        if line.is_empty() || line == "=" || line == "*" {
            return true;
        }
        let Ok(data) = STANDARD_PAD_INDIFFERENT.decode(line) else {
            return false;
        };
        match self.mechanism {
            Mechanism::Plain => is_text(&data, b"\0"),
            // Key-value pairs are separated by ^A.
            Mechanism::XOAuth2 | Mechanism::OAuthBearer => is_text(&data, b"\x01"),
            Mechanism::Login
            | Mechanism::CramMd5
            | Mechanism::DigestMd5
            | Mechanism::External
            | Mechanism::Scram(_) => is_text(&data, b""),
            Mechanism::Ntlm => data.starts_with(ntlm::SIGNATURE),
            // RFC 2743 and RFC 4121 tokens carry a header of at least 16 bytes.
            Mechanism::Gssapi => data.len() >= 16,
            Mechanism::Other(_) => true,
        }
    }

    /// How to read a client line when the server reply that would say so is not in the
    /// capture; `known_command` is whether the protocol parses the line as a known command.
    ///
    /// Until the mechanism's responses are all in, a line is a response unless it is a known
    /// command that cannot be one; after them, a known command or a line that cannot be a
    /// response ends the exchange (an extra empty line, as after an XOAUTH2 error
    /// challenge, or a `*` stays a response). Only the client's own lines are consulted, so
    /// the reading does not depend on how the two directions interleave.
    pub fn guess_line(&self, line: &str, known_command: bool) -> GuessedLine {
        let could_be_response = self.could_be_response(line);
        let command = if self.responses_complete() {
            known_command || !could_be_response
        } else {
            known_command && !could_be_response
        };
        if command {
            GuessedLine::Command
        } else {
            GuessedLine::Response
        }
    }

    /// Ends the exchange with the server's verdict (`None` when no verdict was seen).
    pub fn finish(self, success: Option<bool>) -> Credential {
        Credential {
            ts: self.ts,
            mechanism: self.mechanism.name().to_string(),
            username: self.username,
            password: self.password,
            success,
            encrypted: self.encrypted,
            details: self.details,
        }
    }

    fn client_line(&mut self, line: &str, what: &str) {
        if self.details.cancelled {
            return;
        }
        let line = line.trim_ascii();
        if line == "*" {
            self.details.cancelled = true;
            return;
        }
        self.progress.client_steps = self.progress.client_steps.saturating_add(1);
        let Some(data) = self.decode(line, what) else {
            return;
        };
        match self.mechanism {
            Mechanism::Plain => self.once(&data, Self::on_plain),
            Mechanism::Login => self.on_login(&data),
            Mechanism::CramMd5 => self.once(&data, Self::on_cram_md5_response),
            Mechanism::DigestMd5 => self.once(&data, Self::on_digest_md5_response),
            Mechanism::XOAuth2 => self.once(&data, Self::on_xoauth2),
            Mechanism::OAuthBearer => {
                // After an error challenge the client must answer a lone ^A (RFC 7628 3.2.3).
                if self.progress.credential_seen && data == b"\x01" {
                    return;
                }
                self.once(&data, Self::on_oauthbearer)
            }
            Mechanism::Ntlm => self.on_ntlm_client_message(&data),
            Mechanism::External => {
                if !self.progress.credential_seen {
                    self.progress.credential_seen = true;
                    if !data.is_empty() {
                        self.details.authzid = Some(self.text(&data, "authorization identity"));
                    }
                }
            }
            // Only the client-first message names the user; the client-final one carries
            // the proof, which is not a credential to record.
            Mechanism::Scram(_) => {
                if !self.progress.credential_seen && !data.is_empty() {
                    self.progress.credential_seen = true;
                    self.on_scram_client_first(&data);
                }
            }
            // Kerberos tokens and unknown mechanisms name nobody in a way we can read.
            Mechanism::Gssapi | Mechanism::Other(_) => {}
        }
    }

    /// Runs `decode_credential` on the first non-empty client message; empty messages are
    /// the normal answer to a final server challenge, anything else after it is odd.
    fn once(&mut self, data: &[u8], decode_credential: fn(&mut Self, &[u8])) {
        if data.is_empty() {
            if !self.progress.credential_seen {
                self.problem("empty client response where credentials were expected");
            }
            return;
        }
        if self.progress.credential_seen {
            self.problem("unexpected extra client response");
            return;
        }
        self.progress.credential_seen = true;
        decode_credential(self, data);
    }

    fn on_plain(&mut self, data: &[u8]) {
        // authzid NUL authcid NUL passwd; the password may itself hold NULs, so split twice.
        let mut parts = data.splitn(3, |&b| b == 0);
        let (Some(authzid), Some(authcid), Some(password)) =
            (parts.next(), parts.next(), parts.next())
        else {
            let separators = data.iter().filter(|&&b| b == 0).count();
            self.problem(format!(
                "response has {separators} NUL separator(s) instead of 2; nothing decoded"
            ));
            return;
        };
        if !authzid.is_empty() {
            self.details.authzid = Some(self.text(authzid, "authorization identity"));
        }
        if authcid.is_empty() && !authzid.is_empty() {
            // Some clients put the login name in the first slot; RFC 4616 makes it the
            // identity to act as, but the server can only have checked the password against
            // it, so it is the user an analyst is looking for.
            self.problem("empty authentication identity; authorization identity used as user name");
            self.username = self.details.authzid.clone();
        } else {
            self.username = Some(self.text(authcid, "user name"));
        }
        self.password = Some(self.text(password, "password"));
    }

    fn on_login(&mut self, data: &[u8]) {
        // LOGIN is positional: whatever the prompts say, answer 1 is the user, 2 the password.
        match self.progress.client_steps {
            1 => self.username = Some(self.text(data, "user name")),
            2 => {
                self.password = Some(self.text(data, "password"));
                self.progress.credential_seen = true;
            }
            _ if data.is_empty() => {}
            _ => self.problem("unexpected extra client response"),
        }
    }

    fn on_cram_md5_challenge(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.progress.challenge_seen {
            self.problem("second server challenge ignored");
            return;
        }
        self.progress.challenge_seen = true;
        self.details.challenge = Some(self.text(data, "challenge"));
    }

    fn on_cram_md5_response(&mut self, data: &[u8]) {
        // RFC 2195: user SP digest; the user name may itself hold spaces, the digest cannot.
        let Some(space) = data.iter().rposition(|&b| b == b' ') else {
            self.problem("response has no space between user name and digest");
            return;
        };
        let (user, rest) = data.split_at(space);
        let digest = rest.get(1..).unwrap_or_default();
        self.username = Some(self.text(user, "user name"));
        if !is_hex_digest(digest) {
            self.problem("digest is not 32 hex digits");
        }
        self.details.response = Some(self.text(digest, "digest"));
    }

    fn on_digest_md5_challenge(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let directives = Directives::parse(data);
        if directives.get("rspauth").is_some() {
            // The server's proof that it knows the password too; nothing about the client.
            return;
        }
        if self.progress.challenge_seen {
            self.problem("second server challenge ignored");
            return;
        }
        self.progress.challenge_seen = true;
        if directives.malformed {
            self.problem("challenge has malformed directives");
        }
        let utf8 = declares_utf8(&directives);
        if let Some(realm) = directives.get("realm") {
            self.details.domain = Some(self.charset_text(realm, utf8, "realm"));
        }
        match directives.get("nonce") {
            Some(nonce) => {
                self.details.challenge = Some(self.text(nonce, "nonce"));
                self.progress.digest_server_nonce = Some(nonce.to_vec());
            }
            None => self.problem("challenge has no nonce"),
        }
    }

    fn on_digest_md5_response(&mut self, data: &[u8]) {
        let directives = Directives::parse(data);
        if directives.malformed {
            self.problem("response has malformed directives");
        }
        let utf8 = declares_utf8(&directives);
        match directives.get("username") {
            Some(user) => self.username = Some(self.charset_text(user, utf8, "user name")),
            None => self.problem("response has no username"),
        }
        if let Some(realm) = directives.get("realm") {
            self.details.domain = Some(self.charset_text(realm, utf8, "realm"));
        }
        if let Some(authzid) = directives.get("authzid") {
            self.details.authzid = Some(self.text(authzid, "authorization identity"));
        }
        if let Some(nonce) = directives.get("nonce") {
            if self
                .progress
                .digest_server_nonce
                .as_deref()
                .is_some_and(|offered| offered != nonce)
            {
                self.problem("response nonce differs from the server's");
            }
            // The digest is computed over the nonce the client used, so that one is kept.
            self.details.challenge = Some(self.text(nonce, "nonce"));
        }
        self.details.cnonce = directives.get("cnonce").map(|v| self.text(v, "cnonce"));
        self.details.nc = directives.get("nc").map(|v| self.text(v, "nc"));
        self.details.qop = directives.get("qop").map(|v| self.text(v, "qop"));
        self.details.digest_uri = directives
            .get("digest-uri")
            .map(|v| self.text(v, "digest-uri"));
        match directives.get("response") {
            Some(response) => self.details.response = Some(self.text(response, "response")),
            None => self.problem("response has no response directive"),
        }
    }

    fn on_xoauth2(&mut self, data: &[u8]) {
        // user=<u> ^A auth=Bearer <token> ^A ^A
        let mut recognised = false;
        for (key, value) in key_values(data) {
            match key {
                b"user" => {
                    recognised = true;
                    self.username = Some(self.text(value, "user name"));
                }
                b"auth" => {
                    recognised = true;
                    self.details.token = Some(self.text(bearer_token(value), "token"));
                }
                _ => {}
            }
        }
        if !recognised {
            self.problem("response has neither user= nor auth=");
        }
    }

    fn on_oauthbearer(&mut self, data: &[u8]) {
        // gs2-header ^A key=value ^A ... ^A ^A, the header being e.g. `n,a=user@example.com,`.
        let (header, pairs) = match data.iter().position(|&b| b == 0x01) {
            Some(i) => data.split_at(i),
            None => (data, &[][..]),
        };
        let mut fields = header.split(|&b| b == b',');
        let channel_binding = fields.next().unwrap_or_default();
        if !is_gs2_channel_binding_flag(channel_binding) || pairs.is_empty() {
            self.problem("response is not a GS2 header followed by ^A-separated values");
        }
        if let Some(authzid) = fields.next().and_then(|f| f.strip_prefix(b"a="))
            && !authzid.is_empty()
        {
            self.username = Some(self.sasl_name(authzid, "user name"));
        }
        for (key, value) in key_values(pairs) {
            if key == b"auth" {
                self.details.token = Some(self.text(bearer_token(value), "token"));
            }
        }
        if self.details.token.is_none() {
            self.problem("response has no auth= value");
        }
    }

    fn on_scram_client_first(&mut self, data: &[u8]) {
        // gs2-header (`n,,` or `n,a=authzid,`) then client-first-bare `n=user,r=nonce`.
        let mut fields = data.split(|&b| b == b',');
        let channel_binding = fields.next().unwrap_or_default();
        if !is_gs2_channel_binding_flag(channel_binding) {
            self.problem("client-first message does not start with a GS2 header");
        }
        if let Some(authzid) = fields.next().and_then(|f| f.strip_prefix(b"a="))
            && !authzid.is_empty()
        {
            self.details.authzid = Some(self.sasl_name(authzid, "authorization identity"));
        }
        match fields.find_map(|f| f.strip_prefix(b"n=")) {
            Some(user) => self.username = Some(self.sasl_name(user, "user name")),
            None => self.problem("client-first message has no n= user name"),
        }
    }

    fn on_ntlm_client_message(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match ntlm::parse(data) {
            Err(e) => self.problem(format!("client: {e}")),
            Ok(NtlmMessage::Negotiate(negotiate)) => {
                self.progress.ntlm_negotiate_flags = negotiate.flags;
                if negotiate.flags.is_none() {
                    self.problem("Type 1 message truncated before its flags");
                }
                // Names from Type 1 are a fallback; Type 3 names the account for real.
                if let Some(domain) = self.ntlm_field(negotiate.domain, 1, "domain", false) {
                    self.details.domain.get_or_insert(domain);
                }
                if let Some(ws) = self.ntlm_field(negotiate.workstation, 1, "workstation", false) {
                    self.details.workstation.get_or_insert(ws);
                }
            }
            Ok(NtlmMessage::Challenge(_)) => {
                self.problem("client sent a Type 2 (challenge) message");
            }
            Ok(NtlmMessage::Authenticate(auth)) => {
                if self.progress.credential_seen {
                    self.problem("second Type 3 message ignored");
                    return;
                }
                self.progress.credential_seen = true;
                self.on_ntlm_authenticate(auth);
            }
        }
    }

    fn on_ntlm_authenticate(&mut self, auth: ntlm::Authenticate<'_>) {
        let flags = auth
            .flags
            .or(self.progress.ntlm_challenge_flags)
            .or(self.progress.ntlm_negotiate_flags);
        let unicode = flags.is_some_and(|f| f & ntlm::NEGOTIATE_UNICODE != 0);
        if let Some(user) = self.ntlm_field(auth.user, 3, "user", unicode) {
            self.username = Some(user);
        }
        if let Some(domain) = self.ntlm_field(auth.domain, 3, "domain", unicode) {
            self.details.domain = Some(domain);
        }
        if let Some(ws) = self.ntlm_field(auth.workstation, 3, "workstation", unicode) {
            self.details.workstation = Some(ws);
        }
        let lm = self.ntlm_bytes(auth.lm_response, "LM response");
        let nt = self.ntlm_bytes(auth.nt_response, "NT response");
        if let Some(lm) = lm.filter(|lm| !lm.is_empty()) {
            self.details.lm_response = Some(hex::encode(lm));
        }
        let Some(nt) = nt.filter(|nt| !nt.is_empty()) else {
            // An empty NT response is an anonymous logon: no version, nothing to crack.
            return;
        };
        self.details.nt_response = Some(hex::encode(nt));
        let ess = flags.is_some_and(|f| f & ntlm::NEGOTIATE_EXTENDED_SESSIONSECURITY != 0);
        let version = match nt.len() {
            24 => {
                let lm_is_client_challenge = lm.is_some_and(|lm| {
                    lm.len() == 24 && lm.get(8..).is_some_and(|z| z.iter().all(|&b| b == 0))
                });
                if ess && lm_is_client_challenge {
                    "v1-ess"
                } else {
                    "v1"
                }
            }
            // NTProofStr (16) + blob header (28) + at least the MsvAvEOL pair (4).
            len if len >= 48 => "v2",
            len if len > 24 => {
                self.problem(format!("NTLMv2 response too short ({len} bytes)"));
                "v2"
            }
            len => {
                self.problem(format!("NT response of unexpected length {len}"));
                return;
            }
        };
        self.details.ntlm_version = Some(version.to_string());
    }

    fn on_ntlm_server_message(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match ntlm::parse(data) {
            Err(e) => self.problem(format!("server: {e}")),
            Ok(NtlmMessage::Challenge(challenge)) => {
                self.progress.ntlm_challenge_flags = challenge.flags;
                match challenge.server_challenge {
                    Some(nonce) => self.details.challenge = Some(hex::encode(nonce)),
                    None => self.problem("Type 2 message truncated before the server challenge"),
                }
                if challenge.target_name == Field::OutOfBounds {
                    self.problem("Type 2 target name lies outside the message");
                }
            }
            Ok(NtlmMessage::Negotiate(_)) => self.problem("server sent a Type 1 message"),
            Ok(NtlmMessage::Authenticate(_)) => self.problem("server sent a Type 3 message"),
        }
    }

    /// The bytes of an NTLM field, reporting a field the message cannot hold.
    fn ntlm_bytes<'a>(&mut self, field: Field<'a>, name: &str) -> Option<&'a [u8]> {
        match field {
            Field::Present(bytes) => Some(bytes),
            Field::Absent => {
                self.problem(format!("Type 3 message truncated before the {name} field"));
                None
            }
            Field::OutOfBounds => {
                self.problem(format!("Type 3 {name} field lies outside the message"));
                None
            }
        }
    }

    /// An NTLM name field as text; `None` when absent or empty. Type 1 names are always OEM.
    fn ntlm_field(
        &mut self,
        field: Field<'_>,
        message_type: u8,
        name: &str,
        unicode: bool,
    ) -> Option<String> {
        let bytes = match (field, message_type) {
            (Field::Present(bytes), _) => bytes,
            (Field::Absent, 1) => return None,
            (Field::Absent, _) => {
                self.problem(format!(
                    "Type {message_type} message truncated before the {name} field"
                ));
                return None;
            }
            (Field::OutOfBounds, _) => {
                self.problem(format!(
                    "Type {message_type} {name} field lies outside the message"
                ));
                return None;
            }
        };
        if bytes.is_empty() {
            return None;
        }
        if !unicode {
            return Some(self.text(bytes, name));
        }
        let decoded = utf16le_text(bytes);
        if decoded.escaped {
            self.problem(format!("{name} is not valid UTF-16LE; shown with escapes"));
        }
        Some(decoded.text)
    }

    /// Decodes a base64 payload; `=` and the empty string are an empty message.
    fn decode(&mut self, payload: &str, what: &str) -> Option<Vec<u8>> {
        let payload = payload.trim_ascii();
        if payload.is_empty() || payload == "=" {
            return Some(Vec::new());
        }
        match STANDARD_PAD_INDIFFERENT.decode(payload) {
            Ok(data) => Some(data),
            Err(_) => {
                self.problem(format!("{what} is not valid base64"));
                None
            }
        }
    }

    /// UTF-8 text, escaped losslessly (and reported) when it is not valid.
    fn text(&mut self, bytes: &[u8], what: &str) -> String {
        let decoded = utf8_text(bytes);
        if decoded.escaped {
            self.problem(format!(
                "{what} is not valid UTF-8; shown with \\xNN escapes"
            ));
        }
        decoded.text
    }

    /// DIGEST-MD5 text: UTF-8 when `charset=utf-8` was declared, ISO 8859-1 otherwise.
    fn charset_text(&mut self, bytes: &[u8], utf8: bool, what: &str) -> String {
        if utf8 {
            self.text(bytes, what)
        } else {
            bytes.iter().map(|&b| char::from(b)).collect()
        }
    }

    /// A SCRAM / GS2 saslname, where `=2C` stands for `,` and `=3D` for `=`.
    fn sasl_name(&mut self, bytes: &[u8], what: &str) -> String {
        let mut unescaped = Vec::with_capacity(bytes.len());
        let mut rest = bytes;
        let mut bad_escape = false;
        while let Some((&b, tail)) = rest.split_first() {
            if b == b'=' {
                match tail.get(..2) {
                    Some(b"2C" | b"2c") => unescaped.push(b','),
                    Some(b"3D" | b"3d") => unescaped.push(b'='),
                    _ => {
                        bad_escape = true;
                        unescaped.push(b'=');
                        rest = tail;
                        continue;
                    }
                }
                rest = tail.get(2..).unwrap_or_default();
            } else {
                unescaped.push(b);
                rest = tail;
            }
        }
        if bad_escape {
            self.problem(format!("{what} has an invalid = escape"));
        }
        self.text(&unescaped, what)
    }

    fn problem(&mut self, detail: impl AsRef<str>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems
                .push(format!("{}: {}", self.mechanism.name(), detail.as_ref()));
        }
    }
}

/// Text recovered from bytes, and whether some of it had to be escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DecodedText {
    text: String,
    escaped: bool,
}

/// UTF-8 text kept as is; otherwise invalid bytes become `\xNN` and backslashes `\\`.
fn utf8_text(bytes: &[u8]) -> DecodedText {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return DecodedText {
            text: text.to_string(),
            escaped: false,
        };
    }
    let mut text = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        push_escaping_backslashes(&mut text, chunk.valid().chars());
        for b in chunk.invalid() {
            let _ = write!(text, "\\x{b:02x}");
        }
    }
    DecodedText {
        text,
        escaped: true,
    }
}

/// UTF-16LE text kept as is; otherwise unpaired surrogates become `\uNNNN`, an odd last
/// byte `\xNN`, and backslashes `\\`.
fn utf16le_text(bytes: &[u8]) -> DecodedText {
    let units = bytes
        .chunks_exact(2)
        .map(|pair| <[u8; 2]>::try_from(pair).map_or(0, u16::from_le_bytes));
    let odd_byte = bytes.chunks_exact(2).remainder().first().copied();
    if odd_byte.is_none()
        && let Ok(text) = char::decode_utf16(units.clone()).collect::<Result<String, _>>()
    {
        return DecodedText {
            text,
            escaped: false,
        };
    }
    let mut text = String::with_capacity(bytes.len());
    for unit in char::decode_utf16(units) {
        match unit {
            Ok('\\') => text.push_str("\\\\"),
            Ok(c) => text.push(c),
            Err(e) => {
                let _ = write!(text, "\\u{:04x}", e.unpaired_surrogate());
            }
        }
    }
    if let Some(b) = odd_byte {
        let _ = write!(text, "\\x{b:02x}");
    }
    DecodedText {
        text,
        escaped: true,
    }
}

fn push_escaping_backslashes(out: &mut String, chars: impl Iterator<Item = char>) {
    for c in chars {
        if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
}

/// `key=value` pairs separated by ^A (XOAUTH2, OAUTHBEARER); pairs without `=` are skipped.
fn key_values(data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    data.split(|&b| b == 0x01).filter_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (key, value) = pair.split_at(eq);
        Some((key, value.get(1..).unwrap_or_default()))
    })
}

/// The token of an `auth=` value: what follows the `Bearer` scheme, or the whole value.
fn bearer_token(value: &[u8]) -> &[u8] {
    match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"Bearer ") => {
            value.get(7..).unwrap_or_default().trim_ascii()
        }
        _ => value,
    }
}

/// The first field of a GS2 header (RFC 5801): `n`, `y` or `p=<binding type>`.
fn is_gs2_channel_binding_flag(field: &[u8]) -> bool {
    matches!(field, b"n" | b"y") || field.starts_with(b"p=")
}

fn declares_utf8(directives: &Directives) -> bool {
    directives
        .get("charset")
        .is_some_and(|c| c.eq_ignore_ascii_case(b"utf-8"))
}

/// Whether decoded bytes read as text: no control characters but tab, CR, LF and the
/// mechanism's own separators in `allowed`. Bytes that are not UTF-8 are judged as ISO 8859-1,
/// which older clients send.
fn is_text(data: &[u8], allowed: &[u8]) -> bool {
    let acceptable = |c: char| {
        !c.is_control()
            || matches!(c, '\t' | '\r' | '\n')
            || allowed.iter().any(|&a| c == char::from(a))
    };
    match std::str::from_utf8(data) {
        Ok(text) => text.chars().all(acceptable),
        Err(_) => data.iter().all(|&b| acceptable(char::from(b))),
    }
}

fn is_hex_digest(digest: &[u8]) -> bool {
    digest.len() == 32 && digest.iter().all(u8::is_ascii_hexdigit)
}

#[cfg(test)]
mod tests {
    use super::testing::{self, Type3, b64};
    use super::*;
    use proptest::prelude::*;

    fn start(mechanism: &str, initial_response: Option<&str>) -> SaslExchange {
        SaslExchange::start(mechanism, initial_response, Timestamp(7), false)
    }

    fn no_problems(sasl: &SaslExchange) {
        assert_eq!(sasl.problems(), [] as [String; 0]);
    }

    #[test]
    fn mechanism_names_parse_case_insensitively() {
        assert_eq!(Mechanism::parse("cram-md5"), Mechanism::CramMd5);
        assert_eq!(
            Mechanism::parse("scram-sha-256-plus"),
            Mechanism::Scram("SCRAM-SHA-256-PLUS".into())
        );
        assert_eq!(Mechanism::parse("x-Foo").name(), "X-FOO");
    }

    #[test]
    fn plain_with_initial_response_and_authzid() {
        let mut sasl = start("PLAIN", Some(&b64("admin\0tim\0tanstaaf")));
        no_problems(&sasl);
        sasl.server_challenge("");
        let cred = sasl.finish(Some(true));
        assert_eq!(cred.mechanism, "PLAIN");
        assert_eq!(cred.username.as_deref(), Some("tim"));
        assert_eq!(cred.password.as_deref(), Some("tanstaaf"));
        assert_eq!(cred.details.authzid.as_deref(), Some("admin"));
        assert_eq!(cred.success, Some(true));
        assert_eq!(cred.ts, Timestamp(7));
    }

    #[test]
    fn plain_after_an_empty_challenge_keeps_nuls_in_the_password() {
        let mut sasl = start("plain", None);
        sasl.server_challenge("");
        sasl.client_response(&b64("\0user\0pa\0ss"));
        no_problems(&sasl);
        let cred = sasl.finish(Some(false));
        assert_eq!(cred.username.as_deref(), Some("user"));
        assert_eq!(cred.password.as_deref(), Some("pa\0ss"));
        assert_eq!(cred.details.authzid, None);
        assert_eq!(cred.success, Some(false));
    }

    #[test]
    fn plain_without_two_nuls_decodes_nothing() {
        let mut sasl = start("PLAIN", Some(&b64("user\0password")));
        assert_eq!(
            sasl.problems(),
            ["PLAIN: response has 1 NUL separator(s) instead of 2; nothing decoded"]
        );
        sasl.client_response(&b64("\0late\0one"));
        assert_eq!(sasl.problems().len(), 2, "{:?}", sasl.problems());
        let cred = sasl.finish(None);
        assert_eq!((cred.username, cred.password), (None, None));
    }

    #[test]
    fn plain_empty_initial_response_is_reported() {
        let mut sasl = start("PLAIN", Some("="));
        assert_eq!(
            sasl.problems(),
            ["PLAIN: empty client response where credentials were expected"]
        );
        // A client that then answers properly is still decoded.
        sasl.client_response(&b64("\0u\0p"));
        assert_eq!(sasl.finish(None).username.as_deref(), Some("u"));
    }

    #[test]
    fn plain_with_only_an_authorization_identity_names_that_user() {
        // BruteShark-style clients: `name NUL NUL password`.
        let sasl = start("PLAIN", Some(&b64("alice@example.com\0\0secret")));
        assert_eq!(
            sasl.problems(),
            ["PLAIN: empty authentication identity; authorization identity used as user name"]
        );
        let cred = sasl.finish(Some(true));
        assert_eq!(cred.username.as_deref(), Some("alice@example.com"));
        assert_eq!(cred.details.authzid.as_deref(), Some("alice@example.com"));
        assert_eq!(cred.password.as_deref(), Some("secret"));

        // Both empty: nothing to borrow, nothing to note.
        let sasl = start("PLAIN", Some(&b64("\0\0secret")));
        no_problems(&sasl);
        let cred = sasl.finish(None);
        assert_eq!(cred.username.as_deref(), Some(""));
        assert_eq!(cred.details.authzid, None);
    }

    #[test]
    fn expected_responses_follow_the_mechanism() {
        let mut login = start("LOGIN", None);
        assert_eq!(login.expected_responses(), 2);
        assert!(!login.responses_complete());
        login.client_response(&b64("tim"));
        assert!(!login.responses_complete());
        login.client_response(&b64("secret"));
        assert!(login.responses_complete());

        // An inline user name is the first of LOGIN's two responses.
        let login = start("LOGIN", Some(&b64("tim")));
        assert!(!login.responses_complete());
        assert!(start("PLAIN", Some(&b64("\0u\0p"))).responses_complete());
        assert!(!start("PLAIN", None).responses_complete());
        assert!(start("XOAUTH2", Some(&b64("user=u\x01\x01"))).responses_complete());
        assert_eq!(start("CRAM-MD5", None).expected_responses(), 1);
        assert_eq!(start("NTLM", None).expected_responses(), 2);
        assert_eq!(start("GSSAPI", None).expected_responses(), 3);

        // A cancelled exchange expects nothing more.
        let mut cancelled = start("LOGIN", None);
        cancelled.client_response("*");
        assert!(cancelled.responses_complete());
    }

    #[test]
    fn bare_command_verbs_are_not_text_responses() {
        let login = start("LOGIN", None);
        for verb in [
            "QUIT", "DATA", "RSET", "NOOP", "EHLO", "MAIL", "STAT", "CAPA",
        ] {
            assert!(!login.could_be_response(verb), "{verb}");
        }
        assert!(login.could_be_response(&b64("tim")));
        assert!(login.could_be_response(&b64("caf\u{e9}")));
        assert!(login.could_be_response(&b64(b"caf\xe9")));
        assert!(login.could_be_response(""));
        assert!(login.could_be_response("*"));
        assert!(!login.could_be_response("MAIL FROM: <a@b.c>"));
        assert!(start("PLAIN", None).could_be_response(&b64("\0u\0p")));
        assert!(!start("LOGIN", None).could_be_response(&b64("\0u\0p")));
        assert!(start("XOAUTH2", None).could_be_response(&b64("user=u\x01\x01")));
        assert!(start("NTLM", None).could_be_response(&b64(b"NTLMSSP\0\x01\0\0\0")));
        assert!(!start("NTLM", None).could_be_response(&b64("tim")));
        assert!(!start("GSSAPI", None).could_be_response("QUIT"));
        assert!(start("X-UNKNOWN", None).could_be_response("QUIT"));
    }

    #[test]
    fn guessed_lines_end_the_exchange_after_its_responses() {
        use GuessedLine::{Command, Response};
        let mut login = start("LOGIN", None);
        // Before the responses: base64 is a response, and so is a line that is not.
        assert_eq!(login.guess_line(&b64("tim"), false), Response);
        assert_eq!(login.guess_line("garbage here", false), Response);
        // A known command that cannot be a response ends it at any time.
        assert_eq!(login.guess_line("MAIL FROM: <a@b.c>", true), Command);
        assert_eq!(login.guess_line("QUIT", true), Command);
        login.client_response(&b64("tim"));
        login.client_response(&b64("secret"));
        // After them: any known command, or anything that cannot be a response.
        assert_eq!(login.guess_line("MAIL FROM: <a@b.c>", true), Command);
        assert_eq!(login.guess_line("garbage here", false), Command);
        assert_eq!(login.guess_line("", false), Response);
        assert_eq!(login.guess_line(&b64("more"), false), Response);

        // An unknown mechanism keeps a bare verb, which may be its data, for its first answer.
        let mut other = start("X-UNKNOWN", None);
        assert_eq!(other.guess_line("QUIT", true), Response);
        other.client_response(&b64("token"));
        assert_eq!(other.guess_line("QUIT", true), Command);
        assert_eq!(other.guess_line(&b64("token"), false), Response);
    }

    #[test]
    fn invalid_utf8_password_keeps_its_bytes_as_escapes() {
        let sasl = start("PLAIN", Some(&b64(b"\0user\0p\xffa\\ss\xc3")));
        assert_eq!(
            sasl.problems(),
            ["PLAIN: password is not valid UTF-8; shown with \\xNN escapes"]
        );
        let cred = sasl.finish(None);
        assert_eq!(cred.password.as_deref(), Some(r"p\xffa\\ss\xc3"));
        assert_eq!(cred.username.as_deref(), Some("user"));
    }

    #[test]
    fn login_is_positional_whatever_the_prompts() {
        let mut sasl = start("LOGIN", None);
        sasl.server_challenge(&b64("Username:"));
        sasl.client_response(&b64("tim"));
        // Some servers send free text, which is not base64 and must not be a problem.
        sasl.server_challenge("Enter your secret, please:");
        sasl.client_response(&b64("s3cr\u{e9}t"));
        no_problems(&sasl);
        let cred = sasl.finish(Some(true));
        assert_eq!(cred.mechanism, "LOGIN");
        assert_eq!(cred.username.as_deref(), Some("tim"));
        assert_eq!(cred.password.as_deref(), Some("s3cr\u{e9}t"));
    }

    #[test]
    fn login_with_the_user_name_as_initial_response() {
        let mut sasl = start("LOGIN", Some("dXNlcg=="));
        sasl.server_challenge(&b64("Password:"));
        sasl.client_response(&b64("pw"));
        sasl.client_response(&b64("extra"));
        assert_eq!(sasl.problems(), ["LOGIN: unexpected extra client response"]);
        let cred = sasl.finish(Some(true));
        assert_eq!(cred.username.as_deref(), Some("user"));
        assert_eq!(cred.password.as_deref(), Some("pw"));
    }

    #[test]
    fn login_bad_base64_keeps_positions() {
        let mut sasl = start("LOGIN", None);
        sasl.client_response("not base64!");
        sasl.client_response(&b64("pw"));
        assert_eq!(sasl.problems(), ["LOGIN: response is not valid base64"]);
        let cred = sasl.finish(None);
        assert_eq!(cred.username, None);
        assert_eq!(cred.password.as_deref(), Some("pw"));
    }

    #[test]
    fn unpadded_base64_is_accepted() {
        let sasl = start("LOGIN", Some("dXNlcg"));
        no_problems(&sasl);
        assert_eq!(sasl.finish(None).username.as_deref(), Some("user"));
    }

    #[test]
    fn cancel_stops_the_exchange() {
        let mut sasl = start("LOGIN", None);
        sasl.server_challenge(&b64("Username:"));
        sasl.client_response(&b64("tim"));
        sasl.client_response(" * ");
        assert!(sasl.cancelled());
        sasl.client_response(&b64("ignored"));
        no_problems(&sasl);
        let cred = sasl.finish(Some(false));
        assert!(cred.details.cancelled);
        assert_eq!(cred.username.as_deref(), Some("tim"));
        assert_eq!(cred.password, None);
    }

    #[test]
    fn cram_md5_keeps_challenge_user_and_digest() {
        let mut sasl = start("CRAM-MD5", None);
        sasl.server_challenge(&b64("<1896.697170952@postoffice.reston.mci.net>"));
        sasl.client_response(&b64("tim b913a602c7eda7a495b4e6e7334d3890"));
        no_problems(&sasl);
        let cred = sasl.finish(Some(true));
        assert_eq!(cred.username.as_deref(), Some("tim"));
        assert_eq!(cred.password, None);
        assert_eq!(
            cred.details.challenge.as_deref(),
            Some("<1896.697170952@postoffice.reston.mci.net>")
        );
        assert_eq!(
            cred.details.response.as_deref(),
            Some("b913a602c7eda7a495b4e6e7334d3890")
        );
    }

    #[test]
    fn cram_md5_user_names_may_hold_spaces_and_bad_digests_are_reported() {
        let mut sasl = start("CRAM-MD5", None);
        sasl.server_challenge(&b64("<1@h>"));
        sasl.client_response(&b64("john smith 1234"));
        assert_eq!(sasl.problems(), ["CRAM-MD5: digest is not 32 hex digits"]);
        let cred = sasl.finish(None);
        assert_eq!(cred.username.as_deref(), Some("john smith"));
        assert_eq!(cred.details.response.as_deref(), Some("1234"));
    }

    #[test]
    fn cram_md5_without_space_and_with_bad_challenge() {
        let mut sasl = start("CRAM-MD5", None);
        sasl.server_challenge("%%%");
        sasl.client_response(&b64("nospace"));
        assert_eq!(
            sasl.problems(),
            [
                "CRAM-MD5: challenge is not valid base64",
                "CRAM-MD5: response has no space between user name and digest"
            ]
        );
        let cred = sasl.finish(None);
        assert_eq!((cred.username, cred.details.challenge), (None, None));
    }

    const DIGEST_CHALLENGE: &str = r#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#;
    const DIGEST_RESPONSE: &str = r#"charset=utf-8,username="chris",realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",nc=00000001,cnonce="OA6MHXh6VqTrRk",digest-uri="imap/elwood.innosoft.com",response=d388dad90d4bbd760a152321f2143af7,qop=auth"#;

    #[test]
    fn digest_md5_full_exchange() {
        let mut sasl = start("DIGEST-MD5", None);
        sasl.server_challenge(&b64(DIGEST_CHALLENGE));
        sasl.client_response(&b64(DIGEST_RESPONSE));
        sasl.server_challenge(&b64("rspauth=ea40f60335c427b5527b84dbabcdfffd"));
        sasl.client_response("");
        no_problems(&sasl);
        let cred = sasl.finish(Some(true));
        let d = &cred.details;
        assert_eq!(cred.username.as_deref(), Some("chris"));
        assert_eq!(d.domain.as_deref(), Some("elwood.innosoft.com"));
        assert_eq!(d.challenge.as_deref(), Some("OA6MG9tEQGm2hh"));
        assert_eq!(
            d.response.as_deref(),
            Some("d388dad90d4bbd760a152321f2143af7")
        );
        assert_eq!(d.cnonce.as_deref(), Some("OA6MHXh6VqTrRk"));
        assert_eq!(d.nc.as_deref(), Some("00000001"));
        assert_eq!(d.qop.as_deref(), Some("auth"));
        assert_eq!(d.digest_uri.as_deref(), Some("imap/elwood.innosoft.com"));
    }

    #[test]
    fn digest_md5_latin1_user_and_nonce_mismatch() {
        let mut sasl = start("DIGEST-MD5", None);
        sasl.server_challenge(&b64(r#"realm="r",nonce="abc""#));
        sasl.client_response(&b64(b"username=\"j\xf6rg\",nonce=\"xyz\",response=00"));
        assert_eq!(
            sasl.problems(),
            ["DIGEST-MD5: response nonce differs from the server's"]
        );
        let cred = sasl.finish(None);
        assert_eq!(cred.username.as_deref(), Some("j\u{f6}rg"));
        // The server's realm stands when the client names none.
        assert_eq!(cred.details.domain.as_deref(), Some("r"));
        assert_eq!(cred.details.challenge.as_deref(), Some("xyz"));
    }

    #[test]
    fn digest_md5_garbled_response_keeps_what_parses() {
        let mut sasl = start("DIGEST-MD5", None);
        sasl.client_response(&b64(r#"username="u" junk,,broken,nonce="open"#));
        assert_eq!(
            sasl.problems(),
            [
                "DIGEST-MD5: response has malformed directives",
                "DIGEST-MD5: response has no response directive"
            ]
        );
        let cred = sasl.finish(None);
        assert_eq!(cred.username.as_deref(), Some("u"));
        assert_eq!(cred.details.challenge.as_deref(), Some("open"));
    }

    #[test]
    fn xoauth2_with_initial_response() {
        let ir = b64(
            "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01",
        );
        let sasl = start("XOAUTH2", Some(&ir));
        no_problems(&sasl);
        let cred = sasl.finish(Some(true));
        assert_eq!(cred.username.as_deref(), Some("someuser@example.com"));
        assert_eq!(
            cred.details.token.as_deref(),
            Some("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
        );
        assert_eq!(cred.password, None);
    }

    #[test]
    fn xoauth2_error_challenge_is_not_a_credential() {
        let mut sasl = start("XOAUTH2", None);
        sasl.server_challenge("");
        sasl.client_response(&b64("user=a@b.c\x01auth=Bearer tok\x01\x01"));
        sasl.server_challenge(&b64(
            r#"{"status":"401","schemes":"bearer","scope":"https://mail.example.com/"}"#,
        ));
        sasl.client_response("");
        no_problems(&sasl);
        let cred = sasl.finish(Some(false));
        assert_eq!(cred.username.as_deref(), Some("a@b.c"));
        assert_eq!(cred.details.token.as_deref(), Some("tok"));
    }

    #[test]
    fn xoauth2_without_known_keys_is_reported() {
        let sasl = start("XOAUTH2", Some(&b64("hello")));
        assert_eq!(
            sasl.problems(),
            ["XOAUTH2: response has neither user= nor auth="]
        );
    }

    #[test]
    fn oauthbearer_rfc7628_example() {
        let ir = b64(
            "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01",
        );
        let mut sasl = start("OAUTHBEARER", Some(&ir));
        sasl.server_challenge(&b64(r#"{"status":"invalid_token"}"#));
        sasl.client_response(&b64("\x01"));
        no_problems(&sasl);
        let cred = sasl.finish(Some(false));
        assert_eq!(cred.username.as_deref(), Some("user@example.com"));
        assert_eq!(
            cred.details.token.as_deref(),
            Some("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==")
        );
    }

    #[test]
    fn oauthbearer_without_gs2_header() {
        let sasl = start("OAUTHBEARER", Some(&b64("auth=Bearer x")));
        assert_eq!(
            sasl.problems(),
            [
                "OAUTHBEARER: response is not a GS2 header followed by ^A-separated values",
                "OAUTHBEARER: response has no auth= value"
            ]
        );
    }

    #[test]
    fn scram_first_message_names_the_user() {
        let mut sasl = start(
            "SCRAM-SHA-256",
            Some(&b64("n,a=ad=3Dmin,n=us=2Cer,r=rOprNGfwEbeRWgbNEkqO")),
        );
        sasl.server_challenge(&b64("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
        sasl.client_response(&b64("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
        no_problems(&sasl);
        let cred = sasl.finish(Some(true));
        assert_eq!(cred.mechanism, "SCRAM-SHA-256");
        assert_eq!(cred.username.as_deref(), Some("us,er"));
        assert_eq!(cred.details.authzid.as_deref(), Some("ad=min"));
        assert_eq!(cred.password, None);
    }

    #[test]
    fn external_authzid_and_empty_initial_response() {
        let sasl = start("EXTERNAL", Some("="));
        no_problems(&sasl);
        assert_eq!(sasl.finish(Some(true)).details.authzid, None);

        let mut sasl = start("EXTERNAL", None);
        sasl.server_challenge("");
        sasl.client_response(&b64("fred@example.com"));
        assert_eq!(
            sasl.finish(Some(true)).details.authzid.as_deref(),
            Some("fred@example.com")
        );
    }

    #[test]
    fn gssapi_and_unknown_mechanisms_record_only_the_name() {
        let mut sasl = start("GSSAPI", Some(&b64([0x60, 0x82, 0x01, 0x02, 0x06, 0x09])));
        sasl.server_challenge(&b64([0x60, 0x00]));
        sasl.client_response("");
        no_problems(&sasl);
        let cred = sasl.finish(Some(true));
        assert_eq!(cred.mechanism, "GSSAPI");
        assert_eq!(
            (cred.username, cred.details),
            (None, CredentialDetails::default())
        );

        let sasl = start("x-weird", Some(&b64("whoever")));
        let cred = sasl.finish(None);
        assert_eq!(cred.mechanism, "X-WEIRD");
        assert_eq!(cred.username, None);
    }

    #[test]
    fn problems_are_capped() {
        let mut sasl = start("LOGIN", None);
        for _ in 0..100 {
            sasl.client_response("!!!");
        }
        assert_eq!(sasl.problems().len(), MAX_PROBLEMS);
    }

    #[test]
    fn utf16le_escapes_unpaired_surrogates_and_odd_bytes() {
        assert_eq!(
            utf16le_text(&testing::utf16le("a\\b")),
            DecodedText {
                text: "a\\b".into(),
                escaped: false
            }
        );
        assert_eq!(
            utf16le_text(&[b'a', 0, 0x00, 0xd8, b'\\', 0, 0x41]),
            DecodedText {
                text: r"a\ud800\\\x41".into(),
                escaped: true
            }
        );
    }

    // --- NTLM -----------------------------------------------------------------------------

    const CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

    fn valid_type3() -> Vec<u8> {
        let blob = testing::ntlmv2_blob([0xaa; 8], "CORP");
        let nt = testing::ntlmv2_response("pw", "Alice", "CORP", CHALLENGE, &blob);
        testing::type3(&Type3 {
            flags: testing::UNICODE | testing::NTLM | testing::ESS,
            lm: &[0; 24],
            nt: &nt,
            domain: "CORP",
            user: "Alice",
            workstation: "WS-\u{e9}",
        })
    }

    #[test]
    fn ntlm_v2_with_type1_as_initial_response() {
        let type1 = testing::type1(testing::UNICODE | testing::OEM, "CORP", "WS1");
        let mut sasl = start("NTLM", Some(&b64(type1)));
        sasl.server_challenge(&b64(testing::type2(
            testing::UNICODE | testing::NTLM,
            CHALLENGE,
            "CORP",
        )));
        let type3 = valid_type3();
        sasl.client_response(&b64(&type3));
        no_problems(&sasl);
        let cred = sasl.finish(Some(true));
        let d = &cred.details;
        assert_eq!(cred.username.as_deref(), Some("Alice"));
        assert_eq!(d.domain.as_deref(), Some("CORP"));
        assert_eq!(d.workstation.as_deref(), Some("WS-\u{e9}"));
        assert_eq!(d.challenge.as_deref(), Some("0123456789abcdef"));
        assert_eq!(d.ntlm_version.as_deref(), Some("v2"));
        assert_eq!(d.lm_response.as_deref(), Some("0".repeat(48).as_str()));
        let nt = d.nt_response.as_deref().unwrap();
        assert!(nt.len() > 96 && nt.ends_with("00000000"), "{nt}");
    }

    #[test]
    fn ntlm_after_an_empty_challenge_with_oem_strings() {
        let mut sasl = start("NTLM", None);
        sasl.server_challenge("");
        sasl.client_response(&b64(testing::type1(testing::OEM, "DOM", "HOST")));
        sasl.server_challenge(&b64(testing::type2(testing::OEM, CHALLENGE, "DOM")));
        let nt = [0x5a; 24];
        sasl.client_response(&b64(testing::type3(&Type3 {
            flags: testing::OEM | testing::NTLM,
            lm: &nt,
            nt: &nt,
            domain: "DOM",
            user: "bob",
            workstation: "HOST",
        })));
        no_problems(&sasl);
        let cred = sasl.finish(None);
        assert_eq!(cred.username.as_deref(), Some("bob"));
        assert_eq!(cred.details.workstation.as_deref(), Some("HOST"));
        assert_eq!(cred.details.ntlm_version.as_deref(), Some("v1"));
    }

    #[test]
    fn ntlm_v1_ess_needs_both_the_flag_and_the_lm_shape() {
        let mut lm = [0u8; 24];
        lm[..8].copy_from_slice(&[9; 8]);
        let nt = [0x77; 24];
        let version = |flags: u32| {
            let mut sasl = start("NTLM", None);
            sasl.server_challenge(&b64(testing::type2(flags, CHALLENGE, "")));
            sasl.client_response(&b64(testing::type3(&Type3 {
                flags,
                lm: &lm,
                nt: &nt,
                domain: "",
                user: "u",
                workstation: "",
            })));
            sasl.finish(None).details.ntlm_version
        };
        assert_eq!(
            version(testing::UNICODE | testing::ESS).as_deref(),
            Some("v1-ess")
        );
        assert_eq!(version(testing::UNICODE).as_deref(), Some("v1"));
    }

    #[test]
    fn ntlm_anonymous_has_no_version() {
        let mut sasl = start("NTLM", None);
        sasl.client_response(&b64(testing::type3(&Type3 {
            flags: testing::UNICODE,
            lm: &[0],
            nt: &[],
            domain: "",
            user: "",
            workstation: "",
        })));
        no_problems(&sasl);
        let cred = sasl.finish(Some(true));
        assert_eq!(cred.username, None);
        assert_eq!(cred.details.ntlm_version, None);
        assert_eq!(cred.details.nt_response, None);
    }

    #[test]
    fn ntlm_messages_in_the_wrong_direction_or_garbled() {
        let mut sasl = start("NTLM", Some(&b64("NTLMSSP\0\x09\0\0\0")));
        sasl.server_challenge(&b64(valid_type3()));
        sasl.client_response(&b64(testing::type2(0, CHALLENGE, "")));
        sasl.client_response(&b64("hello"));
        assert_eq!(
            sasl.problems(),
            [
                "NTLM: client: unknown NTLM message type 9",
                "NTLM: server sent a Type 3 message",
                "NTLM: client sent a Type 2 (challenge) message",
                "NTLM: client: NTLM message too short (5 bytes)"
            ]
        );
    }

    #[test]
    fn ntlm_out_of_bounds_user_keeps_the_other_fields() {
        let mut type3 = valid_type3();
        type3[40..44].copy_from_slice(&0xffff_fff0u32.to_le_bytes()); // user offset
        let mut sasl = start("NTLM", None);
        sasl.client_response(&b64(&type3));
        assert_eq!(
            sasl.problems(),
            ["NTLM: Type 3 user field lies outside the message"]
        );
        let cred = sasl.finish(None);
        assert_eq!(cred.username, None);
        assert_eq!(cred.details.domain.as_deref(), Some("CORP"));
        assert_eq!(cred.details.ntlm_version.as_deref(), Some("v2"));
    }

    #[test]
    fn ntlm_every_truncation_of_a_type3_is_survived() {
        let type3 = valid_type3();
        for len in 1..type3.len() {
            let mut sasl = start("NTLM", None);
            sasl.server_challenge(&b64(testing::type2(testing::UNICODE, CHALLENGE, "X")));
            sasl.client_response(&b64(&type3[..len]));
            // Every cut loses something, and says so.
            assert!(!sasl.problems().is_empty(), "no problem at length {len}");
            let _ = sasl.finish(None);
        }
    }

    #[test]
    fn ntlm_every_byte_flip_of_a_type3_is_survived() {
        let type3 = valid_type3();
        for at in 0..type3.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut garbled = type3.clone();
                garbled[at] ^= flip;
                let mut sasl = start("NTLM", None);
                sasl.client_response(&b64(&garbled));
                let _ = sasl.finish(None);
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_steps_never_panic(
            mechanism in prop::sample::select(vec![
                "PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "XOAUTH2", "OAUTHBEARER", "NTLM",
                "GSSAPI", "EXTERNAL", "SCRAM-SHA-1", "OTHER",
            ]),
            initial in prop::option::of(prop::collection::vec(any::<u8>(), 0..200)),
            steps in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..300)), 0..6),
            raw in ".{0,40}",
        ) {
            let mut sasl = start(mechanism, initial.as_ref().map(b64).as_deref());
            for (from_server, bytes) in &steps {
                if *from_server {
                    sasl.server_challenge(&b64(bytes));
                } else {
                    sasl.client_response(&b64(bytes));
                }
            }
            sasl.client_response(&raw);
            sasl.server_challenge(&raw);
            prop_assert!(sasl.problems().len() <= MAX_PROBLEMS);
            let _ = sasl.finish(None);
        }

        #[test]
        fn ntlm_type3_with_random_payload_never_panics(
            header in prop::collection::vec(any::<u8>(), 0..120),
        ) {
            let mut message = b"NTLMSSP\0\x03\0\0\0".to_vec();
            message.extend_from_slice(&header);
            let mut sasl = start("NTLM", None);
            sasl.client_response(&b64(&message));
            let _ = sasl.finish(None);
        }
    }
}
