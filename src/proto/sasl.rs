//! SASL mechanisms shared by SMTP AUTH and POP3 AUTH: each step decoded into a credential.

use crate::session::{Credential, CredentialDetails};
use crate::time::Timestamp;

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
            Mechanism::Other(s) => s,
        }
    }
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
        let _ = initial_response;
        SaslExchange {
            mechanism: Mechanism::parse(mechanism),
            ts,
            encrypted,
            details: CredentialDetails::default(),
            username: None,
            password: None,
            problems: Vec::new(),
        }
    }

    /// The mechanism in use.
    pub fn mechanism(&self) -> &Mechanism {
        &self.mechanism
    }

    /// A server challenge: the text after `334 ` (SMTP) or `+ ` (POP3), as sent.
    pub fn server_challenge(&mut self, payload: &str) {
        let _ = payload;
    }

    /// A client response line, as sent (base64, or `*` to cancel).
    pub fn client_response(&mut self, line: &str) {
        let _ = line;
    }

    /// Whether the client cancelled with `*`.
    pub fn cancelled(&self) -> bool {
        self.details.cancelled
    }

    /// Malformed steps met so far (bad base64, truncated NTLM message...), for anomalies.
    pub fn problems(&self) -> &[String] {
        &self.problems
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
}
