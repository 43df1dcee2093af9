//! SMTP (RFC 5321 and extensions): commands, replies, AUTH, STARTTLS, DATA and BDAT.
//!
//! [`command`] and [`reply`] parse single lines, [`body`] reads DATA bodies, and
//! [`session::SmtpDissector`] pairs the two directions into a session record.

pub mod body;
pub mod command;
pub mod reply;
pub mod session;
pub mod transaction;

#[cfg(test)]
mod tests;

pub use session::SmtpDissector;
pub use transaction::{MailTransaction, TransactionOutcome, TransactionRecipient};

use serde::Serialize;

/// What an SMTP session established, beyond its events (serialised under `smtp`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SmtpSummary {
    /// The last HELO/EHLO argument.
    pub helo: Option<String>,
    /// Which of `HELO` or `EHLO` was sent last.
    pub helo_verb: Option<String>,
    /// Code of the greeting reply (220, or 421/554 when the server refused the session).
    pub greeting_code: Option<u16>,
    /// Text of the greeting's first line.
    pub greeting: Option<String>,
    /// EHLO keyword lines of the last accepted EHLO, as sent.
    pub capabilities: Vec<String>,
    /// PIPELINING was offered.
    pub pipelining: bool,
    /// STARTTLS was offered.
    pub starttls_offered: bool,
    /// CHUNKING (BDAT) was offered.
    pub chunking: bool,
    /// 8BITMIME was offered.
    pub eightbitmime: bool,
    /// BINARYMIME was offered.
    pub binarymime: bool,
    /// SMTPUTF8 was offered.
    pub smtputf8: bool,
    /// DSN was offered.
    pub dsn: bool,
    /// ENHANCEDSTATUSCODES was offered.
    pub enhanced_status_codes: bool,
    /// The SIZE limit offered, if a number was given (0 means no fixed limit).
    pub size_limit: Option<u64>,
    /// SASL mechanisms offered in the EHLO reply, upper-cased.
    pub auth_mechanisms: Vec<String>,
    /// The client sent STARTTLS.
    pub starttls_attempted: bool,
    /// The server accepted STARTTLS with 220 (what follows is TLS).
    pub starttls_accepted: bool,
    /// AUTH commands sent.
    pub auth_attempts: u64,
    /// Some AUTH attempt succeeded.
    pub authenticated: bool,
    /// MAIL commands not rejected (transactions opened).
    pub transactions: u64,
    /// Messages whose final reply was 2xx.
    pub messages_accepted: u64,
    /// Messages whose final reply was 4xx or 5xx.
    pub messages_rejected: u64,
    /// RCPT commands rejected with 4xx or 5xx.
    pub recipients_rejected: u64,
    /// Command lines sent.
    pub commands: u64,
    /// Commands with a verb mailsift does not know (kept verbatim as events).
    pub unknown_commands: u64,
    /// Complete replies received.
    pub replies: u64,
    /// The client declared `BODY=BINARYMIME`.
    pub binarymime_used: bool,
    /// The client sent QUIT.
    pub quit: bool,
    /// A side was found not to speak SMTP and was no longer dissected.
    pub not_smtp: bool,
    /// Every mail transaction, in command order, with its envelope and outcome.
    pub mail_transactions: Vec<MailTransaction>,
    /// Transactions beyond the [`transaction::MAX_TRANSACTIONS`] kept.
    #[serde(skip_serializing_if = "is_zero")]
    pub mail_transactions_dropped: u64,
}

impl SmtpSummary {
    /// Adds what the session said inside a decrypted STARTTLS layer: the last HELO/EHLO and
    /// its capabilities are the ones sent inside, counts add up, flags are either side's.
    pub fn absorb_inner(&mut self, inner: &SmtpSummary) {
        if inner.helo_verb.is_some() {
            self.helo = inner.helo.clone();
            self.helo_verb = inner.helo_verb.clone();
        }
        if !inner.capabilities.is_empty() {
            self.capabilities = inner.capabilities.clone();
            self.pipelining = inner.pipelining;
            self.chunking = inner.chunking;
            self.eightbitmime = inner.eightbitmime;
            self.binarymime = inner.binarymime;
            self.smtputf8 = inner.smtputf8;
            self.dsn = inner.dsn;
            self.enhanced_status_codes = inner.enhanced_status_codes;
            self.size_limit = inner.size_limit;
            self.auth_mechanisms = inner.auth_mechanisms.clone();
        }
        self.starttls_attempted |= inner.starttls_attempted;
        self.starttls_accepted |= inner.starttls_accepted;
        self.auth_attempts += inner.auth_attempts;
        self.authenticated |= inner.authenticated;
        self.transactions += inner.transactions;
        self.messages_accepted += inner.messages_accepted;
        self.messages_rejected += inner.messages_rejected;
        self.recipients_rejected += inner.recipients_rejected;
        self.commands += inner.commands;
        self.unknown_commands += inner.unknown_commands;
        self.replies += inner.replies;
        self.binarymime_used |= inner.binarymime_used;
        self.quit |= inner.quit;
        self.not_smtp |= inner.not_smtp;
        let room = transaction::MAX_TRANSACTIONS.saturating_sub(self.mail_transactions.len());
        let taken = inner.mail_transactions.len().min(room);
        self.mail_transactions
            .extend_from_slice(&inner.mail_transactions[..taken]);
        self.mail_transactions_dropped +=
            inner.mail_transactions_dropped + (inner.mail_transactions.len() - taken) as u64;
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
