//! Header fields of a message (RFC 5322), decoded for the record with their raw text beside them.

use super::MimeLimits;
use super::MimeProblem;
use mail_parser::parsers::MessageStream;
use mail_parser::{
    Address, ContentType, DateTime, Header, HeaderName, HeaderValue, Host, Received,
};
use serde::Serialize;

/// Anomaly kind for header bytes that are not UTF-8, read as Windows-1252 instead.
pub(crate) const HEADER_8BIT_NOT_UTF8: &str = "header_8bit_not_utf8";

/// One mailbox of an address list; members of a group carry the group's name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AddressRecord {
    /// Display name, RFC 2047 decoded (quotes removed).
    pub name: Option<String>,
    /// The address (`local@domain`), as written.
    pub address: Option<String>,
    /// Name of the RFC 5322 group the mailbox belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// A header field as it appears in the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderField {
    /// Field name as written.
    pub name: String,
    /// Field body as written (folding kept, final line break removed), lossily UTF-8.
    pub value: String,
}

/// One `Received:` hop, parsed where it follows the usual shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReceivedHop {
    /// The field body, unfolded.
    pub raw: String,
    /// Host named after `from`.
    pub from: Option<String>,
    /// IP address of the `from` host, when given.
    pub from_ip: Option<String>,
    /// Reverse DNS name of the `from` host, when given.
    pub from_rdns: Option<String>,
    /// Host named after `by`.
    pub by: Option<String>,
    /// Protocol after `with` (e.g. `ESMTPS`).
    pub with: Option<String>,
    /// Queue id after `id`.
    pub id: Option<String>,
    /// Recipient after `for`.
    #[serde(rename = "for")]
    pub for_: Option<String>,
    /// TLS version and cipher, when the hop records them.
    pub tls: Option<String>,
    /// Time stamp after `;`, in RFC 3339 UTC.
    pub date: Option<String>,
}

/// Decoded headers of a message or an encapsulated message.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HeaderSummary {
    /// `Subject`, RFC 2047 decoded.
    pub subject: Option<String>,
    /// `Subject` as written, unfolded.
    pub subject_raw: Option<String>,
    /// `From` mailboxes.
    pub from: Vec<AddressRecord>,
    /// `From` as written, unfolded.
    pub from_raw: Option<String>,
    /// `Sender` mailbox.
    pub sender: Vec<AddressRecord>,
    /// `Sender` as written, unfolded.
    pub sender_raw: Option<String>,
    /// `To` mailboxes (all `To` fields).
    pub to: Vec<AddressRecord>,
    /// `To` as written, unfolded (several fields joined with `, `).
    pub to_raw: Option<String>,
    /// `Cc` mailboxes (all `Cc` fields).
    pub cc: Vec<AddressRecord>,
    /// `Cc` as written, unfolded.
    pub cc_raw: Option<String>,
    /// `Bcc` mailboxes (all `Bcc` fields).
    pub bcc: Vec<AddressRecord>,
    /// `Bcc` as written, unfolded.
    pub bcc_raw: Option<String>,
    /// `Reply-To` mailboxes.
    pub reply_to: Vec<AddressRecord>,
    /// `Reply-To` as written, unfolded.
    pub reply_to_raw: Option<String>,
    /// `Date` in RFC 3339 UTC, when it parses.
    pub date: Option<String>,
    /// `Date` as written, unfolded.
    pub date_raw: Option<String>,
    /// `Message-ID` without angle brackets.
    pub message_id: Option<String>,
    /// `In-Reply-To` message ids.
    pub in_reply_to: Vec<String>,
    /// `References` message ids.
    pub references: Vec<String>,
    /// `Received` hops, top (latest) first.
    pub received: Vec<ReceivedHop>,
    /// `Return-Path` address.
    pub return_path: Option<String>,
    /// `User-Agent`, RFC 2047 decoded.
    pub user_agent: Option<String>,
    /// `User-Agent` as written, unfolded.
    pub user_agent_raw: Option<String>,
    /// `X-Mailer`, RFC 2047 decoded.
    pub x_mailer: Option<String>,
    /// `X-Mailer` as written, unfolded.
    pub x_mailer_raw: Option<String>,
    /// `X-Originating-IP` (brackets kept as written).
    pub x_originating_ip: Option<String>,
    /// `MIME-Version`.
    pub mime_version: Option<String>,
    /// `Content-Type` of the message as `type/subtype`, lower case.
    pub content_type: Option<String>,
    /// All header fields in order, as written (bounded).
    pub headers: Vec<HeaderField>,
    /// Header fields present, including those beyond the listing bounds.
    pub header_count: usize,
}

