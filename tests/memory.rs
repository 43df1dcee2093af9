//! The stated memory bound: what one flow costs at rest, measured with a counting allocator,
//! and the worst cases of per-flow growth at small scale (many flows each with pipelined
//! NOOPs, commands that get no reply, one unterminated line) kept under
//! [`Limits::memory_bound`] evaluated for the scaled-down limits.

use mailsift::capture::file::FileSource;
use mailsift::capture::synth::{Conversation, SynthPacket, pcap_bytes};
use mailsift::engine::{Engine, EngineConfig, SessionSink};
use mailsift::limits::Limits;
use mailsift::session::SessionRecord;
use mailsift::time::Timestamp;
use std::cell::Cell;
use std::io::Cursor;
use std::net::SocketAddr;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{PEAK, held_now};

/// Counts finished sessions, keeping nothing.
#[derive(Default)]
struct CountOnly(usize);

impl SessionSink for CountOnly {
    fn session(&mut self, _rec: SessionRecord) {
        self.0 += 1;
    }
}

/// What a run held: at its peak, and at rest after the last packet with every flow still open.
struct Held {
    peak: usize,
    at_rest: usize,
    sessions: usize,
}

/// Runs `pkts` (as a pcap in memory) through one engine, measuring the bytes it held beyond
/// the capture bytes themselves.
fn run(pkts: &[SynthPacket], config: &EngineConfig) -> Held {
    let bytes = pcap_bytes(pkts);
    let base = held_now();
    PEAK.with(|p| p.set(base));
    let mut src = FileSource::from_reader("memory", Box::new(Cursor::new(bytes)))
        .expect("a pcap written by the synthesiser");
    let mut engine = Engine::new(config.clone());
    let mut sink = CountOnly::default();
    engine.run_source(&mut src, &mut None, &mut sink);
    // The capture bytes were allocated before `base`: measured while they are still held.
    let at_rest = (held_now() - base).max(0) as usize;
    drop(src);
    engine.finish(&mut sink);
    let peak = (PEAK.with(Cell::get) - base).max(0) as usize;
    Held {
        peak,
        at_rest,
        sessions: sink.0,
    }
}

/// Client address of flow `i`: distinct for a few million flows.
fn client(i: usize) -> SocketAddr {
    let ip = std::net::Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
    SocketAddr::new(ip.into(), 1024 + (i % 60_000) as u16)
}

/// Flow `i` to `port`, left open at the end of the capture.
fn open_flow(i: usize, port: u16) -> Conversation {
    Conversation::new(client(i), SocketAddr::from(([192, 0, 2, 25], port)))
        .start(Timestamp::from_parts(1_700_000_000, 0))
        .mss(1400)
        .without_close()
}

/// `flows` flows built by `per_flow`, interleaved by time so all are open at once.
fn crowd(flows: usize, per_flow: impl Fn(usize) -> Conversation) -> Vec<SynthPacket> {
    let mut pkts: Vec<SynthPacket> = (0..flows).flat_map(|i| per_flow(i).packets()).collect();
    pkts.sort_by_key(|p| p.ts);
    pkts
}

const REST_FLOWS: usize = 2000;

/// Bytes one flow holds at rest, measured over [`REST_FLOWS`] open flows.
/// `mail`: whether each is reported as a mail session at its end.
fn per_flow_at_rest(mail: bool, per_flow: impl Fn(usize) -> Conversation) -> usize {
    let config = EngineConfig::default();
    let held = run(&crowd(REST_FLOWS, per_flow), &config);
    let expected = if mail { REST_FLOWS } else { 0 };
    assert_eq!(held.sessions, expected, "every flow open to the end");
    held.at_rest / REST_FLOWS
}

#[test]
fn one_flow_at_rest_costs_at_most_the_stated_base() {
    let smtp = per_flow_at_rest(true, |i| {
        open_flow(i, 25)
            .server("220 mx ESMTP\r\n")
            .client("EHLO x\r\n")
            .server("250 mx\r\n")
    });
    let pop3 = per_flow_at_rest(true, |i| {
        open_flow(i, 110)
            .server("+OK ready\r\n")
            .client("USER a\r\n")
            .server("+OK\r\n")
    });
    // A port no mapping names: the content probe holds the flow's first bytes undecided.
    let probe = per_flow_at_rest(false, |i| {
        open_flow(i, 8025).server("220 hi\r\n").client("HEL")
    });
    eprintln!("at rest per flow: smtp {smtp} B, pop3 {pop3} B, probe {probe} B");
    for (what, bytes) in [("smtp", smtp), ("pop3", pop3), ("probe", probe)] {
        assert!(
            bytes <= Limits::FLOW_BASE_BYTES,
            "{what}: {bytes} bytes per flow at rest, stated {}",
            Limits::FLOW_BASE_BYTES
        );
    }
}

/// Limits scaled down for the worst cases: a full table of small flows, small shared pools.
fn scaled() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.limits.max_flows = 2000;
    config.limits.max_retained_bytes = 2 << 20;
    config.limits.max_ooo_bytes_total = 1 << 20;
    config.limits.max_fragment_bytes = 1 << 20;
    config
}

