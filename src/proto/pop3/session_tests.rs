//! Whole-session tests: hand-written transcripts fed through [`Pop3Dissector`], each checked
//! for the interleaving contract (same record whatever the order the two directions arrive in).

mod fragments;
mod junk;

use super::Pop3Dissector;
use super::mailbox::Pop3State;
use crate::limits::Limits;
use crate::proto::Dissector;
use crate::session::{
    Direction, Endpoint, Event, EventKind, MessageSource, Protocol, SessionRecord, TlsMode,
};
use crate::time::Timestamp;
use sha2::Digest;

const C: Direction = Direction::Client;
const S: Direction = Direction::Server;

/// One packet's worth of a session: bytes from a side, or bytes that were never captured.
#[derive(Debug, Clone)]
enum Chunk {
    Data(Direction, Timestamp, Vec<u8>),
    Gap(Direction, Timestamp, u64),
}

impl Chunk {
    fn dir(&self) -> Direction {
        match self {
            Chunk::Data(d, ..) | Chunk::Gap(d, ..) => *d,
        }
    }
}

/// A transcript in capture order; packet `i` is captured at second `i + 1`.
fn transcript(packets: &[(Direction, &str)]) -> Vec<Chunk> {
    packets
        .iter()
        .enumerate()
        .map(|(i, (dir, text))| {
            Chunk::Data(
                *dir,
                Timestamp::from_parts(i as i64 + 1, 0),
                text.as_bytes().to_vec(),
            )
        })
        .collect()
}

/// A gap chunk placed at second `at`.
fn gap(dir: Direction, at: i64, len: u64) -> Chunk {
    Chunk::Gap(dir, Timestamp::from_parts(at, 0), len)
}

fn new_record(handshake_seen: bool) -> SessionRecord {
    let mut rec = SessionRecord::new(
        1,
        Protocol::Pop3,
        Endpoint {
            ip: "192.0.2.10".parse().unwrap(),
            port: 40_000,
        },
        Endpoint {
            ip: "192.0.2.20".parse().unwrap(),
            port: 110,
        },
        Timestamp::from_parts(0, 0),
    );
    rec.handshake_seen = handshake_seen;
    rec
}

/// Feeds pieces (already in delivery order) and ends the session.
fn feed(pieces: &[Chunk], handshake_seen: bool, limits: &Limits) -> SessionRecord {
    let mut rec = new_record(handshake_seen);
    let mut d = Pop3Dissector::new(limits);
    let mut last = Timestamp::default();
    for p in pieces {
        match p {
            Chunk::Data(dir, ts, bytes) => {
                d.on_data(*dir, bytes, *ts, &mut rec);
                last = last.max(*ts);
            }
            Chunk::Gap(dir, ts, len) => {
                d.on_gap(*dir, *len, *ts, &mut rec);
                last = last.max(*ts);
            }
        }
    }
    d.on_end(last.plus_secs(1), &mut rec);
    // What the engine does before output.
    rec.events.sort_by_key(|e| e.ts);
    rec
}

/// A small deterministic generator for split points and interleavings.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Splits data chunks at random points (pieces keep the packet's time).
fn split_randomly(chunks: &[Chunk], rng: &mut XorShift) -> Vec<Chunk> {
    let mut out = Vec::new();
    for c in chunks {
        match c {
            Chunk::Data(dir, ts, bytes) if bytes.len() > 1 => {
                let mut cuts: Vec<usize> =
                    (0..rng.below(4)).map(|_| rng.below(bytes.len())).collect();
                cuts.push(0);
                cuts.push(bytes.len());
                cuts.sort_unstable();
                cuts.dedup();
                for w in cuts.windows(2) {
                    out.push(Chunk::Data(*dir, *ts, bytes[w[0]..w[1]].to_vec()));
                }
            }
            other => out.push(other.clone()),
        }
    }
    out
}

/// Merges the two directions in a random order, keeping each direction's own order.
fn interleave_randomly(chunks: &[Chunk], rng: &mut XorShift) -> Vec<Chunk> {
    let client: Vec<Chunk> = chunks.iter().filter(|c| c.dir() == C).cloned().collect();
    let server: Vec<Chunk> = chunks.iter().filter(|c| c.dir() == S).cloned().collect();
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < client.len() || j < server.len() {
        let take_client = j >= server.len() || (i < client.len() && rng.below(2) == 0);
        if take_client {
            out.push(client[i].clone());
            i += 1;
        } else {
            out.push(server[j].clone());
            j += 1;
        }
    }
    out
}

fn bytewise(chunks: &[Chunk]) -> Vec<Chunk> {
    let mut out = Vec::new();
    for c in chunks {
        match c {
            Chunk::Data(dir, ts, bytes) => {
                out.extend(bytes.iter().map(|b| Chunk::Data(*dir, *ts, vec![*b])));
            }
            other => out.push(other.clone()),
        }
    }
    out
}

fn by_direction(chunks: &[Chunk], first: Direction) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = chunks
        .iter()
        .filter(|c| c.dir() == first)
        .cloned()
        .collect();
    out.extend(chunks.iter().filter(|c| c.dir() != first).cloned());
    out
}

fn json(rec: &SessionRecord) -> serde_json::Value {
    serde_json::to_value(rec).unwrap()
}

/// Runs a transcript in capture order, then client-first, server-first, byte by byte and in
/// many random interleavings with random splits, and checks every record is the same.
fn check_with(chunks: &[Chunk], handshake_seen: bool, limits: &Limits) -> SessionRecord {
    let reference = feed(chunks, handshake_seen, limits);
    let expected = json(&reference);
    let mut variants: Vec<(String, Vec<Chunk>)> = vec![
        ("client first".into(), by_direction(chunks, C)),
        ("server first".into(), by_direction(chunks, S)),
        ("byte by byte".into(), bytewise(chunks)),
        (
            "client first, byte by byte".into(),
            bytewise(&by_direction(chunks, C)),
        ),
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..60 {
        let split = split_randomly(chunks, &mut rng);
        variants.push((
            format!("random {round}"),
            interleave_randomly(&split, &mut rng),
        ));
    }
    for (name, pieces) in variants {
        let got = json(&feed(&pieces, handshake_seen, limits));
        assert_eq!(got, expected, "record differs when fed {name}");
    }
    reference
}

fn check(chunks: &[Chunk]) -> SessionRecord {
    check_with(chunks, true, &Limits::default())
}

fn commands(rec: &SessionRecord) -> Vec<(String, Option<String>)> {
    rec.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Command { verb, arg } => Some((verb.clone(), arg.clone())),
            _ => None,
        })
        .collect()
}

fn statuses(rec: &SessionRecord) -> Vec<(bool, String, Option<String>, Option<u64>)> {
    rec.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Status {
                ok,
                text,
                resp_code,
                body_lines,
            } => Some((*ok, text.clone(), resp_code.clone(), *body_lines)),
            _ => None,
        })
        .collect()
}

fn auth_data(rec: &SessionRecord) -> Vec<(Direction, String)> {
    rec.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AuthData { raw } => Some((e.from, raw.clone())),
            _ => None,
        })
        .collect()
}

