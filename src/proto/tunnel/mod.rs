//! Mail carried through a proxy: an HTTP CONNECT tunnel or a SOCKS4, SOCKS4a or SOCKS5
//! connection. The handshake is read and recorded; the bytes after it, in each direction, go to
//! the mail dissector as if the flow began there.
//!
//! The dialogue inside is SMTP or POP3 by the target port when the port mapping names it (so
//! a tunnel to 465 or 995 is read as implicit TLS), else by content. A refused tunnel is
//! recorded with its status and carries no dialogue; it is reported only when its target is a
//! mail port, since nothing else says it concerned mail. A malformed handshake is an anomaly.

pub mod parse;
pub mod reader;

use super::detect::{Held, ProbeDissector};
use super::ports::PortMap;
use super::{Dissector, new_dissector};
use crate::limits::Limits;
use crate::session::{
    Credential, CredentialDetails, Direction, EventKind, PerDirection, SessionRecord,
};
use crate::time::Timestamp;
use parse::ProxyAuth;
use reader::{ClientReader, Progress, ServerReader};
use serde::Serialize;

/// Credential mechanisms of proxy logins: a SOCKS5 username/password, an HTTP Basic
/// `Proxy-Authorization`.
pub const PROXY_MECHANISMS: [&str; 2] = ["SOCKS5", "HTTP-BASIC"];

/// Most bytes per side held after its handshake while the other side's is not over.
pub const MAX_HELD_BYTES: usize = 4096;

/// The kind of proxy handshake; `kind` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelKind {
    /// HTTP `CONNECT host:port` (RFC 9110 9.3.6).
    HttpConnect,
    /// SOCKS4 with an IPv4 target.
    Socks4,
    /// SOCKS4a: a host name instead of an address.
    Socks4a,
    /// SOCKS5 (RFC 1928).
    Socks5,
}

/// How the client authenticated to the proxy; `auth` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelAuth {
    /// SOCKS5 method 0: none.
    None,
    /// SOCKS5 method 1: GSSAPI (RFC 1961).
    Gssapi,
    /// SOCKS5 method 2: username/password in the clear (RFC 1929).
    UsernamePassword,
    /// SOCKS5 0xFF: the proxy accepted none of the offered methods.
    NoAcceptable,
    /// HTTP `Proxy-Authorization: Basic`, user and password in base64 (RFC 7617).
    Basic,
    /// Another SOCKS5 method or HTTP scheme.
    Other,
}

/// A tunnel handshake as recorded on the session; `tunnel` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TunnelInfo {
    /// The kind of handshake.
    pub kind: TunnelKind,
    /// Where the client asked to go: a name or an address, as sent (null when not seen).
    pub target_host: Option<String>,
    /// The target TCP port (null when not seen).
    pub target_port: Option<u16>,
    /// How the client authenticated, when the handshake says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<TunnelAuth>,
    /// The proxy user name (SOCKS5 login, SOCKS4 user id, HTTP Basic user), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The proxy's reply code: HTTP status, SOCKS4 code (90 granted), SOCKS5 reply (0
    /// succeeded); null when no reply came or the proxy refused before replying.
    pub status: Option<u16>,
    /// The reply in words (the HTTP reason phrase, the meaning of a SOCKS code).
    pub reply: Option<String>,
    /// True when the tunnel opened, false when it was refused, null when the answer was not seen.
    pub established: Option<bool>,
    /// When the proxy's answer was complete (null when not seen).
    pub ts: Option<Timestamp>,
}

/// How one side's handshake ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Read to its end.
    Read,
    /// Not a handshake of the kind, and why.
    Bad(&'static str),
    /// Bytes of it were never captured.
    Gap,
    /// The side closed before its end.
    Closed,
}

#[derive(Debug, Default)]
struct Side {
    /// How and when the handshake of this side ended, once it has.
    end: Option<(End, Timestamp)>,
    /// What came after it, until the dialogue inside is set up.
    held: Vec<Held>,
    held_bytes: usize,
}

/// Reads a tunnel handshake, then hands the dialogue inside to a mail dissector.
pub struct TunnelDissector {
    limits: Limits,
    ports: PortMap,
    kind: TunnelKind,
    client: ClientReader,
    server: ServerReader,
    sides: PerDirection<Side>,
    /// Set once the handshake is recorded.
    recorded: bool,
    /// The dissector of the dialogue inside, when the tunnel carries one.
    inner: Option<Box<dyn Dissector>>,
}

impl std::fmt::Debug for TunnelDissector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelDissector")
            .field("kind", &self.kind)
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

