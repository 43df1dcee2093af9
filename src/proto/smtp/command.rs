//! Client command lines: RFC 5321 section 4.1 plus the ESMTP verbs and parameters mailsift follows
//! (RFC 1870 SIZE, 6152 8BITMIME, 3030 CHUNKING/BINARYMIME, 6531 SMTPUTF8, 4954 AUTH, 3461 DSN).
//!
//! The parsers are lenient where real clients are sloppy (no angle brackets, a space after the
//! colon, a missing colon) and report each leniency as a flag, so the dissector can keep the
//! command and still note the anomaly.

use nom::branch::alt;
use nom::bytes::complete::{tag_no_case, take_while, take_while1};
use nom::character::complete::{char, digit1};
use nom::combinator::{eof, opt};
use nom::{IResult, Parser};

/// Longest verb token taken for a word; longer first tokens are malformed.
const MAX_VERB_LEN: usize = 32;

/// An SMTP command verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `HELO domain` (RFC 5321).
    Helo,
    /// `EHLO domain` (RFC 5321).
    Ehlo,
    /// `MAIL FROM:<path> [params]`.
    Mail,
    /// `RCPT TO:<path> [params]`.
    Rcpt,
    /// `DATA`: the body follows a 354 reply.
    Data,
    /// `BDAT size [LAST]` (RFC 3030): `size` bytes follow at once.
    Bdat,
    /// `RSET`.
    Rset,
    /// `VRFY string`.
    Vrfy,
    /// `EXPN string`.
    Expn,
    /// `HELP [string]`.
    Help,
    /// `NOOP [string]`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `STARTTLS` (RFC 3207).
    Starttls,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth,
    /// `ETRN node` (RFC 1985).
    Etrn,
    /// Any other verb.
    Unknown,
}

const KNOWN_VERBS: [(&str, Verb); 15] = [
    ("HELO", Verb::Helo),
    ("EHLO", Verb::Ehlo),
    ("MAIL", Verb::Mail),
    ("RCPT", Verb::Rcpt),
    ("DATA", Verb::Data),
    ("BDAT", Verb::Bdat),
    ("RSET", Verb::Rset),
    ("VRFY", Verb::Vrfy),
    ("EXPN", Verb::Expn),
    ("HELP", Verb::Help),
    ("NOOP", Verb::Noop),
    ("QUIT", Verb::Quit),
    ("STARTTLS", Verb::Starttls),
    ("AUTH", Verb::Auth),
    ("ETRN", Verb::Etrn),
];

impl Verb {
    /// The verb a token names, case-insensitively; `Unknown` for anything else.
    pub fn from_token(token: &str) -> Verb {
        KNOWN_VERBS
            .iter()
            .find(|(name, _)| token.eq_ignore_ascii_case(name))
            .map_or(Verb::Unknown, |&(_, verb)| verb)
    }

    /// Whether this is one of the verbs mailsift interprets.
    pub fn is_known(self) -> bool {
        self != Verb::Unknown
    }
}

/// What the first token of a command line looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerbShape {
    /// An ASCII letter followed by letters, digits, `-` or `_`, at most 32 characters.
    Word,
    /// Holds non-ASCII characters.
    NonAscii,
    /// Anything else (punctuation, control characters, too long).
    Malformed,
}

/// A command line split into its verb and argument, before the argument is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandLine<'a> {
    /// The first token as sent.
    pub token: &'a str,
    /// The verb it names.
    pub verb: Verb,
    /// Whether the token is a well-formed verb.
    pub shape: VerbShape,
    /// Everything after the first space, verbatim; `None` when absent or empty.
    pub arg: Option<&'a str>,
}

fn is_verb_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// A well-formed verb followed by a space or the end of the line.
fn word_verb(i: &str) -> IResult<&str, &str> {
    let (rest, token) = take_while1(is_verb_char).parse(i)?;
    let (rest, _) = alt((eof, take_while1(|c| c == ' '))).parse(rest)?;
    Ok((rest, token))
}

