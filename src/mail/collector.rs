//! Streaming collection of one message: hash everything, keep a bounded prefix, decode at the end.
//!
//! Decoding and hashing a message costs far more than dissecting the commands around it, so a
//! session record may ask for it to be deferred ([`SessionRecord::defer_decoding`]): the
//! collector then leaves a [`DeferredMessage`] that another thread runs, and the record is
//! completed with [`DeferredMessage::resolve`] before it is reported. Both ways give the same
//! record.

use super::{MimeLimits, decode};
use crate::limits::{Limits, RetentionBudget};
use crate::session::{Direction, MessageBlob, MessageRecord, MessageSource, SessionRecord};
use crate::time::Timestamp;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Condvar, Mutex};

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

/// How much of each message to keep: a bound per message and the run's shared budget.
#[derive(Debug, Clone)]
pub struct KeepBounds {
    /// Most bytes kept of one message.
    pub max_bytes: usize,
    /// The run's budget across sessions.
    pub budget: RetentionBudget,
    /// Bounds on decoding each message.
    pub mime: MimeLimits,
}

impl KeepBounds {
    /// The bounds the run's limits set.
    pub fn from_limits(limits: &Limits) -> Self {
        KeepBounds {
            max_bytes: limits.max_message_bytes,
            budget: limits.budget.clone(),
            mime: limits.mime.clone(),
        }
    }

    /// Starts a message within these bounds.
    pub fn collector(&self, source: MessageSource, ts: Timestamp) -> MessageCollector {
        MessageCollector::new(source, ts, self.max_bytes)
            .with_budget(self.budget.clone())
            .with_mime_limits(self.mime.clone())
    }
}

/// Accumulates one message's content as it streams: hashes all of it, keeps a bounded prefix.
///
/// The kept bytes are reserved against the run's [`RetentionBudget`] and returned when the
/// message is finished (or the collector dropped); once the budget is spent, later content
/// is hashed and counted but not kept, as past `max_keep`.
#[derive(Debug)]
pub struct MessageCollector {
    source: MessageSource,
    /// Hash of the content; the kept prefix is only fed in once bytes beyond it arrive, so a
    /// message that fits is hashed in one pass when it is decoded (possibly on another thread).
    hasher: Sha256,
    /// Whether `kept` has been fed to `hasher` (the message outgrew the bytes kept).
    overflowed: bool,
    size: u64,
    kept: Vec<u8>,
    max_keep: usize,
    mime: MimeLimits,
    first_seen: Timestamp,
    last_seen: Timestamp,
    budget: RetentionBudget,
    /// Bytes reserved against `budget`: the capacity of `kept`.
    reserved: usize,
    /// Whether the budget refused bytes this message would have kept.
    budget_refused: bool,
    /// Whether the message's MIME structure is to be decoded.
    decode_mime: bool,
}

impl Drop for MessageCollector {
    fn drop(&mut self) {
        self.budget.release(self.reserved);
    }
}

impl MessageCollector {
    /// Starts a message; at most `max_keep` bytes are kept for decoding and extraction.
    pub fn new(source: MessageSource, ts: Timestamp, max_keep: usize) -> Self {
        MessageCollector {
            source,
            hasher: Sha256::new(),
            overflowed: false,
            size: 0,
            kept: Vec::new(),
            max_keep,
            mime: MimeLimits::default(),
            first_seen: ts,
            last_seen: ts,
            budget: RetentionBudget::unlimited(),
            reserved: 0,
            budget_refused: false,
            decode_mime: true,
        }
    }

