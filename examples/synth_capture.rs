//! Writes a large synthetic capture of SMTP and POP3 sessions, for benchmarks.
//!
//! Usage: `cargo run --release --example synth_capture -- SIZE_MIB OUT.pcap [OTHER_PERCENT] [FLAGS]`
//!
//! Without flags this is the capture of `cargo bench` and the README's older figures
//! (`capture::workload::Workload`): eight sessions open at a time, messages of 6 to 60 KiB with
//! text and a base64 attachment, a few percent of sessions logging in with cleartext
//! passwords. OTHER_PERCENT (default 0, at most 95) of the bytes are non-mail downloads on
//! ports 80 and 443, as in real captures, which the engine should skip cheaply.
//!
//! Any of the flags below (but `--seed`) switches to the busy-link mix of `bench/run.sh`
//! (`capture::workload::Mix`): many sessions open at once, their packets interleaved, messages
//! of a log-uniform size with base64 attachments, quoted-printable text, `multipart/mixed` and
//! nested `multipart/alternative`; SMTP sessions with AUTH PLAIN or LOGIN in clear text, POP3
//! sessions with USER/PASS and RETR; some logins fail first.
//!
//! - `--concurrent N`: connections open at once (mix default 500).
//! - `--min-message BYTES`, `--max-message BYTES`: message size range (defaults 2048 and
//!   2097152; the smallest is at least 1024).
//! - `--pop3-percent P`: share of mail sessions that are POP3 (default 30).
//! - `--auth-percent P`: share of SMTP sessions that log in (default 40).
//! - `--manifest FILE`: writes what the capture holds as JSON (the settings; totals of
//!   sessions, messages, attachments, credentials, packets, bytes, connections open at once;
//!   and every session with its client and server address, credentials, and messages with
//!   size, SHA-256 and attachments with decoded size and SHA-256). Implies the mix.
//! - `--mix`: the mix with its defaults.
//! - `--mostly-other`: instead, nine flows of ten not mail (HTTP on 80, TLS on 443, random
//!   bytes on high ports, 4 to 64 KiB each) and one SMTP or POP3 session: the capture of the
//!   content-detection benchmark (`mailsift export` against `mailsift export --no-detect`).
//! - `--seed S`: seed of either generator (default 42). The same arguments always give the
//!   same bytes.
//!
//! Example: `synth_capture 1024 /tmp/big.pcap --concurrent 500 --min-message 2048
//! --max-message 2097152 --manifest /tmp/big.json`

use clap::Parser;
use mailsift::capture::workload::{Mix, Workload};
use std::io::BufWriter;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "synth_capture", about = "Writes a synthetic SMTP/POP3 capture")]
struct Args {
    /// Size of the capture in MiB.
    size_mib: u64,
    /// Where to write the pcap.
    out: PathBuf,
    /// Share of the bytes (0 to 95) that are non-mail downloads.
    #[arg(default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=95))]
    other_percent: u8,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The busy-link mix, with its defaults for the options not given.
    #[arg(long)]
    mix: bool,
    /// Connections open at once (mix).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    concurrent: Option<u64>,
    /// Smallest message in bytes (mix).
    #[arg(long)]
    min_message: Option<usize>,
    /// Largest message in bytes (mix).
    #[arg(long)]
    max_message: Option<usize>,
    /// Share of mail sessions that are POP3 (mix).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    pop3_percent: Option<u8>,
    /// Share of SMTP sessions that log in (mix).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    auth_percent: Option<u8>,
    /// Write what the capture holds, as JSON, to this file (mix).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Nine flows of ten not mail (HTTP, TLS on 443, random bytes), for content detection.
    #[arg(long, conflicts_with = "mix")]
    mostly_other: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target_bytes = args.size_mib << 20;
    let file = std::fs::File::create(&args.out)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    if args.mostly_other {
        use std::io::Write;
        let bytes = mailsift::capture::workload::mostly_other(target_bytes, args.seed);
        out.write_all(&bytes)?;
        out.flush()?;
        eprintln!("wrote {} MiB to {}", bytes.len() >> 20, args.out.display());
        return Ok(());
    }
    let mix = args.mix
        || args.concurrent.is_some()
        || args.min_message.is_some()
        || args.max_message.is_some()
        || args.pop3_percent.is_some()
        || args.auth_percent.is_some()
        || args.manifest.is_some();
    if !mix {
        let workload = Workload {
            target_bytes,
            other_percent: args.other_percent,
            seed: args.seed,
        };
        let s = workload.write(out)?;
        eprintln!(
            "wrote {} mail sessions, {} other flows, {} packets, {} MiB to {}",
            s.mail_sessions,
            s.other_flows,
            s.packets,
            s.bytes >> 20,
            args.out.display()
        );
        return Ok(());
    }
    let d = Mix::default();
    let settings = Mix {
        target_bytes,
        seed: args.seed,
        concurrent: args.concurrent.map_or(d.concurrent, |c| c as usize),
        min_message: args.min_message.unwrap_or(d.min_message),
        max_message: args.max_message.unwrap_or(d.max_message),
        pop3_percent: args.pop3_percent.unwrap_or(d.pop3_percent),
        auth_percent: args.auth_percent.unwrap_or(d.auth_percent),
        other_percent: args.other_percent,
    };
    if settings.max_message < settings.min_message {
        anyhow::bail!("--max-message must be at least --min-message");
    }
    let man = settings.write(out)?;
    let t = &man.totals;
    eprintln!(
        "wrote {} mail sessions ({} SMTP, {} POP3), {} other flows, {} messages, {} attachments, \
         {} credentials ({} failed), {} packets, {} MiB, up to {} connections open at once \
         (mean {}) to {}",
        t.sessions,
        t.smtp_sessions,
        t.pop3_sessions,
        t.other_flows,
        t.messages,
        t.attachments,
        t.credentials,
        t.failed_credentials,
        t.packets,
        t.bytes >> 20,
        t.max_open,
        t.mean_open,
        args.out.display()
    );
    if let Some(path) = &args.manifest {
        let f = BufWriter::new(std::fs::File::create(path)?);
        serde_json::to_writer(f, &man)?;
    }
    Ok(())
}
