//! The MIME state machine of one message (RFC 2045, 2046): header blocks, multipart boundaries
//! checked at line starts, preambles and epilogues, leaves handed to [`Leaf`].
//!
//! Each byte is looked at once. In a body the scan jumps from one `\n--` to the next, so a
//! base64 attachment costs one substring search; only lines that start with `--` are examined,
//! and a line ending is held back until the next line shows whether it belongs to a delimiter
//! (RFC 2046 §5.1.1: the CRLF before `--boundary` is part of the delimiter). An encapsulated
//! message is a walker of its own, fed its part's decoded body.

use super::super::headers::HeaderSummary;
use super::super::transfer::TransferEncoding;
use super::Output;
use super::entity::{self, EntityHeaders, Placement};
use super::leaf::{Leaf, LeafSpec, Role};
use memchr::memmem::Finder;
use std::sync::LazyLock;

/// Longest boundary looked for; a longer one makes its multipart one opaque body.
const MAX_BOUNDARY: usize = 256;
/// Longest header line looked at past the header block bound.
const OVERFLOW_LINE: usize = 16 << 10;
/// Bytes of the fields that shape a message kept past the header block bound.
const OVERFLOW_KEPT: usize = 64 << 10;

static LINE_DASHES: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n--"));

/// A multipart whose parts are being read.
#[derive(Debug)]
struct Frame {
    boundary: Vec<u8>,
    /// Index of its record in the output's parts.
    part: usize,
    /// The path its children are numbered under.
    child_base: String,
    depth: usize,
    children: u32,
    digest: bool,
    /// Its first delimiter was seen: the preamble is over.
    started: bool,
    /// Its close delimiter was seen: what follows is epilogue.
    closed: bool,
    body_start: u64,
    complete: bool,
    /// The body before the first delimiter, kept as the whole body should none come.
    preamble: Option<Box<Leaf>>,
}

/// Where body bytes go.
#[derive(Debug)]
enum Consumer {
    /// Nowhere (an epilogue, a part past a limit, bytes after a gap).
    Skip,
    /// The preamble of the innermost multipart.
    Preamble,
    /// A leaf.
    Leaf(Box<Leaf>),
}

/// What is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A header block.
    Headers,
    /// A body.
    Body,
}

/// The walk over one message (the top one or an encapsulated one).
#[derive(Debug)]
pub(crate) struct Walker {
    /// The message's path (`""` at the top).
    base: String,
    /// The top message: its first text and HTML leaves are the bodies shown.
    top: bool,
    state: State,
    /// Bytes consumed.
    pos: u64,
    /// A line start carried over a chunk edge while it may still be a delimiter.
    line: Vec<u8>,
    /// Whether the next byte starts a line.
    at_line_start: bool,
    /// After a delimiter: the rest of its line is skipped.
    skip_line: bool,
    /// A line ending held back (and where it started) until the next line is known.
    held: Vec<u8>,
    held_at: u64,
    /// The header block being read, bounded.
    header: Vec<u8>,
    header_cut: bool,
    /// Past the bound: the current line, and whether the field it continues is kept.
    overflow_line: Vec<u8>,
    keep_overflow: bool,
    /// Where the current header line starts in the block.
    hline_start: usize,
    /// The current header line: its length and whether it holds anything but CR.
    hline_len: usize,
    hline_blank: bool,
    /// Lines read in the current header block.
    hlines: usize,
    /// Whether the block's first line was seen to be able to start a field.
    first_line_checked: bool,
    placement: Placement,
    frames: Vec<Frame>,
    consumer: Consumer,
    summary: Option<HeaderSummary>,
    /// False once a gap cut into the message.
    complete: bool,
    /// Nothing is recorded any more (a limit was reached).
    stopped: bool,
}

