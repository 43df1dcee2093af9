//! Random POP3 dialogues built from fragments (logins, STLS, SASL, TLS records, bodies), with
//! gaps and FINs (also misplaced ones, with bytes after them), fed whole and byte by byte: the
//! record the engine would print must be the same.

use super::*;

const CLIENT: [&str; 14] = [
    "USER alice\r\n",
    "PASS secret\r\n",
    "STLS\r\n",
    "CAPA\r\n",
    "AUTH PLAIN\r\n",
    "AGFsaWNlAHNlY3JldA==\r\n",
    "AUTH LOGIN\r\n",
    "YWxpY2U=\r\n",
    "QUIT\r\n",
    "RETR 1\r\n",
    "\x16\x03\x01\x00\x05hello",
    "*\r\n",
    "NOOP\r\n",
    "APOP a 0123456789abcdef0123456789abcdef\r\n",
];

const SERVER: [&str; 12] = [
    "+OK\r\n",
    "-ERR no\r\n",
    "+OK begin TLS\r\n",
    "+ \r\n",
    "+OK 1 octets\r\nx\r\n.\r\n",
    "\x16\x03\x03\x00\x05hello",
    "+OK caps\r\nSTLS\r\nUSER\r\n.\r\n",
    "+ VXNlcm5hbWU6\r\n",
    "+OK ready <1.2@x>\r\n",
    "\x15\x03\x03\x00\x02\x02\x28",
    "x\r\n",
    ".\r\n",
];

/// A FIN, in these transcripts: a gap of length 0 (no real gap has one).
fn fin(dir: Direction, at: i64) -> Chunk {
    gap(dir, at, 0)
}

/// One random dialogue and the limits and handshake flag to run it with.
fn dialogue(rng: &mut XorShift) -> (Vec<Chunk>, Limits, bool) {
    let mut packets: Vec<(Direction, String)> = vec![(S, "+OK ready\r\n".into())];
    for _ in 0..2 + rng.below(10) {
        match rng.below(9) {
            0..=3 => packets.push((C, CLIENT[rng.below(CLIENT.len())].into())),
            4..=7 => packets.push((S, SERVER[rng.below(SERVER.len())].into())),
            _ => {
                let (a, b) = (rng.below(CLIENT.len()), rng.below(CLIENT.len()));
                packets.push((C, format!("{}{}", CLIENT[a], CLIENT[b])));
            }
        }
    }
    let refs: Vec<(Direction, &str)> = packets.iter().map(|(d, s)| (*d, s.as_str())).collect();
    let mut chunks = transcript(&refs);
    let side = |rng: &mut XorShift| if rng.below(2) == 0 { C } else { S };
    for _ in 0..rng.below(3) {
        let at = rng.below(chunks.len());
        chunks.insert(at, gap(side(rng), at as i64, 1 + rng.below(20) as u64));
    }
    if rng.below(3) == 0 {
        let at = rng.below(chunks.len() + 1);
        chunks.insert(at, fin(side(rng), at as i64));
    }
    let mut limits = Limits::default();
    if rng.below(3) == 0 {
        limits.max_pending_commands = 3;
    }
    if rng.below(3) == 0 {
        limits.max_line_len = 40;
    }
    (chunks, limits, rng.below(4) != 0)
}

/// Feeds pieces in order (a zero-length gap is a FIN) and ends the session.
fn feed_with_fins(pieces: &[Chunk], handshake_seen: bool, limits: &Limits) -> SessionRecord {
    let mut rec = new_record(handshake_seen);
    let mut d = Pop3Dissector::new(limits);
    let mut last = Timestamp::default();
    for p in pieces {
        match p {
            Chunk::Data(dir, ts, bytes) => d.on_data(*dir, bytes, *ts, &mut rec),
            Chunk::Gap(dir, ts, 0) => d.on_fin(*dir, *ts, &mut rec),
            Chunk::Gap(dir, ts, len) => d.on_gap(*dir, *len, *ts, &mut rec),
        }
        let (Chunk::Data(_, ts, _) | Chunk::Gap(_, ts, _)) = p;
        last = last.max(*ts);
    }
    d.on_end(last.plus_secs(1), &mut rec);
    rec
}

/// The record as the engine prints it: events in presentation order, anomalies sorted.
fn as_printed(mut rec: SessionRecord) -> serde_json::Value {
    let order = crate::session::presentation_order(&rec.events);
    let mut slots: Vec<Option<Event>> = std::mem::take(&mut rec.events)
        .into_iter()
        .map(Some)
        .collect();
    rec.events = order.into_iter().filter_map(|i| slots[i].take()).collect();
    rec.anomalies
        .sort_by(|a, b| (a.ts, a.from, &a.kind).cmp(&(b.ts, b.from, &b.kind)));
    json(&rec)
}

#[test]
fn random_dialogues_do_not_depend_on_segment_boundaries() {
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    for round in 0..4000 {
        let (chunks, limits, handshake_seen) = dialogue(&mut rng);
        let whole = as_printed(feed_with_fins(&chunks, handshake_seen, &limits));
        let pieces = as_printed(feed_with_fins(&bytewise(&chunks), handshake_seen, &limits));
        assert_eq!(whole, pieces, "round {round}: {chunks:?}");
    }
}

#[test]
fn bytes_after_a_fin_are_ignored_however_they_are_cut() {
    // A client FIN, then STLS and an AUTH on that side: found by the dialogue generator, where
    // the SASL credential and the STLS outcome depended on segment boundaries.
    let mut chunks = transcript(&[
        (S, "+OK ready\r\n"),
        (C, "AGFsaWNlAHNlY3JldA==\r\n"),
        (S, "+OK caps\r\nSTLS\r\nUSER\r\n.\r\n"),
        (C, "STLS\r\n"),
        (C, "AUTH PLAIN\r\nSTLS\r\n"),
        (S, "+OK\r\n"),
    ]);
    chunks.insert(3, gap(S, 3, 10));
    chunks.insert(4, fin(C, 3));
    chunks.insert(7, gap(S, 6, 8));
    let limits = Limits::default();
    let rec = feed_with_fins(&chunks, true, &limits);
    let whole = as_printed(feed_with_fins(&chunks, true, &limits));
    assert_eq!(
        whole,
        as_printed(feed_with_fins(&bytewise(&chunks), true, &limits))
    );
    assert!(rec.has_anomaly("data_after_fin"));
    assert!(
        !commands(&rec)
            .iter()
            .any(|(v, _)| v == "STLS" || v == "AUTH")
    );
    assert!(rec.tls.is_none());
}
