//! Mail found by content on a port no mapping names: the first line of each side decides.
//!
//! Like Zeek's dynamic protocol detection, a flow on any other TCP port is watched until one
//! side's first line shows SMTP or POP3, then handed, with the bytes seen so far, to the real
//! dissector. The test is cheap and final: a first byte that cannot open a text line, or first
//! lines that fit neither protocol, make the flow "not mail" and nothing more is looked at.
//!
//! What decides (RFC 5321 4.2 and 4.1.1.1, RFC 1939 4):
//! - SMTP: a server greeting `220` that names SMTP (`ESMTP`, `SMTP`), or a client whose first
//!   line is `EHLO` / `HELO`. A bare `220` is not enough: FTP greets with `220` too.
//! - POP3: a server greeting `+OK`, or a client whose first line is `CAPA`, `APOP` or `STLS`.
//!   `USER` alone is not enough: FTP clients send it too.
//! - A proxy handshake: a client opening with `CONNECT host:port HTTP/1.x`, a SOCKS4 request or
//!   a SOCKS5 greeting goes to [`TunnelDissector`], which records the tunnel and reads the mail
//!   dialogue inside it. A server opening with an HTTP status line or a SOCKS reply decides
//!   nothing on its own: the client's first bytes say whether it is a proxy.

use super::ports::PortMap;
use super::tunnel::{TunnelDissector, TunnelKind, parse};
use super::{Dissector, Framing, new_dissector};
use crate::limits::Limits;
use crate::session::{Direction, PerDirection, Protocol, SessionRecord};
use crate::time::Timestamp;

/// Most bytes per side looked at before the flow is declared not mail.
pub const MAX_PROBE_BYTES: usize = 512;
/// Most bytes per side held while the other side has not yet decided.
pub const MAX_HELD_BYTES: usize = 4096;

/// What one side's first line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Not enough bytes yet.
    Undecided,
    /// Mail, of this protocol.
    Mail(Protocol),
    /// The client opens a proxy tunnel of this kind.
    Tunnel(TunnelKind),
    /// A line, but one that decides nothing (`USER`, a bare `220`).
    Neutral,
    /// Not SMTP or POP3.
    NotMail,
}

/// Whether a client's first bytes open a proxy handshake, as far as they go.
fn tunnel_verdict(bytes: &[u8]) -> Option<Verdict> {
    let kind = match bytes.first()? {
        4 => TunnelKind::Socks4,
        5 => TunnelKind::Socks5,
        b'C' if b"CONNECT ".starts_with(&bytes[..bytes.len().min(8)]) => TunnelKind::HttpConnect,
        _ => return None,
    };
    let step = match kind {
        TunnelKind::Socks5 => parse::socks5_greeting(bytes).map_unit(),
        // The command and port are enough: the user id and host name may be long.
        TunnelKind::Socks4 | TunnelKind::Socks4a => match bytes.get(1) {
            None => parse::Step::More,
            Some(1 | 2) => parse::Step::Done(2, ()),
            Some(_) => parse::Step::Bad("not a SOCKS4 command"),
        },
        // `CONNECT ` is enough, and only it counts, so the verdict is the same however the
        // line is cut; the tunnel reader checks the rest.
        TunnelKind::HttpConnect if bytes.len() < 8 => parse::Step::More,
        TunnelKind::HttpConnect => parse::Step::Done(8, ()),
    };
    Some(match step {
        parse::Step::Done(..) => Verdict::Tunnel(kind),
        parse::Step::More => Verdict::Undecided,
        parse::Step::Bad(_) => Verdict::NotMail,
    })
}