fn anomaly_kinds(rec: &SessionRecord) -> Vec<&str> {
    rec.anomalies.iter().map(|a| a.kind.as_str()).collect()
}

fn pop3(rec: &SessionRecord) -> &super::Pop3Summary {
    rec.pop3.as_ref().expect("pop3 summary")
}

fn owned(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    pairs
        .iter()
        .map(|(v, a)| (v.to_string(), a.map(str::to_string)))
        .collect()
}

const GREETING: &str = "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n";

#[test]
fn user_pass_success_and_quit_commits() {
    let rec = check(&transcript(&[
        (S, GREETING),
        (C, "USER alice\r\n"),
        (S, "+OK alice is known\r\n"),
        (C, "PASS s3cret word\r\n"),
        (S, "+OK maildrop has 2 messages (320 octets)\r\n"),
        (C, "STAT\r\n"),
        (S, "+OK 2 320\r\n"),
        (C, "QUIT\r\n"),
        (S, "+OK bye\r\n"),
    ]));
    assert_eq!(
        commands(&rec),
        owned(&[
            ("USER", Some("alice")),
            ("PASS", Some("s3cret word")),
            ("STAT", None),
            ("QUIT", None),
        ])
    );
    let st = statuses(&rec);
    assert_eq!(st.len(), 5);
    assert_eq!(
        st[0].1,
        "POP3 server ready <1896.697170952@dbc.mtview.ca.us>"
    );
    assert_eq!(rec.credentials.len(), 1);
    let c = &rec.credentials[0];
    assert_eq!(c.mechanism, "USER");
    assert_eq!(c.username.as_deref(), Some("alice"));
    assert_eq!(c.password.as_deref(), Some("s3cret word"));
    assert_eq!(c.success, Some(true));
    assert!(!c.encrypted);
    assert_eq!(c.ts, Timestamp::from_parts(2, 0));
    let p = pop3(&rec);
    assert_eq!(p.user.as_deref(), Some("alice"));
    assert_eq!(p.state, Pop3State::Update);
    assert!(p.mailbox.deletions_committed);
    assert_eq!(
        (p.mailbox.message_count, p.mailbox.size),
        (Some(2), Some(320))
    );
    assert_eq!(
        p.apop_timestamp.as_deref(),
        Some("<1896.697170952@dbc.mtview.ca.us>")
    );
    assert!(rec.anomalies.is_empty(), "{:?}", rec.anomalies);
    // Every event carries the time of the packet that completed it.
    let times: Vec<i64> = rec.events.iter().map(|e| e.ts.secs()).collect();
    assert_eq!(times, (1..=9).collect::<Vec<_>>());
}

#[test]
fn user_pass_failure_and_user_without_pass() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "USER bob\r\n"),
        (S, "+OK\r\n"),
        (C, "PASS wrong\r\n"),
        (S, "-ERR [AUTH] invalid login\r\n"),
        (C, "USER carol\r\n"),
        (S, "-ERR [SYS/TEMP] try later\r\n"),
        (C, "QUIT\r\n"),
        (S, "+OK\r\n"),
    ]));
    assert_eq!(rec.credentials.len(), 2);
    let (a, b) = (&rec.credentials[0], &rec.credentials[1]);
    assert_eq!(
        (a.username.as_deref(), a.password.as_deref(), a.success),
        (Some("bob"), Some("wrong"), Some(false))
    );
    assert_eq!(
        (b.username.as_deref(), b.password.as_deref(), b.success),
        (Some("carol"), None, Some(false))
    );
    let st = statuses(&rec);
    assert_eq!(st[2].2.as_deref(), Some("AUTH"));
    assert_eq!(st[2].1, "[AUTH] invalid login");
    assert_eq!(st[3].2.as_deref(), Some("SYS/TEMP"));
    let p = pop3(&rec);
    assert_eq!(p.state, Pop3State::Authorization);
    assert!(!p.mailbox.deletions_committed);
    assert_eq!(p.user.as_deref(), Some("carol"));
}

#[test]
fn user_alone_is_an_attempt_without_password() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "USER dave\r\n"),
        (S, "+OK\r\n"),
    ]));
    assert_eq!(rec.credentials.len(), 1);
    assert_eq!(rec.credentials[0].password, None);
    assert_eq!(rec.credentials[0].success, None);
}

#[test]
fn apop_keeps_digest_and_greeting_timestamp() {
    let rec = check(&transcript(&[
        (S, GREETING),
        (C, "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"),
        (S, "+OK mrose's maildrop has 2 messages (320 octets)\r\n"),
    ]));
    let c = &rec.credentials[0];
    assert_eq!(c.mechanism, "APOP");
    assert_eq!(c.username.as_deref(), Some("mrose"));
    assert_eq!(c.password, None);
    assert_eq!(
        c.details.response.as_deref(),
        Some("c4c9334bac560ecc979e58001b3e22fb")
    );
    assert_eq!(
        c.details.challenge.as_deref(),
        Some("<1896.697170952@dbc.mtview.ca.us>")
    );
    assert_eq!(c.success, Some(true));
    assert_eq!(pop3(&rec).state, Pop3State::Transaction);
}

#[test]
fn apop_without_greeting_timestamp_is_an_anomaly() {
    for reply in [Some("-ERR permission denied\r\n"), None] {
        let mut packets = vec![
            (S, "+OK no timestamp here\r\n"),
            (C, "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"),
        ];
        if let Some(r) = reply {
            packets.push((S, r));
        }
        let rec = check(&transcript(&packets));
        let c = &rec.credentials[0];
        assert_eq!(c.details.challenge, None);
        assert_eq!(c.success, reply.map(|_| false));
        assert!(rec.has_anomaly("apop_without_timestamp"));
    }
}

#[test]
fn auth_plain_with_initial_response() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        (S, "+OK logged in\r\n"),
        (C, "STAT\r\n"),
        (S, "+OK 0 0\r\n"),
    ]));
    assert_eq!(
        commands(&rec),
        owned(&[("AUTH", Some("PLAIN AGFsaWNlAHNlY3JldA==")), ("STAT", None)])
    );
    assert!(auth_data(&rec).is_empty());
    assert_eq!(rec.credentials.len(), 1);
    assert_eq!(rec.credentials[0].mechanism, "PLAIN");
    assert_eq!(rec.credentials[0].success, Some(true));
    assert_eq!(pop3(&rec).state, Pop3State::Transaction);
}

#[test]
fn auth_plain_with_continuation() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "AUTH PLAIN\r\n"),
        (S, "+ \r\n"),
        (C, "AGFsaWNlAHNlY3JldA==\r\n"),
        (S, "-ERR [AUTH] authentication failed\r\n"),
        (C, "QUIT\r\n"),
        (S, "+OK\r\n"),
    ]));
    assert_eq!(
        auth_data(&rec),
        vec![(S, String::new()), (C, "AGFsaWNlAHNlY3JldA==".to_string())]
    );
    // The base64 line is a SASL response, not a command.
    assert_eq!(
        commands(&rec),
        owned(&[("AUTH", Some("PLAIN")), ("QUIT", None)])
    );
    let c = &rec.credentials[0];
    assert_eq!((c.mechanism.as_str(), c.success), ("PLAIN", Some(false)));
    assert!(rec.anomalies.is_empty(), "{:?}", rec.anomalies);
}

