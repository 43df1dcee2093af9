//! POP3 client commands (RFC 1939, 1725, 2449, 2595, 5034, 6856): one line to a typed command.

use nom::{
    IResult, Parser,
    bytes::complete::take_while1,
    character::complete::{char, digit1},
    combinator::{all_consuming, map_res, opt, verify},
    sequence::preceded,
};

/// Longest keyword accepted as a command verb; real ones have 3 or 4 letters, extensions a few more.
pub const MAX_KEYWORD_LEN: usize = 16;

/// A command keyword, as far as POP3 and its extensions define them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `USER name` (RFC 1939).
    User,
    /// `PASS secret` (RFC 1939).
    Pass,
    /// `APOP name digest` (RFC 1939).
    Apop,
    /// `AUTH [mechanism [initial-response]]` (RFC 5034).
    Auth,
    /// `CAPA` (RFC 2449).
    Capa,
    /// `STLS` (RFC 2595).
    Stls,
    /// `STAT`.
    Stat,
    /// `LIST [msg]`.
    List,
    /// `UIDL [msg]`.
    Uidl,
    /// `RETR msg`.
    Retr,
    /// `TOP msg n`.
    Top,
    /// `DELE msg`.
    Dele,
    /// `NOOP`.
    Noop,
    /// `RSET`.
    Rset,
    /// `QUIT`.
    Quit,
    /// `LAST` (RFC 1460/1725, removed by RFC 1939).
    Last,
    /// `RPOP user` (RFC 1081, removed by RFC 1939).
    Rpop,
    /// `XTND subcommand` (vendor extensions, e.g. `XTND XMIT`).
    Xtnd,
    /// `UTF8` (RFC 6856).
    Utf8,
    /// `LANG [tag]` (RFC 6856).
    Lang,
    /// Any other keyword.
    Other,
}

impl Verb {
    /// Recognises a keyword, case-insensitively.
    pub fn from_keyword(keyword: &str) -> Verb {
        const TABLE: [(&str, Verb); 20] = [
            ("USER", Verb::User),
            ("PASS", Verb::Pass),
            ("APOP", Verb::Apop),
            ("AUTH", Verb::Auth),
            ("CAPA", Verb::Capa),
            ("STLS", Verb::Stls),
            ("STAT", Verb::Stat),
            ("LIST", Verb::List),
            ("UIDL", Verb::Uidl),
            ("RETR", Verb::Retr),
            ("TOP", Verb::Top),
            ("DELE", Verb::Dele),
            ("NOOP", Verb::Noop),
            ("RSET", Verb::Rset),
            ("QUIT", Verb::Quit),
            ("LAST", Verb::Last),
            ("RPOP", Verb::Rpop),
            ("XTND", Verb::Xtnd),
            ("UTF8", Verb::Utf8),
            ("LANG", Verb::Lang),
        ];
        TABLE
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(keyword))
            .map_or(Verb::Other, |&(_, verb)| verb)
    }

    /// Whether this is a keyword some POP3 specification defines.
    pub fn is_known(self) -> bool {
        self != Verb::Other
    }
}

/// Which messages a `LIST` or `UIDL` asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// No argument: the whole mailbox, answered by a multi-line listing.
    All,
    /// One message, answered on the status line.
    One(u64),
    /// An argument that is not a message number (the server should refuse it; one line).
    Invalid,
}

/// The shape of the reply a command gets when the server accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyShape {
    /// The status line is the whole reply.
    SingleLine,
    /// `+OK` is followed by a dot-terminated body; `-ERR` stands alone.
    MultiLineOnOk,
    /// Not defined by any specification (unknown or vendor command): decided by the next line.
    Unknown,
}

/// One command line, split into keyword and argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    /// The recognised keyword.
    pub verb: Verb,
    /// The keyword as sent.
    pub keyword: &'a str,
    /// Everything after the keyword and its separator, verbatim; `None` when absent or empty.
    pub arg: Option<&'a str>,
}

/// An AUTH command's parts (RFC 5034).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthArgs<'a> {
    /// The SASL mechanism name, as sent.
    pub mechanism: &'a str,
    /// The initial response (base64, or `=` for an empty one), if sent on the command line.
    pub initial_response: Option<&'a str>,
}

fn keyword(input: &str) -> IResult<&str, &str> {
    verify(
        take_while1(|c: char| c.is_ascii_alphanumeric()),
        |k: &str| k.len() <= MAX_KEYWORD_LEN && k.starts_with(|c: char| c.is_ascii_alphabetic()),
    )
    .parse(input)
}

