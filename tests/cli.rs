//! Command-line behaviour: errors name the file, exit codes, output formats.

mod common;

use common::*;
use mailsift::capture::synth::{Conversation, pcap_bytes};
use std::process::{Command, Output, Stdio};

fn mailsift(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailsift"))
        .args(args)
        .output()
        .expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn good_capture(name: &str) -> std::path::PathBuf {
    let conv = Conversation::new(
        "192.0.2.1:40000".parse().unwrap(),
        "192.0.2.2:110".parse().unwrap(),
    )
    .server("+OK ready\r\n")
    .client("QUIT\r\n")
    .server("+OK bye\r\n");
    let p = temp_path(name);
    std::fs::write(&p, pcap_bytes(&conv.packets())).unwrap();
    p
}

#[test]
fn analyze_prints_a_sessions_table() {
    let p = captures_dir().join("pop3-user-pass.pcap");
    let o = mailsift(&["analyze", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Sessions (2)"), "{out}");
    assert!(out.contains("127.0.0.1:110"), "{out}");
    assert!(out.contains("POP3 sessions (2)"), "{out}");
}

#[test]
fn analyze_shows_smtp_pop3_and_message_tables() {
    let a = captures_dir().join("smtp-mime.pcap");
    let b = captures_dir().join("pop3-mailbox.pcap");
    let o = mailsift(&[
        "analyze",
        "--wide",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "SMTP sessions (1)",
        "client.mailsift.test",
        "POP3 sessions (1)",
        "2 [4, 5] committed",
        "Messages (7)",
        "Grüße aus Köln – Test mit Anhängen",
        "logo.png",
        "pop3 TOP",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

#[test]
fn refused_transactions_are_shown_and_a_refused_message_is_not_delivered() {
    let a = captures_dir().join("smtp-refused.pcap");
    let o = mailsift(&["analyze", "--wide", a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "2, 3 refused",
        "SMTP transactions that delivered nothing (4)",
        "mail refused",
        "nobody@mailsift.test (550)",
        "no recipients",
        "later@mailsift.test (451)",
        "abandoned",
        "550 5.7.1 message content refused by the capture lab",
        "smtp DATA → 550 refused",
        "smtp DATA → 250",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

#[test]
fn a_missing_file_is_one_line_naming_it_and_fails_only_when_nothing_was_read() {
    let o = mailsift(&["analyze", "/nonexistent/x.pcap"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("/nonexistent/x.pcap"), "{err}");
    assert!(err.lines().count() <= 3, "{err}");

    let good = good_capture("good.pcap");
    let o = mailsift(&["export", "/nonexistent/x.pcap", good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent/x.pcap"));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(doc["inputs"][0]["errors"].as_array().unwrap().len(), 1);
    assert!(doc["inputs"][0]["format"].is_null());
}

#[test]
fn a_file_that_is_not_a_capture_is_named() {
    let p = temp_path("notes.txt");
    std::fs::write(&p, b"Subject: not a capture\r\n\r\nhello\r\n").unwrap();
    let o = mailsift(&["analyze", p.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(p.to_str().unwrap()) && err.contains("not a pcap"),
        "{err}"
    );
}

#[test]
fn a_truncated_capture_keeps_what_was_read_and_names_the_offset() {
    let good = good_capture("full.pcap");
    let bytes = std::fs::read(&good).unwrap();
    let cut = temp_path("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let o = mailsift(&["export", cut.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("truncated") && err.contains("offset"), "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 1);
    assert!(doc["sessions"][0]["events"].as_array().unwrap().len() >= 2);
}

#[test]
fn an_unsupported_link_type_is_an_error_for_that_file_only() {
    let good = good_capture("good2.pcap");
    let mut bytes = std::fs::read(&good).unwrap();
    bytes[20..24].copy_from_slice(&147u32.to_le_bytes()); // LINKTYPE_USER0
    let odd = temp_path("user0.pcap");
    std::fs::write(&odd, &bytes).unwrap();
    let o = mailsift(&["export", odd.to_str().unwrap(), good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("user0.pcap") && err.contains("link type 147"),
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 1);
}

#[test]
fn export_to_a_file_and_as_ndjson() {
    let p = captures_dir().join("pop3-user-pass.pcap");
    let out = temp_path("out.json");
    let o = mailsift(&["export", p.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(doc["inputs"][0]["format"], "pcap");

    let o = mailsift(&["export", "--ndjson", p.to_str().unwrap()]);
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["protocol"], "pop3");
    }
}

#[test]
fn dash_output_is_standard_output() {
    let p = captures_dir().join("pop3-user-pass.pcap");
    let dir = temp_path("dash-out");
    std::fs::create_dir_all(&dir).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mailsift"))
        .args(["export", "--ndjson", p.to_str().unwrap(), "-o", "-"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8(o.stdout).unwrap().lines().count(), 2);
    assert!(!dir.join("-").exists(), "no file named '-'");
}

#[test]
fn bad_port_mapping_is_a_clear_error() {
    let good = good_capture("good3.pcap");
    let o = mailsift(&["analyze", "--port", "imap=143", good.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("imap=143"), "{}", stderr(&o));
}

/// BPF filters are compiled by libpcap, so only a `live` build has them.
#[cfg(feature = "live")]
#[test]
fn bpf_filter_applies_to_files() {
    let p = captures_dir().join("sll2-mixed.pcap");
    let o = mailsift(&["export", "--bpf", "tcp port 110", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let protos: Vec<&str> = doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(protos, vec!["pop3"]);
    let o = mailsift(&["export", "--bpf", "tcp port banana", p.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a bad filter is a bad command line"
    );
    assert!(stderr(&o).contains("banana"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}

#[test]
fn a_closed_pipe_is_a_clean_exit() {
    let p = captures_dir().join("pop3-mailbox.pcap");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailsift"))
        .args(["export", p.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn threads_option_gives_the_same_export_and_tables() {
    let captures: Vec<String> = bundled_captures()
        .iter()
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    let run = |command: &str, threads: &str| {
        let mut args = vec![command, "--threads", threads];
        args.extend(captures.iter().map(String::as_str));
        let o = mailsift(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        o.stdout
    };
    for command in ["export", "analyze"] {
        let one = run(command, "1");
        assert!(one.len() > 1000);
        assert_eq!(one, run(command, "2"), "{command} --threads 2");
        assert_eq!(one, run(command, "3"), "{command} --threads 3");
    }
    let o = mailsift(&["export", "--threads", "0", captures[0].as_str()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn report_outputs_that_cannot_be_written_are_one_line_errors_naming_them() {
    let capture = good_capture("report-target.pcap");
    let file = temp_path("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let o = mailsift(&[
        "export",
        capture.to_str().unwrap(),
        "--zeek",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(file.to_str().unwrap()) && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let missing = temp_path("no-such-dir").join("report.html");
    let o = mailsift(&[
        "analyze",
        capture.to_str().unwrap(),
        "--html",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(missing.to_str().unwrap()) && !err.contains("panicked"),
        "{err}"
    );

    let o = mailsift(&["export", capture.to_str().unwrap(), "--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--format"), "{}", stderr(&o));
}

#[test]
fn hashes_default_to_sha256_and_more_are_asked_for() {
    let p = captures_dir().join("smtp-mime.pcap");
    let attachments = |extra: &[&str]| {
        let mut args = vec!["export", p.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = mailsift(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        doc["sessions"][0]["messages"][0]["attachments"]
            .as_array()
            .cloned()
            .expect("attachments")
    };
    let default = attachments(&[]);
    assert!(!default.is_empty());
    for a in &default {
        assert_eq!(a["sha256"].as_str().map(str::len), Some(64));
        assert_eq!(a["md5"], "");
        assert_eq!(a["sha1"], "");
    }
    for a in attachments(&["--hashes", "md5,sha1,sha256"]) {
        assert_eq!(a["md5"].as_str().map(str::len), Some(32));
        assert_eq!(a["sha1"].as_str().map(str::len), Some(40));
    }
    for a in attachments(&["--hashes", "none"]) {
        assert_eq!(a["sha256"], "");
    }
    let o = mailsift(&["export", "--hashes", "crc32", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown hash"), "{}", stderr(&o));
}

#[test]
fn keylog_decrypts_and_reports_bad_lines_by_file_and_line() {
    let pcap = captures_dir().join("smtps-465.pcap");
    let good = std::fs::read_to_string(captures_dir().join("smtps-465.keys")).unwrap();
    let keys = temp_path("cli-garbage.keys");
    std::fs::write(
        &keys,
        format!("# written by a test\nCLIENT_RANDOM nothex 00\n{good}garbage line here\n"),
    )
    .unwrap();
    let o = mailsift(&[
        "export",
        "--ndjson",
        "--keylog",
        keys.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let name = keys.display().to_string();
    assert!(err.contains(&format!("{name}:2:")), "{err}");
    // An unknown label is not an error: real key logs carry labels mailsift does not use.
    assert!(!err.contains(&format!("{name}:1:")), "{err}");
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["tls"]["decrypted"], true);
    assert_eq!(line["credentials"][0]["encrypted"], true);
    assert_eq!(line["credentials"][0]["password"], "Wonderland-42");

    let o = mailsift(&[
        "analyze",
        "--keylog",
        keys.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("TLS sessions (1)") && out.contains("yes ("),
        "{out}"
    );
    let _ = std::fs::remove_file(&keys);

    let o = mailsift(&[
        "analyze",
        "--keylog",
        "/nonexistent/k.log",
        pcap.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot read key log /nonexistent/k.log"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn analyze_lists_tunnels() {
    let p = captures_dir().join("mail-via-proxy.pcap");
    let o = mailsift(&["analyze", "--wide", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "Tunnels (7)",
        "HTTP CONNECT",
        "refused 407 Proxy Authentication Required",
        "SOCKS4a",
        "localhost:2525",
        "refused 2 connection not allowed by ruleset",
        "SOCKS5 proxy login",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
}

/// Names in `dir`, sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[cfg(unix)]
#[test]
fn output_files_replace_planted_symlinks_and_never_write_through_them() {
    use std::os::unix::fs::symlink;
    let root = temp_path("planted");
    let out_dir = root.join("out");
    let zeek = out_dir.join("logs");
    std::fs::create_dir_all(&zeek).unwrap();
    let victim = root.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let files = ["export.json", "hashes.txt", "report.html"];
    for name in files {
        symlink(&victim, out_dir.join(name)).unwrap();
    }
    let logs = [
        "smtp.log",
        "pop3.log",
        "mail_files.log",
        "credentials.log",
        "findings.log",
    ];
    for name in logs {
        symlink(&victim, zeek.join(name)).unwrap();
    }
    let capture = captures_dir().join("pop3-auth-plain.pcap");
    let path = |name: &str| out_dir.join(name).display().to_string();
    let o = mailsift(&[
        "export",
        capture.to_str().unwrap(),
        "-o",
        &path("export.json"),
        "--hashcat",
        &path("hashes.txt"),
        "--html",
        &path("report.html"),
        "--zeek",
        zeek.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    for p in files
        .iter()
        .map(|n| out_dir.join(n))
        .chain(logs.iter().map(|n| zeek.join(n)))
    {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        assert!(meta.file_type().is_file(), "{} is a file now", p.display());
        assert!(meta.len() > 0, "{} has content", p.display());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("export.json")).unwrap()).unwrap();
    assert!(json["sessions"].as_array().is_some_and(|s| !s.is_empty()));
    assert!(
        std::fs::read_to_string(out_dir.join("hashes.txt"))
            .unwrap()
            .starts_with("$cram_md5$")
    );
    // No temporary or spool file is left behind.
    let mut expected: Vec<String> = files.iter().map(|s| s.to_string()).collect();
    expected.push("logs".into());
    expected.sort();
    assert_eq!(names_in(&out_dir), expected);
    let mut expected_logs: Vec<String> = logs.iter().map(|s| s.to_string()).collect();
    expected_logs.sort();
    assert_eq!(names_in(&zeek), expected_logs);

    // A regular file at `-o` is replaced, as before; a failed run leaves it as it was.
    std::fs::write(out_dir.join("export.json"), b"old").unwrap();
    let o = mailsift(&[
        "export",
        capture.to_str().unwrap(),
        "-o",
        &path("export.json"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(std::fs::read(out_dir.join("export.json")).unwrap(), b"old");
    std::fs::write(out_dir.join("export.json"), b"old").unwrap();
    let o = mailsift(&[
        "export",
        capture.to_str().unwrap(),
        "-o",
        &path("export.json"),
        "--zeek",
        victim.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(std::fs::read(out_dir.join("export.json")).unwrap(), b"old");
    assert_eq!(names_in(&out_dir), expected);

    // A device is written to, not replaced: `-o /dev/null` as the benchmarks use it.
    let o = mailsift(&["export", capture.to_str().unwrap(), "-o", "/dev/null"]);
    assert!(o.status.success(), "{}", stderr(&o));
    use std::os::unix::fs::FileTypeExt;
    let null = std::fs::symlink_metadata("/dev/null").unwrap();
    assert!(null.file_type().is_char_device());
    let _ = std::fs::remove_dir_all(&root);
}

/// A `.gz` capture: `good`'s packets as one gzip member, then a second member of `zeros`
/// zero bytes, which read as empty pcap records and compress about a thousand times.
fn gzip_bomb(name: &str, good: &[u8], zeros: usize) -> std::path::PathBuf {
    use std::io::Write;
    let mut out = Vec::new();
    for (part, len) in [(good, good.len()), (&[0u8; 1 << 16][..], zeros)] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let mut left = len;
        while left > 0 {
            let n = left.min(part.len());
            enc.write_all(&part[..n]).unwrap();
            left -= n;
        }
        out.extend(enc.finish().unwrap());
    }
    let p = temp_path(name);
    std::fs::write(&p, &out).unwrap();
    p
}

#[test]
fn a_gzip_bomb_stops_at_the_limit_keeping_what_was_read() {
    let good = std::fs::read(good_capture("bomb-source.pcap")).unwrap();
    let zeros = 16 << 20;
    let bomb = gzip_bomb("bomb.pcap.gz", &good, zeros);
    let compressed = std::fs::metadata(&bomb).unwrap().len();
    assert!(
        compressed * 500 < zeros as u64,
        "{compressed} bytes expand to {zeros}"
    );
    let mut config = mailsift::engine::EngineConfig::default();
    config.limits.gunzip = mailsift::capture::gunzip::GunzipLimit {
        floor_bytes: 1 << 20,
        max_ratio: 100,
    };
    let (sessions, summary) = run_with(std::slice::from_ref(&bomb), config);
    assert_eq!(sessions.len(), 1, "the session before the bomb is kept");
    assert!(sessions[0].events.len() >= 2);
    let errors = &summary.inputs[0].errors;
    assert_eq!(errors.len(), 1, "{errors:?}");
    let err = &errors[0];
    assert!(
        err.starts_with(bomb.to_str().unwrap())
            && err.contains("stopped at offset")
            && err.contains("--max-gunzip-ratio"),
        "{err}"
    );
    let offset: u64 = err
        .split("offset ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .and_then(|s| s.parse().ok())
        .expect("an offset");
    assert!(
        (1 << 20..2 << 20).contains(&offset),
        "stopped just past the floor: {offset}"
    );
    assert!(summary.any_input_read());

    // The command line's default floor (1 GiB) reads this file whole; ratio 0 is accepted.
    let o = mailsift(&["export", bomb.to_str().unwrap(), "--max-gunzip-ratio", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("stopped"), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 1);
    let _ = std::fs::remove_file(&bomb);
}

// A new user's first runs: each error is a line saying what failed and what to do, with the
// documented exit status, and a run that read nothing writes nothing.

/// Asserts the exit status, that stdout is empty, and that stderr holds every word in `want`.
fn assert_fails(o: &Output, status: i32, want: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(status), "{err}");
    assert!(
        o.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    for w in want {
        assert!(err.contains(w), "missing {w:?} in\n{err}");
    }
}

#[test]
fn a_missing_input_names_the_file_and_the_reason_in_words_and_writes_nothing() {
    let missing = "/nonexistent/first-run.pcap";
    for args in [
        vec!["analyze", missing],
        vec!["export", missing],
        vec!["export", "--format", "ndjson", missing],
        vec!["export", "--format", "ecs", missing],
        vec!["analyze", "--format", "json", missing],
        vec!["analyze", "-r", missing],
    ] {
        let o = mailsift(&args);
        assert_fails(
            &o,
            1,
            &[
                missing,
                "no such file or directory",
                "no input could be read",
            ],
        );
        assert!(!stderr(&o).contains("os error"), "{}", stderr(&o));
    }
}

#[test]
fn a_run_that_reads_nothing_creates_no_output_file() {
    let dir = temp_path("no-input-outputs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (json, html, zeek) = (dir.join("out.json"), dir.join("r.html"), dir.join("zeek"));
    let o = mailsift(&[
        "export",
        "/nonexistent/x.pcap",
        "-o",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        "--zeek",
        zeek.to_str().unwrap(),
    ]);
    assert_fails(&o, 1, &["no input could be read"]);
    assert!(!json.exists() && !html.exists(), "{:?}", names_in(&dir));
    let logs = std::fs::read_dir(&zeek).map_or(0, |d| d.count());
    assert_eq!(logs, 0, "no Zeek log is left");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_directory_or_a_non_capture_as_input_says_so() {
    let dir = temp_path("a-folder");
    std::fs::create_dir_all(&dir).unwrap();
    let o = mailsift(&["analyze", dir.to_str().unwrap()]);
    assert_fails(&o, 1, &[dir.to_str().unwrap(), "is a directory"]);
    let text = temp_path("first-run.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let o = mailsift(&["export", text.to_str().unwrap()]);
    assert_fails(&o, 1, &[text.to_str().unwrap(), "not a pcap or pcapng"]);
}

#[test]
fn bad_port_mappings_are_bad_command_lines_that_name_the_port() {
    let good = good_capture("good-port.pcap");
    let good = good.to_str().unwrap();
    let o = mailsift(&["analyze", "--port", "smtp=70000", good]);
    assert_fails(&o, 2, &["smtp=70000", "port \"70000\"", "1 to 65535"]);
    let o = mailsift(&["export", "--port", "imap=143", good]);
    assert_fails(
        &o,
        2,
        &["unknown protocol \"imap\"", "smtp, smtps, pop3, pop3s"],
    );
    let o = mailsift(&["sniff", "--port", "smtp", "-i", "lo"]);
    assert_fails(&o, 2, &["expected PROTO=PORT"]);
}

#[test]
fn other_bad_command_lines_exit_with_2() {
    let good = good_capture("good-usage.pcap");
    let good = good.to_str().unwrap();
    for args in [
        vec!["analyze"],
        vec!["analyze", "--no-such-flag", good],
        vec!["export", "--format", "xml", good],
        vec!["export", "--ndjson", "--ecs", good],
        vec!["export", "--format", "json", "--ecs", good],
        vec!["analyze", "-r", good, good],
        vec!["nosuchcommand"],
    ] {
        let o = mailsift(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

/// Without libpcap, what needs it says how to build it in, as a bad command line.
#[cfg(not(feature = "live"))]
#[test]
fn a_build_without_live_says_how_to_build_it_in() {
    let good = good_capture("good-nolive.pcap");
    for args in [
        vec!["sniff"],
        vec!["sniff", "-i", "lo", "--format", "ndjson"],
        vec!["analyze", "--bpf", "tcp port 25", good.to_str().unwrap()],
        vec!["export", "--bpf", "tcp port 25", good.to_str().unwrap()],
    ] {
        let o = mailsift(&args);
        assert_fails(&o, 2, &["--features live", "libpcap"]);
    }
}

#[cfg(feature = "live")]
#[test]
fn an_invalid_bpf_filter_is_a_bad_command_line() {
    let good = good_capture("good-bpf.pcap");
    let o = mailsift(&["analyze", "--bpf", "tcp port (", good.to_str().unwrap()]);
    assert_fails(&o, 2, &["--bpf", "invalid capture filter"]);
    let o = mailsift(&["sniff", "-i", "lo", "--bpf", "host nowhere..."]);
    assert_fails(&o, 2, &["--bpf", "invalid capture filter"]);
}

/// Whether this process may capture (root, or a CAP_NET_RAW that a child keeps).
#[cfg(feature = "live")]
fn may_capture() -> bool {
    let o = mailsift(&["sniff", "-i", "lo", "--count", "0"]);
    o.status.success()
}

#[cfg(feature = "live")]
#[test]
fn an_unknown_interface_lists_the_ones_there_are() {
    let o = mailsift(&["sniff", "-i", "no-such-if0"]);
    if !may_capture() {
        // libpcap fails on the permission before it looks for the interface.
        assert_fails(
            &o,
            1,
            &["no-such-if0", "setcap cap_net_raw,cap_net_admin=eip"],
        );
        return;
    }
    assert_fails(
        &o,
        1,
        &[
            "no-such-if0",
            "no such interface",
            "lo",
            "--list-interfaces",
        ],
    );
}

#[cfg(feature = "live")]
#[test]
fn sniff_without_permission_says_to_run_as_root_or_setcap() {
    let exe = env!("CARGO_BIN_EXE_mailsift");
    let args = ["sniff", "-i", "lo", "--count", "1"];
    let o = if may_capture() {
        // As root: the same binary as nobody, without root's capabilities.
        let Ok(o) = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", exe])
            .args(args)
            .output()
        else {
            eprintln!("setpriv not found: not testing a capture without permission");
            return;
        };
        if stderr(&o).starts_with("setpriv:") {
            eprintln!("nobody cannot run {exe}: {}", stderr(&o));
            return;
        }
        o
    } else {
        mailsift(&args)
    };
    assert_fails(
        &o,
        1,
        &[
            "lo",
            "not permitted to capture",
            "run as root",
            "setcap cap_net_raw,cap_net_admin=eip",
            exe,
        ],
    );
}

#[test]
fn version_names_the_commit_or_says_unknown() {
    let o = mailsift(&["--version"]);
    assert!(o.status.success());
    let v = String::from_utf8(o.stdout).unwrap();
    let commit = v
        .trim()
        .strip_prefix(concat!("mailsift ", env!("CARGO_PKG_VERSION"), " (commit "))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{v}"));
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{v}"
    );
}

#[test]
fn help_shows_examples_and_exit_statuses_for_every_command() {
    for cmd in [
        vec!["--help"],
        vec!["analyze", "--help"],
        vec!["export", "--help"],
        vec!["sniff", "--help"],
    ] {
        let o = mailsift(&cmd);
        assert!(o.status.success(), "{cmd:?}");
        let out = String::from_utf8(o.stdout).unwrap();
        for want in [
            "Examples:",
            "Exit status:",
            "2  bad command line",
            "3  --fail-on",
        ] {
            assert!(out.contains(want), "{cmd:?} lacks {want:?}:\n{out}");
        }
        assert!(
            !out.contains("Analyse") && !out.contains("analysed"),
            "{out}"
        );
    }
    let o = mailsift(&["sniff", "--help"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("--format") && out.contains("setcap"), "{out}");
}

#[test]
fn analyse_and_dash_r_read_like_analyze_with_a_file() {
    let p = captures_dir().join("pop3-user-pass.pcap");
    let p = p.to_str().unwrap();
    let a = mailsift(&["analyze", p]);
    let b = mailsift(&["analyse", "-r", p]);
    assert!(a.status.success() && b.status.success(), "{}", stderr(&b));
    assert_eq!(a.stdout, b.stdout);
    let e = mailsift(&["export", "--read", p, "-r", p]);
    let doc: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    assert_eq!(doc["inputs"].as_array().unwrap().len(), 2);
}

#[test]
fn format_spellings_agree_across_commands() {
    let p = captures_dir().join("smtp-plain.pcap");
    let p = p.to_str().unwrap();
    let run = |args: &[&str]| {
        let o = mailsift(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        o.stdout
    };
    let ecs = run(&["export", "--format", "ecs", p]);
    assert!(!ecs.is_empty());
    assert_eq!(run(&["export", "--ecs", p]), ecs);
    assert_eq!(run(&["analyze", "--format", "ecs", p]), ecs);
    let ndjson = run(&["export", "--ndjson", p]);
    assert_eq!(run(&["export", "--format", "ndjson", p]), ndjson);
    let strip_ids = |bytes: Vec<u8>| {
        let mut doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        doc["inputs"] = serde_json::Value::Null;
        doc
    };
    assert_eq!(
        strip_ids(run(&["analyze", "--format", "json", p])),
        strip_ids(run(&["export", p]))
    );
    assert_eq!(
        run(&["export", "--format", "table", p]),
        run(&["analyze", p])
    );
}

#[test]
fn analyze_writes_zeek_logs_beside_its_tables() {
    let p = captures_dir().join("smtp-plain.pcap");
    let dir = temp_path("analyze-zeek");
    let _ = std::fs::remove_dir_all(&dir);
    let o = mailsift(&[
        "analyze",
        p.to_str().unwrap(),
        "--zeek",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("SMTP sessions (1)"));
    assert!(stderr(&o).contains("Zeek logs in"), "{}", stderr(&o));
    let smtp = std::fs::read_to_string(dir.join("smtp.log")).unwrap();
    assert!(smtp.lines().any(|l| !l.starts_with('#')), "{smtp}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_and_man_pages_are_generated() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = mailsift(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = String::from_utf8(o.stdout).unwrap();
        assert!(
            script.contains("mailsift") && script.contains("keylog"),
            "{shell}"
        );
    }
    let o = mailsift(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));

    let o = mailsift(&["man"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = String::from_utf8(o.stdout).unwrap();
    assert!(
        page.contains(".TH mailsift 1") && page.contains("analyze"),
        "{page}"
    );
    let dir = temp_path("man-pages");
    let _ = std::fs::remove_dir_all(&dir);
    let o = mailsift(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names = names_in(&dir);
    for want in [
        "mailsift.1",
        "mailsift-analyze.1",
        "mailsift-export.1",
        "mailsift-sniff.1",
    ] {
        assert!(names.iter().any(|n| n == want), "{names:?}");
    }
    let sniff = std::fs::read_to_string(dir.join("mailsift-sniff.1")).unwrap();
    assert!(sniff.contains("list\\-interfaces"), "{sniff}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_longer_than_a_second_draws_no_progress_when_stderr_is_not_a_terminal() {
    // Enough copies of one capture for a debug build to read for about a second, past the
    // delay before a progress line would appear.
    let p = captures_dir().join("tls-smtp-matrix.pcap");
    let p = p.to_str().unwrap();
    let mut args = vec!["analyze", "--threads", "1"];
    args.extend(std::iter::repeat_n(p, 400));
    let o = mailsift(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    for progress_like in ["\r", "\x1b[", "ETA", "/s,", "MiB of"] {
        assert!(!err.contains(progress_like), "{progress_like:?} in {err:?}");
    }
}

#[test]
fn quiet_is_accepted_by_every_reading_command_and_changes_no_output() {
    let p = captures_dir().join("smtp-plain.pcap");
    let p = p.to_str().unwrap();
    for command in ["analyze", "export"] {
        let loud = mailsift(&[command, p]);
        let quiet = mailsift(&[command, "--quiet", p]);
        assert!(quiet.status.success(), "{}", stderr(&quiet));
        assert_eq!(loud.stdout, quiet.stdout, "{command}");
        assert_eq!(stderr(&loud), stderr(&quiet), "{command}");
    }
    let o = mailsift(&["show", "-q", "--session", "1", p]);
    assert!(o.status.success(), "{}", stderr(&o));
    // --list-interfaces ends sniff before any capture; without `live` sniff refuses to run,
    // but not because of the flag.
    let o = mailsift(&["sniff", "--quiet", "--list-interfaces"]);
    assert!(
        !stderr(&o).contains("unexpected argument"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sniff_accepts_a_file_to_write_the_capture_to() {
    let saved = temp_path("never-written.pcap");
    let saved_arg = saved.to_str().unwrap();
    for flag in ["-w", "--write"] {
        // --list-interfaces ends the command before any capture, with or without `live`;
        // without it sniff refuses to run, but not because of the flag.
        let o = mailsift(&["sniff", flag, saved_arg, "--list-interfaces"]);
        assert!(
            !stderr(&o).contains("unexpected argument"),
            "{}",
            stderr(&o)
        );
    }
    assert!(!saved.exists(), "no capture, no file");
}
