//! Server reply lines (RFC 5321 section 4.2), enhanced status codes (RFC 3463, RFC 2034) and
//! the EHLO capability list.

use nom::branch::alt;
use nom::bytes::complete::take_while_m_n;
use nom::character::complete::char;
use nom::combinator::{eof, map, value};
use nom::{IResult, Parser};
use std::fmt;

/// One reply line: `250-text` (more lines follow), `250 text` or a bare `250`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    /// The three-digit code.
    pub code: u16,
    /// Whether this is a continuation line (`-` after the code).
    pub more: bool,
    /// The text after the separator.
    pub text: &'a str,
}

fn code(i: &str) -> IResult<&str, u16> {
    let (rest, digits) = take_while_m_n(3, 3, |c: char| c.is_ascii_digit()).parse(i)?;
    // First digit 2-5 per RFC 5321 (1yz is unused in SMTP); the others are free.
    let first = digits.as_bytes().first().copied().unwrap_or(b'0');
    if !(b'2'..=b'5').contains(&first) {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    let n = digits
        .parse::<u16>()
        .map_err(|_| nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Digit)))?;
    Ok((rest, n))
}

/// Parses a reply line; `None` when it does not start with a reply code and a separator.
pub fn parse_reply_line(line: &str) -> Option<ReplyLine<'_>> {
    let separator = alt((
        map(eof, |_| false),
        value(true, char('-')),
        value(false, char(' ')),
    ));
    let (text, (code, more)) = (code, separator).parse(line).ok()?;
    Some(ReplyLine { code, more, text })
}

/// An RFC 3463 enhanced status code, `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject (0-999).
    pub subject: u16,
    /// The detail (0-999).
    pub detail: u16,
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

fn number_1_to_3(i: &str) -> IResult<&str, u16> {
    let (rest, digits) = take_while_m_n(1, 3, |c: char| c.is_ascii_digit()).parse(i)?;
    let n = digits
        .parse::<u16>()
        .map_err(|_| nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Digit)))?;
    Ok((rest, n))
}

fn enhanced_code(i: &str) -> IResult<&str, EnhancedCode> {
    let class = alt((
        value(2u8, char('2')),
        value(4u8, char('4')),
        value(5u8, char('5')),
    ));
    let (rest, (class, _, subject, _, detail)) =
        (class, char('.'), number_1_to_3, char('.'), number_1_to_3).parse(i)?;
    Ok((
        rest,
        EnhancedCode {
            class,
            subject,
            detail,
        },
    ))
}

/// The enhanced status code at the start of a reply's text, if it agrees with the reply code.
///
/// RFC 2034 requires the class to equal the reply's first digit; a code that disagrees is
/// taken as ordinary text.
pub fn parse_enhanced(reply_code: u16, text: &str) -> Option<EnhancedCode> {
    let (after, code) = enhanced_code(text).ok()?;
    let ends_cleanly = after.is_empty() || after.starts_with(' ');
    (ends_cleanly && u16::from(code.class) == reply_code / 100).then_some(code)
}

/// One EHLO keyword line, interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability<'a> {
    /// RFC 2920.
    Pipelining,
    /// RFC 3207.
    Starttls,
    /// RFC 3030 BDAT.
    Chunking,
    /// RFC 6152.
    EightBitMime,
    /// RFC 3030.
    BinaryMime,
    /// RFC 6531.
    SmtpUtf8,
    /// RFC 3461.
    Dsn,
    /// RFC 2034.
    EnhancedStatusCodes,
    /// RFC 1870, with the fixed limit if given (0 means none).
    Size(Option<u64>),
    /// RFC 4954 (or the pre-standard `AUTH=` form), with the mechanisms offered.
    Auth(Vec<&'a str>),
    /// Any other keyword.
    Other(&'a str),
}

/// Interprets one EHLO keyword line (`KEYWORD [params]`).
pub fn parse_capability(line: &str) -> Capability<'_> {
    let line = line.trim();
    // `AUTH=LOGIN PLAIN` is the pre-RFC form some servers still send for old clients.
    let (keyword, params) = match line.find([' ', '=']) {
        Some(i) => (&line[..i], line[i + 1..].trim()),
        None => (line, ""),
    };
    match keyword.to_ascii_uppercase().as_str() {
        "PIPELINING" => Capability::Pipelining,
        "STARTTLS" => Capability::Starttls,
        "CHUNKING" => Capability::Chunking,
        "8BITMIME" => Capability::EightBitMime,
        "BINARYMIME" => Capability::BinaryMime,
        "SMTPUTF8" => Capability::SmtpUtf8,
        "DSN" => Capability::Dsn,
        "ENHANCEDSTATUSCODES" => Capability::EnhancedStatusCodes,
        "SIZE" => Capability::Size(params.split(' ').next().and_then(|n| n.parse().ok())),
        "AUTH" => Capability::Auth(params.split([' ', '=']).filter(|m| !m.is_empty()).collect()),
        _ => Capability::Other(keyword),
    }
}