/// Splits a command line into verb and argument; `None` for an empty line.
pub fn split_command(line: &str) -> Option<CommandLine<'_>> {
    if line.is_empty() {
        return None;
    }
    let (token, arg) = match line.split_once(' ') {
        Some((t, a)) => (t, Some(a)),
        None => (line, None),
    };
    let arg = arg.filter(|a| !a.is_empty());
    let well_formed = word_verb(line).is_ok_and(|(_, t)| t == token)
        && token.len() <= MAX_VERB_LEN
        && token.starts_with(|c: char| c.is_ascii_alphabetic());
    let shape = if well_formed {
        VerbShape::Word
    } else if !token.is_ascii() {
        VerbShape::NonAscii
    } else {
        VerbShape::Malformed
    };
    let verb = if well_formed {
        Verb::from_token(token)
    } else {
        Verb::Unknown
    };
    Some(CommandLine {
        token,
        verb,
        shape,
        arg,
    })
}

/// A reverse-path (MAIL) or forward-path (RCPT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path<'a> {
    /// The mailbox without brackets or source route; empty for the null path `<>`.
    pub mailbox: &'a str,
    /// The obsolete source route (`@a,@b`) before the mailbox, if any.
    pub source_route: Option<&'a str>,
    /// Whether the path was enclosed in angle brackets.
    pub bracketed: bool,
}

impl Path<'_> {
    /// Whether this is the null reverse-path `<>`.
    pub fn is_null(&self) -> bool {
        self.mailbox.is_empty()
    }
}

/// Leniencies and defects met while parsing a MAIL or RCPT argument.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathProblems {
    /// `MAIL FROM <x>`: no colon after the keyword.
    pub missing_colon: bool,
    /// `MAIL FROM: <x>`: spaces between the colon and the path.
    pub space_after_colon: bool,
    /// `MAIL FROM:x@y`: the path is not in angle brackets.
    pub missing_brackets: bool,
    /// `<x@y` with no closing bracket, or an unclosed quoted string.
    pub unterminated: bool,
    /// The mailbox does not follow RFC 5321 (or RFC 6531) syntax.
    pub malformed_mailbox: bool,
    /// A parameter that is not `keyword[=value]` or has a bad value for its keyword.
    pub bad_parameter: bool,
}

impl PathProblems {
    /// Whether nothing was wrong.
    pub fn is_clean(&self) -> bool {
        *self == PathProblems::default()
    }
}

/// The `BODY=` parameter (RFC 6152, RFC 3030).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// `7BIT`.
    SevenBit,
    /// `8BITMIME`.
    EightBitMime,
    /// `BINARYMIME` (requires BDAT).
    BinaryMime,
}

/// The `RET=` parameter (RFC 3461).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnContent {
    /// `FULL`: return the whole message in a bounce.
    Full,
    /// `HDRS`: return the headers only.
    Headers,
}

/// The `NOTIFY=` parameter (RFC 3461): when to send delivery status notifications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notify {
    /// `NEVER`.
    pub never: bool,
    /// `SUCCESS`.
    pub success: bool,
    /// `FAILURE`.
    pub failure: bool,
    /// `DELAY`.
    pub delay: bool,
}

