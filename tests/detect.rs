//! Mail found by content on ports no mapping names, and other traffic left alone.
//!
//! The streams are written by the project's synthesiser; the dialogues follow what Postfix and
//! Dovecot send (see `captures/README.md`).

mod common;

use common::{run_with, temp_path};
use mailsift::capture::synth::{Conversation, SynthPacket, pcap_bytes};
use mailsift::engine::EngineConfig;
use mailsift::session::{Protocol, SessionRecord};
use mailsift::time::Timestamp;
use std::path::PathBuf;

fn smtp_on(port: u16, start: i64) -> Vec<SynthPacket> {
    Conversation::new(
        "192.0.2.10:40001".parse().unwrap(),
        format!("192.0.2.20:{port}").parse().unwrap(),
    )
    .start(Timestamp(start))
    .server("220 mail.example ESMTP Postfix\r\n")
    .client("EHLO client.example\r\n")
    .server("250-mail.example\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
    .client("AUTH PLAIN AGFsaWNlAFdvbmRlcmxhbmQtNDI=\r\n")
    .server("235 2.7.0 Authentication successful\r\n")
    .client("MAIL FROM:<alice@example.org>\r\n")
    .server("250 2.1.0 Ok\r\n")
    .client("RCPT TO:<bob@example.org>\r\n")
    .server("250 2.1.5 Ok\r\n")
    .client("DATA\r\n")
    .server("354 End data with <CR><LF>.<CR><LF>\r\n")
    .client("Subject: on 2525\r\n\r\nhello\r\n.\r\n")
    .server("250 2.0.0 Ok: queued\r\n")
    .client("QUIT\r\n")
    .server("221 2.0.0 Bye\r\n")
    .packets()
}

fn pop3_on(port: u16, start: i64) -> Vec<SynthPacket> {
    Conversation::new(
        "192.0.2.11:40002".parse().unwrap(),
        format!("192.0.2.21:{port}").parse().unwrap(),
    )
    .start(Timestamp(start))
    .server("+OK Dovecot ready.\r\n")
    .client("USER alice\r\n")
    .server("+OK\r\n")
    .client("PASS Wonderland-42\r\n")
    .server("+OK Logged in.\r\n")
    .client("QUIT\r\n")
    .server("+OK Logging out.\r\n")
    .packets()
}

/// Traffic that must not be taken for mail: HTTP, an FTP greeting (`220` too), a TLS hello and
/// a binary protocol.
fn other_traffic(start: i64) -> Vec<SynthPacket> {
    let conv = |client: &str, server: &str| {
        Conversation::new(client.parse().unwrap(), server.parse().unwrap()).start(Timestamp(start))
    };
    let mut out = Vec::new();
    out.extend(
        conv("192.0.2.12:40003", "192.0.2.22:8080")
            .client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
            .packets(),
    );
    out.extend(
        conv("192.0.2.13:40004", "192.0.2.23:21")
            .server("220 ftp.example FTP ready\r\n")
            .client("USER anonymous\r\n")
            .server("331 Please specify the password.\r\n")
            .packets(),
    );
    out.extend(
        conv("192.0.2.14:40005", "192.0.2.24:443")
            .client([0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0])
            .server([0x16, 0x03, 0x03, 0x00, 0x02, 2, 0])
            .packets(),
    );
    out.extend(
        conv("192.0.2.15:40006", "192.0.2.25:5432")
            .client([0u8, 0, 0, 8, 4, 210, 22, 47])
            .server(b"N")
            .packets(),
    );
    out
}

fn capture(name: &str, pkts: &[SynthPacket]) -> PathBuf {
    let p = temp_path(name);
    std::fs::write(&p, pcap_bytes(pkts)).unwrap();
    p
}

fn analyse(path: &PathBuf, no_detection: bool) -> Vec<SessionRecord> {
    let config = EngineConfig {
        no_detection,
        ..EngineConfig::default()
    };
    let (mut s, _) = run_with(std::slice::from_ref(path), config);
    s.sort_by_key(|r| r.id);
    s
}

#[test]
fn smtp_and_pop3_on_other_ports_are_found_and_nothing_else_is() {
    let mut pkts = other_traffic(1_000_000_000);
    pkts.extend(smtp_on(2525, 2_000_000_000));
    pkts.extend(pop3_on(8110, 3_000_000_000));
    pkts.extend(other_traffic(4_000_000_000));
    let path = capture("detect-mixed.pcap", &pkts);
    let found = analyse(&path, false);
    let summary: Vec<(Protocol, u16, bool)> = found
        .iter()
        .map(|r| (r.protocol, r.server.port, r.detected_by_content))
        .collect();
    assert_eq!(
        summary,
        [(Protocol::Smtp, 2525, true), (Protocol::Pop3, 8110, true)]
    );
    let smtp = &found[0];
    assert_eq!(smtp.credentials.len(), 1);
    assert_eq!(
        smtp.credentials[0].password.as_deref(),
        Some("Wonderland-42")
    );
    assert_eq!(smtp.messages.len(), 1);
    assert!(smtp.findings.iter().any(|f| f.rule == "cleartext-password"));
    let pop3 = &found[1];
    assert_eq!(pop3.pop3.as_ref().unwrap().user.as_deref(), Some("alice"));
    assert!(pop3.anomalies.is_empty(), "{:?}", pop3.anomalies);
    assert!(analyse(&path, true).is_empty(), "--no-detect");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_detected_session_equals_the_same_session_on_its_own_port() {
    let detected = capture("detect-2525.pcap", &smtp_on(2525, 1_000_000_000));
    let standard = capture("detect-25.pcap", &smtp_on(25, 1_000_000_000));
    let (a, b) = (analyse(&detected, false), analyse(&standard, false));
    let strip = |r: &SessionRecord| {
        let mut v = serde_json::to_value(r).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("server");
        o.remove("detected_by_content");
        // Finding texts name the server port; the rules must agree.
        let rules: Vec<String> = r.findings.iter().map(|f| f.rule.clone()).collect();
        o.insert("findings".into(), serde_json::json!(rules));
        v
    };
    assert_eq!(a.len(), 1);
    assert_eq!(strip(&a[0]), strip(&b[0]));
    for p in [detected, standard] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn detection_works_when_only_the_client_side_or_a_greeting_is_seen() {
    // The client's EHLO decides alone (the server side was not captured).
    let client_only: Vec<SynthPacket> = smtp_on(2600, 1_000_000_000)
        .into_iter()
        // Ethernet, then the IPv4 source address at bytes 26..30: the client's packets only.
        .filter(|p| p.data.get(26..30) == Some(&[192, 0, 2, 10][..]))
        .collect();
    let path = capture("detect-client.pcap", &client_only);
    assert_eq!(analyse(&path, false).len(), 1);
    let _ = std::fs::remove_file(&path);
    // A POP3 session picked up mid-stream, without its handshake.
    let mid = Conversation::new(
        "192.0.2.16:40007".parse().unwrap(),
        "192.0.2.26:9110".parse().unwrap(),
    )
    .without_handshake()
    .server("+OK ready\r\n")
    .client("CAPA\r\n")
    .server("+OK\r\nUSER\r\n.\r\n")
    .packets();
    let path = capture("detect-mid.pcap", &mid);
    let got = analyse(&path, false);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].protocol, Protocol::Pop3);
    assert_eq!(got[0].server.port, 9110, "the lower port is the server's");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_public_capture_of_smtp_on_2525_is_found() {
    // Suricata's own test of URL extraction runs SMTP on port 2525; it expects this URL.
    let Some(corpus) = common::corpus_dir() else {
        eprintln!("../shared/corpus absent; skipped");
        return;
    };
    let path = corpus.join("suricata-verify/tests/smtp-url-base64/smtp-url-b64.pcap");
    let found = analyse(&path, false);
    assert_eq!(found.len(), 1);
    assert!(found[0].detected_by_content);
    assert_eq!(found[0].protocol, Protocol::Smtp);
    assert_eq!(found[0].server.port, 2525);
    let urls: Vec<String> = found[0]
        .messages
        .iter()
        .flat_map(|m| {
            serde_json::to_value(m).unwrap()["urls"]
                .clone()
                .as_array()
                .cloned()
        })
        .flatten()
        .map(|u| u.to_string())
        .collect();
    assert!(
        urls.iter()
            .any(|u| u.contains("http://codashop-free01.duckdns.org/")),
        "{urls:?}"
    );
    assert!(analyse(&path, true).is_empty());
}

#[test]
fn a_side_that_talks_on_without_showing_mail_is_dropped_with_bounded_holding() {
    // An FTP-like greeting decides nothing; the server then sends far more than the probe
    // holds while the client says nothing: the flow is let go, not buffered.
    let mut text = String::from("220 files.example ready\r\n");
    while text.len() < 64 << 10 {
        text.push_str("220-more of a very long banner line\r\n");
    }
    let pkts = Conversation::new(
        "192.0.2.17:40008".parse().unwrap(),
        "192.0.2.27:2121".parse().unwrap(),
    )
    .server(&text)
    .packets();
    let path = capture("detect-talker.pcap", &pkts);
    let (sessions, summary) = run_with(std::slice::from_ref(&path), EngineConfig::default());
    assert!(sessions.is_empty());
    assert_eq!(summary.stats.flows_not_mail, 1);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn after_a_flow_found_not_mail_closes_its_address_pair_can_carry_mail() {
    // HTTP, then (after the FINs) SMTP on the same addresses and ports: the first flow's
    // later bytes are skipped, and the new connection is a session of its own.
    let http = Conversation::new(
        "192.0.2.10:40001".parse().unwrap(),
        "192.0.2.20:2525".parse().unwrap(),
    )
    .start(Timestamp(1_000_000_000))
    .isn(3_000_000_000, 9_000)
    .client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    .server(vec![b'x'; 20_000])
    .client("GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
    .server(vec![b'y'; 20_000])
    .packets();
    let mut pkts = http;
    pkts.extend(smtp_on(2525, 3_000_000_000));
    let path = temp_path("not-mail-then-mail.pcap");
    std::fs::write(&path, pcap_bytes(&pkts)).unwrap();
    let (sessions, summary) = run_with(&[path], EngineConfig::default());
    assert_eq!(summary.stats.flows_not_mail, 1);
    assert_eq!(sessions.len(), 1);
    let rec = &sessions[0];
    assert_eq!(rec.protocol, Protocol::Smtp);
    assert!(rec.detected_by_content);
    assert_eq!(rec.credentials.len(), 1);
    assert_eq!(rec.messages.len(), 1);
    // The HTTP flow's packets are not counted as mail packets.
    assert_eq!(
        summary.stats.mail_packets,
        rec.packets.client + rec.packets.server
    );
}

/// The real capture of mail through proxies (see `captures/README.md`, mail-via-proxy).
#[test]
fn mail_through_proxies_is_followed_and_refused_tunnels_are_recorded() {
    use mailsift::proto::tunnel::TunnelKind as K;
    let path = common::captures_dir().join("mail-via-proxy.pcap");
    let (mut sessions, _) = run_with(std::slice::from_ref(&path), EngineConfig::default());
    sessions.sort_by_key(|r| r.id);
    let got: Vec<_> = sessions
        .iter()
        .map(|s| {
            let t = s.tunnel.as_deref().expect("every session is a tunnel");
            let commands = s
                .events
                .iter()
                .filter(|e| matches!(e.kind, mailsift::session::EventKind::Command { .. }))
                .count();
            (
                s.protocol,
                t.kind,
                t.target_port,
                t.established,
                commands > 0,
            )
        })
        .collect();
    use Protocol::{Pop3, Smtp};
    assert_eq!(
        got,
        vec![
            (Smtp, K::HttpConnect, Some(587), Some(true), true),
            (Pop3, K::HttpConnect, Some(110), Some(false), false),
            (Pop3, K::Socks5, Some(110), Some(true), true),
            (Smtp, K::Socks5, Some(25), Some(true), true),
            (Pop3, K::Socks4, Some(110), Some(true), true),
            (Smtp, K::Socks4a, Some(2525), Some(true), true),
            (Smtp, K::Socks5, Some(25), Some(false), false),
        ]
    );
    // Three messages went through; the proxy logins are credentials of their own.
    assert_eq!(sessions.iter().map(|s| s.messages.len()).sum::<usize>(), 3);
    let proxy_logins: Vec<_> = sessions
        .iter()
        .flat_map(|s| &s.credentials)
        .filter(|c| c.is_proxy_login())
        .map(|c| c.mechanism.as_str())
        .collect();
    assert_eq!(proxy_logins, ["HTTP-BASIC", "SOCKS5"]);
    let cfg = EngineConfig {
        no_detection: true,
        ..EngineConfig::default()
    };
    assert!(run_with(&[path], cfg).0.is_empty());
}

/// A SOCKS5 tunnel to 465 carries implicit TLS; one to 443 carrying TLS is not mail.
#[test]
fn a_tunnel_target_port_chooses_how_the_dialogue_inside_starts() {
    let hello = b"\x16\x03\x01\x00\x2e\x01\x00\x00\x2a\x03\x03".to_vec();
    let tunnel = |port: u16| {
        let mut req = b"\x05\x01\x00\x05\x01\x00\x01\xc0\x00\x02\x14".to_vec();
        req.extend_from_slice(&port.to_be_bytes());
        Conversation::new(
            "192.0.2.10:40100".parse().unwrap(),
            "192.0.2.30:1080".parse().unwrap(),
        )
        .client(&req[..3])
        .server(b"\x05\x00")
        .client(&req[3..])
        .server(b"\x05\x00\x00\x01\xc0\x00\x02\x1e\x04\x38")
        .client(&hello)
        .packets()
    };
    let run = |name: &str, port: u16| {
        let p = temp_path(name);
        std::fs::write(&p, pcap_bytes(&tunnel(port))).unwrap();
        run_with(&[p], EngineConfig::default()).0
    };
    let s = run("socks-465.pcap", 465);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].protocol, Protocol::Smtp);
    assert!(
        s[0].tls.is_some(),
        "TLS from the first byte inside the tunnel"
    );
    assert!(run("socks-443.pcap", 443).is_empty());
}