#[test]
fn auth_login_two_challenges_and_cancel() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "AUTH LOGIN\r\n"),
        (S, "+ VXNlcm5hbWU6\r\n"),
        (C, "YWxpY2U=\r\n"),
        (S, "+ UGFzc3dvcmQ6\r\n"),
        (C, "c2VjcmV0\r\n"),
        (S, "+OK welcome\r\n"),
        (C, "AUTH CRAM-MD5\r\n"),
        (
            S,
            "+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UuZXhhbXBsZS5uZXQ+\r\n",
        ),
        (C, "*\r\n"),
        (S, "-ERR cancelled\r\n"),
    ]));
    assert_eq!(auth_data(&rec).len(), 6);
    assert_eq!(rec.credentials.len(), 2);
    assert_eq!(rec.credentials[0].mechanism, "LOGIN");
    assert_eq!(rec.credentials[0].success, Some(true));
    assert_eq!(rec.credentials[1].mechanism, "CRAM-MD5");
    assert_eq!(rec.credentials[1].success, Some(false));
    assert_eq!(
        commands(&rec),
        owned(&[("AUTH", Some("LOGIN")), ("AUTH", Some("CRAM-MD5"))])
    );
}

// needs sasl decoding
#[test]
fn auth_plain_credentials_are_decoded() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "AUTH PLAIN\r\n"),
        (S, "+ \r\n"),
        (C, "AGFsaWNlAHNlY3JldA==\r\n"),
        (S, "+OK\r\n"),
    ]));
    let c = &rec.credentials[0];
    assert_eq!(c.username.as_deref(), Some("alice"));
    assert_eq!(c.password.as_deref(), Some("secret"));
    assert_eq!(pop3(&rec).user.as_deref(), Some("alice"));
}

// needs sasl decoding
#[test]
fn auth_login_credentials_are_decoded() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "AUTH LOGIN\r\n"),
        (S, "+ VXNlcm5hbWU6\r\n"),
        (C, "YWxpY2U=\r\n"),
        (S, "+ UGFzc3dvcmQ6\r\n"),
        (C, "c2VjcmV0\r\n"),
        (S, "+OK\r\n"),
    ]));
    let c = &rec.credentials[0];
    assert_eq!(c.username.as_deref(), Some("alice"));
    assert_eq!(c.password.as_deref(), Some("secret"));
}

// needs sasl decoding
#[test]
fn auth_cram_md5_credentials_are_decoded() {
    // RFC 2195's example exchange.
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "AUTH CRAM-MD5\r\n"),
        (
            S,
            "+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n",
        ),
        (C, "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"),
        (S, "+OK\r\n"),
    ]));
    let c = &rec.credentials[0];
    assert_eq!(c.username.as_deref(), Some("tim"));
    assert_eq!(
        c.details.response.as_deref(),
        Some("b913a602c7eda7a495b4e6e7334d3890")
    );
}

#[test]
fn auth_without_mechanism_lists_mechanisms() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "AUTH\r\n"),
        (S, "+OK methods follow\r\nPLAIN\r\nLOGIN\r\nNTLM\r\n.\r\n"),
        (C, "AUTH\r\n"),
        (S, "-ERR 1 argument required\r\n"),
    ]));
    assert_eq!(
        pop3(&rec).auth_mechanisms.as_deref(),
        Some(&["PLAIN".to_string(), "LOGIN".into(), "NTLM".into()][..])
    );
    let st = statuses(&rec);
    assert_eq!(st[1], (true, "methods follow".into(), None, Some(3)));
    assert_eq!(st[2].3, None);
    assert!(rec.credentials.is_empty());
}

#[test]
fn capa_fills_capabilities() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "CAPA\r\nQUIT\r\n"),
        (
            S,
            "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSTLS\r\nSASL PLAIN LOGIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION Example 1.0\r\n.\r\n",
        ),
        (S, "+OK signing off\r\n"),
    ]));
    let caps = pop3(&rec).capabilities.as_ref().unwrap();
    assert!(caps.top && caps.user && caps.uidl && caps.stls && caps.pipelining);
    assert!(caps.resp_codes && caps.auth_resp_code);
    assert_eq!(caps.sasl, ["PLAIN", "LOGIN"]);
    assert_eq!(caps.implementation.as_deref(), Some("Example 1.0"));
    assert_eq!(caps.raw.len(), 9);
    assert_eq!(statuses(&rec)[1].3, Some(9));
    assert_eq!(pop3(&rec).state, Pop3State::Authorization);
}

fn mailbox_session() -> Vec<Chunk> {
    transcript(&[
        (S, "+OK ready\r\n"),
        (C, "USER alice\r\n"),
        (S, "+OK\r\n"),
        (C, "PASS pw\r\n"),
        (S, "+OK\r\n"),
        (C, "STAT\r\n"),
        (S, "+OK 2 103\r\n"),
        (C, "LIST\r\n"),
        (S, "+OK 2 messages\r\n1 67\r\n2 36\r\n.\r\n"),
        (C, "LIST 2\r\n"),
        (S, "+OK 2 36\r\n"),
        (C, "UIDL\r\n"),
        (S, "+OK\r\n1 uid-one\r\n2 uid-two\r\n.\r\n"),
        (C, "UIDL 1\r\n"),
        (S, "+OK 1 uid-one\r\n"),
        (C, "TOP 1 0\r\n"),
        (
            S,
            "+OK top of message follows\r\nFrom: a@example.org\r\nSubject: hi\r\n\r\n.\r\n",
        ),
        (C, "RETR 1\r\n"),
        (
            S,
            "+OK 67 octets\r\nFrom: a@example.org\r\nSubject: hi\r\n\r\n",
        ),
        (S, "..leading dot\r\n+OK not a reply\r\n.\r\n"),
        (C, "RETR 9\r\n"),
        (S, "-ERR no such message\r\n"),
        (C, "DELE 1\r\n"),
        (S, "+OK message 1 deleted\r\n"),
        (C, "RSET\r\n"),
        (S, "+OK\r\n"),
        (C, "DELE 2\r\n"),
        (S, "+OK message 2 deleted\r\n"),
        (C, "NOOP\r\n"),
        (S, "+OK\r\n"),
        (C, "QUIT\r\n"),
        (S, "+OK bye\r\n"),
    ])
}

