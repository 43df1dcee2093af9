//! Throughput of the whole pipeline and of its hot parts, on synthetic captures made at start.
//!
//! `cargo bench` runs everything; `cargo bench -- export` only the whole-pipeline runs, and
//! `cargo bench -- decoder` only the transfer-encoding decoders. The capture size is 48 MiB unless
//! `MAILSIFT_BENCH_MIB` says otherwise.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mailsift::capture::file::FileSource;
use mailsift::capture::synth::Rng;
use mailsift::capture::workload::{self, Workload};
use mailsift::capture::{Packet, PacketSource};
use mailsift::engine::{self, EngineConfig, SessionSink};
use mailsift::limits::Limits;
use mailsift::mail::decoder::{self, Base64Decoder, BodyDecoder, QuotedPrintableDecoder};
use mailsift::net::decode::Decoder;
use mailsift::output::json::DocumentWriter;
use mailsift::proto::{Framing, new_dissector};
use mailsift::session::{Direction, Endpoint, Protocol, SessionRecord};
use mailsift::time::Timestamp;
use std::hint::black_box;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn bench_mib() -> u64 {
    std::env::var("MAILSIFT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

/// A capture written once per process under the temp dir (so it is read from the page cache).
fn capture_file(name: &str, workload: Workload) -> (PathBuf, Vec<u8>) {
    let bytes = workload.to_bytes();
    let path =
        std::env::temp_dir().join(format!("mailsift-bench-{}-{name}.pcap", std::process::id()));
    std::fs::write(&path, &bytes).expect("write the bench capture");
    (path, bytes)
}

/// Serializes every session as `mailsift export` does, into nothing.
struct ExportSink(Option<DocumentWriter<std::io::Sink>>);

impl SessionSink for ExportSink {
    fn session(&mut self, rec: SessionRecord) {
        if let Some(w) = self.0.as_mut() {
            let _ = w.session(&rec);
        }
    }
}

fn export(path: &Path, threads: usize) -> u64 {
    export_with(path, EngineConfig::default(), threads)
}

fn whole_pipeline(c: &mut Criterion) {
    let mib = bench_mib();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group("export");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (name, other_percent) in [("mail_only", 0u8), ("mixed_75pct_other", 75)] {
        let workload = Workload {
            target_bytes: mib << 20,
            other_percent,
            seed: 42,
        };
        let (path, bytes) = capture_file(name, workload);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut counts = vec![1];
        if cores > 1 {
            counts.push(cores);
        }
        for threads in counts {
            group.bench_with_input(
                BenchmarkId::new(name, format!("{threads}t")),
                &threads,
                |b, &t| b.iter(|| black_box(export(&path, t))),
            );
        }
        let _ = std::fs::remove_file(&path);
    }
    group.finish();
}

/// Runs `mailsift export` of `path` with `config` on `threads` threads, into nothing.
fn export_with(path: &Path, config: EngineConfig, threads: usize) -> u64 {
    let mut sink = ExportSink(Some(DocumentWriter::new(std::io::sink()).expect("writer")));
    let summary = engine::run_files_threaded(
        &[path.to_path_buf()],
        config,
        threads,
        &mut None,
        &mut sink,
        &mut |_| {},
    );
    if let Some(w) = sink.0.take() {
        let _ = w.finish(&summary.inputs, &summary.stats);
    }
    summary.stats.sessions
}

/// Content detection on a capture where nine flows of ten are not mail, against the same
/// run with detection off (the bound: under 10% more time).
fn detection(c: &mut Criterion) {
    let bytes = workload::mostly_other(bench_mib() << 20, 42);
    let path = std::env::temp_dir().join(format!(
        "mailsift-bench-{}-mostly-other.pcap",
        std::process::id()
    ));
    std::fs::write(&path, &bytes).expect("write the bench capture");
    let mut group = c.benchmark_group("detection");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    for (name, off) in [("detect", false), ("no_detect", true)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let config = EngineConfig {
                    no_detection: off,
                    ..EngineConfig::default()
                };
                black_box(export_with(&path, config, 1))
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_file(&path);
}

/// Every packet of an in-memory capture, for the per-packet stages.
fn for_each_packet(bytes: &[u8], mut f: impl FnMut(&Packet<'_>)) {
    let mut src =
        FileSource::from_reader("bench", Box::new(Cursor::new(bytes.to_vec()))).expect("capture");
    while let Ok(Some(p)) = src.next_packet() {
        f(&p);
    }
}

fn stages(c: &mut Criterion) {
    let workload = Workload {
        target_bytes: 16 << 20,
        other_percent: 50,
        seed: 9,
    };
    let bytes = workload.to_bytes();
    let mut group = c.benchmark_group("stage");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("read_capture", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for_each_packet(&bytes, |p| n += p.data.len() as u64);
            black_box(n)
        })
    });
    group.bench_function("read_and_decode", |b| {
        let limits = Limits::default();
        b.iter(|| {
            let mut decoder = Decoder::new(&limits);
            let mut n = 0u64;
            for_each_packet(&bytes, |p| {
                if decoder.decode(p).is_ok() {
                    n += 1;
                }
            });
            black_box(n)
        })
    });
    group.finish();

    // The SMTP dissector alone, fed one session's client and server bytes in segments.
    let mut rng = Rng::new(5);
    let mut client = Vec::new();
    client.extend_from_slice(b"EHLO bench.example\r\n");
    for m in 0..4 {
        client.extend_from_slice(
            b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n",
        );
        client.extend_from_slice(workload::message(&mut rng, m).as_bytes());
        client.extend_from_slice(b".\r\n");
    }
    client.extend_from_slice(b"QUIT\r\n");
    let replies: &[&[u8]] = &[
        b"220 mx ESMTP\r\n",
        b"250-mx\r\n250 PIPELINING\r\n",
        b"250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n",
        b"250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n",
        b"250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n",
        b"250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n",
        b"221 bye\r\n",
    ];
    let ep = |port| Endpoint {
        ip: "192.0.2.1".parse().expect("ip"),
        port,
    };
    let mut group = c.benchmark_group("dissect");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(client.len() as u64));
    let analyze_mode = {
        let mut l = Limits {
            content_hashes: false,
            ..Limits::default()
        };
        l.mime.decode_content = false;
        l
    };
    for (name, limits) in [
        ("smtp_with_mime", Limits::default()),
        ("smtp_analyze_mode", analyze_mode),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut rec =
                    SessionRecord::new(1, Protocol::Smtp, ep(40000), ep(25), Timestamp(0));
                let mut d = new_dissector(Protocol::Smtp, Framing::Plain, &limits);
                for r in replies.iter().take(2) {
                    d.on_data(Direction::Server, r, Timestamp(1), &mut rec);
                }
                for chunk in client.chunks(1460) {
                    d.on_data(Direction::Client, chunk, Timestamp(2), &mut rec);
                }
                for r in replies.iter().skip(2) {
                    d.on_data(Direction::Server, r, Timestamp(3), &mut rec);
                }
                d.on_end(Timestamp(4), &mut rec);
                black_box(rec.messages.len() + rec.deferred.len())
            })
        });
    }
    group.finish();

    // MIME decoding and hashing of one message with a base64 attachment.
    let msg = workload::message(&mut Rng::new(11), 1);
    let mut group = c.benchmark_group("mime");
    group.throughput(Throughput::Bytes(msg.len() as u64));
    let options = mailsift::mail::StreamOptions::new(Default::default());
    group.bench_function("decode_message", |b| {
        b.iter(|| {
            black_box(mailsift::mail::decode_message(
                msg.as_bytes(),
                true,
                &options,
            ))
        })
    });
    group.finish();
}

