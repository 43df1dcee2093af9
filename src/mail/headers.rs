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
                s.subject = Some(clip_to(unstructured(h, raw), clip_at));
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
                    s.user_agent = Some(clip_to(decode_words(&unfolded).into_owned(), clip_at));
                    s.user_agent_raw = Some(unfolded);
                } else if other.eq_ignore_ascii_case("x-mailer") {
                    s.x_mailer = Some(clip_to(decode_words(&unfolded).into_owned(), clip_at));
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
/// bytes are not UTF-8 (the parser replaced them with U+FFFD) or that holds encoded words
/// (marked first, see [`protect_words`]; their texts are returned to restore them); None when
/// the parser's own reading stands.
fn reparsed<'b, 'r>(
    body: &'r [u8],
    buffer: &'b mut Vec<u8>,
    parse: fn(&mut MessageStream<'b>) -> HeaderValue<'b>,
    words: &mut Vec<String>,
) -> Option<HeaderValue<'b>> {
    let text = HeaderText::decode(body);
    let protected = protect_words(text.as_str())
        .map(|(marked, found)| (marked, found.into_iter().map(str::to_string).collect()));
    let mut bytes = match (protected, text) {
        (Some((marked, found)), _) => {
            *words = found;
            marked.into_bytes()
        }
        (None, HeaderText::Windows1252(t)) => t.into_bytes(),
        (None, HeaderText::Utf8(_)) => return None,
    };
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

// RFC 2047 encoded words: one rule for every header.
//
// RFC 2047 (section 5) wants an encoded word separated from other text by white space (or, in
// a phrase, to be a whole word), and never inside a quoted string. Real mailers glue them to
// text (`Subject: Re:=?UTF-8?Q?...?=`), put them in quotes (`"=?UTF-8?B?...?=" <a@b>`,
// `filename="=?UTF-8?Q?...?=.pdf"`), and the clients that read mail (Thunderbird, Outlook,
// mail-parser) decode them all the same. mailsift shows what the reader sees, so:
//
// - every syntactically valid encoded word is decoded wherever it appears in header text:
//   unstructured fields (Subject, Content-Description, User-Agent, X-Mailer), display names
//   (quoted or not) and MIME parameter values (file names, after RFC 2231 joining), whether
//   white space separates it from the text around it or not;
// - the white space between two encoded words that follow each other is dropped (RFC 2047
//   6.2); all other text and white space is kept as written, nothing is added;
// - a word that is not valid (no `?=` end, white space or `?` inside, an encoding other than
//   B or Q, bad base64, a charset no decoder knows) is left as written;
// - addresses, message ids and the `boundary` parameter are never decoded (not text).
//
// The field as written stays in the `*_raw` values and in `headers`.

/// Longest charset name looked at in an encoded word.
const MAX_CHARSET: usize = 64;

/// The valid encoded word at the start of `s` (which starts with `=?`): its decoded text and
/// its length in bytes.
fn encoded_word_at(s: &str) -> Option<(String, usize)> {
    let body = s.strip_prefix("=?")?;
    let q1 = body.find('?')?;
    let charset = &body[..q1];
    if charset.is_empty()
        || charset.len() > MAX_CHARSET
        || !charset.bytes().all(|b| b.is_ascii_graphic() && b != b'=')
    {
        return None;
    }
    let rest = &body[q1 + 1..];
    let encoding = rest.as_bytes().first().copied()?;
    let rest = rest.get(1..)?.strip_prefix('?')?;
    let end = rest.find('?')?;
    if !rest[end..].starts_with("?=") {
        return None;
    }
    let text = &rest[..end];
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let bytes = match encoding {
        b'B' | b'b' => {
            use base64::Engine;
            let config = base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
            base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, config)
                .decode(text)
                .ok()?
        }
        b'Q' | b'q' => q_decode(text),
        _ => return None,
    };
    // RFC 2231 allows a language after `*` in the charset name.
    let charset = charset.split('*').next().unwrap_or(charset);
    let decoder = mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes());
    let plain = ["utf-8", "utf8", "us-ascii", "ascii"];
    let decoded = match decoder {
        Some(decode) => decode(&bytes),
        None if plain.iter().any(|p| charset.eq_ignore_ascii_case(p)) => {
            String::from_utf8_lossy(&bytes).into_owned()
        }
        None => return None,
    };
    let len = 2 + q1 + 1 + 2 + end + 2;
    Some((decoded, len))
}