impl Walker {
    /// A walk over a message at `base` whose root entity is at `depth`.
    pub fn new(base: String, depth: usize, top: bool) -> Self {
        Walker {
            placement: Placement {
                path: base.clone(),
                depth,
                digest_child: false,
                message_root: true,
            },
            base,
            top,
            state: State::Headers,
            pos: 0,
            line: Vec::new(),
            at_line_start: true,
            skip_line: false,
            held: Vec::new(),
            held_at: 0,
            header: Vec::new(),
            header_cut: false,
            overflow_line: Vec::new(),
            keep_overflow: false,
            hline_start: 0,
            hline_len: 0,
            hline_blank: true,
            hlines: 0,
            first_line_checked: false,
            frames: Vec::new(),
            consumer: Consumer::Skip,
            summary: None,
            complete: true,
            stopped: false,
        }
    }

    /// Message bytes, in order, in chunks of any size.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Output) {
        while !data.is_empty() {
            if self.stopped && !out.stopped {
                self.pos += data.len() as u64;
                return;
            }
            if self.skip_line {
                // The rest of a delimiter line (transport padding, or text after a boundary
                // matched as a prefix) belongs to no part.
                let Some(i) = memchr::memchr(b'\n', data) else {
                    self.pos += data.len() as u64;
                    return;
                };
                self.pos += i as u64 + 1;
                self.skip_line = false;
                self.at_line_start = true;
                data = &data[i + 1..];
                continue;
            }
            data = match self.state {
                State::Headers => self.header_bytes(data, out),
                State::Body => self.body_bytes(data, out),
            };
        }
    }

    fn longest_boundary(&self) -> usize {
        self.frames
            .iter()
            .map(|f| f.boundary.len())
            .max()
            .unwrap_or(0)
    }

    /// The frame whose delimiter `line` is (innermost first), and whether it closes.
    fn delimiter(&self, line: &[u8]) -> Option<(usize, bool)> {
        let rest = line.strip_prefix(b"--")?;
        self.frames.iter().enumerate().rev().find_map(|(i, f)| {
            let after = rest.strip_prefix(f.boundary.as_slice())?;
            Some((i, after.starts_with(b"--")))
        })
    }

    /// At a line start: collects enough of the line to tell whether it is a delimiter. Returns
    /// the unread data, and whether the line was decided (`Some(is_delimiter)`).
    fn line_start<'d>(&mut self, data: &'d [u8], out: &mut Output) -> (&'d [u8], Option<bool>) {
        if self.line.is_empty() {
            // The common case, decided from the first bytes without copying.
            match data {
                [] => return (data, None),
                [b'-'] => {}
                [b'-', b'-', ..] => {}
                _ => return (data, Some(false)),
            }
        }
        if self.frames.is_empty() {
            return (data, Some(false));
        }
        let need = 2 + self.longest_boundary() + 2;
        let room = need.saturating_sub(self.line.len());
        let take = match memchr::memchr(b'\n', &data[..room.min(data.len())]) {
            Some(i) => i + 1,
            None => room.min(data.len()),
        };
        self.line.extend_from_slice(&data[..take]);
        self.pos += take as u64;
        let data = &data[take..];
        let ended = self.line.ends_with(b"\n");
        if !ended && self.line.len() < need && data.is_empty() {
            // A short line start at the chunk's end: wait for more, unless it already differs.
            if !(b"--".starts_with(&self.line[..self.line.len().min(2)])) {
                return (data, Some(self.unread_line(out)));
            }
            return (data, None);
        }
        match self.delimiter(&self.line) {
            Some((frame, close)) => {
                let line_at = self.pos - self.line.len() as u64;
                self.skip_line = !ended;
                self.line.clear();
                self.at_delimiter(frame, close, line_at, out);
                self.at_line_start = ended;
                (data, Some(true))
            }
            None => (data, Some(self.unread_line(out))),
        }
    }

    /// The carried line start is not a delimiter: its bytes go where the line's bytes go.
    fn unread_line(&mut self, out: &mut Output) -> bool {
        let line = std::mem::take(&mut self.line);
        match self.state {
            State::Headers => {
                // Header lines are handled by the header reader: put it back in front.
                self.line = line;
                false
            }
            State::Body => {
                let end_at = self.pos;
                self.release_held(out);
                if line.ends_with(b"\n") {
                    let eol = if line.ends_with(b"\r\n") { 2 } else { 1 };
                    self.emit(&line[..line.len() - eol], out);
                    self.held.extend_from_slice(&line[line.len() - eol..]);
                    self.held_at = end_at - eol as u64;
                    self.at_line_start = true;
                } else {
                    self.emit(&line, out);
                    self.at_line_start = false;
                }
                false
            }
        }
    }

    fn release_held(&mut self, out: &mut Output) {
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            self.emit(&held, out);
            self.held = held;
            self.held.clear();
        }
    }

    fn emit(&mut self, bytes: &[u8], out: &mut Output) {
        if bytes.is_empty() {
            return;
        }
        match &mut self.consumer {
            Consumer::Skip => {}
            Consumer::Leaf(leaf) => leaf.feed(bytes, out),
            Consumer::Preamble => {
                if let Some(p) = self.frames.last_mut().and_then(|f| f.preamble.as_mut()) {
                    p.feed(bytes, out);
                }
            }
        }
    }

    /// Body bytes: content up to the next line that starts with `--`.
    fn body_bytes<'d>(&mut self, data: &'d [u8], out: &mut Output) -> &'d [u8] {
        let mut data = data;
        if self.at_line_start {
            let (rest, decided) = self.line_start(data, out);
            match decided {
                None => return rest,
                Some(true) => return rest,
                Some(false) => {
                    if self.line.is_empty() && rest.len() == data.len() {
                        // Decided without consuming: the line is content.
                        self.release_held(out);
                        self.at_line_start = false;
                    }
                    data = rest;
                    if self.at_line_start || self.state != State::Body {
                        return data;
                    }
                }
            }
        }
        if self.held == b"\r" && data.first() == Some(&b'\n') {
            // A CR held at the previous chunk's end and this LF are one line ending.
            self.held.push(b'\n');
            self.pos += 1;
            self.at_line_start = true;
            return &data[1..];
        }
        // Mid-line: everything up to the next "\n--" is content, its line ending held.
        match LINE_DASHES.find(data) {
            Some(i) => {
                let eol_start = if i > 0 && data[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                if i == 0 && self.held == b"\r" {
                    // The CR before this LF was held at the previous chunk's end.
                    self.held.push(b'\n');
                } else {
                    self.release_held(out);
                    self.emit(&data[..eol_start], out);
                    self.held.extend_from_slice(&data[eol_start..=i]);
                    self.held_at = self.pos + eol_start as u64;
                }
                self.pos += i as u64 + 1;
                self.at_line_start = true;
                &data[i + 1..]
            }
            None => {
                self.release_held(out);
                // Hold what may be the start of a line ending before a delimiter.
                let keep = if data.ends_with(b"\r\n") {
                    2
                } else if data.ends_with(b"\n") || data.ends_with(b"\r") {
                    1
                } else if data.ends_with(b"\n-") {
                    // A line start of one dash: carried as a possible delimiter.
                    let eol = if data.ends_with(b"\r\n-") { 2 } else { 1 };
                    let cut = data.len() - 1 - eol;
                    self.emit(&data[..cut], out);
                    self.held.extend_from_slice(&data[cut..cut + eol]);
                    self.held_at = self.pos + cut as u64;
                    self.pos += (cut + eol) as u64;
                    self.at_line_start = true;
                    return &data[cut + eol..];
                } else {
                    0
                };
                let cut = data.len() - keep;
                self.emit(&data[..cut], out);
                self.held.extend_from_slice(&data[cut..]);
                self.held_at = self.pos + cut as u64;
                self.pos += data.len() as u64;
                self.at_line_start = data.ends_with(b"\n");
                &[]
            }
        }
    }

    /// Header bytes: one line at a time into the bounded header block.
    fn header_bytes<'d>(&mut self, data: &'d [u8], out: &mut Output) -> &'d [u8] {
        let mut data = data;
        if self.at_line_start && self.hline_len == 0 {
            let (rest, decided) = self.line_start(data, out);
            match decided {
                None => return rest,
                Some(true) => return rest,
                Some(false) => data = rest,
            }
            // A carried line start that is not a delimiter goes back in front of the data.
            if !self.line.is_empty() {
                let line = std::mem::take(&mut self.line);
                let consumed = line.len() as u64;
                self.pos -= consumed;
                self.header_piece(&line, out);
                return data;
            }
        }
        let end = memchr::memchr(b'\n', data).map_or(data.len(), |i| i + 1);
        self.header_piece(&data[..end], out);
        &data[end..]
    }

    /// A piece of one header line (ending with its `\n` when the line ends here).
    fn header_piece(&mut self, piece: &[u8], out: &mut Output) {
        self.pos += piece.len() as u64;
        let ends = piece.ends_with(b"\n");
        if self.hline_len == 0 {
            self.hline_start = self.header.len();
        }
        self.hline_len += piece.len();
        self.hline_blank &= piece.iter().all(|&b| b == b'\r' || b == b'\n');
        if self.header_cut {
            self.overflow_piece(piece, ends, out);
        } else {
            let need = self.header.len() + piece.len();
            if need > self.header.capacity() {
                // Doubling, but not past the bound and the line that crosses it: an open
                // header block costs what it holds, not twice that.
                let roomy = (self.header.capacity() * 2).min(out.limits.max_header_block_bytes);
                self.header
                    .reserve_exact(roomy.max(need) - self.header.len());
            }
            self.header.extend_from_slice(piece);
            if self.headerless_first_line(ends, out) {
                return;
            }
            // Not before the first line is judged (at most 256 bytes in): otherwise where the
            // pieces end would decide which of the two comes first.
            let judged = self.hlines > 0 || self.first_line_checked;
            if judged && self.header.len() > out.limits.max_header_block_bytes {
                // Whole lines only, whatever the pieces: the line that does not fit goes on
                // past the bound, where only the fields that shape the message are kept.
                let line = self.header.split_off(self.hline_start);
                self.header_cut = true;
                self.overflow_line.clear();
                // A continuation belongs to a field already kept.
                self.keep_overflow = true;
                out.problem(
                    "mime_header_too_large",
                    format!(
                        "a header block of part {} is larger than {} bytes; past that only the fields that shape the message were read",
                        self.placement.path, out.limits.max_header_block_bytes
                    ),
                );
                self.overflow_piece(&line, ends, out);
            }
        }
        if !ends {
            return;
        }
        let blank = self.hline_blank;
        self.hlines += 1;
        self.hline_len = 0;
        self.hline_blank = true;
        self.at_line_start = true;
        if blank {
            self.open_entity(out);
        }
    }

    /// Judges the block's first line once it can be (a byte that ends a field name, its end,
    /// or 256 bytes); a line that cannot start a field makes the whole block body, which is
    /// then fed as such. Returns true in that case.
    fn headerless_first_line(&mut self, ends: bool, out: &mut Output) -> bool {
        if self.hlines > 0 || self.first_line_checked {
            return false;
        }
        if self.hline_blank && self.header.len() < 256 {
            return false;
        }
        let line = &self.header[..self.header.len().min(256)];
        let decided =
            ends || line.len() >= 256 || line.iter().any(|&b| b == b':' || b <= b' ' || b >= 0x7f);
        if !decided {
            return false;
        }
        self.first_line_checked = true;
        if entity::starts_like_a_field(line) || line.starts_with(b"From ") {
            return false;
        }
        let body = std::mem::take(&mut self.header);
        self.pos -= body.len() as u64;
        self.headerless(out);
        self.feed(&body, out);
        true
    }

    /// Past the header bound, a padded block must not hide the fields that decide how the rest
    /// is read (or who sent it): those lines are still kept, within a bound of their own.
    fn overflow_piece(&mut self, piece: &[u8], ends: bool, out: &mut Output) {
        let room = OVERFLOW_LINE.saturating_sub(self.overflow_line.len());
        self.overflow_line
            .extend_from_slice(&piece[..piece.len().min(room)]);
        if !ends {
            return;
        }
        let mut line = std::mem::take(&mut self.overflow_line);
        if !line.ends_with(b"\n") {
            // Cut at the line bound: kept as far as it goes.
            line.extend_from_slice(b"\r\n");
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            self.keep_overflow = entity::shapes_the_message(&line);
        }
        let limit = out.limits.max_header_block_bytes + OVERFLOW_KEPT;
        if self.keep_overflow && self.header.len() + line.len() <= limit {
            self.header.extend_from_slice(&line);
        }
        self.overflow_line = line;
        self.overflow_line.clear();
    }

    /// The entity has no header block: its bytes are one text/plain body.
    fn headerless(&mut self, out: &mut Output) {
        if self.placement.message_root {
            out.problem(
                "mime_no_headers",
                "the message has no header fields; it was read as plain text",
            );
        }
        self.header.clear();
        self.open_entity(out);
        self.at_line_start = true;
    }

    /// The header block is complete (or cut short): the entity's body starts here.
    fn open_entity(&mut self, out: &mut Output) {
        let block = std::mem::take(&mut self.header);
        self.header_cut = false;
        self.hlines = 0;
        self.hline_len = 0;
        self.hline_blank = true;
        self.first_line_checked = false;
        self.state = State::Body;
        self.at_line_start = true;
        self.consumer = Consumer::Skip;
        let at = self.placement.clone();
        let mut eh = entity::parse(&block, &at, &out.limits, &mut out.problems);
        if let Some(s) = eh.summary.take() {
            self.summary = Some(s);
        }
        if self.stopped || out.stopped {
            self.stopped = true;
            return;
        }
        if out.parts.len() >= out.limits.max_parts {
            out.stop_parts();
            self.stopped = true;
            return;
        }
        if eh.record.depth > out.limits.max_depth {
            out.too_deep(&eh.record.path);
            return;
        }
        if eh.encoding == TransferEncoding::Unknown {
            out.problem(
                "mime_unknown_transfer_encoding",
                format!(
                    "part {} declares transfer encoding {:?}; its body is kept as is",
                    eh.record.path,
                    eh.encoding_text.as_deref().unwrap_or("")
                ),
            );
        }
        if eh.is_multipart() {
            if let Some(b) = eh.boundary.as_ref()
                && b.len() > 70
            {
                out.problem(
                    "mime_boundary_too_long",
                    format!(
                        "multipart part {} has a boundary of {} bytes (RFC 2046 allows 70)",
                        eh.record.path,
                        b.len()
                    ),
                );
            }
            match eh.boundary.take() {
                Some(b) if b.len() <= MAX_BOUNDARY => return self.open_multipart(eh, b, out),
                Some(_) => out.problem(
                    "mime_missing_boundary",
                    format!(
                        "multipart part {} is read as one body: its boundary is longer than {MAX_BOUNDARY} bytes",
                        eh.record.path
                    ),
                ),
                None => out.problem(
                    "mime_missing_boundary",
                    format!(
                        "multipart part {} is read as one body: it has no boundary parameter",
                        eh.record.path
                    ),
                ),
            }
        }
        self.open_leaf(eh, out);
    }

    fn open_multipart(&mut self, eh: EntityHeaders, boundary: Vec<u8>, out: &mut Output) {
        let digest = eh.record.content_type == "multipart/digest";
        let path = eh.record.path.clone();
        let depth = eh.record.depth;
        let child_base = if self.placement.message_root {
            self.base.clone()
        } else {
            path
        };
        let part = out.parts.len();
        out.parts.push(eh.record);
        let preamble = Leaf::new(
            LeafSpec {
                part,
                attachment: None,
                encoding: TransferEncoding::Identity,
                hashes: out.part_hashes(),
                body_start: self.pos,
                text: None,
                nested: None,
                file: None,
                sniff: false,
            },
            true,
        );
        self.frames.push(Frame {
            boundary,
            part,
            child_base,
            depth,
            children: 0,
            digest,
            started: false,
            closed: false,
            body_start: self.pos,
            complete: self.complete,
            preamble: Some(Box::new(preamble)),
        });
        self.consumer = Consumer::Preamble;
    }

    fn open_leaf(&mut self, eh: EntityHeaders, out: &mut Output) {
        let rec = &eh.record;
        let ct = rec.content_type.as_str();
        let named = rec.filename.is_some() || rec.disposition.as_deref() == Some("attachment");
        let role = match ct {
            "text/plain" if self.top && !named && !out.claimed_text => {
                out.claimed_text = true;
                Role::Text
            }
            "text/html" if self.top && !named && !out.claimed_html => {
                out.claimed_html = true;
                Role::Html
            }
            _ => Role::None,
        };
        let is_text = ct.starts_with("text/");
        let is_attachment =
            role == Role::None && (named || !(is_text || ct.starts_with("multipart/")));
        let nested = eh.is_message().then(|| {
            if matches!(
                eh.encoding,
                TransferEncoding::Base64 | TransferEncoding::QuotedPrintable
            ) {
                out.problem(
                    "mime_encoded_message",
                    format!(
                        "encapsulated message in part {} is transfer-encoded (RFC 2046 allows 7bit, 8bit or binary only); it is read as a message all the same",
                        rec.path
                    ),
                );
            }
            Walker::new(rec.path.clone(), rec.depth + 1, false)
        });
        let part = out.parts.len();
        let attachment = is_attachment.then(|| out.reserve_attachment());
        let mut hashes = out.part_hashes();
        if is_attachment {
            hashes = out.hashes;
        }
        let file = if is_attachment {
            out.spool_file()
        } else {
            None
        };
        let spec = LeafSpec {
            part,
            attachment,
            encoding: eh.encoding.clone(),
            hashes,
            body_start: self.pos,
            text: is_text.then_some((ct == "text/html", role, out.limits.max_body_bytes)),
            nested,
            file,
            sniff: true,
        };
        out.parts.push(eh.record);
        let leaf = Leaf::new(spec, out.limits.decode_content);
        let mut leaf = Box::new(leaf);
        if !self.complete && self.frames.is_empty() {
            leaf.complete = false;
        }
        self.consumer = Consumer::Leaf(leaf);
    }

    /// A delimiter line of `frame` starts at `line_at`.
    fn at_delimiter(&mut self, frame: usize, close: bool, line_at: u64, out: &mut Output) {
        let end = if self.held.is_empty() {
            line_at
        } else {
            self.held_at
        };
        self.held.clear();
        if self.state == State::Headers {
            // A part cut off in its headers: it ends here with an empty body.
            self.open_entity(out);
        }
        self.close_consumer(end, true, out);
        while self.frames.len() > frame + 1 {
            if let Some(f) = self.frames.pop() {
                self.finish_frame(f, end, true, out);
            }
        }
        let Some(f) = self.frames.last_mut() else {
            return;
        };
        if let Some(p) = f.preamble.take() {
            // The preamble is not content: drop it without recording it.
            drop(p);
        }
        f.started = true;
        if close {
            f.closed = true;
            self.state = State::Body;
            self.consumer = Consumer::Skip;
            return;
        }
        f.children += 1;
        self.placement = Placement {
            path: entity::join(&f.child_base, &f.children.to_string()),
            depth: f.depth + 1,
            digest_child: f.digest,
            message_root: false,
        };
        self.state = State::Headers;
        self.header.clear();
        self.header_cut = false;
        self.hlines = 0;
        self.hline_len = 0;
        self.hline_blank = true;
        self.first_line_checked = false;
        self.consumer = Consumer::Skip;
    }

    fn close_consumer(&mut self, end: u64, complete: bool, out: &mut Output) {
        if let Consumer::Leaf(leaf) = std::mem::replace(&mut self.consumer, Consumer::Skip) {
            leaf.finish(end, complete, out);
        }
    }

    fn finish_frame(&mut self, mut f: Frame, end: u64, complete: bool, out: &mut Output) {
        let complete = complete && f.complete;
        if let Some(p) = f.preamble.take() {
            // No delimiter ever came: the multipart was one body, as its preamble is.
            if complete {
                let path = out.parts[f.part].path.clone();
                out.problem(
                    "mime_missing_boundary",
                    format!(
                        "multipart part {path} is read as one body: its boundary never appears"
                    ),
                );
            }
            p.finish(end, complete, out);
        }
        let rec = &mut out.parts[f.part];
        rec.encoded_size = end.saturating_sub(f.body_start);
        rec.complete = complete;
    }

    /// A gap: the bytes that follow are not where the walk was; it resumes at the next delimiter.
    pub fn gap(&mut self, out: &mut Output) {
        self.complete = false;
        // What arrived before the gap is content, whatever line it may have started.
        if self.state == State::Body {
            self.release_held(out);
            let line = std::mem::take(&mut self.line);
            self.emit(&line, out);
        } else {
            let line = std::mem::take(&mut self.line);
            if !line.is_empty() {
                self.pos -= line.len() as u64;
                self.header_piece(&line, out);
            }
        }
        self.held.clear();
        for f in &mut self.frames {
            f.complete = false;
        }
        if self.state == State::Headers {
            self.open_entity(out);
        }
        match &mut self.consumer {
            Consumer::Leaf(leaf) => leaf.gap(out),
            Consumer::Preamble => {
                if let Some(p) = self.frames.last_mut().and_then(|f| f.preamble.as_mut()) {
                    p.gap(out);
                }
            }
            Consumer::Skip => {}
        }
        self.skip_line = false;
        self.at_line_start = false;
        self.state = State::Body;
    }

    /// Ends the walk; `complete` is false when the capture ended inside the message.
    /// Returns the message's header summary.
    pub fn finish(mut self, complete: bool, out: &mut Output) -> HeaderSummary {
        let complete = complete && self.complete;
        // A carried line start and a held line ending were content after all.
        if self.state == State::Headers {
            let line = std::mem::take(&mut self.line);
            if !line.is_empty() {
                self.pos -= line.len() as u64;
                self.header_piece(&line, out);
            }
            if self.state == State::Headers
                && (!self.header.is_empty() || self.hlines > 0 || self.header_cut)
            {
                self.open_entity(out);
            }
        }
        if self.state == State::Body {
            self.release_held(out);
            let line = std::mem::take(&mut self.line);
            self.emit(&line, out);
        }
        if complete
            && self.frames.iter().any(|f| f.started && !f.closed)
            && let Consumer::Leaf(leaf) = &self.consumer
        {
            let path = out.parts[leaf.part].path.clone();
            out.problem(
                "mime_unterminated_part",
                format!("part {path} runs to the end of the message without its closing boundary"),
            );
        }
        let end = self.pos;
        self.close_consumer(end, complete, out);
        while let Some(f) = self.frames.pop() {
            self.finish_frame(f, end, complete, out);
        }
        self.summary.take().unwrap_or_default()
    }
}
