//! Large synthetic captures for benchmarks: interleaved SMTP and POP3 sessions carrying MIME
//! messages with base64 attachments, optionally mixed with bulk non-mail TCP traffic.
//!
//! Real captures are mostly not mail, so [`Workload::other_percent`] adds HTTP-like and
//! TLS-like downloads on ports 80 and 443 that the engine must skip cheaply. Everything is
//! derived from a seed, so the same arguments always give the same bytes.
//!
//! [`Workload`] writes eight sessions at a time with messages of 6 to 60 KiB (the captures of
//! `cargo bench`); [`Mix`] keeps hundreds open at once with messages of KiB to MiB, and says
//! in a [`Manifest`] everything it wrote (the captures of `bench/run.sh`).

pub mod mix;

pub use mix::{Manifest, Mix};

use super::synth::{Conversation, PcapWriter, Rng, SynthPacket};
use crate::time::Timestamp;
use std::io::{self, Write};

/// What a synthetic capture holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Approximate size of the capture file in bytes.
    pub target_bytes: u64,
    /// Share (0 to 95) of the capture's bytes that are non-mail TCP downloads.
    pub other_percent: u8,
    /// Seed of the generator.
    pub seed: u64,
}

/// What [`Workload::write`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkloadSummary {
    /// Mail sessions (SMTP and POP3).
    pub mail_sessions: u64,
    /// Non-mail TCP connections.
    pub other_flows: u64,
    /// Packets written.
    pub packets: u64,
    /// Bytes of the capture file.
    pub bytes: u64,
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A multipart message: a text part with URLs and a base64 attachment of 6 to 60 KiB.
pub fn message(rng: &mut Rng, n: usize) -> String {
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
        for _ in 0..76 {
            body.push(char::from(BASE64_ALPHABET[rng.below(64)]));
        }
        body.push_str("\r\n");
    }
    body.push_str(&format!("--b{n}--\r\n"));
    body
}

fn client_addr(n: usize) -> std::net::SocketAddr {
    let ip = std::net::Ipv4Addr::new(
        10,
        (n % 200) as u8,
        ((n / 200) % 250) as u8,
        (1 + n % 250) as u8,
    );
    std::net::SocketAddr::from((ip, (1024 + n % 60000) as u16))
}

fn server_addr(last: u8, port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from((std::net::Ipv4Addr::new(192, 0, 2, last), port))
}

