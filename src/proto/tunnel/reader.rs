//! One side of a tunnel handshake read as a stream: messages in order, the rest handed on.
//!
//! Each side is read on its own bytes only, so chunking and the interleaving of the two sides
//! change nothing. The client's SOCKS5 stream says itself whether a login follows its greeting
//! (RFC 1929 messages start with version 1, RFC 1928 requests with 5); the server's says it by
//! the method it chose.

use super::TunnelKind;
use super::parse::{self, ProxyAuth, Socks5Login, Step, Target};
use crate::time::Timestamp;

/// What a side's bytes so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The handshake is not over yet.
    More,
    /// The handshake is over; these bytes of the last chunk came after it.
    Done(Vec<u8>),
    /// The bytes are no handshake of this kind, and why.
    Bad(&'static str),
}

/// Where a side's reading is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    HttpRequest,
    HttpResponse,
    Socks4Request,
    Socks4Reply,
    Socks5Greeting,
    /// After the greeting: a login or the request, by the next byte.
    Socks5AfterGreeting,
    Socks5Login,
    Socks5Request,
    Socks5Method,
    Socks5LoginStatus,
    Socks5Reply,
    Over,
    /// The bytes were no handshake: nothing more is read.
    Failed,
}

/// Bytes of one side not yet read as a message (bounded by the parsers' own limits).
#[derive(Debug, Default)]
struct Buffer {
    bytes: Vec<u8>,
    /// Bytes known to hold no end of an HTTP head.
    scanned: usize,
}

impl Buffer {
    fn consume(&mut self, n: usize) {
        self.bytes.drain(..n);
        self.scanned = 0;
    }
}

/// The client's side: requests, greeting and login.
#[derive(Debug)]
pub struct ClientReader {
    stage: Stage,
    buf: Buffer,
    /// The kind, SOCKS4 turning into SOCKS4a when the request names its host.
    pub kind: TunnelKind,
    /// Where the client asked to go.
    pub target: Option<Target>,
    /// The SOCKS command (1 CONNECT), when one was read.
    pub command: Option<u8>,
    /// SOCKS5 methods offered.
    pub methods: Vec<u8>,
    /// RFC 1929 login, with the time it was complete.
    pub login: Option<(Socks5Login, Timestamp)>,
    /// HTTP proxy credentials, with the time the request was complete.
    pub http_auth: Option<(ProxyAuth, Timestamp)>,
    /// SOCKS4 user id.
    pub userid: Option<String>,
}

impl ClientReader {
    /// A reader for the client side of a `kind` handshake.
    pub fn new(kind: TunnelKind) -> Self {
        let stage = match kind {
            TunnelKind::HttpConnect => Stage::HttpRequest,
            TunnelKind::Socks4 | TunnelKind::Socks4a => Stage::Socks4Request,
            TunnelKind::Socks5 => Stage::Socks5Greeting,
        };
        ClientReader {
            stage,
            buf: Buffer::default(),
            kind,
            target: None,
            command: None,
            methods: Vec::new(),
            login: None,
            http_auth: None,
            userid: None,
        }
    }

    /// Reads the next chunk of the client's bytes.
    pub fn feed(&mut self, data: &[u8], ts: Timestamp) -> Progress {
        match self.stage {
            Stage::Over => return Progress::Done(data.to_vec()),
            Stage::Failed => return Progress::Bad("bytes after a malformed handshake"),
            _ => {}
        }
        self.buf.bytes.extend_from_slice(data);
        loop {
            let b = &self.buf.bytes;
            let taken = match self.stage {
                Stage::HttpRequest => match parse::http_connect(b, self.buf.scanned) {
                    Step::Done(n, req) => {
                        self.target = Some(req.target);
                        self.command = Some(1);
                        self.http_auth = req.auth.map(|a| (a, ts));
                        self.stage = Stage::Over;
                        Step::Done(n, ())
                    }
                    Step::More => {
                        self.buf.scanned = b.len().saturating_sub(3);
                        Step::More
                    }
                    Step::Bad(w) => Step::Bad(w),
                },
                Stage::Socks4Request => self.socks4(),
                Stage::Socks5Greeting => match parse::socks5_greeting(b) {
                    Step::Done(n, methods) => {
                        self.methods = methods;
                        self.stage = Stage::Socks5AfterGreeting;
                        Step::Done(n, ())
                    }
                    other => other.map_unit(),
                },
                Stage::Socks5AfterGreeting => match b.first() {
                    None => Step::More,
                    Some(1) => {
                        self.stage = Stage::Socks5Login;
                        Step::Done(0, ())
                    }
                    Some(5) => {
                        self.stage = Stage::Socks5Request;
                        Step::Done(0, ())
                    }
                    Some(_) => Step::Bad("SOCKS5 greeting followed by neither login nor request"),
                },
                Stage::Socks5Login => match parse::socks5_login(b) {
                    Step::Done(n, login) => {
                        self.login = Some((login, ts));
                        self.stage = Stage::Socks5Request;
                        Step::Done(n, ())
                    }
                    other => other.map_unit(),
                },
                Stage::Socks5Request => match parse::socks5_request(b) {
                    Step::Done(n, req) => {
                        self.target = Some(req.target);
                        self.command = Some(req.command);
                        self.stage = Stage::Over;
                        Step::Done(n, ())
                    }
                    other => other.map_unit(),
                },
                _ => Step::Bad("client reader in a server stage"),
            };
            if let Some(p) = finish(&mut self.buf, self.stage, taken) {
                if matches!(p, Progress::Bad(_)) {
                    self.stage = Stage::Failed;
                }
                return p;
            }
        }
    }

