//! Junk and control bytes before real commands: anomalies, never a hidden login; a stream that
//! is not SMTP at all still stops within the bound.

use super::*;
use crate::proto::smtp::session::{NOT_SMTP_BYTES, NOT_SMTP_SCORE};

/// Every data segment cut into one-byte pieces, each keeping its segment's time.
fn one_byte_pieces(items: &[(Timestamp, Seg)]) -> Vec<(Timestamp, Seg)> {
    let mut out = Vec::new();
    for (ts, seg) in items {
        match seg {
            Seg::Data(dir, bytes) => {
                out.extend(bytes.iter().map(|b| (*ts, Seg::Data(*dir, vec![*b]))));
            }
            Seg::Gap(..) => out.push((*ts, seg.clone())),
        }
    }
    out
}

/// The record whole, fed byte by byte (as captured and client first) and in random
/// interleavings with random splits must be the same; returns it.
fn checked(segs: &[Seg]) -> SessionRecord {
    let limits = Limits::default();
    let natural = timed(segs);
    let reference = normalized(run_timed(&natural, &limits, true));
    let mut client_first = side(&natural, C);
    client_first.extend(side(&natural, S));
    for (name, order) in [
        ("byte by byte", one_byte_pieces(&natural)),
        ("client first, byte by byte", one_byte_pieces(&client_first)),
    ] {
        let got = normalized(run_timed(&order, &limits, true));
        assert_same(&got, &reference, name);
    }
    assert_order_independent(segs, true, 40);
    run(segs)
}

