//! Whole-session tests: hand-written transcripts fed through the SMTP dissector.

mod fragments;
mod junk;

use super::SmtpDissector;
use crate::limits::Limits;
use crate::proto::Dissector;
use crate::session::{
    Direction, Endpoint, EventKind, MessageSource, Protocol, SessionRecord, TlsMode,
};
use crate::time::Timestamp;
use sha2::{Digest, Sha256};

const C: Direction = Direction::Client;
const S: Direction = Direction::Server;
const END_TS: Timestamp = Timestamp(9_000_000_000);

/// One step of a capture: bytes or a gap from one side.
#[derive(Debug, Clone)]
enum Seg {
    Data(Direction, Vec<u8>),
    Gap(Direction, u64),
}

fn c(text: &str) -> Seg {
    Seg::Data(C, text.as_bytes().to_vec())
}

fn s(text: &str) -> Seg {
    Seg::Data(S, text.as_bytes().to_vec())
}

fn cb(bytes: &[u8]) -> Seg {
    Seg::Data(C, bytes.to_vec())
}

fn sb(bytes: &[u8]) -> Seg {
    Seg::Data(S, bytes.to_vec())
}

fn new_rec(handshake_seen: bool, limits: &Limits) -> SessionRecord {
    let mut rec = SessionRecord::new(
        1,
        Protocol::Smtp,
        Endpoint {
            ip: "192.0.2.1".parse().unwrap(),
            port: 40000,
        },
        Endpoint {
            ip: "192.0.2.25".parse().unwrap(),
            port: 25,
        },
        Timestamp(0),
    );
    rec.handshake_seen = handshake_seen;
    rec.max_events = limits.max_events_per_session;
    rec.max_messages = limits.max_messages_per_session;
    rec
}

/// Capture time of the segment at `index` in the transcript.
fn ts_of(index: usize) -> Timestamp {
    Timestamp::from_micros((index as i64 + 1) * 1000)
}

fn apply(d: &mut SmtpDissector, rec: &mut SessionRecord, ts: Timestamp, seg: &Seg) {
    match seg {
        Seg::Data(dir, bytes) => d.on_data(*dir, bytes, ts, rec),
        Seg::Gap(dir, len) => d.on_gap(*dir, *len, ts, rec),
    }
}

/// Feeds timed segments in the given order, ends the session, sorts events as the engine does.
fn run_timed(items: &[(Timestamp, Seg)], limits: &Limits, handshake_seen: bool) -> SessionRecord {
    let mut rec = new_rec(handshake_seen, limits);
    let mut d = SmtpDissector::new(limits);
    for (ts, seg) in items {
        apply(&mut d, &mut rec, *ts, seg);
    }
    d.on_end(END_TS, &mut rec);
    rec.events.sort_by_key(|e| e.ts);
    rec
}

fn timed(segs: &[Seg]) -> Vec<(Timestamp, Seg)> {
    segs.iter()
        .enumerate()
        .map(|(i, s)| (ts_of(i), s.clone()))
        .collect()
}

fn run(segs: &[Seg]) -> SessionRecord {
    run_timed(&timed(segs), &Limits::default(), true)
}

fn commands(rec: &SessionRecord) -> Vec<String> {
    rec.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Command { verb, arg } => Some(match arg {
                Some(a) => format!("{verb} {a}"),
                None => verb.clone(),
            }),
            _ => None,
        })
        .collect()
}

fn reply_codes(rec: &SessionRecord) -> Vec<u16> {
    rec.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Reply { code, .. } => Some(*code),
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

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The record as a comparable value: events in engine order, anomalies by kind and side.
fn normalized(mut rec: SessionRecord) -> serde_json::Value {
    rec.events.sort_by_key(|e| e.ts);
    rec.anomalies
        .sort_by(|a, b| (a.kind.as_str(), a.from).cmp(&(b.kind.as_str(), b.from)));
    serde_json::to_value(&rec).unwrap()
}

/// Where two JSON values first differ, for readable failures.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let vb = y.get(k).unwrap_or(&Value::Null);
                if let Some(d) = first_difference(va, vb, &format!("{path}.{k}")) {
                    return Some(d);
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(va, vb, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| format!("{path}: length {} vs {}", x.len(), y.len()))
        }
        _ => (a != b).then(|| format!("{path}: {a} vs {b}")),
    }
}

fn assert_same(got: &serde_json::Value, reference: &serde_json::Value, what: &str) {
    if let Some(d) = first_difference(got, reference, "") {
        panic!("{what}: {d}");
    }
}

/// A small deterministic generator for split points and interleavings.
struct Rng(u64);

impl Rng {
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

/// Splits every data segment at random points (each piece keeps its segment's time).
fn resplit(items: &[(Timestamp, Seg)], rng: &mut Rng) -> Vec<(Timestamp, Seg)> {
    let mut out = Vec::new();
    for (ts, seg) in items {
        match seg {
            Seg::Data(dir, bytes) if bytes.len() > 1 => {
                let mut cuts: Vec<usize> =
                    (0..rng.below(4)).map(|_| rng.below(bytes.len())).collect();
                cuts.push(0);
                cuts.push(bytes.len());
                cuts.sort_unstable();
                cuts.dedup();
                for w in cuts.windows(2) {
                    out.push((*ts, Seg::Data(*dir, bytes[w[0]..w[1]].to_vec())));
                }
            }
            _ => out.push((*ts, seg.clone())),
        }
    }
    out
}

fn side(items: &[(Timestamp, Seg)], dir: Direction) -> Vec<(Timestamp, Seg)> {
    items
        .iter()
        .filter(|(_, s)| match s {
            Seg::Data(d, _) | Seg::Gap(d, _) => *d == dir,
        })
        .cloned()
        .collect()
}

/// Merges the two sides at random, keeping each side's own order.
fn interleave(items: &[(Timestamp, Seg)], rng: &mut Rng) -> Vec<(Timestamp, Seg)> {
    let (mut cl, mut sv) = (side(items, C).into_iter(), side(items, S).into_iter());
    let (mut next_c, mut next_s) = (cl.next(), sv.next());
    let mut out = Vec::new();
    loop {
        let take_client = match (&next_c, &next_s) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            _ => rng.below(2) == 0,
        };
        if take_client {
            out.extend(next_c.take());
            next_c = cl.next();
        } else {
            out.extend(next_s.take());
            next_s = sv.next();
        }
    }
    out
}

/// Asserts the contract: any interleaving and any splitting gives the same record.
fn assert_order_independent(segs: &[Seg], handshake_seen: bool, rounds: u64) {
    let limits = Limits::default();
    let natural = timed(segs);
    let reference = normalized(run_timed(&natural, &limits, handshake_seen));
    let mut client_first = side(&natural, C);
    client_first.extend(side(&natural, S));
    let mut server_first = side(&natural, S);
    server_first.extend(side(&natural, C));
    for (name, order) in [
        ("client first", client_first),
        ("server first", server_first),
    ] {
        let got = normalized(run_timed(&order, &limits, handshake_seen));
        assert_same(&got, &reference, name);
    }
    for seed in 1..=rounds {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let order = interleave(&resplit(&natural, &mut rng), &mut rng);
        let got = normalized(run_timed(&order, &limits, handshake_seen));
        assert_same(&got, &reference, &format!("seed {seed}: {order:?}"));
    }
}

const EHLO_REPLY: &str = "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n\
    250-8BITMIME\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n\
    250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";

const BODY_WIRE: &str = "From: alice@example.com\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\n\
    Hello Bob.\r\n..dots\r\n.\r\n";
const BODY_CONTENT: &str = "From: alice@example.com\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\n\
    Hello Bob.\r\n.dots\r\n";
/// sha256 of BODY_CONTENT, computed by hand with `printf ... | sha256sum`.
const BODY_SHA256: &str = "3798c2b146d37e1dd809e082b59d86283fddf01bb5cccd152c44f827f928d779";

fn plain_session() -> Vec<Seg> {
    vec![
        s("220 mx.example.org ESMTP ready\r\n"),
        c("EHLO client.example.com\r\n"),
        s(EHLO_REPLY),
        c("MAIL FROM:<alice@example.com> SIZE=80\r\n"),
        s("250 2.1.0 Ok\r\n"),
        c("RCPT TO:<bob@example.org>\r\n"),
        s("250 2.1.5 Ok\r\n"),
        c("DATA\r\n"),
        s("354 End data with <CR><LF>.<CR><LF>\r\n"),
        c(BODY_WIRE),
        s("250 2.0.0 Ok: queued as ABC123\r\n"),
        c("QUIT\r\n"),
        s("221 2.0.0 Bye\r\n"),
    ]
}

#[test]
fn plain_session_with_one_message() {
    let rec = run(&plain_session());
    assert_eq!(
        commands(&rec),
        vec![
            "EHLO client.example.com",
            "MAIL FROM:<alice@example.com> SIZE=80",
            "RCPT TO:<bob@example.org>",
            "DATA",
            "QUIT"
        ]
    );
    assert_eq!(reply_codes(&rec), vec![220, 250, 250, 250, 354, 250, 221]);
    assert_eq!(rec.messages.len(), 1);
    let m = &rec.messages[0];
    assert_eq!(m.source, MessageSource::Data);
    assert_eq!(m.size, 80);
    assert_eq!(m.size, BODY_CONTENT.len() as u64);
    assert_eq!(m.sha256, BODY_SHA256);
    assert_eq!(m.sha256, sha256_hex(BODY_CONTENT.as_bytes()));
    assert!(m.complete);
    assert_eq!(m.mail_from.as_deref(), Some("alice@example.com"));
    assert_eq!(m.rcpt_to, Some(vec!["bob@example.org".to_string()]));
    assert_eq!(m.first_seen, ts_of(9));
    let data_events: Vec<_> = rec
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::MessageData { .. }))
        .collect();
    assert_eq!(data_events.len(), 1);
    assert_eq!(
        data_events[0].kind,
        EventKind::MessageData {
            message: 0,
            bytes: 80
        }
    );
    assert_eq!(data_events[0].ts, ts_of(9));

    let smtp = rec.smtp.as_ref().unwrap();
    assert_eq!(smtp.helo.as_deref(), Some("client.example.com"));
    assert_eq!(smtp.helo_verb.as_deref(), Some("EHLO"));
    assert_eq!(smtp.greeting_code, Some(220));
    assert_eq!(smtp.greeting.as_deref(), Some("mx.example.org ESMTP ready"));
    assert!(smtp.pipelining && smtp.starttls_offered && smtp.chunking && smtp.eightbitmime);
    assert!(smtp.smtputf8 && smtp.enhanced_status_codes && !smtp.dsn);
    assert_eq!(smtp.size_limit, Some(35_882_577));
    assert_eq!(smtp.auth_mechanisms, vec!["PLAIN", "LOGIN", "CRAM-MD5"]);
    assert_eq!(smtp.capabilities.len(), 8);
    assert_eq!(smtp.transactions, 1);
    assert_eq!(smtp.messages_accepted, 1);
    assert_eq!(smtp.commands, 5);
    assert_eq!(smtp.replies, 7);
    assert!(smtp.quit && !smtp.not_smtp && !smtp.starttls_attempted);
    assert!(rec.anomalies.is_empty(), "{:?}", rec.anomalies);

    // Enhanced codes come from the first line when their class matches.
    let enhanced: Vec<_> = rec
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Reply { enhanced, .. } => Some(enhanced.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(enhanced[2], Some("2.1.0".to_string()));
    assert_eq!(enhanced[0], None);
}