/// One ESMTP parameter after a MAIL or RCPT path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EsmtpParam<'a> {
    /// `SIZE=n` (RFC 1870), declared message size.
    Size(u64),
    /// `BODY=...`.
    Body(BodyType),
    /// `SMTPUTF8` (RFC 6531).
    SmtpUtf8,
    /// `AUTH=mailbox` (RFC 4954), the submitter identity, xtext as sent.
    Auth(&'a str),
    /// `RET=...` (RFC 3461).
    Ret(ReturnContent),
    /// `ENVID=xtext` (RFC 3461).
    Envid(&'a str),
    /// `NOTIFY=...` (RFC 3461).
    Notify(Notify),
    /// `ORCPT=addr-type;xtext` (RFC 3461), as sent.
    Orcpt(&'a str),
    /// Any other parameter, or a known keyword with a value it does not allow.
    Other {
        /// The keyword as sent.
        keyword: &'a str,
        /// The value after `=`, if any.
        value: Option<&'a str>,
    },
}

/// A parsed MAIL or RCPT argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathArg<'a> {
    /// The path.
    pub path: Path<'a>,
    /// ESMTP parameters after it, in order.
    pub params: Vec<EsmtpParam<'a>>,
    /// What was wrong or lenient.
    pub problems: PathProblems,
}

impl PathArg<'_> {
    /// Whether the client declared `SMTPUTF8`.
    pub fn smtputf8(&self) -> bool {
        self.params.contains(&EsmtpParam::SmtpUtf8)
    }

    /// The declared `BODY=` type, if any.
    pub fn body(&self) -> Option<BodyType> {
        self.params.iter().find_map(|p| match p {
            EsmtpParam::Body(b) => Some(*b),
            _ => None,
        })
    }
}

fn spaces(i: &str) -> IResult<&str, &str> {
    take_while(|c| c == ' ').parse(i)
}

/// Position of the first `stop` outside a quoted string (backslash escapes honoured inside).
fn unquoted_position(s: &str, stop: char) -> Option<usize> {
    let mut in_quote = false;
    let mut escaped = false;
    for (pos, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if in_quote {
            match c {
                '\\' => escaped = true,
                '"' => in_quote = false,
                _ => {}
            }
        } else if c == '"' {
            in_quote = true;
        } else if c == stop {
            return Some(pos);
        }
    }
    None
}

/// `<...>` with quoted strings honoured; returns the content between the brackets.
fn bracketed(i: &str) -> IResult<&str, (&str, bool)> {
    let (rest, _) = char('<').parse(i)?;
    if let Some(pos) = unquoted_position(rest, '>') {
        return Ok((&rest[pos + 1..], (&rest[..pos], true)));
    }
    // No closing bracket: take up to the first space outside quotes, flagged as unterminated.
    let (after, content) = bare(rest)?;
    Ok((after, (content, false)))
}

/// A path without brackets: everything up to the first space outside a quoted string.
fn bare(i: &str) -> IResult<&str, &str> {
    Ok(match unquoted_position(i, ' ') {
        Some(pos) => (&i[pos..], &i[..pos]),
        None => ("", i),
    })
}

/// Splits `@a,@b:mailbox` into the route and the mailbox.
fn split_route(content: &str) -> (Option<&str>, &str) {
    match content.split_once(':') {
        Some((route, mailbox)) if content.starts_with('@') => (Some(route), mailbox),
        _ => (None, content),
    }
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn valid_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn valid_quoted_string(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return false;
    };
    let mut escaped = false;
    for c in inner.chars() {
        if escaped {
            if !(' '..='~').contains(&c) {
                return false;
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' || (c.is_ascii() && !(' '..='~').contains(&c)) {
            return false;
        }
    }
    !escaped
}

fn valid_domain(d: &str) -> bool {
    if let Some(literal) = d.strip_prefix('[') {
        return literal.strip_suffix(']').is_some_and(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_graphic() && c != '[' && c != ']')
        });
    }
    !d.is_empty()
        && d.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// Whether `mailbox` is `local-part@domain` per RFC 5321 (with RFC 6531 UTF-8), or `postmaster`.
pub fn valid_mailbox(mailbox: &str) -> bool {
    if mailbox.eq_ignore_ascii_case("postmaster") {
        return true;
    }
    let Some(at) = mailbox.rfind('@') else {
        return false;
    };
    let (local, domain) = (&mailbox[..at], &mailbox[at + 1..]);
    let local_ok = if local.starts_with('"') {
        valid_quoted_string(local)
    } else {
        valid_dot_string(local)
    };
    local_ok && valid_domain(domain)
}

fn param_keyword(i: &str) -> IResult<&str, &str> {
    take_while1(|c: char| c.is_ascii_alphanumeric() || c == '-').parse(i)
}

