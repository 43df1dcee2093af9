//! Messages carried by SMTP and POP3: collection with hashing and bounds, then MIME decoding.

use crate::session::{MessageBlob, MessageRecord, MessageSource, SessionRecord};
use crate::time::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Decoded headers and MIME structure of a message (filled by the MIME issue).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MimeSummary {}

/// Decodes a message's headers and MIME structure, as far as its bytes go.
pub fn decode(_bytes: &[u8], _complete: bool) -> MimeSummary {
    MimeSummary::default()
}

/// Where a message came from, for its record.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// SMTP MAIL FROM path.
    pub mail_from: Option<String>,
    /// SMTP RCPT TO paths.
    pub rcpt_to: Option<Vec<String>>,
    /// POP3 message number.
    pub number: Option<u64>,
    /// POP3 UIDL.
    pub uidl: Option<String>,
}

/// Accumulates one message's content as it streams: hashes all of it, keeps a bounded prefix.
#[derive(Debug, Clone)]
pub struct MessageCollector {
    source: MessageSource,
    hasher: Sha256,
    size: u64,
    kept: Vec<u8>,
    max_keep: usize,
    first_seen: Timestamp,
    last_seen: Timestamp,
}

impl MessageCollector {
    /// Starts a message; at most `max_keep` bytes are kept for decoding and extraction.
    pub fn new(source: MessageSource, ts: Timestamp, max_keep: usize) -> Self {
        MessageCollector {
            source,
            hasher: Sha256::new(),
            size: 0,
            kept: Vec::new(),
            max_keep,
            first_seen: ts,
            last_seen: ts,
        }
    }

    /// Adds content bytes (already dot-unstuffed where the protocol stuffs).
    pub fn push(&mut self, bytes: &[u8], ts: Timestamp) {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        let room = self.max_keep.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.last_seen = ts;
    }

    /// Content bytes so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How the message travels.
    pub fn source(&self) -> MessageSource {
        self.source
    }

    /// Ends the message: decodes it, appends its record to `rec`, and returns its index.
    ///
    /// When `keep_bytes` is set, the content is also handed on as a blob for extraction.
    pub fn finish(
        self,
        envelope: Envelope,
        complete: bool,
        keep_bytes: bool,
        rec: &mut SessionRecord,
    ) -> usize {
        let truncated = self.size > self.kept.len() as u64;
        let index = rec.messages.len();
        if truncated {
            rec.anomaly(
                self.last_seen,
                None,
                "message_too_large",
                format!(
                    "message of {} bytes: only the first {} were decoded",
                    self.size,
                    self.kept.len()
                ),
            );
        }
        let mime = decode(&self.kept, complete && !truncated);
        rec.messages.push(MessageRecord {
            index,
            source: self.source,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            mail_from: envelope.mail_from,
            rcpt_to: envelope.rcpt_to,
            number: envelope.number,
            uidl: envelope.uidl,
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
            complete,
            mime: Some(mime),
        });
        if keep_bytes {
            rec.blobs.push(MessageBlob {
                message: index,
                bytes: self.kept,
            });
        }
        index
    }
}
