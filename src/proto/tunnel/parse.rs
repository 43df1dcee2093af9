//! Typed parsers for the proxy handshakes that open a tunnel, one message at a time.
//!
//! Each parser reads one message from the start of a buffer and says how many bytes it took,
//! that more bytes are needed, or that the bytes cannot be that message:
//! - HTTP `CONNECT host:port HTTP/1.x` and its status line (RFC 9110 9.3.6, RFC 9112 3 and 4),
//! - SOCKS4 and SOCKS4a CONNECT requests and replies (the SOCKS4 and SOCKS4A protocol notes),
//! - SOCKS5 greeting, method choice, request and reply (RFC 1928), and the username/password
//!   subnegotiation (RFC 1929).

use base64::Engine as _;
use nom::{
    IResult, Parser,
    bytes::streaming::{tag, take, take_until},
    multi::length_data,
    number::streaming::{be_u16, u8 as byte},
};

/// Longest HTTP request or response head (request line and headers) read.
pub const MAX_HTTP_HEAD: usize = 8192;
/// Longest SOCKS4 user id or SOCKS4a host name read (the notes set no limit; real ones are short).
pub const MAX_SOCKS4_FIELD: usize = 255;

/// What one parser made of the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<T> {
    /// A whole message of this many bytes.
    Done(usize, T),
    /// The bytes so far begin such a message; more are needed.
    More,
    /// Not such a message, and why.
    Bad(&'static str),
}

impl<T> Step<T> {
    /// The same step without its value.
    pub fn map_unit(self) -> Step<()> {
        match self {
            Step::Done(n, _) => Step::Done(n, ()),
            Step::More => Step::More,
            Step::Bad(w) => Step::Bad(w),
        }
    }
}

/// Turns a streaming nom result over `input` into a [`Step`].
fn step<T>(input: &[u8], r: IResult<&[u8], T>, what: &'static str) -> Step<T> {
    match r {
        Ok((rest, v)) => Step::Done(input.len() - rest.len(), v),
        Err(nom::Err::Incomplete(_)) => Step::More,
        Err(_) => Step::Bad(what),
    }
}

/// Where a tunnel leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host as the client named it: a name, or an IPv4 / IPv6 address in text.
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

/// A `Proxy-Authorization` header of an HTTP CONNECT request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyAuth {
    /// `Basic` with the user and password it carries in base64 (RFC 7617).
    Basic {
        /// The user id.
        user: String,
        /// The password, readable by anyone on the path.
        password: String,
    },
    /// Any other scheme (Digest, NTLM, Negotiate...), or Basic that does not decode.
    Other(String),
}

/// An HTTP CONNECT request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConnect {
    /// The authority form of the request target.
    pub target: Target,
    /// The proxy credentials sent with it, if any.
    pub auth: Option<ProxyAuth>,
}

/// The status line of an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpStatus {
    /// The three-digit status code.
    pub code: u16,
    /// The reason phrase.
    pub reason: String,
}

/// A SOCKS4 or SOCKS4a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socks4Request {
    /// The command: 1 CONNECT, 2 BIND.
    pub command: u8,
    /// Where it leads (for SOCKS4a the name after the user id).
    pub target: Target,
    /// The user id, which SOCKS4 sends in the clear.
    pub userid: String,
    /// True for SOCKS4a (address 0.0.0.x, a host name follows).
    pub named: bool,
}

/// A SOCKS5 request (RFC 1928 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socks5Request {
    /// The command: 1 CONNECT, 2 BIND, 3 UDP ASSOCIATE.
    pub command: u8,
    /// Where it leads.
    pub target: Target,
}

/// RFC 1929 username/password subnegotiation sent by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socks5Login {
    /// The user name.
    pub user: String,
    /// The password, readable by anyone on the path.
    pub password: String,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Finds the end of an HTTP head (the empty line), searching from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    memchr::memmem::find(&buf[from.min(buf.len())..], b"\r\n\r\n").map(|i| from + i + 4)
}

/// Splits `host:port` or `[v6]:port`.
fn authority(s: &str) -> Option<Target> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h, p)
    } else {
        s.rsplit_once(':')?
    };
    let port: u16 = port.parse().ok()?;
    (!host.is_empty() && port != 0).then(|| Target {
        host: host.to_string(),
        port,
    })
}

