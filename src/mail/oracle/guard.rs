//! A linear pre-scan that decides how much of a message `mail-parser` may see.
//!
//! `mail-parser` 0.11 never panics in release builds, but on hostile input it can take
//! quadratic time or build structures many times larger than the message:
//! - a multipart whose boundary never appears makes it scan to the end of the message and
//!   back up; thousands of them take minutes;
//! - every header field, address, message id and parameter becomes an allocation of 30 to 100
//!   bytes, so a message made of tiny header fields or empty parts costs 20 to 40 times its size;
//! - RFC 2231 parameter continuations are merged in quadratic time;
//! - `message/rfc822` parts with a base64 or quoted-printable body are decoded and parsed again,
//!   out of sight of a scan of the raw bytes.
//!
//! This scan over-approximates where the parser reads header blocks and, in one pass, counts
//! what it would build and estimates the bytes it would re-scan. When a bound of [`MimeLimits`]
//! would be exceeded, it returns the offset to cut the message at, so everything before it is
//! still decoded. Over-approximation only ever cuts earlier; the bounds are far above what real
//! mail needs.
//!
//! How the parser is mirrored: a header block starts at the message start, right after a
//! delimiter `--boundary` (found anywhere in a line, as the parser does) for a boundary
//! declared earlier, or right after the header block of an encapsulated message. A block ends at
//! a line that holds only white space where a new field would start. Field names are read the
//! way the parser reads them (white space inside a name is dropped), and `Content-Type` and
//! `Content-Transfer-Encoding` values are parsed with the parser's own field parsers.

use super::super::MimeLimits;
use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;
use memchr::{memchr, memmem, memrchr};
use std::borrow::Cow;
use std::collections::HashMap;

/// Boundary bytes the parser compares per unit of work when it tests for a delimiter (it
/// compares the whole boundary at every `--`, with a vectorised comparison).
const COMPARE_BYTES_PER_WORK: u128 = 32;
/// Distinct boundaries per buffer; each is searched for in every line containing `--`, and
/// that search time counts as work too.
const MAX_BOUNDARIES: usize = 1024;
/// Bytes searched per unit of work: a substring search runs several times faster than the
/// parser's byte-by-byte scan the work budget is counted in.
const SEARCH_BYTES_PER_WORK: u128 = 8;
/// Work charged per substring search for its fixed cost.
const SEARCH_CALL_WORK: u128 = 32;
/// Encoded `message/*` parts per message; each is decoded and scanned again.
const MAX_ENCODED_MESSAGES: usize = 8;
/// Levels of encoded messages the parser parses again (its own fixed depth).
const PARSER_ENCODED_DEPTH: u8 = 3;
/// Closing delimiters of one boundary tolerated on one line before the line is refused.
const MAX_DELIMITERS_PER_LINE: usize = 64;

/// Where to cut a message before parsing it, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GuardCut {
    /// Bytes of the message that may be parsed.
    pub at: usize,
    /// Anomaly kind.
    pub kind: &'static str,
    /// Human-readable reason.
    pub detail: String,
}

/// Scans `data` and returns where to cut it, or `None` when the parser may see all of it.
pub(crate) fn check(data: &[u8], limits: &MimeLimits) -> Option<GuardCut> {
    let mut totals = Totals::default();
    let mut scan = Scan::new(data, 0, 0, limits, &mut totals);
    scan.run().err()
}

/// Counts shared by a scan and the scans of the encoded messages inside it.
#[derive(Debug, Default)]
struct Totals {
    header_tokens: usize,
    header_blocks: usize,
    /// Estimated bytes of re-scanning already committed (continuations, nested failed seeks).
    work: u128,
    encoded_messages: usize,
}

/// What `mail-parser` would make of a header field, as far as the structure goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    ContentType,
    ContentDisposition,
    TransferEncoding,
    Other,
}

/// A header field being read: it grows while continuation lines follow.
#[derive(Debug, Clone, Copy)]
struct OpenField {
    kind: FieldKind,
    start: usize,
    value_start: usize,
    /// End of its last line, including the line feed when there is one.
    end: usize,
}

/// A boundary declared in this buffer, with the declarations still waiting for it.
struct Boundary {
    finder: memmem::Finder<'static>,
    pattern_len: usize,
    /// Waiting declarations, weighted by the cost of their boundary.
    pending: u128,
    pending_offsets: u128,
}