/// `len` random octets as mail agents send them: base64 in 76-column CRLF lines.
fn base64_body(rng: &mut Rng, len: usize) -> Vec<u8> {
    use base64::Engine;
    let plain: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    let text = base64::engine::general_purpose::STANDARD.encode(plain);
    let mut out = Vec::with_capacity(text.len() / 76 * 78 + 78);
    for line in text.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// About `len` bytes of quoted-printable prose from `words`, non-ASCII octets and `=` escaped,
/// soft breaks at 76 columns, a hard break every few lines.
fn quoted_printable_body(rng: &mut Rng, len: usize, words: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 100);
    let mut col = 0;
    while out.len() < len {
        let word = words[rng.below(words.len())];
        let mut enc = Vec::new();
        for &b in word.as_bytes() {
            if b >= 0x80 || b == b'=' {
                enc.extend_from_slice(format!("={b:02X}").as_bytes());
            } else {
                enc.push(b);
            }
        }
        enc.push(b' ');
        if col + enc.len() > 75 {
            if rng.below(4) == 0 {
                out.extend_from_slice(b"\r\n");
            } else {
                out.extend_from_slice(b"=\r\n");
            }
            col = 0;
        }
        col += enc.len();
        out.extend_from_slice(&enc);
    }
    out
}

/// Feeds `input` to `dec` in `chunk`-byte pieces as a dissector would, touching each output.
fn stream(mut dec: BodyDecoder, input: &[u8], chunk: usize, scratch: &mut Vec<u8>) -> usize {
    let mut n = 0;
    for piece in input.chunks(chunk) {
        n += black_box(dec.feed(piece, scratch)).len();
    }
    n + dec.finish(scratch).len()
}

