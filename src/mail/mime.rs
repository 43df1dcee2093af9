//! MIME structure (RFC 2045-2049): the part tree of a parsed message mapped onto records.

use super::headers::{self, HeaderSummary};
use super::transfer::{self, TransferEncoding};
use super::urls::UrlCollector;
use super::{MimeLimits, guard};
use mail_parser::{
    ContentType, GetHeader, HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use md5::Md5;
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Something wrong or cut short while decoding a message; becomes a session anomaly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MimeProblem {
    /// Stable snake_case kind, e.g. `mime_bad_base64`.
    pub kind: &'static str,
    /// Human-readable detail naming the part.
    pub detail: String,
}

impl MimeProblem {
    /// A problem of `kind`.
    pub fn new(kind: &'static str, detail: impl Into<String>) -> Self {
        MimeProblem {
            kind,
            detail: detail.into(),
        }
    }
}

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

/// Decoded content of one attachment, for extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentContent {
    /// Section number of its part.
    pub path: String,
    /// File name as decoded from the message, if any.
    pub filename: Option<String>,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// The decoded content.
    pub bytes: Vec<u8>,
}

/// Everything [`decode`] learns about a message.
#[derive(Debug, Clone, Default)]
pub struct DecodedMessage {
    /// The record part.
    pub summary: MimeSummary,
    /// Problems found (the same as `summary.decode_problems`).
    pub problems: Vec<MimeProblem>,
    /// Decoded attachment contents, when asked for.
    pub attachments: Vec<AttachmentContent>,
}

/// Decodes a message's headers and MIME structure, as far as its bytes go.
///
/// `complete` says whether `bytes` is the whole message (false after a gap, for POP3 TOP or at
/// the end of the capture); `want_attachments` asks for the decoded attachment contents.
pub fn decode(
    bytes: &[u8],
    complete: bool,
    limits: &MimeLimits,
    want_attachments: bool,
) -> DecodedMessage {
    let mut problems = Vec::new();
    let mut data = bytes;
    let mut complete = complete;
    if data.len() > limits.max_decode_bytes {
        problems.push(MimeProblem::new(
            "mime_decode_limit",
            format!(
                "message of {} bytes: only the first {} were MIME-decoded",
                bytes.len(),
                limits.max_decode_bytes
            ),
        ));
        data = &data[..limits.max_decode_bytes];
        complete = false;
    }
    match catch_unwind(AssertUnwindSafe(|| guard::check(data, limits))) {
        Ok(None) => {}
        Ok(Some(cut)) => {
            problems.push(MimeProblem::new(
                cut.kind,
                format!("{}; decoding stopped at byte {}", cut.detail, cut.at),
            ));
            data = data.get(..cut.at).unwrap_or(data);
            complete = false;
        }
        Err(_) => {
            problems.push(MimeProblem::new(
                "mime_decoder_panic",
                "the MIME pre-scan failed unexpectedly; the message was not decoded",
            ));
            return finish(MimeSummary::default(), problems, Vec::new());
        }
    }
    let parsed = catch_unwind(AssertUnwindSafe(|| MessageParser::default().parse(data)));
    let mut walk = Walk::new(limits, want_attachments);
    walk.problems = problems;
    let mut summary = match parsed {
        Ok(Some(message)) => walk.message_tree(&message, complete),
        Ok(None) => walk.headerless(data, complete),
        Err(_) => {
            walk.problems.push(MimeProblem::new(
                "mime_decoder_panic",
                "the MIME parser failed unexpectedly; the message was not decoded",
            ));
            MimeSummary::default()
        }
    };
    summary.decoded_bytes = data.len() as u64;
    let Walk {
        problems, contents, ..
    } = walk;
    finish(summary, problems, contents)
}

fn finish(
    mut summary: MimeSummary,
    problems: Vec<MimeProblem>,
    attachments: Vec<AttachmentContent>,
) -> DecodedMessage {
    summary.decode_problems = problems.clone();
    DecodedMessage {
        summary,
        problems,
        attachments,
    }
}

