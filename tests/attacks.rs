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
    mailsift::capture::synth::control_session(Timestamp::from_parts(1_700_000_000 + start, 0))
        .isn(isn, 2_000_000_000)
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

/// A segment from `src` to `dst` with sequence `seq`, acknowledgement `ack` (if any), FIN if
/// asked, and `payload`, at `ts`.
#[allow(clippy::too_many_arguments)]
fn segment(
    src: std::net::SocketAddrV4,
    dst: std::net::SocketAddrV4,
    from: mailsift::session::Direction,
    seq: u32,
    ack: Option<u32>,
    flags: (bool, bool),
    payload: &[u8],
    ts: Timestamp,
) -> SynthPacket {
    let (syn, fin) = flags;
    let mut tcp = etherparse::TcpHeader::new(src.port(), dst.port(), seq, 65_535);
    if let Some(a) = ack {
        tcp.ack = true;
        tcp.acknowledgment_number = a;
    }
    tcp.syn = syn;
    tcp.fin = fin;
    let mut data = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 8])
        .ipv4(src.ip().octets(), dst.ip().octets(), 64)
        .tcp_header(tcp)
        .write(&mut data, payload)
        .unwrap();
    let orig_len = data.len() as u32;
    SynthPacket {
        ts,
        data,
        orig_len,
        from,
        has_payload: !payload.is_empty(),
    }
}