/// The header block being read (a superset of the one the parser reads).
#[derive(Debug, Default)]
struct Region {
    start: usize,
    fields: Vec<OpenField>,
    /// Boundaries declared in this block, with the offset of the declaring field.
    declared: Vec<(Vec<u8>, usize)>,
    message_type: bool,
    base64: bool,
    quoted_printable: bool,
    content_type_since_delimiter: bool,
    started_by_delimiter: bool,
}

struct Scan<'a, 't> {
    data: &'a [u8],
    level: u8,
    /// Work the enclosing scans are committed to at the point this buffer sits in them.
    base_work: u128,
    limits: &'a MimeLimits,
    totals: &'t mut Totals,
    /// Finds `--`; built once because building a searcher costs more than a short search.
    dashes: memmem::Finder<'static>,
    boundaries: Vec<Boundary>,
    boundary_index: HashMap<Vec<u8>, usize, foldhash::fast::RandomState>,
    longest_boundary: usize,
    /// Declarations whose first delimiter has not been seen, weighted; and their offsets.
    pending: u128,
    pending_offsets: u128,
    digest_seen: bool,
    region: Option<Region>,
    /// Latest offset at which cutting keeps the work within budget.
    last_ok: usize,
    /// End of the last line whose events have been applied.
    applied_to: usize,
}

impl<'a, 't> Scan<'a, 't> {
    fn new(
        data: &'a [u8],
        level: u8,
        base_work: u128,
        limits: &'a MimeLimits,
        totals: &'t mut Totals,
    ) -> Self {
        Scan {
            data,
            level,
            base_work,
            limits,
            totals,
            dashes: memmem::Finder::new(b"--"),
            boundaries: Vec::new(),
            boundary_index: HashMap::default(),
            longest_boundary: 0,
            pending: 0,
            pending_offsets: 0,
            digest_seen: false,
            region: None,
            last_ok: 0,
            applied_to: 0,
        }
    }

    fn cut(&self, at: usize, kind: &'static str, detail: String) -> GuardCut {
        GuardCut { at, kind, detail }
    }