fn number(input: &str) -> IResult<&str, u64> {
    map_res(digit1, str::parse::<u64>).parse(input)
}

/// Parses a message number argument (`1*DIGIT`, surrounding blanks tolerated).
pub fn parse_msg_number(arg: &str) -> Option<u64> {
    all_consuming(number)
        .parse(arg.trim_matches([' ', '\t']))
        .ok()
        .map(|(_, n)| n)
}

/// Parses `TOP`'s two numbers: the message and the count of body lines.
pub fn parse_top_args(arg: &str) -> Option<(u64, u64)> {
    let trimmed = arg.trim_matches([' ', '\t']);
    all_consuming((number, preceded(take_while1(|c| c == ' '), number)))
        .parse(trimmed)
        .ok()
        .map(|(_, pair)| pair)
}

/// Splits a command line into keyword and argument; `None` when it does not look like one.
pub fn parse_command(line: &str) -> Option<Command<'_>> {
    let (rest, kw) = keyword(line).ok()?;
    let (rest, sep) = opt(char::<&str, nom::error::Error<&str>>(' '))
        .parse(rest)
        .ok()?;
    let arg = match (sep, rest) {
        (_, "") => None,
        (Some(_), rest) => Some(rest),
        // A tab is not the RFC's separator but carries the same meaning.
        (None, rest) if rest.starts_with('\t') => Some(&rest[1..]).filter(|a| !a.is_empty()),
        (None, _) => return None,
    };
    Some(Command {
        verb: Verb::from_keyword(kw),
        keyword: kw,
        arg,
    })
}

impl<'a> Command<'a> {
    /// The keyword upper-cased, as recorded in events.
    pub fn verb_name(&self) -> String {
        self.keyword.to_ascii_uppercase()
    }