/// Builds the summary of a header block; `raw` is the buffer the headers' offsets refer to.
pub(crate) fn summarize(
    headers: &[Header<'_>],
    raw: &[u8],
    limits: &MimeLimits,
    path: &str,
    problems: &mut Vec<MimeProblem>,
) -> HeaderSummary {
    let mut s = HeaderSummary {
        header_count: headers.len(),
        ..HeaderSummary::default()
    };
    let mut block_bytes = 0usize;
    let mut seen_singletons: Vec<&'static str> = Vec::new();
    let at = if path.is_empty() {
        "the message".to_string()
    } else {
        format!("the message in part {path}")
    };
    // Past the listing bounds, fields are no longer listed, but the named ones are still
    // decoded (clipped): what a reader sees must not hide behind padding.
    let mut listing = true;
    let clip_at = limits.max_header_block_bytes;
    for (index, h) in headers.iter().enumerate() {
        let field = field_bytes(h, raw);
        block_bytes += field.len();
        if listing && index >= limits.max_headers {
            listing = false;
            problems.push(MimeProblem::new(
                "mime_too_many_headers",
                format!(
                    "{at} has {} header fields; only the first {} were listed",
                    headers.len(),
                    limits.max_headers
                ),
            ));
        }
        if listing && block_bytes > limits.max_header_block_bytes {
            listing = false;
            problems.push(MimeProblem::new(
                "mime_header_block_too_large",
                format!(
                    "{at} has a header block over {} bytes; only the {} fields before that were listed",
                    limits.max_header_block_bytes, index
                ),
            ));
        }
        let (name, value_raw) = name_and_value(h, raw, clip_at);
        if std::str::from_utf8(field).is_err() {
            note_8bit(problems, &at, &name);
        }
        if listing {
            s.headers.push(HeaderField {
                name,
                value: value_raw.clone(),
            });
        }
        let unfolded = unfold(&value_raw);
        if let Some(single) = singleton(&h.name) {
            if seen_singletons.contains(&single) {
                problems.push(MimeProblem::new(
                    "mime_duplicate_header",
                    format!("{at} has more than one {single} field; the first is reported"),
                ));
                continue;
            }
            seen_singletons.push(single);
        }
        match &h.name {
            HeaderName::Subject => {
                // Decoded from the whole field, then clipped like the other decoded values.
                let whole = HeaderText::decode(field_body(h, raw));
                s.subject = Some(clip_to(
                    decode_unstructured(&unfold(whole.as_str())),
                    clip_at,
                ));
                s.subject_raw = Some(unfolded);
            }
            HeaderName::From => {
                s.from = field_addresses(h, raw, limits.max_headers);
                s.from_raw = Some(unfolded);
            }
            HeaderName::Sender => {
                s.sender = field_addresses(h, raw, limits.max_headers);
                s.sender_raw = Some(unfolded);
            }
            HeaderName::ReplyTo => {
                s.reply_to = field_addresses(h, raw, limits.max_headers);
                s.reply_to_raw = Some(unfolded);
            }
            HeaderName::To => {
                extend_bounded(
                    &mut s.to,
                    field_addresses(h, raw, limits.max_headers),
                    limits.max_headers,
                );
                join_raw(&mut s.to_raw, unfolded);
            }
            HeaderName::Cc => {
                extend_bounded(
                    &mut s.cc,
                    field_addresses(h, raw, limits.max_headers),
                    limits.max_headers,
                );
                join_raw(&mut s.cc_raw, unfolded);
            }
            HeaderName::Bcc => {
                extend_bounded(
                    &mut s.bcc,
                    field_addresses(h, raw, limits.max_headers),
                    limits.max_headers,
                );
                join_raw(&mut s.bcc_raw, unfolded);
            }
            HeaderName::Date => {
                s.date = match &h.value {
                    HeaderValue::DateTime(d) => rfc3339_utc(d),
                    _ => None,
                };
                if s.date.is_none() {
                    problems.push(MimeProblem::new(
                        "mime_bad_date",
                        format!("{at} has a Date that does not parse: {}", clip(&unfolded)),
                    ));
                }
                s.date_raw = Some(unfolded);
            }
            HeaderName::MessageId => {
                s.message_id = ids(&h.value)
                    .into_iter()
                    .next()
                    .map(|t| clip_to(t, clip_at));
            }
            HeaderName::InReplyTo => {
                extend_bounded(&mut s.in_reply_to, ids(&h.value), limits.max_headers);
            }
            HeaderName::References => {
                extend_bounded(&mut s.references, ids(&h.value), limits.max_headers);
            }
            HeaderName::Received if listing => s.received.push(received(&h.value, unfolded)),
            HeaderName::ReturnPath => {
                s.return_path = ids(&h.value)
                    .into_iter()
                    .next()
                    .or_else(|| Some(unfolded.trim().to_string()));
            }
            HeaderName::MimeVersion => s.mime_version = Some(unfolded.trim().to_string()),
            HeaderName::ContentType => {
                if let HeaderValue::ContentType(ct) = &h.value {
                    s.content_type = Some(type_name(ct.ctype(), ct.subtype()));
                }
            }
            HeaderName::Other(other) => {
                if other.eq_ignore_ascii_case("user-agent") {
                    s.user_agent = decode_text(&unfolded).map(|t| clip_to(t, clip_at));
                    s.user_agent_raw = Some(unfolded);
                } else if other.eq_ignore_ascii_case("x-mailer") {
                    s.x_mailer = decode_text(&unfolded).map(|t| clip_to(t, clip_at));
                    s.x_mailer_raw = Some(unfolded);
                } else if other.eq_ignore_ascii_case("x-originating-ip") {
                    s.x_originating_ip = Some(unfolded.trim().to_string());
                }
            }
            _ => {}
        }
    }
    s
}

/// Fields RFC 5322 allows once; a second copy is a classic way to show one sender to a filter
/// and another to the reader.
fn singleton(name: &HeaderName<'_>) -> Option<&'static str> {
    Some(match name {
        HeaderName::From => "From",
        HeaderName::Sender => "Sender",
        HeaderName::ReplyTo => "Reply-To",
        HeaderName::Subject => "Subject",
        HeaderName::Date => "Date",
        HeaderName::MessageId => "Message-ID",
        _ => return None,
    })
}

/// The bytes of a whole field, name to line end.
fn field_bytes<'r>(h: &Header<'_>, raw: &'r [u8]) -> &'r [u8] {
    raw.get(h.offset_field as usize..h.offset_end as usize)
        .unwrap_or_default()
}

/// The field body as written, whole.
fn field_body<'r>(h: &Header<'_>, raw: &'r [u8]) -> &'r [u8] {
    raw.get(h.offset_start as usize..h.offset_end as usize)
        .unwrap_or_default()
}

/// The field name and body as written, the body clipped to `clip_at` bytes.
fn name_and_value(h: &Header<'_>, raw: &[u8], clip_at: usize) -> (String, String) {
    let name_end = (h.offset_start as usize).saturating_sub(1);
    let name = raw
        .get(h.offset_field as usize..name_end)
        .map(|b| HeaderText::decode(b).as_str().trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| h.name.as_str().to_string());
    let value = raw
        .get(h.offset_start as usize..h.offset_end as usize)
        .unwrap_or_default();
    let value = HeaderText::decode(value.get(..utf8_cut(value, clip_at)).unwrap_or(value));
    let value = value.as_str().trim_start_matches([' ', '\t']);
    let value = value.trim_end_matches(['\r', '\n']);
    (name, value.to_string())
}

/// Where to cut `bytes` to at most `max`: never inside a UTF-8 sequence, so that clipping
/// valid text does not make it look like another charset.
fn utf8_cut(bytes: &[u8], max: usize) -> usize {
    let cut = bytes.len().min(max);
    let is_continuation = |i: usize| bytes.get(i).is_some_and(|&b| b & 0xC0 == 0x80);
    if !is_continuation(cut) {
        return cut;
    }
    // The lead byte of the sequence is at most three bytes back; without one the bytes are
    // not UTF-8 there and any cut will do.
    (cut.saturating_sub(3)..cut)
        .rev()
        .find(|&i| !is_continuation(i))
        .filter(|&i| bytes.get(i).is_some_and(|&b| b >= 0xC0))
        .unwrap_or(cut)
}

/// Header bytes read as text.
///
/// Raw 8-bit header bytes should be UTF-8 (RFC 6532). Old clients write their own code page
/// instead, most often Windows-1252, which gives every byte a character (ISO 8859-1 text
/// reads the same), so the text keeps its characters rather than U+FFFD replacements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderText<'a> {
    /// The bytes were UTF-8 (ASCII included).
    Utf8(&'a str),
    /// The bytes were not UTF-8 and were read as Windows-1252.
    Windows1252(String),
}

impl<'a> HeaderText<'a> {
    /// Reads header bytes: UTF-8 when they are, Windows-1252 otherwise.
    pub(crate) fn decode(bytes: &'a [u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => HeaderText::Utf8(text),
            Err(_) => {
                let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
                HeaderText::Windows1252(text.into_owned())
            }
        }
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            HeaderText::Utf8(text) => text,
            HeaderText::Windows1252(text) => text,
        }
    }

    /// Whether the bytes were not UTF-8.
    pub(crate) fn is_windows_1252(&self) -> bool {
        matches!(self, HeaderText::Windows1252(_))
    }
}