/// Header text with its RFC 2047 encoded words decoded by the rule above (unfolded text in,
/// the same text with each valid word replaced by what it encodes).
pub(crate) fn decode_words(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("=?") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    // Text from `copied` on is not yet in `out`; `after_word` is where the last decoded word
    // ended, if it ended there.
    let mut copied = 0;
    let mut after_word: Option<usize> = None;
    let mut search = 0;
    while let Some(found) = text[search..].find("=?") {
        let at = search + found;
        let Some((decoded, len)) = encoded_word_at(&text[at..]) else {
            search = at + 2;
            continue;
        };
        let between = &text[copied..at];
        let adjacent = after_word == Some(copied) && between.chars().all(|c| c == ' ' || c == '\t');
        if !adjacent {
            out.push_str(between);
        }
        out.push_str(&decoded);
        copied = at + len;
        after_word = Some(copied);
        search = copied;
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

/// An unstructured field's body as a reader sees it: read as [`HeaderText`], unfolded,
/// encoded words decoded.
pub(crate) fn unstructured(h: &Header<'_>, raw: &[u8]) -> String {
    let whole = HeaderText::decode(field_body(h, raw));
    decode_words(&unfold(whole.as_str())).into_owned()
}

/// Marks the encoded words of a structured field so that the field's parser passes them
/// through untouched (it would decode some by rules of its own and not others): each valid
/// word, and each other `=?`, becomes `U+FDD0 n U+FDD1`, a noncharacter pair no mailer writes.
/// None when the text has no `=?`, or already holds the markers.
fn protect_words(text: &str) -> Option<(String, Vec<&str>)> {
    if !text.contains("=?") || text.contains(['\u{fdd0}', '\u{fdd1}']) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut words = Vec::new();
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("=?") {
        let at = search + found;
        let len = encoded_word_at(&text[at..]).map_or(2, |(_, len)| len);
        out.push_str(&text[copied..at]);
        out.push('\u{fdd0}');
        out.push_str(&words.len().to_string());
        out.push('\u{fdd1}');
        words.push(&text[at..at + len]);
        copied = at + len;
        search = copied;
    }
    out.push_str(&text[copied..]);
    Some((out, words))
}

/// Puts the encoded words marked by [`protect_words`] back as written.
fn restore_words(text: &str, words: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('\u{fdd0}') {
        out.push_str(&rest[..start]);
        let after = &rest[start + '\u{fdd0}'.len_utf8()..];
        let word = after.find('\u{fdd1}').and_then(|end| {
            let n: usize = after[..end].parse().ok()?;
            Some((words.get(n)?, end))
        });
        match word {
            Some((w, end)) => {
                out.push_str(w);
                rest = &after[end + '\u{fdd1}'.len_utf8()..];
            }
            None => {
                out.push('\u{fdd0}');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Restored and decoded: what a display name or parameter value reads as.
fn restored_text(text: &str, words: &[&str]) -> String {
    decode_words(&restore_words(text, words)).into_owned()
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
    let mut words = Vec::new();
    let HeaderValue::ContentType(mut ct) = reparsed(
        field_body(h, raw),
        buffer,
        MessageStream::parse_content_type,
        &mut words,
    )?
    else {
        return None;
    };
    if !words.is_empty() {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        for a in ct.attributes.iter_mut().flatten() {
            // A boundary is matched against body lines as written: never decoded.
            a.value = if a.name.eq_ignore_ascii_case("boundary") {
                restore_words(&a.value, &words).into()
            } else {
                restored_text(&a.value, &words).into()
            };
        }
    }
    Some(ct)
}

/// The addresses of an address field, its display names read by [`HeaderText`].
fn field_addresses(h: &Header<'_>, raw: &[u8], max: usize) -> Vec<AddressRecord> {
    let mut buffer = Vec::new();
    let mut words = Vec::new();
    let mut list = match reparsed(
        field_body(h, raw),
        &mut buffer,
        MessageStream::parse_address,
        &mut words,
    ) {
        Some(value) => addresses(&value, max),
        None => addresses(&h.value, max),
    };
    if !words.is_empty() {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        for a in &mut list {
            // Names are text; an address is not, and keeps what was written.
            a.name = a.name.as_deref().map(|n| restored_text(n, &words));
            a.group = a.group.as_deref().map(|n| restored_text(n, &words));
            a.address = a.address.as_deref().map(|n| restore_words(n, &words));
        }
    }
    list
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

    // ----- encoded words: one rule in every header ----------------------------------------

    #[test]
    fn encoded_words_glued_to_text_are_decoded_and_nothing_is_added() {
        assert_eq!(decode_words("abc:=?UTF-8?Q?caf=C3=A9?="), "abc:café");
        assert_eq!(decode_words("Re:=?UTF-8?B?w6l0w6k=?=!"), "Re:été!");
        assert_eq!(decode_words("x=?utf-8?q?a_b?=y"), "xa by");
        assert_eq!(decode_words("(=?iso-8859-1?q?caf=E9?=)"), "(café)");
        // White space that is not between two encoded words stays as written.
        assert_eq!(decode_words("a  =?utf-8?q?b?=  c"), "a  b  c");
    }

    #[test]
    fn white_space_between_adjacent_encoded_words_is_dropped() {
        assert_eq!(decode_words("=?utf-8?q?a?= =?utf-8?q?b?="), "ab");
        assert_eq!(
            decode_words("=?utf-8?q?a?= \t =?utf-8?q?b?=c =?utf-8?q?d?="),
            "abc d"
        );
        assert_eq!(decode_words("=?utf-8?q?a?==?utf-8?q?b?="), "ab");
        // An encoded space is text, not white space between words.
        assert_eq!(decode_words("=?utf-8?q?a_?= =?utf-8?q?b?="), "a b");
        // Something else between them keeps the white space.
        assert_eq!(decode_words("=?utf-8?q?a?= - =?utf-8?q?b?="), "a - b");
    }

    #[test]
    fn malformed_encoded_words_are_left_alone() {
        for text in [
            "=?utf-8?q?no end",
            "=?utf-8?q?a b?=",
            "=??q?a?=",
            "=?utf-8?x?a?=",
            "=?utf-8?b?!!!?=",
            "=?x-unknown?q?y?=",
            "=?utf-8?q?caf\u{e9}?=",
            "=?utf-8?q?",
            "=?",
        ] {
            assert_eq!(decode_words(text), text, "{text:?}");
        }
        // A bad word does not stop the next good one, glued or not.
        assert_eq!(
            decode_words("=?utf-8?x?a?= =?utf-8?q?b?=x=?bad"),
            "=?utf-8?x?a?= bx=?bad"
        );
    }

    #[test]
    fn encoded_word_charsets() {
        assert_eq!(decode_words("=?ISO-8859-1?Q?caf=E9?="), "café");
        assert_eq!(
            decode_words("=?windows-1252?Q?=93hi=94?="),
            "\u{201c}hi\u{201d}"
        );
        assert_eq!(decode_words("=?KOI8-R?B?8NLJ18XU?="), "Привет");
        assert_eq!(decode_words("=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?="), "日本語");
        assert_eq!(decode_words("=?us-ascii?q?plain?="), "plain");
        // RFC 2231 language suffix on the charset.
        assert_eq!(decode_words("=?utf-8*fr?q?caf=C3=A9?="), "café");
    }

    #[test]
    fn every_header_follows_the_same_rule() {
        let (s, p) = summary(concat!(
            "From: abc=?UTF-8?Q?caf=C3=A9?= <a@x.org>, \"x=?UTF-8?Q?caf=C3=A9?=\" <b@x.org>,\r\n",
            " =?UTF-8?Q?a?= =?UTF-8?Q?b?= <c@x.org>\r\n",
            "Subject: abc:=?UTF-8?Q?caf=C3=A9?= =?UTF-8?Q?!?=  ok\r\n",
            "X-Mailer: v1=?UTF-8?Q?caf=C3=A9?=\r\n\r\nbody",
        ));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.subject.as_deref(), Some("abc:café!  ok"));
        assert_eq!(s.x_mailer.as_deref(), Some("v1café"));
        let names: Vec<Option<&str>> = s.from.iter().map(|a| a.name.as_deref()).collect();
        assert_eq!(names, [Some("abccafé"), Some("xcafé"), Some("ab")]);
        assert_eq!(s.from[2].address.as_deref(), Some("c@x.org"));
        assert_eq!(
            s.subject_raw.as_deref(),
            Some("abc:=?UTF-8?Q?caf=C3=A9?= =?UTF-8?Q?!?=  ok")
        );
    }

    #[test]
    fn file_names_and_descriptions_follow_the_same_rule() {
        let msg = concat!(
            "Content-Type: multipart/mixed; boundary=\"=?b?q?x?=\"\r\n\r\n",
            "--=?b?q?x?=\r\nContent-Type: text/plain; name=\"abc=?UTF-8?Q?caf=C3=A9?=.txt\"\r\n",
            "Content-Description: d:=?UTF-8?Q?caf=C3=A9?=\r\n",
            "Content-Disposition: attachment; filename=\"=?UTF-8?Q?caf=C3=A9?= =?UTF-8?Q?x?=.txt\"\r\n",
            "\r\nhi\r\n",
            "--=?b?q?x?=\r\nContent-Type: text/plain; name==?UTF-8?Q?caf=C3=A9?=.txt\r\n\r\nhi\r\n",
            "--=?b?q?x?=\r\nContent-Type: text/plain\r\n",
            "Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC=3F.txt\r\n\r\nhi\r\n",
            "--=?b?q?x?=\r\nContent-Type: text/plain\r\n",
            "Content-Disposition: attachment; filename=\"=?utf-8?q?a b?=.txt\"\r\n\r\nhi\r\n",
            "--=?b?q?x?=--\r\n",
        );
        let out = crate::mail::decode_message(
            msg.as_bytes(),
            true,
            &crate::mail::StreamOptions::new(MimeLimits::default()),
        );
        let mime = out.mime.expect("decoded");
        let part = |path: &str| mime.parts.iter().find(|p| p.path == path).expect(path);
        // The boundary is structure: never decoded, and the parts are found with it.
        assert_eq!(
            part("0").params.get("boundary").map(String::as_str),
            Some("=?b?q?x?=")
        );
        assert_eq!(mime.parts.len(), 5);
        assert_eq!(part("1").filename.as_deref(), Some("caféx.txt"));
        assert_eq!(
            part("1").params.get("name").map(String::as_str),
            Some("abccafé.txt")
        );
        assert_eq!(part("1").content_description.as_deref(), Some("d:café"));
        assert_eq!(part("2").filename.as_deref(), Some("café.txt"));
        // RFC 2231: percent-decoded, and what it decodes to is not read again as a word.
        assert_eq!(part("3").filename.as_deref(), Some("€=3F.txt"));
        // Malformed: as written.
        assert_eq!(part("4").filename.as_deref(), Some("=?utf-8?q?a b?=.txt"));
    }
}