/// One `keyword[=value]` parameter.
fn raw_param(i: &str) -> IResult<&str, (&str, Option<&str>)> {
    let (rest, keyword) = param_keyword(i)?;
    let (rest, value) = opt((char('='), take_while(|c| c != ' '))).parse(rest)?;
    Ok((rest, (keyword, value.map(|(_, v)| v))))
}

fn parse_notify(value: &str) -> Option<Notify> {
    let mut n = Notify::default();
    for item in value.split(',') {
        match item.to_ascii_uppercase().as_str() {
            "NEVER" => n.never = true,
            "SUCCESS" => n.success = true,
            "FAILURE" => n.failure = true,
            "DELAY" => n.delay = true,
            _ => return None,
        }
    }
    // NEVER excludes the others.
    (!(n.never && (n.success || n.failure || n.delay))).then_some(n)
}

/// Interprets a raw parameter; `None` when the keyword is known but its value is not allowed.
fn typed_param<'a>(keyword: &'a str, value: Option<&'a str>) -> Option<EsmtpParam<'a>> {
    let upper = keyword.to_ascii_uppercase();
    let param = match (upper.as_str(), value) {
        ("SIZE", Some(v)) => EsmtpParam::Size(parse_decimal(v)?),
        ("BODY", Some(v)) => EsmtpParam::Body(match v.to_ascii_uppercase().as_str() {
            "7BIT" => BodyType::SevenBit,
            "8BITMIME" => BodyType::EightBitMime,
            "BINARYMIME" => BodyType::BinaryMime,
            _ => return None,
        }),
        ("SMTPUTF8", None) => EsmtpParam::SmtpUtf8,
        ("AUTH", Some(v)) if !v.is_empty() => EsmtpParam::Auth(v),
        ("RET", Some(v)) => EsmtpParam::Ret(match v.to_ascii_uppercase().as_str() {
            "FULL" => ReturnContent::Full,
            "HDRS" => ReturnContent::Headers,
            _ => return None,
        }),
        ("ENVID", Some(v)) if !v.is_empty() => EsmtpParam::Envid(v),
        ("NOTIFY", Some(v)) => EsmtpParam::Notify(parse_notify(v)?),
        ("ORCPT", Some(v)) if v.contains(';') => EsmtpParam::Orcpt(v),
        ("SIZE" | "BODY" | "SMTPUTF8" | "AUTH" | "RET" | "ENVID" | "NOTIFY" | "ORCPT", _) => {
            return None;
        }
        _ => EsmtpParam::Other { keyword, value },
    };
    Some(param)
}

/// Parameters after the path: `SP keyword[=value]` repeated; bad ones are kept as `Other`.
fn params<'a>(mut rest: &'a str, problems: &mut PathProblems) -> Vec<EsmtpParam<'a>> {
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        match raw_param(rest) {
            Ok((after, (keyword, value))) if after.is_empty() || after.starts_with(' ') => {
                out.push(typed_param(keyword, value).unwrap_or_else(|| {
                    problems.bad_parameter = true;
                    EsmtpParam::Other { keyword, value }
                }));
                rest = after;
            }
            _ => {
                // Not a keyword: keep the whole token so nothing is silently lost.
                problems.bad_parameter = true;
                let (token, after) = rest.split_at(rest.find(' ').unwrap_or(rest.len()));
                out.push(EsmtpParam::Other {
                    keyword: token,
                    value: None,
                });
                rest = after;
            }
        }
    }
    out
}