    /// Reserves the kept bytes against `budget`, shared with the run's other sessions.
    pub fn with_budget(mut self, budget: RetentionBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Starts a message bounded by the run's limits (message bytes kept and MIME limits).
    pub fn from_limits(source: MessageSource, ts: Timestamp, limits: &Limits) -> Self {
        KeepBounds::from_limits(limits).collector(source, ts)
    }

    /// Uses these MIME decoding limits instead of the defaults.
    pub fn with_mime_limits(mut self, mime: MimeLimits) -> Self {
        self.mime = mime;
        self
    }

    /// Adds content bytes (already dot-unstuffed where the protocol stuffs).
    pub fn push(&mut self, bytes: &[u8], ts: Timestamp) {
        self.size += bytes.len() as u64;
        let mut room = self
            .max_keep
            .saturating_sub(self.kept.len())
            .min(bytes.len());
        let need = self.kept.len() + room;
        // A message kept in pieces would decode as a different one: once refused, keep no more.
        if room > 0
            && !self
                .budget
                .grow(&mut self.kept, &mut self.reserved, need, self.max_keep, 0)
        {
            self.budget_refused = true;
            self.max_keep = self.kept.len();
            room = 0;
        }
        let (keep, rest) = bytes.split_at(room);
        self.kept.extend_from_slice(keep);
        if !rest.is_empty() {
            if !self.overflowed {
                self.hasher.update(&self.kept);
                self.overflowed = true;
            }
            self.hasher.update(rest);
        }
        self.last_seen = ts;
    }

    /// Returns the kept bytes' reservation now that the message is complete: from here they
    /// belong to the decoding step, whose queue has its own bound, and the budget they free
    /// should go to the message's record first. Nothing more is kept after this.
    pub fn release_budget(&mut self) {
        self.budget.release(std::mem::take(&mut self.reserved));
        self.max_keep = self.kept.len();
    }

    /// Records the message with its size and hash only, without decoding its MIME structure:
    /// the run's budget cannot hold a decoded record.
    pub fn skip_mime(&mut self) {
        self.decode_mime = false;
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
    /// and the decoded attachments are also handed on as a blob for extraction. When `rec`
    /// defers decoding (and `keep_bytes` is not set), the record's hash and MIME fields are
    /// filled in later by [`DeferredMessage::resolve`].
    pub fn finish(
        mut self,
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
        if self.budget_refused {
            let limit = self.budget.limit().unwrap_or(0);
            rec.anomaly(
                self.last_seen,
                Some(from),
                "memory_budget",
                format!(
                    "the {limit}-byte budget for content kept across sessions was spent: \
                     message of {} bytes decoded from its first {} only",
                    self.size,
                    self.kept.len()
                ),
            );
        } else if truncated {
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
            sha256: String::new(),
            complete,
            mime: None,
        });
        // From here the bytes belong to the decoding step, whose queue has its own bound.
        self.budget.release(std::mem::take(&mut self.reserved));
        let work = DecodeWork {
            hashes: rec.content_hashes,
            hasher: self.overflowed.then(|| self.hasher.clone()),
            kept: std::mem::take(&mut self.kept),
            complete: complete && !truncated,
            mime: std::mem::take(&mut self.mime),
            keep_bytes,
            decode_mime: self.decode_mime,
        };
        let deferred = DeferredMessage {
            index,
            from,
            at: self.last_seen,
            state: DeferredState::Waiting(Box::new(work)),
        };
        if rec.defer_decoding && !keep_bytes {
            rec.deferred.push(deferred);
        } else {
            deferred.resolve(rec);
        }
        index
    }
}

/// The costly half of finishing a message: hashing it and decoding its MIME structure.
#[derive(Debug, Clone)]
pub struct DecodeWork {
    /// Whether the message and its parts are hashed.
    hashes: bool,
    /// The hash so far when the content outgrew `kept`; `None` when `kept` is all of it.
    hasher: Option<Sha256>,
    kept: Vec<u8>,
    complete: bool,
    mime: MimeLimits,
    keep_bytes: bool,
    /// Whether the MIME structure is decoded (off when the run's budget cannot hold it).
    decode_mime: bool,
}

/// What [`DecodeWork::run`] produced, ready to be written into the session record.
#[derive(Debug)]
pub struct DecodeOutput {
    sha256: String,
    decoded: Option<super::DecodedMessage>,
    kept: Option<Vec<u8>>,
}

impl DecodeWork {
    /// Bytes of message content the work holds.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// Hashes and decodes the message (the part that may run on another thread).
    pub fn run(mut self) -> DecodeOutput {
        let sha256 = match (self.hashes, self.hasher) {
            (false, _) => String::new(),
            (true, Some(h)) => hex::encode(h.finalize()),
            (true, None) => hex::encode(Sha256::digest(&self.kept)),
        };
        self.mime.content_hashes &= self.hashes;
        let decoded = self
            .decode_mime
            .then(|| decode(&self.kept, self.complete, &self.mime, self.keep_bytes));
        DecodeOutput {
            sha256,
            decoded,
            kept: self.keep_bytes.then_some(self.kept),
        }
    }
}

/// Where a deferred message's decoding stands.
#[derive(Debug, Clone)]
pub enum DeferredState {
    /// Not started: whoever resolves the message runs it.
    Waiting(Box<DecodeWork>),
    /// Handed to another thread, which fills the slot.
    Submitted(DecodeSlot),
}

/// A message recorded in a session whose hash and MIME fields are still to be filled in.
#[derive(Debug, Clone)]
pub struct DeferredMessage {
    /// Its index in the session's messages.
    pub index: usize,
    /// The side that sent its content (decoding problems are reported on it).
    pub from: Direction,
    /// Time of its last content byte (the time of its decoding problems).
    pub at: Timestamp,
    /// The work, or where its result will appear.
    pub state: DeferredState,
}

impl DeferredMessage {
    /// Whether the work is still here (not yet handed to another thread).
    pub fn is_waiting(&self) -> bool {
        matches!(self.state, DeferredState::Waiting(_))
    }