/// A normal session after `opening` (client junk and the server's answers to it).
fn session_after(opening: &[Seg]) -> Vec<Seg> {
    let mut segs = vec![s("220 mx.example.org ESMTP\r\n")];
    segs.extend_from_slice(opening);
    segs.extend([
        c("EHLO client.example.com\r\n"),
        s("250-mx.example.org\r\n250 AUTH PLAIN LOGIN\r\n"),
        c("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        s("235 2.7.0 ok\r\n"),
        c("MAIL FROM:<alice@example.com>\r\n"),
        s("250 ok\r\n"),
        c("RCPT TO:<bob@example.org>\r\n"),
        s("250 ok\r\n"),
        c("DATA\r\n"),
        s("354 go\r\n"),
        c(BODY_WIRE),
        s("250 queued\r\n"),
        c("QUIT\r\n"),
        s("221 bye\r\n"),
    ]);
    segs
}

fn assert_login_and_message(rec: &SessionRecord) {
    let smtp = rec.smtp.as_ref().unwrap();
    assert!(!smtp.not_smtp, "{:?}", rec.anomalies);
    assert!(!rec.has_anomaly("not_smtp"));
    assert_eq!(rec.credentials.len(), 1);
    assert_eq!(rec.credentials[0].username.as_deref(), Some("alice"));
    assert_eq!(rec.credentials[0].password.as_deref(), Some("secret"));
    assert_eq!(rec.credentials[0].success, Some(true));
    assert_eq!(rec.messages.len(), 1);
    assert_eq!(rec.messages[0].sha256, sha256_hex(BODY_CONTENT.as_bytes()));
    assert_eq!(
        rec.messages[0].mail_from.as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        rec.messages[0].rcpt_to,
        Some(vec!["bob@example.org".to_string()])
    );
    assert!(smtp.quit);
}

#[test]
fn a_control_byte_in_the_first_command_hides_nothing() {
    let rec = checked(&session_after(&[cb(b"NOOP \x01\r\n"), s("250 ok\r\n")]));
    assert_login_and_message(&rec);
    assert!(
        rec.has_anomaly("control_bytes"),
        "{:?}",
        anomaly_kinds(&rec)
    );
    assert_eq!(commands(&rec)[0], "NOOP \u{1}");
}

#[test]
fn a_dozen_junk_lines_before_the_session_hide_nothing() {
    let mut opening = Vec::new();
    for i in 0..12 {
        opening.push(if i % 3 == 0 {
            cb(b"\x16\x03\x01\x00\x05junk\x00\r\n")
        } else {
            c(&format!("Header-{i}: value\r\n"))
        });
        opening.push(s("500 5.5.2 syntax error\r\n"));
    }
    let rec = checked(&session_after(&opening));
    assert_login_and_message(&rec);
    for kind in ["control_bytes", "malformed_command", "nul_byte"] {
        assert!(rec.has_anomaly(kind), "{kind}: {:?}", anomaly_kinds(&rec));
    }
}

#[test]
fn junk_the_server_never_answers_hides_nothing_either() {
    // A one-sided view of the junk: the client's lines only, then the normal dialogue.
    let mut opening = Vec::new();
    for _ in 0..40 {
        opening.push(cb(b"\x01\x02\x03 garbage\r\n"));
    }
    let rec = checked(&session_after(&opening));
    assert!(!rec.smtp.as_ref().unwrap().not_smtp, "{:?}", rec.anomalies);
    assert_eq!(rec.credentials.len(), 1);
    assert_eq!(rec.credentials[0].username.as_deref(), Some("alice"));
    assert_eq!(rec.credentials[0].password.as_deref(), Some("secret"));
    assert_eq!(rec.messages.len(), 1);
    assert!(rec.has_anomaly("control_bytes"));
}

/// Bytes from a fixed xorshift stream: random-looking, with the odd LF.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

#[test]
fn tls_or_random_bytes_on_port_25_stop_within_the_bound() {
    let mut client = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    client.extend(random_bytes(2 << 20, 7));
    let server = random_bytes(2 << 20, 11);
    let limits = Limits::default();
    let mut rec = new_rec(true, &limits);
    let mut d = SmtpDissector::new(&limits);
    for (i, (cc, sc)) in client.chunks(1460).zip(server.chunks(1460)).enumerate() {
        d.on_data(C, cc, ts_of(i), &mut rec);
        d.on_data(S, sc, ts_of(i), &mut rec);
    }
    let (pending, replies, held) = d.queue_sizes();
    assert!(pending <= limits.max_pending_commands && replies == 0 && held == 0);
    d.on_end(END_TS, &mut rec);
    assert!(rec.smtp.as_ref().unwrap().not_smtp);
    for dir in [C, S] {
        assert!(
            rec.anomalies
                .iter()
                .any(|a| a.kind == "not_smtp" && a.from == Some(dir)),
            "{dir:?}: {:?}",
            rec.anomalies
        );
    }
    // Each side was dissected only up to the bound: a few hundred lines, not 2 MiB of them.
    let bound = NOT_SMTP_SCORE as usize;
    for dir in [C, S] {
        let n = rec.events.iter().filter(|e| e.from == dir).count();
        assert!(n > 0 && n <= bound, "{dir:?}: {n} events");
    }
    let lines: u64 = rec
        .anomalies
        .iter()
        .filter(|a| a.kind == "control_bytes")
        .map(|a| a.count)
        .sum();
    assert!(lines <= 2 * bound as u64, "{lines}");
}

#[test]
fn long_text_junk_is_skipped_past_the_byte_bound_until_a_command() {
    // Long printable lines that are not commands, and a server that says nothing.
    let line = format!("{}\r\n", "<html>".repeat(150));
    let client: String = line.repeat(NOT_SMTP_BYTES as usize / line.len() + 50);
    let rec = run(&[s("220 mx\r\n"), c(&client), c("QUIT\r\n")]);
    let smtp = rec.smtp.as_ref().unwrap();
    assert!(
        rec.anomalies
            .iter()
            .any(|a| a.kind == "not_smtp" && a.from == Some(C))
    );
    // Past the bound the junk costs no event; the command after it is dissected again.
    let lines = rec.events.iter().filter(|e| e.from == C).count() as u64;
    assert!(lines <= NOT_SMTP_BYTES / line.len() as u64 + 2, "{lines}");
    assert!(commands(&rec).iter().any(|c| c == "QUIT"));
    assert!(
        rec.anomalies
            .iter()
            .any(|a| a.kind == "smtp_after_junk" && a.from == Some(C))
    );
    assert!(!smtp.not_smtp, "the client spoke SMTP in the end");
}

#[test]
fn no_number_of_junk_lines_hides_the_login_after_them() {
    // Twice the bound of junk lines, each answered by the server, then a login and QUIT.
    let junk = "GARBAGE \x01\r\n".repeat(2 * NOT_SMTP_SCORE as usize);
    let errors = "500 5.5.2 Error: bad syntax\r\n".repeat(2 * NOT_SMTP_SCORE as usize);
    let rec = run(&[
        s("220 mx ESMTP\r\n"),
        c("EHLO x\r\n"),
        s("250-mx\r\n250 AUTH PLAIN\r\n"),
        c(&junk),
        s(&errors),
        c("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        s("235 2.7.0 ok\r\n"),
        c("QUIT\r\n"),
        s("221 bye\r\n"),
    ]);
    assert!(
        rec.anomalies
            .iter()
            .any(|a| a.kind == "not_smtp" && a.from == Some(C)),
        "the junk reached the bound"
    );
    let cred = rec.credentials.first().expect("the login after the junk");
    assert_eq!(cred.username.as_deref(), Some("alice"));
    assert_eq!(cred.password.as_deref(), Some("secret"));
    assert_eq!(cred.success, Some(true));
    assert!(commands(&rec).iter().any(|c| c == "QUIT"));
}

#[test]
fn a_side_with_junk_and_no_smtp_line_is_not_smtp_at_the_end() {
    let rec = checked(&[
        s("220 mx\r\n"),
        cb(b"\x16\x03\x01\x00\x30hello\r\n"),
        s("500 what\r\n"),
    ]);
    assert!(rec.smtp.as_ref().unwrap().not_smtp);
    let from: Vec<_> = rec
        .anomalies
        .iter()
        .filter(|a| a.kind == "not_smtp")
        .map(|a| a.from)
        .collect();
    assert_eq!(from, vec![Some(C)]);
}
