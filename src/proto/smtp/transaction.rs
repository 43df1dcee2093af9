//! SMTP mail transactions as records: each MAIL with its recipients, its DATA or BDAT and
//! the reply that settled it, as Zeek's smtp.log keeps `last_reply`.

use crate::session::MessageReply;
use crate::time::Timestamp;
use serde::Serialize;

/// Transactions kept per session; later ones are counted in `mail_transactions_dropped`.
pub const MAX_TRANSACTIONS: usize = 1_000;
/// Recipients kept per transaction record (the message's envelope keeps all accepted ones).
pub const MAX_TRANSACTION_RECIPIENTS: usize = 100;

/// How a mail transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionOutcome {
    /// The message was accepted (2xx after its end of data).
    Delivered,
    /// The message was refused for now (4xx after its end of data).
    Deferred,
    /// The message was refused (5xx after its end of data).
    Rejected,
    /// MAIL was refused: no transaction opened.
    MailRefused,
    /// Every recipient was refused, and DATA with them.
    NoRecipients,
    /// DATA (or BDAT) was refused before any content.
    DataRefused,
    /// The client gave up before sending a message (RSET, QUIT, a new EHLO, the end).
    Abandoned,
    /// The message was sent but no reply to it was captured.
    Unanswered,
}

impl TransactionOutcome {
    /// The outcome's JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionOutcome::Delivered => "delivered",
            TransactionOutcome::Deferred => "deferred",
            TransactionOutcome::Rejected => "rejected",
            TransactionOutcome::MailRefused => "mail_refused",
            TransactionOutcome::NoRecipients => "no_recipients",
            TransactionOutcome::DataRefused => "data_refused",
            TransactionOutcome::Abandoned => "abandoned",
            TransactionOutcome::Unanswered => "unanswered",
        }
    }

    /// The outcome of a message whose final reply had `code` (`None`: not captured).
    pub fn of_final_reply(code: Option<u16>) -> Self {
        match code {
            Some(200..=299) => TransactionOutcome::Delivered,
            Some(400..=499) => TransactionOutcome::Deferred,
            Some(_) => TransactionOutcome::Rejected,
            None => TransactionOutcome::Unanswered,
        }
    }
}

/// One recipient the client named, with the server's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionRecipient {
    /// The forward path, without angle brackets.
    pub path: String,
    /// The RCPT reply code (null when not captured).
    pub reply: Option<u16>,
}

/// One mail transaction: from MAIL to the reply that settled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailTransaction {
    /// When MAIL was sent (for a message whose MAIL was not captured, its DATA or BDAT).
    pub ts: Timestamp,
    /// The reverse path (`""` for the null sender), null when MAIL was not captured.
    pub mail_from: Option<String>,
    /// The MAIL reply code (null when not captured).
    pub mail_reply: Option<u16>,
    /// The recipients named, accepted or not, up to [`MAX_TRANSACTION_RECIPIENTS`].
    pub recipients: Vec<TransactionRecipient>,
    /// Recipients named beyond the ones kept.
    #[serde(skip_serializing_if = "is_zero")]
    pub recipients_not_kept: u64,
    /// The DATA reply code (354, or the refusal), null for BDAT or when not captured.
    pub data_reply: Option<u16>,
    /// The reply that settled the transaction (code and text), null when none was captured.
    pub last_reply: Option<MessageReply>,
    /// Index of the message carried in the session's `messages`, if one was recorded.
    pub message: Option<usize>,
    /// How it ended.
    pub outcome: TransactionOutcome,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