#[test]
fn mailbox_view_messages_and_deletions() {
    let rec = check(&mailbox_session());
    let p = pop3(&rec);
    let mb = &p.mailbox;
    assert_eq!((mb.message_count, mb.size), (Some(2), Some(103)));
    assert_eq!(
        mb.sizes.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
        [(1, 67), (2, 36)]
    );
    assert_eq!(mb.uids.get(&1).map(String::as_str), Some("uid-one"));
    assert_eq!(mb.uids.get(&2).map(String::as_str), Some("uid-two"));
    assert_eq!(mb.retrieved.iter().copied().collect::<Vec<_>>(), [1]);
    assert_eq!(
        mb.partially_retrieved.iter().copied().collect::<Vec<_>>(),
        [1]
    );
    assert_eq!(mb.deleted.iter().copied().collect::<Vec<_>>(), [2]);
    assert_eq!(
        mb.undeleted_by_rset.iter().copied().collect::<Vec<_>>(),
        [1]
    );
    assert!(mb.deletions_committed);
    assert_eq!(p.state, Pop3State::Update);

    // TOP then RETR; the refused RETR 9 yields nothing.
    assert_eq!(rec.messages.len(), 2);
    let top = &rec.messages[0];
    assert_eq!(top.source, MessageSource::Top);
    assert!(!top.complete);
    assert_eq!(top.number, Some(1));
    assert_eq!(top.size, 36);
    assert_eq!(
        top.sha256,
        "440c2d2c7c22e28a6e21895165ac63542cb374198829477891fcc33c34a86274"
    );
    let retr = &rec.messages[1];
    assert_eq!(retr.source, MessageSource::Retr);
    assert!(retr.complete);
    assert_eq!(retr.number, Some(1));
    assert_eq!(retr.uidl.as_deref(), Some("uid-one"));
    // Dot-unstuffed, without the +OK line and the final dot line; the "+OK" body line stays.
    assert_eq!(retr.size, 67);
    assert_eq!(
        retr.sha256,
        "1f8e6a47591fe60be047bfc1a488e51f370b1869948e6809f601c0bf4ca5a655"
    );
    // The body spans two packets: first and last content bytes.
    assert_eq!(retr.first_seen, Timestamp::from_parts(19, 0));
    assert_eq!(retr.last_seen, Timestamp::from_parts(20, 0));

    let data: Vec<(usize, u64, i64)> = rec
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::MessageData { message, bytes } => Some((message, bytes, e.ts.secs())),
            _ => None,
        })
        .collect();
    assert_eq!(data, [(0, 36, 17), (1, 67, 20)]);
    let st = statuses(&rec);
    let retr_status = st.iter().find(|s| s.1 == "67 octets").unwrap();
    assert_eq!(retr_status.3, Some(5));
    assert!(st.iter().any(|s| !s.0 && s.1 == "no such message"));
    assert!(rec.anomalies.is_empty(), "{:?}", rec.anomalies);
}

#[test]
fn extraction_hands_on_the_unstuffed_bytes() {
    let dir = std::env::temp_dir().join(format!("mailsift-pop3-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("spool dir");
    let limits = Limits {
        spool: Some(std::sync::Arc::new(crate::mail::Spool::new(&dir))),
        ..Limits::default()
    };
    let mut rec = new_record(true);
    let mut d = Pop3Dissector::new(&limits);
    for c in mailbox_session() {
        if let Chunk::Data(dir, ts, bytes) = c {
            d.on_data(dir, &bytes, ts, &mut rec);
        }
    }
    d.on_end(Timestamp::from_parts(99, 0), &mut rec);
    assert_eq!(rec.blobs.len(), 2);
    let eml = std::fs::read(&rec.blobs[1].files.eml).expect("spooled eml");
    assert_eq!(
        eml,
        b"From: a@example.org\r\nSubject: hi\r\n\r\n.leading dot\r\n+OK not a reply\r\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stls_reply_cut_by_a_gap_is_skipped_across_segments() {
    // Found by fuzzing: after a gap swallowed the STLS reply, the rest of the cut line was
    // skipped only within one segment; the next segment's first byte was taken for the start
    // of what follows, so the record depended on where the segment ended.
    let rec = check(&[
        Chunk::Data(S, Timestamp::from_parts(1, 0), b"+OK ready\r\n".to_vec()),
        Chunk::Data(C, Timestamp::from_parts(2, 0), b"STLS\r\n".to_vec()),
        gap(S, 3, 100),
        Chunk::Data(S, Timestamp::from_parts(4, 0), b"\xe9\\>\x7f".to_vec()),
        Chunk::Data(
            S,
            Timestamp::from_parts(5, 0),
            b"ply\r\n+OK bye\r\n".to_vec(),
        ),
    ]);
    // The cut line's rest is dropped whole, so the next line is read as a status line.
    assert!(
        statuses(&rec).iter().any(|s| s.0 && s.1 == "bye"),
        "{:?}",
        statuses(&rec)
    );
    assert!(!rec.has_anomaly("stls_reply_lost"));
}

#[test]
fn configured_mime_limits_apply_to_retrieved_messages() {
    // Found by fuzzing: the collector was built with the default MIME limits, so a
    // configured body excerpt cap (here 8 bytes) was ignored.
    let mut limits = Limits::default();
    limits.mime.max_body_bytes = 8;
    let rec = check_with(
        &transcript(&[
            (S, "+OK ready\r\n"),
            (C, "RETR 1\r\n"),
            (
                S,
                "+OK\r\nSubject: x\r\n\r\nA body far longer than eight bytes\r\n.\r\n",
            ),
        ]),
        true,
        &limits,
    );
    let mime = rec.messages[0].mime.as_ref().unwrap();
    assert_eq!(mime.body_text.as_deref(), Some("A body f"));
    assert!(mime.body_text_truncated);
}

#[test]
fn pipelined_commands_pair_in_order() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "USER a\r\nPASS b\r\nSTAT\r\nLIST\r\nRETR 1\r\nQUIT\r\n"),
        (
            S,
            "+OK\r\n+OK\r\n+OK 1 5\r\n+OK\r\n1 5\r\n.\r\n+OK\r\nabc\r\n.\r\n+OK bye\r\n",
        ),
    ]));
    assert_eq!(commands(&rec).len(), 6);
    let st = statuses(&rec);
    assert_eq!(
        st.iter().map(|s| s.3).collect::<Vec<_>>(),
        [None, None, None, None, Some(1), Some(1), None]
    );
    assert_eq!(rec.messages.len(), 1);
    assert_eq!(rec.messages[0].size, 5);
    assert_eq!(rec.credentials[0].success, Some(true));
    assert_eq!(pop3(&rec).state, Pop3State::Update);
}

#[test]
fn stls_accepted_switches_both_sides_to_tls() {
    let mut chunks = transcript(&[
        (S, "+OK ready\r\n"),
        (C, "CAPA\r\n"),
        (S, "+OK\r\nSTLS\r\n.\r\n"),
        (C, "STLS\r\n"),
        (S, "+OK Begin TLS negotiation now\r\n"),
    ]);
    chunks.push(Chunk::Data(
        C,
        Timestamp::from_parts(6, 0),
        vec![0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5],
    ));
    chunks.push(Chunk::Data(
        S,
        Timestamp::from_parts(7, 0),
        vec![0x16, 3, 3, 0, 2, 9, 9],
    ));
    // Looks like a command, but it is inside TLS.
    chunks.push(Chunk::Data(
        C,
        Timestamp::from_parts(8, 0),
        b"USER x\r\n".to_vec(),
    ));
    let rec = check(&chunks);
    let tls = rec.tls.as_ref().expect("tls");
    assert_eq!(tls.mode, TlsMode::Starttls);
    assert_eq!(tls.started, Timestamp::from_parts(5, 0));
    assert_eq!(tls.encrypted_bytes.client, 18);
    assert_eq!(tls.encrypted_bytes.server, 7);
    assert_eq!(commands(&rec), owned(&[("CAPA", None), ("STLS", None)]));
    assert!(rec.credentials.is_empty());
    let start: Vec<&Event> = rec
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::TlsStart { .. }))
        .collect();
    assert_eq!(start.len(), 1);
    assert_eq!(start[0].from, S);
    assert!(!rec.has_anomaly("not_pop3"));
}