/// A unit of the walk over the part tree.
enum Item<'m, 'x> {
    /// A message (the top one or an encapsulated one) whose entity is at `path` (`""` at the top).
    Message {
        message: &'m Message<'x>,
        path: String,
        depth: usize,
        complete: bool,
    },
    /// An entity of `message`.
    Entity {
        message: &'m Message<'x>,
        id: u32,
        path: String,
        depth: usize,
        complete: bool,
        /// A child of a multipart/digest (default type message/rfc822).
        digest_child: bool,
        /// Path its children are numbered under, when not its own (a message's top multipart).
        child_base: Option<String>,
    },
}

struct Walk<'l> {
    limits: &'l MimeLimits,
    want: bool,
    problems: Vec<MimeProblem>,
    parts: Vec<PartRecord>,
    attachments: Vec<AttachmentRecord>,
    contents: Vec<AttachmentContent>,
    urls: UrlCollector,
    body_text: Option<(String, bool)>,
    body_html: Option<(String, bool)>,
    stopped_parts: bool,
    stopped_depth: bool,
}

impl<'l> Walk<'l> {
    fn new(limits: &'l MimeLimits, want: bool) -> Self {
        Walk {
            limits,
            want,
            problems: Vec::new(),
            parts: Vec::new(),
            attachments: Vec::new(),
            contents: Vec::new(),
            urls: UrlCollector::new(limits.max_urls),
            body_text: None,
            body_html: None,
            stopped_parts: false,
            stopped_depth: false,
        }
    }

    fn problem(&mut self, kind: &'static str, detail: String) {
        self.problems.push(MimeProblem::new(kind, detail));
    }

