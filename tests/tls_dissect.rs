//! Decrypted TLS sessions dissected end to end, with the key logs beside the captures.
//!
//! - Every session of the TLS matrix captures (SMTP STARTTLS on 25 and 587, SMTPS 465, POP3
//!   STLS on 110 and POP3S 995; TLS 1.3 and 1.2 with AES-GCM, ChaCha20-Poly1305 and CBC with
//!   and without encrypt-then-MAC; resumed sessions) reads inside TLS exactly as the same
//!   scenario reads in clear text: the same commands, credentials (now `encrypted`), message
//!   hashes and attachments.
//! - tshark, given the same key log, sees the same commands inside TLS as mailsift.
//! - Bad keys and damaged records: nothing is invented from bytes that did not authenticate.

mod common;

use common::{captures_dir, run_with, temp_path};
use mailsift::capture::transform::Capture;
use mailsift::engine::EngineConfig;
use mailsift::proto::tls::{DecryptionStatus, KeyStore};
use mailsift::session::{Direction, EventKind, SessionRecord};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// The bundled captures that have a key log.
const TLS_CAPTURES: [&str; 6] = [
    "smtp-starttls.pcap",
    "smtps-465.pcap",
    "pop3-stls.pcap",
    "pop3s-995.pcap",
    "tls-smtp-matrix.pcap",
    "tls-pop3-matrix.pcap",
];

fn capture(name: &str) -> PathBuf {
    captures_dir().join(name)
}

fn store(keys: &Path) -> Arc<KeyStore> {
    let (store, warnings) = KeyStore::open(&[keys.to_path_buf()], false).expect("key log");
    assert!(warnings.is_empty(), "{warnings:?}");
    Arc::new(store)
}

/// The sessions of `pcap`, decrypted with `keys` when given, in id order.
fn sessions(pcap: &Path, keys: Option<Arc<KeyStore>>) -> Vec<SessionRecord> {
    let mut config = EngineConfig::default();
    config.limits.keys = keys;
    let (mut s, _) = run_with(&[pcap.to_path_buf()], config);
    s.sort_by_key(|r| r.id);
    s
}

fn decrypted(name: &str) -> Vec<SessionRecord> {
    let pcap = capture(name);
    sessions(&pcap, Some(store(&pcap.with_extension("keys"))))
}

