//! End-to-end behaviour of the pipeline on synthetic captures: flows, roles, reassembly, limits.

mod common;

use common::*;
use mailsift::capture::synth::{Conversation, SynthPacket, duplicate_every, reorder};
use mailsift::engine::EngineConfig;
use mailsift::session::{EventKind, Protocol, SessionState};
use mailsift::time::Timestamp;

const SMTP: &[(&str, &str)] = &[
    ("s", "220 mail.example.test ESMTP\r\n"),
    ("c", "EHLO client.example.test\r\n"),
    (
        "s",
        "250-mail.example.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
    ),
    ("c", "MAIL FROM:<alice@example.test>\r\n"),
    ("s", "250 2.1.0 Ok\r\n"),
    ("c", "RCPT TO:<bob@example.test>\r\n"),
    ("s", "250 2.1.5 Ok\r\n"),
    ("c", "DATA\r\n"),
    ("s", "354 End data with <CR><LF>.<CR><LF>\r\n"),
    (
        "c",
        "Subject: hello\r\n\r\nThis is a test message long enough to span segments.\r\n..dot\r\n.\r\n",
    ),
    ("s", "250 2.0.0 Ok: queued\r\n"),
    ("c", "QUIT\r\n"),
    ("s", "221 2.0.0 Bye\r\n"),
];

fn smtp_conv(client: &str, server: &str) -> Conversation {
    let mut c = Conversation::new(client.parse().unwrap(), server.parse().unwrap());
    for (who, text) in SMTP {
        c = if *who == "c" {
            c.client(text)
        } else {
            c.server(text)
        };
    }
    c
}

fn total(dir: &str) -> u64 {
    SMTP.iter()
        .filter(|(w, _)| *w == dir)
        .map(|(_, t)| t.len() as u64)
        .sum()
}

#[test]
fn plain_session_roles_and_counts() {
    let pkts = smtp_conv("192.0.2.10:40000", "192.0.2.20:25").packets();
    let s = run_packets("plain.pcap", &pkts);
    assert_eq!(s.len(), 1);
    let r = &s[0];
    assert_eq!(r.protocol, Protocol::Smtp);
    assert_eq!(r.client.to_string(), "192.0.2.10:40000");
    assert_eq!(r.server.to_string(), "192.0.2.20:25");
    assert_eq!(r.id, 1, "id is the number of the first packet");
    assert!(r.handshake_seen);
    assert_eq!(r.state, SessionState::Closed);
    assert_eq!(r.bytes.client, total("c"));
    assert_eq!(r.bytes.server, total("s"));
    assert_eq!(r.missing_bytes.client + r.missing_bytes.server, 0);
    assert_eq!(r.packets.client + r.packets.server, pkts.len() as u64);
    assert!(!r.events.is_empty());
}

#[test]
fn reordering_duplication_and_tiny_segments_change_nothing() {
    let base = run_packets(
        "base.pcap",
        &smtp_conv("192.0.2.10:40001", "192.0.2.20:25").packets(),
    );
    let want = events_json(&base[0]);
    for (name, pkts) in [
        (
            "tiny",
            smtp_conv("192.0.2.10:40001", "192.0.2.20:25")
                .mss(1)
                .packets(),
        ),
        (
            "dup",
            duplicate_every(
                &smtp_conv("192.0.2.10:40001", "192.0.2.20:25")
                    .mss(7)
                    .packets(),
                2,
            ),
        ),
    ] {
        let s = run_packets(name, &pkts);
        assert_eq!(s.len(), 1, "{name}");
        assert_eq!(s[0].bytes, base[0].bytes, "{name}");
        assert_eq!(
            s[0].missing_bytes.client + s[0].missing_bytes.server,
            0,
            "{name}"
        );
        // Segment sizes change the timestamps of events, so compare what the events say.
        let strip = |v: &serde_json::Value| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    e.as_object_mut().unwrap().remove("ts");
                    e
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&events_json(&s[0])), strip(&want), "{name}");
    }
    for seed in 0..20 {
        let mut pkts = smtp_conv("192.0.2.10:40001", "192.0.2.20:25")
            .mss(5)
            .packets();
        reorder(&mut pkts, 4, seed, false);
        let s = run_packets("reordered", &pkts);
        assert_eq!(s.len(), 1, "seed {seed}");
        assert_eq!(s[0].bytes, base[0].bytes, "seed {seed}");
        assert_eq!(
            s[0].missing_bytes.client + s[0].missing_bytes.server,
            0,
            "seed {seed}"
        );
    }
}