    fn run(&mut self) -> Result<(), GuardCut> {
        let data = self.data;
        // At the end of a buffer the parser takes a last name even without its colon.
        self.totals.header_tokens += 1;
        self.open_region(0, false)?;
        let mut pos = 0;
        while pos < data.len() {
            if self.region.is_none() {
                // Outside header blocks only delimiter lines matter: jump to the next `--`.
                let Some(i) = self.dashes.find(&data[pos..]) else {
                    break;
                };
                let at = pos + i;
                pos = memrchr(b'\n', &data[pos..at]).map_or(pos, |j| pos + j + 1);
            }
            let line_end = memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i);
            let next = if line_end < data.len() {
                line_end + 1
            } else {
                data.len()
            };
            self.observe(pos)?;
            self.line(pos, line_end, next)?;
            self.applied_to = next;
            pos = next;
        }
        if let Some(mut region) = self.region.take() {
            // A block cut off by the end of the data: the parser starts no part from it.
            self.close_fields(&mut region)?;
        }
        self.observe(data.len())?;
        if self.total_at(data.len()) > self.budget() {
            return Err(self.budget_cut());
        }
        Ok(())
    }

    fn budget(&self) -> u128 {
        u128::from(self.limits.max_scan_work)
    }

    /// Work the parser would do if the buffer were cut at `p`.
    fn total_at(&self, p: usize) -> u128 {
        let failed_seeks = (self.pending * p as u128).saturating_sub(self.pending_offsets);
        self.base_work + self.totals.work + failed_seeks
    }

    fn budget_cut(&self) -> GuardCut {
        self.cut(
            self.last_ok,
            "mime_scan_budget",
            format!(
                "decoding would re-scan more than {} bytes (boundaries that never appear or parameter continuations); decoded up to byte {}",
                self.limits.max_scan_work, self.last_ok
            ),
        )
    }

    /// Notes whether cutting at `p` (a line start) would stay within the work budget.
    fn observe(&mut self, p: usize) -> Result<(), GuardCut> {
        let budget = self.budget();
        if self.base_work + self.totals.work > budget {
            // Committed work never shrinks: no later cut can help.
            return Err(self.budget_cut());
        }
        if self.total_at(p) <= budget {
            self.last_ok = p;
            return Ok(());
        }
        // The cost grows linearly since the last applied line: solve for the last good byte.
        let room = budget - self.base_work - self.totals.work + self.pending_offsets;
        if let Some(best) = room.checked_div(self.pending)
            && let Ok(best) = usize::try_from(best)
            && best >= self.applied_to
            && best < p
            && best > self.last_ok
        {
            self.last_ok = best;
        }
        Ok(())
    }

    fn open_region(&mut self, start: usize, by_delimiter: bool) -> Result<(), GuardCut> {
        self.totals.header_blocks += 1;
        if self.totals.header_blocks > self.limits.max_header_blocks {
            return Err(self.cut(
                start,
                "mime_structure_limit",
                format!(
                    "more than {} header blocks (parts and encapsulated messages)",
                    self.limits.max_header_blocks
                ),
            ));
        }
        self.region = Some(Region {
            start,
            started_by_delimiter: by_delimiter,
            ..Region::default()
        });
        Ok(())
    }

    /// Handles the line `[start, end)`; `next` is where the following line starts.
    fn line(&mut self, start: usize, end: usize, next: usize) -> Result<(), GuardCut> {
        let data = self.data;
        let line = &data[start..end];
        let mut mid_line_starts: Vec<usize> = Vec::new();
        let mut delimiter = false;
        if self.dashes.find(line).is_some() {
            delimiter = self.delimiters(start, line, &mut mid_line_starts)?;
        }
        let was_in_region = self.region.is_some();
        if delimiter {
            if let Some(region) = self.region.as_mut() {
                // Already inside a (possibly over-wide) block: keep reading it as one.
                region.content_type_since_delimiter = false;
                region.started_by_delimiter = true;
                self.totals.header_blocks += 1;
                if self.totals.header_blocks > self.limits.max_header_blocks {
                    return Err(self.cut(
                        start,
                        "mime_structure_limit",
                        format!(
                            "more than {} header blocks (parts and encapsulated messages)",
                            self.limits.max_header_blocks
                        ),
                    ));
                }
            } else if mid_line_starts.is_empty() {
                if next > end {
                    self.open_region(next, true)?;
                }
                return Ok(());
            } else {
                self.open_region(mid_line_starts[0], true)?;
            }
        }
        let Some(mut region) = self.region.take() else {
            return Ok(());
        };
        let tokens = line
            .iter()
            .filter(|&&b| matches!(b, b':' | b',' | b';' | b'<'))
            .count();
        self.totals.header_tokens += tokens;
        if self.totals.header_tokens > self.limits.max_header_tokens {
            return Err(self.cut(
                start,
                "mime_structure_limit",
                format!(
                    "header blocks hold more than {} structure characters",
                    self.limits.max_header_tokens
                ),
            ));
        }
        if was_in_region {
            let first = line.first().copied();
            let blank = line.iter().all(|&b| b.is_ascii_whitespace() && b != b'\n');
            let continues = matches!(first, Some(b' ' | b'\t')) && !region.fields.is_empty();
            if continues {
                for f in region.fields.iter_mut() {
                    f.end = next;
                }
            } else if blank {
                return self.end_block(region, next);
            } else {
                self.close_fields(&mut region)?;
                if let Some((kind, value_at)) = field_name(line) {
                    region.fields.push(OpenField {
                        kind,
                        start,
                        value_start: start + value_at,
                        end: next,
                    });
                }
            }
        }
        for k in mid_line_starts {
            if let Some((kind, value_at)) = field_name(&data[k..end]) {
                region.fields.push(OpenField {
                    kind,
                    start: k,
                    value_start: k + value_at,
                    end: next,
                });
            }
        }
        self.region = Some(region);
        Ok(())
    }

    /// Looks for delimiters of declared boundaries in a line containing `--`: marks waiting
    /// declarations as found and collects the mid-line offsets where a header block could
    /// start. Returns whether the line holds a delimiter that opens a part.
    fn delimiters(
        &mut self,
        start: usize,
        line: &[u8],
        mid_line_starts: &mut Vec<usize>,
    ) -> Result<bool, GuardCut> {
        let search = self.boundaries.len() as u128
            * (SEARCH_CALL_WORK + line.len() as u128 / SEARCH_BYTES_PER_WORK);
        // The parser compares a whole boundary at each `--` it passes.
        let dashes = line.windows(2).filter(|w| w == b"--").count() as u128;
        let compare = dashes * self.longest_boundary as u128 / COMPARE_BYTES_PER_WORK;
        self.totals.work += search + compare;
        if self.base_work + self.totals.work > self.budget() {
            let mut cut = self.budget_cut();
            cut.at = cut.at.min(start);
            return Err(cut);
        }
        let mut opens = false;
        let mut found: Vec<usize> = Vec::new();
        for (index, boundary) in self.boundaries.iter().enumerate() {
            let Some(first) = boundary.finder.find(line) else {
                continue;
            };
            let first_delimiter = boundary.pending > 0;
            if first_delimiter {
                found.push(index);
            }
            // The first occurrence not followed by `--` opens a part (a closing one does not),
            // except when the parser is looking for a multipart's first delimiter: it takes any.
            let mut at = first;
            let mut tries = 0;
            let opening = loop {
                if first_delimiter {
                    break Some(at + boundary.pattern_len);
                }
                let after = at + boundary.pattern_len;
                if !line[after..].starts_with(b"--") {
                    break Some(after);
                }
                tries += 1;
                if tries > MAX_DELIMITERS_PER_LINE {
                    return Err(GuardCut {
                        at: start,
                        kind: "mime_structure_limit",
                        detail: format!(
                            "a line holds more than {MAX_DELIMITERS_PER_LINE} closing delimiters"
                        ),
                    });
                }
                match boundary.finder.find(&line[at + 1..]) {
                    Some(i) => at = at + 1 + i,
                    None => break None,
                }
            };
            let Some(after) = opening else {
                continue;
            };
            opens = true;
            // The parser skips blanks and one line break before reading headers.
            let rest = &line[after..];
            let skipped = rest
                .iter()
                .position(|&b| !matches!(b, b' ' | b'\t' | b'\r'))
                .unwrap_or(rest.len());
            if skipped < rest.len() {
                mid_line_starts.push(start + after + skipped);
            }
        }
        for index in found {
            if let Some(b) = self.boundaries.get_mut(index) {
                self.pending -= b.pending;
                self.pending_offsets -= b.pending_offsets;
                b.pending = 0;
                b.pending_offsets = 0;
            }
        }
        mid_line_starts.sort_unstable();
        mid_line_starts.dedup();
        Ok(opens)
    }

    /// Evaluates the fields of a block that just ended or got a new field.
    fn close_fields(&mut self, region: &mut Region) -> Result<(), GuardCut> {
        let data = self.data;
        for f in std::mem::take(&mut region.fields) {
            let value = &data[f.value_start.min(f.end)..f.end];
            match f.kind {
                FieldKind::ContentType => {
                    self.add_continuation_work(f.start, f.end)?;
                    let parsed = MessageStream::new(value).parse_content_type();
                    if let HeaderValue::ContentType(ct) = parsed {
                        region.content_type_since_delimiter = true;
                        match ct.ctype() {
                            "multipart" => {
                                if ct.subtype() == Some("digest") {
                                    self.digest_seen = true;
                                }
                                if let Some(b) = ct.attribute("boundary")
                                    && !b.is_empty()
                                {
                                    region.declared.push((b.as_bytes().to_vec(), f.start));
                                }
                            }
                            "message" => region.message_type = true,
                            _ => {}
                        }
                    }
                }
                FieldKind::ContentDisposition => self.add_continuation_work(f.start, f.end)?,
                FieldKind::TransferEncoding => {
                    if let HeaderValue::Text(t) = MessageStream::new(value).parse_unstructured() {
                        if t.eq_ignore_ascii_case("base64") {
                            region.base64 = true;
                        } else if t.eq_ignore_ascii_case("quoted-printable") {
                            region.quoted_printable = true;
                        }
                    }
                }
                FieldKind::Other => {}
            }
        }
        Ok(())
    }

    /// Parameter continuations are merged in time quadratic in the field's length.
    fn add_continuation_work(&mut self, start: usize, end: usize) -> Result<(), GuardCut> {
        let len = end.saturating_sub(start) as u128;
        self.totals.work += (len * len) >> 12;
        if self.base_work + self.totals.work > self.budget() {
            let mut cut = self.budget_cut();
            cut.at = cut.at.min(start);
            return Err(cut);
        }
        Ok(())
    }

    /// A header block ended at the blank line before `body`: register its boundaries and
    /// follow an encapsulated message.
    fn end_block(&mut self, mut region: Region, body: usize) -> Result<(), GuardCut> {
        self.close_fields(&mut region)?;
        for (boundary, field_start) in std::mem::take(&mut region.declared) {
            self.declare(boundary, field_start, body)?;
        }
        let message = region.message_type
            || (self.digest_seen
                && region.started_by_delimiter
                && !region.content_type_since_delimiter);
        if !message {
            return Ok(());
        }
        if region.base64 || region.quoted_printable {
            self.encoded_message(&region, body)?;
        }
        // The parser may also read the message in place (when the last encoding is neither).
        self.open_region(body, false)
    }

    fn declare(
        &mut self,
        boundary: Vec<u8>,
        field_start: usize,
        body: usize,
    ) -> Result<(), GuardCut> {
        // A failed search re-scans bytes and compares the boundary at each `--` on the way.
        let weight = 1 + boundary.len() as u128 / COMPARE_BYTES_PER_WORK;
        self.longest_boundary = self.longest_boundary.max(boundary.len());
        let mut pattern = Vec::with_capacity(boundary.len() + 2);
        pattern.extend_from_slice(b"--");
        pattern.extend_from_slice(&boundary);
        let index = match self.boundary_index.get(&pattern) {
            Some(&i) => i,
            None => {
                if self.boundaries.len() >= MAX_BOUNDARIES {
                    return Err(self.cut(
                        field_start,
                        "mime_structure_limit",
                        format!("more than {MAX_BOUNDARIES} distinct boundaries"),
                    ));
                }
                self.boundaries.push(Boundary {
                    pattern_len: pattern.len(),
                    finder: memmem::Finder::new(&pattern).into_owned(),
                    pending: 0,
                    pending_offsets: 0,
                });
                self.boundary_index
                    .insert(pattern, self.boundaries.len() - 1);
                self.boundaries.len() - 1
            }
        };
        if let Some(b) = self.boundaries.get_mut(index) {
            b.pending += weight;
            b.pending_offsets += weight * body as u128;
        }
        self.pending += weight;
        self.pending_offsets += weight * body as u128;
        Ok(())
    }

    /// A `message/*` part with a base64 or quoted-printable body: the parser decodes it and
    /// parses the result again, so scan that too.
    fn encoded_message(&mut self, region: &Region, body: usize) -> Result<(), GuardCut> {
        self.totals.encoded_messages += 1;
        if self.totals.encoded_messages > MAX_ENCODED_MESSAGES {
            return Err(self.cut(
                region.start,
                "mime_structure_limit",
                format!("more than {MAX_ENCODED_MESSAGES} encoded encapsulated messages"),
            ));
        }
        if self.level >= PARSER_ENCODED_DEPTH {
            return Ok(());
        }
        let data = self.data;
        let rest = &data[body.min(data.len())..];
        let mut decoded: Vec<Cow<'_, [u8]>> = Vec::new();
        if region.base64 {
            // Base64 has no `-`: the body ends (or turns invalid) at the first `--`. Decode
            // leniently: a cut could turn an invalid body into a valid prefix the parser reads.
            let end = self.dashes.find(rest).unwrap_or(rest.len());
            decoded.push(Cow::Owned(base64_like_the_parser(&rest[..end])));
        }
        if region.quoted_printable {
            // Its end depends on the enclosing boundary: take everything that follows.
            decoded.push(Cow::Owned(quoted_printable_lenient(rest)));
        }
        let base = self.total_at(body) - self.totals.work;
        for bytes in decoded {
            let mut inner = Scan::new(&bytes, self.level + 1, base, self.limits, self.totals);
            let outcome = inner.run();
            let inner_failed =
                (inner.pending * bytes.len() as u128).saturating_sub(inner.pending_offsets);
            if let Err(c) = outcome {
                return Err(self.cut(
                    region.start,
                    c.kind,
                    format!("inside an encoded encapsulated message: {}", c.detail),
                ));
            }
            self.totals.work += inner_failed;
        }
        if self.total_at(body) > self.budget() {
            return Err(self.cut(
                region.start.min(self.last_ok),
                "mime_scan_budget",
                format!(
                    "decoding an encoded encapsulated message would re-scan more than {} bytes",
                    self.limits.max_scan_work
                ),
            ));
        }
        Ok(())
    }
}

