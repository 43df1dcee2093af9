//! Tunnel handshakes fed through the content probe, whole and cut at every byte.

use super::{TunnelAuth, TunnelKind};
use crate::limits::Limits;
use crate::proto::Dissector;
use crate::proto::detect::ProbeDissector;
use crate::proto::ports::PortMap;
use crate::session::{Direction, Endpoint, EventKind, Protocol, SessionRecord};
use crate::time::Timestamp;
use proptest::prelude::*;

const C: Direction = Direction::Client;
const S: Direction = Direction::Server;
const TS: Timestamp = Timestamp(1_000_000);

const SMTP_CLIENT: &[u8] = b"EHLO client.example\r\nQUIT\r\n";
const SMTP_SERVER: &[u8] = b"220 mx.example ESMTP\r\n250 mx.example\r\n221 bye\r\n";
const POP3_CLIENT: &[u8] = b"USER bob\r\nPASS Builder-7\r\nQUIT\r\n";
const POP3_SERVER: &[u8] = b"+OK ready\r\n+OK\r\n+OK logged in\r\n+OK bye\r\n";

/// A handshake and the dialogue after it, with what the record should say.
struct Case {
    name: &'static str,
    client: Vec<u8>,
    server: Vec<u8>,
    kind: TunnelKind,
    target: Option<(&'static str, u16)>,
    established: Option<bool>,
    status: Option<u16>,
    auth: Option<TunnelAuth>,
    username: Option<&'static str>,
    /// The protocol of the dialogue inside, or None when the flow is not reported.
    protocol: Option<Protocol>,
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn cases() -> Vec<Case> {
    let basic = b"CONNECT mail.example:587 HTTP/1.1\r\nHost: mail.example:587\r\n\
        Proxy-Authorization: Basic cHJveHl1c2VyOlByb3h5LVBhc3MtOQ==\r\n\r\n";
    vec![
        Case {
            name: "http connect with basic, smtp on 587",
            client: cat(&[basic, SMTP_CLIENT]),
            server: cat(&[b"HTTP/1.1 200 Connection established\r\n\r\n", SMTP_SERVER]),
            kind: TunnelKind::HttpConnect,
            target: Some(("mail.example", 587)),
            established: Some(true),
            status: Some(200),
            auth: Some(TunnelAuth::Basic),
            username: Some("proxyuser"),
            protocol: Some(Protocol::Smtp),
        },
        Case {
            name: "http connect refused with 407",
            client: b"CONNECT 192.0.2.25:110 HTTP/1.1\r\n\r\n".to_vec(),
            server: b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
            kind: TunnelKind::HttpConnect,
            target: Some(("192.0.2.25", 110)),
            established: Some(false),
            status: Some(407),
            auth: None,
            username: None,
            protocol: Some(Protocol::Pop3),
        },
        Case {
            name: "socks4 with a user id, pop3 on 110",
            client: cat(&[b"\x04\x01\x00\x6e\xc0\x00\x02\x19alice\x00", POP3_CLIENT]),
            server: cat(&[b"\x00\x5a\x00\x00\x00\x00\x00\x00", POP3_SERVER]),
            kind: TunnelKind::Socks4,
            target: Some(("192.0.2.25", 110)),
            established: Some(true),
            status: Some(90),
            auth: None,
            username: Some("alice"),
            protocol: Some(Protocol::Pop3),
        },
        Case {
            name: "socks4a by name to 2525, smtp by content",
            client: cat(&[
                b"\x04\x01\x09\xdd\x00\x00\x00\x01\x00mail.example\x00",
                SMTP_CLIENT,
            ]),
            server: cat(&[b"\x00\x5a\x00\x00\x00\x00\x00\x00", SMTP_SERVER]),
            kind: TunnelKind::Socks4a,
            target: Some(("mail.example", 2525)),
            established: Some(true),
            status: Some(90),
            auth: None,
            username: None,
            protocol: Some(Protocol::Smtp),
        },
        Case {
            name: "socks5 username/password, pop3 by name",
            client: cat(&[
                b"\x05\x02\x00\x02\x01\x09proxyuser\x0cProxy-Pass-9",
                b"\x05\x01\x00\x03\x0cmail.example\x00\x6e",
                POP3_CLIENT,
            ]),
            server: cat(&[
                b"\x05\x02\x01\x00\x05\x00\x00\x01\xc0\x00\x02\x01\xd0\xe6",
                POP3_SERVER,
            ]),
            kind: TunnelKind::Socks5,
            target: Some(("mail.example", 110)),
            established: Some(true),
            status: Some(0),
            auth: Some(TunnelAuth::UsernamePassword),
            username: Some("proxyuser"),
            protocol: Some(Protocol::Pop3),
        },
        Case {
            name: "socks5 without authentication, IPv6 target on 25",
            client: cat(&[
                b"\x05\x01\x00\x05\x01\x00\x04\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x25\x00\x19",
                SMTP_CLIENT,
            ]),
            server: cat(&[
                b"\x05\x00\x05\x00\x00\x01\xc0\x00\x02\x01\xd0\xe6",
                SMTP_SERVER,
            ]),
            kind: TunnelKind::Socks5,
            target: Some(("2001:db8::25", 25)),
            established: Some(true),
            status: Some(0),
            auth: Some(TunnelAuth::None),
            username: None,
            protocol: Some(Protocol::Smtp),
        },
        Case {
            name: "socks5 refused by the rules",
            client: b"\x05\x01\x00\x05\x01\x00\x03\x0cmail.example\x00\x19".to_vec(),
            server: b"\x05\x00\x05\x02\x00\x01\0\0\0\0\0\0".to_vec(),
            kind: TunnelKind::Socks5,
            target: Some(("mail.example", 25)),
            established: Some(false),
            status: Some(2),
            auth: Some(TunnelAuth::None),
            username: None,
            protocol: Some(Protocol::Smtp),
        },
        Case {
            name: "socks5 wrong password: no target, not reported",
            client: b"\x05\x01\x02\x01\x09proxyuser\x05wrong".to_vec(),
            server: b"\x05\x02\x01\x01".to_vec(),
            kind: TunnelKind::Socks5,
            target: None,
            established: Some(false),
            status: None,
            auth: Some(TunnelAuth::UsernamePassword),
            username: Some("proxyuser"),
            protocol: None,
        },
        Case {
            name: "socks5 tunnel to 443 carrying TLS: not mail",
            client: cat(&[
                b"\x05\x01\x00\x05\x01\x00\x01\xc0\x00\x02\x01\x01\xbb",
                b"\x16\x03\x01\x00\x05hello",
            ]),
            server: b"\x05\x00\x05\x00\x00\x01\xc0\x00\x02\x01\xd0\xe6".to_vec(),
            kind: TunnelKind::Socks5,
            target: Some(("192.0.2.1", 443)),
            established: Some(true),
            status: Some(0),
            auth: Some(TunnelAuth::None),
            username: None,
            protocol: None,
        },
    ]
}

fn new_rec() -> SessionRecord {
    let ep = |ip: &str, port| Endpoint {
        ip: ip.parse().unwrap(),
        port,
    };
    let mut rec = SessionRecord::new(
        1,
        Protocol::Smtp,
        ep("192.0.2.1", 40000),
        ep("192.0.2.9", 1080),
        TS,
    );
    rec.handshake_seen = true;
    rec
}

/// Feeds the chunks in the order given (each tagged with its side), then closes both sides.
fn run(chunks: &[(Direction, &[u8])]) -> SessionRecord {
    let limits = Limits::default();
    let mut rec = new_rec();
    let mut d = ProbeDissector::new(&limits, &PortMap::default());
    for (dir, bytes) in chunks {
        d.on_data(*dir, bytes, TS, &mut rec);
    }
    d.on_fin(C, TS, &mut rec);
    d.on_fin(S, TS, &mut rec);
    d.on_end(TS, &mut rec);
    rec
}

/// The record as JSON, its events in stream order per side: how the two sides interleave in
/// the list is the capture's business, not the dissector's.
fn json(rec: &SessionRecord) -> String {
    let mut rec = rec.clone();
    rec.events.sort_by_key(|e| e.from == S);
    format!("{} {}", serde_json::to_string(&rec).unwrap(), rec.not_mail)
}

fn check(case: &Case, rec: &SessionRecord) {
    let n = case.name;
    assert_eq!(rec.not_mail, case.protocol.is_none(), "{n}: reported");
    let t = rec
        .tunnel
        .as_ref()
        .unwrap_or_else(|| panic!("{n}: no tunnel"));
    assert_eq!(t.kind, case.kind, "{n}");
    let target = t.target_host.as_deref().zip(t.target_port);
    assert_eq!(target, case.target, "{n}");
    assert_eq!(t.established, case.established, "{n}");
    assert_eq!(t.status, case.status, "{n}");
    assert_eq!(t.auth, case.auth, "{n}");
    assert_eq!(t.username.as_deref(), case.username, "{n}");
    assert!(rec.anomalies.is_empty(), "{n}: {:?}", rec.anomalies);
    let Some(protocol) = case.protocol else {
        return;
    };
    assert_eq!(rec.protocol, protocol, "{n}");
    assert!(rec.detected_by_content, "{n}");
    let quit = rec
        .events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Command { verb, .. } if verb == "QUIT"));
    // A tunnel that opened carries the dialogue; a refused one carries nothing.
    assert_eq!(
        quit,
        case.established == Some(true),
        "{n}: {:?}",
        rec.events
    );
}