impl TunnelDissector {
    /// A dissector for a `kind` handshake; the dialogue inside is bounded by `limits` and
    /// chosen by `ports` for the target port.
    pub fn new(kind: TunnelKind, limits: &Limits, ports: &PortMap) -> Self {
        TunnelDissector {
            limits: limits.clone(),
            ports: ports.clone(),
            kind,
            client: ClientReader::new(kind),
            server: ServerReader::new(kind),
            sides: PerDirection::default(),
            recorded: false,
            inner: None,
        }
    }

    /// Reads `data` as handshake bytes of `dir`, keeping what follows the handshake.
    fn read(&mut self, dir: Direction, data: &[u8], ts: Timestamp) {
        let progress = match dir {
            Direction::Client => self.client.feed(data, ts),
            Direction::Server => self.server.feed(data),
        };
        let side = self.sides.get_mut(dir);
        match progress {
            Progress::More => {}
            Progress::Done(rest) => {
                side.end = Some((End::Read, ts));
                if !rest.is_empty() {
                    side.held_bytes = rest.len();
                    side.held.push(Held::Data(ts, rest));
                }
            }
            Progress::Bad(why) => side.end = Some((End::Bad(why), ts)),
        }
    }

    /// Keeps an input of `dir` that came after its handshake.
    fn hold(&mut self, dir: Direction, item: Held, rec: &mut SessionRecord) {
        let side = self.sides.get_mut(dir);
        if let Held::Data(_, bytes) = &item {
            side.held_bytes += bytes.len();
        }
        side.held.push(item);
        if side.held_bytes > MAX_HELD_BYTES {
            // One side talks on while the other's handshake never ends: decide on what is known.
            self.record(rec);
        }
    }

    /// Records the handshake once both sides' handshakes have ended.
    fn settle(&mut self, rec: &mut SessionRecord) {
        if self.sides.client.end.is_some() && self.sides.server.end.is_some() {
            self.record(rec);
        }
    }

    /// What the two readers learnt, as the session's tunnel record.
    fn info(&self) -> TunnelInfo {
        let (c, s) = (&self.client, &self.server);
        let http_auth = c.http_auth.as_ref().map(|(a, _)| a);
        let auth = match (self.kind, s.method, http_auth) {
            (TunnelKind::Socks5, Some(m), _) => Some(match m {
                0 => TunnelAuth::None,
                1 => TunnelAuth::Gssapi,
                2 => TunnelAuth::UsernamePassword,
                0xFF => TunnelAuth::NoAcceptable,
                _ => TunnelAuth::Other,
            }),
            (_, _, Some(ProxyAuth::Basic { .. })) => Some(TunnelAuth::Basic),
            (_, _, Some(ProxyAuth::Other(_))) => Some(TunnelAuth::Other),
            _ => None,
        };
        let username = match (&c.login, http_auth) {
            (Some((login, _)), _) => Some(login.user.clone()),
            (None, Some(ProxyAuth::Basic { user, .. })) => Some(user.clone()),
            _ => c.userid.clone(),
        };
        TunnelInfo {
            kind: c.kind,
            target_host: c.target.as_ref().map(|t| t.host.clone()),
            target_port: c.target.as_ref().map(|t| t.port),
            auth,
            username,
            status: s.status,
            reply: s.reply.clone(),
            established: s.established,
            ts: self
                .sides
                .server
                .end
                .filter(|(e, _)| *e == End::Read)
                .map(|(_, ts)| ts),
        }
    }

    /// The cleartext proxy credential the client sent, if any.
    fn credential(&self) -> Option<Credential> {
        let (mechanism, user, password, ts, success) =
            match (&self.client.login, &self.client.http_auth) {
                (Some((login, ts)), _) => (
                    "SOCKS5",
                    &login.user,
                    &login.password,
                    *ts,
                    self.server.login_status.map(|s| s == 0),
                ),
                (None, Some((ProxyAuth::Basic { user, password }, ts))) => (
                    "HTTP-BASIC",
                    user,
                    password,
                    *ts,
                    // 407 is the proxy refusing the credentials; other answers accept them.
                    self.server.status.map(|s| s != 407),
                ),
                _ => return None,
            };
        Some(Credential {
            ts,
            mechanism: mechanism.to_string(),
            username: Some(user.clone()),
            password: Some(password.clone()),
            success,
            encrypted: false,
            details: CredentialDetails::default(),
        })
    }

