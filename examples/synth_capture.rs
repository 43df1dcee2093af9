//! Writes a large synthetic capture of SMTP and POP3 sessions, for benchmarks.
//!
//! Usage: `cargo run --release --example synth_capture -- SIZE_MIB OUT.pcap [OTHER_PERCENT]`
//!
//! Sessions interleave (several open at once), messages carry text and base64 attachments,
//! and a few percent of sessions log in with cleartext passwords, so every stage of the
//! pipeline does real work. OTHER_PERCENT (default 0) of the bytes are non-mail downloads on
//! ports 80 and 443, as in real captures, which the engine should skip cheaply.

use mailsift::capture::workload::Workload;
use std::io::BufWriter;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(size), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: synth_capture SIZE_MIB OUT.pcap [OTHER_PERCENT]");
        std::process::exit(2);
    };
    let Ok(mib) = size.parse::<u64>() else {
        eprintln!("synth_capture: SIZE_MIB must be a number");
        std::process::exit(2);
    };
    let other_percent = match args.get(3).map(|p| p.parse::<u8>()) {
        None => 0,
        Some(Ok(p)) if p <= 95 => p,
        Some(_) => {
            eprintln!("synth_capture: OTHER_PERCENT must be 0 to 95");
            std::process::exit(2);
        }
    };
    let workload = Workload {
        target_bytes: mib << 20,
        other_percent,
        seed: 42,
    };
    let file = std::fs::File::create(out)?;
    let s = workload.write(BufWriter::with_capacity(1 << 20, file))?;
    eprintln!(
        "wrote {} mail sessions, {} other flows, {} packets, {} MiB to {out}",
        s.mail_sessions,
        s.other_flows,
        s.packets,
        s.bytes >> 20
    );
    Ok(())
}
