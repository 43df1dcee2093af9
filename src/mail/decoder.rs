//! Streaming Content-Transfer-Encoding decoders, for part bodies that arrive in pieces.
//!
//! Each decoder gives, for any split of a body into chunks (down to single bytes), exactly the
//! octets and the `invalid` count that [`super::transfer::decode`] gives for the whole body: the
//! one-shot functions there define the semantics, and the tests hold these to them.
//!
//! Base64 is most of a capture's bytes, so its decoder gathers line contents into a stack block
//! and hands whole quanta to a SIMD decoder, keeping the lenient byte-at-a-time path for the bytes
//! around anything that is not in the alphabet.

use super::transfer::TransferEncoding;
use base64_simd::STANDARD_NO_PAD;
use memchr::{memchr2, memchr3};

/// `DECODE` entry of `=`.
const PAD: u8 = 0x40;
/// `DECODE` entry of ASCII whitespace, which base64 skips without counting it.
const SKIP: u8 = 0x80;
/// `DECODE` entry of every other byte outside the alphabet.
const BAD: u8 = 0xff;

/// Base64 value of each byte (below 64), or what the lenient decoder does with it.
const DECODE: [u8; 256] = {
    let mut t = [BAD; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t[b'=' as usize] = PAD;
    // `u8::is_ascii_whitespace`, as transfer.rs uses: note it leaves out vertical tab.
    let ws = [b' ', b'\t', b'\n', b'\r', 0x0c];
    let mut i = 0;
    while i < ws.len() {
        t[ws[i] as usize] = SKIP;
        i += 1;
    }
    t
};

/// Alphabet bytes gathered per SIMD call: big enough to amortize the call, small enough for the
/// stack and for the lenient rescan of a block that holds junk. A multiple of 4, so blocks end
/// on quantum boundaries.
const BLOCK: usize = 4096;

/// The block for inputs of up to a TCP segment (a multiple of 4 too).
const SEGMENT_BLOCK: usize = 1536;

/// Inputs shorter than this skip the block machinery (its setup costs more than it saves).
const SMALL: usize = 64;

/// Streaming base64 decoder (RFC 2045 §6.8), lenient as transfer::decode is.
#[derive(Debug, Clone, Default)]
pub struct Base64Decoder {
    /// Sextets of the quantum in progress.
    acc: u32,
    /// How many sextets `acc` holds (0 to 3).
    n: u8,
    invalid: u64,
}

impl Base64Decoder {
    /// A decoder at the start of a part.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `input`, appending octets to `out` (a partial quantum is carried to the next call).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        // One amortized reservation: the SIMD decoder reserves exactly per call, which would
        // reallocate `out` once per block otherwise.
        out.reserve(input.len() / 4 * 3 + 3);
        if input.len() < SMALL {
            self.feed_lenient(input, out);
            return;
        }
        // A TCP segment's worth needs no 4 KiB block, and zeroing one would cost a fifth of
        // the decoding time.
        if input.len() <= SEGMENT_BLOCK {
            self.feed_blocks::<SEGMENT_BLOCK>(input, out);
        } else {
            self.feed_blocks::<BLOCK>(input, out);
        }
    }

    /// Gathers line contents into blocks of `N` bytes and decodes each.
    fn feed_blocks<const N: usize>(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut block = [0u8; N];
        let mut i = 0;
        while i < input.len() {
            // Line ends are dropped while gathering: the lenient decoder skips them without
            // effect, so decoding the gathered bytes is the same as decoding the input.
            let mut len = 0;
            while len < N && i < input.len() {
                let window = &input[i..input.len().min(i + N - len)];
                let seg = memchr2(b'\r', b'\n', window).unwrap_or(window.len());
                block[len..len + seg].copy_from_slice(&window[..seg]);
                len += seg;
                i += seg;
                if seg < window.len() {
                    while i < input.len() && matches!(input[i], b'\r' | b'\n') {
                        i += 1;
                    }
                }
            }
            self.decode_gathered(&block[..len], out);
        }
    }

    /// Flushes what a final partial quantum holds; call once at the end of the part.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.end_quantum(out);
    }

    /// Bytes so far that were not valid for the encoding.
    pub fn invalid(&self) -> u64 {
        self.invalid
    }

    /// Decodes bytes with no line ends in them, by whole quanta where they are all alphabet.
    fn decode_gathered(&mut self, mut run: &[u8], out: &mut Vec<u8>) {
        run = self.realign(run, out);
        let whole = run.len() & !3;
        if STANDARD_NO_PAD.decode_append(&run[..whole], out).is_ok() {
            self.feed_lenient(&run[whole..], out);
            return;
        }
        // Something outside the alphabet: decode up to each such byte, step over it leniently.
        // Each byte is scanned once more, so junk-dense input stays linear.
        loop {
            run = self.realign(run, out);
            match run.iter().position(|&c| DECODE[c as usize] >= 64) {
                None => {
                    let whole = run.len() & !3;
                    self.whole_quanta(&run[..whole], out);
                    self.feed_lenient(&run[whole..], out);
                    return;
                }
                Some(p) => {
                    let whole = p & !3;
                    self.whole_quanta(&run[..whole], out);
                    self.feed_lenient(&run[whole..=p], out);
                    run = &run[p + 1..];
                }
            }
        }
    }

    /// Feeds bytes leniently until no partial quantum is held, so SIMD can take whole ones.
    fn realign<'a>(&mut self, mut run: &'a [u8], out: &mut Vec<u8>) -> &'a [u8] {
        while self.n != 0 {
            let Some((&c, rest)) = run.split_first() else {
                break;
            };
            self.feed_lenient(&[c], out);
            run = rest;
        }
        run
    }

    /// Decodes alphabet-only quanta at a quantum boundary.
    fn whole_quanta(&mut self, quanta: &[u8], out: &mut Vec<u8>) {
        if STANDARD_NO_PAD.decode_append(quanta, out).is_err() {
            // Not expected for alphabet bytes; the lenient path is right whatever they are.
            self.feed_lenient(quanta, out);
        }
    }

    /// The byte-at-a-time decoder: transfer.rs's `base64_lenient` with its state kept here.
    fn feed_lenient(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &c in input {
            let v = DECODE[c as usize];
            if v < 64 {
                self.acc = (self.acc << 6) | u32::from(v);
                self.n += 1;
                if self.n == 4 {
                    let a = self.acc;
                    out.extend_from_slice(&[(a >> 16) as u8, (a >> 8) as u8, a as u8]);
                    self.acc = 0;
                    self.n = 0;
                }
            } else if v == PAD {
                self.end_quantum(out);
            } else if v == BAD {
                self.invalid += 1;
            }
        }
    }

    /// Ends the quantum in progress, keeping its whole octets; a lone sextet holds none and is
    /// counted as invalid.
    fn end_quantum(&mut self, out: &mut Vec<u8>) {
        match self.n {
            1 => self.invalid += 1,
            2 => out.push((self.acc >> 4) as u8),
            3 => out.extend_from_slice(&[(self.acc >> 10) as u8, (self.acc >> 2) as u8]),
            _ => {}
        }
        self.acc = 0;
        self.n = 0;
    }
}

