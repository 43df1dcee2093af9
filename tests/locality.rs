//! A session's record never depends on unrelated traffic: every bundled capture analysed alone
//! and merged into a busy hostile capture (a SYN flood, flows holding out-of-order data behind
//! holes nobody fills, half-open sessions that never answer, noise on other ports) gives the
//! same records, under limits small enough for the hostile traffic to press on them.

mod common;

use common::{bundled_captures, temp_path};
use mailsift::capture::synth::{Conversation, Rng, SynthPacket};
use mailsift::capture::transform::{Capture, Frame};
use mailsift::engine::EngineConfig;
use mailsift::limits::Limits;
use mailsift::session::{Direction, SessionRecord};
use mailsift::time::Timestamp;
use std::path::Path;

/// Limits the hostile traffic below exceeds: out-of-order bytes twice over. The flow table
/// is not made to overflow here: a session whose handshake lands inside a connection flood
/// larger than the table cannot be told from the flood until it carries payload (see
/// tests/attacks.rs for a flood while a session that has spoken pauses).
fn tight_limits() -> Limits {
    Limits {
        max_flows: 8_192,
        max_ooo_bytes_total: 1 << 20,
        ..Limits::default()
    }
}

fn conv(client: String, server: &str, ts: i64) -> Conversation {
    Conversation::new(client.parse().unwrap(), server.parse().unwrap())
        .start(Timestamp(ts))
        .without_close()
}

/// The hostile traffic, spread over `[from, to]` in capture time (Ethernet frames).
fn hostile(from: i64, to: i64, seed: u64) -> Vec<SynthPacket> {
    let mut rng = Rng::new(seed);
    let span = (to - from).max(1);
    let at = |rng: &mut Rng| from + (rng.next_u64() % span as u64) as i64;
    let mut out = Vec::new();
    // A SYN flood on port 25: 3,000 handshakes that never carry anything.
    for i in 0..3_000u32 {
        let client = format!("203.0.{}.{}:{}", 113 + i / 250 % 4, i % 250 + 1, 20_000 + i);
        out.extend(conv(client, "192.0.2.99:25", at(&mut rng)).packets());
    }
    // Flows holding 96 kB each behind a lost first segment, with the server silent after it.
    for i in 0..24u32 {
        let client = format!("198.51.100.{}:{}", i + 1, 30_000 + i);
        let pkts = conv(client, "192.0.2.98:25", at(&mut rng))
            .mss(1_000)
            .server("220 hostile ESMTP\r\n")
            .client(vec![b'x'; 97_000])
            .packets();
        let first_data = pkts
            .iter()
            .position(|p| p.from == Direction::Client && p.has_payload)
            .unwrap();
        out.extend(
            pkts.into_iter()
                .enumerate()
                .filter(|(k, p)| {
                    *k != first_data && !(*k > first_data && p.from == Direction::Server)
                })
                .map(|(_, p)| p),
        );
    }
    // Sessions that send commands no server answers.
    for i in 0..200u32 {
        let client = format!("198.51.101.{}:{}", i % 250 + 1, 40_000 + i);
        out.extend(
            conv(client, "192.0.2.97:25", at(&mut rng))
                .client("NOOP\r\n".repeat(40))
                .packets(),
        );
    }
    // Noise on other ports.
    for i in 0..100u32 {
        let client = format!("198.51.102.{}:{}", i % 250 + 1, 50_000 + i);
        let noise: Vec<u8> = (0..2_000).map(|_| rng.next_u64() as u8).collect();
        out.extend(
            conv(client, "192.0.2.96:8443", at(&mut rng))
                .client(noise)
                .packets(),
        );
    }
    out
}

fn run(capture: &Capture, name: &str) -> Vec<SessionRecord> {
    let path = temp_path(name);
    std::fs::write(&path, capture.to_pcap()).unwrap();
    let config = EngineConfig {
        limits: tight_limits(),
        ..EngineConfig::default()
    };
    let (sessions, _) = common::run_with(std::slice::from_ref(&path), config);
    let _ = std::fs::remove_file(path);
    sessions
}

/// A session's record without its id (the number of its first packet, which the hostile
/// packets before it change).
fn comparable(rec: &SessionRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(rec).unwrap();
    v.as_object_mut().unwrap().remove("id");
    v
}

fn key(rec: &SessionRecord) -> String {
    format!("{} {} {}", rec.client, rec.server, rec.first_seen)
}

fn check(path: &Path) -> Vec<String> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let cap = Capture::read(path).unwrap();
    if cap.link != mailsift::capture::LinkType::ETHERNET || cap.frames.is_empty() {
        return Vec::new();
    }
    let from = cap.frames.iter().map(|f| f.ts.0).min().unwrap();
    let to = cap.frames.iter().map(|f| f.ts.0).max().unwrap();
    let mut frames = cap.frames.clone();
    frames.extend(hostile(from, to, 7).into_iter().map(|p| Frame {
        ts: p.ts,
        orig_len: p.orig_len,
        data: p.data,
    }));
    // Stable: the capture's own frames keep their order among themselves.
    frames.sort_by_key(|f| f.ts);
    let alone = run(&cap, &format!("alone-{name}"));
    let merged = run(&cap.with_frames(frames), &format!("merged-{name}"));
    let mut problems = Vec::new();
    for rec in &alone {
        let twin = merged.iter().find(|m| key(m) == key(rec));
        match twin {
            None => problems.push(format!(
                "{name}: session {} vanished in the crowd",
                key(rec)
            )),
            Some(m) if comparable(m) != comparable(rec) => {
                problems.push(format!("{name}: session {} differs in the crowd", key(rec)))
            }
            Some(_) => {}
        }
    }
    problems
}

#[test]
fn every_bundled_session_is_the_same_alone_and_in_a_hostile_crowd() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for path in bundled_captures() {
        let found = check(&path);
        checked += 1;
        problems.extend(found);
    }
    assert!(checked > 10);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