    /// Bytes of the handshake were lost: keeps what the bytes before the gap still show (an
    /// HTTP request line whose headers were cut).
    pub fn on_gap(&mut self) {
        if self.stage == Stage::HttpRequest
            && let Some(end) = self.buf.bytes.iter().position(|&b| b == b'\n')
            && let Step::Done(_, target) = parse::http_connect_line(&self.buf.bytes[..end])
        {
            self.target = Some(target);
            self.command = Some(1);
        }
        self.buf = Buffer::default();
        self.stage = Stage::Failed;
    }

    fn socks4(&mut self) -> Step<()> {
        match parse::socks4_request(&self.buf.bytes) {
            Step::Done(n, req) => {
                if req.named {
                    self.kind = TunnelKind::Socks4a;
                }
                self.target = Some(req.target);
                self.command = Some(req.command);
                self.userid = Some(req.userid).filter(|u| !u.is_empty());
                self.stage = Stage::Over;
                Step::Done(n, ())
            }
            other => other.map_unit(),
        }
    }
}

/// The proxy's side: method choice, login status and reply.
#[derive(Debug)]
pub struct ServerReader {
    stage: Stage,
    buf: Buffer,
    /// The SOCKS5 method the proxy chose.
    pub method: Option<u8>,
    /// The RFC 1929 status (0 success).
    pub login_status: Option<u8>,
    /// The reply code: HTTP status, SOCKS4 code or SOCKS5 reply field.
    pub status: Option<u16>,
    /// What the reply says, in words.
    pub reply: Option<String>,
    /// True when the tunnel was opened, false when refused; None before the answer.
    pub established: Option<bool>,
}

impl ServerReader {
    /// A reader for the proxy side of a `kind` handshake.
    pub fn new(kind: TunnelKind) -> Self {
        let stage = match kind {
            TunnelKind::HttpConnect => Stage::HttpResponse,
            TunnelKind::Socks4 | TunnelKind::Socks4a => Stage::Socks4Reply,
            TunnelKind::Socks5 => Stage::Socks5Method,
        };
        ServerReader {
            stage,
            buf: Buffer::default(),
            method: None,
            login_status: None,
            status: None,
            reply: None,
            established: None,
        }
    }

    fn answer(&mut self, status: Option<u16>, reply: &str, ok: bool) {
        self.status = status;
        self.reply = Some(reply.to_string());
        self.established = Some(ok);
        self.stage = Stage::Over;
    }

    /// Reads the next chunk of the proxy's bytes.
    pub fn feed(&mut self, data: &[u8]) -> Progress {
        match self.stage {
            Stage::Over => return Progress::Done(data.to_vec()),
            Stage::Failed => return Progress::Bad("bytes after a malformed handshake"),
            _ => {}
        }
        self.buf.bytes.extend_from_slice(data);
        loop {
            let b = &self.buf.bytes;
            let taken = match self.stage {
                Stage::HttpResponse => match parse::http_status(b, self.buf.scanned) {
                    Step::Done(n, st) => {
                        let ok = (200..300).contains(&st.code);
                        self.answer(Some(st.code), &st.reason, ok);
                        Step::Done(n, ())
                    }
                    Step::More => {
                        self.buf.scanned = b.len().saturating_sub(3);
                        Step::More
                    }
                    Step::Bad(w) => Step::Bad(w),
                },
                Stage::Socks4Reply => match parse::socks4_reply(b) {
                    Step::Done(n, code) => {
                        self.answer(
                            Some(code.into()),
                            parse::socks4_reply_text(code),
                            code == 90,
                        );
                        Step::Done(n, ())
                    }
                    other => other.map_unit(),
                },
                Stage::Socks5Method => self.socks5_method(),
                Stage::Socks5LoginStatus => match parse::socks5_login_status(b) {
                    Step::Done(n, st) => {
                        self.login_status = Some(st);
                        if st == 0 {
                            self.stage = Stage::Socks5Reply;
                        } else {
                            self.answer(None, "authentication failed", false);
                        }
                        Step::Done(n, ())
                    }
                    other => other.map_unit(),
                },
                Stage::Socks5Reply => match parse::socks5_reply(b) {
                    Step::Done(n, code) => {
                        self.answer(Some(code.into()), parse::socks5_reply_text(code), code == 0);
                        Step::Done(n, ())
                    }
                    other => other.map_unit(),
                },
                _ => Step::Bad("server reader in a client stage"),
            };
            if let Some(p) = finish(&mut self.buf, self.stage, taken) {
                if matches!(p, Progress::Bad(_)) {
                    self.stage = Stage::Failed;
                }
                return p;
            }
        }
    }

    fn socks5_method(&mut self) -> Step<()> {
        match parse::socks5_method(&self.buf.bytes) {
            Step::Done(n, method) => {
                self.method = Some(method);
                match method {
                    0 => self.stage = Stage::Socks5Reply,
                    2 => self.stage = Stage::Socks5LoginStatus,
                    0xFF => self.answer(None, "no acceptable methods", false),
                    // GSSAPI and private methods negotiate in ways not followed here.
                    _ => return Step::Bad("SOCKS5 method whose subnegotiation is not followed"),
                }
                Step::Done(n, ())
            }
            other => other.map_unit(),
        }
    }
}

/// Applies one parse step to a side's buffer: `None` to read on, or what the side now is.
fn finish(buf: &mut Buffer, stage: Stage, taken: Step<()>) -> Option<Progress> {
    match taken {
        Step::Done(n, ()) => {
            buf.consume(n);
            (stage == Stage::Over).then(|| Progress::Done(std::mem::take(&mut buf.bytes)))
        }
        Step::More => Some(Progress::More),
        Step::Bad(why) => {
            buf.bytes = Vec::new();
            Some(Progress::Bad(why))
        }
    }
}
