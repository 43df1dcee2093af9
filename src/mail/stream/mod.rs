//! A message decoded as it streams: every byte is looked at once, as it arrives.
//!
//! The SMTP (DATA, BDAT) and POP3 (RETR, TOP) dissectors feed a [`MessageStream`] with the
//! message's content, dot-unstuffed, in whatever pieces the network delivered, plus gaps; when
//! the message ends it gives its record: size and SHA-256 of the raw message, and the MIME
//! structure with every part's sizes and hashes, the bodies' excerpts and the URLs.
//!
//! What a message costs in memory does not depend on its size: a header block is kept until it
//! is complete (bounded), a text excerpt and the text still to be scanned for URLs are bounded,
//! the decoders carry a few bytes, and extraction writes decoded bytes straight to files. Hostile
//! structure is bounded by [`MimeLimits`] (depth, parts, header bytes): hitting a limit is a
//! [`MimeProblem`], and the rest of the message is still hashed and counted.

mod entity;
mod leaf;
pub mod spool;
mod walker;

use super::digest::{ContentHasher, HashSelection};
use super::record::{AttachmentRecord, MimeSummary};
use super::urls::UrlCollector;
use super::{MimeLimits, MimeProblem};
use sha2::{Digest, Sha256};
use spool::{Spool, SpoolFile};
use std::path::PathBuf;
use std::sync::Arc;
use walker::Walker;

/// How messages are decoded: limits, hashes, and whether extraction spools their bytes.
#[derive(Debug, Clone, Default)]
pub struct StreamOptions {
    /// Bounds on the MIME structure.
    pub limits: MimeLimits,
    /// Content hashes of parts and attachments.
    pub hashes: HashSelection,
    /// Whether the MIME structure is decoded at all (off: size and SHA-256 only).
    pub decode_mime: bool,
    /// Where extraction's files are streamed to, when extracting.
    pub spool: Option<Arc<Spool>>,
}

impl StreamOptions {
    /// Decoding with `limits` and every hash, nothing extracted.
    pub fn new(limits: MimeLimits) -> Self {
        StreamOptions {
            limits,
            hashes: HashSelection::ALL,
            decode_mime: true,
            spool: None,
        }
    }
}

/// A decoded attachment's bytes, written to a spool file for extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledAttachment {
    /// Section number of its part.
    pub path: String,
    /// The spool file holding its decoded bytes.
    pub file: PathBuf,
    /// Its decoded size.
    pub size: u64,
}

/// A message's files for extraction: the raw message and its attachments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledMessage {
    /// The spool file holding the message as captured.
    pub eml: PathBuf,
    /// MD5 of the message as captured, hex.
    pub eml_md5: String,
    /// SHA-1 of the message as captured, hex.
    pub eml_sha1: String,
    /// Its attachments, in document order.
    pub attachments: Vec<SpooledAttachment>,
}

/// What a finished [`MessageStream`] gives.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamedMessage {
    /// Bytes of content captured.
    pub size: u64,
    /// SHA-256 of the content captured, hex.
    pub sha256: String,
    /// Bytes of content the capture missed (gaps).
    pub missing_bytes: u64,
    /// The MIME structure, when decoded.
    pub mime: Option<MimeSummary>,
    /// Problems found, repeats folded (the same as `mime.decode_problems`).
    pub problems: Vec<MimeProblem>,
    /// The extraction files, when extracting.
    pub files: Option<SpooledMessage>,
}

/// What the walk over a message (and its encapsulated messages) records, shared by all walkers.
#[derive(Debug)]
pub(crate) struct Output {
    limits: MimeLimits,
    hashes: HashSelection,
    spool: Option<Arc<Spool>>,
    problems: Vec<MimeProblem>,
    parts: Vec<super::record::PartRecord>,
    attachments: Vec<AttachmentRecord>,
    files: Vec<SpooledAttachment>,
    urls: UrlCollector,
    body_text: Option<(String, bool)>,
    body_html: Option<(String, bool)>,
    claimed_text: bool,
    claimed_html: bool,
    /// The part limit was reached: nothing more is recorded.
    stopped: bool,
    stopped_depth: bool,
}

impl Output {
    fn new(options: &StreamOptions) -> Self {
        Output {
            limits: options.limits.clone(),
            hashes: options.hashes,
            spool: options.spool.clone(),
            problems: Vec::new(),
            parts: Vec::new(),
            attachments: Vec::new(),
            files: Vec::new(),
            urls: UrlCollector::new(options.limits.max_urls),
            body_text: None,
            body_html: None,
            claimed_text: false,
            claimed_html: false,
            stopped: false,
            stopped_depth: false,
        }
    }

    fn problem(&mut self, kind: &'static str, detail: impl Into<String>) {
        self.problems.push(MimeProblem::new(kind, detail));
    }

