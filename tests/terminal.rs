//! The terminal report of `analyze` at 80, 120 and 200 columns, for every bundled capture:
//! no line is wider than the terminal, and the addresses, start times and secrets the JSON
//! export records each appear whole on one line. Also the ASCII fallback, colour rules and
//! the row limit.

mod common;

use common::*;
use mailsift::capture::synth::Conversation;
use mailsift::time::Timestamp;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const WIDTHS: [usize; 3] = [80, 120, 200];

/// Runs the binary with a clean locale and terminal environment plus `env`.
fn mailsift(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailsift"));
    cmd.args(args);
    for var in ["COLUMNS", "LC_ALL", "LC_CTYPE", "LANG", "TERM", "NO_COLOR"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let o = cmd.output().expect("runs");
    assert!(
        o.status.success() || o.status.code() == Some(3),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The key log that goes with a capture, if the folder has one.
fn args_for(capture: &Path, command: &str) -> Vec<String> {
    let mut args = vec![command.to_string(), capture.display().to_string()];
    let keys = capture.with_extension("keys");
    if keys.is_file() {
        args.extend(["--keylog".to_string(), keys.display().to_string()]);
    }
    args
}

fn analyze(capture: &Path, width: usize) -> String {
    let columns = width.to_string();
    let o = mailsift(
        &args_for(capture, "analyze"),
        &[("COLUMNS", &columns), ("LC_ALL", "C.UTF-8")],
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

fn export(capture: &Path) -> serde_json::Value {
    let o = mailsift(&args_for(capture, "export"), &[]);
    serde_json::from_slice(&o.stdout).expect("json")
}

fn endpoint(v: &serde_json::Value) -> String {
    let ip = v["ip"].as_str().unwrap();
    let port = v["port"].as_u64().unwrap();
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// `HH:MM:SS.mmm` of an RFC 3339 time: what a shortened table shows, and part of the full
/// form, so finding it on one line holds whichever form was chosen.
fn time_of_day(rfc3339: &str) -> String {
    rfc3339[11..23].to_string()
}

/// What must appear whole on one line of the report of `doc`.
fn unbreakable(doc: &serde_json::Value) -> Vec<String> {
    let mut want = Vec::new();
    for s in doc["sessions"].as_array().unwrap() {
        want.push(endpoint(&s["client"]));
        want.push(endpoint(&s["server"]));
        want.push(time_of_day(s["first_seen"].as_str().unwrap()));
        for c in s["credentials"].as_array().unwrap() {
            // The credentials table shows secrets up to 60 characters, in the clear here: a
            // password, or the response to a challenge.
            for field in ["username", "password", "response"] {
                if let Some(v) = c[field].as_str()
                    && !v.is_empty()
                    && v.chars().count() <= 60
                    && !v.chars().any(char::is_control)
                {
                    want.push(v.to_string());
                }
            }
        }
    }
    want
}

#[test]
fn every_capture_fits_80_120_and_200_columns_and_keeps_values_whole() {
    let captures = bundled_captures();
    assert!(captures.len() >= 20, "the bundled captures are there");
    for capture in &captures {
        let name = capture.file_name().unwrap().to_string_lossy();
        let doc = export(capture);
        let want = unbreakable(&doc);
        for width in WIDTHS {
            let text = analyze(capture, width);
            assert!(text.starts_with("Summary\n"), "{name} at {width}:\n{text}");
            for line in text.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{name} at {width}: {} chars: {line}",
                    line.chars().count()
                );
            }
            for value in &want {
                assert!(
                    text.lines().any(|l| l.contains(value.as_str())),
                    "{name} at {width}: {value:?} is not whole on any line:\n{text}"
                );
            }
        }
    }
}

#[test]
fn the_summary_comes_first_and_reads_the_run() {
    let text = analyze(&captures_dir().join("tls-pop3-matrix.pcap"), 120);
    let summary: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
    let has = |label: &str, want: &str| {
        assert!(
            summary
                .iter()
                .any(|l| l.trim_start().starts_with(label) && l.contains(want)),
            "{label} {want}:\n{text}"
        )
    };
    has("input", "tls-pop3-matrix.pcap (pcap, 520 packets");
    has("time span", "2026-12-07 18:53:25.912 to 18:53:33.576 UTC");
    has("sessions", "15 (0 SMTP, 15 POP3): 15 by port, 0 by content");
    has("TLS", "15 sessions (8 STARTTLS, 7 implicit), 15 decrypted");
    has(
        "found",
        "15 credentials (0 in clear text), 15 messages, 45 attachments",
    );
    has("findings", "15 low");
    let top = text
        .find("Top findings by rule (2 rules)")
        .expect("top findings");
    assert!(top < text.find("\nSessions (15)").expect("sessions table"));
    assert!(text.contains("self-signed-certificate ┆ 13"), "{text}");
}

#[test]
fn plurals_agree_with_their_numbers() {
    let text = analyze(&captures_dir().join("smtp-auth-plain.pcap"), 200);
    assert!(
        text.contains("Credentials (2 attempts in 2 rows)"),
        "{text}"
    );
    let text = analyze(&captures_dir().join("pop3-apop.pcap"), 200);
    assert!(text.contains("Credentials (1 attempt in 1 row)"), "{text}");
    assert!(!text.contains("0 [-]"), "{text}");
}

#[test]
fn anomalies_are_grouped_by_kind_with_their_sessions() {
    let capture = captures_dir().join("crafted-data-gaps.pcap");
    let doc = export(&capture);
    let mut kinds: Vec<String> = doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["anomalies"].as_array().unwrap().iter())
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds.dedup();
    assert!(!kinds.is_empty(), "the capture has anomalies");
    let text = analyze(&capture, 120);
    let at = text.find("Anomalies by kind (").expect("anomalies table");
    for kind in &kinds {
        assert!(text[at..].contains(kind.as_str()), "{kind}:\n{text}");
    }
}

#[test]
fn ascii_borders_outside_utf8_and_on_dumb_terminals() {
    let capture = captures_dir().join("smtp-plain.pcap");
    let args = args_for(&capture, "analyze");
    let c = mailsift(&args, &[("COLUMNS", "80"), ("LC_ALL", "C")]);
    let text = String::from_utf8(c.stdout).unwrap();
    assert!(text.is_ascii(), "{text}");
    assert!(text.contains("+----") && text.contains("| id "), "{text}");
    assert!(text.contains("->"), "arrows in ASCII: {text}");
    // LC_ALL decides before LANG.
    let c = mailsift(&args, &[("LC_ALL", "POSIX"), ("LANG", "en_US.UTF-8")]);
    assert!(c.stdout.is_ascii());
    let dumb = mailsift(&args, &[("LC_ALL", "C.UTF-8"), ("TERM", "dumb")]);
    assert!(dumb.stdout.is_ascii());
    let utf8 = mailsift(&args, &[("LANG", "en_US.UTF-8")]);
    assert!(String::from_utf8(utf8.stdout).unwrap().contains("┌─"));
}

#[test]
fn colour_only_when_asked_for_off_a_terminal() {
    let capture = captures_dir().join("smtp-auth-plain.pcap");
    let mut args = args_for(&capture, "analyze");
    let utf8 = ("LC_ALL", "C.UTF-8");
    let piped = mailsift(&args, &[utf8]);
    assert!(
        !piped.stdout.contains(&0x1b),
        "piped output has no escape codes"
    );
    let no_color = mailsift(&args, &[utf8, ("NO_COLOR", "1")]);
    assert!(!no_color.stdout.contains(&0x1b));
    args.push("--color=always".into());
    let forced = mailsift(&args, &[utf8, ("NO_COLOR", "1")]);
    let text = String::from_utf8(forced.stdout).unwrap();
    assert!(text.contains("\x1b["), "--color=always colours severities");
    args.pop();
    args.push("--color=never".into());
    assert!(!mailsift(&args, &[utf8]).stdout.contains(&0x1b));
}

fn many_sessions(n: u64) -> PathBuf {
    let mut pkts = Vec::new();
    for i in 0..n {
        pkts.extend(
            Conversation::new(
                format!("198.51.100.7:{}", 42000 + i).parse().unwrap(),
                "192.0.2.110:110".parse().unwrap(),
            )
            .start(Timestamp::from_parts(1_700_000_000 + i as i64, 0))
            .server("+OK ready\r\n")
            .client("QUIT\r\n")
            .server("+OK bye\r\n")
            .packets(),
        );
    }
    write_pcap("many.pcap", &pkts)
}

#[test]
fn long_tables_are_limited_and_say_how_to_see_the_rest() {
    let capture = many_sessions(55);
    let text = analyze(&capture, 100);
    assert!(text.contains("Sessions (55)"), "{text}");
    assert!(text.contains("15 more rows not shown: --wide"), "{text}");
    assert!(text.contains("198.51.100.7:42039") && !text.contains("198.51.100.7:42040"));
    let wide = mailsift(
        &[
            "analyze".to_string(),
            "--wide".to_string(),
            capture.display().to_string(),
        ],
        &[("COLUMNS", "100"), ("LC_ALL", "C.UTF-8")],
    );
    let wide = String::from_utf8(wide.stdout).unwrap();
    assert!(
        wide.contains("198.51.100.7:42054"),
        "--wide lists every session"
    );
    assert!(
        wide.contains("2023-11-14T22:13:20.000000Z"),
        "full times under --wide"
    );
    assert!(!wide.contains("more rows not shown"));
    let _ = std::fs::remove_file(capture);
}