/// Reads `dir`'s first line from its first bytes.
fn first_line_verdict(dir: Direction, bytes: &[u8]) -> Verdict {
    match dir {
        Direction::Client => {
            if let Some(v) = tunnel_verdict(bytes) {
                return v;
            }
        }
        // A proxy's HTTP status line or SOCKS reply: the client's bytes decide.
        Direction::Server => {
            if matches!(bytes.first(), Some(0 | 5))
                || (bytes.len() >= 5 && b"HTTP/1.".starts_with(&bytes[..bytes.len().min(7)]))
            {
                return Verdict::Neutral;
            }
        }
    }
    // Only the first line counts: what follows it in the same chunk must not change the verdict
    // that the line alone, arriving in a packet of its own, would give.
    let end = bytes.iter().position(|&b| b == b'\n');
    if bytes[..end.unwrap_or(bytes.len())]
        .iter()
        .any(|&b| !(b.is_ascii_graphic() || b == b' ' || b == b'\r' || b == b'\t'))
    {
        // A mail dialogue opens with ASCII text; TLS, HTTP/2 or any binary protocol does not.
        return Verdict::NotMail;
    }
    let Some(end) = end else {
        return if bytes.len() >= MAX_PROBE_BYTES {
            Verdict::NotMail
        } else {
            Verdict::Undecided
        };
    };
    let line = String::from_utf8_lossy(&bytes[..end]).to_ascii_uppercase();
    let line = line.trim_end_matches('\r');
    let verb = line.split(' ').next().unwrap_or_default();
    match dir {
        Direction::Server => {
            if (line.starts_with("220 ") || line.starts_with("220-") || line == "220")
                && line.contains("SMTP")
            {
                Verdict::Mail(Protocol::Smtp)
            } else if line.starts_with("+OK") {
                Verdict::Mail(Protocol::Pop3)
            } else if line.starts_with("220") {
                Verdict::Neutral
            } else {
                Verdict::NotMail
            }
        }
        Direction::Client => match verb {
            "EHLO" | "HELO" => Verdict::Mail(Protocol::Smtp),
            "CAPA" | "APOP" | "STLS" => Verdict::Mail(Protocol::Pop3),
            "USER" | "AUTH" | "QUIT" | "NOOP" => Verdict::Neutral,
            _ => Verdict::NotMail,
        },
    }
}

/// An input held until the protocol is known.
#[derive(Debug)]
pub(crate) enum Held {
    /// Bytes, with the capture time of their packet.
    Data(Timestamp, Vec<u8>),
    /// Bytes never captured.
    Gap(Timestamp, u64),
    /// The side closed.
    Fin(Timestamp),
}

impl Held {
    /// Hands the input, as sent by `dir`, to `inner`.
    pub(crate) fn replay(self, dir: Direction, inner: &mut dyn Dissector, rec: &mut SessionRecord) {
        match self {
            Held::Data(ts, bytes) => inner.on_data(dir, &bytes, ts, rec),
            Held::Gap(ts, len) => inner.on_gap(dir, len, ts, rec),
            Held::Fin(ts) => inner.on_fin(dir, ts, rec),
        }
    }
}

#[derive(Debug, Default)]
struct Side {
    held: Vec<Held>,
    held_bytes: usize,
    /// The side's first bytes, up to [`MAX_PROBE_BYTES`].
    head: Vec<u8>,
    verdict: Option<Verdict>,
}

/// Watches a flow on an unmapped port until its content shows SMTP or POP3.
pub struct ProbeDissector {
    limits: Limits,
    /// The mail ports, for a tunnel's target.
    ports: PortMap,
    /// Inside a tunnel: no tunnel in it is followed, and a gap before the first line, which
    /// took the end of the handshake, leaves the side undecided.
    in_tunnel: bool,
    sides: PerDirection<Side>,
    /// The real dissector, once the protocol is known.
    inner: Option<Box<dyn Dissector>>,
    /// The flow was found not to carry mail: nothing more is read.
    not_mail: bool,
}

impl std::fmt::Debug for ProbeDissector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeDissector")
            .field("decided", &self.inner.is_some())
            .field("not_mail", &self.not_mail)
            .finish_non_exhaustive()
    }
}

impl ProbeDissector {
    /// A probe whose dissector, once chosen, is bounded by `limits`; a tunnel's target port
    /// is looked up in `ports`.
    pub fn new(limits: &Limits, ports: &PortMap) -> Self {
        ProbeDissector {
            limits: limits.clone(),
            ports: ports.clone(),
            in_tunnel: false,
            sides: PerDirection::default(),
            inner: None,
            not_mail: false,
        }
    }