/// Parses `FROM:<path> params` (keyword `FROM`) or `TO:<path> params` (keyword `TO`).
fn parse_path_arg<'a>(arg: &'a str, keyword: &str) -> Option<PathArg<'a>> {
    let mut problems = PathProblems::default();
    let (rest, _) = tag_no_case::<_, _, nom::error::Error<&str>>(keyword)
        .parse(arg)
        .ok()?;
    if !(rest.is_empty() || rest.starts_with([':', ' ', '<'])) {
        return None;
    }
    let (rest, _) = spaces(rest).ok()?;
    let (rest, colon) = opt(char::<_, nom::error::Error<&str>>(':'))
        .parse(rest)
        .ok()?;
    problems.missing_colon = colon.is_none();
    let (rest, sp) = spaces(rest).ok()?;
    problems.space_after_colon = colon.is_some() && !sp.is_empty();
    let (rest, (content, bracketed_ok)) = if rest.starts_with('<') {
        let (rest, (content, closed)) = bracketed(rest).ok()?;
        problems.unterminated = !closed;
        (rest, (content, true))
    } else {
        problems.missing_brackets = true;
        let (rest, content) = bare(rest).ok()?;
        (rest, (content, false))
    };
    if !bracketed_ok && content.is_empty() {
        return None;
    }
    let (source_route, mailbox) = split_route(content);
    if !mailbox.is_empty() && !valid_mailbox(mailbox) {
        problems.malformed_mailbox = true;
    }
    if !rest.is_empty() && !rest.starts_with(' ') {
        // `<a@b>junk`: text glued to the closing bracket.
        problems.bad_parameter = true;
    }
    let params = params(rest, &mut problems);
    Some(PathArg {
        path: Path {
            mailbox,
            source_route,
            bracketed: bracketed_ok,
        },
        params,
        problems,
    })
}

/// Parses the argument of `MAIL` (`FROM:<path> [params]`); `None` without the `FROM` keyword.
pub fn parse_mail_arg(arg: &str) -> Option<PathArg<'_>> {
    parse_path_arg(arg, "FROM")
}

/// Parses the argument of `RCPT` (`TO:<path> [params]`); `None` without the `TO` keyword.
pub fn parse_rcpt_arg(arg: &str) -> Option<PathArg<'_>> {
    parse_path_arg(arg, "TO")
}

/// A decimal number of at most 20 digits that fits in 64 bits.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The argument of a valid `BDAT` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BdatArg {
    /// Bytes of chunk data that follow the command line.
    pub size: u64,
    /// Whether this is the last chunk of the message.
    pub last: bool,
}

/// Why a `BDAT` argument could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BdatError {
    /// No size given.
    #[error("BDAT without a chunk size")]
    MissingSize,
    /// The size does not fit in a signed 64-bit integer.
    #[error("BDAT chunk size too large for any server (over 2^63 - 1)")]
    SizeOverflow,
    /// Anything else after the size but `LAST`, or a size that is not a number.
    #[error("BDAT argument is not `size [LAST]`")]
    Syntax,
}

/// Parses `size [LAST]`.
pub fn parse_bdat_arg(arg: Option<&str>) -> Result<BdatArg, BdatError> {
    let arg = arg.ok_or(BdatError::MissingSize)?;
    let last_flag = opt((take_while1(|c| c == ' '), tag_no_case("LAST")));
    let parsed: IResult<&str, _> = (digit1, last_flag, spaces, eof).parse(arg);
    let Ok((_, (digits, last, _, _))) = parsed else {
        return Err(if arg.trim().is_empty() {
            BdatError::MissingSize
        } else {
            BdatError::Syntax
        });
    };
    // Servers hold sizes in signed 64-bit integers (off_t): larger ones cannot be honoured.
    let size = digits
        .parse::<u64>()
        .ok()
        .filter(|&n| i64::try_from(n).is_ok())
        .ok_or(BdatError::SizeOverflow)?;
    Ok(BdatArg {
        size,
        last: last.is_some(),
    })
}

/// The argument of an `AUTH` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthArg<'a> {
    /// The SASL mechanism name as sent.
    pub mechanism: &'a str,
    /// The initial response (base64, or `=` for an empty one), if sent.
    pub initial_response: Option<&'a str>,
}

