//! The command line's security options end to end: `--fail-on` exit statuses, `--hashcat`
//! lines recomputed from the known passwords, `--redact` leaving no secret in any output,
//! and run-level findings in the export document.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{captures_dir, temp_path, write_pcap};
use hmac::{Hmac, KeyInit as _, Mac as _};
use mailsift::capture::synth::{Conversation, SynthPacket};
use mailsift::time::Timestamp;
use md5::{Digest as _, Md5};
use std::path::PathBuf;
use std::process::{Command, Output};

fn mailsift(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailsift"))
        .args(args)
        .output()
        .expect("run mailsift")
}

fn capture(name: &str) -> String {
    captures_dir().join(name).display().to_string()
}

fn status(out: &Output) -> i32 {
    out.status.code().expect("exit status")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ----- --fail-on ------------------------------------------------------------------------

#[test]
fn fail_on_exits_3_only_when_a_finding_reaches_the_severity() {
    let user_pass = capture("pop3-user-pass.pcap");
    // Findings alone never change the exit status.
    assert_eq!(status(&mailsift(&["analyze", &user_pass])), 0);
    assert_eq!(status(&mailsift(&["export", &user_pass])), 0);
    for cmd in ["analyze", "export"] {
        for level in ["info", "low", "medium", "high"] {
            let out = mailsift(&[cmd, "--fail-on", level, &user_pass]);
            assert_eq!(status(&out), 3, "{cmd} --fail-on {level}: {}", stderr(&out));
        }
    }
    // APOP outside TLS is a medium finding, nothing is high.
    let apop = capture("pop3-apop.pcap");
    assert_eq!(
        status(&mailsift(&["export", "--fail-on", "high", &apop])),
        0
    );
    assert_eq!(
        status(&mailsift(&["export", "--fail-on", "medium", &apop])),
        3
    );
}

#[test]
fn fail_on_is_quiet_for_a_clean_capture_and_unreadable_input_stays_1() {
    // STLS used before USER/PASS, TLS 1.3: nothing to report.
    let stls = capture("pop3-stls.pcap");
    let out = mailsift(&["analyze", "--fail-on", "info", &stls]);
    assert_eq!(status(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains("Findings: none"));

    let missing = temp_path("missing.pcap").display().to_string();
    assert_eq!(
        status(&mailsift(&["export", "--fail-on", "info", &missing])),
        1
    );
    assert_eq!(
        status(&mailsift(&["export", "--fail-on", "severe", &stls])),
        2,
        "an unknown severity is a usage error"
    );
}

// ----- --hashcat ------------------------------------------------------------------------

fn password_of(user: &str) -> &'static str {
    match user {
        "alice@mailsift.test" => "Wonderland-42",
        "bob" => "Builder-7",
        other => panic!("unexpected user {other}"),
    }
}

fn hmac_md5_hex(key: &str, data: &[u8]) -> String {
    let mut mac = Hmac::<Md5>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn hashcat_lines_recompute_from_the_known_passwords() {
    let file = temp_path("hashes.txt");
    let out = mailsift(&[
        "analyze",
        "--hashcat",
        &file.display().to_string(),
        &capture("pop3-apop.pcap"),
        &capture("pop3-auth-plain.pcap"),
        &capture("mixed.pcapng"),
        &capture("pop3-user-pass.pcap"),
    ]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(&file).expect("hashcat file");
    let _ = std::fs::remove_file(&file);
    let lines: Vec<&str> = text.lines().collect();
    // APOP (alice), CRAM-MD5 (alice, pop3-auth-plain session 3), CRAM-MD5 (bob, mixed.pcapng);
    // the cleartext logins give no line.
    assert_eq!(lines.len(), 3, "{text}");
    let (mut apop, mut cram) = (0, 0);
    for line in lines {
        if let Some(rest) = line.strip_prefix("$cram_md5$") {
            // Mode 10200: $cram_md5$base64(challenge)$base64(user SP hex digest).
            let (challenge, response) = rest.split_once('$').expect("two fields");
            let challenge = STANDARD.decode(challenge).expect("base64 challenge");
            let response = String::from_utf8(STANDARD.decode(response).expect("base64")).unwrap();
            let (user, digest) = response.rsplit_once(' ').expect("user SP digest");
            assert_eq!(
                digest,
                hmac_md5_hex(password_of(user), &challenge),
                "{line}"
            );
            cram += 1;
        } else {
            // Mode 20: md5($salt.$pass) as hex:salt, the salt being the APOP timestamp.
            let (digest, timestamp) = line.split_once(':').expect("hash:salt");
            assert!(timestamp.starts_with('<') && timestamp.ends_with("@mail.mailsift.test>"));
            let recomputed = hex::encode(Md5::digest(format!("{timestamp}Wonderland-42")));
            assert_eq!(digest, recomputed, "{line}");
            apop += 1;
        }
    }
    assert_eq!((apop, cram), (1, 2));
    let err = stderr(&out);
    assert!(
        err.contains("hashcat: 3 lines in")
            && err.contains("1 for -m 20 (APOP")
            && err.contains("2 for -m 10200 (CRAM-MD5)"),
        "{err}"
    );
}

#[test]
fn hashcat_on_export_and_with_nothing_to_crack() {
    let file = temp_path("none.txt");
    let out = mailsift(&[
        "export",
        "--hashcat",
        &file.display().to_string(),
        &capture("pop3-user-pass.pcap"),
    ]);
    assert_eq!(status(&out), 0);
    assert_eq!(std::fs::read_to_string(&file).expect("file"), "");
    let _ = std::fs::remove_file(&file);
    assert!(stderr(&out).contains("no crackable challenge-response exchange"));
}

#[test]
fn hashcat_and_redact_are_refused_together() {
    let file = temp_path("refused.txt");
    let out = mailsift(&[
        "analyze",
        "--redact",
        "--hashcat",
        &file.display().to_string(),
        &capture("pop3-apop.pcap"),
    ]);
    assert_eq!(status(&out), 2);
    assert!(stderr(&out).contains("cannot be used with"));
    assert!(!file.exists(), "nothing written");
}

// ----- --redact -------------------------------------------------------------------------

const POP3_CAPTURES: [&str; 6] = [
    "pop3-user-pass.pcap",
    "pop3-apop.pcap",
    "pop3-auth-plain.pcap",
    "pop3-stls.pcap",
    "pop3-mailbox.pcap",
    "mixed.pcapng",
];

/// Every secret on the wire in the POP3 captures: the passwords and their base64 forms from
/// captures/README.md, and the APOP / CRAM-MD5 digests as the unredacted export shows them.
fn pop3_secrets() -> Vec<String> {
    let mut secrets: Vec<String> = [
        "Wonderland-42",
        "Builder-7",
        "Not-The-Password-0",
        "V29uZGVybGFuZC00Mg",
        "QnVpbGRlci03",
        "Tm90LVRoZS1QYXNzd29yZC0w",
        "AGFsaWNlQG1haWxzaWZ0LnRlc3QAV29uZGVybGFuZC00Mg",
        "AGJvYgBCdWlsZGVyLTc",
    ]
    .map(String::from)
    .to_vec();
    let mut args = vec!["export".to_string()];
    args.extend(POP3_CAPTURES.map(capture));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let doc: serde_json::Value = serde_json::from_slice(&mailsift(&args).stdout).expect("json");
    for s in doc["sessions"].as_array().expect("sessions") {
        for c in s["credentials"].as_array().expect("credentials") {
            if let Some(r) = c["response"].as_str() {
                secrets.push(r.to_string());
            }
        }
        for e in s["events"].as_array().expect("events") {
            if e["type"] == "auth_data" && e["from"] == "client" {
                secrets.push(e["raw"].as_str().expect("raw").to_string());
            }
        }
    }
    assert!(
        secrets.len() >= 12,
        "digests and SASL lines found: {secrets:?}"
    );
    secrets
}

#[test]
fn redact_leaves_no_secret_in_any_output() {
    let secrets = pop3_secrets();
    let captures: Vec<String> = POP3_CAPTURES.map(capture).to_vec();
    for mode in [
        &["analyze", "--redact"][..],
        &["export", "--redact"],
        &["export", "--redact", "--ndjson"],
    ] {
        let mut args: Vec<&str> = mode.to_vec();
        args.extend(captures.iter().map(String::as_str));
        let out = mailsift(&args);
        assert_eq!(status(&out), 0, "{mode:?}: {}", stderr(&out));
        let text = format!("{}{}", stdout(&out), stderr(&out));
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{mode:?} shows {s}");
        }
        assert!(text.contains("<redacted>"), "{mode:?}");
        // Who logged in is not a secret.
        assert!(text.contains("alice@mailsift.test"), "{mode:?}");
    }
    // Without --redact the secrets are there: the test would notice a capture that lost them.
    let mut args = vec!["analyze"];
    args.extend(captures.iter().map(String::as_str));
    let plain = stdout(&mailsift(&args));
    assert!(plain.contains("Wonderland-42") && plain.contains("Not-The-Password-0"));
}

// ----- run-level findings -----------------------------------------------------------------

fn failed_login(n: u64, password: &str) -> Vec<SynthPacket> {
    Conversation::new(
        format!("203.0.113.9:{}", 41000 + n).parse().unwrap(),
        "192.0.2.110:110".parse().unwrap(),
    )
    .start(Timestamp::from_parts(1_700_000_000 + 10 * n as i64, 0))
    .server("+OK POP3 ready\r\n")
    .client("USER root\r\n")
    .server("+OK\r\n")
    .client(format!("PASS {password}\r\n"))
    .server(if password == "s3cret-right" {
        "+OK Logged in.\r\n"
    } else {
        "-ERR [AUTH] Authentication failed.\r\n"
    })
    .client("QUIT\r\n")
    .server("+OK Logging out\r\n")
    .packets()
}

fn brute_force_capture() -> PathBuf {
    let mut pkts = Vec::new();
    for n in 0..5 {
        pkts.extend(failed_login(n, &format!("guess-{n}")));
    }
    pkts.extend(failed_login(5, "s3cret-right"));
    write_pcap("brute.pcap", &pkts)
}

#[test]
fn run_level_findings_reach_the_document_the_ndjson_stream_and_the_table() {
    let pcap = brute_force_capture();
    let path = pcap.display().to_string();

    let doc: serde_json::Value =
        serde_json::from_slice(&mailsift(&["export", &path]).stdout).expect("json");
    let rules: Vec<&str> = doc["findings"]
        .as_array()
        .expect("top-level findings")
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["brute-force", "login-after-failures"]);
    assert_eq!(doc["findings"][0]["client"], "203.0.113.9");
    assert_eq!(doc["findings"][0]["sessions"].as_array().unwrap().len(), 5);
    assert_eq!(doc["findings"][1]["severity"], "high");
    // The login after the failures is named, with the failures before it.
    let details = &doc["findings"][1]["details"];
    let login_session = details["login"]["session"].as_u64().expect("login session");
    assert_eq!(
        doc["findings"][1]["sessions"].as_array().unwrap().last(),
        Some(&serde_json::json!(login_session))
    );
    assert_eq!(details["login"]["ts"], doc["findings"][1]["ts"]);
    let failures = details["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 5);
    assert!(failures.iter().all(|f| f["session"] != login_session));
    assert!(details.get("more_failures").is_none());

    let ndjson = stdout(&mailsift(&["export", "--ndjson", &path]));
    let last: serde_json::Value =
        serde_json::from_str(ndjson.lines().last().unwrap()).expect("json line");
    assert_eq!(last["run_findings"][0]["rule"], "brute-force");
    assert_eq!(ndjson.lines().count(), 7, "6 sessions and the run line");

    let table = stdout(&mailsift(&["analyze", "--wide", &path]));
    assert!(
        table.contains("brute-force") && table.contains("run"),
        "{table}"
    );
    assert!(table.contains("5 failed logins from 203.0.113.9 in 5 sessions"));

    // A higher threshold: no brute force, and the later success is only medium.
    let doc: serde_json::Value = serde_json::from_slice(
        &mailsift(&["export", "--brute-force-threshold", "6", &path]).stdout,
    )
    .expect("json");
    assert_eq!(doc["findings"].as_array().unwrap().len(), 1);
    assert_eq!(doc["findings"][0]["rule"], "login-after-failures");
    assert_eq!(doc["findings"][0]["severity"], "medium");
    let _ = std::fs::remove_file(pcap);
}

#[test]
fn hashcat_line_for_smtp_cram_md5_recomputes_from_the_password() {
    let file = temp_path("smtp-cram.txt");
    let out = mailsift(&[
        "export",
        "--hashcat",
        &file.display().to_string(),
        &capture("smtp-auth-cram-md5.pcap"),
    ]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(&file).expect("hashcat file");
    let _ = std::fs::remove_file(&file);
    let line = text.trim_end();
    assert_eq!(text.lines().count(), 1, "{text}");
    let rest = line.strip_prefix("$cram_md5$").expect("mode 10200 line");
    let (challenge, response) = rest.split_once('$').expect("two fields");
    let challenge = STANDARD.decode(challenge).expect("base64");
    let response = String::from_utf8(STANDARD.decode(response).expect("base64")).unwrap();
    let (user, digest) = response.rsplit_once(' ').expect("user SP digest");
    assert_eq!(user, "alice@mailsift.test");
    assert_eq!(digest, hmac_md5_hex("Wonderland-42", &challenge));
}