#[test]
fn a_lost_segment_is_a_gap_of_its_size() {
    let pkts = smtp_conv("192.0.2.10:40002", "192.0.2.20:25")
        .mss(10)
        .packets();
    // Drop the second client data segment.
    let victim = pkts
        .iter()
        .enumerate()
        .filter(|(_, p)| p.has_payload && p.from == mailsift::session::Direction::Client)
        .nth(1)
        .map(|(i, _)| i)
        .unwrap();
    let lost = payload_len(&pkts[victim]);
    let kept: Vec<SynthPacket> = pkts
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, p)| p.clone())
        .collect();
    let s = run_packets("lost.pcap", &kept);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].missing_bytes.client, lost);
    assert_eq!(s[0].bytes.client, total("c") - lost);
}

fn payload_len(p: &SynthPacket) -> u64 {
    // Ethernet 14 + IPv4 20 + TCP 20, as the synthesizer writes them.
    (p.data.len() - 54) as u64
}

#[test]
fn mid_stream_pickup_uses_the_mail_port_as_server() {
    let pkts = smtp_conv("192.0.2.10:40003", "192.0.2.20:587")
        .without_handshake()
        .packets();
    // Start with a server packet to make sure the port, not the first sender, decides.
    let first_server = pkts
        .iter()
        .position(|p| p.from == mailsift::session::Direction::Server)
        .unwrap();
    let s = run_packets("midstream.pcap", &pkts[first_server..]);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].server.port, 587);
    assert!(!s[0].handshake_seen);
}

#[test]
fn port_reuse_starts_a_new_session() {
    let a = smtp_conv("192.0.2.10:40004", "192.0.2.20:25")
        .isn(100, 200)
        .packets();
    let b = smtp_conv("192.0.2.10:40004", "192.0.2.20:25")
        .isn(900_000, 800_000)
        .start(Timestamp::from_parts(1_700_000_001, 0))
        .packets();
    let all: Vec<SynthPacket> = a.iter().chain(b.iter()).cloned().collect();
    let s = run_packets("reuse.pcap", &all);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].id, 1);
    assert_eq!(s[1].id, a.len() as u64 + 1);
    assert_eq!(s[0].bytes, s[1].bytes);
}

#[test]
fn sequence_wraparound_vlan_qinq_and_ipv6() {
    for (name, conv) in [
        (
            "wrap",
            smtp_conv("192.0.2.10:40005", "192.0.2.20:25")
                .isn(u32::MAX - 10, u32::MAX - 3)
                .mss(8),
        ),
        (
            "vlan",
            smtp_conv("192.0.2.10:40006", "192.0.2.20:25").vlans(&[42]),
        ),
        (
            "qinq",
            smtp_conv("192.0.2.10:40007", "192.0.2.20:25").vlans(&[100, 42]),
        ),
        (
            "ipv6",
            smtp_conv("[2001:db8::10]:40008", "[2001:db8::20]:25"),
        ),
    ] {
        let s = run_packets(name, &conv.packets());
        assert_eq!(s.len(), 1, "{name}");
        assert_eq!(s[0].bytes.client, total("c"), "{name}");
        assert_eq!(
            s[0].missing_bytes.client + s[0].missing_bytes.server,
            0,
            "{name}"
        );
    }
    let s = run_packets(
        "ipv6b",
        &smtp_conv("[2001:db8::10]:40008", "[2001:db8::20]:25").packets(),
    );
    let v = serde_json::to_value(&s[0]).unwrap();
    assert_eq!(v["client"]["ip"], "2001:db8::10");
}

#[test]
fn mail_on_other_ports_is_found_by_content_unless_detection_is_off() {
    let pkts = smtp_conv("192.0.2.10:40009", "192.0.2.20:8080").packets();
    let found = run_packets("http.pcap", &pkts);
    assert_eq!(found.len(), 1);
    assert!(found[0].detected_by_content);
    let p = write_pcap("nodetect.pcap", &pkts);
    let cfg = EngineConfig {
        no_detection: true,
        ..EngineConfig::default()
    };
    assert!(run_with(&[p], cfg).0.is_empty());
    // A mapped port is mail by its number.
    let p = write_pcap("mapped.pcap", &pkts);
    let mut cfg = EngineConfig::default();
    cfg.ports.add_spec("smtp=8080").unwrap();
    let (s, _) = run_with(&[p], cfg);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].protocol, Protocol::Smtp);
    assert!(!s[0].detected_by_content);
}