fn proxy_auth(value: &str) -> ProxyAuth {
    let (scheme, cred) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic")
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(cred.trim())
        && let Some((user, password)) = text(&raw).split_once(':')
    {
        return ProxyAuth::Basic {
            user: user.to_string(),
            password: password.to_string(),
        };
    }
    ProxyAuth::Other(scheme.to_string())
}

/// Reads a `CONNECT host:port HTTP/1.x` request line (its line end optional).
pub fn http_connect_line(line: &[u8]) -> Step<Target> {
    use nom::bytes::complete::{tag as ctag, take_till1};
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let r: IResult<&[u8], &[u8]> = (
        ctag(&b"CONNECT "[..]),
        take_till1(|b| b == b' '),
        ctag(&b" HTTP/1."[..]),
        nom::character::complete::one_of("01"),
        nom::combinator::eof,
    )
        .map(|(_, target, ..): (_, &[u8], _, _, _)| target)
        .parse(line);
    match r {
        Ok((_, target)) => match authority(&text(target)) {
            Some(t) => Step::Done(line.len(), t),
            None => Step::Bad("HTTP CONNECT target is not host:port"),
        },
        Err(_) => Step::Bad("malformed HTTP CONNECT request line"),
    }
}

/// Reads an HTTP CONNECT request head; `scanned` bytes are known to hold no head end yet.
pub fn http_connect(buf: &[u8], scanned: usize) -> Step<HttpConnect> {
    if !b"CONNECT ".starts_with(&buf[..buf.len().min(8)]) {
        return Step::Bad("not an HTTP CONNECT request");
    }
    let Some(end) = head_end(buf, scanned) else {
        return if buf.len() > MAX_HTTP_HEAD {
            Step::Bad("HTTP CONNECT head too long")
        } else {
            Step::More
        };
    };
    let head = text(&buf[..end]);
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let target = match http_connect_line(request.as_bytes()) {
        Step::Done(_, t) => t,
        Step::More => return Step::Bad("HTTP CONNECT request line cut short"),
        Step::Bad(w) => return Step::Bad(w),
    };
    let auth = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, value)| proxy_auth(value));
    Step::Done(end, HttpConnect { target, auth })
}

/// Reads an HTTP response head to a CONNECT; `scanned` as for [`http_connect`].
pub fn http_status(buf: &[u8], scanned: usize) -> Step<HttpStatus> {
    if !b"HTTP/1.".starts_with(&buf[..buf.len().min(7)]) {
        return Step::Bad("not an HTTP response");
    }
    let Some(end) = head_end(buf, scanned) else {
        return if buf.len() > MAX_HTTP_HEAD {
            Step::Bad("HTTP response head too long")
        } else {
            Step::More
        };
    };
    let head = text(&buf[..end]);
    let line = head.split("\r\n").next().unwrap_or_default();
    let mut parts = line.splitn(3, ' ');
    let _version = parts.next();
    let code = parts
        .next()
        .filter(|c| c.len() == 3)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..600).contains(c));
    let Some(code) = code else {
        return Step::Bad("malformed HTTP status line");
    };
    let reason = parts.next().unwrap_or_default().to_string();
    Step::Done(end, HttpStatus { code, reason })
}

/// A NUL-terminated field of at most [`MAX_SOCKS4_FIELD`] bytes.
fn nul_field(input: &[u8]) -> IResult<&[u8], &[u8]> {
    let limit = input.len().min(MAX_SOCKS4_FIELD + 1);
    if !input[..limit].contains(&0) && limit > MAX_SOCKS4_FIELD {
        return Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::TooLarge,
        )));
    }
    let (rest, field) = take_until(&b"\0"[..])(input)?;
    let (rest, _) = tag(&b"\0"[..])(rest)?;
    Ok((rest, field))
}

fn socks4_request_inner(input: &[u8]) -> IResult<&[u8], Socks4Request> {
    let (input, _) = tag(&[4u8][..])(input)?;
    let (input, command) = byte(input)?;
    if !(1..=2).contains(&command) {
        return Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::Verify,
        )));
    }
    let (input, port) = be_u16(input)?;
    let (input, ip) = take(4usize)(input)?;
    let (input, userid) = nul_field(input)?;
    // SOCKS4a: 0.0.0.x with x non-zero says a host name follows the user id.
    let named = ip[..3] == [0, 0, 0] && ip[3] != 0;
    let (input, host) = if named {
        let (input, name) = nul_field(input)?;
        (input, text(name))
    } else {
        (
            input,
            std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string(),
        )
    };
    let target = Target { host, port };
    let userid = text(userid);
    Ok((
        input,
        Socks4Request {
            command,
            target,
            userid,
            named,
        },
    ))
}

