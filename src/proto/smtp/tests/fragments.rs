//! Random SMTP dialogues built from fragments (EHLO, AUTH, STARTTLS, DATA, BDAT, TLS records,
//! junk), with gaps, fed whole and byte by byte: the record the engine would print must be the
//! same.

use super::*;

const CLIENT: [&str; 16] = [
    "EHLO c\r\n",
    "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
    "AUTH LOGIN\r\n",
    "YWxpY2U=\r\n",
    "STARTTLS\r\n",
    "MAIL FROM:<a@b>\r\n",
    "RCPT TO:<c@d>\r\n",
    "DATA\r\n",
    "Subject: x\r\n\r\nbody\r\n.\r\n",
    "BDAT 5 LAST\r\nhello",
    "QUIT\r\n",
    "RSET\r\n",
    "\x16\x03\x01\x00\x05hello",
    "NOOP \x01\r\n",
    "*\r\n",
    ".\r\n",
];

const SERVER: [&str; 12] = [
    "250 ok\r\n",
    "250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n",
    "220 go ahead\r\n",
    "334 VXNlcm5hbWU6\r\n",
    "235 ok\r\n",
    "354 go\r\n",
    "500 what\r\n",
    "221 bye\r\n",
    "\x16\x03\x03\x00\x05hello",
    "535 no\r\n",
    "x\r\n",
    "220 mx ESMTP\r\n",
];

fn dialogue(rng: &mut Rng) -> (Vec<(Timestamp, Seg)>, bool) {
    let mut segs = vec![s("220 mx ESMTP\r\n")];
    for _ in 0..2 + rng.below(12) {
        segs.push(match rng.below(10) {
            0..=3 => c(CLIENT[rng.below(CLIENT.len())]),
            4..=7 => s(SERVER[rng.below(SERVER.len())]),
            8 => c(&format!(
                "{}{}",
                CLIENT[rng.below(CLIENT.len())],
                CLIENT[rng.below(CLIENT.len())]
            )),
            _ => Seg::Gap(
                if rng.below(2) == 0 { C } else { S },
                1 + rng.below(20) as u64,
            ),
        });
    }
    (timed(&segs), rng.below(4) != 0)
}

/// The record as the engine prints it: events in presentation order, anomalies sorted.
fn as_printed(mut rec: SessionRecord) -> serde_json::Value {
    let order = crate::session::presentation_order(&rec.events);
    let mut slots: Vec<_> = std::mem::take(&mut rec.events)
        .into_iter()
        .map(Some)
        .collect();
    rec.events = order.into_iter().filter_map(|i| slots[i].take()).collect();
    rec.anomalies
        .sort_by(|a, b| (a.ts, a.from, &a.kind).cmp(&(b.ts, b.from, &b.kind)));
    serde_json::to_value(&rec).unwrap()
}

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

#[test]
fn random_dialogues_do_not_depend_on_segment_boundaries() {
    let mut rng = Rng(0x0bad_cafe_1234_5677);
    for round in 0..3000 {
        let (items, handshake_seen) = dialogue(&mut rng);
        let mut limits = Limits::default();
        if rng.below(3) == 0 {
            limits.max_line_len = 40;
        }
        let whole = as_printed(run_timed(&items, &limits, handshake_seen));
        let pieces = as_printed(run_timed(&one_byte_pieces(&items), &limits, handshake_seen));
        if let Some(d) = first_difference(&whole, &pieces, "") {
            panic!("round {round}: {d}\n{items:?}");
        }
    }
}