#[test]
fn several_files_are_one_capture() {
    let pkts = smtp_conv("192.0.2.10:40010", "192.0.2.20:110").packets();
    let half = pkts.len() / 2;
    let a = write_pcap("part1.pcap", &pkts[..half]);
    let b = write_pcap("part2.pcap", &pkts[half..]);
    let (s, summary) = run(&[a, b]);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].protocol, Protocol::Pop3);
    assert_eq!(s[0].bytes.client, total("c"));
    assert_eq!(summary.inputs.len(), 2);
    assert_eq!(
        summary.inputs[0].packets + summary.inputs[1].packets,
        pkts.len() as u64
    );
}

#[test]
fn idle_flows_expire_by_capture_time_and_the_table_is_bounded() {
    let a = smtp_conv("192.0.2.10:40011", "192.0.2.20:25")
        .without_close()
        .packets();
    let b = smtp_conv("192.0.2.10:40012", "192.0.2.20:25")
        .start(Timestamp::from_parts(1_700_010_000, 0))
        .packets();
    let all: Vec<SynthPacket> = a.iter().chain(b.iter()).cloned().collect();
    let p = write_pcap("idle.pcap", &all);
    let (s, summary) = run(&[p]);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].state, SessionState::TimedOut);
    assert_eq!(summary.stats.flows.timed_out, 1);

    // Five concurrent sessions through a table of two: evictions are counted and reported.
    let mut all = Vec::new();
    for i in 0..5u16 {
        all.extend(
            smtp_conv(&format!("192.0.2.10:{}", 41000 + i), "192.0.2.20:25")
                .without_close()
                .packets()
                .into_iter()
                .take(6),
        );
    }
    all.sort_by_key(|p| p.ts);
    let p = write_pcap("evict.pcap", &all);
    let mut cfg = EngineConfig::default();
    cfg.limits.max_flows = 2;
    let (s, summary) = run_with(&[p], cfg);
    // Evicted flows come back as new mid-stream sessions when their next packet arrives.
    assert!(s.len() >= 5);
    assert!(summary.stats.flows.evicted >= 3);
    assert!(summary.stats.flows.peak <= 2);
    assert!(
        s.iter()
            .any(|r| r.state == SessionState::Evicted && r.has_anomaly("flow_evicted"))
    );
}

/// A source scripted like a quiet live interface: packets and idle ticks (`Err(time)`).
/// `left` shows how many items it still holds, so a sink can tell when it was called.
struct ScriptedLive {
    items: std::collections::VecDeque<Result<SynthPacket, Timestamp>>,
    current: Vec<u8>,
    left: std::rc::Rc<std::cell::Cell<usize>>,
}

impl mailsift::capture::PacketSource for ScriptedLive {
    fn next_packet(
        &mut self,
    ) -> Result<Option<mailsift::capture::Packet<'_>>, mailsift::capture::CaptureError> {
        while let Some(Err(_)) = self.items.front() {
            self.items.pop_front();
        }
        match self.next_item()? {
            Some(mailsift::capture::SourceItem::Packet(p)) => Ok(Some(p)),
            _ => Ok(None),
        }
    }

    fn next_item(
        &mut self,
    ) -> Result<Option<mailsift::capture::SourceItem<'_>>, mailsift::capture::CaptureError> {
        use mailsift::capture::{LinkType, Packet, SourceItem};
        let item = self.items.pop_front();
        self.left.set(self.items.len());
        Ok(match item {
            None => None,
            Some(Err(ts)) => Some(SourceItem::Idle(ts)),
            Some(Ok(p)) => {
                self.current = p.data;
                Some(SourceItem::Packet(Packet {
                    ts: p.ts,
                    link: LinkType::ETHERNET,
                    data: &self.current,
                    orig_len: p.orig_len,
                }))
            }
        })
    }

    fn summary(&self) -> mailsift::capture::InputSummary {
        mailsift::capture::InputSummary::default()
    }

    fn note_error(&mut self, _message: String) {}
}

/// Records, for each session reported, how many items the source still held.
struct WhenReported {
    source_left: std::rc::Rc<std::cell::Cell<usize>>,
    reported_with_left: Vec<usize>,
}

impl mailsift::engine::SessionSink for WhenReported {
    fn session(&mut self, _rec: mailsift::session::SessionRecord) {
        self.reported_with_left.push(self.source_left.get());
    }
}

