//! `mailsift show --session ID` and `--format transcript` on the bundled captures: the header,
//! the transcript lines, decoded AUTH steps, gaps, TLS, redaction and the unknown-id error.

use std::path::PathBuf;
use std::process::{Command, Output};

fn capture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn mailsift(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailsift"))
        .args(args)
        .output()
        .expect("runs")
}

/// Standard output of a run that must succeed.
fn stdout_ok(args: &[&str]) -> String {
    let o = mailsift(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

/// The session records `export` writes, so ids are taken from the JSON, as a user would.
fn sessions(path: &str) -> Vec<serde_json::Value> {
    let json: serde_json::Value =
        serde_json::from_str(&stdout_ok(&["export", path])).expect("json");
    json["sessions"].as_array().expect("sessions").clone()
}

/// The id of the first session whose events satisfy `pred`.
fn id_where(path: &str, pred: impl Fn(&serde_json::Value) -> bool) -> String {
    sessions(path)
        .iter()
        .find(|s| s["events"].as_array().unwrap().iter().any(&pred))
        .map(|s| s["id"].to_string())
        .expect("a session matches")
}

fn show(path: &str, id: &str) -> String {
    stdout_ok(&["show", path, "--session", id])
}

#[test]
fn auth_plain_is_shown_decoded_with_its_message() {
    let path = capture("smtp-auth-plain.pcap");
    let id = id_where(&path, |e| {
        e["verb"] == "AUTH" && e["arg"].as_str().is_some_and(|a| a.contains(' '))
    });
    let out = show(&path, &id);
    assert!(
        out.starts_with(&format!("session {id}: SMTP 127.0.0.1:")),
        "{out}"
    );
    assert!(out.contains(" → 127.0.0.1:587\n"), "{out}");
    assert!(out.contains("  time     2026-11-26 10:46:05."), "{out}");
    assert!(out.contains("  state    closed"), "{out}");
    assert!(out.contains("  TLS      none"), "{out}");
    assert!(out.contains("  missing  none"), "{out}");
    // The raw initial response and, beside it, what the credential record holds.
    let auth = out
        .lines()
        .find(|l| l.contains("C: AUTH PLAIN "))
        .expect("AUTH line");
    assert!(
        auth.contains("AGFsaWNlQG1haWxzaWZ0LnRlc3QAV29uZGVybGFuZC00Mg=="),
        "{auth}"
    );
    assert!(
        auth.contains("[decoded: user \"alice@mailsift.test\", password \"Wonderland-42\"]"),
        "{auth}"
    );
    assert!(
        out.contains("S: 235 2.7.0 Authentication successful"),
        "{out}"
    );
    assert!(out.contains("S: 250-PIPELINING\n"), "{out}");
    assert!(
        out.contains("C: [message 1: 304 B, subject \"mailsift auth test\"]"),
        "{out}"
    );
    // Timestamps to the millisecond, the date only in the header.
    assert!(
        out.contains("\n  10:46:05.238 C: EHLO client.mailsift.test\n"),
        "{out}"
    );
    assert!(out.contains("credentials\n  10:46:05.238 PLAIN user alice@mailsift.test, secret Wonderland-42: succeeded, in clear text\n"), "{out}");
    assert!(
        out.contains("sha256    e603b1e587ec4992a613c76147880af8fa326f5c064f30645834de75aa4a0666"),
        "{out}"
    );
    assert!(out.contains("findings\n"), "{out}");
    assert!(
        out.contains("high cleartext-password: password for alice@mailsift.test"),
        "{out}"
    );
}

#[test]
fn auth_login_steps_are_decoded_one_by_one() {
    let path = capture("smtp-auth-login.pcap");
    let id = id_where(&path, |e| e["verb"] == "AUTH" && e["arg"] == "LOGIN");
    let out = show(&path, &id);
    assert!(out.contains("C: Ym9i  [decoded: user \"bob\"]"), "{out}");
    assert!(
        out.contains("C: QnVpbGRlci03  [decoded: password \"Builder-7\"]"),
        "{out}"
    );
    // The server's prompts are shown as sent; no credential speaks for them.
    assert!(out.contains("S: VXNlcm5hbWU6\n"), "{out}");
}

#[test]
fn pop3_user_pass_session() {
    let path = capture("pop3-user-pass.pcap");
    let id = id_where(&path, |e| e["verb"] == "PASS");
    let out = show(&path, &id);
    assert!(out.starts_with(&format!("session {id}: POP3 ")), "{out}");
    assert!(out.contains(" → 127.0.0.1:110\n"), "{out}");
    assert!(out.contains("S: +OK Dovecot (Debian) ready."), "{out}");
    assert!(out.contains("C: USER alice@mailsift.test\n"), "{out}");
    assert!(out.contains("C: PASS Wonderland-42\n"), "{out}");
    assert!(out.contains("S: +OK Logged in.\n"), "{out}");
    assert!(
        out.contains("USER user alice@mailsift.test, secret Wonderland-42: succeeded"),
        "{out}"
    );
}

#[test]
fn redact_masks_the_password_everywhere() {
    let path = capture("pop3-user-pass.pcap");
    let id = id_where(&path, |e| e["verb"] == "PASS");
    let out = stdout_ok(&["show", "--redact", &path, "--session", &id]);
    assert!(out.contains("C: PASS <redacted>\n"), "{out}");
    assert!(out.contains("secret <redacted>: succeeded"), "{out}");
    assert!(!out.contains("Wonderland-42"), "{out}");

    let path = capture("smtp-auth-plain.pcap");
    let out = stdout_ok(&["export", "--format", "transcript", "--redact", &path]);
    assert!(out.contains("C: AUTH PLAIN <redacted>"), "{out}");
    assert!(out.contains("password \"<redacted>\""), "{out}");
    assert!(!out.contains("Wonderland-42"), "{out}");
    assert!(!out.contains("Builder-7"), "{out}");
    assert!(!out.contains("AGFsaWNl"), "{out}");
}

#[test]
fn starttls_is_marked_and_decrypted_lines_are_marked() {
    let path = capture("smtp-starttls.pcap");
    let id = id_where(&path, |e| e["type"] == "tls_start");
    let out = show(&path, &id);
    assert!(out.contains("  TLS      STARTTLS from "), "{out}");
    assert!(out.contains("C: STARTTLS\n"), "{out}");
    let marker = out
        .lines()
        .find(|l| l.contains("-- TLS started (STARTTLS) / encrypted "))
        .expect("TLS marker");
    assert!(marker.ends_with(" bytes --"), "{marker}");
    assert!(!out.contains("[TLS]"), "{out}");

    let keys = capture("smtp-starttls.keys");
    let out = stdout_ok(&["show", &path, "--keylog", &keys, "--session", &id]);
    assert!(out.contains("decrypted: lines marked [TLS] --"), "{out}");
    assert!(
        out.contains("C: [TLS] EHLO client.mailsift.test\n"),
        "{out}"
    );
}

#[test]
fn a_gap_is_shown_inline() {
    let path = capture("crafted-data-gaps.pcap");
    let all = sessions(&path);
    let s = all
        .iter()
        .find(|s| {
            s["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "gap")
        })
        .expect("a session with a gap");
    let id = s["id"].to_string();
    let gap = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "gap")
        .unwrap()["bytes"]
        .clone();
    let out = show(&path, &id);
    assert!(
        out.contains(&format!("C: -- {gap} bytes missing --\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("  missing  client {gap} bytes")),
        "{out}"
    );
    assert!(out.contains(", incomplete]"), "{out}");
    assert!(out.contains("anomalies\n"), "{out}");
}

#[test]
fn several_sessions_come_in_the_order_asked() {
    let path = capture("smtp-auth-plain.pcap");
    let ids: Vec<String> = sessions(&path)
        .iter()
        .map(|s| s["id"].to_string())
        .collect();
    assert!(ids.len() >= 2);
    let out = stdout_ok(&["show", &path, "--session", &ids[1], "--session", &ids[0]]);
    let heads: Vec<&str> = out.lines().filter(|l| l.starts_with("session ")).collect();
    assert_eq!(heads.len(), 2, "{out}");
    assert!(
        heads[0].starts_with(&format!("session {}:", ids[1])),
        "{out}"
    );
    assert!(
        heads[1].starts_with(&format!("session {}:", ids[0])),
        "{out}"
    );
}

#[test]
fn an_unknown_id_is_status_1_naming_the_ids() {
    let path = capture("smtp-auth-plain.pcap");
    let ids: Vec<String> = sessions(&path)
        .iter()
        .map(|s| s["id"].to_string())
        .collect();
    let o = mailsift(&["show", &path, "--session", "999999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty(), "nothing printed on stdout");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("mailsift: no session has id 999999: the session ids are "),
        "{err}"
    );
    assert!(err.contains(&ids.join(", ")), "{err}");

    // With -o, no file is left behind either.
    let out = std::env::temp_dir().join(format!("mailsift-show-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let o = mailsift(&[
        "show",
        &path,
        "--session",
        "999999",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!out.exists());
    let o = mailsift(&[
        "show",
        &path,
        "--session",
        &ids[0],
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(
        written.starts_with(&format!("session {}: SMTP", ids[0])),
        "{written}"
    );
    let _ = std::fs::remove_file(&out);

    // Without --session the command line is incomplete: clap's status 2.
    let o = mailsift(&["show", &path]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn export_transcript_prints_every_session() {
    for name in [
        "smtp-auth-plain.pcap",
        "pop3-user-pass.pcap",
        "mixed.pcapng",
    ] {
        let path = capture(name);
        let all = sessions(&path);
        let out = stdout_ok(&["export", "--format", "transcript", &path]);
        for s in &all {
            let head = format!(
                "session {}: {} {}:{} → ",
                s["id"],
                s["protocol"].as_str().unwrap().to_ascii_uppercase(),
                s["client"]["ip"].as_str().unwrap(),
                s["client"]["port"]
            );
            assert!(out.contains(&head), "{name}: {head} missing in\n{out}");
        }
        let heads = out.lines().filter(|l| l.starts_with("session ")).count();
        assert_eq!(heads, all.len(), "{name}");
        assert_eq!(
            stdout_ok(&["analyze", "--format", "transcript", &path]),
            out,
            "{name}: analyze writes the same"
        );
    }
}

#[test]
fn a_session_is_found_by_its_uid_as_the_reports_give_it() {
    // The HTML report, the Zeek logs and ECS name session 24 `CO` (C, 24 in base 62).
    let path = capture("smtp-auth-plain.pcap");
    let by_id = show(&path, "24");
    assert!(by_id.starts_with("session 24:"), "{by_id}");
    assert_eq!(show(&path, "CO"), by_id);
    let bad = mailsift(&["show", &path, "--session", "C!"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("neither a session id"));
}
