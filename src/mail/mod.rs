//! Messages carried by SMTP and POP3, decoded as they stream.
//!
//! A dissector feeds each message's content to a [`MessageCollector`], which runs a
//! [`MessageStream`] (on the dissector's thread, or on a worker's): one pass over the bytes
//! computes the message's SHA-256 and size and walks its MIME structure, decoding transfer
//! encodings, hashing parts and attachments, excerpting bodies, collecting URLs and, when
//! extracting, streaming files to disk. Header blocks are parsed with `mail-parser`'s header
//! parser. Every limit of [`MimeLimits`] hit is a [`MimeProblem`] that becomes a session
//! anomaly; the rest of the message is still hashed and counted.

mod collector;
pub mod decoder;
mod digest;
mod headers;
pub mod magic;
#[cfg(test)]
mod oracle;
mod record;
pub mod stream;
mod transfer;
mod urls;

pub use collector::{
    DecodeSlot, DeferredMessage, DeferredState, Envelope, Job, KeepBounds, MessageCollector,
    MessageWorkers, WorkerQueue, resolve_deferred,
};
pub use digest::HashSelection;
pub use headers::{AddressRecord, HeaderField, HeaderSummary, ReceivedHop};
pub use magic::ContentKind;
pub use record::{AttachmentRecord, MimeSummary, PartRecord};
pub use stream::spool::Spool;
pub use stream::{
    MessageStream, SpooledAttachment, SpooledMessage, StreamOptions, StreamedMessage,
    decode_message,
};

/// Something wrong or cut short while decoding a message; becomes a session anomaly.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MimeProblem {
    /// Stable snake_case kind, e.g. `mime_bad_base64`.
    pub kind: &'static str,
    /// Human-readable detail of the first occurrence, naming the part.
    pub detail: String,
    /// How many times it occurred in the message.
    pub count: u64,
}

impl MimeProblem {
    /// A problem of `kind`.
    pub fn new(kind: &'static str, detail: impl Into<String>) -> Self {
        MimeProblem {
            kind,
            detail: detail.into(),
            count: 1,
        }
    }
}

/// Bounds on MIME decoding; hitting one is reported as an anomaly and keeps what came before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimeLimits {
    /// Test oracle only (the old decoder's pre-scan): leading message bytes handed to the MIME decoder; the rest is hashed and counted only.
    pub max_decode_bytes: usize,
    /// Header bytes listed and decoded per header block (a message's or a part's headers).
    pub max_header_block_bytes: usize,
    /// Header fields listed and decoded per header block.
    pub max_headers: usize,
    /// Deepest nesting of multiparts and encapsulated messages that is walked.
    pub max_depth: usize,
    /// MIME parts walked per message (containers included).
    pub max_parts: usize,
    /// Distinct URLs kept per message.
    pub max_urls: usize,
    /// Leading bytes of the text and HTML bodies kept in the record (`body_text`, `body_html`).
    pub max_body_bytes: usize,
    /// Test oracle only (the old decoder's pre-scan): header structure (`:` `,` `;` `<` bytes inside header blocks) the parser may build: a memory bound.
    pub max_header_tokens: usize,
    /// Test oracle only (the old decoder's pre-scan): header blocks (parts and encapsulated messages) the parser may start: a memory bound.
    pub max_header_blocks: usize,
    /// Test oracle only (the old decoder's pre-scan): bytes the parser may re-scan for boundaries that never come, plus the quadratic cost of
    /// parameter continuations: a time bound.
    pub max_scan_work: u64,
    /// Whether parts and attachments get their MD5, SHA-1 and SHA-256 (off where no output
    /// shows them, as in `analyze`'s tables: hashing is a third of the decoding cost).
    pub content_hashes: bool,
    /// Whether transfer encodings (base64) are undone. Off for outputs that show no decoded
    /// content, such as `analyze`'s tables: parts then keep their encoded bytes, so part sizes,
    /// body excerpts and URLs mean nothing, but base64 decoding, most of a message's cost, is
    /// saved. Headers, the part tree and file names are the same either way.
    pub decode_content: bool,
}

impl Default for MimeLimits {
    fn default() -> Self {
        MimeLimits {
            max_decode_bytes: 64 << 20,
            max_header_block_bytes: 64 << 10,
            max_headers: 1000,
            max_depth: 32,
            max_parts: 1000,
            max_urls: 500,
            max_body_bytes: 16 << 10,
            max_header_tokens: 500_000,
            max_header_blocks: 10_000,
            max_scan_work: 512 << 20,
            content_hashes: true,
            decode_content: true,
        }
    }
}