#[test]
fn stripped_stls_is_dissected_in_clear_text() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "CAPA\r\n"),
        (S, "+OK\r\nSTLS\r\nUSER\r\n.\r\n"),
        (C, "STLS\r\n"),
        (S, "+OK Begin TLS negotiation now\r\n"),
        (C, "USER alice\r\n"),
        (S, "+OK\r\n"),
        (C, "PASS secret\r\n"),
        (S, "+OK logged in\r\n"),
        (C, "RETR 1\r\n"),
        (S, "+OK 20 octets\r\nSubject: a\r\n\r\nhello\r\n.\r\n"),
        (C, "QUIT\r\n"),
        (S, "+OK bye\r\n"),
    ]));
    let tls = rec.tls.as_ref().expect("tls");
    assert_eq!(tls.encrypted_bytes.client + tls.encrypted_bytes.server, 0);
    let clear = rec.cleartext_instead_of_tls.expect("cleartext");
    assert!(clear.client && clear.server);
    assert_eq!(clear.ts, Timestamp::from_parts(6, 0));
    assert!(rec.has_anomaly("stls_plaintext"));
    assert_eq!(rec.credentials.len(), 1);
    assert!(!rec.credentials[0].encrypted);
    assert_eq!(rec.credentials[0].password.as_deref(), Some("secret"));
    assert_eq!(rec.messages.len(), 1);
    assert_eq!(commands(&rec).last(), Some(&("QUIT".to_string(), None)));
}

#[test]
fn commands_injected_before_the_stls_handshake_are_shown() {
    let mut chunks = transcript(&[
        (S, "+OK ready\r\n"),
        (C, "STLS\r\nUSER evil\r\n"),
        (S, "+OK go\r\n"),
    ]);
    chunks.push(Chunk::Data(
        C,
        Timestamp::from_parts(4, 0),
        vec![0x16, 3, 1, 0, 1, 1],
    ));
    let rec = check(&chunks);
    assert_eq!(
        commands(&rec),
        owned(&[("STLS", None), ("USER", Some("evil"))])
    );
    assert_eq!(rec.tls.as_ref().unwrap().encrypted_bytes.client, 6);
    assert!(rec.cleartext_instead_of_tls.unwrap().client);
}

#[test]
fn stls_refused_keeps_plain_text() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "STLS\r\n"),
        (S, "-ERR not available\r\n"),
        (C, "USER a\r\n"),
        (S, "+OK\r\n"),
        (C, "PASS b\r\n"),
        (S, "+OK\r\n"),
    ]));
    assert!(rec.tls.is_none());
    assert_eq!(rec.credentials.len(), 1);
    assert!(!rec.credentials[0].encrypted);
    assert_eq!(rec.credentials[0].password.as_deref(), Some("b"));
}

#[test]
fn lowercase_status_and_bare_lf_are_tolerated() {
    let rec = check(&transcript(&[
        (S, "+ok ready\n"),
        (C, "user a\n"),
        (S, "+ok\n"),
        (C, "list\n"),
        (S, "+ok\n1 10\n.\n"),
    ]));
    assert_eq!(
        commands(&rec),
        owned(&[("USER", Some("a")), ("LIST", None)])
    );
    assert_eq!(pop3(&rec).mailbox.sizes.get(&1), Some(&10));
    let kinds = anomaly_kinds(&rec);
    assert!(kinds.contains(&"lowercase_status"));
    assert!(kinds.contains(&"bare_lf"));
    assert_eq!(statuses(&rec)[2].3, Some(1));
}

#[test]
fn gap_inside_retr_ends_the_message_and_resynchronises() {
    let mut chunks = transcript(&[
        (S, "+OK ready\r\n"),
        (C, "RETR 1\r\n"),
        (S, "+OK\r\nSubject: cut\r\n\r\nfirst half\r\n"),
    ]);
    chunks.push(gap(S, 4, 500));
    chunks.extend(
        transcript(&[
            (S, "ond half\r\n+OK looks like a reply\r\nmore\r\n.\r\n"),
            (C, "DELE 1\r\n"),
            (S, "+OK deleted\r\n"),
        ])
        .into_iter()
        .map(|c| match c {
            Chunk::Data(d, ts, b) => Chunk::Data(d, ts.plus_secs(4), b),
            g => g,
        }),
    );
    let rec = check(&chunks);
    assert_eq!(rec.messages.len(), 1);
    let m = &rec.messages[0];
    assert!(!m.complete);
    // The message goes on after the gap, to the end of the body.
    let captured =
        "Subject: cut\r\n\r\nfirst half\r\nond half\r\n+OK looks like a reply\r\nmore\r\n";
    assert_eq!(m.size, captured.len() as u64);
    assert_eq!(m.missing_bytes, 500);
    assert_eq!(m.sha256, hex::encode(sha2::Sha256::digest(captured)));
    // The +OK inside the rest of the body is skipped; the real reply pairs with DELE.
    let st = statuses(&rec);
    assert_eq!(st.len(), 3);
    assert_eq!(st[1], (true, String::new(), None, Some(3)));
    assert_eq!(st[2].1, "deleted");
    assert_eq!(
        pop3(&rec)
            .mailbox
            .deleted
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        [1]
    );
    assert!(rec.has_anomaly("data_after_gap"));
    assert!(
        rec.events
            .iter()
            .any(|e| e.kind == EventKind::Gap { bytes: 500 })
    );
}

#[test]
fn gap_between_replies_drops_the_damaged_reply() {
    let mut chunks = transcript(&[(S, "+OK ready\r\n"), (C, "LIST\r\n")]);
    // The LIST reply's start was never captured; its tail and the QUIT reply were.
    chunks.push(gap(S, 3, 40));
    chunks.extend([
        Chunk::Data(
            S,
            Timestamp::from_parts(4, 0),
            b"2 30\r\n+OK fake\r\n.\r\n".to_vec(),
        ),
        Chunk::Data(C, Timestamp::from_parts(5, 0), b"QUIT\r\n".to_vec()),
        Chunk::Data(S, Timestamp::from_parts(6, 0), b"+OK bye\r\n".to_vec()),
    ]);
    let rec = check(&chunks);
    let st = statuses(&rec);
    assert_eq!(st.len(), 2);
    assert_eq!(st[1].1, "bye");
    assert!(pop3(&rec).mailbox.sizes.is_empty());
    let kinds = anomaly_kinds(&rec);
    assert!(kinds.contains(&"reply_lost") && kinds.contains(&"resync"));
}