/// Records that `field` of `at` holds 8-bit bytes that are not UTF-8; once per message, as
/// `problems` is the message's list.
pub(crate) fn note_8bit(problems: &mut Vec<MimeProblem>, at: &str, field: &str) {
    if problems.iter().any(|p| p.kind == HEADER_8BIT_NOT_UTF8) {
        return;
    }
    problems.push(MimeProblem::new(
        HEADER_8BIT_NOT_UTF8,
        format!("{at} has 8-bit header bytes that are not UTF-8 (first in {field}); read as Windows-1252"),
    ));
}

/// The field's value parsed again from its body read by [`HeaderText`], for a field whose
/// bytes are not UTF-8 (the parser replaced them with U+FFFD); None when they are UTF-8.
fn reparsed<'b>(
    body: &[u8],
    buffer: &'b mut Vec<u8>,
    parse: fn(&mut MessageStream<'b>) -> HeaderValue<'b>,
) -> Option<HeaderValue<'b>> {
    let HeaderText::Windows1252(text) = HeaderText::decode(body) else {
        return None;
    };
    let mut bytes = text.into_bytes();
    // The parsers stop at the line end that closes the field.
    if !bytes.ends_with(b"\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    *buffer = bytes;
    let data: &'b [u8] = buffer;
    Some(parse(&mut MessageStream::new(data)))
}