/// Literal blanks whose fate depends on bytes not seen yet.
///
/// A uniform run (the usual trailing padding) is a count; only a run mixing spaces and tabs
/// needs a bitmap, one bit per blank, since those blanks must come out exactly as they went in.
#[derive(Debug, Clone, Default)]
struct Blanks {
    len: u64,
    /// The first blank; while `mixed` is empty, all of them.
    first: u8,
    /// Bit i set: blank i is not `first`. Empty until a blank differs.
    mixed: Vec<u64>,
}

impl Blanks {
    fn push(&mut self, c: u8) {
        if self.len == 0 {
            self.first = c;
        } else if c != self.first || !self.mixed.is_empty() {
            let word = (self.len / 64) as usize;
            self.mixed.resize(self.mixed.len().max(word + 1), 0);
            if c != self.first {
                self.mixed[word] |= 1 << (self.len % 64);
            }
        }
        self.len += 1;
    }

    fn extend(&mut self, blanks: &[u8]) {
        if blanks.is_empty() {
            return;
        }
        if blanks.iter().all(|&c| c == blanks[0]) && (self.len == 0 || self.is_uniform(blanks[0])) {
            if self.len == 0 {
                self.first = blanks[0];
            }
            self.len += blanks.len() as u64;
        } else {
            blanks.iter().for_each(|&c| self.push(c));
        }
    }

    fn is_uniform(&self, c: u8) -> bool {
        self.mixed.is_empty() && self.first == c
    }

    /// Writes the blanks out and forgets them.
    #[inline]
    fn emit(&mut self, out: &mut Vec<u8>) {
        if self.len != 0 {
            self.emit_held(out);
        }
    }

    fn emit_held(&mut self, out: &mut Vec<u8>) {
        if self.mixed.is_empty() && self.len == 1 {
            out.push(self.first);
        } else if self.mixed.is_empty() {
            out.resize(out.len() + self.len as usize, self.first);
        } else {
            let other = if self.first == b' ' { b'\t' } else { b' ' };
            for i in 0..self.len {
                let differs = self.mixed[(i / 64) as usize] >> (i % 64) & 1 == 1;
                out.push(if differs { other } else { self.first });
            }
        }
        self.clear();
    }

    fn clear(&mut self) {
        self.len = 0;
        // A long mixed run is rare; its bitmap is not kept for the rest of the part.
        if self.mixed.capacity() > 16 {
            self.mixed = Vec::new();
        } else {
            self.mixed.clear();
        }
    }
}

