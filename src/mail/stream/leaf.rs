//! The body of one leaf entity as it streams: decoded, hashed, excerpted, scanned for URLs,
//! written to its extraction file, or parsed as an encapsulated message.

use super::super::decoder::BodyDecoder;
use super::super::digest::{ContentHasher, HashSelection};
use super::super::headers;
use super::super::magic::MagicSniffer;
use super::super::record::AttachmentRecord;
use super::super::transfer::{self, TransferEncoding};
use super::spool::SpoolFile;
use super::walker::Walker;
use super::{Output, SpooledAttachment};

/// Whether a leaf is the message's main text or HTML body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The first text/plain body of the top message.
    Text,
    /// The first text/html body of the top message.
    Html,
    /// Anything else.
    None,
}

/// Decoded text bytes scanned for URLs this many at a time (plus the tail of a possible URL).
const URL_SCAN_CHUNK: usize = 16 << 10;
/// Bytes of an encapsulated message body looked at to tell base64 from a mislabelled message.
const SNIFF_BYTES: usize = 512;

/// What a text leaf keeps: the excerpt's bytes and the text still to be scanned for URLs.
#[derive(Debug)]
struct TextSink {
    html: bool,
    role: Role,
    keep: Vec<u8>,
    keep_max: usize,
    pending: Vec<u8>,
}

impl TextSink {
    fn feed(&mut self, bytes: &[u8], out: &mut Output) {
        if self.role != Role::None && self.keep.len() < self.keep_max {
            let room = self.keep_max - self.keep.len();
            self.keep.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= URL_SCAN_CHUNK {
            // Scan up to the last byte that cannot be inside a URL; the rest waits.
            let cut = self
                .pending
                .iter()
                .rposition(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'<' | b'>' | b'"'))
                .map_or(self.pending.len(), |i| i + 1);
            let cut = if self.pending.len() - cut > 2 * URL_SCAN_CHUNK {
                self.pending.len()
            } else {
                cut
            };
            out.scan_urls(&self.pending[..cut], self.html);
            self.pending.drain(..cut);
        }
    }
}

/// How an encapsulated message's body reaches its parser.
#[derive(Debug)]
enum Nested {
    /// Not an encapsulated message.
    No,
    /// Declared base64 or quoted-printable: the first bytes decide whether that is true.
    Sniffing(Box<Walker>, Vec<u8>),
    /// Fed the decoded body.
    Decoded(Box<Walker>),
    /// Fed the body as written, its declared encoding being false.
    Raw(Box<Walker>),
}

/// One leaf entity whose body is being read.
#[derive(Debug)]
pub(super) struct Leaf {
    /// Index of its record in the output's parts.
    pub part: usize,
    /// Index of its record in the output's attachments, when it is one.
    pub attachment: Option<usize>,
    decoder: BodyDecoder,
    encoding: TransferEncoding,
    scratch: Vec<u8>,
    hasher: ContentHasher,
    size: u64,
    body_start: u64,
    /// False once a gap cut into it.
    pub complete: bool,
    /// After a gap: nothing more is read into it.
    skipping: bool,
    text: Option<TextSink>,
    nested: Nested,
    file: Option<SpoolFile>,
    /// The first decoded bytes, kept to classify the content (files, not containers).
    magic: Option<MagicSniffer>,
}

/// How to set up a leaf.
#[derive(Debug)]
pub(super) struct LeafSpec {
    pub part: usize,
    pub attachment: Option<usize>,
    pub encoding: TransferEncoding,
    pub hashes: HashSelection,
    pub body_start: u64,
    /// Some for text parts: whether HTML, and the body role.
    pub text: Option<(bool, Role, usize)>,
    pub nested: Option<Walker>,
    pub file: Option<SpoolFile>,
    /// Whether its content is classified by its first bytes (not for a preamble).
    pub sniff: bool,
}

