//! POP3 server lines: status lines with RFC 2449/3206 response codes, SASL continuations,
//! and the one-line formats carried by replies (STAT, LIST and UIDL entries, APOP timestamp).

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{tag_no_case, take_till1, take_while1},
    character::complete::{char, digit1},
    combinator::{map_res, value},
    multi::separated_list1,
    sequence::{delimited, preceded},
};

/// Longest unique-id accepted in full (RFC 1939 allows 70 characters); longer ones are cut.
pub const MAX_UID_LEN: usize = 256;

/// A `+OK` or `-ERR` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusLine<'a> {
    /// True for `+OK`, false for `-ERR`.
    pub ok: bool,
    /// Everything after the indicator and its separator, verbatim (response code included).
    pub text: &'a str,
    /// The RFC 2449 response code inside the leading brackets, e.g. `SYS/TEMP`.
    pub resp_code: Option<&'a str>,
    /// Whether the indicator was written in upper case as the RFC requires.
    pub canonical: bool,
}

/// One line from the server, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerLine<'a> {
    /// A status line.
    Status(StatusLine<'a>),
    /// A SASL continuation (`+` SP payload, RFC 5034); the payload may be empty.
    Continuation(&'a str),
    /// Anything else (body lines, junk).
    Other,
}

fn indicator(input: &str) -> IResult<&str, bool> {
    alt((
        value(true, tag_no_case("+OK")),
        value(false, tag_no_case("-ERR")),
    ))
    .parse(input)
}

fn resp_level(input: &str) -> IResult<&str, &str> {
    take_while1(|c: char| c.is_ascii_graphic() && !matches!(c, '/' | '[' | ']')).parse(input)
}

fn resp_code(input: &str) -> IResult<&str, &str> {
    let (rest, code) = delimited(
        char('['),
        nom::combinator::recognize(separated_list1(char('/'), resp_level)),
        char(']'),
    )
    .parse(input)?;
    Ok((rest, code))
}

/// Parses the RFC 2449 response code at the start of a status text, e.g. `[IN-USE] locked`.
pub fn parse_resp_code(text: &str) -> Option<&str> {
    resp_code(text).ok().map(|(_, code)| code)
}

/// Classifies one server line (without its terminator).
pub fn parse_server_line(line: &str) -> ServerLine<'_> {
    if let Ok((rest, ok)) = indicator(line) {
        let text = match rest.chars().next() {
            None => Some(""),
            Some(' ') => Some(&rest[1..]),
            // `+OKAY` or `-ERRORS` are words, not indicators.
            Some(c) if c.is_ascii_alphanumeric() => None,
            Some(_) => Some(rest),
        };
        if let Some(text) = text {
            let indicator_len = line.len() - rest.len();
            let canonical = matches!(&line[..indicator_len], "+OK" | "-ERR");
            return ServerLine::Status(StatusLine {
                ok,
                text,
                resp_code: parse_resp_code(text),
                canonical,
            });
        }
    }
    match line.strip_prefix('+') {
        Some("") => ServerLine::Continuation(""),
        Some(rest) => match rest.strip_prefix(' ') {
            Some(payload) => ServerLine::Continuation(payload),
            None => ServerLine::Other,
        },
        None => ServerLine::Other,
    }
}

fn number(input: &str) -> IResult<&str, u64> {
    map_res(digit1, str::parse::<u64>).parse(input)
}

fn blanks(input: &str) -> IResult<&str, &str> {
    take_while1(|c| c == ' ' || c == '\t').parse(input)
}

fn number_pair(input: &str) -> IResult<&str, (u64, u64)> {
    (number, preceded(blanks, number)).parse(input)
}

fn word_end(rest: &str) -> bool {
    rest.is_empty() || rest.starts_with([' ', '\t'])
}

/// Parses a STAT reply text (`nn mm`): message count and mailbox size in octets.
pub fn parse_stat(text: &str) -> Option<(u64, u64)> {
    let (rest, pair) = number_pair(text.trim_start()).ok()?;
    word_end(rest).then_some(pair)
}

/// Parses a scan listing (`msg size`), from `LIST` lines and `LIST n` replies.
pub fn parse_scan_listing(line: &str) -> Option<(u64, u64)> {
    parse_stat(line)
}

/// Parses a unique-id listing (`msg uid`), from `UIDL` lines and `UIDL n` replies.
///
/// The uid is cut to [`MAX_UID_LEN`] characters; the flag says whether it was.
pub fn parse_uid_listing(line: &str) -> Option<(u64, &str, bool)> {
    let (rest, (n, uid)) = (
        number,
        preceded(blanks, take_till1(|c: char| c == ' ' || c == '\t')),
    )
        .parse(line.trim_start())
        .ok()?;
    if !word_end(rest) {
        return None;
    }
    let cut = uid.len() > MAX_UID_LEN;
    let uid = if cut {
        let mut end = MAX_UID_LEN;
        while !uid.is_char_boundary(end) {
            end -= 1;
        }
        &uid[..end]
    } else {
        uid
    };
    Some((n, uid, cut))
}