/// Where the quoted-printable decoder stands in an `=` sequence cut by a chunk edge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum QpState {
    /// Not in an `=` sequence.
    #[default]
    Text,
    /// After `=`.
    Eq,
    /// After `=` and one hex digit (as written: it is kept if no second digit follows).
    EqHex(u8),
    /// After `=` and blanks (held in `after_eq`): a soft break if a line end follows.
    EqBlanks,
    /// After `=`, maybe blanks, and CR: a soft break if LF follows.
    EqCr,
}

/// Blanks of undecided fate kept before they are taken as content (RFC 5322 lines are at most
/// 998 bytes, so no real line comes near).
const MAX_OPEN_BLANKS: u64 = 64 << 10;

/// Streaming quoted-printable decoder (RFC 2045 §6.7).
#[derive(Debug, Clone, Default)]
pub struct QuotedPrintableDecoder {
    state: QpState,
    /// Literal blanks not written yet: dropped if a hard line break comes before anything else
    /// (trailing blanks are transport padding), written otherwise.
    pending: Blanks,
    /// Blanks after an `=`: dropped if a soft break follows, literal text if not.
    after_eq: Blanks,
    invalid: u64,
}

/// `HEX` entry of a byte that is no hex digit.
const NOT_HEX: u8 = 0xff;

