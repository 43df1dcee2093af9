//! Content-Transfer-Encoding (RFC 2045) decoding of raw part bodies, lenient as mail readers are.
//!
//! `mail-parser` converts text parts to UTF-8 and gives up on a part whose encoding is damaged
//! (or cut short), handing back the raw text. Attachments need their exact octets and damaged
//! ones still need decoding, so part bodies are decoded here from the raw bytes.

use std::borrow::Cow;

/// A part's declared transfer encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEncoding {
    /// No header: 7bit by default.
    Absent,
    /// `7bit`, `8bit` or `binary`: the body is the content.
    Identity,
    /// `base64`.
    Base64,
    /// `quoted-printable`.
    QuotedPrintable,
    /// Anything else (e.g. `x-uuencode`): kept as is.
    Unknown,
}

impl TransferEncoding {
    /// Classifies a header value (case-insensitive, surrounding blanks ignored).
    pub(crate) fn parse(value: Option<&str>) -> TransferEncoding {
        let Some(v) = value else {
            return TransferEncoding::Absent;
        };
        let v = v.trim();
        if v.eq_ignore_ascii_case("base64") {
            TransferEncoding::Base64
        } else if v.eq_ignore_ascii_case("quoted-printable") {
            TransferEncoding::QuotedPrintable
        } else if ["7bit", "8bit", "binary"]
            .iter()
            .any(|k| v.eq_ignore_ascii_case(k))
        {
            TransferEncoding::Identity
        } else {
            TransferEncoding::Unknown
        }
    }
}

/// Decoded content and whether the encoding was damaged.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    /// The content octets.
    pub bytes: Cow<'a, [u8]>,
    /// Bytes that were not valid for the encoding (skipped or kept literally).
    pub invalid: usize,
}

/// Decodes a raw body by its transfer encoding.
pub(crate) fn decode<'a>(raw: &'a [u8], encoding: &TransferEncoding) -> Decoded<'a> {
    match encoding {
        TransferEncoding::Base64 => base64_lenient(raw),
        TransferEncoding::QuotedPrintable => quoted_printable_lenient(raw),
        _ => Decoded {
            bytes: Cow::Borrowed(raw),
            invalid: 0,
        },
    }
}

fn base64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Base64 that skips what is not in the alphabet, counting it, and treats `=` as the end of a
/// quantum so text after padding is still decoded.
fn base64_lenient(raw: &[u8]) -> Decoded<'static> {
    let mut out = Vec::with_capacity(raw.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut n = 0u8;
    let mut invalid = 0usize;
    let flush = |acc: u32, n: u8, out: &mut Vec<u8>| match n {
        2 => out.push((acc >> 4) as u8),
        3 => {
            out.push((acc >> 10) as u8);
            out.push((acc >> 2) as u8);
        }
        _ => {}
    };
    for &c in raw {
        if let Some(v) = base64_value(c) {
            acc = (acc << 6) | v;
            n += 1;
            if n == 4 {
                out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
                acc = 0;
                n = 0;
            }
        } else if c == b'=' {
            flush(acc, n, &mut out);
            if n == 1 {
                invalid += 1;
            }
            acc = 0;
            n = 0;
        } else if !c.is_ascii_whitespace() {
            invalid += 1;
        }
    }
    // A body cut short: keep the whole bytes the last partial quantum holds.
    flush(acc, n, &mut out);
    if n == 1 {
        invalid += 1;
    }
    Decoded {
        bytes: Cow::Owned(out),
        invalid,
    }
}

