//! MIME structure (RFC 2045-2049): the part tree of a parsed message mapped onto records.

use super::super::headers::{self, HeaderSummary};
use super::super::magic::{ContentKind, MAGIC_BYTES};
use super::super::record::{AttachmentRecord, MimeSummary, PartRecord};
use super::super::transfer::{self, TransferEncoding};
use super::super::urls::UrlCollector;
use super::super::{MimeLimits, MimeProblem, digest};
use super::guard;
use mail_parser::{
    ContentType, GetHeader, HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

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

/// Decoded content of one attachment, for extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttachmentContent {
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
    /// Problems found, repeats folded (the same as `summary.decode_problems`).
    pub problems: Vec<MimeProblem>,
    /// Decoded attachment contents, when asked for.
    pub attachments: Vec<AttachmentContent>,
}

/// The message with every `Content-Transfer-Encoding: base64` header turned into `binary`
/// (the same length, so every offset stays), for a parse that leaves bodies encoded.
fn without_base64_decoding(data: &[u8]) -> Cow<'_, [u8]> {
    const FIELD: &[u8] = b"content-transfer-encoding:";
    let finder = memchr::memmem::Finder::new(b"ransfer-");
    let mut out: Option<Vec<u8>> = None;
    for hit in finder.find_iter(data) {
        // The hit sits at offset 9 of the field name, which must start a line.
        let Some(start) = hit.checked_sub(9) else {
            continue;
        };
        let at_line_start = start == 0 || data[start - 1] == b'\n';
        let field = data.get(start..start + FIELD.len());
        if !at_line_start || !field.is_some_and(|f| f.eq_ignore_ascii_case(FIELD)) {
            continue;
        }
        let value_start = start + FIELD.len();
        let line_end =
            memchr::memchr(b'\n', &data[value_start..]).map_or(data.len(), |n| value_start + n);
        let value = &data[value_start..line_end];
        let token = value.iter().position(|b| !b.is_ascii_whitespace());
        if let Some(t) = token
            && value
                .get(t..t + 6)
                .is_some_and(|v| v.eq_ignore_ascii_case(b"base64"))
        {
            let copy = out.get_or_insert_with(|| data.to_vec());
            copy[value_start + t..value_start + t + 6].copy_from_slice(b"binary");
        }
    }
    out.map_or(Cow::Borrowed(data), Cow::Owned)
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
    let undecoded;
    if !limits.decode_content {
        undecoded = without_base64_decoding(data);
        data = &undecoded;
    }
    let parsed = catch_unwind(AssertUnwindSafe(|| MessageParser::default().parse(data)));
    let mut walk = Walk::new(limits, want_attachments);
    walk.problems = problems;
    let mut summary = match parsed {
        Ok(Some(message)) => walk.message_tree(&message, complete),
        Ok(None) => walk.headerless(data, complete),
        Err(_) => {
            // Fall back to the headers alone, which skips the body decoders.
            let headers_only = catch_unwind(AssertUnwindSafe(|| {
                MessageParser::default().parse_headers(data)
            }));
            walk.problems.push(MimeProblem::new(
                "mime_decoder_panic",
                "the MIME parser failed unexpectedly; only the message's headers were decoded",
            ));
            match headers_only {
                Ok(Some(message)) => MimeSummary {
                    header: message
                        .parts
                        .first()
                        .map(|p| {
                            headers::summarize(
                                &p.headers,
                                &message.raw_message,
                                limits,
                                "",
                                &mut walk.problems,
                            )
                        })
                        .unwrap_or_default(),
                    ..MimeSummary::default()
                },
                _ => MimeSummary::default(),
            }
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
    let problems = fold(problems);
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

    /// The last field `name` of a part (the one the parser uses), as written and unfolded.
    fn raw_field(
        &mut self,
        part: &MessagePart<'_>,
        raw: &[u8],
        name: HeaderName<'static>,
        at: &str,
    ) -> Option<String> {
        let h = part.headers.header(name)?;
        let bytes = raw.get(h.offset_start as usize..h.offset_end as usize)?;
        let text = headers::HeaderText::decode(bytes);
        if text.is_windows_1252() {
            headers::note_8bit(&mut self.problems, at, h.name.as_str());
        }
        Some(headers::unfold(text.as_str()))
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
        let mut visited: HashSet<(usize, u32), foldhash::fast::RandomState> = HashSet::default();
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
        // Parameters whose bytes are not UTF-8 came out of the parser with U+FFFD; they are
        // read again as the header fields are (an 8-bit file name from an old client).
        let at_part = format!("part {}", at.path);
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
        let content_type_raw = self.raw_field(part, raw, HeaderName::ContentType, &at_part);
        let disposition_raw = self.raw_field(part, raw, HeaderName::ContentDisposition, &at_part);
        let cte_text = part.content_transfer_encoding().map(str::to_string);
        let encoding = TransferEncoding::parse(cte_text.as_deref());
        let mut record = PartRecord {
            path: at.path.clone(),
            depth: at.depth,
            content_type: content_type.clone(),
            content_type_raw,
            params: params(ct_params),
            charset: ct.and_then(|c| c.attribute("charset")).map(str::to_string),
            transfer_encoding: cte_text.as_deref().map(|t| t.trim().to_ascii_lowercase()),
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
            encoded_size: body_raw.len() as u64,
            size: None,
            sha256: None,
            complete,
            content_kind: None,
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
                if let Some(b) = ct.and_then(|c| c.attribute("boundary"))
                    && b.len() > 70
                {
                    self.problem(
                        "mime_boundary_too_long",
                        format!(
                            "multipart part {} has a boundary of {} bytes (RFC 2046 allows 70)",
                            at.path,
                            b.len()
                        ),
                    );
                }
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
                let has_boundary = ct.and_then(|c| c.attribute("boundary")).is_some();
                // In a message cut short, a boundary that never came is no fault of the sender.
                if content_type.starts_with("multipart/") && (complete || !has_boundary) {
                    let why = if has_boundary {
                        "its boundary never appears"
                    } else {
                        "it has no boundary parameter"
                    };
                    self.problem(
                        "mime_missing_boundary",
                        format!("multipart part {} is read as one body: {why}", at.path),
                    );
                }
                let decoded = match body {
                    // Clean base64 the parser already decoded: the same octets, no second pass.
                    PartType::Binary(b) | PartType::InlineBinary(b)
                        if encoding == TransferEncoding::Base64 && !part.is_encoding_problem =>
                    {
                        transfer::Decoded {
                            bytes: Cow::Borrowed(b.as_ref()),
                            invalid: 0,
                        }
                    }
                    _ => transfer::decode(body_raw, &encoding),
                };
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
                let hashes = self.limits.content_hashes;
                let is_attachment = at.body_role == BodyRole::None
                    && (at.message.attachments.contains(&at.id)
                        || record.disposition.as_deref() == Some("attachment")
                        || record.filename.is_some());
                // An attachment's three hashes come from one pass over its bytes.
                let digests = hashes.then(|| digest::content_digests(&bytes, is_attachment));
                let sha256 = digests
                    .as_ref()
                    .map(|d| hex::encode(d.sha256))
                    .unwrap_or_default();
                record.size = Some(bytes.len() as u64);
                record.sha256 = hashes.then(|| sha256.clone());
                if !matches!(body, PartType::Message(_)) {
                    record.content_kind = ContentKind::of(&bytes[..bytes.len().min(MAGIC_BYTES)]);
                }
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
                if is_attachment {
                    let (md5, sha1) = match digests.and_then(|d| d.md5_sha1) {
                        Some((md5, sha1)) => (hex::encode(md5), hex::encode(sha1)),
                        None => (String::new(), String::new()),
                    };
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
        if let Some(cs) = charset
            && !transfer::charset_known(cs)
        {
            self.problem(
                    "mime_unknown_charset",
                    format!(
                        "part {path} declares charset {:?}; its text was read as UTF-8 with replacements",
                        headers::clip(cs)
                    ),
                );
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
                sha256: self
                    .limits
                    .content_hashes
                    .then(|| hex::encode(Sha256::digest(data))),
                complete,
                content_kind: ContentKind::of(&data[..data.len().min(MAGIC_BYTES)]),
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

#[cfg(test)]
mod tests {
    use super::*;
    use md5::Md5;
    use sha1::Sha1;
    use std::time::{Duration, Instant};

    fn limits() -> MimeLimits {
        MimeLimits::default()
    }

    fn crlf(s: &str) -> Vec<u8> {
        s.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
    }

    fn kinds(d: &DecodedMessage) -> Vec<&'static str> {
        d.problems.iter().map(|p| p.kind).collect()
    }

    fn part<'a>(s: &'a MimeSummary, path: &str) -> &'a PartRecord {
        s.parts
            .iter()
            .find(|p| p.path == path)
            .unwrap_or_else(|| panic!("no part {path} in {:?}", s.parts))
    }

    const PDF: &[u8] = b"%PDF-1.4\n%\xc7\xec\x8f\xa2\nfake pdf body\n";

    #[test]
    fn base64_headers_become_binary_of_the_same_length() {
        let msg = crlf(
            "Subject: x\nContent-Transfer-Encoding:  BASE64 \n\nQUJD\n\
             content-transfer-encoding: base64\nX-Content-Transfer-Encoding: base64\n\
             Content-Transfer-Encoding: quoted-printable\n",
        );
        let out = without_base64_decoding(&msg);
        assert_eq!(out.len(), msg.len());
        let text = String::from_utf8(out.into_owned()).unwrap();
        assert!(text.contains("Content-Transfer-Encoding:  binary \r\n"));
        assert!(text.contains("content-transfer-encoding: binary\r\n"));
        // Only whole field names at a line start count.
        assert!(text.contains("X-Content-Transfer-Encoding: base64"));
        assert!(text.contains("quoted-printable"));
        assert!(matches!(
            without_base64_decoding(b"no such field"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            without_base64_decoding(b"ransfer-"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn without_content_decoding_the_structure_and_names_stay() {
        use base64::Engine;
        let body = base64::engine::general_purpose::STANDARD.encode(PDF);
        let msg = crlf(&format!(
            "From: a@x.org\nSubject: =?UTF-8?B?w6l0w6k=?=\nMIME-Version: 1.0\n\
             Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
             hi\n--b\nContent-Type: application/pdf; name=\"r.pdf\"\n\
             Content-Transfer-Encoding: base64\n\n{body}\n--b--\n"
        ));
        let full = decode(&msg, true, &limits(), false);
        let bare = decode(
            &msg,
            true,
            &MimeLimits {
                decode_content: false,
                ..limits()
            },
            false,
        );
        assert_eq!(full.summary.header, bare.summary.header);
        let names = |d: &DecodedMessage| {
            d.summary
                .parts
                .iter()
                .map(|p| (p.path.clone(), p.content_type.clone(), p.filename.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&full), names(&bare));
        assert_eq!(
            full.summary.attachments.len(),
            bare.summary.attachments.len()
        );
        assert_eq!(kinds(&full), kinds(&bare));
        assert_eq!(part(&full.summary, "2").size, Some(PDF.len() as u64));
    }

    fn b64(data: &[u8]) -> String {
        use base64::Engine;
        let s = base64::engine::general_purpose::STANDARD.encode(data);
        s.as_bytes()
            .chunks(20)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub(super) fn full_message() -> Vec<u8> {
        crlf(&format!(
            r#"From: "Doe, Jane" <jane@example.org>
To: bob@example.com, "Ops, Team" <ops@example.com>
Subject: =?UTF-8?Q?R=C3=A9sum=C3=A9?= =?ISO-8859-1?Q?_f=FCr?= you
Date: Mon, 1 Jan 2024 12:00:00 +0100
Message-ID: <m1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is a preamble.
--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 menu: https://example.com/menu?x=3D1&y=3D2 =
continued.
--alt
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: QUOTED-PRINTABLE

<p>Caf=E9 <a href=3D"https://example.com/html?a=3D1&amp;b=3D2">link</a></p>
--alt--
--outer
Content-Type: application/pdf
Content-Disposition: attachment;
 filename*0*=UTF-8''r%C3%A9sum%C3%A9%20;
 filename*1=final.pdf; size=35
Content-Transfer-Encoding: Base64

{}
--outer
Content-Type: message/rfc822
Content-Disposition: attachment

From: inner@example.net
Subject: =?utf-8?B?SW5uZXIgc3ViamVjdA==?=
Date: Sun, 31 Dec 2023 23:00:00 +0000
Content-Type: text/plain

inner body with http://inner.example/path
--outer--
"#,
            b64(PDF)
        ))
    }

    #[test]
    fn full_multipart_message() {
        let msg = full_message();
        let d = decode(&msg, true, &limits(), true);
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        let s = &d.summary;
        assert_eq!(s.header.subject.as_deref(), Some("Résumé für you"));
        assert_eq!(
            s.header.subject_raw.as_deref(),
            Some("=?UTF-8?Q?R=C3=A9sum=C3=A9?= =?ISO-8859-1?Q?_f=FCr?= you")
        );
        assert_eq!(s.header.from[0].name.as_deref(), Some("Doe, Jane"));
        assert_eq!(s.header.to.len(), 2);
        assert_eq!(s.header.to[1].name.as_deref(), Some("Ops, Team"));
        assert_eq!(s.header.date.as_deref(), Some("2024-01-01T11:00:00Z"));
        assert_eq!(s.header.message_id.as_deref(), Some("m1@example.org"));
        assert_eq!(s.header.content_type.as_deref(), Some("multipart/mixed"));

        let paths: Vec<(&str, &str)> = s
            .parts
            .iter()
            .map(|p| (p.path.as_str(), p.content_type.as_str()))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("0", "multipart/mixed"),
                ("1", "multipart/alternative"),
                ("1.1", "text/plain"),
                ("1.2", "text/html"),
                ("2", "application/pdf"),
                ("3", "message/rfc822"),
                ("3.1", "text/plain"),
            ]
        );
        let text = part(s, "1.1");
        assert_eq!(text.transfer_encoding.as_deref(), Some("quoted-printable"));
        assert_eq!(text.charset.as_deref(), Some("utf-8"));
        assert_eq!(text.depth, 2);
        assert_eq!(
            part(s, "0").params.get("boundary").map(String::as_str),
            Some("outer")
        );
        assert_eq!(
            s.body_text.as_deref(),
            Some("Café menu: https://example.com/menu?x=1&y=2 continued.")
        );
        assert_eq!(
            s.body_html.as_deref(),
            Some("<p>Café <a href=\"https://example.com/html?a=1&amp;b=2\">link</a></p>")
        );
        assert_eq!(
            s.urls,
            vec![
                "https://example.com/menu?x=1&y=2",
                "https://example.com/html?a=1&b=2",
                "http://inner.example/path"
            ]
        );

        let pdf = part(s, "2");
        assert_eq!(pdf.filename.as_deref(), Some("résumé final.pdf"));
        assert_eq!(pdf.transfer_encoding.as_deref(), Some("base64"));
        assert_eq!(pdf.declared_size, Some(35));
        assert_eq!(pdf.size, Some(PDF.len() as u64));
        assert!(
            pdf.disposition_raw
                .as_deref()
                .unwrap_or("")
                .contains("filename*0*")
        );

        let nested = part(s, "3");
        let inner = nested.message.as_ref().expect("nested headers");
        assert_eq!(inner.subject.as_deref(), Some("Inner subject"));
        assert_eq!(inner.from[0].address.as_deref(), Some("inner@example.net"));
        assert_eq!(inner.date.as_deref(), Some("2023-12-31T23:00:00Z"));
        assert_eq!(part(s, "3.1").depth, 2);

        assert_eq!(s.attachments.len(), 2);
        let a = &s.attachments[0];
        assert_eq!(a.path, "2");
        assert_eq!(a.filename.as_deref(), Some("résumé final.pdf"));
        assert_eq!(a.content_type, "application/pdf");
        assert_eq!(a.disposition.as_deref(), Some("attachment"));
        assert_eq!(a.size, PDF.len() as u64);
        assert_eq!(a.md5, hex::encode(Md5::digest(PDF)));
        assert_eq!(a.sha1, hex::encode(Sha1::digest(PDF)));
        assert_eq!(a.sha256, hex::encode(Sha256::digest(PDF)));
        assert!(a.complete);
        let m = &s.attachments[1];
        assert_eq!(m.path, "3");
        assert_eq!(m.content_type, "message/rfc822");
        assert_eq!(d.attachments.len(), 2);
        assert_eq!(d.attachments[0].bytes, PDF);
        assert!(
            d.attachments[1]
                .bytes
                .starts_with(b"From: inner@example.net\r\n")
        );
        assert!(
            d.attachments[1]
                .bytes
                .ends_with(b"http://inner.example/path")
        );
        assert_eq!(s.decoded_bytes, msg.len() as u64);

        // Without asking, no contents are handed out.
        assert!(decode(&msg, true, &limits(), false).attachments.is_empty());
    }

    #[test]
    fn json_names_are_the_contract() {
        let d = decode(&full_message(), true, &limits(), false);
        let v = serde_json::to_value(&d.summary).expect("json");
        for key in [
            "subject",
            "subject_raw",
            "from",
            "to",
            "cc",
            "date",
            "date_raw",
            "message_id",
            "headers",
            "parts",
            "attachments",
            "urls",
            "received",
            "body_text",
            "body_html",
            "reply_to",
            "in_reply_to",
            "references",
            "return_path",
            "user_agent",
            "x_mailer",
            "x_originating_ip",
            "decode_problems",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        for key in [
            "filename",
            "content_type",
            "size",
            "md5",
            "sha1",
            "sha256",
            "path",
        ] {
            assert!(
                v["attachments"][0].get(key).is_some(),
                "attachment lacks {key}"
            );
        }
        assert_eq!(v["from"][0]["name"], "Doe, Jane");
        assert_eq!(v["from"][0]["address"], "jane@example.org");
        assert_eq!(v["parts"][5]["message"]["subject"], "Inner subject");
        assert!(v["parts"][0].get("message").is_none());
    }

    #[test]
    fn single_part_message_is_part_one() {
        let d = decode(
            &crlf(
                "Subject: plain\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7BIT\n\nHello\n",
            ),
            true,
            &limits(),
            false,
        );
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        let s = &d.summary;
        assert_eq!(s.parts.len(), 1);
        assert_eq!(s.parts[0].path, "1");
        assert_eq!(s.parts[0].transfer_encoding.as_deref(), Some("7bit"));
        assert_eq!(s.body_text.as_deref(), Some("Hello\r\n"));
        assert!(s.attachments.is_empty());
    }

    #[test]
    fn missing_boundary_parameter() {
        let d = decode(
            &crlf(
                "Subject: x\nContent-Type: multipart/mixed\n\n--b\nContent-Type: text/plain\n\nhi\n--b--\n",
            ),
            true,
            &limits(),
            false,
        );
        assert_eq!(kinds(&d), vec!["mime_missing_boundary"]);
        assert_eq!(d.summary.parts.len(), 1);
        assert_eq!(d.summary.header.subject.as_deref(), Some("x"));
    }

    #[test]
    fn long_boundary_is_noted_and_decoded() {
        let b = "A".repeat(296);
        let msg = crlf(&format!(
            "Content-Type: multipart/mixed; boundary=\"{b}\"\n\n--{b}\n\nfirst\n--{b}--\n"
        ));
        let d = decode(&msg, true, &limits(), false);
        assert_eq!(kinds(&d), vec!["mime_boundary_too_long"]);
        assert_eq!(d.summary.body_text.as_deref(), Some("first"));
    }

    #[test]
    fn missing_boundary_in_a_cut_message_is_not_a_fault() {
        let msg =
            crlf("Subject: top\nContent-Type: multipart/alternative; boundary=zz\n\npreamble only");
        assert!(decode(&msg, false, &limits(), false).problems.is_empty());
        assert_eq!(
            kinds(&decode(&msg, true, &limits(), false)),
            vec!["mime_missing_boundary"]
        );
    }

    #[test]
    fn boundary_never_closed() {
        let d = decode(
            &crlf(
                "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nfirst\n--b\nContent-Type: text/plain\n\nsecond and last\n",
            ),
            true,
            &limits(),
            false,
        );
        assert_eq!(kinds(&d), vec!["mime_unterminated_part"]);
        let paths: Vec<_> = d.summary.parts.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["0", "1", "2"]);
        assert_eq!(d.summary.body_text.as_deref(), Some("first"));
    }

    #[test]
    fn bad_base64_is_decoded_leniently() {
        let d = decode(
            &crlf(
                "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream; name=x.bin\nContent-Transfer-Encoding: base64\n\nQUJD!!!\nREVG\n--b--\n",
            ),
            true,
            &limits(),
            true,
        );
        assert_eq!(kinds(&d), vec!["mime_bad_base64"]);
        assert_eq!(d.attachments[0].bytes, b"ABCDEF");
        assert_eq!(d.summary.attachments[0].size, 6);
        assert_eq!(
            d.summary.attachments[0].sha256,
            hex::encode(Sha256::digest(b"ABCDEF"))
        );
    }

    #[test]
    fn repeated_problems_fold_into_one_with_a_count() {
        let mut msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for i in 0..3 {
            msg.extend_from_slice(
                format!("--b\r\nContent-Type: text/plain; charset=x-bogus-{i}\r\n\r\nt\r\n")
                    .as_bytes(),
            );
        }
        msg.extend_from_slice(b"--b--\r\n");
        let d = decode(&msg, true, &limits(), false);
        assert_eq!(d.problems.len(), 1);
        assert_eq!(d.problems[0].kind, "mime_unknown_charset");
        assert_eq!(d.problems[0].count, 3);
        assert!(d.problems[0].detail.contains("x-bogus-0"));
        assert_eq!(d.summary.decode_problems, d.problems);
    }

    #[test]
    fn eight_bit_parameters_read_as_windows_1252() {
        let mut msg = crlf("Subject: files\nContent-Type: multipart/mixed; boundary=b\n\n--b\n");
        msg.extend_from_slice(b"Content-Type: application/pdf; name=\"r\xe9sum\xe9.pdf\"\r\n");
        msg.extend_from_slice(
            b"Content-Disposition: attachment; filename=\"R\xe9sum\xe9 \x96 final.pdf\"\r\n",
        );
        msg.extend_from_slice(&crlf(
            "\nPDF\n--b\nContent-Type: text/plain; name=ok.txt\n\nt\n--b--\n",
        ));
        let d = decode(&msg, true, &limits(), false);
        let pdf = part(&d.summary, "1");
        assert_eq!(
            pdf.filename.as_deref(),
            Some("R\u{e9}sum\u{e9} \u{2013} final.pdf")
        );
        assert_eq!(
            pdf.params.get("name").map(String::as_str),
            Some("r\u{e9}sum\u{e9}.pdf")
        );
        assert_eq!(
            pdf.content_type_raw.as_deref(),
            Some("application/pdf; name=\"r\u{e9}sum\u{e9}.pdf\"")
        );
        // A part whose fields are UTF-8 reads as before.
        assert_eq!(part(&d.summary, "2").filename.as_deref(), Some("ok.txt"));
        assert_eq!(kinds(&d), vec!["header_8bit_not_utf8"]);
        assert_eq!(d.problems[0].count, 1);
        assert!(
            d.problems[0].detail.contains("part 1"),
            "{}",
            d.problems[0].detail
        );
    }

    #[test]
    fn unknown_charset_is_kept_lossily() {
        let mut msg = crlf("Subject: c\nContent-Type: text/plain; charset=x-klingon\n\n");
        msg.extend_from_slice(b"caf\xe9 ok\r\n");
        let d = decode(&msg, true, &limits(), false);
        assert_eq!(kinds(&d), vec!["mime_unknown_charset"]);
        assert_eq!(d.summary.body_text.as_deref(), Some("caf\u{fffd} ok\r\n"));
        assert_eq!(d.summary.parts[0].charset.as_deref(), Some("x-klingon"));
    }

    #[test]
    fn latin1_and_unknown_transfer_encoding() {
        let mut msg = crlf(
            "Content-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: x-uuencode\n\n",
        );
        msg.extend_from_slice(b"Gr\xfc\xdfe\r\n");
        let d = decode(&msg, true, &limits(), false);
        assert_eq!(kinds(&d), vec!["mime_unknown_transfer_encoding"]);
        assert_eq!(d.summary.body_text.as_deref(), Some("Grüße\r\n"));
    }

    #[test]
    fn ten_thousand_nested_parts_are_fast_and_bounded() {
        let mut msg = Vec::new();
        for i in 0..10_000 {
            msg.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        msg.extend_from_slice(b"Content-Type: text/plain\r\n\r\ndeep\r\n");
        for i in (0..10_000).rev() {
            msg.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
        }
        let started = Instant::now();
        let d = decode(&msg, true, &limits(), false);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        let k = kinds(&d);
        assert!(k.contains(&"mime_too_deep"), "{k:?}");
        let l = limits();
        assert!(d.summary.parts.len() <= l.max_depth + 1);
        assert_eq!(d.summary.parts[0].path, "0");
        assert_eq!(d.summary.parts[1].path, "1");
        assert_eq!(d.summary.parts[2].path, "1.1");
    }

    #[test]
    fn many_parts_stop_at_the_limit() {
        let mut msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for i in 0..50 {
            msg.extend_from_slice(
                format!("--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n").as_bytes(),
            );
        }
        msg.extend_from_slice(b"--b--\r\n");
        let l = MimeLimits {
            max_parts: 10,
            ..limits()
        };
        let d = decode(&msg, true, &l, false);
        assert_eq!(kinds(&d), vec!["mime_too_many_parts"]);
        assert_eq!(d.summary.parts.len(), 10);
        assert_eq!(d.summary.parts[9].path, "9");
    }

    #[test]
    fn megabyte_header_line() {
        let mut msg = b"From: a@example.org\r\nX-Junk: ".to_vec();
        msg.extend(std::iter::repeat_n(b'j', 1 << 20));
        msg.extend_from_slice(b"\r\nSubject: after\r\n\r\nbody text\r\n");
        let started = Instant::now();
        let d = decode(&msg, true, &limits(), false);
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(kinds(&d), vec!["mime_header_block_too_large"]);
        let s = &d.summary;
        assert_eq!(s.header.from[0].address.as_deref(), Some("a@example.org"));
        assert_eq!(s.header.headers.len(), 1);
        assert_eq!(s.header.header_count, 3);
        // Padding does not hide the fields after it.
        assert_eq!(s.header.subject.as_deref(), Some("after"));
        assert_eq!(s.body_text.as_deref(), Some("body text\r\n"));
    }

    #[test]
    fn headers_only_message() {
        let d = decode(
            &crlf("From: a@example.org\nSubject: =?iso-8859-1?q?only_headers_=E9?=\n"),
            true,
            &limits(),
            false,
        );
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert_eq!(d.summary.header.subject.as_deref(), Some("only headers é"));
        assert_eq!(d.summary.parts.len(), 1);
        assert_eq!(d.summary.parts[0].size, Some(0));
    }

    #[test]
    fn truncated_inside_a_base64_attachment() {
        let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let full = crlf(&format!(
            "Subject: cut\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attachment\n--b\nContent-Type: application/zip; name=\"a.zip\"\nContent-Transfer-Encoding: base64\n\n{}\n--b--\n",
            b64(&data)
        ));
        let cut_at = full.len() / 2 + 3;
        let d = decode(&full[..cut_at], false, &limits(), true);
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        let s = &d.summary;
        assert_eq!(s.header.subject.as_deref(), Some("cut"));
        assert_eq!(s.body_text.as_deref(), Some("see attachment"));
        assert!(part(s, "1").complete);
        let a = &s.attachments[0];
        assert_eq!(a.filename.as_deref(), Some("a.zip"));
        assert!(!a.complete);
        assert!(a.size > 0 && a.size < data.len() as u64);
        // What was decoded is a true prefix of the attachment.
        assert_eq!(d.attachments[0].bytes, data[..a.size as usize]);
    }

    #[test]
    fn encoded_encapsulated_message_and_digest() {
        let inner = crlf("Subject: inside\nFrom: x@y.z\n\nhello http://in.example/\n");
        let msg = crlf(&format!(
            "Subject: outer\nContent-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n{}\n--o\nContent-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: digest one\n\none\n--d--\n--o--\n",
            b64(&inner)
        ));
        let d = decode(&msg, true, &limits(), false);
        assert_eq!(kinds(&d), vec!["mime_encoded_message"]);
        let s = &d.summary;
        assert_eq!(s.header.subject.as_deref(), Some("outer"));
        assert_eq!(
            part(s, "1")
                .message
                .as_ref()
                .and_then(|m| m.subject.as_deref()),
            Some("inside")
        );
        assert_eq!(part(s, "1.1").content_type, "text/plain");
        assert_eq!(part(s, "2").content_type, "multipart/digest");
        let digest_child = part(s, "2.1");
        assert_eq!(digest_child.content_type, "message/rfc822");
        assert_eq!(
            digest_child
                .message
                .as_ref()
                .and_then(|m| m.subject.as_deref()),
            Some("digest one")
        );
        assert!(s.urls.contains(&"http://in.example/".to_string()));
    }

    #[test]
    fn headerless_bytes_are_read_as_text() {
        // A first line with a colon would read as a header field, as in any mail reader.
        let d = decode(
            b"just some words\r\nsee www.x.example/a\r\n",
            true,
            &limits(),
            false,
        );
        assert_eq!(kinds(&d), vec!["mime_no_headers"]);
        assert_eq!(d.summary.urls, vec!["www.x.example/a"]);
        assert_eq!(d.summary.parts[0].path, "1");
        assert_eq!(
            d.summary.body_text.as_deref(),
            Some("just some words\r\nsee www.x.example/a\r\n")
        );
        let empty = decode(b"", false, &limits(), false);
        assert!(empty.problems.is_empty());
        assert!(empty.summary.parts.is_empty());
    }

    #[test]
    fn decode_limit_cuts_and_reports() {
        let msg = full_message();
        let l = MimeLimits {
            max_decode_bytes: 200,
            ..limits()
        };
        let d = decode(&msg, true, &l, false);
        assert_eq!(d.problems[0].kind, "mime_decode_limit");
        assert_eq!(d.summary.decoded_bytes, 200);
        assert_eq!(d.summary.header.subject.as_deref(), Some("Résumé für you"));
    }

    #[test]
    fn body_excerpt_is_bounded_at_a_character() {
        let body = "é".repeat(100);
        let msg = crlf(&format!(
            "Content-Type: text/plain; charset=utf-8\n\n{body}"
        ));
        let l = MimeLimits {
            max_body_bytes: 11,
            ..limits()
        };
        let d = decode(&msg, true, &l, false);
        assert_eq!(d.summary.body_text.as_deref(), Some("ééééé"));
        assert!(d.summary.body_text_truncated);
    }

    #[test]
    fn parser_panic_is_contained() {
        // mail-parser 0.11 subtracts past zero on a quoted-printable body that is only a soft
        // line break before its delimiter: a panic with overflow checks (debug builds), a
        // harmless wrap without them (release builds).
        let msg = b"Subject: qp\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=\r\n--a--\r\n";
        let d = decode(msg, true, &limits(), false);
        assert_eq!(d.summary.header.subject.as_deref(), Some("qp"));
        if cfg!(debug_assertions) {
            assert_eq!(kinds(&d), vec!["mime_decoder_panic"]);
        } else {
            assert!(d.problems.is_empty(), "{:?}", d.problems);
            assert_eq!(d.summary.parts.len(), 2);
        }
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let cases: Vec<Vec<u8>> = vec![
            b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\n".to_vec(),
            b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n".to_vec(),
            b"Content-Type: multipart/digest; boundary=a\r\n\r\n--a\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n--a--".to_vec(),
            b":\r\n:\r\n\r\n".to_vec(),
            b"\r\n\r\n\r\n".to_vec(),
            b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a--a--a--a\r\n--a".to_vec(),
            vec![b'-'; 10_000],
            (0..=255u8).cycle().take(20_000).collect(),
        ];
        for c in cases {
            for complete in [true, false] {
                let d = decode(&c, complete, &limits(), true);
                assert!(
                    !d.problems.iter().any(|p| p.kind == "mime_decoder_panic"),
                    "{:?}",
                    String::from_utf8_lossy(&c)
                );
            }
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Damaged copies of a real-shaped message decode without panicking, within bounds.
        #[test]
        fn damaged_messages_decode(
            edits in proptest::collection::vec((0usize..4000, any::<u8>(), 0u8..3), 0..12),
            cut in 0usize..4000,
            complete in any::<bool>(),
        ) {
            let mut msg = super::tests::full_message();
            for (at, byte, op) in edits {
                let at = at % (msg.len() + 1);
                match op {
                    0 => msg.insert(at, byte),
                    1 if at < msg.len() => { msg.remove(at); }
                    _ => if at < msg.len() { msg[at] = byte },
                }
            }
            msg.truncate(cut.max(msg.len() / 2));
            let limits = MimeLimits::default();
            let d = decode(&msg, complete, &limits, true);
            prop_assert!(d.summary.parts.len() <= limits.max_parts);
            prop_assert!(d.summary.urls.len() <= limits.max_urls);
            prop_assert_eq!(d.attachments.len(), d.summary.attachments.len());
            for (c, a) in d.attachments.iter().zip(&d.summary.attachments) {
                prop_assert_eq!(&c.path, &a.path);
                prop_assert_eq!(c.bytes.len() as u64, a.size);
            }
        }
    }
}