/// An SMTP session: EHLO, sometimes AUTH PLAIN, one to three messages, QUIT.
fn smtp(rng: &mut Rng, n: usize, start: Timestamp) -> Conversation {
    let mut c = Conversation::new(client_addr(n), server_addr(25, 25))
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

/// A POP3 session: USER/PASS, STAT, two RETRs, QUIT.
fn pop3(rng: &mut Rng, n: usize, start: Timestamp) -> Conversation {
    let mut c = Conversation::new(client_addr(n), server_addr(110, 110))
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

/// A bulk download on port 80 (an HTTP response) or 443 (opaque bytes) of about `size` bytes.
fn download(rng: &mut Rng, n: usize, start: Timestamp, size: usize) -> Conversation {
    let tls = n.is_multiple_of(2);
    let port = if tls { 443 } else { 80 };
    let mut body = Vec::with_capacity(size + 128);
    if !tls {
        body.extend_from_slice(
            format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").as_bytes(),
        );
    }
    // Cheap filler: a random 4 KiB block repeated, so generation stays fast.
    let block: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
    while body.len() < size {
        let take = (size - body.len()).min(block.len());
        body.extend_from_slice(&block[..take]);
    }
    let request = if tls {
        vec![0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00]
    } else {
        format!("GET /file/{n} HTTP/1.1\r\nHost: cdn.example.test\r\n\r\n").into_bytes()
    };
    Conversation::new(client_addr(n + 7), server_addr(80, port))
        .start(start)
        .isn(rng.next_u64() as u32, rng.next_u64() as u32)
        .client(request)
        .server(body)
}

/// A flow that is not mail, of about `size` bytes from the server: kind `n % 3` is an HTTP
/// download on port 80, a TLS session on 443 or random bytes both ways on a high port.
fn other_flow(rng: &mut Rng, n: usize, start: Timestamp, size: usize) -> Conversation {
    match n % 3 {
        0 | 1 => download(rng, n, start, size),
        _ => {
            let noise = |rng: &mut Rng, len: usize| -> Vec<u8> {
                (0..len).map(|_| rng.next_u64() as u8).collect()
            };
            let port = 20_000 + (n % 40_000) as u16;
            let hello = noise(rng, 64);
            let body = noise(rng, size);
            Conversation::new(client_addr(n + 7), server_addr(90, port))
                .start(start)
                .isn(rng.next_u64() as u32, rng.next_u64() as u32)
                .client(hello)
                .server(body)
        }
    }
}

/// A capture of about `target_bytes` in which nine flows of ten are not mail (HTTP, TLS on
/// 443 and random bytes on other ports, 4 to 64 KiB each) and the tenth is an SMTP or POP3
/// session: what content detection must skip cheaply.
pub fn mostly_other(target_bytes: u64, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(target_bytes as usize + (1 << 20));
    // Writing to a Vec cannot fail.
    let Ok(mut w) = PcapWriter::new(&mut out, 1) else {
        return Vec::new();
    };
    let mut rng = Rng::new(seed);
    let mut t = Timestamp::from_parts(1_700_000_000, 0);
    let (mut n, mut written) = (0usize, 24u64);
    while written < target_bytes {
        let mail = if n.is_multiple_of(20) {
            pop3(&mut rng, n, t)
        } else {
            smtp(&mut rng, n, t)
        };
        let mut pkts = mail.packets();
        for k in 1..10 {
            let size = 4096 + rng.below(60 * 1024);
            let start = Timestamp(t.0 + k as i64 * 50_000);
            pkts.extend(other_flow(&mut rng, n + k, start, size).packets());
        }
        pkts.sort_by_key(|p| p.ts);
        for p in &pkts {
            let _ = w.packet(p.ts, &p.data, p.orig_len);
            written += 16 + p.data.len() as u64;
        }
        n += 10;
        t = pkts.last().map_or(t, |p| Timestamp(p.ts.0 + 1_000_000));
    }
    let _ = w.finish();
    out
}

impl Workload {
    /// A capture of `target_bytes` of mail only.
    pub fn mail_only(target_bytes: u64) -> Self {
        Workload {
            target_bytes,
            other_percent: 0,
            seed: 42,
        }
    }

    /// Writes the capture as classic pcap (Ethernet, microseconds) to `out`.
    pub fn write<W: Write>(&self, out: W) -> io::Result<WorkloadSummary> {
        let mut w = PcapWriter::new(out, 1)?;
        let mut rng = Rng::new(self.seed);
        let mut summary = WorkloadSummary {
            bytes: 24,
            ..WorkloadSummary::default()
        };
        let other = u64::from(self.other_percent.min(95));
        let mut n = 0usize;
        let mut t = Timestamp::from_parts(1_700_000_000, 0);
        // Eight mail sessions at a time, their packets interleaved by time with the downloads.
        while summary.bytes < self.target_bytes {
            let mut pkts: Vec<SynthPacket> = Vec::new();
            let mut mail_bytes = 0u64;
            for k in 0..8 {
                let conv = if (n + k).is_multiple_of(3) {
                    pop3(&mut rng, n + k, t)
                } else {
                    smtp(&mut rng, n + k, t)
                };
                let before = pkts.len();
                pkts.extend(conv.packets());
                mail_bytes += pkts[before..]
                    .iter()
                    .map(|p| 16 + p.data.len() as u64)
                    .sum::<u64>();
                t = Timestamp(t.0 + 137_000);
            }
            summary.mail_sessions += 8;
            if other > 0 {
                // Payload of about other / (100 - other) times the mail bytes, in four downloads.
                let want = mail_bytes * other / (100 - other);
                let each = (want / 4).max(1) as usize;
                for k in 0..4i64 {
                    let start = Timestamp(t.0 - 8 * 137_000 + k * 200_000);
                    pkts.extend(download(&mut rng, n + k as usize, start, each).packets());
                    summary.other_flows += 1;
                }
            }
            pkts.sort_by_key(|p| p.ts);
            for p in &pkts {
                w.packet(p.ts, &p.data, p.orig_len)?;
                summary.bytes += 16 + p.data.len() as u64;
                summary.packets += 1;
            }
            n += 8;
            t = pkts.last().map_or(t, |p| Timestamp(p.ts.0 + 1_000_000));
        }
        w.finish()?;
        Ok(summary)
    }

    /// The capture as bytes in memory.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.target_bytes as usize + (1 << 20));
        // Writing to a Vec cannot fail.
        let _ = self.write(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_workload_gives_same_bytes_of_about_the_asked_size() {
        let w = Workload::mail_only(2 << 20);
        let a = w.to_bytes();
        assert_eq!(a, w.to_bytes());
        assert!(
            a.len() as u64 >= 2 << 20 && a.len() < 4 << 20,
            "{}",
            a.len()
        );
    }

    #[test]
    fn other_percent_adds_non_mail_flows_in_that_share() {
        let w = Workload {
            target_bytes: 4 << 20,
            other_percent: 75,
            seed: 7,
        };
        let mut buf = Vec::new();
        let s = w.write(&mut buf).expect("write");
        assert!(s.other_flows > 0);
        assert_eq!(s.bytes, buf.len() as u64);
        // The mail sessions come in groups of 8, each about a quarter of the bytes.
        let mail_only = Workload::mail_only(4 << 20)
            .write(Vec::new())
            .expect("write");
        assert!(
            s.mail_sessions * 2 < mail_only.mail_sessions,
            "{s:?} {mail_only:?}"
        );
    }
}