/// Runs `flows` flows of `per_flow`, all open at once, under [`scaled`] limits, and checks the
/// peak against the bound for them; returns the peak.
fn worst_case(name: &str, flows: usize, per_flow: impl Fn(usize) -> Conversation) -> usize {
    let config = scaled();
    let held = run(&crowd(flows, per_flow), &config);
    let l = &config.limits;
    let engine_bound = l.engine_bound();
    eprintln!(
        "{name}: {flows} flows, peak {} B, at rest {} B ({} B per tracked flow past the pools), bound {engine_bound} B",
        held.peak,
        held.at_rest,
        held.peak
            .saturating_sub(l.max_retained_bytes + l.max_ooo_bytes_total)
            / l.max_flows,
    );
    assert!(
        held.peak <= engine_bound,
        "{name}: held {} bytes, bound {engine_bound}",
        held.peak
    );
    assert!(held.peak <= l.memory_bound(), "within the whole bound too");
    held.peak
}

/// `n` copies of `line`.
fn repeat(line: &str, n: usize) -> String {
    line.repeat(n)
}

#[test]
fn many_flows_with_pipelined_noops_stay_within_the_bound() {
    let noops = repeat("NOOP\r\n", 300);
    worst_case("smtp noops", 2000, |i| {
        open_flow(i, 25).server("220 mx ESMTP\r\n").client(&noops)
    });
    let pop3 = repeat("NOOP\r\n", 300);
    worst_case("pop3 noops", 2000, |i| {
        open_flow(i, 110).server("+OK ready\r\n").client(&pop3)
    });
}

#[test]
fn many_sessions_with_unanswered_commands_stay_within_the_bound() {
    // Long paths, so each queued command carries text, and no reply ever comes.
    let path = "x".repeat(200);
    let commands = repeat(&format!("RCPT TO:<{path}@example.test>\r\n"), 100);
    worst_case("unanswered", 2000, |i| {
        open_flow(i, 25).server("220 mx ESMTP\r\n").client(format!(
            "EHLO x\r\nMAIL FROM:<a@example.test>\r\n{commands}"
        ))
    });
    // Replies ahead of any command queue on the server side.
    let replies = repeat("250 ok\r\n", 300);
    worst_case("unasked replies", 2000, |i| {
        open_flow(i, 25).server(format!("220 mx ESMTP\r\n{replies}"))
    });
}

#[test]
fn many_flows_each_holding_an_unterminated_line_stay_within_the_bound() {
    let line = "a".repeat(20_000);
    worst_case("smtp line", 2000, |i| {
        open_flow(i, 25).server("220 mx ESMTP\r\n").client(&line)
    });
    worst_case("pop3 line", 2000, |i| {
        open_flow(i, 110).server("+OK ready\r\n").client(&line)
    });
    // On a port no mapping names, the probe holds what neither side has decided yet.
    worst_case("probe", 2000, |i| {
        open_flow(i, 8025).server("220 hi\r\n").client(&line)
    });
}

#[test]
fn more_flows_than_the_table_holds_stay_within_the_bound() {
    let noops = repeat("NOOP\r\n", 100);
    worst_case("evicting", 5000, |i| {
        open_flow(i, 25).server("220 mx ESMTP\r\n").client(&noops)
    });
}

#[test]
fn messages_left_open_in_their_header_block_cost_only_the_decoders_the_run_allows() {
    // Every flow is in DATA with 20 KiB of header lines and no end to them; only 100 of the
    // 2 000 messages get a decoder, the rest are hashed as they come.
    let header = format!("X-Filler: {}\r\n", "h".repeat(58)).repeat(20 * 1024 / 70);
    let mut config = scaled();
    config.limits.max_open_messages = 100;
    assert!(
        config.limits.engine_bound() < 2000 * 20 * 1024,
        "all 2 000 open header blocks would not fit in the bound"
    );
    let held = run(
        &crowd(2000, |i| {
            open_flow(i, 25)
                .server("220 mx ESMTP\r\n")
                .client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
                .server("250 ok\r\n250 ok\r\n354 go\r\n")
                .client(&header)
        }),
        &config,
    );
    let l = &config.limits;
    let bound = l.engine_bound() + l.max_open_messages * Limits::OPEN_MESSAGE_BYTES;
    eprintln!("open headers: peak {} B, bound {bound} B", held.peak);
    assert!(
        held.peak <= bound,
        "held {} bytes, bound {bound}",
        held.peak
    );
    assert!(held.peak <= l.memory_bound());
}

#[test]
fn the_default_bound_is_stated_and_under_768_mib() {
    // 492 MiB for the engine and its pools, plus 230 MiB for the 1 024 messages that may be
    // open with a decoder at once (README, "Memory").
    let bound = Limits::default().memory_bound();
    eprintln!("default memory bound: {} MiB", bound >> 20);
    assert_eq!(bound >> 20, 722);
    assert!(bound < 768 << 20, "{bound} bytes");
}
