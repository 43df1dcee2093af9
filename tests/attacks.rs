//! Attacks on other sessions, each with a control session inside: a normal login and message
//! that must come out whole whatever the attacker sent on the same wire.

mod common;

use common::run_packets;
use mailsift::capture::synth::{Conversation, SynthPacket};
use mailsift::session::SessionRecord;
use mailsift::time::Timestamp;

const CONTROL_CLIENT: &str = "192.0.2.10:40001";
const SERVER: &str = "192.0.2.25:25";

/// The control: a login and one message, from `CONTROL_CLIENT`, starting at `start` seconds.
fn control(start: i64, isn: u32) -> Conversation {
    Conversation::new(CONTROL_CLIENT.parse().unwrap(), SERVER.parse().unwrap())
        .start(Timestamp::from_parts(1_700_000_000 + start, 0))
        .isn(isn, 2_000_000_000)
        .server("220 mx.example.test ESMTP\r\n")
        .client("EHLO control.example.test\r\n")
        .server("250-mx.example.test\r\n250 AUTH PLAIN\r\n")
        .client("AUTH PLAIN AGNvbnRyb2wAQ29udHJvbC0x\r\n")
        .server("235 2.7.0 Authentication successful\r\n")
        .client("MAIL FROM:<control@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        .server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
        .client("Subject: control\r\n\r\nThe control message.\r\n.\r\n")
        .server("250 2.0.0 Ok: queued\r\n")
        .client("QUIT\r\n")
        .server("221 2.0.0 Bye\r\n")
}

/// The control's session in `sessions`: the one whose login is the control's.
fn the_control(sessions: &[SessionRecord]) -> &SessionRecord {
    let found: Vec<&SessionRecord> = sessions
        .iter()
        .filter(|s| {
            s.credentials
                .iter()
                .any(|c| c.username.as_deref() == Some("control"))
        })
        .collect();
    assert_eq!(found.len(), 1, "one control session: {sessions:#?}");
    found[0]
}

/// Asserts the control came out whole: its login, its message, its QUIT, nothing missing.
fn assert_control_intact(rec: &SessionRecord) {
    let users: Vec<&str> = rec
        .credentials
        .iter()
        .filter_map(|c| c.username.as_deref())
        .collect();
    assert_eq!(users, ["control"], "{:?}", rec.credentials);
    assert_eq!(rec.credentials[0].success, Some(true));
    assert_eq!(rec.messages.len(), 1);
    assert!(rec.messages[0].complete);
    assert_eq!(rec.messages[0].reply.as_ref().map(|r| r.code), Some(250));
    assert_eq!(rec.missing_bytes.client + rec.missing_bytes.server, 0);
    assert!(rec.smtp.as_ref().unwrap().quit);
}

fn packets(parts: Vec<Vec<SynthPacket>>) -> Vec<SynthPacket> {
    let mut all: Vec<SynthPacket> = parts.into_iter().flatten().collect();
    all.sort_by_key(|p| p.ts);
    all
}

#[test]
fn a_connection_squatting_on_the_control_address_pair_does_not_take_its_place() {
    // The attacker opens the control's exact address pair, logs in as someone else and
    // leaves the connection open; the control then connects with a new SYN.
    let squatter = Conversation::new(CONTROL_CLIENT.parse().unwrap(), SERVER.parse().unwrap())
        .start(Timestamp::from_parts(1_700_000_000, 0))
        .isn(123_456, 3_000_000_000)
        .without_close()
        .server("220 mx.example.test ESMTP\r\n")
        .client("EHLO squatter.example.test\r\n")
        .server("250 mx.example.test\r\n")
        .client("AUTH PLAIN AG1hbGxvcnkAc3F1YXQ=\r\n")
        .server("235 2.7.0 Authentication successful\r\n")
        .packets();
    let pkts = packets(vec![squatter, control(10, 2_900_000_000).packets()]);
    let sessions = run_packets("squat.pcap", &pkts);
    assert_eq!(sessions.len(), 2);
    assert_control_intact(the_control(&sessions));
    let squat = sessions
        .iter()
        .find(|s| {
            s.credentials
                .iter()
                .any(|c| c.username.as_deref() == Some("mallory"))
        })
        .expect("the squatter's own session");
    assert!(squat.has_anomaly("flow_replaced"));
}

/// A forged segment between the control's endpoints: from the client (or the server), with
/// sequence number `seq`, acknowledgement `ack`, FIN if asked, no payload, at `ts`.
fn forged(from_client: bool, seq: u32, ack: u32, fin: bool, ts: Timestamp) -> SynthPacket {
    let (c, s): (std::net::SocketAddrV4, std::net::SocketAddrV4) =
        (CONTROL_CLIENT.parse().unwrap(), SERVER.parse().unwrap());
    let (src, dst) = if from_client { (c, s) } else { (s, c) };
    let mut tcp = etherparse::TcpHeader::new(src.port(), dst.port(), seq, 65_535);
    tcp.ack = true;
    tcp.acknowledgment_number = ack;
    tcp.fin = fin;
    let mut data = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 8])
        .ipv4(src.ip().octets(), dst.ip().octets(), 64)
        .tcp_header(tcp)
        .write(&mut data, &[])
        .unwrap();
    let orig_len = data.len() as u32;
    SynthPacket {
        ts,
        data,
        orig_len,
        from: if from_client {
            mailsift::session::Direction::Client
        } else {
            mailsift::session::Direction::Server
        },
        has_payload: false,
    }
}

const CONTROL_ISN: u32 = 1_000_000;

/// The control's packets with `copies` forged packets made by `extra` inserted right after
/// its packet number `after`.
fn control_with(
    after: usize,
    copies: usize,
    extra: impl Fn(Timestamp) -> SynthPacket,
) -> Vec<SynthPacket> {
    let mut pkts = control(0, CONTROL_ISN).packets();
    let ts = pkts[after].ts.0;
    for i in 0..copies {
        pkts.insert(after + 1 + i, extra(Timestamp(ts + 1 + i as i64)));
    }
    pkts
}

#[test]
fn a_forged_ack_far_ahead_does_not_turn_the_control_into_a_gap() {
    // Packet 3 is the server's greeting: forged server ACKs 10 MB beyond anything the client
    // sent follow it, more of them than the grace the capture's reordering is given.
    let pkts = control_with(3, 40, |ts| {
        forged(
            false,
            2_000_000_001,
            CONTROL_ISN + 1 + 10_000_000,
            false,
            ts,
        )
    });
    let sessions = run_packets("forged-ack.pcap", &pkts);
    assert_eq!(sessions.len(), 1);
    assert_control_intact(&sessions[0]);
}

#[test]
fn a_forged_fin_ahead_does_not_end_the_control() {
    // After EHLO (packet 5, the client's first 27 bytes), a forged client FIN 100 bytes on.
    let pkts = control_with(5, 1, |ts| {
        forged(true, CONTROL_ISN + 1 + 27 + 100, 2_000_000_001, true, ts)
    });
    let sessions = run_packets("forged-fin.pcap", &pkts);
    assert_eq!(sessions.len(), 1);
    let rec = &sessions[0];
    assert_control_intact(rec);
    assert!(rec.has_anomaly("fin_contradicted"), "{:?}", rec.anomalies);
}