#[test]
fn every_handshake_is_recorded_and_the_dialogue_inside_read() {
    for case in cases() {
        let rec = run(&[(C, &case.client), (S, &case.server)]);
        check(&case, &rec);
        // The proxy's side first (a reordered capture) changes nothing.
        assert_eq!(
            json(&run(&[(S, &case.server), (C, &case.client)])),
            json(&rec),
            "{}",
            case.name
        );
    }
}

#[test]
fn proxy_logins_are_cleartext_credentials() {
    let cases = cases();
    let rec = run(&[(C, &cases[0].client), (S, &cases[0].server)]);
    let c = &rec.credentials[0];
    assert_eq!(
        (c.mechanism.as_str(), c.username.as_deref()),
        ("HTTP-BASIC", Some("proxyuser"))
    );
    assert_eq!(
        (c.password.as_deref(), c.success, c.encrypted),
        (Some("Proxy-Pass-9"), Some(true), false)
    );
    assert!(c.is_proxy_login());
    let rec = run(&[(C, &cases[4].client), (S, &cases[4].server)]);
    let c = &rec.credentials[0];
    assert_eq!(
        (c.mechanism.as_str(), c.password.as_deref(), c.success),
        ("SOCKS5", Some("Proxy-Pass-9"), Some(true))
    );
    // The POP3 login inside the tunnel is recorded after it.
    assert_eq!(rec.credentials[1].username.as_deref(), Some("bob"));
    let rec = run(&[(C, &cases[7].client), (S, &cases[7].server)]);
    assert_eq!(rec.credentials[0].success, Some(false));
}