    /// Walks a parsed message and builds its summary.
    fn message_tree(&mut self, root: &Message<'_>, complete: bool) -> MimeSummary {
        let header = match root.parts.first() {
            Some(p) => headers::summarize(
                &p.headers,
                &root.raw_message,
                self.limits,
                "",
                &mut self.problems,
            ),
            None => HeaderSummary::default(),
        };
        // The bodies a reader sees first: the top message's first text and HTML parts.
        let text_id = first_of(root, &root.text_body, false);
        let html_id = first_of(root, &root.html_body, true);
        let mut stack: Vec<Item<'_, '_>> = vec![Item::Message {
            message: root,
            path: String::new(),
            depth: 0,
            complete,
        }];
        let mut visited: HashSet<(usize, u32)> = HashSet::new();
        while let Some(item) = stack.pop() {
            match item {
                Item::Message {
                    message,
                    path,
                    depth,
                    complete,
                } => self.open_message(message, &path, depth, complete, &mut stack),
                Item::Entity {
                    message,
                    id,
                    path,
                    depth,
                    complete,
                    digest_child,
                    child_base,
                } => {
                    let key = (message as *const Message<'_> as usize, id);
                    if !visited.insert(key) {
                        continue;
                    }
                    if self.parts.len() >= self.limits.max_parts {
                        if !self.stopped_parts {
                            self.stopped_parts = true;
                            self.problem(
                                "mime_too_many_parts",
                                format!(
                                    "more than {} MIME parts; the rest were not walked",
                                    self.limits.max_parts
                                ),
                            );
                        }
                        break;
                    }
                    if depth > self.limits.max_depth {
                        if !self.stopped_depth {
                            self.stopped_depth = true;
                            self.problem(
                                "mime_too_deep",
                                format!(
                                    "parts nested deeper than {} levels (first at {path}) were not walked",
                                    self.limits.max_depth
                                ),
                            );
                        }
                        continue;
                    }
                    let body_role = if std::ptr::eq(message, root) {
                        if Some(id) == text_id {
                            BodyRole::Text
                        } else if Some(id) == html_id {
                            BodyRole::Html
                        } else {
                            BodyRole::None
                        }
                    } else {
                        BodyRole::None
                    };
                    let entity = EntityAt {
                        message,
                        id,
                        path,
                        depth,
                        complete,
                        digest_child,
                        child_base,
                        body_role,
                    };
                    self.entity(entity, &mut stack);
                }
            }
        }
        let (body_text, body_text_truncated) = split_body(self.body_text.take());
        let (body_html, body_html_truncated) = split_body(self.body_html.take());
        let urls_truncated = self.urls.truncated;
        let urls = std::mem::replace(&mut self.urls, UrlCollector::new(0)).into_urls();
        if urls_truncated {
            self.problem(
                "mime_too_many_urls",
                format!(
                    "more than {} distinct URLs; the first were kept",
                    self.limits.max_urls
                ),
            );
        }
        MimeSummary {
            header,
            parts: std::mem::take(&mut self.parts),
            attachments: std::mem::take(&mut self.attachments),
            body_text,
            body_text_truncated,
            body_html,
            body_html_truncated,
            urls,
            urls_truncated,
            ..MimeSummary::default()
        }
    }

    /// Queues the entities of a message: its multipart container and children, or its one body.
    fn open_message<'m, 'x>(
        &mut self,
        message: &'m Message<'x>,
        path: &str,
        depth: usize,
        complete: bool,
        stack: &mut Vec<Item<'m, 'x>>,
    ) {
        if message.parts.is_empty() {
            return;
        }
        let root_is_multipart = matches!(
            message.parts.first().map(|p| &p.body),
            Some(PartType::Multipart(_))
        );
        let root_path = if root_is_multipart {
            join(path, "0")
        } else {
            join(path, "1")
        };
        stack.push(Item::Entity {
            message,
            id: 0,
            path: root_path,
            depth,
            complete,
            digest_child: false,
            child_base: Some(path.to_string()),
        });
    }

    /// Records one entity and queues what is inside it.
    fn entity<'m, 'x>(&mut self, at: EntityAt<'m, 'x>, stack: &mut Vec<Item<'m, 'x>>) {
        let Some(part) = at.message.parts.get(at.id as usize) else {
            return;
        };
        let raw: &[u8] = &at.message.raw_message;
        let start = (part.offset_body as usize).min(raw.len());
        let end = (part.offset_end as usize).clamp(start, raw.len());
        let body_raw = &raw[start..end];
        // The captured data ended inside this part when its body runs to the end of the buffer.
        let complete = at.complete || end < raw.len();
        let ct = part.content_type();
        let content_type = match ct {
            Some(ct) => headers::type_name(ct.ctype(), ct.subtype()),
            None if at.digest_child => "message/rfc822".to_string(),
            None => "text/plain".to_string(),
        };
        let disposition = part.content_disposition();
        let cte_text = part.content_transfer_encoding().map(str::to_string);
        let encoding = TransferEncoding::parse(cte_text.as_deref());
        let mut record = PartRecord {
            path: at.path.clone(),
            depth: at.depth,
            content_type: content_type.clone(),
            content_type_raw: raw_field(part, raw, HeaderName::ContentType),
            params: params(ct),
            charset: ct.and_then(|c| c.attribute("charset")).map(str::to_string),
            transfer_encoding: cte_text.as_deref().map(|t| t.trim().to_ascii_lowercase()),
            disposition: disposition.map(|d| d.ctype().to_ascii_lowercase()),
            disposition_raw: raw_field(part, raw, HeaderName::ContentDisposition),
            filename: part.attachment_name().map(str::to_string),
            content_id: part.content_id().map(str::to_string),
            content_description: part.content_description().map(str::to_string),
            declared_size: disposition
                .and_then(|d| d.attribute("size"))
                .and_then(|s| s.trim().parse().ok()),
            encoded_size: body_raw.len() as u64,
            size: None,
            sha256: None,
            complete,
            message: None,
        };
        if encoding == TransferEncoding::Unknown {
            self.problem(
                "mime_unknown_transfer_encoding",
                format!(
                    "part {} declares transfer encoding {:?}; its body is kept as is",
                    at.path,
                    cte_text.as_deref().unwrap_or("")
                ),
            );
        }
        match &part.body {
            PartType::Multipart(children) => {
                self.parts.push(record);
                let digest = ct.is_some_and(|c| c.subtype() == Some("digest"));
                // A message's top multipart numbers its children under the message's own path.
                let base = at.child_base.unwrap_or_else(|| at.path.clone());
                for (i, &child) in children.iter().enumerate().rev() {
                    stack.push(Item::Entity {
                        message: at.message,
                        id: child,
                        path: join(&base, &(i + 1).to_string()),
                        depth: at.depth + 1,
                        complete: at.complete,
                        digest_child: digest,
                        child_base: None,
                    });
                }
            }
            body => {
                if content_type.starts_with("multipart/") {
                    let why = if ct.and_then(|c| c.attribute("boundary")).is_some() {
                        "its boundary never appears"
                    } else {
                        "it has no boundary parameter"
                    };
                    self.problem(
                        "mime_missing_boundary",
                        format!("multipart part {} is read as one body: {why}", at.path),
                    );
                }
                let decoded = transfer::decode(body_raw, &encoding);
                self.check_encoding(
                    &at.path,
                    part,
                    &encoding,
                    decoded.invalid,
                    complete,
                    start,
                    raw.len(),
                );
                let bytes = decoded.bytes;
                let sha256 = hex::encode(Sha256::digest(&bytes));
                record.size = Some(bytes.len() as u64);
                record.sha256 = Some(sha256.clone());
                if let PartType::Message(nested) = body {
                    record.message = nested.parts.first().map(|p| {
                        Box::new(headers::summarize(
                            &p.headers,
                            &nested.raw_message,
                            self.limits,
                            &at.path,
                            &mut self.problems,
                        ))
                    });
                    if encoding == TransferEncoding::Base64
                        || encoding == TransferEncoding::QuotedPrintable
                    {
                        self.problem(
                            "mime_encoded_message",
                            format!(
                                "encapsulated message in part {} is transfer-encoded (RFC 2046 allows 7bit, 8bit or binary only)",
                                at.path
                            ),
                        );
                    }
                    stack.push(Item::Message {
                        message: nested,
                        path: at.path.clone(),
                        depth: at.depth + 1,
                        complete,
                    });
                }
                if let PartType::Text(text) | PartType::Html(text) = body {
                    let html = matches!(body, PartType::Html(_));
                    let text = if part.is_encoding_problem
                        && matches!(
                            encoding,
                            TransferEncoding::Base64 | TransferEncoding::QuotedPrintable
                        ) {
                        // The parser gave the raw text back: use the lenient decoding instead.
                        Cow::Owned(to_utf8(&bytes, record.charset.as_deref()))
                    } else {
                        Cow::Borrowed(text.as_ref())
                    };
                    self.text(
                        &at.path,
                        &text,
                        html,
                        record.charset.as_deref(),
                        at.body_role,
                    );
                }
                let is_attachment = at.body_role == BodyRole::None
                    && (at.message.attachments.contains(&at.id)
                        || record.disposition.as_deref() == Some("attachment")
                        || record.filename.is_some());
                if is_attachment {
                    let (md5, sha1) = (
                        hex::encode(Md5::digest(&bytes)),
                        hex::encode(Sha1::digest(&bytes)),
                    );
                    self.attachments.push(AttachmentRecord {
                        path: at.path.clone(),
                        filename: record.filename.clone(),
                        content_type: content_type.clone(),
                        disposition: record.disposition.clone(),
                        size: bytes.len() as u64,
                        declared_size: record.declared_size,
                        encoded_size: record.encoded_size,
                        md5,
                        sha1,
                        sha256,
                        content_id: record.content_id.clone(),
                        complete,
                    });
                    if self.want {
                        self.contents.push(AttachmentContent {
                            path: at.path.clone(),
                            filename: record.filename.clone(),
                            content_type,
                            bytes: bytes.into_owned(),
                        });
                    }
                }
                self.parts.push(record);
            }
        }
    }

    /// Reports damaged transfer encodings and parts cut off before their boundary.
    #[allow(clippy::too_many_arguments)]
    fn check_encoding(
        &mut self,
        path: &str,
        part: &MessagePart<'_>,
        encoding: &TransferEncoding,
        invalid: usize,
        complete: bool,
        body_start: usize,
        raw_len: usize,
    ) {
        if invalid > 0 && complete {
            let kind = match encoding {
                TransferEncoding::Base64 => "mime_bad_base64",
                _ => "mime_bad_quoted_printable",
            };
            self.problem(
                kind,
                format!("part {path} has {invalid} bytes that are not valid for its encoding; the rest was decoded"),
            );
        } else if part.is_encoding_problem && complete && invalid == 0 && body_start < raw_len {
            self.problem(
                "mime_unterminated_part",
                format!("part {path} runs to the end of the message without its closing boundary"),
            );
        }
    }

    /// Scans a text part for URLs and keeps it as a body excerpt when it is one.
    fn text(&mut self, path: &str, text: &str, html: bool, charset: Option<&str>, role: BodyRole) {
        if let Some(cs) = charset {
            if !transfer::charset_known(cs) {
                self.problem(
                    "mime_unknown_charset",
                    format!(
                        "part {path} declares charset {:?}; its text was read as UTF-8 with replacements",
                        headers::clip(cs)
                    ),
                );
            }
        }
        self.urls.scan(text, html);
        let slot = match role {
            BodyRole::Text if self.body_text.is_none() => &mut self.body_text,
            BodyRole::Html if self.body_html.is_none() => &mut self.body_html,
            _ => return,
        };
        *slot = Some(excerpt(text, self.limits.max_body_bytes));
    }

    /// A message the parser found no header in: its bytes are one text/plain body.
    fn headerless(&mut self, data: &[u8], complete: bool) -> MimeSummary {
        if data.is_empty() {
            return MimeSummary::default();
        }
        self.problem(
            "mime_no_headers",
            "the message has no header fields; it was read as plain text".to_string(),
        );
        let text = String::from_utf8_lossy(data);
        self.urls.scan(&text, false);
        let (body_text, body_text_truncated) =
            split_body(Some(excerpt(&text, self.limits.max_body_bytes)));
        let urls_truncated = self.urls.truncated;
        let urls = std::mem::replace(&mut self.urls, UrlCollector::new(0)).into_urls();
        MimeSummary {
            parts: vec![PartRecord {
                path: "1".to_string(),
                depth: 0,
                content_type: "text/plain".to_string(),
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
                encoded_size: data.len() as u64,
                size: Some(data.len() as u64),
                sha256: Some(hex::encode(Sha256::digest(data))),
                complete,
                message: None,
            }],
            body_text,
            body_text_truncated,
            urls,
            urls_truncated,
            ..MimeSummary::default()
        }
    }
}

/// Where an entity sits and what it is for.
struct EntityAt<'m, 'x> {
    message: &'m Message<'x>,
    id: u32,
    path: String,
    depth: usize,
    complete: bool,
    digest_child: bool,
    child_base: Option<String>,
    body_role: BodyRole,
}

/// Whether an entity is the message's main text or HTML body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyRole {
    Text,
    Html,
    None,
}

