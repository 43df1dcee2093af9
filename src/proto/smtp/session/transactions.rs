//! The record of each mail transaction, kept as replies are matched to their commands (so
//! in command order): MAIL opens one, RCPT adds recipients, DATA or the end of a message
//! settles it, and RSET, a new EHLO, STARTTLS, QUIT or the end abandon one left open.

use super::{Core, FREE_SUMMARY_BYTES, HeldReply};
use crate::proto::smtp::transaction::{
    MAX_TRANSACTION_RECIPIENTS, MAX_TRANSACTIONS, MailTransaction, TransactionOutcome,
    TransactionRecipient,
};
use crate::session::{Direction, MessageReply, SessionRecord};
use crate::time::Timestamp;

/// A reply as the transaction record keeps it: its code and its lines joined.
pub(super) fn reply_of(r: &HeldReply) -> MessageReply {
    let mut text = r.text.clone();
    for more in &r.more {
        text.push(' ');
        text.push_str(more);
    }
    MessageReply { code: r.code, text }
}

impl Core {
    /// The open transaction's record, if one is open and kept.
    fn open_transaction(&mut self) -> Option<&mut MailTransaction> {
        let i = self.txn_record?;
        self.summary.mail_transactions.get_mut(i)
    }

    /// Starts a record; returns its index, or `None` past the bound (then counted).
    fn new_transaction(&mut self, t: MailTransaction) -> Option<usize> {
        let cost =
            std::mem::size_of::<MailTransaction>() + t.mail_from.as_ref().map_or(0, String::len);
        let list = &mut self.summary.mail_transactions;
        if list.len() >= MAX_TRANSACTIONS || !self.summary_charge.keep(cost, FREE_SUMMARY_BYTES) {
            self.summary.mail_transactions_dropped += 1;
            return None;
        }
        list.push(t);
        Some(list.len() - 1)
    }

    /// MAIL was answered (or never): a new transaction, refused or open.
    pub(super) fn transaction_mail(
        &mut self,
        ts: Timestamp,
        path: Option<&str>,
        reply: Option<&HeldReply>,
    ) {
        self.transaction_abandoned();
        let refused = reply.is_some_and(|r| r.code >= 400);
        let index = self.new_transaction(MailTransaction {
            ts,
            mail_from: path.map(str::to_string),
            mail_reply: reply.map(|r| r.code),
            recipients: Vec::new(),
            recipients_not_kept: 0,
            data_reply: None,
            last_reply: reply.filter(|_| refused).map(reply_of),
            message: None,
            outcome: if refused {
                TransactionOutcome::MailRefused
            } else {
                TransactionOutcome::Abandoned
            },
        });
        self.txn_record = index.filter(|_| !refused);
    }

    /// RCPT was answered (or never).
    pub(super) fn transaction_rcpt(&mut self, path: Option<&str>, code: Option<u16>) {
        let Some(kept) = self.open_transaction().map(|t| t.recipients.len()) else {
            return;
        };
        let path = path.unwrap_or_default();
        let cost = std::mem::size_of::<TransactionRecipient>() + path.len();
        let keep =
            kept < MAX_TRANSACTION_RECIPIENTS && self.summary_charge.keep(cost, FREE_SUMMARY_BYTES);
        let Some(t) = self.open_transaction() else {
            return;
        };
        if keep {
            t.recipients.push(TransactionRecipient {
                path: path.to_string(),
                reply: code,
            });
        } else {
            t.recipients_not_kept += 1;
        }
    }

    /// DATA was answered (or never): a refusal settles the transaction. A DATA outside any
    /// transaction, or without any RCPT, is an anomaly (after refused recipients it is not:
    /// pipelining clients send DATA before they know).
    pub(super) fn transaction_data(
        &mut self,
        ts: Timestamp,
        reply: Option<&HeldReply>,
        rec: &mut SessionRecord,
    ) {
        let client = Some(Direction::Client);
        if !self.txn.open {
            rec.anomaly(
                ts,
                client,
                "data_without_transaction",
                "DATA without an accepted MAIL before it",
            );
        } else if self.txn.rcpt_named == 0 {
            rec.anomaly(
                ts,
                client,
                "data_without_recipients",
                "DATA without any RCPT before it",
            );
        }
        let no_recipients = self.txn.open && self.txn.rcpt_to.is_empty();
        let code = reply.map(|r| r.code);
        let Some(t) = self.open_transaction() else {
            return;
        };
        t.data_reply = code;
        if let Some(r) = reply.filter(|r| r.code >= 400) {
            t.last_reply = Some(reply_of(r));
            t.outcome = if no_recipients {
                TransactionOutcome::NoRecipients
            } else {
                TransactionOutcome::DataRefused
            };
            self.txn_record = None;
        }
    }

    /// A message ended and its final reply came (or never): that settles the transaction. A
    /// message whose MAIL was not captured gets a record of its own.
    pub(super) fn transaction_message(
        &mut self,
        ts: Timestamp,
        index: Option<usize>,
        verdict: Option<&MessageReply>,
    ) {
        let outcome = TransactionOutcome::of_final_reply(verdict.map(|v| v.code));
        if self.txn_record.is_none() {
            self.txn_record = self.new_transaction(MailTransaction {
                ts,
                mail_from: self.txn.mail_from.clone(),
                mail_reply: None,
                recipients: Vec::new(),
                recipients_not_kept: 0,
                data_reply: None,
                last_reply: None,
                message: None,
                outcome,
            });
        }
        if let Some(t) = self.open_transaction() {
            t.last_reply = verdict.cloned();
            t.message = index;
            t.outcome = outcome;
        }
        self.txn_record = None;
    }

    /// The transaction left open ends without a message (RSET, EHLO, STARTTLS, QUIT, end).
    pub(super) fn transaction_abandoned(&mut self) {
        if let Some(t) = self.open_transaction() {
            t.outcome = TransactionOutcome::Abandoned;
        }
        self.txn_record = None;
    }
}