/// Reads a SOCKS4 or SOCKS4a request.
pub fn socks4_request(buf: &[u8]) -> Step<Socks4Request> {
    step(buf, socks4_request_inner(buf), "malformed SOCKS4 request")
}

/// Reads a SOCKS4 reply: its code (90 granted, 91-93 refused).
pub fn socks4_reply(buf: &[u8]) -> Step<u8> {
    let r = (
        nom::branch::alt((tag(&[0u8][..]), tag(&[4u8][..]))),
        byte,
        take(6usize),
    )
        .map(|(_, code, _)| code)
        .parse(buf);
    match step(buf, r, "malformed SOCKS4 reply") {
        Step::Done(_, code) if !(90..=93).contains(&code) => Step::Bad("unknown SOCKS4 reply code"),
        s => s,
    }
}

/// Reads a SOCKS5 greeting: the methods the client offers.
pub fn socks5_greeting(buf: &[u8]) -> Step<Vec<u8>> {
    let r = (tag(&[5u8][..]), length_data(byte))
        .map(|(_, m): (_, &[u8])| m.to_vec())
        .parse(buf);
    match step(buf, r, "malformed SOCKS5 greeting") {
        Step::Done(_, m) if m.is_empty() => Step::Bad("SOCKS5 greeting offers no method"),
        s => s,
    }
}

/// Reads the server's SOCKS5 method choice.
pub fn socks5_method(buf: &[u8]) -> Step<u8> {
    let r = (tag(&[5u8][..]), byte).map(|(_, m)| m).parse(buf);
    step(buf, r, "malformed SOCKS5 method choice")
}

/// Reads an RFC 1929 username/password request.
pub fn socks5_login(buf: &[u8]) -> Step<Socks5Login> {
    let r = (tag(&[1u8][..]), length_data(byte), length_data(byte))
        .map(|(_, u, p)| Socks5Login {
            user: text(u),
            password: text(p),
        })
        .parse(buf);
    step(buf, r, "malformed SOCKS5 username/password request")
}

/// Reads an RFC 1929 status reply: 0 is success.
pub fn socks5_login_status(buf: &[u8]) -> Step<u8> {
    let r = (tag(&[1u8][..]), byte).map(|(_, s)| s).parse(buf);
    step(buf, r, "malformed SOCKS5 username/password status")
}

/// An RFC 1928 5 address: type, address and port.
fn socks5_address(input: &[u8]) -> IResult<&[u8], Target> {
    let (input, atyp) = byte(input)?;
    let (input, host) = match atyp {
        1 => {
            let (i, a) = take(4usize)(input)?;
            (
                i,
                std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string(),
            )
        }
        3 => {
            let (i, name) = length_data(byte).parse(input)?;
            (i, text(name))
        }
        4 => {
            let (i, a) = take(16usize)(input)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(a);
            (i, std::net::Ipv6Addr::from(octets).to_string())
        }
        _ => {
            return Err(nom::Err::Error(nom::error::Error::new(
                input,
                nom::error::ErrorKind::Switch,
            )));
        }
    };
    let (input, port) = be_u16(input)?;
    Ok((input, Target { host, port }))
}

/// Reads a SOCKS5 request.
pub fn socks5_request(buf: &[u8]) -> Step<Socks5Request> {
    let r = (tag(&[5u8][..]), byte, tag(&[0u8][..]), socks5_address)
        .map(|(_, command, _, target)| Socks5Request { command, target })
        .parse(buf);
    match step(buf, r, "malformed SOCKS5 request") {
        Step::Done(_, req) if !(1..=3).contains(&req.command) => {
            Step::Bad("unknown SOCKS5 command")
        }
        s => s,
    }
}

/// Reads a SOCKS5 reply: its code (0 succeeded). The bound address is read and not kept.
pub fn socks5_reply(buf: &[u8]) -> Step<u8> {
    let r = (tag(&[5u8][..]), byte, tag(&[0u8][..]), socks5_address)
        .map(|(_, code, _, _)| code)
        .parse(buf);
    step(buf, r, "malformed SOCKS5 reply")
}