/// `VERB arg` of each client command, upper-cased verb; `inside` keeps only those read from
/// decrypted records.
fn commands(rec: &SessionRecord, inside: bool) -> Vec<String> {
    rec.events
        .iter()
        .filter(|e| !inside || e.tls)
        .filter_map(|e| match &e.kind {
            EventKind::Command { verb, arg } => Some(match arg {
                Some(a) => format!("{verb} {a}"),
                None => verb.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// What a message is, without where and when it travelled.
fn message_facts(rec: &SessionRecord) -> Vec<Value> {
    rec.messages
        .iter()
        .map(|m| {
            let mut v = serde_json::to_value(m).unwrap();
            let o = v.as_object_mut().unwrap();
            for k in [
                "first_seen",
                "last_seen",
                "index",
                "reply",
                "received",
                "mail_from",
                "rcpt_to",
                "number",
                "uidl",
            ] {
                o.remove(k);
            }
            v
        })
        .collect()
}

/// `(mechanism, user, password, success)` of a credential.
type CredentialFacts = (String, Option<String>, Option<String>, Option<bool>);

/// The facts of each credential, and whether all are encrypted.
fn credentials(rec: &SessionRecord) -> (Vec<CredentialFacts>, bool) {
    let list = rec
        .credentials
        .iter()
        .map(|c| {
            (
                c.mechanism.clone(),
                c.username.clone(),
                c.password.clone(),
                c.success,
            )
        })
        .collect();
    (list, rec.credentials.iter().all(|c| c.encrypted))
}

#[test]
fn smtp_inside_tls_reads_as_the_clear_text_scenario() {
    let clear = sessions(&capture("tls-smtp-clear.pcap"), None);
    assert_eq!(clear.len(), 2, "AUTH PLAIN and AUTH LOGIN references");
    let matrix = decrypted("tls-smtp-matrix.pcap");
    assert_eq!(matrix.len(), 20);
    for rec in &matrix {
        let tls = rec.tls.as_ref().expect("TLS session");
        let d = tls.decryption.as_ref().expect("decryption tried");
        let what = format!(
            "session {} port {} {:?}",
            rec.id, rec.server.port, tls.handshake.cipher
        );
        assert_eq!(d.status, DecryptionStatus::Decrypted, "{what}");
        assert!(tls.decrypted, "{what}");
        assert_eq!(
            d.records_failed.client + d.records_failed.server,
            0,
            "{what}"
        );
        // Port 587 logs in with AUTH LOGIN, 25 and 465 with AUTH PLAIN.
        let twin = if rec.server.port == 587 {
            &clear[1]
        } else {
            &clear[0]
        };
        assert_eq!(commands(rec, true), commands(twin, false), "{what}");
        let (mine, encrypted) = credentials(rec);
        let (theirs, clear_encrypted) = credentials(twin);
        assert_eq!(mine, theirs, "{what}");
        assert!(encrypted && !clear_encrypted, "{what}");
        assert_eq!(message_facts(rec), message_facts(twin), "{what}");
        assert_eq!(rec.messages.len(), 1, "{what}");
        assert_eq!(
            rec.messages[0].reply.as_ref().map(|r| r.code),
            Some(250),
            "{what}"
        );
        // A password inside TLS is not a clear-text password.
        assert!(
            !rec.findings.iter().any(|f| f.rule == "cleartext-password"),
            "{what}: {:?}",
            rec.findings
        );
        assert!(
            twin.findings.iter().any(|f| f.rule == "cleartext-password"),
            "the clear twin is flagged"
        );
        let summary = rec.smtp.as_ref().unwrap();
        assert!(summary.authenticated && summary.quit, "{what}");
        assert_eq!(summary.messages_accepted, 1, "{what}");
        // The TLS 1.3 certificate only travels encrypted; a resumed session sends none.
        assert_eq!(
            tls.handshake.certificate.is_some(),
            !tls.handshake.resumed,
            "{what}"
        );
    }
    // Streams 9 (TLS 1.2 ticket) and 14 (TLS 1.3 PSK) resume earlier sessions.
    let resumed: Vec<usize> = (0..matrix.len())
        .filter(|&i| matrix[i].tls.as_ref().unwrap().handshake.resumed)
        .collect();
    assert_eq!(resumed, [9, 14]);
}

#[test]
fn pop3_inside_tls_reads_as_the_clear_text_scenario() {
    let clear = sessions(&capture("tls-pop3-clear.pcap"), None);
    assert_eq!(clear.len(), 1);
    let twin = &clear[0];
    let matrix = decrypted("tls-pop3-matrix.pcap");
    assert_eq!(matrix.len(), 15);
    let resumed: Vec<usize> = (0..matrix.len())
        .filter(|&i| matrix[i].tls.as_ref().unwrap().handshake.resumed)
        .collect();
    assert_eq!(resumed, [2, 11], "PSK in stream 2, ticket in stream 11");
    // STLS clients ask for CAPA before the upgrade, so it is left out of the comparison.
    let without_capa =
        |list: Vec<String>| -> Vec<String> { list.into_iter().filter(|c| c != "CAPA").collect() };
    for rec in &matrix {
        let tls = rec.tls.as_ref().unwrap();
        let what = format!(
            "session {} port {} {:?}",
            rec.id, rec.server.port, tls.handshake.cipher
        );
        assert_eq!(
            tls.decryption.as_ref().map(|d| d.status),
            Some(DecryptionStatus::Decrypted),
            "{what}"
        );
        assert_eq!(
            without_capa(commands(rec, true)),
            without_capa(commands(twin, false)),
            "{what}"
        );
        let (mine, encrypted) = credentials(rec);
        assert_eq!(mine, credentials(twin).0, "{what}");
        assert!(encrypted, "{what}");
        assert_eq!(message_facts(rec), message_facts(twin), "{what}");
        assert_eq!(
            tls.handshake.certificate.is_some(),
            !tls.handshake.resumed,
            "{what}"
        );
        let (p, q) = (rec.pop3.as_ref().unwrap(), twin.pop3.as_ref().unwrap());
        assert_eq!(p.user, q.user, "{what}");
        assert_eq!(p.mailbox.retrieved, q.mailbox.retrieved, "{what}");
        assert_eq!(p.state, q.state, "{what}");
    }
}

#[test]
fn events_say_whether_they_came_from_inside_tls() {
    for name in TLS_CAPTURES {
        for rec in decrypted(name) {
            let start = rec
                .events
                .iter()
                .position(|e| matches!(e.kind, EventKind::TlsStart { .. }))
                .expect("TLS start event");
            let (before, after) = rec.events.split_at(start + 1);
            assert!(before.iter().all(|e| !e.tls), "{name} {}", rec.id);
            let protocol: Vec<_> = after
                .iter()
                .filter(|e| {
                    matches!(
                        e.kind,
                        EventKind::Command { .. }
                            | EventKind::Reply { .. }
                            | EventKind::Status { .. }
                    )
                })
                .collect();
            assert!(
                !protocol.is_empty(),
                "{name} {}: nothing read inside TLS",
                rec.id
            );
            assert!(protocol.iter().all(|e| e.tls), "{name} {}", rec.id);
        }
    }
}

/// tshark's commands per TCP stream with the key log, as `VERB param` (verbs upper-cased).
fn tshark_commands(pcap: &Path, keys: &Path) -> Option<Vec<Vec<String>>> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .arg("-o")
        .arg(format!("tls.keylog_file:{}", keys.display()))
        .args([
            "-Y",
            "smtp.req.command || pop.request.command",
            "-T",
            "fields",
        ])
        .args([
            "-e",
            "tcp.stream",
            "-e",
            "smtp.req.command",
            "-e",
            "smtp.req.parameter",
        ])
        .args(["-e", "pop.request.command", "-e", "pop.request.parameter"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut streams: Vec<Vec<String>> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let stream: usize = f.first()?.parse().ok()?;
        let (verb, param) = match (f.get(1), f.get(3)) {
            (Some(v), _) if !v.is_empty() => (*v, f.get(2).copied().unwrap_or("")),
            (_, Some(v)) if !v.is_empty() => (*v, f.get(4).copied().unwrap_or("")),
            _ => continue,
        };
        if streams.len() <= stream {
            streams.resize(stream + 1, Vec::new());
        }
        let verb = verb.to_ascii_uppercase();
        streams[stream].push(if param.is_empty() {
            verb
        } else {
            format!("{verb} {param}")
        });
    }
    Some(streams)
}

#[test]
fn tshark_sees_the_same_commands_inside_tls() {
    if Command::new("tshark").arg("-v").output().is_err() {
        eprintln!("tshark not installed; skipped");
        return;
    }
    for name in TLS_CAPTURES {
        let pcap = capture(name);
        let Some(theirs) = tshark_commands(&pcap, &pcap.with_extension("keys")) else {
            panic!("tshark failed on {name}");
        };
        let ours = decrypted(name);
        assert_eq!(ours.len(), theirs.len(), "{name}: sessions");
        for (rec, theirs) in ours.iter().zip(&theirs) {
            // tshark reads STARTTLS as "STAR" + "TLS"; compare what follows the upgrade.
            let inside = commands(rec, true);
            let tail = &theirs[theirs.len() - inside.len().min(theirs.len())..];
            assert_eq!(inside, tail, "{name} session {}", rec.id);
            assert!(inside.len() >= 4, "{name} session {}: {inside:?}", rec.id);
        }
    }
}

/// A key log whose secrets are all changed in their last hex digit.
fn altered_keys(keys: &Path) -> PathBuf {
    let text = std::fs::read_to_string(keys).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let mut chars: Vec<char> = line.chars().collect();
        if let Some(last) = chars.last_mut() {
            *last = if *last == '0' { '1' } else { '0' };
        }
        out.extend(chars);
        out.push('\n');
    }
    let path = temp_path(&format!(
        "altered-{}",
        keys.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn wrong_secrets_invent_nothing() {
    for name in TLS_CAPTURES {
        let pcap = capture(name);
        let plain = sessions(&pcap, None);
        let bad = altered_keys(&pcap.with_extension("keys"));
        let got = sessions(&pcap, Some(store(&bad)));
        let _ = std::fs::remove_file(&bad);
        assert_eq!(plain.len(), got.len());
        for (p, g) in plain.iter().zip(&got) {
            let tls = g.tls.as_ref().unwrap();
            let d = tls.decryption.as_ref().unwrap();
            assert_eq!(d.status, DecryptionStatus::Failed, "{name} {}", g.id);
            assert!(!tls.decrypted);
            assert_eq!(d.plaintext_bytes.client + d.plaintext_bytes.server, 0);
            assert!(d.records_failed.client + d.records_failed.server > 0);
            assert!(g.has_anomaly("tls_records_undecrypted"), "{name} {}", g.id);
            // Everything else is as without a key log.
            assert_eq!(g.events, p.events, "{name} {}", g.id);
            assert_eq!(g.credentials, p.credentials);
            assert_eq!(g.messages, p.messages);
        }
    }
}

#[test]
fn another_sessions_key_is_no_key() {
    let pcap = capture("pop3s-995.pcap");
    let got = sessions(&pcap, Some(store(&capture("smtps-465.keys"))));
    let plain = sessions(&pcap, None);
    for (g, p) in got.iter().zip(&plain) {
        let d = g.tls.as_ref().unwrap().decryption.as_ref().unwrap();
        assert_eq!(d.status, DecryptionStatus::NoKey);
        assert!(g.has_anomaly("tls_no_key"));
        assert_eq!(g.events, p.events);
    }
}

/// The capture with one byte flipped in the `nth` TLS application_data record the server
/// sent whose first bytes lie in one segment: its authentication tag no longer matches.
fn tamper_server_record(cap: &Capture, server_port: u16, nth: usize) -> Capture {
    let mut frames = cap.frames.clone();
    let mut seen = 0;
    for i in 0..frames.len() {
        let Some(tcp) = cap.tcp(i) else { continue };
        if tcp.src().1 != server_port || tcp.payload.len() <= 21 {
            continue;
        }
        if tcp.payload[0] != 23 || tcp.payload[1] != 3 {
            continue;
        }
        seen += 1;
        if seen == nth {
            let mut payload = tcp.payload.to_vec();
            payload[20] ^= 0x40;
            frames[i].data = tcp.rebuild(tcp.seq(), tcp.flags(), &payload);
            return cap.with_frames(frames);
        }
    }
    panic!("no server application_data record number {nth}");
}

#[test]
fn a_record_whose_tag_fails_is_a_hole_not_data() {
    let pcap = capture("pop3s-995.pcap");
    let keys = store(&pcap.with_extension("keys"));
    let good = sessions(&pcap, Some(keys.clone()));
    let cap = Capture::read(&pcap).unwrap();
    // The first segments hold the tickets and the greeting; the fifth carries a reply.
    let damaged = tamper_server_record(&cap, 995, 5);
    let path = temp_path("tampered-pop3s.pcap");
    std::fs::write(&path, damaged.to_pcap()).unwrap();
    let got = sessions(&path, Some(keys));
    let _ = std::fs::remove_file(&path);
    let (g, o) = (&got[0], &good[0]);
    let d = g.tls.as_ref().unwrap().decryption.as_ref().unwrap();
    assert_eq!(d.status, DecryptionStatus::Partial);
    assert_eq!(d.records_failed.server, 1);
    assert_eq!(d.records_failed.client, 0);
    assert!(g.has_anomaly("tls_records_undecrypted"));
    // The client's side is untouched; the server's lost exactly one record's worth, which the
    // dissector inside was told about (a gap), and it invented no reply of its own.
    assert_eq!(commands(g, true), commands(o, true));
    let replies = |r: &SessionRecord| {
        r.events
            .iter()
            .filter(|e| e.from == Direction::Server && e.tls)
            .filter(|e| matches!(e.kind, EventKind::Status { .. }))
            .count()
    };
    assert!(replies(g) < replies(o), "a reply was in the damaged record");
    assert!(
        g.events.iter().any(|e| e.tls
            && e.from == Direction::Server
            && matches!(e.kind, EventKind::Gap { .. })),
        "the hole is a gap inside TLS"
    );
    assert!(
        d.plaintext_bytes.server
            < o.tls
                .as_ref()
                .unwrap()
                .decryption
                .as_ref()
                .unwrap()
                .plaintext_bytes
                .server
    );
}

#[test]
fn a_truncated_capture_keeps_what_was_decrypted() {
    let pcap = capture("tls-smtp-matrix.pcap");
    let keys = store(&pcap.with_extension("keys"));
    let bytes = std::fs::read(&pcap).unwrap();
    // Cut in the middle of a packet record, about two thirds in.
    let path = temp_path("truncated-matrix.pcap");
    std::fs::write(&path, &bytes[..bytes.len() * 2 / 3 + 7]).unwrap();
    let got = sessions(&path, Some(keys));
    let _ = std::fs::remove_file(&path);
    assert!(got.len() >= 10, "{} sessions", got.len());
    let done = got
        .iter()
        .filter(|r| r.tls.as_ref().is_some_and(|t| t.decrypted))
        .count();
    assert!(done >= 10, "{done} sessions decrypted");
}

#[test]
fn bytes_waiting_for_hellos_that_never_come_are_bounded() {
    use mailsift::capture::synth::{Conversation, pcap_bytes};
    // 400 KiB of application_data-shaped records from the client of an implicit-TLS port,
    // with a key log but no hello at all: the backlog stops at its bound and says so.
    let mut records = Vec::new();
    while records.len() < 400 << 10 {
        records.extend_from_slice(&[23, 3, 3, 0x10, 0x00]);
        records.extend(std::iter::repeat_n(0xab, 0x1000));
    }
    let pkts = Conversation::new(
        "192.0.2.30:40100".parse().unwrap(),
        "192.0.2.40:465".parse().unwrap(),
    )
    .client(&records)
    .packets();
    let path = temp_path("tls-backlog.pcap");
    std::fs::write(&path, pcap_bytes(&pkts)).unwrap();
    let got = sessions(&path, Some(store(&capture("smtps-465.keys"))));
    let _ = std::fs::remove_file(&path);
    assert_eq!(got.len(), 1);
    let tls = got[0].tls.as_ref().unwrap();
    let d = tls.decryption.as_ref().unwrap();
    assert_eq!(d.status, DecryptionStatus::HandshakeIncomplete);
    assert!(!tls.decrypted);
    assert!(
        got[0].has_anomaly("tls_decrypt_backlog"),
        "{:?}",
        got[0].anomalies
    );
    assert_eq!(tls.encrypted_bytes.client, records.len() as u64);
}