/// Quoted-printable per RFC 2045 6.7: `=XX` (either case), soft line breaks, literal trailing
/// blanks of a line dropped (encoded ones, `=20`, kept); a bad escape is kept literally and
/// counted.
fn quoted_printable_lenient(raw: &[u8]) -> Decoded<'static> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut invalid = 0usize;
    // Output before this length came from escapes or line breaks: blanks there are content.
    let mut encoded_end = 0usize;
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        match c {
            b'=' => {
                let h = raw.get(i + 1).copied();
                let l = raw.get(i + 2).copied();
                if let (Some(hv), Some(lv)) = (h.and_then(hex), l.and_then(hex)) {
                    out.push(hv << 4 | lv);
                    encoded_end = out.len();
                    i += 3;
                    continue;
                }
                // Soft line break: `=`, optional blanks, then CRLF or LF (or the end).
                let mut j = i + 1;
                while matches!(raw.get(j), Some(b' ' | b'\t')) {
                    j += 1;
                }
                // Blanks before the `=` of a soft break were not at a line's end: content.
                match raw.get(j) {
                    Some(b'\n') => {
                        encoded_end = out.len();
                        i = j + 1;
                        continue;
                    }
                    Some(b'\r') if raw.get(j + 1) == Some(&b'\n') => {
                        encoded_end = out.len();
                        i = j + 2;
                        continue;
                    }
                    None => break,
                    _ => {
                        invalid += 1;
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b'\r' | b'\n' => {
                // Literal blanks before a hard line break are transport padding; blanks the
                // sender encoded (`=20` at the end of a line) are what RFC 2045 protects.
                while out.len() > encoded_end && matches!(out.last(), Some(b' ' | b'\t')) {
                    out.pop();
                }
                out.push(c);
                encoded_end = out.len();
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Decoded {
        bytes: Cow::Owned(out),
        invalid,
    }
}

/// Whether a charset name is one the text conversion knows (UTF-8 needs no conversion).
pub(crate) fn charset_known(name: &str) -> bool {
    if mail_parser::decoders::charsets::map::charset_decoder(name.as_bytes()).is_some() {
        return true;
    }
    let folded: String = name
        .trim()
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(
        folded.as_str(),
        "utf8" | "unicode11utf8" | "unicode20utf8" | "xunicode20utf8"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_parse_case_insensitively() {
        assert_eq!(
            TransferEncoding::parse(Some(" BASE64 ")),
            TransferEncoding::Base64
        );
        assert_eq!(
            TransferEncoding::parse(Some("Quoted-Printable")),
            TransferEncoding::QuotedPrintable
        );
        for id in ["7BIT", "8bit", "Binary"] {
            assert_eq!(
                TransferEncoding::parse(Some(id)),
                TransferEncoding::Identity
            );
        }
        assert_eq!(
            TransferEncoding::parse(Some("x-uuencode")),
            TransferEncoding::Unknown
        );
        assert_eq!(TransferEncoding::parse(None), TransferEncoding::Absent);
    }

    #[test]
    fn base64_skips_junk_and_keeps_partial_tail() {
        let d = base64_lenient(b"SGVs\r\nbG8s!IHdv\r\ncmxk");
        assert_eq!(&*d.bytes, b"Hello, world");
        assert_eq!(d.invalid, 1);
        // Cut in the middle of a quantum: the complete bytes are kept.
        let d = base64_lenient(b"SGVsbG8");
        assert_eq!(&*d.bytes, b"Hello");
        let d = base64_lenient(b"QQ==QUI=");
        assert_eq!(&*d.bytes, b"AAB");
    }

    #[test]
    fn quoted_printable_soft_breaks_and_bad_escapes() {
        let d = quoted_printable_lenient(b"caf=E9 =\r\nau lait  \r\n=ZZ=3d");
        assert_eq!(&*d.bytes, b"caf\xe9 au lait\r\n=ZZ=");
        assert_eq!(d.invalid, 1);
    }

    #[test]
    fn quoted_printable_keeps_encoded_trailing_blanks() {
        // `=20` before a line break is content; the literal blank after it is padding.
        let d = quoted_printable_lenient(b"options:=20\r\nb =20 \r\nc=09\r\n");
        assert_eq!(&*d.bytes, b"options: \r\nb  \r\nc\t\r\n");
        assert_eq!(d.invalid, 0);
    }

    #[test]
    fn charset_names() {
        assert!(charset_known("ISO-8859-1"));
        assert!(charset_known("utf-8"));
        assert!(charset_known("UTF8"));
        assert!(charset_known("windows-1252"));
        assert!(!charset_known("x-klingon-42"));
    }
}
