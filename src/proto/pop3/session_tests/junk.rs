//! Junk and control bytes before real commands: anomalies, never a hidden login; a stream that
//! is not POP3 at all still stops within the bound.

use super::*;
use crate::proto::pop3::dissector::{NOT_POP3_BYTES, NOT_POP3_SCORE};

const MESSAGE: &str = "From: alice@example.com\r\nSubject: hi\r\n\r\nHello.\r\n";

/// A normal session after `opening` (client junk and the server's answers to it).
fn session_after(opening: &[(Direction, &str)]) -> Vec<Chunk> {
    let retr = format!("+OK 48 octets\r\n{MESSAGE}.\r\n");
    let mut packets = vec![(S, GREETING)];
    packets.extend_from_slice(opening);
    packets.extend([
        (C, "USER alice\r\n"),
        (S, "+OK\r\n"),
        (C, "PASS secret\r\n"),
        (S, "+OK 1 message\r\n"),
        (C, "RETR 1\r\n"),
        (S, retr.as_str()),
        (C, "QUIT\r\n"),
        (S, "+OK bye\r\n"),
    ]);
    transcript(&packets)
}

fn assert_login_and_message(rec: &SessionRecord) {
    assert!(!rec.has_anomaly("not_pop3"), "{:?}", rec.anomalies);
    assert_eq!(rec.credentials.len(), 1);
    let cred = &rec.credentials[0];
    assert_eq!(cred.username.as_deref(), Some("alice"));
    assert_eq!(cred.password.as_deref(), Some("secret"));
    assert_eq!(cred.success, Some(true));
    assert_eq!(rec.messages.len(), 1);
    assert!(rec.messages[0].complete);
    assert_eq!(rec.messages[0].size, MESSAGE.len() as u64);
    assert_eq!(
        rec.messages[0].sha256,
        hex::encode(sha2::Sha256::digest(MESSAGE))
    );
    assert_eq!(pop3(rec).state, Pop3State::Update);
}

#[test]
fn a_control_byte_first_hides_nothing() {
    let rec = check(&session_after(&[
        (C, "\x16\x03\x01 hello\r\n"),
        (S, "-ERR unknown command\r\n"),
        (C, "NOOP \x01\r\n"),
        (S, "+OK\r\n"),
    ]));
    assert_login_and_message(&rec);
    for kind in ["control_bytes", "unexpected_client_line"] {
        assert!(rec.has_anomaly(kind), "{kind}: {:?}", anomaly_kinds(&rec));
    }
}

#[test]
fn a_dozen_junk_lines_before_the_session_hide_nothing() {
    let lines: Vec<String> = (0..12)
        .map(|i| match i % 3 {
            0 => "\x01\x02\x7f binary\r\n".to_string(),
            1 => format!("X-Header-{i}: value\r\n"),
            _ => format!("FOO{i} bar\r\n"),
        })
        .collect();
    let mut opening = Vec::new();
    for l in &lines {
        opening.push((C, l.as_str()));
        opening.push((S, "-ERR what\r\n"));
    }
    let rec = check(&session_after(&opening));
    assert_login_and_message(&rec);
    assert!(rec.has_anomaly("control_bytes"));
    assert!(rec.has_anomaly("unexpected_client_line"));
}

#[test]
fn junk_server_lines_before_the_greeting_hide_nothing() {
    let mut packets = vec![(S, "* banner line\r\n"); 12];
    packets.push((S, "\x01\x02 more\r\n"));
    let mut chunks = transcript(&packets);
    let rest = session_after(&[]);
    let shift = chunks.len() as u64;
    chunks.extend(rest.into_iter().map(|c| match c {
        Chunk::Data(d, ts, b) => Chunk::Data(d, ts.plus_secs(shift), b),
        other => other,
    }));
    let rec = check(&chunks);
    assert!(!rec.has_anomaly("not_pop3"), "{:?}", rec.anomalies);
    assert_eq!(rec.credentials.len(), 1);
    assert_eq!(rec.credentials[0].username.as_deref(), Some("alice"));
    assert!(rec.has_anomaly("bad_greeting"));
}

/// Bytes from a fixed xorshift stream: random-looking, with the odd LF.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift(seed | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

#[test]
fn tls_or_random_bytes_on_port_110_stop_within_the_bound() {
    let mut client = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    client.extend(random_bytes(2 << 20, 5));
    let server = random_bytes(2 << 20, 9);
    let mut chunks = Vec::new();
    for (i, (cc, sc)) in client.chunks(1460).zip(server.chunks(1460)).enumerate() {
        let ts = Timestamp::from_parts(i as i64 + 1, 0);
        chunks.push(Chunk::Data(C, ts, cc.to_vec()));
        chunks.push(Chunk::Data(S, ts, sc.to_vec()));
    }
    let rec = feed(&chunks, true, &Limits::default());
    for dir in [C, S] {
        assert!(
            rec.anomalies
                .iter()
                .any(|a| a.kind == "not_pop3" && a.from == Some(dir)),
            "{dir:?}: {:?}",
            rec.anomalies
        );
        // Dissected only up to the bound: a few hundred lines, not 2 MiB of them.
        let n = rec.events.iter().filter(|e| e.from == dir).count();
        assert!(n <= NOT_POP3_SCORE as usize, "{dir:?}: {n} events");
    }
}

#[test]
fn long_text_junk_stops_at_the_byte_bound() {
    let line = format!("{}\r\n", "<html>".repeat(150));
    let junk = line.repeat(NOT_POP3_BYTES as usize / line.len() + 50);
    let rec = check(&transcript(&[(S, GREETING), (C, &junk), (C, "QUIT\r\n")]));
    assert!(
        rec.anomalies
            .iter()
            .any(|a| a.kind == "not_pop3" && a.from == Some(C))
    );
    let lines = rec.events.iter().filter(|e| e.from == C).count() as u64;
    assert!(lines <= NOT_POP3_BYTES / line.len() as u64 + 1, "{lines}");
    assert!(!commands(&rec).iter().any(|(v, _)| v == "QUIT"));
}