#[test]
fn a_cut_at_any_byte_gives_the_same_record() {
    for case in cases() {
        let whole = json(&run(&[(C, &case.client), (S, &case.server)]));
        for (dir, bytes, other) in [
            (C, &case.client, &case.server),
            (S, &case.server, &case.client),
        ] {
            for cut in 0..=bytes.len() {
                let (a, b) = bytes.split_at(cut);
                let chunks = [(dir, a), (dir.opposite(), &other[..]), (dir, b)];
                assert_eq!(
                    json(&run(&chunks)),
                    whole,
                    "{}: {dir:?} cut at {cut}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn malformed_handshakes_are_anomalies() {
    // A SOCKS5 reply with an unknown address type, on a tunnel to a mail port: reported, no
    // dialogue, one anomaly.
    let client = b"\x05\x01\x00\x05\x01\x00\x01\xc0\x00\x02\x19\x00\x19EHLO x\r\n";
    let server = b"\x05\x00\x05\x00\x00\x07\x00\x00220 mx ESMTP\r\n";
    let rec = run(&[(C, client), (S, server)]);
    assert!(!rec.not_mail);
    assert!(rec.has_anomaly("tunnel_malformed"), "{:?}", rec.anomalies);
    assert!(rec.events.is_empty());
    // Broken first bytes that only look like a handshake make the flow not mail.
    for client in [
        &b"\x05\x00"[..],
        b"\x04\x07\x00\x19",
        b"CONNECT nowhere HTTP/1.1\r\n\r\n",
    ] {
        assert!(run(&[(C, client), (S, b"\x00\x00")]).not_mail, "{client:?}");
    }
    // Found by fuzzing: a bad CONNECT line is read the same whole or cut anywhere.
    let bad = b"CONNECT mail.example:587 HTTP/2.1\r\nHost: x\r\n\r\n";
    let server = b"HTTP/1.1 200 Connection established\r\n\r\n220 mx ESMTP\r\n";
    let whole = json(&run(&[(C, bad), (S, server)]));
    for cut in 0..=bad.len() {
        let (a, b) = bad.split_at(cut);
        assert_eq!(
            json(&run(&[(C, a), (C, b), (S, server)])),
            whole,
            "cut at {cut}"
        );
    }
}

#[test]
fn a_gap_in_the_reply_still_follows_a_whole_request() {
    let case = &cases()[5];
    let limits = Limits::default();
    let mut rec = new_rec();
    let mut d = ProbeDissector::new(&limits, &PortMap::default());
    d.on_data(C, &case.client, TS, &mut rec);
    d.on_gap(S, 12, TS, &mut rec);
    d.on_data(S, SMTP_SERVER, TS, &mut rec);
    d.on_end(TS, &mut rec);
    assert!(rec.has_anomaly("tunnel_gap"));
    let t = rec.tunnel.as_ref().unwrap();
    assert_eq!((t.established, t.target_port), (None, Some(25)));
    assert!(
        rec.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Gap { bytes: 12 }))
    );
    assert!(
        rec.smtp.as_ref().is_some_and(|s| s.helo.is_some()),
        "{:?}",
        rec.events
    );
}

#[test]
fn a_gap_in_the_request_follows_an_open_tunnel_by_content() {
    let limits = Limits::default();
    let mut rec = new_rec();
    let mut d = ProbeDissector::new(&limits, &PortMap::default());
    // The greeting arrives, the request is lost, then the dialogue: the proxy said yes.
    d.on_data(C, b"\x05\x01\x00", TS, &mut rec);
    d.on_gap(C, 10, TS, &mut rec);
    d.on_data(C, SMTP_CLIENT, TS, &mut rec);
    d.on_data(
        S,
        b"\x05\x00\x05\x00\x00\x01\xc0\x00\x02\x01\xd0\xe6",
        TS,
        &mut rec,
    );
    d.on_data(S, SMTP_SERVER, TS, &mut rec);
    d.on_end(TS, &mut rec);
    assert!(!rec.not_mail);
    assert!(rec.has_anomaly("tunnel_gap"));
    let t = rec.tunnel.as_ref().unwrap();
    assert_eq!((t.established, t.target_port), (Some(true), None));
    assert_eq!(rec.protocol, Protocol::Smtp);
    assert!(
        rec.events
            .iter()
            .any(|e| e.from == C && matches!(e.kind, EventKind::Gap { bytes: 10 }))
    );
    // Refused after a lost request: reported only with a mail target, so here not at all, but
    // a refused tunnel to a mail port shows a later loss as a gap.
    let case = &cases()[6];
    let mut rec = new_rec();
    let mut d = ProbeDissector::new(&limits, &PortMap::default());
    d.on_data(C, &case.client, TS, &mut rec);
    d.on_data(S, &case.server, TS, &mut rec);
    d.on_gap(S, 7, TS, &mut rec);
    d.on_end(TS, &mut rec);
    assert!(!rec.not_mail);
    assert!(
        rec.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Gap { bytes: 7 }))
    );
}