/// Reads a header field name the way `mail-parser` does at the start of a field: white space
/// is skipped (also inside the name), leading colons are ignored, and the name ends at the first
/// colon. Returns the kind and the offset just past the colon, or `None` for a line without one.
fn field_name(line: &[u8]) -> Option<(FieldKind, usize)> {
    const LONGEST: usize = 34;
    let mut name = [0u8; LONGEST];
    let mut len = 0usize;
    for (i, &c) in line.iter().enumerate() {
        if c == b':' {
            if len == 0 {
                continue;
            }
            let kind = match name.get(..len) {
                Some(b"content-type") => FieldKind::ContentType,
                Some(b"content-disposition") => FieldKind::ContentDisposition,
                Some(b"content-transfer-encoding") => FieldKind::TransferEncoding,
                _ => FieldKind::Other,
            };
            return Some((kind, i + 1));
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if let Some(slot) = name.get_mut(len) {
            *slot = c.to_ascii_lowercase();
        }
        len += 1;
    }
    None
}

/// Base64 decoding as `mail-parser` does it (a `=` flushes the bytes of a partial quantum, even
/// of a single character), except that invalid characters are skipped instead of failing, so
/// the output of any valid prefix is a prefix of this output.
fn base64_like_the_parser(raw: &[u8]) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(raw.len() / 4 * 3 + 1);
    let mut acc: u32 = 0;
    let mut n = 0u8;
    for &c in raw {
        if let Some(v) = value(c) {
            acc = (acc << 6) | v;
            n += 1;
            if n == 4 {
                out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
                acc = 0;
                n = 0;
            }
        } else if c == b'=' {
            match n {
                1 => out.push((acc << 2) as u8),
                2 => out.push((acc >> 4) as u8),
                3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
                _ => {}
            }
            acc = 0;
            n = 0;
        }
    }
    out
}