    /// A probe for the dialogue inside a tunnel whose target is no mail port.
    pub fn inside_tunnel(limits: &Limits, ports: &PortMap) -> Self {
        ProbeDissector {
            in_tunnel: true,
            ..ProbeDissector::new(limits, ports)
        }
    }

    fn hold(&mut self, dir: Direction, item: Held, rec: &mut SessionRecord) {
        let side = self.sides.get_mut(dir);
        if let Held::Data(_, bytes) = &item
            && side.head.len() < MAX_PROBE_BYTES
        {
            let room = MAX_PROBE_BYTES - side.head.len();
            side.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        let ends = matches!(item, Held::Gap(..) | Held::Fin(_));
        if let Held::Data(_, bytes) = &item {
            side.held_bytes += bytes.len();
        }
        side.held.push(item);
        let over = side.held_bytes > MAX_HELD_BYTES;
        if side.verdict.is_none() || side.verdict == Some(Verdict::Undecided) {
            let v = match first_line_verdict(dir, &side.head) {
                Verdict::Tunnel(_) if self.in_tunnel => Verdict::NotMail,
                v => v,
            };
            let gap = matches!(side.held.last(), Some(Held::Gap(..)));
            // A gap or a close before a whole first line leaves nothing to decide on.
            side.verdict = Some(match v {
                Verdict::Undecided if ends && gap && self.in_tunnel && side.head.is_empty() => {
                    Verdict::Neutral
                }
                Verdict::Undecided if ends => Verdict::NotMail,
                v => v,
            });
        }
        // The verdict first: whether a big chunk or many small ones carried the first line,
        // it decides the same way.
        self.decide(rec);
        if over && self.inner.is_none() && !self.not_mail {
            // One side talks on while the other says nothing that shows mail.
            self.give_up(rec);
        }
    }

    /// Chooses once one side is decisive, or gives up once both sides are read and neither is.
    fn decide(&mut self, rec: &mut SessionRecord) {
        let (c, s) = (self.sides.client.verdict, self.sides.server.verdict);
        if let Some(Verdict::Tunnel(kind)) = c {
            let tunnel = TunnelDissector::new(kind, &self.limits, &self.ports);
            return self.hand_over(Box::new(tunnel), rec);
        }
        let found = [c, s].into_iter().find_map(|v| match v {
            Some(Verdict::Mail(p)) => Some(p),
            _ => None,
        });
        if let Some(protocol) = found {
            rec.protocol = protocol;
            rec.detected_by_content = true;
            let inner = new_dissector(protocol, Framing::Plain, &self.limits);
            return self.hand_over(inner, rec);
        }
        let settled = |v: Option<Verdict>| matches!(v, Some(Verdict::NotMail | Verdict::Neutral));
        let one_side_lost =
            matches!(c, Some(Verdict::NotMail)) || matches!(s, Some(Verdict::NotMail));
        if (settled(c) && settled(s)) || one_side_lost {
            self.give_up(rec);
        }
    }

    /// Replays what each side held into `inner`, which reads the rest of the flow.
    fn hand_over(&mut self, mut inner: Box<dyn Dissector>, rec: &mut SessionRecord) {
        for dir in [Direction::Client, Direction::Server] {
            for item in std::mem::take(&mut self.sides.get_mut(dir).held) {
                item.replay(dir, inner.as_mut(), rec);
            }
        }
        self.sides = PerDirection::default();
        self.inner = Some(inner);
    }

    fn give_up(&mut self, rec: &mut SessionRecord) {
        self.not_mail = true;
        rec.not_mail = true;
        self.sides = PerDirection::default();
    }
}

impl Dissector for ProbeDissector {
    fn on_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) {
        match (&mut self.inner, self.not_mail) {
            (Some(inner), _) => inner.on_data(dir, data, ts, rec),
            (None, true) => {}
            (None, false) => self.hold(dir, Held::Data(ts, data.to_vec()), rec),
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        match (&mut self.inner, self.not_mail) {
            (Some(inner), _) => inner.on_gap(dir, len, ts, rec),
            (None, true) => {}
            (None, false) => self.hold(dir, Held::Gap(ts, len), rec),
        }
    }

    fn on_fin(&mut self, dir: Direction, ts: Timestamp, rec: &mut SessionRecord) {
        match (&mut self.inner, self.not_mail) {
            (Some(inner), _) => inner.on_fin(dir, ts, rec),
            (None, true) => {}
            (None, false) => self.hold(dir, Held::Fin(ts), rec),
        }
    }

    fn on_end(&mut self, ts: Timestamp, rec: &mut SessionRecord) {
        match &mut self.inner {
            Some(inner) => inner.on_end(ts, rec),
            None => self.give_up(rec),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the tunnel fuzz target: a first chunk longer than the hold decided nothing,
    /// while the same bytes in small pieces were found to be POP3.
    #[test]
    fn a_big_first_chunk_decides_as_small_ones_do() {
        let mut client = b"APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n".to_vec();
        client.resize(MAX_HELD_BYTES + 100, b'x');
        let run = |chunk: usize| {
            let limits = Limits::default();
            let mut rec = SessionRecord::new(
                1,
                Protocol::Smtp,
                crate::session::Endpoint {
                    ip: "192.0.2.1".parse().unwrap(),
                    port: 40000,
                },
                crate::session::Endpoint {
                    ip: "192.0.2.2".parse().unwrap(),
                    port: 8110,
                },
                Timestamp(0),
            );
            let mut probe = ProbeDissector::new(&limits, &PortMap::default());
            probe.on_data(
                Direction::Server,
                b"+OK ready <1.2@x>\r",
                Timestamp(0),
                &mut rec,
            );
            for piece in client.chunks(chunk) {
                probe.on_data(Direction::Client, piece, Timestamp(0), &mut rec);
            }
            (rec.not_mail, rec.protocol)
        };
        assert_eq!(run(client.len()), (false, Protocol::Pop3));
        assert_eq!(run(7), run(client.len()));
    }

    #[test]
    fn first_lines_decide_or_wait() {
        use Direction::{Client as C, Server as S};
        let cases: [(Direction, &[u8], Verdict); 15] = [
            (
                S,
                b"220 mx.example ESMTP Postfix\r\n",
                Verdict::Mail(Protocol::Smtp),
            ),
            (
                S,
                b"220-mx.example Microsoft ESMTP MAIL Service\r\n",
                Verdict::Mail(Protocol::Smtp),
            ),
            (S, b"+OK Dovecot ready.\r\n", Verdict::Mail(Protocol::Pop3)),
            (S, b"220 ProFTPD Server\r\n", Verdict::Neutral),
            // A proxy's answer: the client's CONNECT or GET decides.
            (S, b"HTTP/1.1 200 OK\r\n", Verdict::Neutral),
            (S, b"* OK IMAP4rev1\r\n", Verdict::NotMail),
            (S, b"220 mx.exa", Verdict::Undecided),
            (C, b"EHLO client.example\r\n", Verdict::Mail(Protocol::Smtp)),
            (C, b"helo x\n", Verdict::Mail(Protocol::Smtp)),
            (C, b"CAPA\r\n", Verdict::Mail(Protocol::Pop3)),
            (C, b"USER anonymous\r\n", Verdict::Neutral),
            (C, b"GET / HTTP/1.1\r\n", Verdict::NotMail),
            (C, &[0x16, 0x03, 0x01, 0x00], Verdict::NotMail),
            (C, &[b'A'; MAX_PROBE_BYTES], Verdict::NotMail),
            // Bytes after the first line do not change what it says.
            (C, b"CAPA\r\n\x01\x02", Verdict::Mail(Protocol::Pop3)),
        ];
        for (dir, bytes, want) in cases {
            assert_eq!(
                first_line_verdict(dir, bytes),
                want,
                "{dir:?} {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