/// Value of each hex digit (either case, as `char::to_digit(16)` in transfer.rs), else `NOT_HEX`.
const HEX: [u8; 256] = {
    let mut t = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

fn hex_value(c: u8) -> Option<u8> {
    let v = HEX[c as usize];
    (v != NOT_HEX).then_some(v)
}

/// Where the next `=` or line end is. Runs between escapes are short in accented text: a look
/// at the next words, 8 bytes at a time, is cheaper there than memchr's setup.
#[inline]
fn next_special(text: &[u8]) -> Option<usize> {
    const NEAR: usize = 32;
    let mut at = 0;
    while at + 8 <= text.len().min(NEAR) {
        let word = u64::from_le_bytes(text[at..at + 8].try_into().expect("8 bytes"));
        let found = zero_bytes(word ^ splat(b'='))
            | zero_bytes(word ^ splat(b'\r'))
            | zero_bytes(word ^ splat(b'\n'));
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    if text.len() - at < 8 {
        return text[at..]
            .iter()
            .position(|&c| matches!(c, b'=' | b'\r' | b'\n'))
            .map(|k| k + at);
    }
    memchr3(b'=', b'\r', b'\n', &text[at..]).map(|k| k + at)
}

fn splat(c: u8) -> u64 {
    u64::from(c) * 0x0101_0101_0101_0101
}

/// The high bit of each zero byte of `w` is set; bytes above a zero one may be set falsely (by
/// the borrow), so only the lowest set bit is to be trusted.
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(0x0101_0101_0101_0101) & !w & 0x8080_8080_8080_8080
}

impl QuotedPrintableDecoder {
    /// A decoder at the start of a part.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `input`, appending octets to `out` (a partial `=` sequence is carried to the next call).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.decode(input, out);
        self.bound_blanks(out);
    }

    /// Keeps the blanks whose fate is open bounded: a run longer than any line is content,
    /// whatever follows it (only such hostile runs differ from the one-shot decoder).
    fn bound_blanks(&mut self, out: &mut Vec<u8>) {
        if self.after_eq.len > MAX_OPEN_BLANKS && self.state == QpState::EqBlanks {
            self.bad_eq(out);
            std::mem::swap(&mut self.pending, &mut self.after_eq);
        }
        if self.pending.len > MAX_OPEN_BLANKS {
            self.pending.emit(out);
        }
    }

    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        let mut i = 0;
        while i < input.len() {
            if self.state != QpState::Text {
                if self.escape_byte(input[i], out) {
                    i += 1;
                }
                continue;
            }
            let rest = &input[i..];
            let Some(k) = next_special(rest) else {
                self.literal(rest, out);
                return;
            };
            self.literal(&rest[..k], out);
            i += k;
            match input[i] {
                b'=' => {
                    let h = input.get(i + 1).map_or(NOT_HEX, |&c| HEX[c as usize]);
                    let l = input.get(i + 2).map_or(NOT_HEX, |&c| HEX[c as usize]);
                    // Digits are below 16, so this holds only when both are digits.
                    if h | l < 16 {
                        self.pending.emit(out);
                        out.push(h << 4 | l);
                        i += 3;
                    } else {
                        self.state = QpState::Eq;
                        i += 1;
                    }
                }
                c => {
                    self.hard_break(c, out);
                    i += 1;
                }
            }
        }
    }

    /// Flushes what a final partial `=` sequence holds; call once at the end of the part.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self.state {
            // transfer.rs drops an `=` (and blanks after it) that ends the body, uncounted.
            QpState::Text | QpState::Eq | QpState::EqBlanks => {}
            QpState::EqHex(h) => {
                self.bad_eq(out);
                out.push(h);
            }
            QpState::EqCr => {
                self.bad_eq(out);
                self.hard_break(b'\r', out);
            }
        }
        self.after_eq.clear();
        self.pending.emit(out);
        self.state = QpState::Text;
    }

    /// Bytes so far that were not valid for the encoding.
    pub fn invalid(&self) -> u64 {
        self.invalid
    }

    /// Text with no `=` or line end in it: trailing blanks are held back until we know what
    /// follows them.
    #[inline]
    fn literal(&mut self, text: &[u8], out: &mut Vec<u8>) {
        match text.last() {
            None => {}
            Some(b' ' | b'\t') => self.literal_ending_blank(text, out),
            Some(_) => {
                self.pending.emit(out);
                out.extend_from_slice(text);
            }
        }
    }

    fn literal_ending_blank(&mut self, text: &[u8], out: &mut Vec<u8>) {
        match text.iter().rposition(|&c| !matches!(c, b' ' | b'\t')) {
            Some(last) => {
                self.pending.emit(out);
                out.extend_from_slice(&text[..=last]);
                if last + 1 < text.len() {
                    self.pending.extend(&text[last + 1..]);
                }
            }
            None if !text.is_empty() => self.pending.extend(text),
            None => {}
        }
    }

    /// CR or LF outside an `=` sequence.
    fn hard_break(&mut self, c: u8, out: &mut Vec<u8>) {
        self.pending.clear();
        out.push(c);
    }

    /// A soft line break: blanks before its `=` were not at the end of the encoded line, so
    /// they are content (RFC 2045 6.7 rule 3), even when a hard break follows at once.
    fn soft_break(&mut self, out: &mut Vec<u8>) {
        self.pending.emit(out);
        self.state = QpState::Text;
    }

    /// An `=` that starts no escape and no soft break: kept literally, and counted.
    fn bad_eq(&mut self, out: &mut Vec<u8>) {
        self.invalid += 1;
        self.pending.emit(out);
        out.push(b'=');
        self.state = QpState::Text;
    }

    /// Advances an `=` sequence by one byte; false when the byte ended it without being used,
    /// to be read again as text.
    fn escape_byte(&mut self, c: u8, out: &mut Vec<u8>) -> bool {
        match self.state {
            QpState::Text => false,
            QpState::Eq => {
                if hex_value(c).is_some() {
                    self.state = QpState::EqHex(c);
                } else {
                    match c {
                        b' ' | b'\t' => {
                            self.after_eq.push(c);
                            self.state = QpState::EqBlanks;
                        }
                        b'\n' => self.soft_break(out),
                        b'\r' => self.state = QpState::EqCr,
                        _ => {
                            self.bad_eq(out);
                            return false;
                        }
                    }
                }
                true
            }
            QpState::EqHex(h) => {
                if let (Some(hv), Some(lv)) = (hex_value(h), hex_value(c)) {
                    self.pending.emit(out);
                    out.push(hv << 4 | lv);
                    self.state = QpState::Text;
                    true
                } else {
                    // The `=` is literal, and so is the digit after it (never a blank).
                    self.bad_eq(out);
                    out.push(h);
                    false
                }
            }
            QpState::EqBlanks => match c {
                b' ' | b'\t' => {
                    self.after_eq.push(c);
                    true
                }
                b'\n' => {
                    self.after_eq.clear();
                    self.soft_break(out);
                    true
                }
                b'\r' => {
                    // Either a soft break, or a bad `=` and then a hard break that drops these
                    // blanks as trailing ones: gone either way.
                    self.after_eq.clear();
                    self.state = QpState::EqCr;
                    true
                }
                _ => {
                    self.bad_eq(out);
                    std::mem::swap(&mut self.pending, &mut self.after_eq);
                    false
                }
            },
            QpState::EqCr => {
                if c == b'\n' {
                    self.soft_break(out);
                    true
                } else {
                    self.bad_eq(out);
                    self.hard_break(b'\r', out);
                    false
                }
            }
        }
    }
}

/// A part body decoder chosen by transfer encoding: base64, quoted-printable or identity.
#[derive(Debug, Clone)]
pub enum BodyDecoder {
    /// `7bit`, `8bit`, `binary`, no header or an unknown encoding: the body is the content.
    Identity,
    /// `base64`.
    Base64(Base64Decoder),
    /// `quoted-printable`.
    QuotedPrintable(QuotedPrintableDecoder),
}