#[test]
fn client_gap_loses_a_command_and_the_time_rule_realigns() {
    let mut chunks = transcript(&[(S, "+OK ready\r\n"), (C, "USER a\r\n"), (S, "+OK\r\n")]);
    // "RETR 1" was lost; its multi-line reply was captured.
    chunks.push(gap(C, 4, 8));
    chunks.push(Chunk::Data(
        S,
        Timestamp::from_parts(5, 0),
        b"+OK\r\nbody line\r\n.\r\n".to_vec(),
    ));
    chunks.push(Chunk::Data(
        C,
        Timestamp::from_parts(6, 0),
        b"DELE 1\r\n".to_vec(),
    ));
    chunks.push(Chunk::Data(
        S,
        Timestamp::from_parts(7, 0),
        b"+OK gone\r\n".to_vec(),
    ));
    let rec = check(&chunks);
    let st = statuses(&rec);
    // The lost command's reply is shaped by its next line: a one-line body.
    assert_eq!(st[2], (true, String::new(), None, Some(1)));
    assert_eq!(st[3].1, "gone");
    assert_eq!(
        pop3(&rec)
            .mailbox
            .deleted
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        [1]
    );
    assert!(rec.messages.is_empty());
    assert!(!rec.has_anomaly("reply_without_command"));
}

#[test]
fn midstream_pickup_inside_a_retr_body() {
    let rec = check_with(
        &transcript(&[
            (
                S,
                "rest of a message line\r\n+OK this is body text\r\n..stuffed\r\n.\r\n",
            ),
            (C, "DELE 1\r\n"),
            (S, "+OK deleted\r\n"),
            (C, "QUIT\r\n"),
            (S, "+OK bye\r\n"),
        ]),
        false,
        &Limits::default(),
    );
    assert!(rec.messages.is_empty());
    let st = statuses(&rec);
    assert_eq!(st.len(), 2);
    assert_eq!(st[0].1, "deleted");
    let p = pop3(&rec);
    assert_eq!(p.mailbox.deleted.iter().copied().collect::<Vec<_>>(), [1]);
    // DELE's acceptance shows the mailbox was open, so QUIT committed it.
    assert_eq!(p.state, Pop3State::Update);
    assert_eq!(p.greeting, None);
    let kinds = anomaly_kinds(&rec);
    assert!(kinds.contains(&"midstream_pickup") && kinds.contains(&"resync"));
}

#[test]
fn midstream_pickup_drops_a_client_fragment() {
    let rec = check_with(
        &transcript(&[(C, "ETR 3\r\nNOOP\r\n"), (S, "+OK\r\n")]),
        false,
        &Limits::default(),
    );
    assert_eq!(commands(&rec), owned(&[("NOOP", None)]));
    assert!(rec.has_anomaly("fragment_after_gap"));
    assert_eq!(pop3(&rec).state, Pop3State::Transaction);
}

#[test]
fn non_pop3_sides_are_reported_and_hide_no_command() {
    let rec = check(&transcript(&[
        (
            C,
            "GET / HTTP/1.1\r\nHost: example\r\nAccept: */*\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-D: 4\r\nX-E: 5\r\n\r\nUSER x\r\n",
        ),
        (S, "HTTP/1.1 400 Bad Request\r\n"),
    ]));
    // The server never sent a POP3 line; the client's junk hides its USER all the same.
    let verdicts: Vec<_> = rec
        .anomalies
        .iter()
        .filter(|a| a.kind == "not_pop3")
        .map(|a| a.from)
        .collect();
    assert_eq!(verdicts, vec![Some(S)]);
    assert!(commands(&rec).iter().any(|(v, _)| v == "USER"));

    let mut chunks = transcript(&[(S, "+OK ready\r\n")]);
    chunks.push(Chunk::Data(
        C,
        Timestamp::from_parts(2, 0),
        vec![0x16, 3, 1, 0, 0x30, 0, 0, 0, b'\n'],
    ));
    let rec = check(&chunks);
    assert!(
        rec.anomalies
            .iter()
            .any(|a| a.kind == "not_pop3" && a.from == Some(C))
    );
    assert!(rec.has_anomaly("control_bytes"));
    assert!(commands(&rec).is_empty());
}

#[test]
fn junk_server_lines_are_reported_and_skipped() {
    let rec = check(&transcript(&[
        (S, "+OK example.com POP3-Server\n"),
        (C, "STAT\n"),
        (S, "+\r\r..\r\r..x\r\r\n.\r\r\t\t'\nx\n"),
        (S, "+OK 1 236\n"),
        (C, "QUIT\n"),
        (S, "+OK Bye\n"),
    ]));
    assert!(!rec.has_anomaly("not_pop3"));
    assert!(rec.has_anomaly("unexpected_server_line"));
    assert_eq!(pop3(&rec).mailbox.message_count, Some(1));
    let lines = rec
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Line { .. }))
        .count();
    assert_eq!(lines, 3);
}

#[test]
fn unknown_and_vendor_commands() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "XSENDER 1\r\n"),
        (S, "-ERR unknown command\r\n"),
        (C, "XTND XLIST Message-Id\r\n"),
        (S, "+OK\r\n1 <a@b>\r\n2 <c@d>\r\n.\r\n"),
        (C, "LAST\r\n"),
        (S, "+OK 0\r\n"),
        (C, "FOO\r\n"),
        (S, "+OK odd but single\r\n"),
        (C, "QUIT\r\n"),
        (S, "+OK\r\n"),
    ]));
    assert_eq!(
        commands(&rec)[0],
        ("XSENDER".to_string(), Some("1".to_string()))
    );
    let st = statuses(&rec);
    assert_eq!(st[2].3, Some(2));
    assert_eq!(st[3].1, "0");
    assert_eq!(st[4], (true, "odd but single".into(), None, None));
    assert_eq!(st.len(), 6);
    assert!(rec.has_anomaly("unknown_command"));
}

#[test]
fn long_lines_nul_and_non_ascii_never_panic() {
    let limits = Limits {
        max_line_len: 16,
        ..Limits::default()
    };
    let long = format!("USER {}\r\n", "x".repeat(100));
    let rec = check_with(
        &transcript(&[
            (S, "+OK ready\r\n"),
            (C, &long),
            (S, "+OK\r\n"),
            (C, "PASS a\u{0}b\r\n"),
            (S, "-ERR n\u{e9}e\r\n"),
        ]),
        true,
        &limits,
    );
    let kinds = anomaly_kinds(&rec);
    for k in ["line_too_long", "nul_byte", "non_ascii"] {
        assert!(kinds.contains(&k), "{k}: {kinds:?}");
    }
    assert_eq!(rec.credentials[0].username.as_deref(), Some("xxxxxxxxxxx"));
    assert_eq!(rec.credentials[0].success, Some(false));
}

#[test]
fn long_body_lines_keep_their_full_content() {
    let limits = Limits {
        max_line_len: 16,
        ..Limits::default()
    };
    let line = "y".repeat(1000);
    let body = format!("+OK\r\n{line}\r\n.\r\n");
    let rec = check_with(
        &transcript(&[(S, "+OK ready\r\n"), (C, "RETR 1\r\n"), (S, &body)]),
        true,
        &limits,
    );
    assert_eq!(rec.messages[0].size, 1002);
    assert!(!rec.has_anomaly("line_too_long"));
}

#[test]
fn unterminated_last_lines_are_still_read() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "QUIT"),
        (S, "+OK bye"),
    ]));
    assert_eq!(commands(&rec), owned(&[("QUIT", None)]));
    assert_eq!(statuses(&rec)[1].1, "bye");
    assert!(rec.has_anomaly("unterminated_line"));
}