/// Parses `mechanism [initial-response]`; `None` when the mechanism is missing or malformed.
pub fn parse_auth_arg(arg: Option<&str>) -> Option<AuthArg<'_>> {
    let arg = arg?;
    let mut mech = take_while1::<_, _, nom::error::Error<&str>>(|c: char| {
        c.is_ascii_alphanumeric() || c == '-' || c == '_'
    });
    let (rest, mechanism) = mech.parse(arg).ok()?;
    if mechanism.len() > 20 || !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let initial = rest.trim_matches(' ');
    Some(AuthArg {
        mechanism,
        initial_response: (!initial.is_empty()).then_some(initial),
    })
}

/// Whether a line is unmistakably a command of a known verb with a well-formed argument.
///
/// Used to re-synchronise after a gap or a mid-stream start, where body text must not be
/// taken for commands: so it is strict where the dissector is otherwise lenient.
pub fn is_strict_command(cmd: &CommandLine<'_>) -> bool {
    if cmd.shape != VerbShape::Word {
        return false;
    }
    let single_token =
        |a: Option<&str>| a.is_some_and(|a| !a.trim().is_empty() && !a.trim().contains(' '));
    match cmd.verb {
        Verb::Unknown => false,
        Verb::Data | Verb::Rset | Verb::Quit | Verb::Starttls => cmd.arg.is_none(),
        Verb::Noop | Verb::Help => cmd.arg.is_none() || single_token(cmd.arg),
        Verb::Helo | Verb::Ehlo | Verb::Etrn => single_token(cmd.arg),
        Verb::Vrfy | Verb::Expn => cmd.arg.is_some(),
        Verb::Mail => cmd
            .arg
            .and_then(parse_mail_arg)
            .is_some_and(|p| p.path.bracketed && p.problems.is_clean()),
        Verb::Rcpt => cmd
            .arg
            .and_then(parse_rcpt_arg)
            .is_some_and(|p| p.path.bracketed && p.problems.is_clean()),
        Verb::Bdat => parse_bdat_arg(cmd.arg).is_ok(),
        Verb::Auth => parse_auth_arg(cmd.arg).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_verb_and_argument() {
        let c = split_command("mail FROM:<a@b>").unwrap();
        assert_eq!(c.verb, Verb::Mail);
        assert_eq!(c.token, "mail");
        assert_eq!(c.arg, Some("FROM:<a@b>"));
        assert_eq!(c.shape, VerbShape::Word);

        let c = split_command("QUIT").unwrap();
        assert_eq!((c.verb, c.arg), (Verb::Quit, None));
        let c = split_command("NOOP ").unwrap();
        assert_eq!((c.verb, c.arg), (Verb::Noop, None));
        assert!(split_command("").is_none());

        let c = split_command("XCLIENT NAME=x").unwrap();
        assert_eq!((c.verb, c.shape), (Verb::Unknown, VerbShape::Word));
        assert_eq!(c.arg, Some("NAME=x"));
    }

    #[test]
    fn classifies_odd_verbs() {
        assert_eq!(
            split_command("Host: example").unwrap().shape,
            VerbShape::Malformed
        );
        assert_eq!(split_command("MÄIL x").unwrap().shape, VerbShape::NonAscii);
        assert_eq!(split_command("1234").unwrap().shape, VerbShape::Malformed);
        let long = "A".repeat(40);
        assert_eq!(split_command(&long).unwrap().shape, VerbShape::Malformed);
        // A malformed token never names a known verb.
        assert_eq!(split_command("DATA:").unwrap().verb, Verb::Unknown);
    }

    #[test]
    fn parses_plain_paths() {
        let p = parse_mail_arg("FROM:<alice@example.com>").unwrap();
        assert_eq!(p.path.mailbox, "alice@example.com");
        assert!(p.path.bracketed);
        assert!(p.problems.is_clean());
        assert!(p.params.is_empty());

        let p = parse_mail_arg("FROM:<>").unwrap();
        assert!(p.path.is_null());
        assert!(p.problems.is_clean());

        let p = parse_rcpt_arg("to:<Postmaster>").unwrap();
        assert_eq!(p.path.mailbox, "Postmaster");
        assert!(p.problems.is_clean());
    }

    #[test]
    fn parses_quoted_local_parts_and_routes() {
        let p = parse_rcpt_arg(r#"TO:<"john doe>x"@example.com> NOTIFY=NEVER"#).unwrap();
        assert_eq!(p.path.mailbox, r#""john doe>x"@example.com"#);
        assert!(p.problems.is_clean(), "{:?}", p.problems);
        assert_eq!(
            p.params,
            vec![EsmtpParam::Notify(Notify {
                never: true,
                ..Default::default()
            })]
        );

        let p = parse_rcpt_arg(r#"TO:<"a\"b"@x.org>"#).unwrap();
        assert_eq!(p.path.mailbox, r#""a\"b"@x.org"#);
        assert!(p.problems.is_clean());

        let p = parse_rcpt_arg("TO:<@relay1.net,@relay2.net:user@c.org>").unwrap();
        assert_eq!(p.path.mailbox, "user@c.org");
        assert_eq!(p.path.source_route, Some("@relay1.net,@relay2.net"));
        assert!(p.problems.is_clean());
    }

    #[test]
    fn accepts_utf8_addresses() {
        let p = parse_mail_arg("FROM:<josé@exämple.de> SMTPUTF8").unwrap();
        assert_eq!(p.path.mailbox, "josé@exämple.de");
        assert!(p.smtputf8());
        assert!(p.problems.is_clean());
    }

    #[test]
    fn tolerates_sloppy_clients_and_says_so() {
        let p = parse_mail_arg("FROM: <a@b.c>").unwrap();
        assert_eq!(p.path.mailbox, "a@b.c");
        assert!(p.problems.space_after_colon);

        let p = parse_mail_arg("FROM:a@b.c SIZE=10").unwrap();
        assert_eq!(p.path.mailbox, "a@b.c");
        assert!(p.problems.missing_brackets);
        assert_eq!(p.params, vec![EsmtpParam::Size(10)]);

        let p = parse_rcpt_arg("TO <x@y.z>").unwrap();
        assert!(p.problems.missing_colon);
        assert_eq!(p.path.mailbox, "x@y.z");

        let p = parse_rcpt_arg("TO:<x@y.z").unwrap();
        assert!(p.problems.unterminated);
        assert_eq!(p.path.mailbox, "x@y.z");

        let p = parse_rcpt_arg("TO:<not an address>").unwrap();
        assert!(p.problems.malformed_mailbox);

        assert!(parse_mail_arg("TO:<a@b>").is_none());
        assert!(parse_mail_arg("FROMAGE:<a@b>").is_none());
        assert!(parse_mail_arg("FROM:").is_none());
    }

    #[test]
    fn parses_typed_parameters() {
        let p = parse_mail_arg(
            "FROM:<a@b.c> SIZE=12345 BODY=8BITMIME RET=HDRS ENVID=QQ314159 AUTH=<> SMTPUTF8",
        )
        .unwrap();
        assert_eq!(
            p.params,
            vec![
                EsmtpParam::Size(12345),
                EsmtpParam::Body(BodyType::EightBitMime),
                EsmtpParam::Ret(ReturnContent::Headers),
                EsmtpParam::Envid("QQ314159"),
                EsmtpParam::Auth("<>"),
                EsmtpParam::SmtpUtf8,
            ]
        );
        assert_eq!(p.body(), Some(BodyType::EightBitMime));
        assert!(p.problems.is_clean());

        let p = parse_rcpt_arg("TO:<a@b.c> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b.c").unwrap();
        assert_eq!(
            p.params,
            vec![
                EsmtpParam::Notify(Notify {
                    success: true,
                    failure: true,
                    ..Default::default()
                }),
                EsmtpParam::Orcpt("rfc822;a@b.c"),
            ]
        );
    }

    #[test]
    fn flags_bad_parameters_but_keeps_them() {
        let p = parse_mail_arg("FROM:<a@b.c> SIZE=huge BODY=9BIT X-FOO=1 =bad").unwrap();
        assert!(p.problems.bad_parameter);
        assert_eq!(
            p.params,
            vec![
                EsmtpParam::Other {
                    keyword: "SIZE",
                    value: Some("huge")
                },
                EsmtpParam::Other {
                    keyword: "BODY",
                    value: Some("9BIT")
                },
                EsmtpParam::Other {
                    keyword: "X-FOO",
                    value: Some("1")
                },
                EsmtpParam::Other {
                    keyword: "=bad",
                    value: None
                },
            ]
        );
        let p = parse_rcpt_arg("TO:<a@b.c> NOTIFY=NEVER,SUCCESS").unwrap();
        assert!(p.problems.bad_parameter);
        let p = parse_mail_arg("FROM:<a@b.c>x").unwrap();
        assert!(p.problems.bad_parameter);
    }

    #[test]
    fn parses_bdat_arguments() {
        assert_eq!(
            parse_bdat_arg(Some("1000")),
            Ok(BdatArg {
                size: 1000,
                last: false
            })
        );
        assert_eq!(
            parse_bdat_arg(Some("0 last")),
            Ok(BdatArg {
                size: 0,
                last: true
            })
        );
        assert_eq!(
            parse_bdat_arg(Some("15555555557777777777 LAST")),
            Err(BdatError::SizeOverflow)
        );
        assert_eq!(
            parse_bdat_arg(Some("99999999999999999999999999")),
            Err(BdatError::SizeOverflow)
        );
        assert_eq!(parse_bdat_arg(Some("5 X")), Err(BdatError::Syntax));
        assert_eq!(parse_bdat_arg(Some("-5")), Err(BdatError::Syntax));
        assert_eq!(parse_bdat_arg(Some("5LAST")), Err(BdatError::Syntax));
        assert_eq!(parse_bdat_arg(None), Err(BdatError::MissingSize));
    }

    #[test]
    fn parses_auth_arguments() {
        assert_eq!(
            parse_auth_arg(Some("PLAIN AGFsaWNlAHNlY3JldA==")),
            Some(AuthArg {
                mechanism: "PLAIN",
                initial_response: Some("AGFsaWNlAHNlY3JldA==")
            })
        );
        assert_eq!(
            parse_auth_arg(Some("cram-md5")),
            Some(AuthArg {
                mechanism: "cram-md5",
                initial_response: None
            })
        );
        assert_eq!(
            parse_auth_arg(Some("PLAIN =")).unwrap().initial_response,
            Some("=")
        );
        assert!(parse_auth_arg(None).is_none());
        assert!(parse_auth_arg(Some("PL@IN")).is_none());
        assert!(parse_auth_arg(Some("A-VERY-LONG-MECHANISM-NAME")).is_none());
    }

    #[test]
    fn strict_commands_reject_body_text() {
        let strict = |l: &str| split_command(l).is_some_and(|c| is_strict_command(&c));
        assert!(strict("MAIL FROM:<a@b.c>"));
        assert!(strict("QUIT"));
        assert!(strict("EHLO client.example"));
        assert!(strict("BDAT 10 LAST"));
        assert!(!strict("Subject: hello"));
        assert!(!strict("Helo there, how are you?"));
        assert!(!strict("Data follows below"));
        assert!(!strict("MAIL FROM: someone"));
        assert!(!strict("dXNlcm5hbWU="));
        assert!(!strict("hello world"));
    }

    #[test]
    fn validates_mailboxes() {
        assert!(valid_mailbox("a.b+c@example.com"));
        assert!(valid_mailbox("user@[192.0.2.1]"));
        assert!(valid_mailbox(r#""x y"@example.com"#));
        assert!(!valid_mailbox("a..b@example.com"));
        assert!(!valid_mailbox("a@-bad-.com"));
        assert!(!valid_mailbox("no-at-sign"));
        assert!(!valid_mailbox("a@"));
    }
}