    fn stop_parts(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let max = self.limits.max_parts;
            self.problem(
                "mime_too_many_parts",
                format!("more than {max} MIME parts; the rest were not walked"),
            );
        }
    }

    fn too_deep(&mut self, path: &str) {
        if !self.stopped_depth {
            self.stopped_depth = true;
            let max = self.limits.max_depth;
            self.problem(
                "mime_too_deep",
                format!("parts nested deeper than {max} levels (first at {path}) were not walked"),
            );
        }
    }

    /// The hashes of a part that is not an attachment: SHA-256 only.
    fn part_hashes(&self) -> HashSelection {
        HashSelection {
            md5: false,
            sha1: false,
            sha256: self.hashes.sha256,
        }
    }

    /// A place in the attachments list, in document order, filled when the part ends.
    fn reserve_attachment(&mut self) -> usize {
        self.attachments.push(AttachmentRecord {
            path: String::new(),
            filename: None,
            content_type: String::new(),
            disposition: None,
            size: 0,
            declared_size: None,
            encoded_size: 0,
            md5: String::new(),
            sha1: String::new(),
            sha256: String::new(),
            content_id: None,
            complete: false,
        });
        self.attachments.len() - 1
    }

    fn spool_file(&self) -> Option<SpoolFile> {
        self.spool.as_ref().map(|s| s.create())
    }

    fn scan_urls(&mut self, bytes: &[u8], html: bool) {
        if bytes.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(bytes);
        self.urls.scan(&text, html);
    }
}

/// One message being decoded as its content arrives.
#[derive(Debug)]
pub struct MessageStream {
    raw: Sha256,
    size: u64,
    missing: u64,
    decode_mime: bool,
    out: Output,
    walker: Walker,
    eml: Option<SpoolFile>,
    /// MD5 and SHA-1 of the raw message, for extraction's manifest.
    eml_hashes: Option<ContentHasher>,
}

impl MessageStream {
    /// Starts a message.
    pub fn new(options: &StreamOptions) -> Self {
        let out = Output::new(options);
        let eml = out.spool_file();
        MessageStream {
            raw: Sha256::new(),
            size: 0,
            missing: 0,
            decode_mime: options.decode_mime,
            out,
            walker: Walker::new(String::new(), 0, true),
            eml_hashes: eml.as_ref().map(|_| {
                ContentHasher::new(HashSelection {
                    md5: true,
                    sha1: true,
                    sha256: false,
                })
            }),
            eml,
        }
    }

    /// Content bytes (dot-unstuffed where the protocol stuffs), in order.
    pub fn push(&mut self, bytes: &[u8]) {
        self.raw.update(bytes);
        self.size += bytes.len() as u64;
        if let Some(f) = self.eml.as_mut() {
            f.write(bytes);
        }
        if let Some(h) = self.eml_hashes.as_mut() {
            h.update(bytes);
        }
        if self.decode_mime {
            self.walker.feed(bytes, &mut self.out);
        }
    }

    /// The capture missed `missing` bytes here (0 when unknown).
    pub fn gap(&mut self, missing: u64) {
        self.missing += missing;
        if self.decode_mime {
            self.walker.gap(&mut self.out);
        }
    }

    /// Content bytes so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Ends the message; `complete` is false when it was cut short (the capture ended, TOP).
    pub fn finish(self, complete: bool) -> StreamedMessage {
        let MessageStream {
            raw,
            size,
            missing,
            decode_mime,
            mut out,
            walker,
            eml,
            eml_hashes,
        } = self;
        let mime = decode_mime.then(|| {
            let header = walker.finish(complete, &mut out);
            summary(header, size, &mut out)
        });
        let problems = mime
            .as_ref()
            .map(|m| m.decode_problems.clone())
            .unwrap_or_default();
        let files = eml.map(|f| {
            // A write error shows as a file shorter than the record says.
            let (path, _error) = f.close();
            let (eml_md5, eml_sha1, _) = eml_hashes.map(ContentHasher::finish).unwrap_or_default();
            SpooledMessage {
                eml: path,
                eml_md5,
                eml_sha1,
                attachments: std::mem::take(&mut out.files),
            }
        });
        StreamedMessage {
            size,
            sha256: hex::encode(raw.finalize()),
            missing_bytes: missing,
            mime,
            problems,
            files,
        }
    }
}

fn summary(header: super::headers::HeaderSummary, size: u64, out: &mut Output) -> MimeSummary {
    if size == 0 {
        return MimeSummary::default();
    }
    let (body_text, body_text_truncated) = split(out.body_text.take());
    let (body_html, body_html_truncated) = split(out.body_html.take());
    let urls_truncated = out.urls.truncated;
    let urls = std::mem::replace(&mut out.urls, UrlCollector::new(0)).into_urls();
    if urls_truncated {
        let max = out.limits.max_urls;
        out.problem(
            "mime_too_many_urls",
            format!("more than {max} distinct URLs; the first were kept"),
        );
    }
    let problems = fold(std::mem::take(&mut out.problems));
    MimeSummary {
        header,
        parts: std::mem::take(&mut out.parts),
        attachments: std::mem::take(&mut out.attachments),
        body_text,
        body_text_truncated,
        body_html,
        body_html_truncated,
        urls,
        urls_truncated,
        decoded_bytes: size,
        decode_problems: problems,
    }
}

fn split(body: Option<(String, bool)>) -> (Option<String>, bool) {
    match body {
        Some((text, cut)) => (Some(text), cut),
        None => (None, false),
    }
}

/// Folds repeats of a kind into the first occurrence, keeping the order of first appearance.
fn fold(problems: Vec<MimeProblem>) -> Vec<MimeProblem> {
    let mut out: Vec<MimeProblem> = Vec::new();
    for p in problems {
        match out.iter_mut().find(|q| q.kind == p.kind) {
            Some(q) => q.count += p.count,
            None => out.push(p),
        }
    }
    out
}

/// Decodes a whole message at once (the same as streaming it in one piece).
pub fn decode_message(bytes: &[u8], complete: bool, options: &StreamOptions) -> StreamedMessage {
    let mut s = MessageStream::new(options);
    s.push(bytes);
    s.finish(complete)
}

#[cfg(test)]
mod tests;