/// RFC 5322 unfolding: a line break followed by white space is removed (the white space stays).
pub(crate) fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find(['\r', '\n']) {
        out.push_str(&rest[..i]);
        let after = rest[i..].trim_start_matches(['\r', '\n']);
        rest = after;
    }
    out.push_str(rest);
    out.trim().to_string()
}

/// Decodes RFC 2047 encoded words in an unfolded unstructured field body, keeping its white
/// space as written (RFC 5322 3.2.5 gives runs of blanks in unstructured text no special
/// meaning); only the blanks between two adjacent encoded words go (RFC 2047 6.2). A word
/// that does not decode (unknown charset, bad encoding) is kept as written.
pub(crate) fn decode_unstructured(unfolded: &str) -> String {
    if !unfolded.contains("=?") {
        return unfolded.to_string();
    }
    let mut out = String::with_capacity(unfolded.len());
    let mut rest = unfolded;
    let mut blanks = "";
    let mut after_encoded = false;
    while !rest.is_empty() {
        let word_start = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        if word_start > 0 {
            blanks = &rest[..word_start];
            rest = &rest[word_start..];
            continue;
        }
        let word_len = rest.find([' ', '\t']).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(word_len);
        rest = tail;
        let decoded = decode_encoded_words(word);
        if !(after_encoded && decoded.is_some()) {
            out.push_str(blanks);
        }
        blanks = "";
        after_encoded = decoded.is_some();
        match decoded {
            Some(text) => out.push_str(&text),
            None => out.push_str(word),
        }
    }
    out.push_str(blanks);
    out
}

