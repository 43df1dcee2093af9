//! Where a dissector's message bytes go: a [`MessageStream`] run here, or on a worker thread.
//!
//! Decoding and hashing a message costs far more than dissecting the commands around it, so a
//! threaded run installs [`MessageWorkers`]: each message is given to one worker, which gets
//! its bytes in order as they arrive (copied, in a queue bounded in bytes) and runs the same
//! [`MessageStream`]. The session record then holds a [`DeferredMessage`] whose slot the worker
//! fills, and the record is completed with [`resolve_deferred`] before it is reported. A
//! message's record depends on its bytes alone, so both ways give the same record.

use super::stream::{MessageStream, StreamOptions, StreamedMessage};
use crate::limits::Limits;
use crate::session::{Direction, MessageBlob, MessageRecord, MessageSource, SessionRecord};
use crate::time::Timestamp;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
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

/// How a dissector starts its messages: decoding options and, in a threaded run, the workers.
#[derive(Debug, Clone)]
pub struct KeepBounds {
    /// The run's work budget (for what dissectors still hold: lines, held bytes).
    pub budget: crate::limits::RetentionBudget,
    options: StreamOptions,
    workers: Option<MessageWorkers>,
    open: Arc<AtomicUsize>,
    max_open: usize,
}

impl KeepBounds {
    /// The bounds the run's limits set.
    pub fn from_limits(limits: &Limits) -> Self {
        let mut options = StreamOptions::new(limits.mime.clone());
        options.hashes = if limits.content_hashes {
            limits.hashes
        } else {
            super::HashSelection::NONE
        };
        options.spool = limits.spool.clone();
        if options.spool.is_some() {
            // The manifest lists every hash of every extracted file.
            options.hashes = super::HashSelection::ALL;
        }
        KeepBounds {
            budget: limits.work_budget.clone(),
            options,
            workers: limits.workers.clone(),
            open: limits.open_messages.clone(),
            max_open: limits.max_open_messages,
        }
    }

    /// Starts a message: decoded, unless the run already has its most messages open with a
    /// decoder (then sized and hashed only, and said so in the session's anomalies).
    pub fn collector(&self, source: MessageSource, ts: Timestamp) -> MessageCollector {
        if self.open.load(Ordering::Relaxed) >= self.max_open && self.options.decode_mime {
            let options = StreamOptions {
                decode_mime: false,
                ..self.options.clone()
            };
            // Hashed here: a worker's batch buffer would cost more than the hashing saves.
            let mut c = MessageCollector::start(source, ts, &options, None);
            c.decode_mime = false;
            c.undecoded = Some(self.max_open);
            return c;
        }
        let mut c = MessageCollector::start(source, ts, &self.options, self.workers.as_ref());
        self.open.fetch_add(1, Ordering::Relaxed);
        c.open_slot = Some(OpenSlot(self.open.clone()));
        c
    }
}

