//! Writes a large synthetic capture of SMTP and POP3 sessions, for benchmarks.
//!
//! Usage: `cargo run --release --example synth_capture -- SIZE_MIB OUT.pcap`
//!
//! Sessions interleave (several open at once), messages carry text and base64 attachments,
//! and a few percent of sessions log in with cleartext passwords, so every stage of the
//! pipeline does real work.

use mailsift::capture::synth::{Conversation, PcapWriter, Rng};
use mailsift::time::Timestamp;
use std::io::BufWriter;

fn message(rng: &mut Rng, n: usize) -> String {
    let mut body = String::new();
    body.push_str(&format!(
        "From: Sender {n} <sender{n}@example.test>\r\nTo: rcpt{n}@example.test\r\n\
         Subject: =?UTF-8?B?UmVwb3J0IG5v?= {n}\r\nMessage-ID: <{n}@example.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n\
         --b{n}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ));
    for i in 0..(20 + rng.below(60)) {
        body.push_str(&format!(
            "Line {i} of the report, see https://example.test/r/{n}/{i} for details.\r\n"
        ));
    }
    body.push_str(&format!(
        "--b{n}\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"data{n}.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    ));
    let lines = 100 + rng.below(700);
    for _ in 0..lines {
        let mut l = String::with_capacity(78);
        for _ in 0..76 {
            let c =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[rng.below(64)];
            l.push(c as char);
        }
        body.push_str(&l);
        body.push_str("\r\n");
    }
    body.push_str(&format!("--b{n}--\r\n"));
    body
}

fn smtp(rng: &mut Rng, n: usize, start: Timestamp) -> Conversation {
    let client = format!(
        "10.{}.{}.{}:{}",
        n % 200,
        (n / 200) % 250,
        1 + n % 250,
        1024 + n % 60000
    );
    let mut c = Conversation::new(client.parse().unwrap(), "192.0.2.25:25".parse().unwrap())
        .start(start)
        .isn(rng.next_u64() as u32, rng.next_u64() as u32)
        .server("220 mx.example.test ESMTP\r\n")
        .client("EHLO client.example.test\r\n")
        .server("250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n");
    if n.is_multiple_of(20) {
        c = c
            .client("AUTH PLAIN AHVzZXIAcGFzc3dvcmQ=\r\n")
            .server("235 2.7.0 Authentication successful\r\n");
    }
    let msgs = 1 + rng.below(3);
    for m in 0..msgs {
        c = c
            .client(format!(
                "MAIL FROM:<sender{n}@example.test>\r\nRCPT TO:<rcpt{n}@example.test>\r\nDATA\r\n"
            ))
            .server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
            .client(format!("{}.\r\n", message(rng, n * 10 + m)))
            .server("250 2.0.0 Ok: queued\r\n");
    }
    c.client("QUIT\r\n").server("221 2.0.0 Bye\r\n")
}

fn pop3(rng: &mut Rng, n: usize, start: Timestamp) -> Conversation {
    let client = format!(
        "10.{}.{}.{}:{}",
        n % 200,
        (n / 200) % 250,
        1 + n % 250,
        1024 + n % 60000
    );
    let mut c = Conversation::new(client.parse().unwrap(), "192.0.2.110:110".parse().unwrap())
        .start(start)
        .isn(rng.next_u64() as u32, rng.next_u64() as u32)
        .server("+OK POP3 ready\r\n")
        .client(format!("USER user{n}\r\n"))
        .server("+OK\r\n")
        .client("PASS secret\r\n")
        .server("+OK Logged in.\r\n")
        .client("STAT\r\n")
        .server("+OK 2 4000\r\n");
    for i in 1..=2 {
        let m = message(rng, n * 10 + i);
        c = c
            .client(format!("RETR {i}\r\n"))
            .server(format!("+OK {} octets\r\n{m}.\r\n", m.len()));
    }
    c.client("QUIT\r\n").server("+OK Logging out.\r\n")
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(size), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: synth_capture SIZE_MIB OUT.pcap");
        std::process::exit(2);
    };
    let target: u64 = size.parse::<u64>().expect("size in MiB") << 20;
    let file = std::fs::File::create(out)?;
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, file), 1)?;
    let mut rng = Rng::new(42);
    let mut written = 24u64;
    let mut n = 0usize;
    let mut t = Timestamp::from_parts(1_700_000_000, 0);
    // Eight sessions at a time, their packets interleaved by time.
    while written < target {
        let mut pkts = Vec::new();
        for k in 0..8 {
            let conv = if (n + k).is_multiple_of(3) {
                pop3(&mut rng, n + k, t)
            } else {
                smtp(&mut rng, n + k, t)
            };
            pkts.extend(conv.packets());
            t = Timestamp(t.0 + 137_000);
        }
        pkts.sort_by_key(|p| p.ts);
        for p in &pkts {
            w.packet(p.ts, &p.data, p.orig_len)?;
            written += 16 + p.data.len() as u64;
        }
        n += 8;
        t = pkts.last().map_or(t, |p| Timestamp(p.ts.0 + 1_000_000));
    }
    w.finish()?;
    eprintln!("wrote {n} sessions, {} MiB to {out}", written >> 20);
    Ok(())
}