#[test]
fn multi_line_reply_is_one_event_with_all_lines() {
    let rec = run(&plain_session());
    let ehlo = rec
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Reply {
                code: 250, lines, ..
            } if lines.len() > 1 => Some(lines.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(ehlo.len(), 9);
    assert_eq!(ehlo[0], "mx.example.org");
    assert_eq!(ehlo[8], "SMTPUTF8");
}

#[test]
fn pipelining_with_a_rejected_recipient() {
    let rec = run(&[
        s("220 mx ESMTP\r\n"),
        c("EHLO c\r\n"),
        s("250-mx\r\n250 PIPELINING\r\n"),
        c(
            "MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nRCPT TO:<nobody@y.org>\r\nRCPT TO:<c@y.org>\r\nDATA\r\n",
        ),
        s(
            "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <nobody@y.org>: Recipient address rejected\r\n250 2.1.5 Ok\r\n354 go ahead\r\n",
        ),
        c("Subject: t\r\n\r\nbody\r\n.\r\nQUIT\r\n"),
        s("250 2.0.0 queued\r\n221 bye\r\n"),
    ]);
    assert_eq!(rec.messages.len(), 1);
    let m = &rec.messages[0];
    assert_eq!(
        m.rcpt_to,
        Some(vec!["b@y.org".to_string(), "c@y.org".to_string()])
    );
    assert_eq!(m.size, "Subject: t\r\n\r\nbody\r\n".len() as u64);
    let smtp = rec.smtp.as_ref().unwrap();
    assert_eq!(smtp.recipients_rejected, 1);
    assert_eq!(commands(&rec).last().map(String::as_str), Some("QUIT"));
    assert!(rec.anomalies.is_empty(), "{:?}", rec.anomalies);
}

#[test]
fn rejected_data_keeps_reading_commands() {
    let rec = run(&[
        s("220 mx ESMTP\r\n"),
        c("HELO c\r\n"),
        s("250 mx\r\n"),
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 ok\r\n550 no\r\n554 5.5.1 Error: no valid recipients\r\n"),
        c("RSET\r\nQUIT\r\n"),
        s("250 ok\r\n221 bye\r\n"),
    ]);
    assert!(rec.messages.is_empty());
    assert_eq!(
        commands(&rec),
        vec![
            "HELO c",
            "MAIL FROM:<a@x.org>",
            "RCPT TO:<b@y.org>",
            "DATA",
            "RSET",
            "QUIT"
        ]
    );
    let smtp = rec.smtp.as_ref().unwrap();
    assert_eq!(smtp.helo_verb.as_deref(), Some("HELO"));
    assert_eq!(smtp.recipients_rejected, 1);
    assert!(rec.anomalies.is_empty(), "{:?}", rec.anomalies);
}

#[test]
fn dot_stuffing_is_removed_and_hashed() {
    let wire = "..one\r\n...two\r\n.\rthree\r\nfour.\r\n.\r\n";
    let content = ".one\r\n..two\r\n\rthree\r\nfour.\r\n";
    let rec = run(&[
        s("220 mx\r\n"),
        c("HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        c(wire),
        s("250 ok\r\n"),
    ]);
    let m = &rec.messages[0];
    assert_eq!(m.size, content.len() as u64);
    assert_eq!(m.sha256, sha256_hex(content.as_bytes()));
    assert_eq!(m.mail_from.as_deref(), Some(""), "null reverse-path");
}

#[test]
fn several_messages_with_rset_between() {
    let rec = run(&[
        s("220 mx\r\n"),
        c("EHLO c\r\n"),
        s("250 mx\r\n"),
        c("MAIL FROM:<a@x.org>\r\n"),
        s("250 ok\r\n"),
        c("RCPT TO:<one@y.org>\r\n"),
        s("250 ok\r\n"),
        c("DATA\r\n"),
        s("354 go\r\n"),
        c("first\r\n.\r\n"),
        s("250 queued 1\r\n"),
        c("MAIL FROM:<b@x.org>\r\nRCPT TO:<dropped@y.org>\r\nRSET\r\n"),
        s("250 ok\r\n250 ok\r\n250 reset\r\n"),
        c("MAIL FROM:<c@x.org>\r\nRCPT TO:<two@y.org>\r\nDATA\r\n"),
        s("250 ok\r\n250 ok\r\n354 go\r\n"),
        c("second message\r\n.\r\n"),
        s("451 4.3.0 try later\r\n"),
        c("QUIT\r\n"),
        s("221 bye\r\n"),
    ]);
    assert_eq!(rec.messages.len(), 2);
    assert_eq!(rec.messages[0].index, 0);
    assert_eq!(rec.messages[0].mail_from.as_deref(), Some("a@x.org"));
    assert_eq!(rec.messages[0].rcpt_to, Some(vec!["one@y.org".to_string()]));
    assert_eq!(rec.messages[0].size, 7);
    assert_eq!(rec.messages[1].index, 1);
    assert_eq!(rec.messages[1].mail_from.as_deref(), Some("c@x.org"));
    assert_eq!(rec.messages[1].rcpt_to, Some(vec!["two@y.org".to_string()]));
    assert_eq!(rec.messages[1].size, 16);
    let smtp = rec.smtp.as_ref().unwrap();
    assert_eq!(smtp.transactions, 3);
    assert_eq!(smtp.messages_accepted, 1);
    assert_eq!(smtp.messages_rejected, 1);
}

#[test]
fn mid_session_ehlo_resets_the_transaction() {
    let rec = run(&[
        s("220 mx\r\n"),
        c(
            "EHLO c\r\nMAIL FROM:<old@x.org>\r\nRCPT TO:<old@y.org>\r\nEHLO c2\r\nMAIL FROM:<new@x.org>\r\nRCPT TO:<new@y.org>\r\nDATA\r\n",
        ),
        s("250 mx\r\n250 ok\r\n250 ok\r\n250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        c("x\r\n.\r\n"),
        s("250 ok\r\n"),
    ]);
    assert_eq!(rec.messages[0].mail_from.as_deref(), Some("new@x.org"));
    assert_eq!(rec.messages[0].rcpt_to, Some(vec!["new@y.org".to_string()]));
    assert_eq!(rec.smtp.as_ref().unwrap().helo.as_deref(), Some("c2"));
}

#[test]
fn rejected_ehlo_keeps_the_envelope() {
    let rec = run(&[
        s("220 mx\r\n"),
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nEHLO\r\nDATA\r\n"),
        s("250 ok\r\n250 ok\r\n501 5.5.4 Syntax: EHLO hostname\r\n354 go\r\n"),
        c("x\r\n.\r\n"),
        s("250 ok\r\n"),
    ]);
    assert_eq!(rec.messages[0].mail_from.as_deref(), Some("a@x.org"));
    assert_eq!(rec.messages[0].rcpt_to, Some(vec!["b@y.org".to_string()]));
    assert!(rec.has_anomaly("helo_without_name"));
}

fn bdat_session() -> Vec<Seg> {
    vec![
        s("220 mx ESMTP\r\n"),
        c("EHLO c\r\n"),
        s("250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n"),
        // Pipelined: the chunk follows its command at once, then BDAT 0 LAST.
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nBDAT 10\r\n0123456789BDAT 0 LAST\r\n"),
        s("250 ok\r\n250 ok\r\n250 2.0.0 10 octets\r\n250 2.0.0 queued\r\n"),
        // A chunk that ends mid-segment, with the next command in the same segment.
        c("MAIL FROM:<c@x.org>\r\nRCPT TO:<d@y.org>\r\nBDAT 7 LAST\r\nab\r\n.\r\nQUIT\r\n"),
        s("250 ok\r\n250 ok\r\n250 queued\r\n221 bye\r\n"),
    ]
}

#[test]
fn bdat_with_pipelining_and_zero_last() {
    let rec = run(&bdat_session());
    assert_eq!(rec.messages.len(), 2);
    let m = &rec.messages[0];
    assert_eq!(m.source, MessageSource::Bdat);
    assert_eq!(m.size, 10);
    assert_eq!(
        m.sha256, "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882",
        "sha256 of 0123456789 by hand"
    );
    assert!(m.complete);
    assert_eq!(m.mail_from.as_deref(), Some("a@x.org"));
    // BDAT content is never unstuffed: the dot line is data.
    let m = &rec.messages[1];
    assert_eq!(m.size, 7);
    assert_eq!(m.sha256, sha256_hex(b"ab\r\n.\r\n"));
    assert_eq!(m.rcpt_to, Some(vec!["d@y.org".to_string()]));
    assert_eq!(
        commands(&rec),
        vec![
            "EHLO c",
            "MAIL FROM:<a@x.org>",
            "RCPT TO:<b@y.org>",
            "BDAT 10",
            "BDAT 0 LAST",
            "MAIL FROM:<c@x.org>",
            "RCPT TO:<d@y.org>",
            "BDAT 7 LAST",
            "QUIT"
        ]
    );
    assert_eq!(rec.smtp.as_ref().unwrap().messages_accepted, 2);
    assert!(smtp_anomalies(&rec).is_empty(), "{:?}", rec.anomalies);
}

#[test]
fn bdat_size_overflow_resyncs_without_panic() {
    let rec = run(&[
        s("220 mx\r\n"),
        c("EHLO c\r\n"),
        s("250-mx\r\n250 CHUNKING\r\n"),
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nBDAT 15555555557777777777 LAST\r\n"),
        s("250 ok\r\n250 ok\r\n521 5.5.4 Syntax: BDAT count [LAST]\r\n"),
        c("QUIT\r\n"),
        s("221 bye\r\n"),
    ]);
    assert!(rec.has_anomaly("bdat_invalid"));
    assert!(rec.messages.is_empty());
    assert_eq!(commands(&rec).last().map(String::as_str), Some("QUIT"));
    assert!(!rec.has_anomaly("reply_without_command"));

    // Junk after a bad BDAT is skipped until a real command.
    let rec = run(&[
        s("220 mx\r\n"),
        c("BDAT 5 X\r\nhello\r\nMAIL FROM:<a@x.org>\r\nQUIT\r\n"),
        s("501 5.5.4 Syntax\r\n250 ok\r\n221 bye\r\n"),
    ]);
    assert_eq!(
        commands(&rec),
        vec!["BDAT 5 X", "MAIL FROM:<a@x.org>", "QUIT"]
    );
    assert!(rec.has_anomaly("client_resync_skipped"));
}

#[test]
fn bdat_abandoned_by_rset_is_an_incomplete_message() {
    let rec = run(&[
        s("220 mx\r\n"),
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nBDAT 3\r\nabcRSET\r\n"),
        s("250 ok\r\n250 ok\r\n250 ok\r\n250 reset\r\n"),
    ]);
    assert_eq!(rec.messages.len(), 1);
    assert!(!rec.messages[0].complete);
    assert_eq!(rec.messages[0].size, 3);
    assert_eq!(rec.messages[0].mail_from.as_deref(), Some("a@x.org"));
    assert!(rec.has_anomaly("bdat_message_abandoned"));
}

fn auth_session(steps: &[Seg]) -> SessionRecord {
    let mut segs = vec![
        s("220 mx\r\n"),
        c("EHLO c\r\n"),
        s("250-mx\r\n250 AUTH PLAIN LOGIN\r\n"),
    ];
    segs.extend_from_slice(steps);
    run(&segs)
}

#[test]
fn auth_plain_with_initial_response() {
    let rec = auth_session(&[
        c("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        s("235 2.7.0 Authentication successful\r\n"),
        c("QUIT\r\n"),
        s("221 bye\r\n"),
    ]);
    assert_eq!(rec.credentials.len(), 1);
    let cred = &rec.credentials[0];
    assert_eq!(cred.mechanism, "PLAIN");
    assert_eq!(cred.success, Some(true));
    assert!(!cred.encrypted);
    assert_eq!(cred.ts, ts_of(3));
    assert_eq!(cred.username.as_deref(), Some("alice"));
    assert_eq!(cred.password.as_deref(), Some("secret"));
    let smtp = rec.smtp.as_ref().unwrap();
    assert_eq!(smtp.auth_attempts, 1);
    assert!(smtp.authenticated);
    assert_eq!(commands(&rec).last().map(String::as_str), Some("QUIT"));
}

#[test]
fn auth_plain_after_empty_challenge() {
    let rec = auth_session(&[
        c("AUTH PLAIN\r\n"),
        s("334 \r\n"),
        c("AGFsaWNlAHNlY3JldA==\r\n"),
        s("235 2.7.0 ok\r\n"),
    ]);
    assert_eq!(rec.credentials[0].mechanism, "PLAIN");
    assert_eq!(rec.credentials[0].success, Some(true));
    assert_eq!(
        auth_data(&rec),
        vec![(S, String::new()), (C, "AGFsaWNlAHNlY3JldA==".to_string())]
    );
}

#[test]
fn auth_login_inline_and_after_challenge() {
    let rec = auth_session(&[
        c("AUTH LOGIN YWxpY2U=\r\n"),
        s("334 UGFzc3dvcmQ6\r\n"),
        c("c2VjcmV0\r\n"),
        s("235 2.7.0 ok\r\n"),
    ]);
    assert_eq!(rec.credentials.len(), 1);
    assert_eq!(rec.credentials[0].mechanism, "LOGIN");
    assert_eq!(rec.credentials[0].success, Some(true));
    assert_eq!(
        auth_data(&rec),
        vec![(S, "UGFzc3dvcmQ6".to_string()), (C, "c2VjcmV0".to_string())]
    );

    let rec = auth_session(&[
        c("AUTH LOGIN\r\n"),
        s("334 VXNlcm5hbWU6\r\n"),
        c("YWxpY2U=\r\n"),
        s("334 UGFzc3dvcmQ6\r\n"),
        c("c2VjcmV0\r\n"),
        s("235 2.7.0 ok\r\n"),
        c("MAIL FROM:<alice@example.com>\r\n"),
        s("250 ok\r\n"),
    ]);
    assert_eq!(rec.credentials.len(), 1);
    assert_eq!(rec.credentials[0].success, Some(true));
    assert_eq!(rec.credentials[0].username.as_deref(), Some("alice"));
    assert_eq!(rec.credentials[0].password.as_deref(), Some("secret"));
    assert_eq!(auth_data(&rec).len(), 4);
    // The SASL lines are not commands; the command after the exchange is.
    assert_eq!(
        commands(&rec),
        vec!["EHLO c", "AUTH LOGIN", "MAIL FROM:<alice@example.com>"]
    );
    assert!(rec.anomalies.is_empty(), "{:?}", rec.anomalies);
}

#[test]
fn auth_cram_md5() {
    let rec = auth_session(&[
        c("AUTH CRAM-MD5\r\n"),
        s("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"),
        c("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"),
        s("235 2.7.0 ok\r\n"),
    ]);
    assert_eq!(rec.credentials.len(), 1);
    assert_eq!(rec.credentials[0].mechanism, "CRAM-MD5");
    assert_eq!(rec.credentials[0].success, Some(true));
    assert_eq!(rec.credentials[0].username.as_deref(), Some("tim"));
    assert!(rec.credentials[0].details.challenge.is_some());
}

#[test]
fn auth_failure_then_success_gives_two_attempts() {
    let rec = auth_session(&[
        c("AUTH LOGIN\r\n"),
        s("334 VXNlcm5hbWU6\r\n"),
        c("YWxpY2U=\r\n"),
        s("334 UGFzc3dvcmQ6\r\n"),
        c("d3Jvbmc=\r\n"),
        s("535 5.7.8 Error: authentication failed\r\n"),
        c("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        s("235 2.7.0 ok\r\n"),
    ]);
    let outcome: Vec<_> = rec
        .credentials
        .iter()
        .map(|c| (c.mechanism.as_str(), c.success))
        .collect();
    assert_eq!(outcome, vec![("LOGIN", Some(false)), ("PLAIN", Some(true))]);
    let smtp = rec.smtp.as_ref().unwrap();
    assert_eq!(smtp.auth_attempts, 2);
    assert!(smtp.authenticated);
    let e535 = rec.events.iter().find_map(|e| match &e.kind {
        EventKind::Reply {
            code: 535,
            enhanced,
            ..
        } => enhanced.clone(),
        _ => None,
    });
    assert_eq!(e535.as_deref(), Some("5.7.8"));
}

#[test]
fn auth_cancelled_by_client() {
    let rec = auth_session(&[
        c("AUTH LOGIN\r\n"),
        s("334 VXNlcm5hbWU6\r\n"),
        c("*\r\n"),
        s("501 5.7.0 Authentication aborted\r\n"),
        c("QUIT\r\n"),
        s("221 bye\r\n"),
    ]);
    assert_eq!(rec.credentials.len(), 1);
    assert_eq!(rec.credentials[0].success, Some(false));
    assert!(rec.credentials[0].details.cancelled);
    assert_eq!(auth_data(&rec).last(), Some(&(C, "*".to_string())));
    assert_eq!(commands(&rec).last().map(String::as_str), Some("QUIT"));
}

#[test]
fn auth_other_mechanisms_are_named_and_counted() {
    let rec = auth_session(&[
        c("AUTH XOAUTH2 dXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2tlbgEB\r\n"),
        s("235 ok\r\n"),
        c("AUTH OAUTHBEARER bixhPWFsaWNlLAFhdXRoPUJlYXJlciB0b2sBAQ==\r\n"),
        s("334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n"),
        c("AQ==\r\n"),
        s("535 5.7.8 nope\r\n"),
        c("AUTH NTLM TlRMTVNTUAABAAAAB4IIAAAAAAAAAAAAAAAAAAAAAAA=\r\n"),
        s("334 TlRMTVNTUAACAAAAAAAAAAAAAAA=\r\n"),
        c("TlRMTVNTUAADAAAA\r\n"),
        s("235 ok\r\n"),
        c("AUTH GSSAPI\r\n"),
        s("334 \r\n"),
        c("YIIB\r\n"),
        s("535 no\r\n"),
        c("AUTH EXTERNAL =\r\n"),
        s("235 ok\r\n"),
        c("AUTH DIGEST-MD5\r\n"),
        s("334 bm9uY2U9IngiLHFvcD0iYXV0aCI=\r\n"),
        c("dXNlcm5hbWU9ImEiLHJlc3BvbnNlPTEyMw==\r\n"),
        s("334 cnNwYXV0aD0xMjM=\r\n"),
        c("\r\n"),
        s("235 ok\r\n"),
    ]);
    let outcome: Vec<_> = rec
        .credentials
        .iter()
        .map(|c| (c.mechanism.as_str(), c.success))
        .collect();
    assert_eq!(
        outcome,
        vec![
            ("XOAUTH2", Some(true)),
            ("OAUTHBEARER", Some(false)),
            ("NTLM", Some(true)),
            ("GSSAPI", Some(false)),
            ("EXTERNAL", Some(true)),
            ("DIGEST-MD5", Some(true)),
        ]
    );
    assert_eq!(rec.smtp.as_ref().unwrap().auth_attempts, 6);
    // An empty SASL response line is a response, not an empty command.
    assert!(!rec.has_anomaly("empty_command_line"));
}

#[test]
fn auth_without_a_reply_has_unknown_outcome() {
    let rec = auth_session(&[c("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")]);
    assert_eq!(rec.credentials.len(), 1);
    assert_eq!(rec.credentials[0].success, None);
}

/// A session whose server replies are all hidden: after the greeting, one server line that
/// never ends (as in a crafted capture) swallows every later reply.
fn hidden_replies_session(client: &[&str]) -> Vec<Seg> {
    let mut segs = vec![s("220 mx ESMTP\r\n")];
    segs.push(s(&"A".repeat(5000)));
    segs.extend(client.iter().map(|line| c(line)));
    segs
}

#[test]
fn auth_login_without_visible_replies_ends_after_two_responses() {
    let segs = hidden_replies_session(&[
        "EHLO c\r\n",
        "AUTH LOGIN\r\n",
        "YWxpY2U=\r\n",
        "c2VjcmV0\r\n",
        // Sloppy paths (a space after the colon) are not strict commands, but LOGIN has had
        // its two responses: they are commands, not more SASL.
        "MAIL FROM: <alice@example.com>\r\n",
        "RCPT TO: <bob@example.org>\r\n",
        "DATA\r\n",
        "Subject: hi\r\n\r\nhello\r\n.\r\n",
        "QUIT\r\n",
    ]);
    let rec = run(&segs);
    assert_eq!(
        commands(&rec),
        vec![
            "EHLO c",
            "AUTH LOGIN",
            "MAIL FROM: <alice@example.com>",
            "RCPT TO: <bob@example.org>",
            "DATA",
            "QUIT"
        ]
    );
    assert_eq!(
        auth_data(&rec),
        vec![(C, "YWxpY2U=".to_string()), (C, "c2VjcmV0".to_string())]
    );
    assert!(!rec.has_anomaly("sasl_malformed"), "{:?}", rec.anomalies);
    let cred = &rec.credentials[0];
    assert_eq!(cred.username.as_deref(), Some("alice"));
    assert_eq!(cred.password.as_deref(), Some("secret"));
    assert_eq!(cred.success, None);
    assert_eq!(rec.messages.len(), 1);
    let m = &rec.messages[0];
    assert_eq!(m.mail_from.as_deref(), Some("alice@example.com"));
    assert_eq!(m.rcpt_to, Some(vec!["bob@example.org".to_string()]));
    assert_order_independent(&segs, true, 30);
}

#[test]
fn guessed_sasl_lines_follow_each_mechanism() {
    // LOGIN with an inline user name: one more response, then commands.
    let rec = run(&hidden_replies_session(&[
        "AUTH LOGIN YWxpY2U=\r\nc2VjcmV0\r\nNOOP\r\nQUIT\r\n",
    ]));
    assert_eq!(commands(&rec), vec!["AUTH LOGIN YWxpY2U=", "NOOP", "QUIT"]);
    assert_eq!(rec.credentials[0].password.as_deref(), Some("secret"));

    // PLAIN with an initial response expects nothing more; without one, one line.
    let rec = run(&hidden_replies_session(&[
        "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM: <a@x.org>\r\n",
        "AUTH PLAIN\r\nAGJvYgBwdw==\r\nRSET\r\n",
    ]));
    assert_eq!(
        commands(&rec),
        vec![
            "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
            "MAIL FROM: <a@x.org>",
            "AUTH PLAIN",
            "RSET"
        ]
    );
    let users: Vec<_> = rec
        .credentials
        .iter()
        .map(|c| c.username.as_deref())
        .collect();
    assert_eq!(users, vec![Some("alice"), Some("bob")]);

    // XOAUTH2: the empty line that answers an error challenge is still SASL.
    let rec = run(&hidden_replies_session(&[
        "AUTH XOAUTH2 dXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2tlbgEB\r\n\r\nQUIT\r\n",
    ]));
    assert_eq!(commands(&rec).last().map(String::as_str), Some("QUIT"));
    assert_eq!(auth_data(&rec), vec![(C, String::new())]);
    assert!(!rec.has_anomaly("empty_command_line"));

    // Before its responses, LOGIN still reads base64 as SASL, but never a bare verb, which
    // decodes to control bytes.
    let rec = run(&hidden_replies_session(&["AUTH LOGIN\r\nQUIT\r\n"]));
    assert_eq!(commands(&rec), vec!["AUTH LOGIN", "QUIT"]);
    assert!(auth_data(&rec).is_empty());
}

fn starttls_session() -> Vec<Seg> {
    vec![
        s("220 mx ESMTP\r\n"),
        c("EHLO c\r\n"),
        s("250-mx\r\n250 STARTTLS\r\n"),
        c("STARTTLS\r\n"),
        s("220 2.0.0 Ready to start TLS\r\n"),
        cb(b"\x16\x03\x01\x00\x05hello\r\nMAIL FROM:<x@y.z>\r\n"),
        sb(b"\x16\x03\x03\x00\x02hi"),
        cb(b"\x17\x03\x03\x00\x01\x00"),
    ]
}

#[test]
fn starttls_accepted_hands_everything_to_tls() {
    let rec = run(&starttls_session());
    assert_eq!(commands(&rec), vec!["EHLO c", "STARTTLS"]);
    let tls = rec.tls.as_ref().expect("TLS started");
    assert_eq!(tls.started, ts_of(4));
    let client_tls = b"\x16\x03\x01\x00\x05hello\r\nMAIL FROM:<x@y.z>\r\n".len()
        + b"\x17\x03\x03\x00\x01\x00".len();
    assert_eq!(tls.encrypted_bytes.client, client_tls as u64);
    assert_eq!(tls.encrypted_bytes.server, 7);
    assert!(
        rec.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::TlsStart { .. }))
    );
    let smtp = rec.smtp.as_ref().unwrap();
    assert!(smtp.starttls_offered && smtp.starttls_attempted && smtp.starttls_accepted);
    assert!(smtp_anomalies(&rec).is_empty(), "{:?}", rec.anomalies);
}

#[test]
fn starttls_refused_stays_plain() {
    let rec = run(&[
        s("220 mx ESMTP\r\n"),
        c("EHLO c\r\n"),
        s("250 mx\r\n"),
        c("STARTTLS\r\n"),
        s("454 4.7.0 TLS not available\r\n"),
        c("MAIL FROM:<a@x.org>\r\n"),
        s("250 ok\r\n"),
    ]);
    assert!(rec.tls.is_none());
    assert_eq!(
        commands(&rec).last().map(String::as_str),
        Some("MAIL FROM:<a@x.org>")
    );
    let smtp = rec.smtp.as_ref().unwrap();
    assert!(smtp.starttls_attempted && !smtp.starttls_accepted);
    assert_eq!(smtp.transactions, 1);
}

#[test]
fn commands_injected_before_the_tls_handshake_are_shown_then_tls_goes_on() {
    let rec = run(&[
        s("220 mx ESMTP\r\n"),
        c("STARTTLS\r\nRSET\r\nMAIL FROM:<evil@x.org>\r\n"),
        s("220 ready\r\n"),
        cb(b"\x16\x03\x01\x00\x01\x01"),
    ]);
    let tls = rec.tls.as_ref().unwrap();
    // Only the TLS record counts as encrypted.
    assert_eq!(tls.encrypted_bytes.client, 6);
    assert_eq!(
        commands(&rec),
        vec!["STARTTLS", "RSET", "MAIL FROM:<evil@x.org>"]
    );
    assert!(rec.has_anomaly("starttls_plaintext"));
    let clear = rec.cleartext_instead_of_tls.unwrap();
    assert!(clear.client && !clear.server);
}

/// A STARTTLS accepted, then both sides carry on in clear text (a stripped TLS layer).
fn stripped_starttls_session() -> Vec<Seg> {
    vec![
        s("220 mx ESMTP\r\n"),
        c("EHLO c\r\n"),
        s("250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"),
        c("STARTTLS\r\n"),
        s("220 2.0.0 Ready to start TLS\r\n"),
        c("EHLO c\r\n"),
        s("250-mx\r\n250 AUTH PLAIN\r\n"),
        c("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        s("235 2.7.0 ok\r\n"),
        c("MAIL FROM:<alice@x.org>\r\nRCPT TO:<bob@y.org>\r\nDATA\r\n"),
        s("250 ok\r\n250 ok\r\n354 go\r\n"),
        c("Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n"),
        s("250 queued\r\n221 bye\r\n"),
    ]
}

#[test]
fn stripped_starttls_is_dissected_in_clear_text() {
    let segs = stripped_starttls_session();
    let rec = run(&segs);
    let tls = rec.tls.as_ref().unwrap();
    assert_eq!(tls.encrypted_bytes.client + tls.encrypted_bytes.server, 0);
    assert!(!tls.handshake.established);
    let clear = rec.cleartext_instead_of_tls.unwrap();
    assert!(clear.client && clear.server);
    assert_eq!(clear.mode, TlsMode::Starttls);
    assert_eq!(clear.ts, ts_of(5));
    assert_eq!(
        commands(&rec)[3..],
        [
            "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
            "MAIL FROM:<alice@x.org>",
            "RCPT TO:<bob@y.org>",
            "DATA",
            "QUIT"
        ]
    );
    assert_eq!(rec.credentials.len(), 1);
    let cred = &rec.credentials[0];
    assert!(
        !cred.encrypted,
        "sent after a STARTTLS that never became TLS"
    );
    assert_eq!(cred.password.as_deref(), Some("secret"));
    assert_eq!(rec.messages.len(), 1);
    assert_eq!(*reply_codes(&rec).last().unwrap(), 221);
    assert_order_independent(&segs, true, 40);
}

#[test]
fn gap_inside_data_ends_the_message_incomplete() {
    let rec = run(&[
        s("220 mx\r\n"),
        c("HELO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        c("Subject: big\r\n\r\npart one\r\n"),
        Seg::Gap(C, 1400),
        c("lost line tail\r\nmore body\r\nQUIT\r\n.\r\n"),
        s("250 queued\r\n"),
        c("QUIT\r\n"),
        s("221 bye\r\n"),
    ]);
    assert_eq!(rec.messages.len(), 1);
    let m = &rec.messages[0];
    assert!(!m.complete);
    // The message goes on after the gap: its lines are read into it.
    assert_eq!(
        m.size,
        "Subject: big\r\n\r\npart one\r\nlost line tail\r\nmore body\r\nQUIT\r\n".len() as u64
    );
    assert_eq!(m.missing_bytes, 1400);
    assert_eq!(m.mail_from.as_deref(), Some("a@x.org"));
    assert!(rec.has_anomaly("data_after_gap"));
    // Body lines after the gap, even command-like ones, are not commands.
    assert_eq!(commands(&rec).iter().filter(|c| *c == "QUIT").count(), 1);
    assert!(
        rec.events
            .iter()
            .any(|e| e.kind == EventKind::Gap { bytes: 1400 })
    );
    assert!(!rec.has_anomaly("reply_without_command"));
}

#[test]
fn gap_between_commands_resynchronises() {
    let rec = run(&[
        s("220 mx\r\n"),
        c("EHLO c\r\nMAIL FROM:<a@x.org>\r\n"),
        Seg::Gap(C, 50),
        c("tail of something\r\nQUIT\r\n"),
        s("250 mx\r\n250 ok\r\n250 ok\r\n221 bye\r\n"),
    ]);
    assert_eq!(
        commands(&rec),
        vec!["EHLO c", "MAIL FROM:<a@x.org>", "QUIT"]
    );
    // The reply to the lost command is recognised as such; QUIT still gets 221.
    assert!(rec.has_anomaly("reply_for_lost_command"));
    assert!(!rec.has_anomaly("reply_without_command"));
}

#[test]
fn server_gap_keeps_alignment_where_codes_tell() {
    let rec = run(&[
        s("220 mx\r\n"),
        c("EHLO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 mx\r\n"),
        Seg::Gap(S, 30),
        s("354 go\r\n"),
        c("body\r\n.\r\n"),
        s("250 queued\r\n"),
    ]);
    assert!(rec.has_anomaly("reply_lost_in_gap"));
    assert_eq!(rec.messages.len(), 1);
    assert!(rec.messages[0].complete);
    assert_eq!(rec.smtp.as_ref().unwrap().messages_accepted, 1);
}

#[test]
fn mid_stream_pickup_inside_a_body() {
    let limits = Limits::default();
    let segs = [
        c(
            "ody line cut\r\nSubject: not a command\r\nHelo there, friend\r\n.\r\nMAIL FROM:<a@x.org>\r\n",
        ),
        s("ueued as 1\r\n250 2.0.0 queued\r\n250 2.1.0 ok\r\n"),
        c("QUIT\r\n"),
        s("221 bye\r\n"),
    ];
    let rec = run_timed(&timed(&segs), &limits, false);
    assert_eq!(commands(&rec), vec!["MAIL FROM:<a@x.org>", "QUIT"]);
    assert!(rec.has_anomaly("lost_data_end"));
    assert!(rec.has_anomaly("client_resync_skipped"));
    assert!(rec.has_anomaly("server_resync_skipped"));
    assert!(rec.messages.is_empty());
    assert_eq!(rec.smtp.as_ref().unwrap().transactions, 1);
    assert!(!rec.has_anomaly("reply_without_command"));
    assert!(rec.smtp.as_ref().unwrap().greeting.is_none());
}

#[test]
fn mid_stream_pickup_at_a_full_line_keeps_it() {
    let limits = Limits::default();
    let segs = [s("220 mx ESMTP\r\n"), c("EHLO c\r\n"), s("250 mx\r\n")];
    let rec = run_timed(&timed(&segs), &limits, false);
    assert_eq!(commands(&rec), vec!["EHLO c"]);
    let smtp = rec.smtp.as_ref().unwrap();
    assert_eq!(smtp.greeting_code, Some(220));
    assert!(rec.anomalies.is_empty(), "{:?}", rec.anomalies);
}

#[test]
fn client_only_capture_keeps_all_attempted_recipients() {
    let rec = run(&[
        c("EHLO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nRCPT TO:<c@y.org>\r\nDATA\r\n"),
        c("Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n"),
    ]);
    assert_eq!(rec.messages.len(), 1);
    let m = &rec.messages[0];
    assert!(m.complete);
    assert_eq!(
        m.rcpt_to,
        Some(vec!["b@y.org".to_string(), "c@y.org".to_string()])
    );
    assert_eq!(m.size, "Subject: x\r\n\r\nhi\r\n".len() as u64);
    assert_eq!(commands(&rec).last().map(String::as_str), Some("QUIT"));
}

#[test]
fn client_only_rejected_looking_data_is_read_as_commands() {
    // Without a reply, DATA followed by a command is taken as refused.
    let rec = run(&[c("MAIL FROM:<a@x.org>\r\nDATA\r\nQUIT\r\n")]);
    assert!(rec.messages.is_empty());
    assert_eq!(commands(&rec).last().map(String::as_str), Some("QUIT"));
}

#[test]
fn unknown_commands_are_kept_verbatim() {
    let rec = run(&[
        s("220 mx\r\n"),
        c("XCLIENT NAME=spike.porcupine.org ADDR=168.100.189.2\r\nVRFY bob\r\nhelp\r\n"),
        s("502 5.5.2 Error: command not recognized\r\n252 2.0.0 bob\r\n214 2.0.0 help\r\n"),
    ]);
    assert_eq!(
        commands(&rec),
        vec![
            "XCLIENT NAME=spike.porcupine.org ADDR=168.100.189.2",
            "VRFY bob",
            "HELP"
        ]
    );
    assert_eq!(rec.smtp.as_ref().unwrap().unknown_commands, 1);
    assert!(rec.anomalies.is_empty(), "{:?}", rec.anomalies);
}

#[test]
fn sloppy_paths_are_accepted_and_reported() {
    let rec = run(&[
        s("220 mx\r\n"),
        c(
            "MAIL FROM: <a@x.org>\r\nRCPT TO:b@y.org\r\nRCPT TO:<@r1.net,@r2.net:c@y.org>\r\nRCPT TO:<josé@exämple.de>\r\nDATA\r\n",
        ),
        s("250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        c(".\r\n"),
        s("250 ok\r\n"),
    ]);
    let m = &rec.messages[0];
    assert_eq!(m.size, 0);
    assert_eq!(
        m.sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(m.mail_from.as_deref(), Some("a@x.org"));
    assert_eq!(
        m.rcpt_to,
        Some(vec![
            "b@y.org".to_string(),
            "c@y.org".to_string(),
            "josé@exämple.de".to_string()
        ])
    );
    for kind in [
        "path_space_after_colon",
        "path_missing_brackets",
        "source_route",
        "utf8_address_without_smtputf8",
    ] {
        assert!(rec.has_anomaly(kind), "{kind}");
    }
}

#[test]
fn odd_lines_become_anomalies_not_panics() {
    let mut long = "NOOP ".to_string();
    long.push_str(&"x".repeat(1500));
    long.push_str("\r\n");
    let rec = run(&[
        s("220 mx\r\n"),
        c(&long),
        cb(b"NOOP a\x00b\r\nNOOP bare\nNOOP c\rr\r\nM\xc3\x84IL x\r\n\xff\xfe\r\n\r\n"),
        s("250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n500 what\r\n500 what\r\n500 what\r\n"),
    ]);
    for kind in [
        "line_too_long",
        "nul_byte",
        "bare_lf",
        "bare_cr",
        "non_ascii_command",
        "invalid_utf8",
        "empty_command_line",
    ] {
        assert!(rec.has_anomaly(kind), "{kind}: {:?}", anomaly_kinds(&rec));
    }
    assert!(!rec.has_anomaly("reply_without_command"));
    assert!(!rec.smtp.as_ref().unwrap().not_smtp);
}

#[test]
fn lines_beyond_the_cap_are_cut_and_bounded() {
    let limits = Limits {
        max_line_len: 64,
        ..Limits::default()
    };
    let mut line = "NOOP ".to_string();
    line.push_str(&"y".repeat(10_000));
    line.push_str("\r\nQUIT\r\n");
    let rec = run_timed(&timed(&[s("220 mx\r\n"), c(&line)]), &limits, true);
    assert!(rec.has_anomaly("line_truncated"));
    let cmds = commands(&rec);
    assert_eq!(cmds.len(), 2);
    assert!(cmds[0].len() <= 64);
    assert_eq!(cmds[1], "QUIT");
}

#[test]
fn bare_lf_body_and_nonstandard_end_are_reported() {
    let rec = run(&[
        s("220 mx\r\n"),
        c("MAIL FROM:<a@x.org>\nRCPT TO:<b@y.org>\nDATA\n"),
        s("250 ok\r\n250 ok\r\n354 go\r\n"),
        c("line one\nline two\n.\n"),
        s("250 ok\r\n"),
    ]);
    assert_eq!(rec.messages[0].size, "line one\nline two\n".len() as u64);
    assert!(rec.has_anomaly("bare_lf"));
    assert!(rec.has_anomaly("bare_lf_in_body"));
    assert!(rec.has_anomaly("nonstandard_end_of_data"));
}

#[test]
fn unknown_command_flood_is_bounded_and_fast() {
    let limits = Limits {
        max_events_per_session: 10_000,
        ..Limits::default()
    };
    let mut client = Vec::with_capacity(100_000 * 12);
    for i in 0..100_000 {
        client.extend_from_slice(format!("XYZZY {i}\r\n").as_bytes());
    }
    let start = std::time::Instant::now();
    let mut rec = new_rec(true, &limits);
    let mut d = SmtpDissector::new(&limits);
    d.on_data(S, b"220 mx\r\n", ts_of(0), &mut rec);
    for (i, chunk) in client.chunks(1460).enumerate() {
        d.on_data(C, chunk, ts_of(i + 1), &mut rec);
    }
    let (pending, replies, held) = d.queue_sizes();
    assert!(pending <= limits.max_pending_commands, "{pending}");
    assert_eq!(replies, 0);
    assert_eq!(held, 0);
    d.on_end(END_TS, &mut rec);
    let elapsed = start.elapsed();
    assert_eq!(rec.events.len(), 10_000);
    assert_eq!(rec.events_dropped, 100_001 - 10_000);
    assert_eq!(rec.smtp.as_ref().unwrap().unknown_commands, 100_000);
    assert!(rec.has_anomaly("pending_commands_limit"));
    assert!(elapsed.as_secs() < 20, "took {elapsed:?}");
}

#[test]
fn http_on_the_smtp_port_is_not_smtp() {
    let mut body = String::new();
    for i in 0..40 {
        body.push_str(&format!("<p>paragraph {i}</p>\r\n"));
    }
    let rec = run(&[
        c("GET / HTTP/1.1\r\nHost: mail.example.org\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n"),
        s(&format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n{body}"
        )),
    ]);
    let smtp = rec.smtp.as_ref().unwrap();
    assert!(smtp.not_smtp);
    assert!(
        rec.anomalies
            .iter()
            .any(|a| a.kind == "not_smtp" && a.from == Some(S))
    );
    // Its lines are kept (under the bound), each an anomaly.
    let server_lines = rec
        .events
        .iter()
        .filter(|e| e.from == S && matches!(e.kind, EventKind::Line { .. }))
        .count();
    assert_eq!(server_lines, 43);
}

#[test]
fn binary_bytes_on_both_sides_are_not_smtp() {
    let rec = run(&[
        sb(b"\x00\x01\x02\x03binary\x00\r\nmore\x00\x00\r\n"),
        cb(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\nabc\r\n"),
    ]);
    let smtp = rec.smtp.as_ref().unwrap();
    assert!(smtp.not_smtp);
    assert_eq!(
        rec.anomalies
            .iter()
            .filter(|a| a.kind == "not_smtp")
            .count(),
        2
    );
    assert!(rec.has_anomaly("control_bytes"));
}

#[test]
fn paused_client_overflow_assumes_the_body() {
    let mut body = Vec::new();
    for _ in 0..30_000 {
        body.extend_from_slice(b"0123456789012345678901234567890123456789\r\n");
    }
    body.extend_from_slice(b".\r\nQUIT\r\n");
    let rec = run(&[
        s("220 mx\r\n"),
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        cb(&body),
        s("250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n"),
    ]);
    assert!(rec.has_anomaly("paused_client_overflow"));
    assert!(!rec.has_anomaly("assumed_reply_contradicted"));
    assert_eq!(rec.messages.len(), 1);
    assert_eq!(rec.messages[0].size, 30_000 * 42);
    assert_eq!(rec.smtp.as_ref().unwrap().messages_accepted, 1);
    assert_eq!(commands(&rec).last().map(String::as_str), Some("QUIT"));
}

#[test]
fn paused_client_past_the_run_budget_assumes_the_body_early() {
    // 200 KB held is far below the 1 MiB bound, but more than the run's budget allows.
    let mut body = Vec::new();
    for _ in 0..5_000 {
        body.extend_from_slice(b"0123456789012345678901234567890123456789\r\n");
    }
    body.extend_from_slice(b".\r\nQUIT\r\n");
    let segs = [
        s("220 mx\r\n"),
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        cb(&body),
        s("250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n"),
    ];
    let budget = crate::limits::RetentionBudget::new(64 << 10);
    let limits = Limits {
        work_budget: budget.clone(),
        ..Limits::default()
    };
    let rec = run_timed(&timed(&segs), &limits, true);
    assert!(rec.has_anomaly("paused_client_overflow"));
    assert_eq!(rec.messages.len(), 1);
    assert_eq!(rec.messages[0].size, 5_000 * 42);
    assert_eq!(commands(&rec).last().map(String::as_str), Some("QUIT"));
    assert!(budget.peak() <= 64 << 10);
    // Without the budget the same session waits for the replies and needs no assumption.
    let rec = run(&segs);
    assert!(!rec.has_anomaly("paused_client_overflow"));
    assert_eq!(rec.messages[0].size, 5_000 * 42);
}

#[test]
fn hostile_bytes_never_panic() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let alphabet: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"\r",
        b".",
        b"..",
        b"\r\n.\r\n",
        b"DATA\r\n",
        b"BDAT ",
        b"BDAT 3\r\n",
        b"BDAT 99999999999999999999 LAST\r\n",
        b"AUTH LOGIN\r\n",
        b"STARTTLS\r\n",
        b"354 x\r\n",
        b"334 \r\n",
        b"220 x\r\n",
        b"250-",
        b"250 ok\r\n",
        b"235 ok\r\n",
        b"MAIL FROM:<",
        b">",
        b"\"",
        b"\x00",
        b"\x16\x03",
        b"\xff",
        b"RCPT TO:<a@b>\r\n",
        b"*\r\n",
        b"QUIT\r\n",
    ];
    for round in 0..300 {
        let mut segs = Vec::new();
        for _ in 0..rng.below(40) {
            let dir = if rng.below(2) == 0 { C } else { S };
            if rng.below(15) == 0 {
                segs.push(Seg::Gap(dir, rng.below(5000) as u64 + 1));
                continue;
            }
            let mut bytes = Vec::new();
            for _ in 0..rng.below(8) + 1 {
                bytes.extend_from_slice(alphabet[rng.below(alphabet.len())]);
            }
            segs.push(Seg::Data(dir, bytes));
        }
        let limits = Limits {
            max_line_len: 32,
            max_pending_commands: 4,
            max_events_per_session: 200,
            ..Limits::default()
        };
        let rec = run_timed(&timed(&segs), &limits, round % 3 != 0);
        assert!(rec.smtp.is_some());
    }
}

#[test]
fn every_split_point_gives_the_same_record() {
    let mut segs = plain_session();
    segs.extend(bdat_session().into_iter().skip(3));
    let natural = timed(&segs);
    let limits = Limits::default();
    let reference = normalized(run_timed(&natural, &limits, true));
    for (i, (_, seg)) in natural.iter().enumerate() {
        let Seg::Data(dir, bytes) = seg else { continue };
        for cut in 1..bytes.len() {
            let mut order = natural.clone();
            let ts = order[i].0;
            order[i] = (ts, Seg::Data(*dir, bytes[..cut].to_vec()));
            order.insert(i + 1, (ts, Seg::Data(*dir, bytes[cut..].to_vec())));
            let got = normalized(run_timed(&order, &limits, true));
            assert_same(&got, &reference, &format!("segment {i} cut at {cut}"));
        }
    }
}

fn rich_session() -> Vec<Seg> {
    vec![
        s("220 mx.example.org ESMTP ready\r\n"),
        c("EHLO client.example.com\r\n"),
        s(EHLO_REPLY),
        c("AUTH LOGIN\r\n"),
        s("334 VXNlcm5hbWU6\r\n"),
        c("YWxpY2U=\r\n"),
        s("334 UGFzc3dvcmQ6\r\n"),
        c("c2VjcmV0\r\n"),
        s("235 2.7.0 Authentication successful\r\n"),
        c(
            "MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n",
        ),
        s("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 No such user\r\n354 go ahead\r\n"),
        c(BODY_WIRE),
        s("250 2.0.0 Ok: queued as 1\r\n"),
        c(
            "MAIL FROM:<alice@example.com>\r\nRCPT TO:<carol@example.org>\r\nBDAT 10\r\n0123456789BDAT 0 LAST\r\n",
        ),
        s(
            "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 10 octets received\r\n250 2.0.0 Ok: queued as 2\r\n",
        ),
        c(
            "MAIL FROM:<x@example.com>\r\nRCPT TO:<y@example.org>\r\nRSET\r\nVRFY bob\r\nXUNKNOWN thing\r\n",
        ),
        s("250 ok\r\n250 ok\r\n250 2.0.0 Ok\r\n252 2.0.0 bob\r\n502 5.5.2 unknown\r\n"),
        c("STARTTLS\r\n"),
        s("220 2.0.0 Ready to start TLS\r\n"),
        cb(b"\x16\x03\x01\x00\x05hello"),
        sb(b"\x16\x03\x03\x00\x02hi"),
    ]
}

#[test]
fn record_does_not_depend_on_interleaving() {
    let segs = rich_session();
    let rec = run(&segs);
    // A sanity check that the reference itself is right.
    assert_eq!(rec.messages.len(), 2);
    assert_eq!(rec.credentials.len(), 1);
    assert_eq!(
        rec.messages[0].rcpt_to,
        Some(vec!["bob@example.org".to_string()])
    );
    assert!(rec.smtp.as_ref().unwrap().starttls_accepted);
    assert!(smtp_anomalies(&rec).is_empty(), "{:?}", rec.anomalies);
    assert_order_independent(&segs, true, 200);
}

#[test]
fn record_with_rejections_and_gaps_does_not_depend_on_interleaving() {
    let segs = vec![
        s("220 mx ESMTP\r\n"),
        c("HELO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 mx\r\n250 ok\r\n250 ok\r\n554 5.5.1 no\r\n"),
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 ok\r\n250 ok\r\n354 go\r\n"),
        c("Subject: x\r\n\r\nfirst part\r\n"),
        Seg::Gap(C, 700),
        c("after the gap\r\n.\r\n"),
        s("250 queued\r\n"),
        c("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        s("535 5.7.8 bad\r\n"),
        c("STARTTLS\r\n"),
        s("454 4.7.0 no TLS\r\n"),
        c("EHLO again\r\n"),
        s("250-mx\r\n"),
        Seg::Gap(S, 40),
        s("250 SIZE 1000\r\n"),
        c("NOOP\r\nQUIT\r\n"),
        s("250 ok\r\n221 bye\r\n"),
    ];
    let rec = run(&segs);
    assert_eq!(rec.messages.len(), 1);
    assert!(!rec.messages[0].complete);
    assert_eq!(rec.credentials[0].success, Some(false));
    assert_eq!(rec.smtp.as_ref().unwrap().size_limit, Some(1000));
    assert_order_independent(&segs, true, 200);
}

#[test]
fn mid_stream_record_does_not_depend_on_interleaving() {
    let segs = vec![
        c("ody line cut\r\nSubject: not a command\r\n.\r\nMAIL FROM:<a@x.org>\r\n"),
        s("ueued as 1\r\n250 2.0.0 queued\r\n250 2.1.0 ok\r\n"),
        c("RCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 ok\r\n354 go\r\n"),
        c("hello\r\n.\r\nQUIT\r\n"),
        s("250 ok\r\n221 bye\r\n"),
    ];
    assert_order_independent(&segs, false, 100);
}

#[test]
fn starttls_and_bdat_records_do_not_depend_on_interleaving() {
    assert_order_independent(&starttls_session(), true, 100);
    assert_order_independent(&bdat_session(), true, 100);
    assert_order_independent(&plain_session(), true, 100);
}

#[test]
fn a_reply_swallowed_by_an_unfinished_multi_line_reply_is_recovered() {
    // The EHLO reply never sends its last line, so the next "250" ends it and every later
    // reply answers the command before its own; the 354 shows where they belong.
    let rec = run(&[
        s("220 mx ESMTP\r\n"),
        c("EHLO c\r\n"),
        s("250-mx.example.org\r\n"),
        c("MAIL FROM:<a@x.org>\r\n"),
        s("250 ok\r\n"),
        c("RCPT TO:<b@y.org>\r\n"),
        s("250 ok\r\n"),
        c("DATA\r\n"),
        s("354 go\r\n"),
        c("Subject: x\r\n\r\nbody\r\n.\r\n"),
        s("250 queued\r\n"),
        c("QUIT\r\n"),
        s("221 bye\r\n"),
    ]);
    assert!(rec.has_anomaly("reply_sequence_mismatch"));
    assert_eq!(rec.messages.len(), 1);
    assert_eq!(
        rec.messages[0].size,
        "Subject: x\r\n\r\nbody\r\n".len() as u64
    );
    assert_eq!(rec.messages[0].rcpt_to, Some(vec!["b@y.org".to_string()]));
    assert_eq!(commands(&rec).last().map(String::as_str), Some("QUIT"));
}

#[test]
fn an_extra_reply_before_data_is_dropped() {
    let rec = run(&[
        s("220 mx ESMTP\r\n"),
        c("MAIL FROM:<a@x.org>\r\n"),
        s("250 ok\r\n250 spurious\r\n"),
        c("DATA\r\n"),
        s("354 go\r\n"),
        c("x\r\n.\r\n"),
        s("250 queued\r\n"),
    ]);
    assert!(rec.has_anomaly("reply_sequence_mismatch"));
    assert_eq!(rec.messages.len(), 1);
    assert_eq!(rec.smtp.as_ref().unwrap().messages_accepted, 1);
}

#[test]
fn a_first_reply_that_cannot_greet_answers_the_first_command() {
    let rec = run(&[
        c("EHLO\n"),
        s("250\n"),
        c("rset\nstaRttLs\n"),
        s("250\n"),
        s("220\n"),
        cb(b"\x16\x03\x01"),
    ]);
    let smtp = rec.smtp.as_ref().unwrap();
    assert_eq!(smtp.greeting_code, None);
    assert!(smtp.starttls_accepted);
    assert!(rec.tls.is_some());
    assert_eq!(commands(&rec), vec!["EHLO", "RSET", "STARTTLS"]);
}

#[test]
fn server_held_after_an_unclaimed_220_is_bounded() {
    let limits = Limits::default();
    let mut rec = new_rec(false, &limits);
    let mut d = SmtpDissector::new(&limits);
    // Picked up mid-stream: the first reply may be a greeting or a STARTTLS answer, and no
    // client command arrives to tell.
    d.on_data(S, b"220 ready\r\n", ts_of(0), &mut rec);
    let chunk = vec![0x17u8; 64 * 1024];
    for i in 0..40 {
        d.on_data(S, &chunk, ts_of(i + 1), &mut rec);
        let (_, _, held) = d.queue_sizes();
        assert!(held <= (1 << 20) + chunk.len(), "{held}");
    }
    d.on_end(END_TS, &mut rec);
    assert!(rec.has_anomaly("paused_server_overflow"));
    assert!(rec.tls.is_some());
}

#[test]
fn a_stray_code_closes_at_most_one_command() {
    let rec = run(&[
        s("220 mx ESMTP\r\n"),
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nRCPT TO:<c@y.org>\r\n"),
        s("354 stray\r\n250 ok\r\n250 ok\r\n"),
    ]);
    // MAIL loses its reply to the stray 354, which is then dropped; the RCPTs keep theirs.
    assert!(rec.has_anomaly("reply_sequence_mismatch"));
    assert!(!rec.has_anomaly("reply_without_command"));
    assert_eq!(rec.smtp.as_ref().unwrap().transactions, 1);
}

/// A random but well-formed conversation, for the interleaving property.
fn random_session(rng: &mut Rng) -> Vec<Seg> {
    let mut segs = vec![
        s("220 mx ESMTP\r\n"),
        c("EHLO c\r\n"),
        s("250-mx\r\n250-PIPELINING\r\n250-AUTH LOGIN PLAIN\r\n250 CHUNKING\r\n"),
    ];
    let words = [
        "alpha",
        ".dot",
        "..two",
        "",
        "x.y",
        ". ",
        "Subject: z",
        "\t.tab",
    ];
    for _ in 0..rng.below(6) + 1 {
        match rng.below(7) {
            0 | 6 => {
                let rcpts = rng.below(3) + 1;
                let mut cmd = "MAIL FROM:<a@x.org>\r\n".to_string();
                let mut rep = "250 ok\r\n".to_string();
                for i in 0..rcpts {
                    cmd.push_str(&format!("RCPT TO:<r{i}@y.org>\r\n"));
                    rep.push_str(if rng.below(4) == 0 {
                        "550 no\r\n"
                    } else {
                        "250 ok\r\n"
                    });
                }
                cmd.push_str("DATA\r\n");
                let accept = rng.below(5) != 0;
                rep.push_str(if accept { "354 go\r\n" } else { "554 no\r\n" });
                segs.push(c(&cmd));
                segs.push(s(&rep));
                if accept {
                    let mut wire = String::new();
                    for _ in 0..rng.below(12) {
                        let w = words[rng.below(words.len())];
                        if w.starts_with('.') {
                            wire.push('.');
                        }
                        wire.push_str(w);
                        wire.push_str("\r\n");
                    }
                    let split = rng.below(wire.len() + 1);
                    let split = (0..=split)
                        .rev()
                        .find(|&i| wire.is_char_boundary(i))
                        .unwrap_or(0);
                    segs.push(c(&wire[..split]));
                    if rng.below(7) == 0 {
                        segs.push(Seg::Gap(C, rng.below(300) as u64 + 1));
                    }
                    segs.push(c(&format!("{}.\r\n", &wire[split..])));
                    segs.push(s(if rng.below(4) == 0 {
                        "452 full\r\n"
                    } else {
                        "250 queued\r\n"
                    }));
                }
            }
            1 => {
                let a = "0123456789.\r\n".repeat(rng.below(3));
                let b = ".\r\nxyz".repeat(rng.below(3));
                segs.push(c(&format!(
                    "MAIL FROM:<b@x.org>\r\nRCPT TO:<q@y.org>\r\nBDAT {}\r\n{a}BDAT {} LAST\r\n{b}",
                    a.len(),
                    b.len()
                )));
                segs.push(s("250 ok\r\n250 ok\r\n250 chunk\r\n250 queued\r\n"));
            }
            2 => {
                let ok = rng.below(2) == 0;
                segs.push(c("AUTH LOGIN\r\n"));
                segs.push(s("334 VXNlcm5hbWU6\r\n"));
                segs.push(c("YWxpY2U=\r\n"));
                segs.push(s("334 UGFzc3dvcmQ6\r\n"));
                segs.push(c("c2VjcmV0\r\n"));
                segs.push(s(if ok { "235 ok\r\n" } else { "535 5.7.8 no\r\n" }));
            }
            3 => {
                segs.push(c("RSET\r\nNOOP\r\nXFOO bar\r\n"));
                segs.push(s("250 ok\r\n250 ok\r\n502 what\r\n"));
            }
            4 => {
                segs.push(c("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"));
                segs.push(s("235 ok\r\n"));
            }
            _ => {
                segs.push(c("VRFY bob\r\nHELP\r\n"));
                segs.push(s("252 maybe\r\n214-help\r\n214 more help\r\n"));
            }
        }
    }
    if rng.below(2) == 0 {
        segs.push(c("STARTTLS\r\n"));
        segs.push(s("220 go\r\n"));
        segs.push(cb(b"\x16\x03\x01\x00\x01x"));
        segs.push(sb(b"\x16\x03\x03\x00\x01y"));
    } else {
        segs.push(c("QUIT\r\n"));
        segs.push(s("221 bye\r\n"));
    }
    segs
}

#[test]
fn random_sessions_do_not_depend_on_interleaving() {
    let mut rng = Rng(0x5eed_0f5e_5510_1100);
    for _ in 0..60 {
        let segs = random_session(&mut rng);
        let rec = run(&segs);
        assert!(
            !rec.has_anomaly("reply_without_command") && !rec.has_anomaly("message_index_mismatch"),
            "{:?}\n{:?}",
            segs,
            rec.anomalies
        );
        assert_order_independent(&segs, true, 15);
    }
}

#[test]
fn a_new_code_ends_an_unfinished_multi_line_reply() {
    let rec = auth_session(&[
        c("EHLO again\r\n"),
        s("250-mx.example.org\r\n"),
        c("AUTH LOGIN\r\n"),
        s("334 VXNlcm5hbWU6\r\n"),
        c("YWxpY2U=\r\n"),
        s("334 UGFzc3dvcmQ6\r\n"),
        c("c2VjcmV0\r\n"),
        s("235 ok\r\n"),
    ]);
    assert!(rec.has_anomaly("reply_code_mismatch"));
    assert_eq!(rec.credentials[0].success, Some(true));
    assert_eq!(
        auth_data(&rec),
        vec![
            (S, "VXNlcm5hbWU6".to_string()),
            (C, "YWxpY2U=".to_string()),
            (S, "UGFzc3dvcmQ6".to_string()),
            (C, "c2VjcmV0".to_string())
        ]
    );
}

/// Anomalies raised by the SMTP layer itself; the fake TLS and MIME payloads in these
/// transcripts rightly draw anomalies from the TLS and MIME decoders.
fn smtp_anomalies(rec: &SessionRecord) -> Vec<&crate::session::Anomaly> {
    rec.anomalies
        .iter()
        .filter(|a| !a.kind.starts_with("tls_") && !a.kind.starts_with("mime_"))
        .collect()
}

#[test]
fn messages_are_decoded_with_the_configured_mime_limits() {
    // Found by fuzzing: DATA and BDAT messages were decoded with the default MIME limits,
    // so a run's own bounds (here a 16-byte body excerpt) did not apply to SMTP.
    let mut limits = Limits::default();
    limits.mime.max_body_bytes = 16;
    let body = "Subject: hi\r\n\r\n".to_string() + &"z".repeat(100) + "\r\n";
    let mut rec = run_timed(
        &timed(&[
            s("220 mx\r\n"),
            c("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
            s("250 ok\r\n250 ok\r\n354 go\r\n"),
            c(&format!("{body}.\r\n")),
            s("250 ok\r\n"),
            c(&format!(
                "MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nBDAT {} LAST\r\n{body}",
                body.len()
            )),
            s("250 ok\r\n250 ok\r\n250 ok\r\n"),
        ]),
        &limits,
        true,
    );
    crate::mail::resolve_deferred(&mut rec);
    assert_eq!(rec.messages.len(), 2);
    for m in &rec.messages {
        let mime = m.mime.as_ref().expect("decoded");
        assert_eq!(mime.body_text.as_deref(), Some("zzzzzzzzzzzzzzzz"));
        assert!(mime.body_text_truncated);
    }
}

#[test]
fn messages_past_the_session_limit_are_counted_not_recorded() {
    let mut client = String::new();
    let mut server = String::from("220 mx\r\n");
    for i in 0..5 {
        client.push_str(&format!(
            "MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\nSubject: {i}\r\n\r\nbody {i}\r\n.\r\n"
        ));
        server.push_str("250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n");
    }
    client.push_str("QUIT\r\n");
    server.push_str("221 bye\r\n");
    let limits = Limits {
        max_messages_per_session: 3,
        ..Limits::default()
    };
    let rec = run_timed(&timed(&[s(&server), c(&client)]), &limits, true);
    assert_eq!(rec.messages.len(), 3);
    assert_eq!(rec.messages_dropped, 2);
    assert!(rec.has_anomaly("message_limit"));
    assert!(!rec.has_anomaly("message_index_mismatch"));
    let indexes: Vec<usize> = rec
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::MessageData { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(indexes, [0, 1, 2]);
    assert_eq!(rec.smtp.as_ref().unwrap().messages_accepted, 5);
}

#[test]
fn each_message_records_the_servers_verdict() {
    let rec = run(&[
        s("220 mx\r\n"),
        c("EHLO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        c("Subject: one\r\n\r\nclean\r\n.\r\n"),
        s("250 2.0.0 Ok: queued as 4F2\r\n"),
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 ok\r\n250 ok\r\n354 go\r\n"),
        c("Subject: two\r\n\r\nEICAR\r\n.\r\n"),
        s("554-5.7.1 Message contains virus\r\n554 5.7.1 rejected\r\n"),
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 ok\r\n250 ok\r\n354 go\r\n"),
        c("Subject: three\r\n\r\nnever answered\r\n.\r\n"),
    ]);
    assert_eq!(rec.messages.len(), 3);
    let verdict = |i: usize| {
        rec.messages[i]
            .reply
            .as_ref()
            .map(|r| (r.code, r.text.clone()))
    };
    assert_eq!(
        verdict(0),
        Some((250, "2.0.0 Ok: queued as 4F2".to_string()))
    );
    assert_eq!(
        verdict(1),
        Some((
            554,
            "5.7.1 Message contains virus 5.7.1 rejected".to_string()
        ))
    );
    assert_eq!(verdict(2), None, "no reply was captured");
}

#[test]
fn replies_pair_with_commands_when_the_greeting_is_missing() {
    let segs = vec![
        c("EHLO c\r\n"),
        s("250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"),
        c("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        s("235 2.7.0 ok\r\n"),
        c("MAIL FROM:<a@x.org>\r\n"),
        s("250 ok\r\n"),
        c("QUIT\r\n"),
        s("221 bye\r\n"),
    ];
    let mut lost = segs.clone();
    lost.insert(0, Seg::Gap(S, 30));
    // Picked up mid-session (no handshake), greeting lost in a gap, or never sent.
    for (segs, handshake_seen) in [(&segs, false), (&lost, true), (&segs, true)] {
        let rec = run_timed(&timed(segs), &Limits::default(), handshake_seen);
        let smtp = rec.smtp.as_ref().unwrap();
        assert!(smtp.greeting.is_none());
        assert!(smtp.pipelining && smtp.authenticated && smtp.quit);
        assert_eq!(smtp.capabilities, ["PIPELINING", "AUTH PLAIN"]);
        assert_eq!(rec.credentials[0].success, Some(true));
        assert_eq!(reply_codes(&rec), [250, 235, 250, 221]);
        assert_order_independent(segs, handshake_seen, 10);
    }
}

#[test]
fn the_end_of_data_is_recovered_whatever_part_of_it_a_gap_took() {
    for (before, lost, after, anomaly) in [
        ("last line", "\r\n", ".\r\nQUIT\r\n", "data_after_gap"),
        ("last line\r", "\n", ".\r\nQUIT\r\n", "data_after_gap"),
        ("last", " line\r\n", ".\r\nQUIT\r\n", "data_after_gap"),
        ("last line", "\r\n.", "\r\nQUIT\r\n", "end_of_data_lost"),
        ("last line", "\r\n.\r\n", "QUIT\r\n", "end_of_data_lost"),
        (
            "last line",
            "\r\n.\r\n",
            "RSET\r\nQUIT\r\n",
            "end_of_data_lost",
        ),
    ] {
        let segs = vec![
            s("220 mx ESMTP\r\n"),
            c("HELO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
            s("250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
            c(&format!("Subject: a\r\n\r\n{before}")),
            Seg::Gap(C, lost.len() as u64),
            c(after),
            s(if after.starts_with("RSET") || after.contains("RSET") {
                "250 queued\r\n250 reset\r\n221 bye\r\n"
            } else {
                "250 queued\r\n221 bye\r\n"
            }),
        ];
        let rec = run(&segs);
        let case = format!("lost {lost:?}");
        assert_eq!(
            commands(&rec).last().map(String::as_str),
            Some("QUIT"),
            "{case}"
        );
        assert_eq!(reply_codes(&rec).last(), Some(&221), "{case}");
        assert_eq!(rec.messages.len(), 1, "{case}");
        let m = &rec.messages[0];
        assert!(!m.complete, "{case}");
        assert_eq!(m.reply.as_ref().map(|r| r.code), Some(250), "{case}");
        assert!(rec.has_anomaly(anomaly), "{case}: {:?}", rec.anomalies);
        assert!(!rec.has_anomaly("reply_without_command"), "{case}");
        assert_order_independent(&segs, true, 10);
    }
}

/// Every way a mail transaction can end, in one session.
fn transactions_session() -> Vec<Seg> {
    vec![
        s("220 mx ESMTP\r\n"),
        c("EHLO c\r\n"),
        s("250-mx\r\n250 PIPELINING\r\n"),
        // Refused sender.
        c("MAIL FROM:<spam@bad.example>\r\n"),
        s("550 5.7.1 sender rejected\r\n"),
        // One recipient refused, one accepted, the message refused after its end of data.
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<nobody@y.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n354 go\r\n"),
        c("Subject: virus\r\n\r\nbad\r\n.\r\n"),
        s("554 5.7.1 Message contains a virus\r\n"),
        // Every recipient refused: DATA refused with them.
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<nobody@y.org>\r\nDATA\r\n"),
        s("250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n"),
        // Abandoned by RSET.
        c("RSET\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nRSET\r\n"),
        s("250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n"),
        // DATA refused for now.
        c("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 ok\r\n250 ok\r\n451 4.3.0 try later\r\n"),
        // Delivered, from the null sender.
        c("RSET\r\nMAIL FROM:<>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        c("Subject: fine\r\n\r\nok\r\n.\r\n"),
        s("250 2.0.0 queued as 42\r\n"),
        // DATA with no transaction at all.
        c("DATA\r\nQUIT\r\n"),
        s("503 5.5.1 need MAIL\r\n221 bye\r\n"),
    ]
}

#[test]
fn every_transaction_is_recorded_with_its_envelope_and_outcome() {
    use super::TransactionOutcome as O;
    let segs = transactions_session();
    let rec = run(&segs);
    let list = &rec.smtp.as_ref().unwrap().mail_transactions;
    let outcomes: Vec<O> = list.iter().map(|t| t.outcome).collect();
    assert_eq!(
        outcomes,
        [
            O::MailRefused,
            O::Rejected,
            O::NoRecipients,
            O::Abandoned,
            O::DataRefused,
            O::Delivered
        ]
    );
    let rejected = &list[1];
    assert_eq!(rejected.mail_from.as_deref(), Some("a@x.org"));
    let rcpts: Vec<(&str, Option<u16>)> = rejected
        .recipients
        .iter()
        .map(|r| (r.path.as_str(), r.reply))
        .collect();
    assert_eq!(rcpts, [("nobody@y.org", Some(550)), ("b@y.org", Some(250))]);
    assert_eq!(rejected.data_reply, Some(354));
    let last = rejected.last_reply.as_ref().unwrap();
    assert_eq!(
        (last.code, last.text.as_str()),
        (554, "5.7.1 Message contains a virus")
    );
    assert_eq!(rejected.message, Some(0));
    assert_eq!(list[0].last_reply.as_ref().map(|r| r.code), Some(550));
    assert_eq!(list[2].last_reply.as_ref().map(|r| r.code), Some(554));
    assert_eq!(list[4].last_reply.as_ref().map(|r| r.code), Some(451));
    assert_eq!(list[5].mail_from.as_deref(), Some(""));
    assert_eq!(list[5].message, Some(1));
    // The refused message is recorded as refused, never as delivered.
    assert_eq!(rec.messages[0].reply.as_ref().map(|r| r.code), Some(554));
    assert!(rec.has_anomaly("data_without_transaction"));
    assert!(!rec.has_anomaly("data_without_recipients"));
    assert_order_independent(&segs, true, 20);
}

#[test]
fn transactions_left_open_or_unanswered_at_the_end() {
    use super::TransactionOutcome as O;
    let rec = run(&[
        s("220 mx ESMTP\r\n"),
        c("HELO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        s("250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        c("Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@x.org>\r\n"),
    ]);
    let list = &rec.smtp.as_ref().unwrap().mail_transactions;
    let outcomes: Vec<O> = list.iter().map(|t| t.outcome).collect();
    assert_eq!(outcomes, [O::Unanswered, O::Abandoned]);
    assert_eq!(list[1].mail_reply, None);
}