impl Leaf {
    /// A leaf starting at `spec.body_start`.
    pub fn new(spec: LeafSpec, decode_content: bool) -> Self {
        let decodes = decode_content || spec.encoding != TransferEncoding::Base64;
        let decoder = if decodes {
            BodyDecoder::for_encoding(&spec.encoding)
        } else {
            BodyDecoder::Identity
        };
        // An encapsulated message is walked, not classified; base64 left as written is
        // decoded by the sniffer just far enough.
        let magic = (spec.sniff && spec.nested.is_none()).then(|| {
            if decodes {
                MagicSniffer::new()
            } else {
                MagicSniffer::for_raw_base64()
            }
        });
        let nested = match spec.nested {
            None => Nested::No,
            Some(w) => match spec.encoding {
                TransferEncoding::Base64 | TransferEncoding::QuotedPrintable => {
                    Nested::Sniffing(Box::new(w), Vec::new())
                }
                _ => Nested::Raw(Box::new(w)),
            },
        };
        Leaf {
            part: spec.part,
            attachment: spec.attachment,
            decoder,
            encoding: spec.encoding,
            scratch: Vec::new(),
            hasher: ContentHasher::new(spec.hashes),
            size: 0,
            body_start: spec.body_start,
            complete: true,
            skipping: false,
            text: spec.text.map(|(html, role, keep_max)| TextSink {
                html,
                role,
                keep: Vec::new(),
                keep_max,
                pending: Vec::new(),
            }),
            nested,
            file: spec.file,
            magic,
        }
    }