/// A message's place among those the run decodes at once, given back when its content ends.
#[derive(Debug)]
struct OpenSlot(Arc<AtomicUsize>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A message's bytes on their way to its decoder.
#[derive(Debug)]
enum Feed {
    /// Decoded on this thread.
    Here(Box<MessageStream>),
    /// Decoded by a worker; bytes are sent in batches (a few per message, not one per segment).
    Worker {
        link: MessageWorkers,
        id: u64,
        worker: usize,
        batch: Vec<u8>,
    },
    /// Ended: the result, or where it will appear.
    Ended(DeferredState),
}

/// One message whose content is arriving: sized and timed here, decoded by its [`Feed`].
#[derive(Debug)]
pub struct MessageCollector {
    source: MessageSource,
    size: u64,
    first_seen: Timestamp,
    last_seen: Timestamp,
    decode_mime: bool,
    /// A gap cut into it: it is incomplete whatever its end says.
    cut: bool,
    feed: Option<Feed>,
    /// Its place among the messages decoded at once, while its content arrives.
    open_slot: Option<OpenSlot>,
    /// Not decoded because this many messages were open with a decoder when it started.
    undecoded: Option<usize>,
}

impl Drop for MessageCollector {
    fn drop(&mut self) {
        // A message abandoned without finishing frees its worker state.
        if let Some(Feed::Worker {
            link, id, worker, ..
        }) = self.feed.take()
        {
            link.send(worker, Job::Abandon(id), 0);
        }
    }
}

impl MessageCollector {
    fn start(
        source: MessageSource,
        ts: Timestamp,
        options: &StreamOptions,
        workers: Option<&MessageWorkers>,
    ) -> Self {
        MessageCollector {
            source,
            size: 0,
            first_seen: ts,
            last_seen: ts,
            decode_mime: true,
            cut: false,
            open_slot: None,
            undecoded: None,
            feed: Some(match workers {
                Some(w) => w.open(options),
                None => Feed::Here(Box::new(MessageStream::new(options))),
            }),
        }
    }

    /// Starts a message decoded on this thread with `options`.
    pub fn with_options(source: MessageSource, ts: Timestamp, options: &StreamOptions) -> Self {
        Self::start(source, ts, options, None)
    }

    /// Starts a message decoded on this thread with default options.
    pub fn new(source: MessageSource, ts: Timestamp) -> Self {
        Self::start(source, ts, &StreamOptions::new(Default::default()), None)
    }

    /// Starts a message bounded by the run's limits.
    pub fn from_limits(source: MessageSource, ts: Timestamp, limits: &Limits) -> Self {
        KeepBounds::from_limits(limits).collector(source, ts)
    }

    /// Adds content bytes (already dot-unstuffed where the protocol stuffs).
    pub fn push(&mut self, bytes: &[u8], ts: Timestamp) {
        if bytes.is_empty() {
            return;
        }
        self.size += bytes.len() as u64;
        self.last_seen = ts;
        match self.feed.as_mut() {
            Some(Feed::Here(s)) => s.push(bytes),
            Some(Feed::Worker {
                link,
                id,
                worker,
                batch,
            }) => {
                if batch.capacity() == 0 {
                    *batch = link.queued.buffer();
                }
                batch.extend_from_slice(bytes);
                if batch.len() >= BATCH_BYTES {
                    let full = std::mem::take(batch);
                    let n = full.len();
                    link.send(*worker, Job::Bytes(*id, full), n);
                }
            }
            _ => {}
        }
    }

    /// The capture missed `missing` bytes of the message here.
    pub fn gap(&mut self, missing: u64, ts: Timestamp) {
        self.last_seen = ts;
        self.cut = true;
        match self.feed.as_mut() {
            Some(Feed::Here(s)) => s.gap(missing),
            Some(Feed::Worker {
                link,
                id,
                worker,
                batch,
            }) => {
                flush(link, *id, *worker, batch);
                link.send(*worker, Job::Gap(*id, missing), 0);
            }
            _ => {}
        }
    }

    /// Records the message with its size and hash only: the session's record bound is reached.
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

    /// Ends the message's content: what it holds is decoded (here, or by its worker) and
    /// freed, while its record may still wait (for SMTP, for the server's verdict).
    /// `complete` is false when it was cut short. Later calls do nothing.
    pub fn end(&mut self, complete: bool) {
        self.open_slot = None;
        let complete = complete && !self.cut;
        let state = match self.feed.take() {
            Some(Feed::Here(s)) => DeferredState::Done(Box::new(s.finish(complete))),
            Some(Feed::Worker {
                link,
                id,
                worker,
                mut batch,
            }) => {
                flush(&link, id, worker, &mut batch);
                let slot = DecodeSlot::default();
                link.send(worker, Job::End(id, complete, slot.clone()), 0);
                DeferredState::Submitted(slot)
            }
            Some(Feed::Ended(state)) => state,
            None => return,
        };
        self.feed = Some(Feed::Ended(state));
    }

    /// Ends the message (see [`MessageCollector::end`]): appends its record to `rec` and returns its index.
    ///
    /// Decoding problems become anomalies of the session. With a worker, the record's hash and
    /// MIME fields are filled in later, by [`resolve_deferred`].
    pub fn finish(mut self, envelope: Envelope, complete: bool, rec: &mut SessionRecord) -> usize {
        let complete = complete && !self.cut;
        let index = rec.messages.len();
        // The side that sends the content: the client for SMTP, the server for POP3.
        let from = match self.source {
            MessageSource::Data | MessageSource::Bdat => Direction::Client,
            MessageSource::Retr | MessageSource::Top => Direction::Server,
        };
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
            missing_bytes: 0,
            sha256: String::new(),
            complete,
            reply: None,
            mime: None,
        });
        if let Some(max) = self.undecoded {
            rec.anomaly(
                self.first_seen,
                Some(from),
                "message_not_decoded",
                format!(
                    "{max} messages were open with a decoder across the run when this one \
                     started; it is recorded with its size and SHA-256 only"
                ),
            );
        }
        self.end(complete);
        let Some(Feed::Ended(state)) = self.feed.take() else {
            return index;
        };
        let deferred = DeferredMessage {
            index,
            from,
            at: self.last_seen,
            decode_mime: self.decode_mime,
            state,
        };
        if matches!(deferred.state, DeferredState::Done(_)) {
            deferred.resolve(rec);
        } else {
            rec.deferred.push(deferred);
        }
        index
    }
}