    /// Records the handshake, then starts the dialogue inside with what each side held.
    fn record(&mut self, rec: &mut SessionRecord) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        let info = self.info();
        let mail = info.target_port.and_then(|p| self.ports.get(p));
        let mut malformed = false;
        for dir in [Direction::Client, Direction::Server] {
            match self.sides.get(dir).end {
                Some((End::Bad(why), ts)) => {
                    malformed = true;
                    rec.anomaly(ts, Some(dir), "tunnel_malformed", why);
                }
                Some((End::Gap, ts)) => rec.anomaly(
                    ts,
                    Some(dir),
                    "tunnel_gap",
                    "bytes of the proxy handshake were never captured",
                ),
                _ => {}
            }
        }
        if let Some(cred) = self.credential() {
            rec.credentials.push(cred);
        }
        let lost = |dir: Direction| matches!(self.sides.get(dir).end, Some((End::Gap, _)));
        let client_read = matches!(self.sides.client.end, Some((End::Read, _)));
        // The answer decides; when a gap took the request or the answer, the tunnel is followed
        // in good faith (the dialogue inside then says by its content whether it is mail).
        let follow = !malformed
            && ((client_read && self.client.command == Some(1)) || lost(Direction::Client))
            && (info.established == Some(true)
                || (info.established.is_none() && lost(Direction::Server)));
        if let Some((protocol, _)) = mail {
            rec.protocol = protocol;
        }
        rec.detected_by_content = true;
        rec.tunnel = Some(Box::new(info));
        if !follow {
            // A refused or broken tunnel: worth a report only when it aimed at a mail port.
            rec.not_mail |= mail.is_none();
            for dir in [Direction::Client, Direction::Server] {
                for item in std::mem::take(&mut self.sides.get_mut(dir).held) {
                    if let Held::Gap(ts, len) = item {
                        rec.push_event(ts, dir, EventKind::Gap { bytes: len });
                    }
                }
            }
            self.sides = PerDirection::default();
            return;
        }
        let mut inner: Box<dyn Dissector> = match mail {
            Some((protocol, framing)) => new_dissector(protocol, framing, &self.limits),
            None => Box::new(ProbeDissector::inside_tunnel(&self.limits, &self.ports)),
        };
        for dir in [Direction::Client, Direction::Server] {
            for item in std::mem::take(&mut self.sides.get_mut(dir).held) {
                item.replay(dir, inner.as_mut(), rec);
            }
        }
        self.sides = PerDirection::default();
        self.inner = Some(inner);
    }

    /// Where an input of `dir` goes: the dialogue inside, the side's hold, or nowhere.
    fn route(&mut self, dir: Direction) -> Route {
        if self.recorded {
            if self.inner.is_some() {
                Route::Inner
            } else {
                Route::Drop
            }
        } else if self.sides.get(dir).end.is_some() {
            Route::Hold
        } else {
            Route::Handshake
        }
    }
}

/// See [`TunnelDissector::route`].
enum Route {
    Inner,
    Hold,
    Handshake,
    Drop,
}

impl Dissector for TunnelDissector {
    fn on_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) {
        match self.route(dir) {
            Route::Inner => {
                if let Some(inner) = &mut self.inner {
                    inner.on_data(dir, data, ts, rec);
                }
            }
            Route::Hold => self.hold(dir, Held::Data(ts, data.to_vec()), rec),
            Route::Handshake => {
                self.read(dir, data, ts);
                self.settle(rec);
            }
            Route::Drop => {}
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        match self.route(dir) {
            Route::Inner => {
                if let Some(inner) = &mut self.inner {
                    inner.on_gap(dir, len, ts, rec);
                }
            }
            Route::Hold => self.hold(dir, Held::Gap(ts, len), rec),
            // Nothing reads the rest of a refused tunnel, but the loss is still shown.
            Route::Drop => rec.push_event(ts, dir, EventKind::Gap { bytes: len }),
            Route::Handshake => {
                // The handshake is taken to have ended inside the gap; the dialogue inside
                // sees the gap and resynchronises after it.
                if dir == Direction::Client {
                    self.client.on_gap();
                }
                let side = self.sides.get_mut(dir);
                side.end = Some((End::Gap, ts));
                side.held.push(Held::Gap(ts, len));
                self.settle(rec);
            }
        }
    }

    fn on_fin(&mut self, dir: Direction, ts: Timestamp, rec: &mut SessionRecord) {
        match self.route(dir) {
            Route::Inner => {
                if let Some(inner) = &mut self.inner {
                    inner.on_fin(dir, ts, rec);
                }
            }
            Route::Hold => self.hold(dir, Held::Fin(ts), rec),
            Route::Handshake => {
                let side = self.sides.get_mut(dir);
                side.end = Some((End::Closed, ts));
                side.held.push(Held::Fin(ts));
                self.settle(rec);
            }
            Route::Drop => {}
        }
    }

    fn on_end(&mut self, ts: Timestamp, rec: &mut SessionRecord) {
        self.record(rec);
        if let Some(inner) = &mut self.inner {
            inner.on_end(ts, rec);
        }
    }
}

#[cfg(test)]
mod tests;