/// A forged segment between the control's endpoints: from the client (or the server), with
/// sequence number `seq`, acknowledgement `ack`, FIN if asked, no payload, at `ts`.
fn forged(from_client: bool, seq: u32, ack: u32, fin: bool, ts: Timestamp) -> SynthPacket {
    let (c, s): (std::net::SocketAddrV4, std::net::SocketAddrV4) =
        (CONTROL_CLIENT.parse().unwrap(), SERVER.parse().unwrap());
    let (src, dst, from) = if from_client {
        (c, s, mailsift::session::Direction::Client)
    } else {
        (s, c, mailsift::session::Direction::Server)
    };
    segment(src, dst, from, seq, Some(ack), (false, fin), &[], ts)
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
    // The client's FIN shows the ACKs were for bytes never sent.
    assert!(
        sessions[0].has_anomaly("ack_past_end"),
        "{:?}",
        sessions[0].anomalies
    );
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

fn run_with_limits(
    name: &str,
    pkts: &[SynthPacket],
    limits: mailsift::limits::Limits,
) -> Vec<SessionRecord> {
    let path = common::write_pcap(name, pkts);
    let config = mailsift::engine::EngineConfig {
        limits,
        ..mailsift::engine::EngineConfig::default()
    };
    let (sessions, _) = common::run_with(std::slice::from_ref(&path), config);
    let _ = std::fs::remove_file(path);
    sessions
}

#[test]
fn flows_that_fill_the_shared_reorder_buffer_pay_for_it_not_the_control() {
    use mailsift::session::Direction::Client;
    let server: std::net::SocketAddrV4 = SERVER.parse().unwrap();
    // Ten other flows each hold 100 kB behind a hole nobody fills, just under the run's
    // 1 MiB limit; then the control sends a 150 KB message one of whose first segments is
    // captured 50 segments late, so the control's own held bytes cross the limit.
    let body = "A".repeat(76) + "\r\n";
    let message = format!("Subject: control\r\n\r\n{}.\r\n", body.repeat(2_000));
    let mut pkts = Conversation::new(CONTROL_CLIENT.parse().unwrap(), SERVER.parse().unwrap())
        .start(Timestamp::from_parts(1_700_000_000, 0))
        .isn(CONTROL_ISN, 2_000_000_000)
        .server("220 mx.example.test ESMTP\r\n")
        .client("EHLO control.example.test\r\n")
        .server("250-mx.example.test\r\n250 AUTH PLAIN\r\n")
        .client("AUTH PLAIN AGNvbnRyb2wAQ29udHJvbC0x\r\n")
        .server("235 2.7.0 Authentication successful\r\n")
        .client("MAIL FROM:<control@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        .server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
        .client(message)
        .server("250 2.0.0 Ok: queued\r\n")
        .client("QUIT\r\n")
        .server("221 2.0.0 Bye\r\n")
        .packets();
    let first_body = pkts
        .iter()
        .position(|p| p.from == Client && p.data.len() > 1_000)
        .unwrap();
    let late = pkts.remove(first_body + 1);
    pkts.insert(first_body + 51, late);
    let base = pkts[first_body].ts.0 - 1_000;
    let mut flood = Vec::new();
    for i in 0..10u32 {
        let client: std::net::SocketAddrV4 =
            format!("198.51.100.{}:5{i:04}", 1 + i).parse().unwrap();
        let ts = Timestamp(base + i64::from(i));
        flood.push(segment(
            client,
            server,
            Client,
            7_000,
            None,
            (true, false),
            &[],
            ts,
        ));
        for k in 0..4u32 {
            let seq = 7_000 + 1 + 1_000 + k * 25_000;
            flood.push(segment(
                client,
                server,
                Client,
                seq,
                None,
                (false, false),
                &[b'x'; 25_000],
                ts,
            ));
        }
    }
    pkts.splice(first_body..first_body, flood);
    let limits = mailsift::limits::Limits {
        max_ooo_bytes_total: 1 << 20,
        ..mailsift::limits::Limits::default()
    };
    let sessions = run_with_limits("ooo-flood.pcap", &pkts, limits);
    let control = the_control(&sessions);
    assert_control_intact(control);
    assert!(!control.has_anomaly("reassembly_memory_limit"));
    let paid = sessions
        .iter()
        .filter(|s| s.has_anomaly("reassembly_memory_limit"))
        .count();
    assert!(paid > 0, "the flood's flows gave way");
}

#[test]
fn a_syn_flood_while_the_control_pauses_does_not_evict_it() {
    use mailsift::session::Direction::Client;
    let server: std::net::SocketAddrV4 = SERVER.parse().unwrap();
    let mut pkts = control(0, CONTROL_ISN).packets();
    // After the control's AUTH is answered (packet 11), it pauses while 2,000 SYNs arrive,
    // eight times what the flow table holds.
    let base = pkts[11].ts.0;
    let syns: Vec<SynthPacket> = (0..2_000u32)
        .map(|i| {
            let client: std::net::SocketAddrV4 =
                format!("203.0.113.{}:{}", i % 250 + 1, 10_000 + i)
                    .parse()
                    .unwrap();
            segment(
                client,
                server,
                Client,
                i * 7919,
                None,
                (true, false),
                &[],
                Timestamp(base + 1 + i64::from(i)),
            )
        })
        .collect();
    let shift = 3_000_000_000 + 2_000;
    for p in pkts.iter_mut().skip(12) {
        p.ts = Timestamp(p.ts.0 + shift);
    }
    pkts.splice(12..12, syns);
    let limits = mailsift::limits::Limits {
        max_flows: 256,
        ..mailsift::limits::Limits::default()
    };
    let sessions = run_with_limits("syn-flood.pcap", &pkts, limits);
    let control = the_control(&sessions);
    assert_control_intact(control);
    assert!(!control.has_anomaly("flow_evicted"));
}

#[test]
fn a_syn_flood_is_a_count_not_a_session_per_syn() {
    use mailsift::session::Direction::Client;
    let server: std::net::SocketAddrV4 = SERVER.parse().unwrap();
    let mut pkts = control(0, CONTROL_ISN).packets();
    let base = pkts[0].ts.0;
    pkts.extend((0..500u32).map(|i| {
        let client: std::net::SocketAddrV4 = format!("203.0.113.{}:{}", i % 250 + 1, 20_000 + i)
            .parse()
            .unwrap();
        segment(
            client,
            server,
            Client,
            i * 104_729,
            None,
            (true, false),
            &[],
            Timestamp(base + 1 + i64::from(i)),
        )
    }));
    pkts.sort_by_key(|p| p.ts);
    let path = common::write_pcap("syn-count.pcap", &pkts);
    let (sessions, summary) = common::run_with(
        std::slice::from_ref(&path),
        mailsift::engine::EngineConfig::default(),
    );
    assert_eq!(sessions.len(), 1);
    assert_control_intact(&sessions[0]);
    assert_eq!(summary.stats.empty_sessions, 500);
    let all = mailsift::engine::EngineConfig {
        report_empty_sessions: true,
        ..mailsift::engine::EngineConfig::default()
    };
    let (sessions, summary) = common::run_with(std::slice::from_ref(&path), all);
    assert_eq!(sessions.len(), 501);
    assert_eq!(summary.stats.empty_sessions, 0);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_forged_reset_does_not_end_the_control() {
    // After EHLO (packet 5), a forged server RST; the control goes on.
    let pkts = control_with(5, 1, |ts| {
        let mut p = forged(false, 2_000_000_001 + 28, CONTROL_ISN + 1 + 27, false, ts);
        // Turn the forged ACK into a RST: flags byte of the TCP header (Ethernet 14 + IPv4 20
        // + 13) gets RST|ACK; the checksum is not checked by the decoder.
        p.data[14 + 20 + 13] = 0x14;
        p
    });
    let sessions = run_packets("forged-rst.pcap", &pkts);
    assert_eq!(sessions.len(), 1);
    let rec = &sessions[0];
    assert_control_intact(rec);
    assert!(rec.has_anomaly("rst_contradicted"), "{:?}", rec.anomalies);
    assert_eq!(rec.state, mailsift::session::SessionState::Closed);
}

#[test]
fn a_blind_reset_far_outside_the_stream_is_ignored() {
    // After EHLO (packet 5), a server RST whose sequence number is 1 GB from the server's
    // stream, as a blind attacker guesses it: believed, it would end the control (and, were
    // the control to stop after it, leave it reset). It is set aside at once.
    let pkts = control_with(5, 1, |ts| {
        let mut p = forged(false, 2_000_000_001u32.wrapping_add(1 << 30), 0, false, ts);
        p.data[14 + 20 + 13] = 0x04; // RST alone, as a blind reset is sent
        p
    });
    let sessions = run_packets("blind-rst.pcap", &pkts);
    assert_eq!(sessions.len(), 1);
    let rec = &sessions[0];
    assert_control_intact(rec);
    assert!(rec.has_anomaly("rst_out_of_window"), "{:?}", rec.anomalies);
    assert!(!rec.has_anomaly("rst_contradicted"), "{:?}", rec.anomalies);
    assert_eq!(rec.state, mailsift::session::SessionState::Closed);
}

#[test]
fn large_transfers_alongside_do_not_spend_what_the_control_keeps() {
    // Five transfers of 2 MiB messages, interleaved with the control, under a 512 KiB
    // retention budget (a twentieth of what they carry): messages stream through and each is
    // charged its bounded record (at most 49 KiB), never its size, so neither the transfers
    // nor the control meet the budget.
    let body = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n";
    let message = format!(
        "Subject: bulk\r\nContent-Type: application/octet-stream\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}.\r\n",
        body.repeat((2 << 20) / body.len())
    );
    let mut parts = vec![control(1, CONTROL_ISN).packets()];
    for i in 0..5u16 {
        let client: std::net::SocketAddr = format!("198.51.100.{}:4100{i}", 1 + i).parse().unwrap();
        parts.push(
            Conversation::new(client, SERVER.parse().unwrap())
                .start(Timestamp::from_parts(1_700_000_000, 0))
                .server("220 mx.example.test ESMTP\r\n")
                .client("EHLO bulk.example.test\r\n")
                .server("250 mx.example.test\r\n")
                .client("MAIL FROM:<bulk@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
                .server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
                .client(message.clone())
                .server("250 2.0.0 Ok: queued\r\n")
                .client("QUIT\r\n")
                .server("221 2.0.0 Bye\r\n")
                .packets(),
        );
    }
    let limits = mailsift::limits::Limits {
        max_retained_bytes: 512 << 10,
        ..mailsift::limits::Limits::default()
    };
    let sessions = run_with_limits("bulk-transfers.pcap", &packets(parts), limits);
    assert_eq!(sessions.len(), 6);
    assert_control_intact(the_control(&sessions));
    for s in &sessions {
        assert!(!s.has_anomaly("memory_budget"), "{:?}", s.anomalies);
        assert_eq!(s.messages.len(), 1);
        assert!(s.messages[0].complete);
    }
}

#[test]
fn a_flood_of_chatty_sessions_pays_for_itself_and_the_control_keeps_its_record() {
    // 400 open sessions whose server sends 60 replies no command asked for, under a 2 MiB
    // retention budget they would spend several times over; then the control, while all are
    // still open. The chattiest give way; the control records its login and its message.
    let mut parts = Vec::new();
    for i in 0..400u32 {
        let client: std::net::SocketAddr = format!("10.0.{}.{}:{}", i / 250, i % 250, 20_000 + i)
            .parse()
            .unwrap();
        let mut conv = Conversation::new(client, SERVER.parse().unwrap())
            .start(Timestamp::from_parts(1_700_000_000, 0))
            .without_close()
            .server("220 mx.example.test ESMTP\r\n");
        for k in 0..60 {
            conv = conv.server(format!(
                "250 2.0.0 unrequested reply number {k} of the flood\r\n"
            ));
        }
        parts.push(conv.packets());
    }
    parts.push(control(5, CONTROL_ISN).packets());
    let limits = mailsift::limits::Limits {
        max_retained_bytes: 2 << 20,
        ..mailsift::limits::Limits::default()
    };
    let sessions = run_with_limits("reply-flood.pcap", &packets(parts), limits);
    let control = the_control(&sessions);
    assert_control_intact(control);
    assert!(
        !control.has_anomaly("memory_budget"),
        "{:?}",
        control.anomalies
    );
    let paid = sessions
        .iter()
        .filter(|s| s.has_anomaly("memory_budget") && s.events_dropped > 0)
        .count();
    assert!(paid > 0, "the flood's sessions gave way");
}

#[test]
fn a_syn_flood_right_after_the_control_handshake_does_not_evict_it() {
    use mailsift::session::Direction::{Client, Server};
    let server: std::net::SocketAddrV4 = SERVER.parse().unwrap();
    let mut pkts = control(0, CONTROL_ISN).packets();
    // The control has just completed its handshake (packets 0 to 2) and sent nothing yet when
    // 2,000 half-open connections arrive, each SYN answered by a SYN-ACK as a server's
    // capture shows them: eight times what the flow table holds, all newer than the control.
    let base = pkts[2].ts.0;
    let mut flood = Vec::new();
    for i in 0..2_000u32 {
        let client: std::net::SocketAddrV4 = format!("203.0.113.{}:{}", i % 250 + 1, 10_000 + i)
            .parse()
            .unwrap();
        let ts = Timestamp(base + 1 + 2 * i64::from(i));
        let isn = i * 7919;
        flood.push(segment(
            client,
            server,
            Client,
            isn,
            None,
            (true, false),
            &[],
            ts,
        ));
        let syn_ack = Timestamp(ts.0 + 1);
        let mut answer = segment(
            server,
            client,
            Server,
            5_000 + i,
            Some(isn + 1),
            (true, false),
            &[],
            syn_ack,
        );
        answer.from = Server;
        flood.push(answer);
    }
    let shift = 3_000_000_000 + 4_000;
    for p in pkts.iter_mut().skip(3) {
        p.ts = Timestamp(p.ts.0 + shift);
    }
    pkts.splice(3..3, flood);
    let limits = mailsift::limits::Limits {
        max_flows: 256,
        ..mailsift::limits::Limits::default()
    };
    let sessions = run_with_limits("syn-flood-after-handshake.pcap", &pkts, limits);
    let control = the_control(&sessions);
    assert_control_intact(control);
    assert!(control.handshake_seen);
    assert!(
        !control.has_anomaly("flow_evicted"),
        "{:?}",
        control.anomalies
    );
}

#[test]
fn recipients_no_reply_answers_do_not_crowd_out_the_control() {
    // 400 client-only sessions, each naming 100 recipients with 100-byte paths that no reply
    // ever answers, under a 2 MiB retention budget; then the control. Open transactions are
    // the dissectors' working state, charged apart from what records keep.
    let rcpts = format!("RCPT TO:<{}@example.test>\r\n", "r".repeat(88)).repeat(100);
    let mut parts = Vec::new();
    for i in 0..400u32 {
        let client: std::net::SocketAddr = format!("10.1.{}.{}:{}", i / 250, i % 250, 30_000 + i)
            .parse()
            .unwrap();
        let mut pkts = Conversation::new(client, SERVER.parse().unwrap())
            .start(Timestamp::from_parts(1_700_000_000, 0))
            .without_close()
            .server("220 mx.example.test ESMTP\r\n")
            .client(format!("EHLO x\r\nMAIL FROM:<a@example.test>\r\n{rcpts}"))
            .packets();
        pkts.retain(|p| p.from == mailsift::session::Direction::Client);
        parts.push(pkts);
    }
    parts.push(control(5, CONTROL_ISN).packets());
    let limits = mailsift::limits::Limits {
        max_retained_bytes: 2 << 20,
        ..mailsift::limits::Limits::default()
    };
    let sessions = run_with_limits("unanswered-rcpts.pcap", &packets(parts), limits);
    let control = the_control(&sessions);
    assert_control_intact(control);
    assert!(
        !control.has_anomaly("memory_budget"),
        "{:?}",
        control.anomalies
    );
}
