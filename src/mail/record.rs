//! The record of a message's MIME structure: parts, attachments, bodies and URLs.

use super::MimeProblem;
use super::headers::HeaderSummary;
use super::magic::ContentKind;
use serde::Serialize;
use std::collections::BTreeMap;

/// One entity of the MIME tree, in document order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartRecord {
    /// IMAP-style section number (`1`, `2.1`, ...). A message's top-level multipart, which
    /// IMAP leaves unnumbered, is `0` (or `<part>.0` inside an encapsulated message).
    pub path: String,
    /// Nesting level: 0 for the message's own entity.
    pub depth: usize,
    /// `type/subtype`, lower case; `text/plain` (or `message/rfc822` in a digest) when absent.
    pub content_type: String,
    /// The `Content-Type` field as written, unfolded.
    pub content_type_raw: Option<String>,
    /// Content-Type parameters, decoded (RFC 2231 continuations joined, RFC 2047 words decoded).
    pub params: BTreeMap<String, String>,
    /// The `charset` parameter.
    pub charset: Option<String>,
    /// Declared Content-Transfer-Encoding, lower case.
    pub transfer_encoding: Option<String>,
    /// Content-Disposition type (`attachment`, `inline`), lower case.
    pub disposition: Option<String>,
    /// The `Content-Disposition` field as written, unfolded.
    pub disposition_raw: Option<String>,
    /// File name from `Content-Disposition` `filename` or `Content-Type` `name`, decoded.
    pub filename: Option<String>,
    /// `Content-ID` without angle brackets.
    pub content_id: Option<String>,
    /// `Content-Description`, decoded.
    pub content_description: Option<String>,
    /// `size` parameter of `Content-Disposition` (RFC 2183), as the sender claims.
    pub declared_size: Option<u64>,
    /// Bytes of the body as transferred (still encoded).
    pub encoded_size: u64,
    /// Bytes of the body after transfer decoding (leaves and encapsulated messages).
    pub size: Option<u64>,
    /// SHA-256 of the decoded body, hex (leaves and encapsulated messages).
    pub sha256: Option<String>,
    /// False when the captured data ended inside this part.
    pub complete: bool,
    /// What the decoded content is, told from its first bytes (executable, script, OLE2,
    /// archive; see [`ContentKind`]); left out when nothing is recognised, and for containers
    /// and encapsulated messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_kind: Option<ContentKind>,
    /// Headers of an encapsulated message (`message/rfc822` parts); never merged into the outer ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Box<HeaderSummary>>,
}

/// An attached or inline file (or encapsulated message) with hashes of its decoded content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttachmentRecord {
    /// Section number of its part (see [`PartRecord::path`]).
    pub path: String,
    /// File name, decoded; null when the sender gave none.
    pub filename: Option<String>,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// Content-Disposition type, lower case.
    pub disposition: Option<String>,
    /// Bytes after transfer decoding.
    pub size: u64,
    /// `size` parameter of `Content-Disposition`, as the sender claims.
    pub declared_size: Option<u64>,
    /// Bytes as transferred.
    pub encoded_size: u64,
    /// MD5 of the decoded content, hex.
    pub md5: String,
    /// SHA-1 of the decoded content, hex.
    pub sha1: String,
    /// SHA-256 of the decoded content, hex.
    pub sha256: String,
    /// `Content-ID` without angle brackets.
    pub content_id: Option<String>,
    /// False when the captured data ended inside it: the hashes cover a prefix only.
    pub complete: bool,
}

/// Decoded headers and MIME structure of a message; flattened into its JSON record.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MimeSummary {
    /// Header fields of the message.
    #[serde(flatten)]
    pub header: HeaderSummary,
    /// The part tree, flattened in document order.
    pub parts: Vec<PartRecord>,
    /// Attached and inline files, and encapsulated messages.
    pub attachments: Vec<AttachmentRecord>,
    /// The first text/plain body, up to the configured size.
    pub body_text: Option<String>,
    /// `body_text` was cut at the configured size.
    pub body_text_truncated: bool,
    /// The first text/html body, up to the configured size.
    pub body_html: Option<String>,
    /// `body_html` was cut at the configured size.
    pub body_html_truncated: bool,
    /// URLs in text and HTML parts, deduplicated, in order of appearance.
    pub urls: Vec<String>,
    /// More URLs were found than are kept.
    pub urls_truncated: bool,
    /// Leading message bytes that went through MIME decoding.
    pub decoded_bytes: u64,
    /// What went wrong while decoding (also reported as session anomalies).
    pub decode_problems: Vec<MimeProblem>,
}