/// Finds the APOP timestamp (`<...>`, RFC 1939 section 7) in a greeting, brackets included.
pub fn apop_timestamp(greeting: &str) -> Option<&str> {
    let start = greeting.find('<')?;
    let len = greeting[start..].find('>')?;
    let stamp = &greeting[start..=start + len];
    let inner = &stamp[1..stamp.len() - 1];
    (!inner.is_empty() && !inner.contains(|c: char| c.is_whitespace() || c == '<')).then_some(stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(line: &str) -> StatusLine<'_> {
        match parse_server_line(line) {
            ServerLine::Status(s) => s,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn status_lines_with_and_without_text() {
        let s = status("+OK POP3 server ready");
        assert!(s.ok && s.canonical);
        assert_eq!(s.text, "POP3 server ready");
        assert_eq!(s.resp_code, None);
        let s = status("-ERR");
        assert!(!s.ok);
        assert_eq!(s.text, "");
        let s = status("+ok lower case");
        assert!(s.ok && !s.canonical);
        assert_eq!(s.text, "lower case");
        let s = status("+OK");
        assert_eq!(s.text, "");
        assert!(matches!(parse_server_line("+OKAY"), ServerLine::Other));
        assert!(matches!(parse_server_line("-ERRORS"), ServerLine::Other));
    }

    #[test]
    fn response_codes() {
        let cases = [
            ("-ERR [IN-USE] mailbox locked", Some("IN-USE")),
            ("-ERR [LOGIN-DELAY] wait", Some("LOGIN-DELAY")),
            ("-ERR [AUTH] bad password", Some("AUTH")),
            ("-ERR [SYS/TEMP] try later", Some("SYS/TEMP")),
            ("-ERR [SYS/PERM] gone", Some("SYS/PERM")),
            ("+OK [XYZ/ABC/DEF]", Some("XYZ/ABC/DEF")),
            ("-ERR [] empty", None),
            ("-ERR [SYS/] half", None),
            ("-ERR [unterminated", None),
            ("-ERR no code [IN-USE]", None),
        ];
        for (line, code) in cases {
            assert_eq!(status(line).resp_code, code, "{line}");
        }
        // The text keeps the code verbatim.
        assert_eq!(status("-ERR [IN-USE] x").text, "[IN-USE] x");
    }

    #[test]
    fn continuations() {
        assert_eq!(parse_server_line("+ "), ServerLine::Continuation(""));
        assert_eq!(parse_server_line("+"), ServerLine::Continuation(""));
        assert_eq!(
            parse_server_line("+ VXNlcm5hbWU6"),
            ServerLine::Continuation("VXNlcm5hbWU6")
        );
        assert_eq!(parse_server_line("+x"), ServerLine::Other);
        assert_eq!(parse_server_line("1 200"), ServerLine::Other);
        assert_eq!(parse_server_line(""), ServerLine::Other);
    }

    #[test]
    fn listings() {
        assert_eq!(parse_stat("2 320"), Some((2, 320)));
        assert_eq!(parse_stat("2 320 extra words"), Some((2, 320)));
        assert_eq!(parse_stat("mailbox has 2"), None);
        assert_eq!(parse_stat("2"), None);
        assert_eq!(parse_stat("2 32x"), None);
        assert_eq!(parse_scan_listing("10 4711"), Some((10, 4711)));
        assert_eq!(
            parse_uid_listing("1 whqtswO00WBw418f9t5JxYwZ"),
            Some((1, "whqtswO00WBw418f9t5JxYwZ", false))
        );
        assert_eq!(parse_uid_listing("1"), None);
        let long = format!("3 {}", "u".repeat(300));
        let (n, uid, cut) = parse_uid_listing(&long).unwrap();
        assert_eq!((n, uid.len(), cut), (3, MAX_UID_LEN, true));
    }

    #[test]
    fn apop_timestamps() {
        assert_eq!(
            apop_timestamp("POP3 server ready <1896.697170952@dbc.mtview.ca.us>"),
            Some("<1896.697170952@dbc.mtview.ca.us>")
        );
        assert_eq!(apop_timestamp("POP3 server ready"), None);
        assert_eq!(apop_timestamp("a <> b"), None);
        assert_eq!(apop_timestamp("a <x y> b"), None);
        assert_eq!(apop_timestamp("a <unterminated"), None);
    }
}