#[test]
fn idle_ticks_finish_closed_sessions_on_a_quiet_interface() {
    // A closed session lingers a few seconds for late retransmissions; on a live interface
    // with no more traffic, only idle ticks can move the clock past that.
    let pkts = smtp_conv("192.0.2.10:40000", "192.0.2.20:25").packets();
    let last = pkts.last().unwrap().ts;
    let linger = mailsift::limits::Limits::default().closed_linger_secs as i64;
    let mut items: std::collections::VecDeque<_> = pkts.into_iter().map(Ok).collect();
    items.push_back(Err(Timestamp(last.0 + 1_000_000_000)));
    items.push_back(Err(Timestamp(last.0 + (linger + 1) * 1_000_000_000)));
    items.push_back(Err(Timestamp(last.0 + (linger + 2) * 1_000_000_000)));
    let left = std::rc::Rc::new(std::cell::Cell::new(items.len()));
    let mut src = ScriptedLive {
        items,
        current: Vec::new(),
        left: left.clone(),
    };
    let mut sink = WhenReported {
        source_left: left,
        reported_with_left: Vec::new(),
    };
    let mut engine = mailsift::engine::Engine::new(EngineConfig::default());
    engine.run_source(&mut src, &mut None, &mut sink);
    // Reported at the tick past the linger time, with one tick still queued: while the
    // capture runs, not by the final drain.
    assert_eq!(sink.reported_with_left, vec![1]);
    engine.finish(&mut sink);
    assert_eq!(sink.reported_with_left, vec![1]);
}

fn large_message_sessions(count: usize, body: &str, stagger_secs: i64) -> Vec<SynthPacket> {
    let mut pkts = Vec::new();
    for i in 0..count {
        let conv = Conversation::new(
            format!("192.0.2.{}:{}", 10 + i, 40000 + i).parse().unwrap(),
            "192.0.2.200:25".parse().unwrap(),
        )
        .start(Timestamp::from_parts(
            1_700_000_000 + stagger_secs * i as i64,
            0,
        ))
        .mss(1400)
        .server("220 mx ESMTP\r\n")
        .client("HELO c\r\n")
        .server("250 mx\r\n")
        .client("MAIL FROM:<a@example.test>\r\n")
        .server("250 ok\r\n")
        .client("RCPT TO:<b@example.test>\r\n")
        .server("250 ok\r\n")
        .client("DATA\r\n")
        .server("354 go\r\n")
        .client(format!("{body}.\r\n"))
        .server("250 queued\r\n");
        pkts.extend(conv.packets());
    }
    pkts.sort_by_key(|p| p.ts);
    pkts
}

fn run_with_budget(
    name: &str,
    pkts: &[SynthPacket],
    budget: usize,
) -> (
    Vec<mailsift::session::SessionRecord>,
    mailsift::engine::RunSummary,
) {
    let path = write_pcap(name, pkts);
    let mut config = EngineConfig::default();
    config.limits.max_retained_bytes = budget;
    let out = run_with(std::slice::from_ref(&path), config);
    let _ = std::fs::remove_file(path);
    out
}

/// Many sessions send large messages at once: messages stream through their decoders without
/// being kept, so a small retention budget (for events and the like) is never spent on them and
/// every message is decoded whole, whatever else the capture holds.
#[test]
fn concurrent_large_messages_do_not_depend_on_each_other() {
    use sha2::{Digest, Sha256};
    const SESSIONS: usize = 40;
    // Three quarters of it are for records: 40 open messages' bounded records fit in that.
    const BUDGET: usize = 3 << 20;
    let body = ("x".repeat(98) + "\r\n").repeat(2000);
    let want = hex::encode(Sha256::digest(body.as_bytes()));

    // Same start times: the sessions' packets interleave, so all 40 messages of 200 KB are
    // open at once, more than the budget holds.
    let (sessions, summary) = run_with_budget(
        "budget-concurrent.pcap",
        &large_message_sessions(SESSIONS, &body, 0),
        BUDGET,
    );
    let retention = summary.stats.retention;
    assert_eq!(retention.limit_bytes, BUDGET as u64);
    assert!(retention.peak_bytes <= BUDGET as u64, "{retention:?}");
    assert_eq!(retention.refusals, 0, "{retention:?}");
    assert_eq!(sessions.len(), SESSIONS);
    for s in &sessions {
        assert_eq!(s.messages.len(), 1, "session {}", s.id);
        let m = &s.messages[0];
        assert_eq!(m.size, body.len() as u64);
        assert_eq!(m.sha256, want, "hash covers the whole message");
    }
    for s in &sessions {
        assert!(!s.has_anomaly("memory_budget"), "session {}", s.id);
        let mime = s.messages[0].mime.as_ref().expect("decoded");
        assert_eq!(mime.parts[0].size, Some(body.len() as u64), "decoded whole");
    }

    // One after another, each session returns what it kept: the same budget suffices.
    let (sessions, summary) = run_with_budget(
        "budget-sequential.pcap",
        &large_message_sessions(SESSIONS, &body, 60),
        BUDGET,
    );
    assert_eq!(summary.stats.retention.refusals, 0);
    assert_eq!(sessions.len(), SESSIONS);
    assert!(sessions.iter().all(|s| !s.has_anomaly("memory_budget")));
    assert!(sessions.iter().all(|s| s.messages[0].sha256 == want));
}