/// What a SOCKS5 reply code means (RFC 1928 6).
pub fn socks5_reply_text(code: u8) -> &'static str {
    match code {
        0 => "succeeded",
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

/// What a SOCKS4 reply code means.
pub fn socks4_reply_text(code: u8) -> &'static str {
    match code {
        90 => "request granted",
        91 => "request rejected or failed",
        92 => "rejected: no identd on the client",
        _ => "rejected: identd and user id differ",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16) -> Target {
        Target {
            host: host.to_string(),
            port,
        }
    }

    /// Every strict prefix of a whole message asks for more; the whole is taken exactly.
    fn check_prefixes<T: std::fmt::Debug + PartialEq>(
        msg: &[u8],
        parse: impl Fn(&[u8]) -> Step<T>,
    ) {
        for cut in 0..msg.len() {
            assert_eq!(parse(&msg[..cut]), Step::More, "prefix {cut} of {msg:?}");
        }
        let mut longer = msg.to_vec();
        longer.extend_from_slice(b"EHLO x\r\n");
        match parse(&longer) {
            Step::Done(n, _) => assert_eq!(n, msg.len(), "{msg:?}"),
            other => panic!("{msg:?}: {other:?}"),
        }
    }

    #[test]
    fn http_connect_requests() {
        let req = b"CONNECT 127.0.0.1:587 HTTP/1.1\r\nHost: 127.0.0.1:587\r\n\
            Proxy-Authorization: Basic cHJveHl1c2VyOlByb3h5LVBhc3MtOQ==\r\n\r\n";
        assert_eq!(
            http_connect(req, 0),
            Step::Done(
                req.len(),
                HttpConnect {
                    target: target("127.0.0.1", 587),
                    auth: Some(ProxyAuth::Basic {
                        user: "proxyuser".into(),
                        password: "Proxy-Pass-9".into()
                    }),
                }
            )
        );
        check_prefixes(req, |b| http_connect(b, 0));
        let v6 =
            b"CONNECT [2001:db8::25]:25 HTTP/1.0\r\nproxy-authorization: NTLM TlRMTVNTUAAB\r\n\r\n";
        assert_eq!(
            http_connect(v6, 0),
            Step::Done(
                v6.len(),
                HttpConnect {
                    target: target("2001:db8::25", 25),
                    auth: Some(ProxyAuth::Other("NTLM".into())),
                }
            )
        );
        let bad: [&[u8]; 6] = [
            b"GET / HTTP/1.1\r\n\r\n",
            b"CONNECT mail.example HTTP/1.1\r\n\r\n",
            b"CONNECT mail.example:0 HTTP/1.1\r\n\r\n",
            b"CONNECT mail.example:25 HTTP/2\r\n\r\n",
            b"CONNECT  mail.example:25 HTTP/1.1\r\n\r\n",
            b"CONNECT mail.example:99999 HTTP/1.1\r\n\r\n",
        ];
        for b in bad {
            assert!(matches!(http_connect(b, 0), Step::Bad(_)), "{b:?}");
        }
        let mut long = b"CONNECT a:25 HTTP/1.1\r\n".to_vec();
        long.resize(MAX_HTTP_HEAD + 1, b'x');
        assert!(matches!(http_connect(&long, 0), Step::Bad(_)));
    }

    #[test]
    fn http_responses() {
        let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
        assert_eq!(
            http_status(ok, 0),
            Step::Done(
                ok.len(),
                HttpStatus {
                    code: 200,
                    reason: "Connection established".into()
                }
            )
        );
        check_prefixes(ok, |b| http_status(b, 0));
        let refused =
            b"HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n";
        assert!(matches!(
            http_status(refused, 0),
            Step::Done(_, HttpStatus { code: 407, .. })
        ));
        for b in [
            &b"220 mx ESMTP\r\n"[..],
            b"HTTP/1.1 20 x\r\n\r\n",
            b"HTTP/1.1 999 x\r\n\r\n",
        ] {
            assert!(matches!(http_status(b, 0), Step::Bad(_)), "{b:?}");
        }
    }

    #[test]
    fn socks4_and_socks4a_requests() {
        let v4 = b"\x04\x01\x00\x6e\x7f\x00\x00\x01alice\x00";
        assert_eq!(
            socks4_request(v4),
            Step::Done(
                v4.len(),
                Socks4Request {
                    command: 1,
                    target: target("127.0.0.1", 110),
                    userid: "alice".into(),
                    named: false
                }
            )
        );
        check_prefixes(v4, socks4_request);
        let v4a = b"\x04\x01\x09\xdd\x00\x00\x00\x01\x00localhost\x00";
        assert_eq!(
            socks4_request(v4a),
            Step::Done(
                v4a.len(),
                Socks4Request {
                    command: 1,
                    target: target("localhost", 2525),
                    userid: String::new(),
                    named: true
                }
            )
        );
        check_prefixes(v4a, socks4_request);
        assert!(matches!(
            socks4_request(b"\x04\x03\x00\x19\x01\x02\x03\x04\x00"),
            Step::Bad(_)
        ));
        let mut long = b"\x04\x01\x00\x19\x01\x02\x03\x04".to_vec();
        long.resize(8 + MAX_SOCKS4_FIELD + 1, b'u');
        assert!(matches!(socks4_request(&long), Step::Bad(_)));
        let reply = b"\x00\x5a\x00\x6e\x7f\x00\x00\x01";
        assert_eq!(socks4_reply(reply), Step::Done(8, 90));
        check_prefixes(reply, socks4_reply);
        assert_eq!(socks4_reply(b"\x00\x5b\0\0\0\0\0\0"), Step::Done(8, 91));
        assert!(matches!(
            socks4_reply(b"\x05\x5a\0\0\0\0\0\0"),
            Step::Bad(_)
        ));
        assert!(matches!(
            socks4_reply(b"\x00\x10\0\0\0\0\0\0"),
            Step::Bad(_)
        ));
    }

    #[test]
    fn socks5_messages() {
        let greeting = b"\x05\x03\x00\x01\x02";
        assert_eq!(socks5_greeting(greeting), Step::Done(5, vec![0, 1, 2]));
        check_prefixes(greeting, socks5_greeting);
        assert!(matches!(socks5_greeting(b"\x05\x00"), Step::Bad(_)));
        assert!(matches!(socks5_greeting(b"\x04\x01\x00"), Step::Bad(_)));
        assert_eq!(socks5_method(b"\x05\x02"), Step::Done(2, 2));
        check_prefixes(b"\x05\xff", socks5_method);
        let login = b"\x01\x09proxyuser\x0cProxy-Pass-9";
        assert_eq!(
            socks5_login(login),
            Step::Done(
                login.len(),
                Socks5Login {
                    user: "proxyuser".into(),
                    password: "Proxy-Pass-9".into()
                }
            )
        );
        check_prefixes(login, socks5_login);
        assert_eq!(socks5_login_status(b"\x01\x01"), Step::Done(2, 1));
        let requests: [(&[u8], Target); 3] = [
            (
                b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x19",
                target("127.0.0.1", 25),
            ),
            (
                b"\x05\x01\x00\x03\x09localhost\x00\x6e",
                target("localhost", 110),
            ),
            (
                b"\x05\x01\x00\x04\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x25\x01\xd1",
                target("2001:db8::25", 465),
            ),
        ];
        for (req, want) in requests {
            assert_eq!(
                socks5_request(req),
                Step::Done(
                    req.len(),
                    Socks5Request {
                        command: 1,
                        target: want
                    }
                )
            );
            check_prefixes(req, socks5_request);
        }
        assert!(matches!(
            socks5_request(b"\x05\x01\x00\x02\0\0"),
            Step::Bad(_)
        ));
        assert!(matches!(
            socks5_request(b"\x05\x09\x00\x01\0\0\0\0\0\0"),
            Step::Bad(_)
        ));
        assert!(matches!(
            socks5_request(b"\x05\x01\x01\x01\0\0\0\0\0\0"),
            Step::Bad(_)
        ));
        let reply = b"\x05\x00\x00\x01\x7f\x00\x00\x01\xd0\xe6";
        assert_eq!(socks5_reply(reply), Step::Done(reply.len(), 0));
        check_prefixes(reply, socks5_reply);
        assert_eq!(
            socks5_reply(b"\x05\x02\x00\x01\0\0\0\0\0\0"),
            Step::Done(10, 2)
        );
        assert_eq!(socks5_reply_text(2), "connection not allowed by ruleset");
    }
}