proptest! {
    #[test]
    fn any_chunking_and_interleaving_gives_the_same_record(
        which in 0usize..9,
        cuts in prop::collection::vec((any::<bool>(), 1usize..12), 1..40),
    ) {
        let all = cases();
        let case = &all[which % all.len()];
        let whole = json(&run(&[(C, &case.client), (S, &case.server)]));
        let (mut ci, mut si) = (0, 0);
        let mut chunks: Vec<(Direction, &[u8])> = Vec::new();
        for (client, len) in cuts {
            let (dir, bytes, at) = if client { (C, &case.client, &mut ci) } else { (S, &case.server, &mut si) };
            let end = (*at + len).min(bytes.len());
            chunks.push((dir, &bytes[*at..end]));
            *at = end;
        }
        chunks.push((C, &case.client[ci..]));
        chunks.push((S, &case.server[si..]));
        prop_assert_eq!(json(&run(&chunks)), whole);
    }
}

#[test]
fn a_gap_in_http_headers_keeps_the_request_line() {
    let case = &cases()[0];
    let limits = Limits::default();
    let mut rec = new_rec();
    let mut d = ProbeDissector::new(&limits, &PortMap::default());
    let line_end = case.client.iter().position(|&b| b == b'\n').unwrap() + 1;
    d.on_data(C, &case.client[..line_end], TS, &mut rec);
    d.on_gap(C, 7, TS, &mut rec);
    d.on_data(C, &case.client[line_end + 7..], TS, &mut rec);
    d.on_data(S, &case.server, TS, &mut rec);
    d.on_end(TS, &mut rec);
    assert!(!rec.not_mail);
    let t = rec.tunnel.as_ref().unwrap();
    assert_eq!((t.target_port, t.established), (Some(587), Some(true)));
    assert!(rec.has_anomaly("tunnel_gap"));
    assert!(
        rec.smtp.as_ref().is_some_and(|s| s.helo.is_some()),
        "{:?}",
        rec.events
    );
}