/// Quoted-printable decoding that never gives up, so it decodes at least what the parser does.
fn quoted_printable_lenient(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'=' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (raw.get(i + 1).copied(), raw.get(i + 2).copied()) {
                (Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                    let v = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                    out.push(v as u8);
                    i += 3;
                    continue;
                }
                (Some(b'\n'), _) => {
                    i += 2;
                    continue;
                }
                (Some(b'\r'), Some(b'\n')) => {
                    i += 3;
                    continue;
                }
                _ => {}
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> MimeLimits {
        MimeLimits::default()
    }

    #[test]
    fn ordinary_multipart_passes() {
        let m = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=\"xx\"\r\n\r\npre\r\n--xx\r\nContent-Type: text/plain\r\n\r\nhi\r\n--xx\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n--xx--\r\n";
        assert_eq!(check(m, &limits()), None);
    }

    #[test]
    fn field_names_are_read_like_the_parser() {
        assert_eq!(
            field_name(b"Content-Type: text/plain").map(|f| f.0),
            Some(FieldKind::ContentType)
        );
        assert_eq!(
            field_name(b"  cOnTent - tyPe : x").map(|f| f.0),
            Some(FieldKind::ContentType)
        );
        assert_eq!(
            field_name(b":content-type: x").map(|f| f.0),
            Some(FieldKind::ContentType)
        );
        assert_eq!(field_name(b"no colon here"), None);
        assert_eq!(field_name(b"X-Foo: y").map(|f| f.1), Some(6));
    }

    #[test]
    fn missing_boundaries_in_bulk_are_cut_within_budget() {
        let mut m = b"Content-Type: multipart/mixed; boundary=A\r\n\r\n".to_vec();
        for i in 0..1000 {
            m.extend_from_slice(
                format!("--A\r\nContent-Type: multipart/mixed; boundary=Z{i}\r\n\r\nxx\r\n")
                    .as_bytes(),
            );
        }
        m.extend_from_slice(&vec![b'x'; 1 << 20]);
        let l = MimeLimits {
            max_scan_work: 64 << 20,
            ..limits()
        };
        let cut = check(&m, &l).expect("cut");
        assert_eq!(cut.kind, "mime_scan_budget");
        assert!(cut.at > 0 && cut.at < m.len());
        // What remains costs at most the budget: count the declarations before the cut.
        let kept = &m[..cut.at];
        let decls = memmem::find_iter(kept, b"boundary=Z").count() as u128;
        assert!(decls * kept.len() as u128 <= 2 * u128::from(l.max_scan_work));
    }

    #[test]
    fn found_boundaries_cost_nothing() {
        let mut m = b"Content-Type: multipart/mixed; boundary=A\r\n\r\n".to_vec();
        for i in 0..100 {
            m.extend_from_slice(
                format!("--A\r\nContent-Type: multipart/mixed; boundary=Z{i}\r\n\r\n--Z{i}\r\n\r\nx\r\n--Z{i}--\r\n")
                    .as_bytes(),
            );
        }
        m.extend_from_slice(b"--A--\r\n");
        m.extend_from_slice(&vec![b'x'; 1 << 20]);
        let l = MimeLimits {
            max_scan_work: 1 << 20,
            ..limits()
        };
        assert_eq!(check(&m, &l), None);
    }

    #[test]
    fn tiny_header_fields_are_bounded() {
        let mut m = Vec::new();
        for _ in 0..300_000 {
            m.extend_from_slice(b"a:b\n");
        }
        m.extend_from_slice(b"\nbody\n");
        let l = MimeLimits {
            max_header_tokens: 100_000,
            ..limits()
        };
        let cut = check(&m, &l).expect("cut");
        assert_eq!(cut.kind, "mime_structure_limit");
        // One token is reserved for the name the parser takes at the very end.
        assert_eq!(cut.at, (100_000 - 1) * 4);
    }

    #[test]
    fn empty_parts_are_bounded() {
        let mut m = b"Content-Type: multipart/mixed; boundary=x\n\n".to_vec();
        for _ in 0..50_000 {
            m.extend_from_slice(b"--x\n\n\n");
        }
        let cut = check(&m, &limits()).expect("cut");
        assert_eq!(cut.kind, "mime_structure_limit");
        assert!(cut.at < m.len());
    }

    #[test]
    fn mid_line_delimiter_opens_a_header_block() {
        // The parser finds `--b` anywhere; the header after it on the same line counts.
        let mut m = b"Content-Type: multipart/mixed; boundary=b\n\nx--bContent-Type: multipart/mixed; boundary=never\n\n".to_vec();
        m.extend_from_slice(&vec![b'y'; 1000]);
        let l = MimeLimits {
            max_scan_work: 100,
            ..limits()
        };
        let cut = check(&m, &l).expect("the undeclared-boundary seek is counted");
        assert_eq!(cut.kind, "mime_scan_budget");
    }

    #[test]
    fn long_boundaries_cost_in_proportion() {
        // A long boundary is fine on small input, but every `--` costs a long comparison.
        let b = "q".repeat(300);
        let small = format!(
            "Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n\r\nx\r\n--{b}--\r\n"
        );
        assert_eq!(check(small.as_bytes(), &limits()), None);
        let mut flood = format!(
            "Subject: s\r\nContent-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n\r\n"
        )
        .into_bytes();
        flood.extend(std::iter::repeat_n(b'-', 1 << 20));
        let l = MimeLimits {
            max_scan_work: 1 << 20,
            ..limits()
        };
        let cut = check(&flood, &l).expect("cut");
        assert_eq!(cut.kind, "mime_scan_budget");
        assert!(cut.at < flood.len());
    }

    #[test]
    fn encoded_messages_are_scanned_inside() {
        let mut inner = Vec::new();
        for _ in 0..20_000 {
            inner.extend_from_slice(b"a:b\n");
        }
        inner.extend_from_slice(b"\nbody\n");
        let b64 = base64_encode(&inner);
        let m = format!(
            "Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n{b64}\n--q--\n"
        );
        let l = MimeLimits {
            max_header_tokens: 10_000,
            ..limits()
        };
        let cut = check(m.as_bytes(), &l).expect("cut");
        assert_eq!(cut.kind, "mime_structure_limit");
        assert_eq!(cut.at, m.find("--q\n").map(|i| i + 4).unwrap_or(0));
        assert!(cut.detail.contains("encoded"));
    }

    #[test]
    fn base64_decodes_like_the_parser() {
        for sample in [
            &b"QUJD"[..],
            b"QUI=",
            b"QQ==",
            b"QUJDREVG\r\nR0g=",
            b"TA=TA=",
            b"QUJ\r\nD",
        ] {
            let (status, theirs) = MessageStream::new(sample).decode_base64_mime(b"");
            assert_ne!(status, usize::MAX);
            assert_eq!(
                base64_like_the_parser(sample),
                theirs.as_ref(),
                "{sample:?}"
            );
        }
        // Where the parser gives up, this goes on.
        assert_eq!(base64_like_the_parser(b"QU:JD"), b"ABC");
    }

    #[test]
    fn quoted_printable_lenient_keeps_going() {
        assert_eq!(quoted_printable_lenient(b"a=3Db==c=\r\nd=\ne"), b"a=b==cde");
    }

    fn base64_encode(data: &[u8]) -> String {
        use base64::Engine;
        let s = base64::engine::general_purpose::STANDARD.encode(data);
        let mut out = String::new();
        for chunk in s.as_bytes().chunks(76) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use mail_parser::{Message, MessageParser, PartType};
    use proptest::prelude::*;

    const FRAGMENTS: &[&str] = &[
        "Content-Type: multipart/mixed; boundary=a\r\n",
        "Content-Type: multipart/mixed; boundary=b\r\n",
        "Content-Type: multipart/digest; boundary=d\r\n",
        "Content-Type: message/rfc822\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n",
        "\r\n",
        "\r\n",
        " \r\n",
        "--a\r\n",
        "--b\r\n",
        "--d\r\n",
        "--a--\r\n",
        "x--aY: 1\r\n",
        "X: 1\r\n",
        "To: a, b, <c>, <d>; e\r\n",
        " folded: 2\r\n",
        "a:b:c\r\n",
        "text line\r\n",
        "=\r\n",
        "QTogMQ0KQjogMg0KQzogMw0KDQo=\r\n",
        "Q29udGVudC1UeXBlOiBtdWx0aXBhcnQvbWl4ZWQ7IGJvdW5kYXJ5PXoNCg0KLS16DQpBOiAxDQoNCg==\r\n",
        "A=3A 1=0D=0AB=3A 2=0D=0A=0D=0A\r\n",
        "Content-Type: multipart/alternative;\r\n boundary=b\r\n",
        "con tent-TYPE : Message/RFC822\r\n",
        "Content-Type: multipart/mixed; boundary*0=a\r\n",
        "--b--x: 1\r\n",
        "\t\r\n",
        "TA=TA=TA=\r\n",
        "--a",
    ];

    /// Header fields and parts the parser built, nested messages included.
    fn census(m: &Message<'_>) -> (usize, usize) {
        let mut headers = 0;
        let mut parts = 0;
        for p in &m.parts {
            headers += p.headers.len();
            parts += 1;
            if let PartType::Message(inner) = &p.body {
                let (h, n) = census(inner);
                headers += h;
                parts += n;
            }
        }
        (headers, parts)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever the pre-scan lets through, the parser builds no more than it counted.
        #[test]
        fn parser_stays_within_the_counted_bounds(picks in proptest::collection::vec(0..FRAGMENTS.len(), 0..80)) {
            let data: Vec<u8> = picks.iter().flat_map(|&i| FRAGMENTS[i].bytes()).collect();
            let limits = MimeLimits {
                max_header_tokens: 40,
                max_header_blocks: 12,
                ..MimeLimits::default()
            };
            let cut = check(&data, &limits).map_or(data.len(), |c| c.at);
            let kept = &data[..cut];
            let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(kept));
            if let Ok(Some(m)) = parsed {
                let (headers, parts) = census(&m);
                prop_assert!(headers <= limits.max_header_tokens, "{} headers in {:?}", headers, String::from_utf8_lossy(kept));
                prop_assert!(parts <= limits.max_header_blocks + 1, "{} parts in {:?}", parts, String::from_utf8_lossy(kept));
            }
        }
    }
}
