//! Streaming Content-Transfer-Encoding decoders (placeholder, replaced by the fast ones).

use super::transfer::{self, TransferEncoding};

/// Streaming base64 decoder (RFC 2045 §6.8), lenient as transfer::decode is.
#[derive(Debug, Default)]
pub struct Base64Decoder {
    acc: u32,
    n: u8,
    invalid: u64,
}

fn value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

impl Base64Decoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    fn flush(&mut self, out: &mut Vec<u8>) {
        match self.n {
            1 => self.invalid += 1,
            2 => out.push((self.acc >> 4) as u8),
            3 => out.extend_from_slice(&[(self.acc >> 10) as u8, (self.acc >> 2) as u8]),
            _ => {}
        }
        self.acc = 0;
        self.n = 0;
    }

    /// Decodes `input`, appending octets to `out` (a partial quantum is carried to the next call).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() / 4 * 3 + 3);
        for &c in input {
            if let Some(v) = value(c) {
                self.acc = (self.acc << 6) | v;
                self.n += 1;
                if self.n == 4 {
                    let a = self.acc;
                    out.extend_from_slice(&[(a >> 16) as u8, (a >> 8) as u8, a as u8]);
                    self.acc = 0;
                    self.n = 0;
                }
            } else if c == b'=' {
                self.flush(out);
            } else if !c.is_ascii_whitespace() {
                self.invalid += 1;
            }
        }
    }

    /// Flushes what a final partial quantum holds; call once at the end of the part.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.flush(out);
    }

    /// Bytes so far that were not valid for the encoding.
    pub fn invalid(&self) -> u64 {
        self.invalid
    }
}

/// Streaming quoted-printable decoder (RFC 2045 §6.7).
#[derive(Debug, Default)]
pub struct QuotedPrintableDecoder {
    line: Vec<u8>,
    invalid: u64,
}

impl QuotedPrintableDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `input`, appending octets to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            self.line.extend_from_slice(&rest[..=i]);
            let d = transfer::decode(&self.line, &TransferEncoding::QuotedPrintable);
            out.extend_from_slice(&d.bytes);
            self.invalid += d.invalid as u64;
            self.line.clear();
            rest = &rest[i + 1..];
        }
        self.line.extend_from_slice(rest);
    }

    /// Flushes the last line; call once at the end of the part.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let d = transfer::decode(&self.line, &TransferEncoding::QuotedPrintable);
        out.extend_from_slice(&d.bytes);
        self.invalid += d.invalid as u64;
        self.line.clear();
    }

    /// Bytes so far that were not valid for the encoding.
    pub fn invalid(&self) -> u64 {
        self.invalid
    }
}

/// A part body decoder chosen by transfer encoding: base64, quoted-printable or identity.
#[derive(Debug)]
pub enum BodyDecoder {
    /// The body is the content.
    Identity,
    /// Base64.
    Base64(Base64Decoder),
    /// Quoted-printable.
    QuotedPrintable(QuotedPrintableDecoder),
}

impl BodyDecoder {
    /// The decoder for a declared encoding (anything but base64 and QP is identity).
    pub fn for_encoding(enc: &TransferEncoding) -> Self {
        match enc {
            TransferEncoding::Base64 => BodyDecoder::Base64(Base64Decoder::new()),
            TransferEncoding::QuotedPrintable => {
                BodyDecoder::QuotedPrintable(QuotedPrintableDecoder::new())
            }
            _ => BodyDecoder::Identity,
        }
    }

    /// Decodes `input`; identity returns it borrowed, others append to `scratch` and return that.
    pub fn feed<'a>(&mut self, input: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
        scratch.clear();
        match self {
            BodyDecoder::Identity => return input,
            BodyDecoder::Base64(d) => d.feed(input, scratch),
            BodyDecoder::QuotedPrintable(d) => d.feed(input, scratch),
        }
        scratch
    }

    /// Flushes the decoder at the end of the part.
    pub fn finish<'a>(&mut self, scratch: &'a mut Vec<u8>) -> &'a [u8] {
        scratch.clear();
        match self {
            BodyDecoder::Identity => {}
            BodyDecoder::Base64(d) => d.finish(scratch),
            BodyDecoder::QuotedPrintable(d) => d.finish(scratch),
        }
        scratch
    }

    /// Bytes so far that were not valid for the encoding.
    pub fn invalid(&self) -> u64 {
        match self {
            BodyDecoder::Identity => 0,
            BodyDecoder::Base64(d) => d.invalid(),
            BodyDecoder::QuotedPrintable(d) => d.invalid(),
        }
    }
}