impl BodyDecoder {
    /// The decoder for a part's declared encoding, as [`super::transfer::decode`] chooses.
    pub fn for_encoding(enc: &TransferEncoding) -> Self {
        match enc {
            TransferEncoding::Base64 => BodyDecoder::Base64(Base64Decoder::new()),
            TransferEncoding::QuotedPrintable => {
                BodyDecoder::QuotedPrintable(QuotedPrintableDecoder::new())
            }
            TransferEncoding::Absent | TransferEncoding::Identity | TransferEncoding::Unknown => {
                BodyDecoder::Identity
            }
        }
    }

    /// Decodes `input`; identity returns it borrowed, others append to `scratch` and return that.
    pub fn feed<'a>(&mut self, input: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
        scratch.clear();
        match self {
            BodyDecoder::Identity => input,
            BodyDecoder::Base64(d) => {
                d.feed(input, scratch);
                scratch
            }
            BodyDecoder::QuotedPrintable(d) => {
                d.feed(input, scratch);
                scratch
            }
        }
    }

    /// Flushes a partial unit at the end of the part into `scratch` (cleared first) and returns it.
    pub fn finish<'a>(&mut self, scratch: &'a mut Vec<u8>) -> &'a [u8] {
        scratch.clear();
        match self {
            BodyDecoder::Identity => {}
            BodyDecoder::Base64(d) => d.finish(scratch),
            BodyDecoder::QuotedPrintable(d) => d.finish(scratch),
        }
        scratch
    }

    /// Bytes so far that were not valid for the encoding (always 0 for identity).
    pub fn invalid(&self) -> u64 {
        match self {
            BodyDecoder::Identity => 0,
            BodyDecoder::Base64(d) => d.invalid(),
            BodyDecoder::QuotedPrintable(d) => d.invalid(),
        }
    }
}

/// The one-shot decoders of `transfer.rs`, reachable for the benchmarks that compare against them.
#[doc(hidden)]
pub mod oneshot {
    use super::super::transfer::{self, TransferEncoding};

    /// `transfer::decode` of a base64 body: octets and invalid count.
    pub fn base64(raw: &[u8]) -> (Vec<u8>, u64) {
        let d = transfer::decode(raw, &TransferEncoding::Base64);
        (d.bytes.into_owned(), d.invalid as u64)
    }