    /// The argument with surrounding blanks removed, if any is left.
    fn trimmed_arg(&self) -> Option<&'a str> {
        self.arg
            .map(|a| a.trim_matches([' ', '\t']))
            .filter(|a| !a.is_empty())
    }

    /// The mailbox scope of `LIST` / `UIDL`.
    pub fn scope(&self) -> Scope {
        match self.trimmed_arg() {
            None => Scope::All,
            Some(a) => parse_msg_number(a).map_or(Scope::Invalid, Scope::One),
        }
    }

    /// The message number of `RETR`, `DELE` and `TOP`, when the argument holds one.
    pub fn message_number(&self) -> Option<u64> {
        let arg = self.trimmed_arg()?;
        let first = arg.split([' ', '\t']).next()?;
        parse_msg_number(first)
    }

    /// `AUTH`'s mechanism and initial response; `None` for a bare `AUTH` (list request).
    pub fn auth_args(&self) -> Option<AuthArgs<'a>> {
        let arg = self.trimmed_arg()?;
        let (mechanism, rest) = match arg.split_once([' ', '\t']) {
            Some((m, r)) => (
                m,
                Some(r.trim_matches([' ', '\t'])).filter(|r| !r.is_empty()),
            ),
            None => (arg, None),
        };
        Some(AuthArgs {
            mechanism,
            initial_response: rest,
        })
    }

    /// `APOP`'s mailbox name and digest (the digest is the last word).
    pub fn apop_args(&self) -> (Option<&'a str>, Option<&'a str>) {
        match self.trimmed_arg() {
            None => (None, None),
            Some(arg) => match arg.rsplit_once(' ') {
                Some((name, digest)) => (Some(name.trim_end()), Some(digest)),
                None => (Some(arg), None),
            },
        }
    }

    /// How the server's acceptance of this command is shaped.
    pub fn reply_shape(&self) -> ReplyShape {
        match self.verb {
            Verb::List | Verb::Uidl => match self.scope() {
                Scope::All => ReplyShape::MultiLineOnOk,
                Scope::One(_) | Scope::Invalid => ReplyShape::SingleLine,
            },
            Verb::Retr | Verb::Top | Verb::Capa => ReplyShape::MultiLineOnOk,
            Verb::Auth | Verb::Lang => match self.trimmed_arg() {
                None => ReplyShape::MultiLineOnOk,
                Some(_) => ReplyShape::SingleLine,
            },
            Verb::Xtnd | Verb::Other => ReplyShape::Unknown,
            Verb::User
            | Verb::Pass
            | Verb::Apop
            | Verb::Stls
            | Verb::Stat
            | Verb::Dele
            | Verb::Noop
            | Verb::Rset
            | Verb::Quit
            | Verb::Last
            | Verb::Rpop
            | Verb::Utf8 => ReplyShape::SingleLine,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_keyword_and_verbatim_argument() {
        let c = parse_command("user alice@example.org").unwrap();
        assert_eq!(c.verb, Verb::User);
        assert_eq!(c.verb_name(), "USER");
        assert_eq!(c.arg, Some("alice@example.org"));
        // PASS keeps spaces inside and around the secret.
        let c = parse_command("PASS  two words ").unwrap();
        assert_eq!(c.verb, Verb::Pass);
        assert_eq!(c.arg, Some(" two words "));
        let c = parse_command("QUIT").unwrap();
        assert_eq!((c.verb, c.arg), (Verb::Quit, None));
        let c = parse_command("NOOP ").unwrap();
        assert_eq!(c.arg, None);
        let c = parse_command("RETR\t3").unwrap();
        assert_eq!(c.message_number(), Some(3));
    }

    #[test]
    fn unknown_keywords_are_kept_and_junk_is_refused() {
        let c = parse_command("XSENDER 1").unwrap();
        assert_eq!(c.verb, Verb::Other);
        assert_eq!(c.verb_name(), "XSENDER");
        assert_eq!(c.reply_shape(), ReplyShape::Unknown);
        assert!(parse_command("").is_none());
        assert!(parse_command("1 200").is_none());
        assert!(parse_command("+OK hi").is_none());
        assert!(parse_command("AGRpZ2l0YWxpbnZlc3RpZ2F0b3I=").is_none());
        assert!(parse_command("GET / HTTP/1.1").is_some());
        assert!(parse_command("ABCDEFGHIJKLMNOPQ").is_none());
        assert!(parse_command("USER:x").is_none());
    }

    #[test]
    fn scopes_and_reply_shapes() {
        let shape = |l: &str| parse_command(l).unwrap().reply_shape();
        assert_eq!(shape("LIST"), ReplyShape::MultiLineOnOk);
        assert_eq!(shape("LIST 2"), ReplyShape::SingleLine);
        assert_eq!(shape("LIST x"), ReplyShape::SingleLine);
        assert_eq!(shape("UIDL"), ReplyShape::MultiLineOnOk);
        assert_eq!(shape("uidl 7"), ReplyShape::SingleLine);
        assert_eq!(shape("RETR 1"), ReplyShape::MultiLineOnOk);
        assert_eq!(shape("TOP 1 0"), ReplyShape::MultiLineOnOk);
        assert_eq!(shape("CAPA"), ReplyShape::MultiLineOnOk);
        assert_eq!(shape("AUTH"), ReplyShape::MultiLineOnOk);
        assert_eq!(shape("AUTH PLAIN"), ReplyShape::SingleLine);
        assert_eq!(shape("LANG"), ReplyShape::MultiLineOnOk);
        assert_eq!(shape("LANG fr"), ReplyShape::SingleLine);
        assert_eq!(shape("XTND XMIT"), ReplyShape::Unknown);
        assert_eq!(shape("STLS"), ReplyShape::SingleLine);
        assert_eq!(parse_command("LIST 12").unwrap().scope(), Scope::One(12));
        assert_eq!(parse_command("LIST").unwrap().scope(), Scope::All);
        assert_eq!(parse_command("LIST -1").unwrap().scope(), Scope::Invalid);
    }

    #[test]
    fn numbers_and_top_arguments() {
        assert_eq!(parse_msg_number(" 42 "), Some(42));
        assert_eq!(parse_msg_number("4x"), None);
        assert_eq!(parse_msg_number("99999999999999999999999"), None);
        assert_eq!(parse_top_args("3 10"), Some((3, 10)));
        assert_eq!(parse_top_args("3"), None);
        assert_eq!(parse_command("TOP 5 0").unwrap().message_number(), Some(5));
    }

    #[test]
    fn auth_and_apop_arguments() {
        let c = parse_command("AUTH PLAIN AGFsaWNlAHNlY3JldA==").unwrap();
        assert_eq!(
            c.auth_args(),
            Some(AuthArgs {
                mechanism: "PLAIN",
                initial_response: Some("AGFsaWNlAHNlY3JldA==")
            })
        );
        let c = parse_command("AUTH LOGIN").unwrap();
        assert_eq!(c.auth_args().unwrap().initial_response, None);
        assert_eq!(parse_command("AUTH").unwrap().auth_args(), None);
        let c = parse_command("APOP mrose c4c9334bac560ecc979e58001b3e22fb").unwrap();
        assert_eq!(
            c.apop_args(),
            (Some("mrose"), Some("c4c9334bac560ecc979e58001b3e22fb"))
        );
        assert_eq!(
            parse_command("APOP onlyname").unwrap().apop_args(),
            (Some("onlyname"), None)
        );
    }
}