/// What an EHLO reply offered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The keyword lines as sent (every line after the first).
    pub raw: Vec<String>,
    /// PIPELINING.
    pub pipelining: bool,
    /// STARTTLS.
    pub starttls: bool,
    /// CHUNKING.
    pub chunking: bool,
    /// 8BITMIME.
    pub eightbitmime: bool,
    /// BINARYMIME.
    pub binarymime: bool,
    /// SMTPUTF8.
    pub smtputf8: bool,
    /// DSN.
    pub dsn: bool,
    /// ENHANCEDSTATUSCODES.
    pub enhanced_status_codes: bool,
    /// SIZE limit, if announced with a number.
    pub size_limit: Option<u64>,
    /// AUTH mechanisms offered, upper-cased, without duplicates, in order.
    pub auth_mechanisms: Vec<String>,
}

/// Interprets the lines of an EHLO reply after the first (which greets with the domain).
pub fn parse_capabilities<S: AsRef<str>>(keyword_lines: &[S]) -> Capabilities {
    let mut caps = Capabilities::default();
    for line in keyword_lines {
        let line = line.as_ref();
        caps.raw.push(line.to_string());
        match parse_capability(line) {
            Capability::Pipelining => caps.pipelining = true,
            Capability::Starttls => caps.starttls = true,
            Capability::Chunking => caps.chunking = true,
            Capability::EightBitMime => caps.eightbitmime = true,
            Capability::BinaryMime => caps.binarymime = true,
            Capability::SmtpUtf8 => caps.smtputf8 = true,
            Capability::Dsn => caps.dsn = true,
            Capability::EnhancedStatusCodes => caps.enhanced_status_codes = true,
            Capability::Size(n) => caps.size_limit = n.or(caps.size_limit),
            Capability::Auth(mechs) => {
                for m in mechs {
                    let m = m.to_ascii_uppercase();
                    if !caps.auth_mechanisms.contains(&m) {
                        caps.auth_mechanisms.push(m);
                    }
                }
            }
            Capability::Other(_) => {}
        }
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reply_lines() {
        assert_eq!(
            parse_reply_line("250-PIPELINING"),
            Some(ReplyLine {
                code: 250,
                more: true,
                text: "PIPELINING"
            })
        );
        assert_eq!(
            parse_reply_line("221 2.0.0 Bye"),
            Some(ReplyLine {
                code: 221,
                more: false,
                text: "2.0.0 Bye"
            })
        );
        assert_eq!(
            parse_reply_line("354"),
            Some(ReplyLine {
                code: 354,
                more: false,
                text: ""
            })
        );
        assert_eq!(
            parse_reply_line("334 "),
            Some(ReplyLine {
                code: 334,
                more: false,
                text: ""
            })
        );
        assert!(parse_reply_line("25 ok").is_none());
        assert!(parse_reply_line("2500 ok").is_none());
        assert!(parse_reply_line("250ok").is_none());
        assert!(parse_reply_line("150 opening").is_none());
        assert!(parse_reply_line("HTTP/1.1 200 OK").is_none());
        assert!(parse_reply_line("").is_none());
    }

    #[test]
    fn parses_enhanced_codes() {
        assert_eq!(
            parse_enhanced(535, "5.7.8 Authentication credentials invalid"),
            Some(EnhancedCode {
                class: 5,
                subject: 7,
                detail: 8
            })
        );
        assert_eq!(
            parse_enhanced(250, "2.1.0").map(|c| c.to_string()),
            Some("2.1.0".into())
        );
        assert_eq!(
            parse_enhanced(452, "4.5.3 Too many").map(|c| c.to_string()),
            Some("4.5.3".into())
        );
        // Class must agree with the reply code.
        assert_eq!(parse_enhanced(250, "5.0.0 odd"), None);
        assert_eq!(parse_enhanced(250, "2.0 Ok"), None);
        assert_eq!(parse_enhanced(250, "2.0.0Ok"), None);
        assert_eq!(parse_enhanced(250, "2.1000.0 Ok"), None);
        assert_eq!(parse_enhanced(250, "Ok 2.0.0"), None);
        assert_eq!(parse_enhanced(250, "3.0.0 x"), None);
    }

    #[test]
    fn parses_capabilities() {
        let lines = [
            "PIPELINING",
            "SIZE 10240000",
            "ETRN",
            "STARTTLS",
            "AUTH PLAIN LOGIN cram-md5",
            "AUTH=PLAIN LOGIN",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
        ];
        let c = parse_capabilities(&lines);
        assert!(c.pipelining && c.starttls && c.chunking && c.eightbitmime);
        assert!(c.smtputf8 && c.dsn && c.enhanced_status_codes && !c.binarymime);
        assert_eq!(c.size_limit, Some(10_240_000));
        assert_eq!(c.auth_mechanisms, vec!["PLAIN", "LOGIN", "CRAM-MD5"]);
        assert_eq!(c.raw.len(), lines.len());
        assert_eq!(c.raw[1], "SIZE 10240000");
    }

    #[test]
    fn capability_details() {
        assert_eq!(parse_capability("SIZE"), Capability::Size(None));
        assert_eq!(parse_capability("size 0"), Capability::Size(Some(0)));
        assert_eq!(parse_capability("SIZE lots"), Capability::Size(None));
        assert_eq!(parse_capability("AUTH"), Capability::Auth(vec![]));
        assert_eq!(
            parse_capability("X-EXPS GSSAPI"),
            Capability::Other("X-EXPS")
        );
        assert_eq!(parse_capability(" starttls "), Capability::Starttls);
    }
}