    /// `transfer::decode` of a quoted-printable body: octets and invalid count.
    pub fn quoted_printable(raw: &[u8]) -> (Vec<u8>, u64) {
        let d = transfer::decode(raw, &TransferEncoding::QuotedPrintable);
        (d.bytes.into_owned(), d.invalid as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::transfer::{self, TransferEncoding};
    use super::*;
    use base64::Engine;
    use proptest::prelude::*;

    /// Decodes `input` fed in chunks of the given sizes (cycled; 0 feeds an empty chunk).
    fn streamed(enc: &TransferEncoding, input: &[u8], sizes: &[usize]) -> (Vec<u8>, u64) {
        let mut d = BodyDecoder::for_encoding(enc);
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        let mut rest = input;
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = size.min(rest.len());
            out.extend_from_slice(d.feed(&rest[..n], &mut scratch));
            rest = &rest[n..];
        }
        out.extend_from_slice(d.finish(&mut scratch));
        (out, d.invalid())
    }

    fn whole(enc: &TransferEncoding, input: &[u8]) -> (Vec<u8>, u64) {
        let d = transfer::decode(input, enc);
        (d.bytes.into_owned(), d.invalid as u64)
    }

    fn assert_same(enc: &TransferEncoding, input: &[u8], sizes: &[usize]) {
        let got = streamed(enc, input, sizes);
        let want = whole(enc, input);
        assert_eq!(
            got,
            want,
            "input {:?} in chunks {sizes:?}",
            String::from_utf8_lossy(input)
        );
    }

    /// Every split of `input` into three chunks (empty ones included), and single bytes.
    fn every_split(enc: &TransferEncoding, input: &[u8]) {
        let want = whole(enc, input);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let mut d = BodyDecoder::for_encoding(enc);
                let mut scratch = Vec::new();
                let mut out = Vec::new();
                for part in [&input[..i], &input[i..j], &input[j..]] {
                    out.extend_from_slice(d.feed(part, &mut scratch));
                }
                out.extend_from_slice(d.finish(&mut scratch));
                assert_eq!(
                    (out, d.invalid()),
                    want,
                    "input {:?} split at {i} and {j}",
                    String::from_utf8_lossy(input)
                );
            }
        }
        assert_same(enc, input, &[1]);
    }

    const B64: &TransferEncoding = &TransferEncoding::Base64;
    const QP: &TransferEncoding = &TransferEncoding::QuotedPrintable;

    /// `bytes` base64-encoded and wrapped at 76 columns with `eol`, as mail agents send it.
    fn wrapped_base64(bytes: &[u8], eol: &[u8]) -> Vec<u8> {
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut out = Vec::new();
        for line in text.as_bytes().chunks(76) {
            out.extend_from_slice(line);
            out.extend_from_slice(eol);
        }
        out
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = crate::capture::synth::Rng::new(seed);
        (0..len).map(|_| rng.next_u64() as u8).collect()
    }

    #[test]
    fn base64_rfc4648_vectors() {
        for (enc, plain) in [
            (&b""[..], &b""[..]),
            (b"Zg==", b"f"),
            (b"Zm8=", b"fo"),
            (b"Zm9v", b"foo"),
            (b"Zm9vYg==", b"foob"),
            (b"Zm9vYmE=", b"fooba"),
            (b"Zm9vYmFy", b"foobar"),
        ] {
            assert_eq!(streamed(B64, enc, &[1]), (plain.to_vec(), 0));
            every_split(B64, enc);
        }
    }

    #[test]
    fn base64_padding_in_the_middle_ends_a_quantum() {
        assert_eq!(streamed(B64, b"QQ==QUI=", &[1]), (b"AAB".to_vec(), 0));
        assert_eq!(streamed(B64, b"Zm8=Zm9v", &[3]), (b"fofoo".to_vec(), 0));
        // A lone sextet before `=` (or at the end) holds no octet and is counted.
        assert_eq!(streamed(B64, b"QUJDR=QQ", &[2]), (b"ABCA".to_vec(), 1));
        assert_eq!(streamed(B64, b"QUJDR", &[4]), (b"ABC".to_vec(), 1));
        for s in [
            &b"QQ==QUI="[..],
            b"Zm8=Zm9v",
            b"QUJDR=QQ",
            b"=====",
            b"Q=Q=Q",
            b"QUJD===Q",
        ] {
            every_split(B64, s);
        }
    }

    #[test]
    fn base64_bad_characters_are_skipped_and_counted() {
        let (out, invalid) = streamed(B64, b"SGVs\r\nbG8s!IHdv\r\ncmxk", &[5]);
        assert_eq!((out.as_slice(), invalid), (&b"Hello, world"[..], 1));
        // Form feed is whitespace to transfer.rs, vertical tab is not.
        assert_eq!(streamed(B64, b"Zm\x0c9v", &[1]), (b"foo".to_vec(), 0));
        assert_eq!(streamed(B64, b"Zm\x0b9v", &[1]), (b"foo".to_vec(), 1));
        for s in [
            &b"SGVs\r\nbG8s!IHdv\r\ncmxk"[..],
            b"Zm\xff9v-_",
            b" Z m 9 v \t",
            b"\x0bZm9v\x00",
        ] {
            every_split(B64, s);
        }
    }

    #[test]
    fn base64_line_ends_of_every_kind() {
        let plain = pseudo_random(2000, 1);
        for eol in [&b"\r\n"[..], b"\n", b"\r", b"", b"\r\n\r\n", b" \r\n"] {
            let enc = wrapped_base64(&plain, eol);
            for sizes in [&[enc.len()][..], &[1], &[77], &[1460], &[4095, 1, 4097]] {
                assert_eq!(
                    streamed(B64, &enc, sizes),
                    (plain.clone(), 0),
                    "eol {eol:?}"
                );
            }
        }
    }

    #[test]
    fn base64_junk_anywhere_in_a_large_body() {
        let clean = wrapped_base64(&pseudo_random(12_000, 2), b"\r\n");
        // Around the first block edges and elsewhere; each damage on its own.
        let spots = [
            0, 1, 3, 75, 76, 77, 78, 4095, 4096, 4097, 4160, 4161, 8300, 16_000,
        ];
        for &at in &spots {
            for junk in [
                &b"!"[..],
                b"=",
                b"==",
                b"\x00",
                b" ",
                b"\xe9\xe9",
                b"A",
                b"\t=",
            ] {
                let mut input = clean.clone();
                let at = at.min(input.len());
                input.splice(at..at, junk.iter().copied());
                for sizes in [
                    &[input.len()][..],
                    &[1460],
                    &[1537, 1536],
                    &[4096],
                    &[3, 5000],
                ] {
                    assert_same(B64, &input, sizes);
                }
            }
        }
    }

    #[test]
    fn base64_unwrapped_body_longer_than_a_block() {
        let plain = pseudo_random(20_000, 3);
        let enc = base64::engine::general_purpose::STANDARD.encode(&plain);
        assert_eq!(streamed(B64, enc.as_bytes(), &[9999]), (plain, 0));
    }

    #[test]
    fn quoted_printable_blank_runs_stay_bounded() {
        let mut d = QuotedPrintableDecoder::new();
        let mut out = Vec::new();
        let run: Vec<u8> = (0..1 << 20)
            .map(|i| if i % 3 == 0 { b'\t' } else { b' ' })
            .collect();
        for piece in run.chunks(1460) {
            d.feed(piece, &mut out);
            assert!(d.pending.len <= MAX_OPEN_BLANKS, "open blanks unbounded");
        }
        d.feed(b"x\r\n", &mut out);
        d.finish(&mut out);
        assert_eq!(
            out.len(),
            run.len() + 3,
            "a huge blank run is kept as content"
        );
    }

    #[test]
    fn quoted_printable_rfc2045_examples() {
        // RFC 2045 6.7 rule 5: soft line breaks join the lines.
        let s = b"Now's the time =\r\nfor all folk to come=\r\n to the aid of their country.";
        assert_eq!(
            streamed(QP, s, &[1]).0,
            b"Now's the time for all folk to come to the aid of their country."
        );
        every_split(QP, s);
        // Blanks before a soft break are content even when the next line is empty.
        assert_eq!(
            streamed(QP, b"end. =\r\n\r\nnext", &[1]).0,
            b"end. \r\nnext"
        );
        every_split(QP, b"end. =\r\n\r\nnext");
        // Rule 3: trailing literal blanks are padding; rule 1: escapes in either case.
        let s = b"caf=E9 =\r\nau lait  \r\n=ZZ=3d";
        assert_eq!(
            streamed(QP, s, &[2]),
            (b"caf\xe9 au lait\r\n=ZZ=".to_vec(), 1)
        );
        every_split(QP, s);
        let s = b"options:=20\r\nb =20 \r\nc=09\r\n";
        assert_eq!(
            streamed(QP, s, &[1]),
            (b"options: \r\nb  \r\nc\t\r\n".to_vec(), 0)
        );
        every_split(QP, s);
    }

    #[test]
    fn quoted_printable_equals_at_chunk_edges() {
        for s in [
            &b"=41=42=43"[..],
            b"a=4",
            b"a=",
            b"a=\t \t",
            b"a=4g",
            b"=4=41",
            b"==41",
            b"=\r=\r\n",
            b"x =\rz",
            b"x = \t\r",
            b"x = y",
            b"x  =  =41 \r\n",
            b"x\t =\t\r\n\r\n",
            b"end=",
            b"end=e",
            b"=E9=e9=Ef",
        ] {
            every_split(QP, s);
        }
    }

    #[test]
    fn quoted_printable_soft_breaks_split_at_every_position() {
        for s in [
            &b"long line=\r\ncontinued"[..],
            b"blanks before =  \t\r\nthe break",
            b"lf only=\nnext",
            b"=\r\n=\r\n=\n",
            b"pad  =\r\n  \r\nkept?",
        ] {
            every_split(QP, s);
        }
    }

    #[test]
    fn quoted_printable_cr_only_and_lf_only_line_ends() {
        assert_eq!(streamed(QP, b"a  \rb\t\nc", &[1]), (b"a\rb\nc".to_vec(), 0));
        // A bare CR after `=` is no soft break: the `=` is kept and counted.
        assert_eq!(streamed(QP, b"a= \rb", &[1]), (b"a=\rb".to_vec(), 1));
        for s in [
            &b"a  \rb\t\nc"[..],
            b"a= \rb",
            b"a=\nb",
            b"\r\r\n\n",
            b" \r \n \r\n ",
        ] {
            every_split(QP, s);
        }
    }

    #[test]
    fn quoted_printable_mixed_blank_runs() {
        let mut s = b"x".to_vec();
        s.extend((0..300).map(|i| if i % 3 == 0 { b'\t' } else { b' ' }));
        for tail in [&b"y"[..], b"\r\n", b"", b"=\r\nz", b"=41"] {
            let mut input = s.clone();
            input.extend_from_slice(tail);
            for sizes in [&[1][..], &[7], &[64], &[1000]] {
                assert_same(QP, &input, sizes);
            }
        }
        every_split(QP, b"a \t \t=\r\n\t \r\nb \t= \t x");
    }

    #[test]
    fn byte_tables_agree_with_transfer_rs_for_every_byte() {
        for c in 0..=255u8 {
            assert_eq!(hex_value(c), (c as char).to_digit(16).map(|d| d as u8));
            for input in [
                vec![c],
                vec![b'Q', b'U', c, b'J', b'D'],
                vec![b'=', c, b'A', c],
            ] {
                assert_same(B64, &input, &[1]);
                assert_same(QP, &input, &[1]);
            }
        }
    }

    #[test]
    fn identity_is_passed_through_borrowed() {
        let mut d = BodyDecoder::for_encoding(&TransferEncoding::Unknown);
        let mut scratch = b"old".to_vec();
        let input = b"=41 SGVs\r\n";
        assert!(std::ptr::eq(d.feed(input, &mut scratch), &input[..]));
        assert!(d.finish(&mut scratch).is_empty());
        assert_eq!(d.invalid(), 0);
        for enc in [TransferEncoding::Absent, TransferEncoding::Identity] {
            assert!(matches!(
                BodyDecoder::for_encoding(&enc),
                BodyDecoder::Identity
            ));
        }
    }

    #[test]
    fn scratch_holds_only_the_latest_call() {
        let mut d = BodyDecoder::for_encoding(B64);
        let mut scratch = Vec::new();
        assert_eq!(d.feed(b"Zm9vY", &mut scratch), b"foo");
        assert_eq!(d.feed(b"mFy", &mut scratch), b"bar");
        assert_eq!(d.feed(b"Zm", &mut scratch), b"");
        assert_eq!(d.finish(&mut scratch), b"f");
    }

    /// Chunk sizes from single bytes to more than a block.
    fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
        prop_oneof![
            prop::collection::vec(1usize..8, 1..12),
            prop::collection::vec(1usize..300, 1..12),
            prop::collection::vec(1usize..9000, 1..6),
        ]
    }

    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// Mostly base64 text with line ends and now and then padding, blanks or junk.
    fn base64ish() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            300 => prop::sample::select(ALPHABET),
            6 => Just(b'\n'),
            6 => Just(b'\r'),
            2 => Just(b'='),
            1 => Just(b' '),
            1 => any::<u8>(),
        ];
        prop::collection::vec(byte, 0..12_000)
    }

    /// A clean wrapped body with a few edits (junk, padding or blanks put in, bytes dropped).
    fn damaged_base64() -> impl Strategy<Value = Vec<u8>> {
        let edit = (
            any::<prop::sample::Index>(),
            prop_oneof![
                Just(&b"="[..]),
                Just(&b"=="[..]),
                Just(&b"!"[..]),
                Just(&b" "[..]),
                Just(&b"\r\n"[..]),
                Just(&b"\xff"[..]),
                Just(&b""[..]),
            ],
        );
        (
            prop::collection::vec(any::<u8>(), 0..9000),
            prop::collection::vec(edit, 0..6),
        )
            .prop_map(|(plain, edits)| {
                let mut enc = wrapped_base64(&plain, b"\r\n");
                for (at, with) in edits {
                    if enc.is_empty() {
                        break;
                    }
                    let at = at.index(enc.len());
                    enc.splice(at..at + 1, with.iter().copied());
                }
                enc
            })
    }

    /// Text heavy with `=` sequences, blanks and line ends of every kind.
    fn qpish() -> impl Strategy<Value = Vec<u8>> {
        const PIECES: &[&[u8]] = &[
            b"=", b"=3D", b"=3d", b"=4", b"=G", b"=e9", b"=E9", b"=20", b"=09", b"=\r\n", b"=\n",
            b"= \r\n", b"=\t\r\n", b"= ", b"=\r", b"\r\n", b"\r", b"\n", b" ", b"\t", b"   ", b"a",
            b"word", b"F", b"0", b"\xe9", b"\x00",
        ];
        let piece = prop_oneof![
            10 => prop::sample::select(PIECES).prop_map(<[u8]>::to_vec),
            1 => any::<u8>().prop_map(|b| vec![b]),
        ];
        prop::collection::vec(piece, 0..400).prop_map(|p| p.concat())
    }

    proptest! {
        /// Streaming base64 matches the one-shot decoder for any split, junk and all.
        #[test]
        fn base64_split_anywhere_matches_oneshot(input in base64ish(), sizes in chunk_sizes()) {
            prop_assert_eq!(streamed(B64, &input, &sizes), whole(B64, &input));
        }

        /// Same on realistic bodies with a few flaws.
        #[test]
        fn damaged_base64_matches_oneshot(input in damaged_base64(), sizes in chunk_sizes()) {
            prop_assert_eq!(streamed(B64, &input, &sizes), whole(B64, &input));
        }

        /// Any bytes at all decode the same streamed as whole.
        #[test]
        fn arbitrary_bytes_match_oneshot(
            input in prop::collection::vec(any::<u8>(), 0..3000),
            sizes in chunk_sizes(),
        ) {
            prop_assert_eq!(streamed(B64, &input, &sizes), whole(B64, &input));
            prop_assert_eq!(streamed(QP, &input, &sizes), whole(QP, &input));
        }

        /// Streaming quoted-printable matches the one-shot decoder for any split.
        #[test]
        fn quoted_printable_split_anywhere_matches_oneshot(input in qpish(), sizes in chunk_sizes()) {
            prop_assert_eq!(streamed(QP, &input, &sizes), whole(QP, &input));
        }

        /// Wrapped base64 of random bytes decodes back to them, in any chunks.
        #[test]
        fn base64_round_trip(plain in prop::collection::vec(any::<u8>(), 0..20_000), sizes in chunk_sizes()) {
            let enc = wrapped_base64(&plain, b"\r\n");
            prop_assert_eq!(streamed(B64, &enc, &sizes), (plain, 0));
        }
    }
}
