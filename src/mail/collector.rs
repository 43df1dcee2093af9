//! Streaming collection of one message: hash everything, keep a bounded prefix, decode at the end.

use super::{MimeLimits, decode};
use crate::limits::Limits;
use crate::session::{Direction, MessageBlob, MessageRecord, MessageSource, SessionRecord};
use crate::time::Timestamp;
use sha2::{Digest, Sha256};

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
    mime: MimeLimits,
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
            mime: MimeLimits::default(),
            first_seen: ts,
            last_seen: ts,
        }
    }

    /// Starts a message bounded by the run's limits (message bytes kept and MIME limits).
    pub fn from_limits(source: MessageSource, ts: Timestamp, limits: &Limits) -> Self {
        Self::new(source, ts, limits.max_message_bytes).with_mime_limits(limits.mime.clone())
    }

    /// Uses these MIME decoding limits instead of the defaults.
    pub fn with_mime_limits(mut self, mime: MimeLimits) -> Self {
        self.mime = mime;
        self
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
    /// Decoding problems become anomalies of the session. When `keep_bytes` is set, the content
    /// and the decoded attachments are also handed on as a blob for extraction.
    pub fn finish(
        self,
        envelope: Envelope,
        complete: bool,
        keep_bytes: bool,
        rec: &mut SessionRecord,
    ) -> usize {
        let truncated = self.size > self.kept.len() as u64;
        let index = rec.messages.len();
        // The side that sends the content: the client for SMTP, the server for POP3.
        let from = match self.source {
            MessageSource::Data | MessageSource::Bdat => Direction::Client,
            MessageSource::Retr | MessageSource::Top => Direction::Server,
        };
        if truncated {
            rec.anomaly(
                self.last_seen,
                Some(from),
                "message_too_large",
                format!(
                    "message of {} bytes: only the first {} were decoded",
                    self.size,
                    self.kept.len()
                ),
            );
        }
        let decoded = decode(&self.kept, complete && !truncated, &self.mime, keep_bytes);
        for p in &decoded.problems {
            // Every occurrence counts on the session, which folds them by kind too.
            for _ in 0..p.count {
                rec.anomaly(
                    self.last_seen,
                    Some(from),
                    p.kind,
                    format!("message {index}: {}", p.detail),
                );
            }
        }
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
            mime: Some(decoded.summary),
        });
        if keep_bytes {
            rec.blobs.push(MessageBlob {
                message: index,
                bytes: self.kept,
                attachments: decoded.attachments,
            });
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Endpoint, Protocol};

    fn rec() -> SessionRecord {
        let ep = |port| Endpoint {
            ip: "192.0.2.1".parse().expect("ip"),
            port,
        };
        SessionRecord::new(3, Protocol::Smtp, ep(40000), ep(25), Timestamp(0))
    }

    const MSG: &[u8] = b"From: a@example.org\r\nSubject: hi\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nbody\r\n--b\r\nContent-Type: application/octet-stream; name=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n";

    #[test]
    fn finish_records_decoded_message_and_blob() {
        let mut r = rec();
        let mut c = MessageCollector::new(MessageSource::Data, Timestamp(1), 1 << 20);
        c.push(&MSG[..10], Timestamp(1));
        c.push(&MSG[10..], Timestamp(2));
        let i = c.finish(Envelope::default(), true, true, &mut r);
        assert_eq!(i, 0);
        let m = &r.messages[0];
        assert_eq!(m.sha256, hex::encode(Sha256::digest(MSG)));
        let mime = m.mime.as_ref().expect("decoded");
        assert_eq!(mime.header.subject.as_deref(), Some("hi"));
        assert_eq!(mime.attachments.len(), 1);
        assert_eq!(r.blobs.len(), 1);
        assert_eq!(r.blobs[0].bytes, MSG);
        assert_eq!(r.blobs[0].attachments[0].bytes, vec![0u8, 1, 2]);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    }

    #[test]
    fn message_json_carries_the_decoded_fields_beside_the_envelope() {
        let mut r = rec();
        let mut c = MessageCollector::new(MessageSource::Data, Timestamp(1), 1 << 20);
        c.push(MSG, Timestamp(1));
        let env = Envelope {
            mail_from: Some("a@example.org".into()),
            ..Envelope::default()
        };
        c.finish(env, true, false, &mut r);
        let json = serde_json::to_string(&r.messages[0]).expect("json");
        let v: serde_json::Value = serde_json::from_str(&json).expect("parse");
        for key in [
            "index",
            "source",
            "size",
            "sha256",
            "complete",
            "mail_from",
            "subject",
            "from",
            "to",
            "cc",
            "date",
            "message_id",
            "headers",
            "parts",
            "attachments",
            "urls",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        // Flattening must not produce a key twice.
        let top_keys = v.as_object().map_or(0, |o| o.len());
        let written = json.matches("\"sha256\":").count();
        assert_eq!(written, 1 + 3 + 1, "message, three parts, one attachment");
        assert!(top_keys > 30);
        assert_eq!(v["subject"], "hi");
        assert_eq!(v["mail_from"], "a@example.org");
    }

    #[test]
    fn problems_become_anomalies_on_the_sending_side() {
        let mut r = rec();
        let mut c = MessageCollector::new(MessageSource::Retr, Timestamp(1), 1 << 20);
        c.push(
            b"Subject: x\r\nContent-Type: text/plain; charset=x-nonsense\r\n\r\nhello\r\n",
            Timestamp(1),
        );
        c.finish(Envelope::default(), true, false, &mut r);
        assert!(r.blobs.is_empty());
        let a = r
            .anomalies
            .iter()
            .find(|a| a.kind == "mime_unknown_charset")
            .expect("anomaly");
        assert_eq!(a.from, Some(Direction::Server));
        assert!(a.detail.starts_with("message 0:"));
    }

    #[test]
    fn oversized_message_is_hashed_whole_and_decoded_in_part() {
        let mut r = rec();
        let mut c = MessageCollector::new(MessageSource::Data, Timestamp(1), 20);
        c.push(MSG, Timestamp(1));
        c.finish(Envelope::default(), true, false, &mut r);
        let m = &r.messages[0];
        assert_eq!(m.size, MSG.len() as u64);
        assert_eq!(m.sha256, hex::encode(Sha256::digest(MSG)));
        assert!(r.has_anomaly("message_too_large"));
        assert_eq!(m.mime.as_ref().map(|s| s.decoded_bytes), Some(20));
    }
}