/// Decodes a blank-free word made only of encoded words (`=?cs?B?..?=`, possibly several
/// written back to back, as some mailers do), or None when it is anything else.
fn decode_encoded_words(word: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = word;
    while !rest.is_empty() {
        let body = rest.strip_prefix("=?")?;
        let (charset, body) = body.split_once('?')?;
        let (encoding, body) = body.split_once('?')?;
        let end = body.find("?=")?;
        let text = &body[..end];
        rest = &body[end + 2..];
        let bytes = match encoding {
            "B" | "b" => {
                use base64::Engine;
                let config = base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
                base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, config)
                    .decode(text)
                    .ok()?
            }
            "Q" | "q" => q_decode(text),
            _ => return None,
        };
        // RFC 2231 allows a language after `*` in the charset name.
        let charset = charset.split('*').next().unwrap_or(charset);
        let decoder = mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes());
        let plain = ["utf-8", "utf8", "us-ascii", "ascii"];
        match decoder {
            Some(decode) => out.push_str(&decode(&bytes)),
            None if plain.iter().any(|p| charset.eq_ignore_ascii_case(p)) => {
                out.push_str(&String::from_utf8_lossy(&bytes))
            }
            None => return None,
        }
    }
    Some(out)
}

/// The Q encoding of RFC 2047 4.2: `_` is a space, `=XX` a byte; a bad escape stays as written.
fn q_decode(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let escaped = (c == b'=')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (c, escaped) {
            (_, Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'_', None) => {
                out.push(b' ');
                i += 1;
            }
            (c, None) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Decodes RFC 2047 encoded words in unstructured text (adjacent words are joined).
pub(crate) fn decode_text(raw: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(raw.len() + 2);
    bytes.extend_from_slice(raw.as_bytes());
    bytes.extend_from_slice(b"\r\n");
    match MessageStream::new(&bytes).parse_unstructured() {
        HeaderValue::Text(t) => Some(t.into_owned()),
        HeaderValue::TextList(l) => Some(l.join(" ")),
        _ => None,
    }
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

fn join_raw(slot: &mut Option<String>, more: String) {
    match slot {
        Some(s) => {
            s.push_str(", ");
            s.push_str(&more);
        }
        None => *slot = Some(more),
    }
}

/// Cuts a decoded value to at most `max` bytes, at a character boundary.
fn clip_to(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn extend_bounded<T>(list: &mut Vec<T>, more: Vec<T>, max: usize) {
    let room = max.saturating_sub(list.len());
    list.extend(more.into_iter().take(room));
}

/// A field shaped like Content-Type (Content-Disposition too) parsed again from its body
/// read by [`HeaderText`] when its bytes are not UTF-8; None when they are.
pub(crate) fn reparsed_content_type<'b>(
    h: &Header<'_>,
    raw: &[u8],
    buffer: &'b mut Vec<u8>,
) -> Option<ContentType<'b>> {
    match reparsed(
        field_body(h, raw),
        buffer,
        MessageStream::parse_content_type,
    )? {
        HeaderValue::ContentType(ct) => Some(ct),
        _ => None,
    }
}

/// The addresses of an address field, its display names read by [`HeaderText`].
fn field_addresses(h: &Header<'_>, raw: &[u8], max: usize) -> Vec<AddressRecord> {
    let mut buffer = Vec::new();
    match reparsed(
        field_body(h, raw),
        &mut buffer,
        MessageStream::parse_address,
    ) {
        Some(value) => addresses(&value, max),
        None => addresses(&h.value, max),
    }
}

fn addresses(v: &HeaderValue<'_>, max: usize) -> Vec<AddressRecord> {
    let mut list = all_addresses(v);
    list.truncate(max);
    list
}

fn all_addresses(v: &HeaderValue<'_>) -> Vec<AddressRecord> {
    let one = |a: &mail_parser::Addr<'_>, group: Option<&str>| AddressRecord {
        name: a.name.as_ref().map(|n| n.to_string()),
        address: a.address.as_ref().map(|n| n.to_string()),
        group: group.map(str::to_string),
    };
    match v {
        HeaderValue::Address(Address::List(list)) => list.iter().map(|a| one(a, None)).collect(),
        HeaderValue::Address(Address::Group(groups)) => groups
            .iter()
            .flat_map(|g| {
                let name = g.name.as_deref();
                if g.addresses.is_empty() {
                    // An empty group (`undisclosed-recipients:;`) still says something.
                    vec![AddressRecord {
                        name: None,
                        address: None,
                        group: name.map(str::to_string),
                    }]
                } else {
                    g.addresses.iter().map(|a| one(a, name)).collect()
                }
            })
            .collect(),
        HeaderValue::Text(t) => vec![AddressRecord {
            name: None,
            address: Some(t.to_string()),
            group: None,
        }],
        _ => Vec::new(),
    }
}

fn host(h: &Host<'_>) -> String {
    h.to_string()
}

fn received(v: &HeaderValue<'_>, raw: String) -> ReceivedHop {
    let mut hop = ReceivedHop {
        raw,
        ..ReceivedHop::default()
    };
    let HeaderValue::Received(r) = v else {
        return hop;
    };
    let r: &Received<'_> = r;
    hop.from = r
        .from
        .as_ref()
        .map(host)
        .or_else(|| r.helo.as_ref().map(host));
    hop.from_ip = r.from_ip.map(|ip| ip.to_string());
    hop.from_rdns = r.from_iprev.as_ref().map(|s| s.to_string());
    hop.by = r.by.as_ref().map(host);
    hop.with = r.with.map(|p| p.as_str().to_string());
    hop.id = r.id.as_ref().map(|s| s.to_string());
    hop.for_ = r.for_.as_ref().map(|s| s.to_string());
    hop.tls = match (r.tls_version, r.tls_cipher.as_ref()) {
        (Some(v), Some(c)) => Some(format!("{} {}", v.as_str(), c)),
        (Some(v), None) => Some(v.as_str().to_string()),
        (None, Some(c)) => Some(c.to_string()),
        (None, None) => None,
    };
    hop.date = r.date.as_ref().and_then(rfc3339_utc);
    hop
}

/// A parsed date as RFC 3339 in UTC, or `None` when its fields are out of range.
pub(crate) fn rfc3339_utc(d: &DateTime) -> Option<String> {
    if !d.is_valid() {
        return None;
    }
    Some(DateTime::from_timestamp(d.to_timestamp()).to_rfc3339())
}

/// `type/subtype` in lower case.
pub(crate) fn type_name(ctype: &str, subtype: Option<&str>) -> String {
    let mut s = ctype.to_ascii_lowercase();
    if let Some(sub) = subtype {
        s.push('/');
        s.push_str(&sub.to_ascii_lowercase());
    }
    s
}

/// At most 200 characters of a value, for anomaly details.
pub(crate) fn clip(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn summary(msg: &str) -> (HeaderSummary, Vec<MimeProblem>) {
        let parsed = MessageParser::default()
            .parse(msg.as_bytes())
            .expect("parses");
        let mut problems = Vec::new();
        let s = summarize(
            &parsed.parts[0].headers,
            msg.as_bytes(),
            &MimeLimits::default(),
            "",
            &mut problems,
        );
        (s, problems)
    }

    #[test]
    fn unfolds_and_decodes_encoded_words() {
        let (s, p) = summary(
            "Subject: =?UTF-8?B?w4lsw6h2ZQ==?=\r\n =?ISO-8859-1?Q?_caf=E9?= ok\r\nX-Mailer: =?utf-8?q?Sm=C3=B6rg?=\r\n\r\nbody",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.subject.as_deref(), Some("Élève café ok"));
        assert_eq!(
            s.subject_raw.as_deref(),
            Some("=?UTF-8?B?w4lsw6h2ZQ==?= =?ISO-8859-1?Q?_caf=E9?= ok")
        );
        assert_eq!(s.x_mailer.as_deref(), Some("Smörg"));
        assert_eq!(s.headers[0].name, "Subject");
        assert_eq!(
            s.headers[0].value,
            "=?UTF-8?B?w4lsw6h2ZQ==?=\r\n =?ISO-8859-1?Q?_caf=E9?= ok"
        );
    }

    fn summary_of_bytes(msg: &[u8], limits: &MimeLimits) -> (HeaderSummary, Vec<MimeProblem>) {
        let parsed = MessageParser::default().parse(msg).expect("parses");
        let mut problems = Vec::new();
        let s = summarize(&parsed.parts[0].headers, msg, limits, "", &mut problems);
        (s, problems)
    }

    #[test]
    fn header_bytes_that_are_not_utf8_read_as_windows_1252() {
        // An old client writes its code page raw: 0x92 is a right quote, 0xE9 an e acute.
        let (s, p) = summary_of_bytes(
            b"From: Ren\xe9 Dupont <rene@example.fr>\r\nSubject: See What\x92s Next\r\nX-Mailer: Outlook \xa9\r\n\r\nbody",
            &MimeLimits::default(),
        );
        assert_eq!(s.subject.as_deref(), Some("See What\u{2019}s Next"));
        assert_eq!(s.subject_raw.as_deref(), Some("See What\u{2019}s Next"));
        assert_eq!(s.headers[1].value, "See What\u{2019}s Next");
        assert_eq!(s.from[0].name.as_deref(), Some("Ren\u{e9} Dupont"));
        assert_eq!(s.from[0].address.as_deref(), Some("rene@example.fr"));
        assert_eq!(s.x_mailer.as_deref(), Some("Outlook \u{a9}"));
        // Three fields, one problem: once per message is enough to say what happened.
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].kind, HEADER_8BIT_NOT_UTF8);
        assert!(p[0].detail.contains("first in From"), "{}", p[0].detail);

        // UTF-8 (RFC 6532) is kept as it is and is no problem.
        let (s, p) = summary_of_bytes(
            "Subject: caf\u{e9} \u{2019}\r\n\r\n".as_bytes(),
            &MimeLimits::default(),
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.subject.as_deref(), Some("caf\u{e9} \u{2019}"));
    }

    #[test]
    fn clipping_never_makes_utf8_look_like_windows_1252() {
        let limits = MimeLimits {
            max_header_block_bytes: 12,
            ..MimeLimits::default()
        };
        // The clip at byte 12 falls inside the three bytes of U+2019.
        let (s, p) = summary_of_bytes("Subject: abcdefghij\u{2019}xyz\r\n\r\n".as_bytes(), &limits);
        assert!(p.iter().all(|p| p.kind != HEADER_8BIT_NOT_UTF8), "{p:?}");
        assert_eq!(s.subject_raw.as_deref(), Some("abcdefghij"));
        assert_eq!(utf8_cut("a\u{2019}".as_bytes(), 2), 1);
        assert_eq!(utf8_cut("a\u{2019}".as_bytes(), 4), 4);
        assert_eq!(utf8_cut(b"a\x92\x92", 2), 2);
        assert_eq!(utf8_cut(b"", 2), 0);
    }

    #[test]
    fn header_text_falls_back_only_when_needed() {
        assert_eq!(HeaderText::decode(b"plain"), HeaderText::Utf8("plain"));
        let utf8 = HeaderText::decode("\u{2019}".as_bytes());
        assert!(!utf8.is_windows_1252());
        let legacy = HeaderText::decode(b"\x80 \x92 \xff");
        assert!(legacy.is_windows_1252());
        assert_eq!(legacy.as_str(), "\u{20ac} \u{2019} \u{ff}");
        // A UTF-8 sequence cut short is not UTF-8 either: its bytes keep a character each.
        assert_eq!(HeaderText::decode(b"\xe2\x80").as_str(), "\u{e2}\u{20ac}");
    }

    #[test]
    fn subject_keeps_its_own_white_space() {
        let (s, _) = summary(
            "Subject: a    =?iso-8859-1?Q?caf=E9?= =?iso-8859-1?B?IG5vaXI=?=\r\n     z\r\n\r\n",
        );
        assert_eq!(s.subject.as_deref(), Some("a    café noir     z"));
        let (s, _) = summary("Subject: =?utf-8?q?a__?=  =?UTF-8?B?Yg==?==?utf-8?q?c?= d\r\n\r\n");
        assert_eq!(s.subject.as_deref(), Some("a  bc d"));
        // A charset nobody knows leaves the word as written.
        let (s, _) = summary("Subject: x =?x-unknown?q?y?=  z\r\n\r\n");
        assert_eq!(s.subject.as_deref(), Some("x =?x-unknown?q?y?=  z"));
    }

    #[test]
    fn address_lists_keep_quoted_commas_and_groups() {
        let (s, _) = summary(
            "From: \"Doe, John\" <john@example.com>\r\nTo: a@x.org, \"Smith, J. (Ops)\" <j@y.org>,\r\n =?utf-8?q?J=C3=BCrgen?= <jj@z.de>\r\nCc: undisclosed-recipients:;\r\n\r\n",
        );
        assert_eq!(
            s.from,
            vec![AddressRecord {
                name: Some("Doe, John".into()),
                address: Some("john@example.com".into()),
                group: None
            }]
        );
        let to: Vec<_> =
            s.to.iter()
                .map(|a| (a.name.clone(), a.address.clone()))
                .collect();
        assert_eq!(
            to,
            vec![
                (None, Some("a@x.org".into())),
                (Some("Smith, J. (Ops)".into()), Some("j@y.org".into())),
                (Some("Jürgen".into()), Some("jj@z.de".into())),
            ]
        );
        assert_eq!(s.cc.len(), 1);
        assert_eq!(s.cc[0].group.as_deref(), Some("undisclosed-recipients"));
    }

    #[test]
    fn received_chain_top_first_and_dates_in_utc() {
        let (s, p) = summary(
            "Received: from mx.example.org (mx.example.org [192.0.2.7])\r\n\tby mail.example.com (Postfix) with ESMTPS id 4AbC\r\n\tfor <bob@example.com>; Tue, 2 Jan 2024 10:00:05 +0100\r\nReceived: from [10.0.0.5] (helo=laptop)\r\n\tby mx.example.org with ESMTPA; Tue, 2 Jan 2024 09:59:59 +0100\r\nDate: Tue, 2 Jan 2024 09:59:50 +0100\r\nMessage-ID: <abc@example.org>\r\nReferences: <r1@x> <r2@y>\r\nReturn-Path: <bounce@example.org>\r\nX-Originating-IP: [10.0.0.5]\r\n\r\n",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.received.len(), 2);
        let top = &s.received[0];
        assert_eq!(top.from.as_deref(), Some("mx.example.org"));
        assert_eq!(top.from_ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(top.by.as_deref(), Some("mail.example.com"));
        assert_eq!(top.with.as_deref(), Some("ESMTPS"));
        assert_eq!(top.id.as_deref(), Some("4AbC"));
        assert_eq!(top.date.as_deref(), Some("2024-01-02T09:00:05Z"));
        assert!(top.raw.starts_with("from mx.example.org"));
        assert!(!top.raw.contains('\n'));
        assert_eq!(s.received[1].with.as_deref(), Some("ESMTPA"));
        assert_eq!(s.date.as_deref(), Some("2024-01-02T08:59:50Z"));
        assert_eq!(
            s.date_raw.as_deref(),
            Some("Tue, 2 Jan 2024 09:59:50 +0100")
        );
        assert_eq!(s.message_id.as_deref(), Some("abc@example.org"));
        assert_eq!(s.references, vec!["r1@x".to_string(), "r2@y".to_string()]);
        assert_eq!(s.return_path.as_deref(), Some("bounce@example.org"));
        assert_eq!(s.x_originating_ip.as_deref(), Some("[10.0.0.5]"));
    }

    #[test]
    fn duplicate_from_and_bad_date_are_problems() {
        let (s, p) =
            summary("From: a@good.example\r\nFrom: b@evil.example\r\nDate: yesterday-ish\r\n\r\n");
        assert_eq!(s.from[0].address.as_deref(), Some("a@good.example"));
        assert_eq!(s.headers.len(), 3);
        let kinds: Vec<_> = p.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, vec!["mime_duplicate_header", "mime_bad_date"]);
        assert_eq!(s.date, None);
        assert_eq!(s.date_raw.as_deref(), Some("yesterday-ish"));
    }

    #[test]
    fn header_limits_keep_what_came_before() {
        let msg = format!("A: 1\r\nB: 2\r\nSubject: {}\r\n\r\n", "x".repeat(1000));
        let parsed = MessageParser::default()
            .parse(msg.as_bytes())
            .expect("parses");
        let mut problems = Vec::new();
        let limits = MimeLimits {
            max_header_block_bytes: 100,
            ..MimeLimits::default()
        };
        let s = summarize(
            &parsed.parts[0].headers,
            msg.as_bytes(),
            &limits,
            "",
            &mut problems,
        );
        assert_eq!(s.headers.len(), 2);
        // Still decoded, clipped to the block size.
        assert_eq!(s.subject, Some("x".repeat(100)));
        assert_eq!(s.header_count, 3);
        assert_eq!(problems[0].kind, "mime_header_block_too_large");
    }
}