    /// Body bytes as written.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Output) {
        if self.skipping || bytes.is_empty() {
            return;
        }
        let decoded = self.decoder.feed(bytes, &mut self.scratch);
        self.size += decoded.len() as u64;
        self.hasher.update(decoded);
        if let Some(m) = self.magic.as_mut().filter(|m| m.hungry()) {
            m.feed(decoded);
        }
        if let Some(t) = self.text.as_mut() {
            t.feed(decoded, out);
        }
        if let Some(f) = self.file.as_mut() {
            f.write(decoded);
        }
        match &mut self.nested {
            Nested::No => {}
            Nested::Decoded(w) => w.feed(decoded, out),
            Nested::Raw(w) => w.feed(bytes, out),
            Nested::Sniffing(..) => self.sniff(bytes, out),
        }
    }

    /// Collects the first bytes of an encoded encapsulated message and decides how to read it:
    /// a body whose first line holds a `:` is a message whatever its header claims.
    fn sniff(&mut self, bytes: &[u8], out: &mut Output) {
        let Nested::Sniffing(_, seen) = &mut self.nested else {
            return;
        };
        seen.extend_from_slice(bytes);
        let first_line = memchr::memchr(b'\n', seen);
        if first_line.is_none() && seen.len() < SNIFF_BYTES {
            return;
        }
        let line = &seen[..first_line.unwrap_or(seen.len())];
        let raw = self.encoding == TransferEncoding::Base64 && line.contains(&b':');
        let Nested::Sniffing(walker, seen) = std::mem::replace(&mut self.nested, Nested::No) else {
            return;
        };
        let mut walker = walker;
        if raw {
            walker.feed(&seen, out);
            self.nested = Nested::Raw(walker);
        } else {
            // Decode what was seen again, with a decoder of its own for the nested message.
            let mut decoder = BodyDecoder::for_encoding(&self.encoding);
            let mut scratch = Vec::new();
            let decoded = decoder.feed(&seen, &mut scratch);
            walker.feed(decoded, out);
            self.nested = Nested::Decoded(walker);
            // The leaf's own decoder already holds the same state as this one.
            drop(decoder);
        }
    }

    /// A gap cut into the body: nothing more is read into it.
    pub fn gap(&mut self, out: &mut Output) {
        self.complete = false;
        self.skipping = true;
        match &mut self.nested {
            Nested::No => {}
            Nested::Decoded(w) | Nested::Raw(w) | Nested::Sniffing(w, _) => w.gap(out),
        }
    }

    /// Ends the body at stream position `end`; `complete` is false when the capture ended in it.
    pub fn finish(mut self, end: u64, complete: bool, out: &mut Output) {
        let complete = complete && self.complete;
        if !self.skipping {
            let tail = self.decoder.finish(&mut self.scratch);
            self.size += tail.len() as u64;
            self.hasher.update(tail);
            if let Some(m) = self.magic.as_mut() {
                m.feed(tail);
            }
            if let Some(t) = self.text.as_mut() {
                t.feed(tail, out);
            }
            if let Some(f) = self.file.as_mut() {
                f.write(tail);
            }
            if let Nested::Decoded(w) = &mut self.nested {
                w.feed(tail, out);
            }
        }
        if let Nested::Sniffing(..) = self.nested {
            // A body shorter than the sniffed prefix: decide on what there is.
            self.sniff(&[], out);
        }
        let path = out.parts[self.part].path.clone();
        let invalid = self.decoder.invalid();
        if invalid > 0 && complete {
            let kind = match self.encoding {
                TransferEncoding::Base64 => "mime_bad_base64",
                _ => "mime_bad_quoted_printable",
            };
            out.problem(
                kind,
                format!(
                    "part {path} has {invalid} bytes that are not valid for its encoding; the rest was decoded"
                ),
            );
        }
        let (md5, sha1, sha256) =
            std::mem::replace(&mut self.hasher, ContentHasher::new(HashSelection::NONE)).finish();
        let hashed = !sha256.is_empty();
        {
            let rec = &mut out.parts[self.part];
            rec.encoded_size = end.saturating_sub(self.body_start);
            rec.size = Some(self.size);
            rec.sha256 = hashed.then(|| sha256.clone());
            rec.complete = complete;
            rec.content_kind = self.magic.take().and_then(MagicSniffer::finish);
        }
        if let Some(t) = self.text.take() {
            self.finish_text(t, &path, out);
        }
        match std::mem::replace(&mut self.nested, Nested::No) {
            Nested::No | Nested::Sniffing(..) => {}
            Nested::Decoded(w) | Nested::Raw(w) => {
                let summary = w.finish(complete, out);
                out.parts[self.part].message = Some(Box::new(summary));
            }
        }
        if let Some(i) = self.attachment {
            let rec = out.parts[self.part].clone();
            out.attachments[i] = AttachmentRecord {
                path: rec.path,
                filename: rec.filename,
                content_type: rec.content_type,
                disposition: rec.disposition,
                size: self.size,
                declared_size: rec.declared_size,
                encoded_size: rec.encoded_size,
                md5,
                sha1,
                sha256,
                content_id: rec.content_id,
                complete,
            };
        }
        if let Some(f) = self.file.take() {
            let (file, error) = f.close();
            if let Some(e) = error {
                out.problem(
                    "extract_write_failed",
                    format!("part {path} could not be written for extraction: {e}"),
                );
            }
            out.files.push(SpooledAttachment {
                path,
                file,
                size: self.size,
            });
        }
    }

    fn finish_text(&mut self, mut t: TextSink, path: &str, out: &mut Output) {
        let pending = std::mem::take(&mut t.pending);
        out.scan_urls(&pending, t.html);
        let charset = out.parts[self.part].charset.clone();
        if let Some(cs) = charset.as_deref()
            && !transfer::charset_known(cs)
        {
            out.problem(
                "mime_unknown_charset",
                format!(
                    "part {path} declares charset {:?}; its text was read as UTF-8 with replacements",
                    headers::clip(cs)
                ),
            );
        }
        if t.role == Role::None {
            return;
        }
        let cut_raw = self.size > t.keep.len() as u64;
        let text = to_utf8(&t.keep, charset.as_deref(), cut_raw);
        let (text, cut) = excerpt(&text, t.keep_max);
        let slot = match t.role {
            Role::Text => &mut out.body_text,
            _ => &mut out.body_html,
        };
        if slot.is_none() {
            *slot = Some((text, cut || cut_raw));
        }
    }
}

/// Text in a charset, converted to UTF-8 (lossily when the charset is unknown); `cut` says the
/// bytes end mid-text, so a character cut in two at the end is dropped.
fn to_utf8(bytes: &[u8], charset: Option<&str>, cut: bool) -> String {
    let is_utf8 = charset.is_none_or(|c| {
        let c = c.trim();
        c.eq_ignore_ascii_case("utf-8")
            || c.eq_ignore_ascii_case("utf8")
            || c.eq_ignore_ascii_case("us-ascii")
    });
    let mut bytes = bytes;
    if cut
        && is_utf8
        && let Err(e) = std::str::from_utf8(bytes)
        && e.error_len().is_none()
    {
        bytes = &bytes[..e.valid_up_to()];
    }
    match (is_utf8, charset) {
        (false, Some(c)) => {
            match mail_parser::decoders::charsets::map::charset_decoder(c.as_bytes()) {
                Some(decoder) => decoder(bytes),
                None => String::from_utf8_lossy(bytes).into_owned(),
            }
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The first `max` bytes of a text (cut at a character boundary) and whether it was cut.
fn excerpt(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_string(), false);
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), true)
}