/// The first part in `list` that really is text (or HTML): the parser lists HTML parts as text
/// bodies when there is no text part.
fn first_of(message: &Message<'_>, list: &[u32], html: bool) -> Option<u32> {
    list.iter().copied().find(|&id| {
        matches!(
            (message.parts.get(id as usize).map(|p| &p.body), html),
            (Some(PartType::Text(_)), false) | (Some(PartType::Html(_)), true)
        )
    })
}

fn join(base: &str, n: &str) -> String {
    if base.is_empty() {
        n.to_string()
    } else {
        format!("{base}.{n}")
    }
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

/// The last field `name` of a part (the one the parser uses), as written and unfolded.
fn raw_field(part: &MessagePart<'_>, raw: &[u8], name: HeaderName<'static>) -> Option<String> {
    let h = part.headers.header(name)?;
    let bytes = raw.get(h.offset_start as usize..h.offset_end as usize)?;
    Some(headers::unfold(&String::from_utf8_lossy(bytes)))
}

/// Text in a charset, converted to UTF-8 (lossily when the charset is unknown).
fn to_utf8(bytes: &[u8], charset: Option<&str>) -> String {
    match charset.and_then(|c| mail_parser::decoders::charsets::map::charset_decoder(c.as_bytes()))
    {
        Some(decoder) => decoder(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
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

fn split_body(body: Option<(String, bool)>) -> (Option<String>, bool) {
    match body {
        Some((text, cut)) => (Some(text), cut),
        None => (None, false),
    }
}
