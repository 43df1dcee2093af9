//! One MIME entity's header block, parsed once it is complete: what its body is and how to read it.
//!
//! Header blocks are small and bounded, so they are parsed whole with `mail-parser`'s header
//! parser: RFC 2047 words, RFC 2231 parameters and charsets are read as it reads them.

use super::super::headers::{self, HeaderSummary};
use super::super::record::PartRecord;
use super::super::transfer::TransferEncoding;
use super::super::{MimeLimits, MimeProblem};
use mail_parser::{ContentType, GetHeader, HeaderName, MessageParser, MessagePart, MimeHeaders};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Where an entity sits in the tree, known before its headers are read.
#[derive(Debug, Clone)]
pub(super) struct Placement {
    /// Its section number; for a message root, the message's own path (`""` at the top), its
    /// root's number (`0` for a multipart, `1` otherwise) being added once its type is known.
    pub path: String,
    /// Nesting level.
    pub depth: usize,
    /// A child of a multipart/digest: its default type is message/rfc822.
    pub digest_child: bool,
    /// The root entity of a message (its headers are the message's headers).
    pub message_root: bool,
}

/// What an entity's headers say.
#[derive(Debug)]
pub(super) struct EntityHeaders {
    /// The part's record, sizes and hashes still to be filled in.
    pub record: PartRecord,
    /// The multipart boundary, when the entity is a multipart that declares one.
    pub boundary: Option<Vec<u8>>,
    /// The declared transfer encoding.
    pub encoding: TransferEncoding,
    /// The declared encoding's text, for problem reports.
    pub encoding_text: Option<String>,
    /// The message's header summary, for a message root.
    pub summary: Option<HeaderSummary>,
}

impl EntityHeaders {
    /// Whether the entity is a multipart.
    pub fn is_multipart(&self) -> bool {
        self.record.content_type.starts_with("multipart/")
    }

    /// Whether the entity is an encapsulated message to be parsed as one.
    pub fn is_message(&self) -> bool {
        matches!(
            self.record.content_type.as_str(),
            "message/rfc822" | "message/global"
        )
    }
}

/// Parses an entity's header block (`block` ends with its blank line, or is cut short).
pub(super) fn parse(
    block: &[u8],
    at: &Placement,
    limits: &MimeLimits,
    problems: &mut Vec<MimeProblem>,
) -> EntityHeaders {
    let parsed = if block.is_empty() {
        None
    } else {
        catch_unwind(AssertUnwindSafe(|| {
            MessageParser::default().parse_headers(block)
        }))
        .unwrap_or_else(|_| {
            problems.push(MimeProblem::new(
                "mime_decoder_panic",
                format!("the header parser failed on part {}", at.path),
            ));
            None
        })
    };
    let part = parsed.as_ref().and_then(|m| m.parts.first());
    let summary = at.message_root.then(|| match part {
        Some(p) => headers::summarize(&p.headers, block, limits, &at.path, problems),
        None => HeaderSummary::default(),
    });
    let mut entity = match part {
        Some(p) => from_part(p, block, at, summary, problems),
        None => EntityHeaders {
            record: bare_record(at),
            boundary: None,
            encoding: TransferEncoding::Absent,
            encoding_text: None,
            summary,
        },
    };
    if at.message_root {
        let n = if entity.is_multipart() { "0" } else { "1" };
        entity.record.path = join(&at.path, n);
    }
    entity
}

/// `base.n`, or `n` at the top.
pub(super) fn join(base: &str, n: &str) -> String {
    if base.is_empty() {
        n.to_string()
    } else {
        format!("{base}.{n}")
    }
}

/// A record for an entity without (readable) headers.
pub(super) fn bare_record(at: &Placement) -> PartRecord {
    PartRecord {
        path: at.path.clone(),
        depth: at.depth,
        content_type: default_type(at).to_string(),
        content_type_raw: None,
        params: BTreeMap::new(),
        charset: None,
        transfer_encoding: None,
        disposition: None,
        disposition_raw: None,
        filename: None,
        content_id: None,
        content_description: None,
        declared_size: None,
        encoded_size: 0,
        size: None,
        sha256: None,
        complete: true,
        content_kind: None,
        message: None,
    }
}

fn default_type(at: &Placement) -> &'static str {
    if at.digest_child {
        "message/rfc822"
    } else {
        "text/plain"
    }
}