    /// Takes the work out for another thread, leaving `slot` to wait on; `None` if already taken.
    pub fn submit(&mut self, slot: DecodeSlot) -> Option<DecodeWork> {
        match std::mem::replace(&mut self.state, DeferredState::Submitted(slot)) {
            DeferredState::Waiting(work) => Some(*work),
            previous => {
                self.state = previous;
                None
            }
        }
    }

    /// Runs (or waits for) the decoding and writes its result into `rec`, as [`MessageCollector::finish`]
    /// would have. A panic of the thread that ran it is raised again here.
    pub fn resolve(self, rec: &mut SessionRecord) {
        let out = match self.state {
            DeferredState::Waiting(work) => work.run(),
            DeferredState::Submitted(slot) => match slot.wait() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            },
        };
        let DecodeOutput {
            sha256,
            decoded,
            kept,
        } = out;
        let index = self.index;
        let Some(decoded) = decoded else {
            if let Some(m) = rec.messages.get_mut(index) {
                m.sha256 = sha256;
            }
            if let Some(bytes) = kept {
                rec.blobs.push(MessageBlob {
                    message: index,
                    bytes,
                    attachments: Vec::new(),
                });
            }
            return;
        };
        for p in &decoded.problems {
            // Every occurrence counts on the session, which folds them by kind too.
            for _ in 0..p.count {
                rec.anomaly(
                    self.at,
                    Some(self.from),
                    p.kind,
                    format!("message {index}: {}", p.detail),
                );
            }
        }
        if let Some(m) = rec.messages.get_mut(index) {
            m.sha256 = sha256;
            m.mime = Some(decoded.summary);
        }
        if let Some(bytes) = kept {
            rec.blobs.push(MessageBlob {
                message: index,
                bytes,
                attachments: decoded.attachments,
            });
        }
    }
}

/// Resolves every deferred message of `rec`, in the order they ended.
pub fn resolve_deferred(rec: &mut SessionRecord) {
    for d in std::mem::take(&mut rec.deferred) {
        d.resolve(rec);
    }
}

type SlotValue = Option<std::thread::Result<DecodeOutput>>;

/// A one-shot place where another thread leaves a [`DecodeOutput`] (or its panic).
#[derive(Clone, Default)]
pub struct DecodeSlot(Arc<(Mutex<SlotValue>, Condvar)>);

impl std::fmt::Debug for DecodeSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecodeSlot")
    }
}

impl DecodeSlot {
    /// Runs `work`, catching a panic, and leaves the outcome for [`DecodeSlot::wait`].
    pub fn fill(&self, work: DecodeWork) {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.run()));
        let (lock, ready) = &*self.0;
        let mut value = lock.lock().unwrap_or_else(|p| p.into_inner());
        *value = Some(out);
        ready.notify_all();
    }

    /// Blocks until the slot is filled and takes the outcome.
    fn wait(self) -> std::thread::Result<DecodeOutput> {
        let (lock, ready) = &*self.0;
        let mut value = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(out) = value.take() {
                return out;
            }
            value = ready.wait(value).unwrap_or_else(|p| p.into_inner());
        }
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

    #[test]
    fn deferred_decoding_on_another_thread_gives_the_same_record() {
        let finish = |defer: bool, max_keep: usize| {
            let mut r = rec();
            r.defer_decoding = defer;
            let mut c = MessageCollector::new(MessageSource::Retr, Timestamp(1), max_keep);
            c.push(&MSG[..7], Timestamp(1));
            c.push(&MSG[7..], Timestamp(2));
            c.push(
                b"Content-Type: text/plain; charset=x-nonsense\r\n",
                Timestamp(3),
            );
            c.finish(Envelope::default(), true, false, &mut r);
            r
        };
        for max_keep in [1 << 20, 30] {
            let direct = finish(false, max_keep);
            assert!(direct.deferred.is_empty());
            let mut deferred = finish(true, max_keep);
            assert_eq!(deferred.deferred.len(), 1);
            assert!(deferred.messages[0].mime.is_none());
            let slot = DecodeSlot::default();
            let work = deferred.deferred[0].submit(slot.clone()).expect("work");
            std::thread::spawn(move || slot.fill(work))
                .join()
                .expect("worker");
            resolve_deferred(&mut deferred);
            let json = |r: &SessionRecord| serde_json::to_string(r).expect("json");
            assert_eq!(json(&direct), json(&deferred));
            assert!(!deferred.messages[0].sha256.is_empty());
        }
    }
}