/// A data segment read after both FINs, with a capture time seconds past the close (as when
/// a reordered capture is re-stamped in order), still belongs to its session.
#[test]
fn a_segment_reordered_behind_the_close_rejoins_its_session() {
    let pkts = smtp_conv("192.0.2.10:40100", "192.0.2.20:25").packets();
    // The client's last data segment (QUIT), read after both FINs.
    let straggler = pkts
        .iter()
        .rposition(|p| p.has_payload && p.from == mailsift::session::Direction::Client)
        .expect("client data");
    let mut moved = pkts.clone();
    let mut late = moved.remove(straggler);
    assert!(late.has_payload);
    let end = moved.last().expect("packets").ts;
    late.ts = Timestamp(end.0 + 20_000_000_000);
    moved.push(late);
    let s = run_packets("straggler.pcap", &moved);
    assert_eq!(s.len(), 1, "one session, not a second mid-stream one");
    assert_eq!(s[0].missing_bytes.client, 0);
    assert_eq!(s[0].bytes.client, total("c"));
    let whole = run_packets("straggler-ref.pcap", &pkts);
    assert_eq!(
        events_json(&s[0]).as_array().map(Vec::len),
        events_json(&whole[0]).as_array().map(Vec::len)
    );
}

/// The FINs of a connection read before its SYN (a reordered capture) still close it: they
/// are held until the connection appears, not dropped as bare segments of no session.
#[test]
fn fins_read_before_the_handshake_still_close_the_session() {
    let pkts = smtp_conv("192.0.2.10:40200", "192.0.2.20:25").packets();
    let whole = run_packets("fins-ref.pcap", &pkts);
    assert_eq!(whole[0].state, SessionState::Closed);
    // Move every payload-free FIN segment to the front.
    let fin_first: Vec<SynthPacket> = {
        let is_fin = |p: &SynthPacket| {
            // TCP flags byte: Ethernet 14 + IPv4 20 + 13; FIN is bit 0.
            !p.has_payload && p.data.get(14 + 20 + 13).is_some_and(|f| f & 0x01 != 0)
        };
        let (fins, rest): (Vec<_>, Vec<_>) = pkts.iter().cloned().partition(is_fin);
        assert!(!fins.is_empty(), "the conversation closes with FINs");
        fins.into_iter().chain(rest).collect()
    };
    let s = run_packets("fins-first.pcap", &fin_first);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].state, SessionState::Closed, "{:?}", s[0].anomalies);
    assert_eq!(events_json(&s[0]), events_json(&whole[0]));
}

#[test]
fn an_auth_prompt_answered_by_a_command_is_no_credential() {
    let pkts = Conversation::new(
        "192.0.2.10:40031".parse().unwrap(),
        "192.0.2.20:587".parse().unwrap(),
    )
    .server("220 mail.example ESMTP\r\n")
    .client("EHLO x\r\n")
    .server("250-mail.example\r\n250 AUTH LOGIN\r\n")
    .client("AUTH LOGIN\r\n")
    .server("334 VXNlcm5hbWU6\r\n")
    .client("QUIT\r\n")
    .server("501 5.5.2 Cannot decode response\r\n")
    .client("QUIT\r\n")
    .server("221 2.0.0 Bye\r\n")
    .packets();
    let s = run_packets("auth-abandoned.pcap", &pkts);
    let c = &s[0].credentials;
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].username, None,
        "no user name made of the letters of QUIT"
    );
    assert!(c[0].details.cancelled);
    assert_eq!(c[0].success, Some(false));
    assert!(s[0].has_anomaly("auth_abandoned"));
    assert!(
        !s[0].findings.iter().any(|f| f.rule == "cleartext-password"),
        "{:?}",
        s[0].findings
    );
    // The QUIT shows as the command it was; a real LOGIN user name still decodes.
    let quits = s[0]
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Command { verb, .. } if verb == "QUIT"))
        .count();
    assert_eq!(quits, 2);
}