/// The streaming decoders against the one-shot ones of `transfer.rs`, on 8 MiB bodies.
fn decoders(c: &mut Criterion) {
    let mut rng = Rng::new(17);
    let b64 = base64_body(&mut rng, 6 << 20);
    // English text, where escapes are rare, and accented text with one every dozen bytes.
    let english = [
        "the",
        "invoice",
        "is",
        "attached",
        "please",
        "find",
        "meeting",
        "tomorrow",
        "at",
        "10:00",
        "regards",
        "and",
        "report",
        "for",
        "a=b",
        "quarterly",
        "review",
    ];
    let accented = [
        "the", "invoice", "is", "attached", "please", "find", "meeting", "café", "résumé",
        "tomorrow", "at", "10:00", "regards", "naïve", "über", "a=b", "and", "report",
    ];
    let qp = quoted_printable_body(&mut rng, 8 << 20, &english);
    let qp_accented = quoted_printable_body(&mut rng, 8 << 20, &accented);
    // A damaged copy: one stray byte every 4 KiB or so, forcing the lenient path around it.
    let mut b64_junk = b64.clone();
    for at in (0..b64_junk.len()).step_by(4001) {
        b64_junk[at] = b'!';
    }
    let mut scratch = Vec::with_capacity(64 << 10);
    for (input, fresh, oneshot) in [
        (
            &b64,
            BodyDecoder::Base64(Base64Decoder::new()),
            decoder::oneshot::base64 as fn(&[u8]) -> _,
        ),
        (
            &b64_junk,
            BodyDecoder::Base64(Base64Decoder::new()),
            decoder::oneshot::base64,
        ),
        (
            &qp,
            BodyDecoder::QuotedPrintable(QuotedPrintableDecoder::new()),
            decoder::oneshot::quoted_printable,
        ),
        (
            &qp_accented,
            BodyDecoder::QuotedPrintable(QuotedPrintableDecoder::new()),
            decoder::oneshot::quoted_printable,
        ),
    ] {
        let mut dec = fresh;
        let mut got = Vec::new();
        for piece in input.chunks(1460) {
            got.extend_from_slice(dec.feed(piece, &mut scratch));
        }
        got.extend_from_slice(dec.finish(&mut scratch));
        assert!(
            (got, dec.invalid()) == oneshot(input),
            "streaming and one-shot disagree"
        );
    }
    let mut group = c.benchmark_group("decoder");
    group.sample_size(20);
    let mut whole = Vec::with_capacity(b64.len());

    group.throughput(Throughput::Bytes(b64.len() as u64));
    group.bench_function("base64_oneshot", |b| {
        b.iter(|| black_box(decoder::oneshot::base64(&b64)).0.len())
    });
    group.bench_function("base64_whole", |b| {
        b.iter(|| {
            whole.clear();
            let mut d = Base64Decoder::new();
            d.feed(&b64, &mut whole);
            d.finish(&mut whole);
            black_box(whole.len())
        })
    });
    for chunk in [1460, 64 << 10] {
        group.bench_function(format!("base64_stream_{chunk}"), |b| {
            b.iter(|| {
                let d = BodyDecoder::Base64(Base64Decoder::new());
                stream(d, &b64, chunk, &mut scratch)
            })
        });
    }
    group.bench_function("base64_junk_oneshot", |b| {
        b.iter(|| black_box(decoder::oneshot::base64(&b64_junk)).0.len())
    });
    group.bench_function("base64_junk_stream_1460", |b| {
        b.iter(|| {
            let d = BodyDecoder::Base64(Base64Decoder::new());
            stream(d, &b64_junk, 1460, &mut scratch)
        })
    });

    for (name, text) in [("qp", &qp), ("qp_accented", &qp_accented)] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("{name}_oneshot"), |b| {
            b.iter(|| black_box(decoder::oneshot::quoted_printable(text)).0.len())
        });
        for chunk in [1460, 64 << 10] {
            group.bench_function(format!("{name}_stream_{chunk}"), |b| {
                b.iter(|| {
                    let d = BodyDecoder::QuotedPrintable(QuotedPrintableDecoder::new());
                    stream(d, text, chunk, &mut scratch)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, whole_pipeline, detection, stages, decoders);
criterion_main!(benches);