#[test]
fn a_retr_cut_by_the_end_of_the_capture_is_incomplete() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "RETR 4\r\n"),
        (S, "+OK\r\nSubject: x\r\n\r\npartial"),
    ]));
    assert_eq!(rec.messages.len(), 1);
    assert!(!rec.messages[0].complete);
    assert_eq!(rec.messages[0].size, 21);
    assert_eq!(rec.messages[0].number, Some(4));
}

#[test]
fn server_only_capture_reports_replies_without_commands() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (S, "+OK\r\n"),
        (S, "+OK 2 messages\r\n1 10\r\n2 20\r\n.\r\n"),
        (S, "-ERR no\r\n"),
    ]));
    let st = statuses(&rec);
    assert_eq!(st.len(), 4);
    assert_eq!(st[1].3, None);
    assert_eq!(st[2].3, Some(2));
    assert!(rec.has_anomaly("reply_without_command"));
}

#[test]
fn client_only_capture_keeps_commands_unanswered() {
    let rec = check(&transcript(&[
        (C, "USER a\r\n"),
        (C, "PASS b\r\n"),
        (C, "AUTH PLAIN\r\n"),
        (C, "AGFsaWNlAHNlY3JldA==\r\n"),
        (C, "STLS\r\n"),
        (C, "QUIT\r\n"),
    ]));
    assert_eq!(rec.credentials.len(), 2);
    assert_eq!(rec.credentials[0].success, None);
    assert_eq!(rec.credentials[1].mechanism, "PLAIN");
    // With no server to say otherwise, the base64 line after AUTH is read as its response.
    assert_eq!(
        auth_data(&rec),
        vec![(C, "AGFsaWNlAHNlY3JldA==".to_string())]
    );
    assert_eq!(commands(&rec).len(), 5);
    assert!(rec.has_anomaly("unanswered_commands"));
}