/// Message bytes gathered before they are sent to a worker: large enough that the hand-off
/// costs little per byte, small beside a message's other state.
const BATCH_BYTES: usize = 16 << 10;

/// Sends what `batch` holds.
fn flush(link: &MessageWorkers, id: u64, worker: usize, batch: &mut Vec<u8>) {
    if !batch.is_empty() {
        let full = std::mem::take(batch);
        let n = full.len();
        link.send(worker, Job::Bytes(id, full), n);
    }
}

/// Where a message's decoding stands.
#[derive(Debug, Clone)]
pub enum DeferredState {
    /// Decoded.
    Done(Box<StreamedMessage>),
    /// With a worker, which fills the slot.
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
    /// Whether its MIME structure is recorded (off past the session's record bound).
    pub decode_mime: bool,
    /// The result, or where it will appear.
    pub state: DeferredState,
}

impl DeferredMessage {
    /// Waits for the decoding and writes its result into `rec`. A panic of the worker that
    /// ran it is raised again here.
    pub fn resolve(self, rec: &mut SessionRecord) {
        let out = match self.state {
            DeferredState::Done(out) => *out,
            DeferredState::Submitted(slot) => match slot.wait() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            },
        };
        let index = self.index;
        let StreamedMessage {
            sha256,
            missing_bytes,
            mut mime,
            problems,
            files,
            ..
        } = out;
        if !self.decode_mime {
            mime = None;
        }
        if mime.is_some() {
            for p in &problems {
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
        }
        if let Some(m) = rec.messages.get_mut(index) {
            m.sha256 = sha256;
            m.missing_bytes = missing_bytes;
            m.mime = mime;
        }
        if let Some(files) = files {
            rec.blobs.push(MessageBlob {
                message: index,
                files,
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

type SlotValue = Option<std::thread::Result<StreamedMessage>>;

/// A one-shot place where a worker leaves a [`StreamedMessage`] (or its panic).
#[derive(Clone, Default)]
pub struct DecodeSlot(Arc<(Mutex<SlotValue>, Condvar)>);

impl std::fmt::Debug for DecodeSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecodeSlot")
    }
}

impl DecodeSlot {
    fn fill(&self, out: std::thread::Result<StreamedMessage>) {
        let (lock, ready) = &*self.0;
        let mut value = lock.lock().unwrap_or_else(|p| p.into_inner());
        *value = Some(out);
        ready.notify_all();
    }

    /// Blocks until the slot is filled and takes the outcome.
    fn wait(self) -> std::thread::Result<StreamedMessage> {
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

/// What a worker is told about the messages it decodes.
#[derive(Debug)]
pub enum Job {
    /// A message starts.
    Open(u64, Box<StreamOptions>),
    /// Its next content bytes.
    Bytes(u64, Vec<u8>),
    /// A gap in it.
    Gap(u64, u64),
    /// It ended: the result goes into the slot.
    End(u64, bool, DecodeSlot),
    /// It was abandoned.
    Abandon(u64),
}

/// Message bytes queued for the workers, bounded so a fast reader cannot pile them up.
#[derive(Debug)]
struct Queued {
    bytes: Mutex<usize>,
    freed: Condvar,
    limit: usize,
    /// Batch buffers the workers are done with, for the reader to fill again: a buffer freed
    /// on another thread than the one that allocated it is slow to be reused otherwise.
    spare: Mutex<Vec<Vec<u8>>>,
}

/// Spare batch buffers kept at most.
const SPARE_BUFFERS: usize = 256;

impl Queued {
    /// An empty batch buffer, reused when one is spare.
    fn buffer(&self) -> Vec<u8> {
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).pop();
        spare.unwrap_or_else(|| Vec::with_capacity(BATCH_BYTES + (BATCH_BYTES >> 2)))
    }

    /// Keeps a used batch buffer for reuse.
    fn recycle(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if spare.len() < SPARE_BUFFERS {
            spare.push(buffer);
        }
    }

    fn acquire(&self, n: usize) {
        let mut q = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        while *q > 0 && *q + n > self.limit {
            q = self.freed.wait(q).unwrap_or_else(|p| p.into_inner());
        }
        *q += n;
    }

    fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut q = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        *q = q.saturating_sub(n);
        self.freed.notify_all();
    }
}

/// The decoding workers of a threaded run: each message goes to one of them, in turn.
#[derive(Debug, Clone)]
pub struct MessageWorkers {
    senders: Arc<Vec<SyncSender<Job>>>,
    next: Arc<AtomicU64>,
    queued: Arc<Queued>,
}

impl MessageWorkers {
    /// Workers fed through `senders`, with at most `queue_bytes` of message bytes waiting.
    pub fn new(senders: Vec<SyncSender<Job>>, queue_bytes: usize) -> Self {
        MessageWorkers {
            senders: Arc::new(senders),
            next: Arc::new(AtomicU64::new(0)),
            queued: Arc::new(Queued {
                bytes: Mutex::new(0),
                freed: Condvar::new(),
                limit: queue_bytes,
                spare: Mutex::new(Vec::new()),
            }),
        }
    }

    fn open(&self, options: &StreamOptions) -> Feed {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let worker = (id % self.senders.len().max(1) as u64) as usize;
        self.send(worker, Job::Open(id, Box::new(options.clone())), 0);
        Feed::Worker {
            link: self.clone(),
            id,
            worker,
            batch: Vec::new(),
        }
    }

    fn send(&self, worker: usize, job: Job, bytes: usize) {
        self.queued.acquire(bytes);
        let Some(tx) = self.senders.get(worker) else {
            self.queued.release(bytes);
            return;
        };
        if tx.send(job).is_err() {
            // The worker is gone (it panicked): its messages' slots report that.
            self.queued.release(bytes);
        }
    }

    /// What a worker thread needs: the queue accounting, not the senders (so it ends).
    pub fn queue(&self) -> WorkerQueue {
        WorkerQueue(Arc::clone(&self.queued))
    }
}

/// A worker's side of [`MessageWorkers`].
#[derive(Debug)]
pub struct WorkerQueue(Arc<Queued>);

impl WorkerQueue {
    /// Runs one worker over its jobs until every sender is gone.
    pub fn work(self, jobs: Receiver<Job>) {
        let mut open: HashMap<u64, MessageStream, foldhash::fast::RandomState> = HashMap::default();
        for job in jobs {
            match job {
                Job::Open(id, options) => {
                    open.insert(id, MessageStream::new(&options));
                }
                Job::Bytes(id, bytes) => {
                    if let Some(s) = open.get_mut(&id) {
                        s.push(&bytes);
                    }
                    self.0.release(bytes.len());
                    self.0.recycle(bytes);
                }
                Job::Gap(id, n) => {
                    if let Some(s) = open.get_mut(&id) {
                        s.gap(n);
                    }
                }
                Job::End(id, complete, slot) => {
                    if let Some(s) = open.remove(&id) {
                        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            s.finish(complete)
                        }));
                        slot.fill(out);
                    }
                }
                Job::Abandon(id) => {
                    open.remove(&id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Endpoint, Protocol};
    use sha2::{Digest, Sha256};

    fn rec() -> SessionRecord {
        let ep = |port| Endpoint {
            ip: "192.0.2.1".parse().expect("ip"),
            port,
        };
        SessionRecord::new(3, Protocol::Smtp, ep(40000), ep(25), Timestamp(0))
    }

    const MSG: &[u8] = b"From: a@example.org\r\nSubject: hi\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nbody\r\n--b\r\nContent-Type: application/octet-stream; name=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n";

    #[test]
    fn finish_records_the_decoded_message() {
        let mut r = rec();
        let mut c = MessageCollector::new(MessageSource::Data, Timestamp(1));
        c.push(&MSG[..10], Timestamp(1));
        c.push(&MSG[10..], Timestamp(2));
        let i = c.finish(Envelope::default(), true, &mut r);
        assert_eq!(i, 0);
        let m = &r.messages[0];
        assert_eq!(m.sha256, hex::encode(Sha256::digest(MSG)));
        let mime = m.mime.as_ref().expect("decoded");
        assert_eq!(mime.header.subject.as_deref(), Some("hi"));
        assert_eq!(mime.attachments.len(), 1);
        assert_eq!(mime.attachments[0].size, 3);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    }

    #[test]
    fn problems_become_anomalies_on_the_sending_side() {
        let mut r = rec();
        let mut c = MessageCollector::new(MessageSource::Retr, Timestamp(1));
        c.push(
            b"Subject: x\r\nContent-Type: text/plain; charset=x-nonsense\r\n\r\nhello\r\n",
            Timestamp(1),
        );
        c.finish(Envelope::default(), true, &mut r);
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
    fn a_worker_gives_the_same_record() {
        let direct = {
            let mut r = rec();
            let mut c = MessageCollector::new(MessageSource::Retr, Timestamp(1));
            c.push(&MSG[..7], Timestamp(1));
            c.gap(5, Timestamp(2));
            c.push(&MSG[7..], Timestamp(2));
            c.finish(Envelope::default(), true, &mut r);
            r
        };
        let (tx, jobs) = std::sync::mpsc::sync_channel(4);
        let workers = MessageWorkers::new(vec![tx], 16);
        let q = workers.queue();
        let worker = std::thread::spawn(move || q.work(jobs));
        let mut r = rec();
        let options = StreamOptions::new(Default::default());
        let mut c =
            MessageCollector::start(MessageSource::Retr, Timestamp(1), &options, Some(&workers));
        c.push(&MSG[..7], Timestamp(1));
        c.gap(5, Timestamp(2));
        c.push(&MSG[7..], Timestamp(2));
        c.finish(Envelope::default(), true, &mut r);
        // An abandoned message leaves nothing behind.
        let mut gone =
            MessageCollector::start(MessageSource::Retr, Timestamp(3), &options, Some(&workers));
        gone.push(b"Subject: never finished\r\n", Timestamp(3));
        drop(gone);
        drop(workers);
        assert_eq!(r.deferred.len(), 1);
        resolve_deferred(&mut r);
        worker.join().expect("worker");
        let json = |r: &SessionRecord| serde_json::to_string(r).expect("json");
        assert_eq!(json(&direct), json(&r));
        assert_eq!(r.messages[0].missing_bytes, 5);
    }
}