fn from_part(
    part: &MessagePart<'_>,
    raw: &[u8],
    at: &Placement,
    summary: Option<HeaderSummary>,
    problems: &mut Vec<MimeProblem>,
) -> EntityHeaders {
    let ct = part.content_type();
    let content_type = match ct {
        Some(ct) => headers::type_name(ct.ctype(), ct.subtype()),
        None => default_type(at).to_string(),
    };
    let disposition = part.content_disposition();
    // Parameters whose bytes are not UTF-8 came out of the parser with U+FFFD; they are read
    // again as the header fields are (an 8-bit file name from an old client).
    let at_part = format!("part {}", at.path);
    // (For a message root this names the message's path; the 8-bit note is once per message.)
    let (mut ct_buffer, mut cd_buffer) = (Vec::new(), Vec::new());
    let ct_reread = part
        .headers
        .header(HeaderName::ContentType)
        .and_then(|h| headers::reparsed_content_type(h, raw, &mut ct_buffer));
    let cd_reread = part
        .headers
        .header(HeaderName::ContentDisposition)
        .and_then(|h| headers::reparsed_content_type(h, raw, &mut cd_buffer));
    let ct_params = ct_reread.as_ref().or(ct);
    let cd_params = cd_reread.as_ref().or(disposition);
    let filename = cd_params
        .and_then(|d| d.attribute("filename"))
        .or_else(|| ct_params.and_then(|c| c.attribute("name")))
        .map(str::to_string);
    let content_type_raw = raw_field(part, raw, HeaderName::ContentType, &at_part, problems);
    let disposition_raw = raw_field(
        part,
        raw,
        HeaderName::ContentDisposition,
        &at_part,
        problems,
    );
    let encoding_text = part.content_transfer_encoding().map(str::to_string);
    let encoding = TransferEncoding::parse(encoding_text.as_deref());
    let boundary = ct
        .and_then(|c| c.attribute("boundary"))
        .filter(|b| !b.is_empty())
        .map(|b| b.as_bytes().to_vec());
    let record = PartRecord {
        path: at.path.clone(),
        depth: at.depth,
        content_type,
        content_type_raw,
        params: params(ct_params),
        charset: ct.and_then(|c| c.attribute("charset")).map(str::to_string),
        transfer_encoding: encoding_text
            .as_deref()
            .map(|t| t.trim().to_ascii_lowercase()),
        disposition: disposition.map(|d| d.ctype().to_ascii_lowercase()),
        disposition_raw,
        filename,
        content_id: part.content_id().map(str::to_string),
        content_description: part
            .headers
            .header(HeaderName::ContentDescription)
            .map(|h| headers::unstructured(h, raw)),
        declared_size: disposition
            .and_then(|d| d.attribute("size"))
            .and_then(|s| s.trim().parse().ok()),
        encoded_size: 0,
        size: None,
        sha256: None,
        complete: true,
        content_kind: None,
        message: None,
    };
    EntityHeaders {
        record,
        boundary,
        encoding,
        encoding_text,
        summary,
    }
}

/// The last field `name` of a part (the one the parser uses), as written and unfolded.
fn raw_field(
    part: &MessagePart<'_>,
    raw: &[u8],
    name: HeaderName<'static>,
    at: &str,
    problems: &mut Vec<MimeProblem>,
) -> Option<String> {
    let h = part.headers.header(name)?;
    let bytes = raw.get(h.offset_start as usize..h.offset_end as usize)?;
    let text = headers::HeaderText::decode(bytes);
    if text.is_windows_1252() {
        headers::note_8bit(problems, at, h.name.as_str());
    }
    Some(headers::unfold(text.as_str()))
}

fn params(ct: Option<&ContentType<'_>>) -> BTreeMap<String, String> {
    ct.and_then(|c| c.attributes())
        .map(|attrs| {
            attrs
                .iter()
                .map(|a| (a.name.to_string(), a.value.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a header block's first line can start a header field (`Name:` or `From `), so a
/// message that starts with text is read as a body without headers.
pub(super) fn starts_like_a_field(line: &[u8]) -> bool {
    let name_end = line
        .iter()
        .position(|&b| b == b':' || b <= b' ' || b >= 0x7f);
    matches!(name_end, Some(n) if n > 0 && line[n] == b':')
}

/// Whether a header line starts a field that decides how a message is read or who it is
/// from (kept even past the header block bound).
pub(super) fn shapes_the_message(line: &[u8]) -> bool {
    const FIELDS: [&[u8]; 12] = [
        b"content-type",
        b"content-transfer-encoding",
        b"content-disposition",
        b"content-id",
        b"mime-version",
        b"from",
        b"to",
        b"cc",
        b"subject",
        b"date",
        b"message-id",
        b"reply-to",
    ];
    let Some(colon) = memchr::memchr(b':', line) else {
        return false;
    };
    let name = line[..colon].trim_ascii_end();
    FIELDS.iter().any(|f| name.eq_ignore_ascii_case(f))
}