#[test]
fn unanswered_auth_ends_after_the_mechanisms_responses() {
    // LOGIN sends two responses; with no server to end the exchange, the third line is a
    // command even though it is not a known one.
    let rec = check(&transcript(&[
        (C, "AUTH LOGIN\r\n"),
        (C, "YWxpY2U=\r\n"),
        (C, "c2VjcmV0\r\n"),
        (C, "XYZZY now\r\n"),
        (C, "QUIT\r\n"),
    ]));
    assert_eq!(
        auth_data(&rec),
        vec![(C, "YWxpY2U=".to_string()), (C, "c2VjcmV0".to_string())]
    );
    assert_eq!(
        commands(&rec),
        owned(&[
            ("AUTH", Some("LOGIN")),
            ("XYZZY", Some("now")),
            ("QUIT", None)
        ])
    );
    assert_eq!(rec.credentials[0].username.as_deref(), Some("alice"));
    assert_eq!(rec.credentials[0].password.as_deref(), Some("secret"));
    assert!(!rec.has_anomaly("sasl_malformed"), "{:?}", rec.anomalies);

    // PLAIN with an initial response has sent everything: the next line is a command, and a
    // bare verb before LOGIN's responses is one too (it decodes to control bytes).
    let rec = check(&transcript(&[
        (C, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        (C, "XYZZY now\r\n"),
        (C, "AUTH LOGIN\r\n"),
        (C, "STAT\r\n"),
    ]));
    assert!(auth_data(&rec).is_empty());
    assert_eq!(
        commands(&rec),
        owned(&[
            ("AUTH", Some("PLAIN AGFsaWNlAHNlY3JldA==")),
            ("XYZZY", Some("now")),
            ("AUTH", Some("LOGIN")),
            ("STAT", None)
        ])
    );
    assert_eq!(rec.credentials[0].username.as_deref(), Some("alice"));
}

#[test]
fn hold_overflow_degrades_instead_of_growing() {
    let limits = Limits {
        max_line_len: 8,
        max_ooo_bytes_per_direction: 64,
        ..Limits::default()
    };
    let mut rec = new_record(true);
    let mut d = Pop3Dissector::new(&limits);
    d.on_data(S, b"+OK hi\r\n", Timestamp::from_parts(1, 0), &mut rec);
    for i in 0..50 {
        d.on_data(S, b"+OK x\r\n", Timestamp::from_parts(2 + i, 0), &mut rec);
    }
    assert!(rec.has_anomaly("hold_overflow"));
    // Everything was read; only the last +OK waits for the line that shapes it.
    assert_eq!(statuses(&rec).len(), 50);
    // A command older than the replies already read is not paired with a later one.
    d.on_data(
        C,
        b"USER a\r\n",
        Timestamp::from_parts(1, 500_000_000),
        &mut rec,
    );
    d.on_end(Timestamp::from_parts(99, 0), &mut rec);
    assert_eq!(statuses(&rec).len(), 51);
    assert!(rec.has_anomaly("reply_not_paired"));
    assert_eq!(rec.credentials[0].success, None);
}

#[test]
fn pending_commands_are_bounded() {
    let limits = Limits {
        max_pending_commands: 4,
        ..Limits::default()
    };
    let mut client = String::new();
    for _ in 0..20 {
        client.push_str("NOOP\r\n");
    }
    let mut server = String::from("+OK ready\r\n");
    for _ in 0..20 {
        server.push_str("+OK\r\n");
    }
    let rec = check_with(&transcript(&[(C, &client), (S, &server)]), true, &limits);
    assert_eq!(commands(&rec).len(), 20);
    assert_eq!(statuses(&rec).len(), 21);
    assert!(rec.anomalies.is_empty(), "{:?}", rec.anomalies);
}

#[test]
fn hostile_input_never_panics() {
    let mut rng = XorShift(42);
    let alphabet: &[u8] = b"+-.OKERR \r\n\0\xff\x16USERPASTLSAUTH 12=*";
    for round in 0..300 {
        let mut chunks = Vec::new();
        for i in 0..rng.below(12) + 1 {
            let dir = if rng.below(2) == 0 { C } else { S };
            let ts = Timestamp::from_parts(i as i64 + 1, 0);
            if rng.below(8) == 0 {
                chunks.push(Chunk::Gap(dir, ts, rng.below(100) as u64 + 1));
                continue;
            }
            let len = rng.below(40);
            let bytes = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            chunks.push(Chunk::Data(dir, ts, bytes));
        }
        let limits = Limits {
            max_line_len: 1 + rng.below(20),
            max_ooo_bytes_per_direction: 16,
            max_pending_commands: 1 + rng.below(4),
            ..Limits::default()
        };
        for handshake in [true, false] {
            let rec = feed(&chunks, handshake, &limits);
            assert!(rec.pop3.is_some(), "round {round}");
            let _ = feed(&interleave_randomly(&chunks, &mut rng), handshake, &limits);
        }
    }
}

#[test]
fn every_split_point_gives_the_same_record() {
    let chunks = mailbox_session();
    let expected = json(&feed(&chunks, true, &Limits::default()));
    for k in 0..chunks.len() {
        let Chunk::Data(dir, ts, bytes) = &chunks[k] else {
            continue;
        };
        for at in 1..bytes.len() {
            let mut pieces: Vec<Chunk> = chunks[..k].to_vec();
            pieces.push(Chunk::Data(*dir, *ts, bytes[..at].to_vec()));
            pieces.push(Chunk::Data(*dir, *ts, bytes[at..].to_vec()));
            pieces.extend_from_slice(&chunks[k + 1..]);
            let got = json(&feed(&pieces, true, &Limits::default()));
            assert_eq!(got, expected, "packet {k} split at {at}");
        }
    }
}

#[test]
fn interleaving_contract_on_a_damaged_session() {
    let mut chunks = transcript(&[
        (S, "+OK ready <1.2@host>\r\n"),
        (C, "CAPA\r\n"),
        (S, "+OK\r\nSASL LOGIN\r\nPIPELINING\r\n.\r\n"),
        (C, "AUTH LOGIN\r\n"),
        (S, "+ VXNlcm5hbWU6\r\n"),
        (C, "YWxpY2U=\r\n"),
        (S, "+ UGFzc3dvcmQ6\r\n"),
        (C, "c2VjcmV0\r\n"),
        (S, "+OK\r\n"),
        (C, "STLS\r\n"),
        (S, "-ERR already authenticated\r\n"),
        (C, "UIDL\r\nLIST\r\nRETR 1\r\n"),
        (
            S,
            "+OK\r\n1 a\r\n2 b\r\n.\r\n+OK\r\n1 12\r\n2 20\r\n.\r\n+OK\r\nSubject: 1\r\n",
        ),
    ]);
    chunks.push(gap(S, 14, 300));
    chunks.push(gap(C, 15, 7));
    chunks.extend([
        Chunk::Data(S, Timestamp::from_parts(16, 0), b"tail\r\n.\r\n".to_vec()),
        Chunk::Data(
            S,
            Timestamp::from_parts(17, 0),
            b"+OK lost one\r\n".to_vec(),
        ),
        Chunk::Data(
            C,
            Timestamp::from_parts(18, 0),
            b"DELE 2\r\nQUIT\r\n".to_vec(),
        ),
        Chunk::Data(
            S,
            Timestamp::from_parts(19, 0),
            b"+OK\r\n+OK bye\r\n".to_vec(),
        ),
    ]);
    let rec = check(&chunks);
    assert_eq!(rec.credentials[0].mechanism, "LOGIN");
    assert_eq!(rec.credentials[0].success, Some(true));
    assert_eq!(rec.messages.len(), 1);
    assert!(!rec.messages[0].complete);
    assert_eq!(rec.messages[0].uidl.as_deref(), Some("a"));
    let p = pop3(&rec);
    assert_eq!(p.mailbox.deleted.iter().copied().collect::<Vec<_>>(), [2]);
    assert_eq!(p.state, Pop3State::Update);
    assert_eq!(statuses(&rec).last().map(|s| s.1.as_str()), Some("bye"));
}

#[test]
fn an_established_server_is_not_given_up_for_a_stray_body() {
    let mut server = String::from("+OK ready\r\n+OK 1 10\r\n");
    for i in 0..20 {
        server.push_str(&format!("stray line {i}\r\n"));
    }
    server.push_str(".\r\n+OK bye\r\n");
    let rec = check(&transcript(&[(C, "LIST 1\r\nQUIT\r\n"), (S, &server)]));
    assert!(!rec.has_anomaly("not_pop3"));
    assert!(rec.has_anomaly("unexpected_server_line"));
    assert_eq!(statuses(&rec).last().map(|s| s.1.as_str()), Some("bye"));
}

/// A session whose greeting was not captured: the first reply answers CAPA.
fn without_greeting() -> Vec<Chunk> {
    transcript(&[
        (C, "CAPA\r\n"),
        (S, "+OK Capability list follows\r\nUSER\r\nSTLS\r\n.\r\n"),
        (C, "USER alice\r\n"),
        (S, "+OK\r\n"),
        (C, "PASS secret\r\n"),
        (S, "+OK logged in\r\n"),
        (C, "STAT\r\n"),
        (S, "+OK 1 20\r\n"),
        (C, "QUIT\r\n"),
        (S, "+OK bye\r\n"),
    ])
}

#[test]
fn replies_pair_with_commands_when_the_greeting_is_missing() {
    // Picked up mid-session (no handshake), or the greeting lost in a gap.
    let mut lost = without_greeting();
    lost.insert(1, gap(S, 2, 30));
    for (chunks, handshake_seen) in [(without_greeting(), false), (lost, true)] {
        let rec = check_with(&chunks, handshake_seen, &Limits::default());
        let pop3 = pop3(&rec);
        assert!(pop3.greeting.is_none());
        let caps = pop3.capabilities.as_ref().unwrap();
        assert!(caps.stls && caps.user);
        assert_eq!(pop3.mailbox.message_count, Some(1));
        assert_eq!(pop3.state, Pop3State::Update);
        assert_eq!(rec.credentials.len(), 1);
        assert_eq!(rec.credentials[0].success, Some(true));
        assert!(
            !rec.has_anomaly("unexpected_server_line"),
            "{:?}",
            rec.anomalies
        );
    }
}

#[test]
fn a_listing_without_its_final_dot_ends_at_the_next_status_line() {
    let rec = check(&transcript(&[
        (S, "+OK ready\r\n"),
        (C, "USER alice\r\n"),
        (S, "+OK\r\n"),
        (C, "PASS secret\r\n"),
        (S, "+OK logged in\r\n"),
        (C, "LIST\r\n"),
        (S, "+OK 2 messages\r\n1 120\r\nthis is junk\r\n2 200\r\n"),
        (C, "UIDL\r\n"),
        (S, "+OK\r\n1 aaa\r\n2 bbb\r\n"),
        (C, "RETR 1\r\n"),
        (
            S,
            "+OK 120 octets\r\nSubject: one\r\n\r\n+OK this line is content\r\n.\r\n",
        ),
        (C, "DELE 1\r\n"),
        (S, "+OK deleted\r\n"),
        (C, "QUIT\r\n"),
        (S, "+OK bye\r\n"),
    ]));
    let pop3 = pop3(&rec);
    assert_eq!(pop3.mailbox.sizes.get(&2), Some(&200));
    assert_eq!(pop3.mailbox.uids.get(&2).map(String::as_str), Some("bbb"));
    assert_eq!(pop3.mailbox.retrieved, [1].into());
    assert_eq!(pop3.mailbox.deleted, [1].into());
    assert!(pop3.mailbox.deletions_committed);
    assert_eq!(rec.messages.len(), 1);
    // A status-looking line inside a message is content, not the end of it.
    let body = b"Subject: one\r\n\r\n+OK this line is content\r\n";
    assert_eq!(rec.messages[0].size, body.len() as u64);
    assert_eq!(
        rec.messages[0].sha256,
        hex::encode(sha2::Sha256::digest(body))
    );
    let unterminated = rec
        .anomalies
        .iter()
        .find(|a| a.kind == "listing_unterminated")
        .expect("anomaly");
    assert_eq!(unterminated.count, 2);
    assert!(rec.has_anomaly("bad_listing_line"));
    assert!(
        !rec.has_anomaly("unanswered_commands"),
        "{:?}",
        rec.anomalies
    );
}
