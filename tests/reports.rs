//! The report formats end to end through the command line, on the bundled captures: ECS
//! events, Zeek logs and the HTML report carry the right facts in the right places, honour
//! `--redact`, and escape hostile text.

mod common;

use common::*;
use mailsift::capture::synth::{Conversation, pcap_bytes};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The test password of the bundled captures, and its base64 form as sent in AUTH PLAIN/LOGIN.
const PASSWORD: &str = "Wonderland-42";
const PASSWORD_B64: &str = "V29uZGVybGFuZC00Mg==";

fn mailsift(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_mailsift"))
        .args(args)
        .output()
        .expect("runs");
    assert!(
        o.status.success() || o.status.code() == Some(3),
        "mailsift {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn capture(name: &str) -> String {
    captures_dir().join(name).to_string_lossy().into_owned()
}

fn ecs_events(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["export", "--format", "ecs"];
    all.extend_from_slice(args);
    let o = mailsift(&all);
    String::from_utf8(o.stdout)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect()
}

fn dataset<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"]["dataset"] == name)
        .collect()
}

#[test]
fn ecs_events_carry_sessions_messages_logins_and_findings() {
    let events = ecs_events(&[&capture("smtp-auth-plain.pcap")]);
    for e in &events {
        assert_eq!(e["ecs"]["version"], "8.17.0");
        assert!(e["@timestamp"].is_string());
    }
    let sessions = dataset(&events, "mailsift.session");
    assert_eq!(sessions.len(), 2);
    let s = sessions[0];
    assert_eq!(s["network"]["protocol"], "smtp");
    assert_eq!(s["network"]["transport"], "tcp");
    assert_eq!(s["destination"]["port"], 587);
    assert_eq!(s["source"]["ip"], "127.0.0.1");
    assert!(s["event"]["duration"].as_u64().unwrap() > 0);

    let messages = dataset(&events, "mailsift.message");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["email"]["subject"], "mailsift auth test");
    assert_eq!(
        messages[0]["email"]["from"]["address"],
        serde_json::json!(["alice@mailsift.test"])
    );
    assert_eq!(
        messages[0]["mailsift"]["message"]["rcpt_to"],
        serde_json::json!(["bob@mailsift.test"])
    );

    let logins = dataset(&events, "mailsift.credential");
    assert_eq!(logins.len(), 2);
    assert_eq!(logins[0]["user"]["name"], "alice@mailsift.test");
    assert_eq!(logins[0]["event"]["outcome"], "success");
    assert_eq!(
        logins[0]["event"]["category"],
        serde_json::json!(["authentication"])
    );
    assert_eq!(logins[0]["mailsift"]["credential"]["mechanism"], "PLAIN");
    assert_eq!(logins[0]["mailsift"]["credential"]["secret"], PASSWORD);

    let alerts: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"]["kind"] == "alert")
        .collect();
    let cleartext = alerts
        .iter()
        .find(|a| a["rule"]["id"] == "cleartext-password")
        .expect("cleartext-password alert");
    assert_eq!(cleartext["event"]["severity"], 4);
    assert_eq!(cleartext["rule"]["name"], "Cleartext password");
    // Every event of the first session shares its uid.
    let uid = &s["mailsift"]["session"]["uid"];
    assert_eq!(logins[0]["mailsift"]["session"]["uid"], *uid);
    assert_eq!(cleartext["mailsift"]["session"]["uid"], *uid);
}

#[test]
fn ecs_attachments_and_pop3_logins() {
    let events = ecs_events(&[&capture("smtp-mime.pcap"), &capture("pop3-user-pass.pcap")]);
    let files: Vec<&Value> = dataset(&events, "mailsift.message")
        .into_iter()
        .filter_map(|m| m["email"]["attachments"].as_array())
        .flatten()
        .map(|a| &a["file"])
        .collect();
    let logo = files
        .iter()
        .find(|f| f["name"] == "logo.png")
        .expect("logo.png attachment");
    assert_eq!(logo["mime_type"], "image/png");
    assert_eq!(logo["extension"], "png");
    assert_eq!(
        logo["hash"]["sha256"],
        "49450d5923f244ced3e87bdf4cdc5cfdded8259932b8f168dc7c7ec01eb24a65"
    );
    let failed = dataset(&events, "mailsift.credential")
        .into_iter()
        .find(|c| c["user"]["name"] == "bob")
        .expect("bob's login");
    assert_eq!(failed["event"]["outcome"], "failure");
    assert_eq!(failed["network"]["protocol"], "pop3");
}

#[test]
fn ndjson_flag_and_format_agree_and_json_stays_the_default() {
    let cap = capture("pop3-user-pass.pcap");
    let a = mailsift(&["export", "--ndjson", &cap]).stdout;
    let b = mailsift(&["export", "--format", "ndjson", &cap]).stdout;
    assert_eq!(a, b);
    assert_eq!(String::from_utf8_lossy(&a).lines().count(), 2);
    let c = mailsift(&["export", &cap]).stdout;
    let d = mailsift(&["export", "--format", "json", &cap]).stdout;
    assert_eq!(c, d);
    let doc: Value = serde_json::from_slice(&c).unwrap();
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 2);
}

#[test]
fn redaction_reaches_ecs() {
    let out = mailsift(&[
        "export",
        "--format",
        "ecs",
        "--redact",
        &capture("smtp-auth-plain.pcap"),
        &capture("pop3-user-pass.pcap"),
    ])
    .stdout;
    let text = String::from_utf8(out).unwrap();
    assert!(
        !text.contains(PASSWORD) && !text.contains(PASSWORD_B64),
        "{text}"
    );
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let logins = dataset(&events, "mailsift.credential");
    assert!(!logins.is_empty());
    for l in logins {
        assert!(l["user"]["name"].is_string(), "user names are kept");
        if l["mailsift"]["credential"]["password"].is_string() {
            assert_eq!(l["mailsift"]["credential"]["password"], "<redacted>");
            assert_eq!(l["mailsift"]["credential"]["secret"], "<redacted>");
        }
    }
}

/// A Zeek log's rows as field maps, raw values (`-` and `(empty)` kept as written).
fn zeek_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("log exists");
    let fields: Vec<String> = text
        .lines()
        .find_map(|l| l.strip_prefix("#fields\t"))
        .expect("#fields")
        .split('\t')
        .map(str::to_string)
        .collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            fields
                .iter()
                .cloned()
                .zip(l.split('\t').map(str::to_string))
                .collect()
        })
        .collect()
}

fn zeek_dir(name: &str, extra: &[&str], captures: &[&str]) -> PathBuf {
    let dir = temp_path(name);
    let mut args = vec!["export", "--zeek", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let caps: Vec<String> = captures.iter().map(|c| capture(c)).collect();
    args.extend(caps.iter().map(String::as_str));
    let o = mailsift(&args);
    assert!(o.stdout.is_empty(), "--zeek alone writes no JSON");
    dir
}

#[test]
fn zeek_logs_put_facts_in_their_columns() {
    let dir = zeek_dir(
        "zeek",
        &["--hashes", "md5,sha1,sha256"],
        &[
            "smtp-auth-plain.pcap",
            "smtp-mime.pcap",
            "pop3-user-pass.pcap",
            "smtp-starttls.pcap",
        ],
    );
    let text = std::fs::read_to_string(dir.join("smtp.log")).unwrap();
    for header in [
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        "#path\tsmtp",
        "#open\t",
        "#types\ttime\tstring\taddr\tport",
        "#close\t",
    ] {
        assert!(text.contains(header), "missing {header:?}");
    }
    let smtp = zeek_rows(&dir.join("smtp.log"));
    let auth = smtp
        .iter()
        .find(|r| r["subject"] == "mailsift auth test" && r["mailfrom"] == "alice@mailsift.test")
        .expect("alice's message");
    assert_eq!(auth["rcptto"], "bob@mailsift.test");
    assert_eq!(auth["id.resp_p"], "587");
    assert_eq!(auth["helo"], "client.mailsift.test");
    assert!(
        auth["last_reply"].starts_with("250 "),
        "{}",
        auth["last_reply"]
    );
    assert_eq!(auth["tls"], "F");
    assert_eq!(auth["is_webmail"], "F");
    assert!(auth["uid"].starts_with('C'));
    let starttls = smtp.iter().find(|r| r["tls"] == "T").expect("STARTTLS row");
    assert!(starttls["last_reply"].starts_with("220"));
    assert_eq!(starttls["mailfrom"], "-");

    let mime = smtp
        .iter()
        .find(|r| r["fuids"].contains(','))
        .expect("message with files");
    let files = zeek_rows(&dir.join("mail_files.log"));
    let logo = files
        .iter()
        .find(|f| f["filename"] == "logo.png")
        .expect("logo.png");
    assert!(mime["fuids"].split(',').any(|f| f == logo["fuid"]));
    assert_eq!(logo["uid"], mime["uid"]);
    assert_eq!(logo["mime_type"], "image/png");
    assert_eq!(logo["md5"], "4905a5b5b083c8bffa0e8047b625b9d0");
    assert_eq!(
        logo["sha256"],
        "49450d5923f244ced3e87bdf4cdc5cfdded8259932b8f168dc7c7ec01eb24a65"
    );

    let pop3 = zeek_rows(&dir.join("pop3.log"));
    assert_eq!(pop3.len(), 2);
    assert!(
        pop3.iter()
            .any(|r| r["user"] == "bob" && r["auth_success"] == "F")
    );

    let creds = zeek_rows(&dir.join("credentials.log"));
    let alice = creds
        .iter()
        .find(|r| r["user"] == "alice@mailsift.test" && r["proto"] == "pop3")
        .expect("alice's POP3 login");
    assert_eq!(alice["mechanism"], "USER");
    assert_eq!(alice["secret"], PASSWORD);
    assert_eq!(alice["success"], "T");
    assert_eq!(alice["encrypted"], "F");

    let findings = zeek_rows(&dir.join("findings.log"));
    let cleartext = findings
        .iter()
        .find(|r| r["note"] == "cleartext-password")
        .expect("cleartext-password");
    assert_eq!(cleartext["severity"], "high");
    assert_eq!(cleartext["sessions"], cleartext["uid"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn zeek_logs_are_the_same_on_every_run() {
    let caps = ["mixed.pcapng"];
    let a = zeek_dir("zeek-a", &[], &caps);
    let b = zeek_dir("zeek-b", &["--threads", "1"], &caps);
    for log in mailsift::output::zeek::LOG_FILES {
        assert_eq!(
            std::fs::read(a.join(log)).unwrap(),
            std::fs::read(b.join(log)).unwrap(),
            "{log} differs between runs"
        );
    }
    let _ = std::fs::remove_dir_all(a);
    let _ = std::fs::remove_dir_all(b);
}

#[test]
fn redaction_reaches_the_zeek_logs() {
    let dir = zeek_dir(
        "zeek-redact",
        &["--redact"],
        &[
            "smtp-auth-plain.pcap",
            "smtp-auth-login.pcap",
            "pop3-user-pass.pcap",
        ],
    );
    for log in mailsift::output::zeek::LOG_FILES {
        let text = std::fs::read_to_string(dir.join(log)).unwrap();
        assert!(
            !text.contains(PASSWORD) && !text.contains(PASSWORD_B64),
            "{log}: {text}"
        );
    }
    let creds = zeek_rows(&dir.join("credentials.log"));
    assert!(creds.iter().any(|r| r["user"] == "alice@mailsift.test"));
    assert!(
        creds
            .iter()
            .all(|r| r["secret"] == "<redacted>" || r["secret"] == "-")
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn html_report(name: &str, command: &str, extra: &[&str], captures: &[String]) -> String {
    let path = temp_path(name);
    let mut args = vec![command, "--html", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend(captures.iter().map(String::as_str));
    let o = mailsift(&args);
    if command == "export" {
        assert!(o.stdout.is_empty(), "--html alone writes no JSON");
    }
    let html = std::fs::read_to_string(&path).expect("report written");
    let _ = std::fs::remove_file(&path);
    html
}

#[test]
fn html_report_shows_summary_tables_transcripts_and_messages() {
    let caps = [
        capture("smtp-auth-plain.pcap"),
        capture("smtp-mime.pcap"),
        capture("pop3-user-pass.pcap"),
    ];
    let html = html_report("report.html", "analyze", &[], &caps);
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    for want in [
        "<h2 id=\"findings\">",
        "<h2 id=\"credentials\">Credentials (4)</h2>",
        "<h2 id=\"sessions\">Sessions (5)</h2>",
        "cleartext-password",
        "mailsift auth test",
        "Grüße aus Köln – Test mit Anhängen",
        "logo.png",
        "49450d5923f244ced3e87bdf4cdc5cfdded8259932b8f168dc7c7ec01eb24a65",
        "<b>AUTH</b>",
        "alice@mailsift.test",
        PASSWORD,
        "class=\"ev server reply\"",
    ] {
        assert!(html.contains(want), "missing {want:?}");
    }
    // No external resources: nothing is fetched when the file is opened.
    for bad in ["src=", "<link", "url(", "@import"] {
        assert!(!html.contains(bad), "external reference {bad:?}");
    }
    // The same report from export.
    let exported = html_report("export.html", "export", &[], &caps);
    assert!(exported.contains("mailsift auth test") && exported.contains("logo.png"));
}

#[test]
fn html_transcripts_show_auth_steps_decoded() {
    // AUTH LOGIN sends the user and the password as base64 lines: each is annotated with
    // what the credential record says it carried.
    let html = html_report(
        "login.html",
        "analyze",
        &[],
        &[capture("smtp-auth-login.pcap")],
    );
    assert!(
        html.contains("[decoded: user &quot;bob&quot;]"),
        "user line decoded"
    );
    assert!(
        html.contains("[decoded: password &quot;Builder-7&quot;]"),
        "password line decoded"
    );
    let redacted = html_report(
        "login-redacted.html",
        "analyze",
        &["--redact"],
        &[capture("smtp-auth-login.pcap")],
    );
    assert!(!redacted.contains("Builder-7"));
    assert!(redacted.contains("[decoded: password &quot;&lt;redacted&gt;&quot;]"));
}

#[test]
fn redaction_reaches_the_html_report() {
    let caps = [
        capture("smtp-auth-plain.pcap"),
        capture("smtp-auth-login.pcap"),
        capture("pop3-user-pass.pcap"),
    ];
    let html = html_report("redacted.html", "analyze", &["--redact"], &caps);
    assert!(!html.contains(PASSWORD) && !html.contains(PASSWORD_B64));
    assert!(html.contains("&lt;redacted&gt;"));
    assert!(html.contains("Secrets are redacted"));
    assert!(html.contains("alice@mailsift.test"), "user names are kept");
}

#[test]
fn hostile_subjects_and_commands_come_out_escaped() {
    let conv = Conversation::new(
        "192.0.2.1:40000".parse().unwrap(),
        "192.0.2.2:25".parse().unwrap(),
    )
    .server("220 mx <b>bold</b> ESMTP\r\n")
    .client("EHLO <img src=x onerror=alert(1)>\r\n")
    .server("250 ok\r\n")
    .client("MAIL FROM:<a@example.com>\r\n")
    .server("250 ok\r\n")
    .client("RCPT TO:<b@example.com>\r\n")
    .server("250 ok\r\n")
    .client("DATA\r\n")
    .server("354 go\r\n")
    .client(
        "Subject: <script>alert(\"pwned\")</script>\r\nFrom: \"</td><script>x()</script>\" <a@example.com>\r\n\r\nhi <iframe>\r\n.\r\n",
    )
    .server("250 queued\r\n")
    .client("QUIT\r\n")
    .server("221 bye\r\n");
    let path = temp_path("hostile.pcap");
    std::fs::write(&path, pcap_bytes(&conv.packets())).unwrap();
    let html = html_report(
        "hostile.html",
        "analyze",
        &[],
        &[path.to_string_lossy().into_owned()],
    );
    let _ = std::fs::remove_file(&path);
    assert!(html.contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;"));
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the report's own script"
    );
    for bad in ["<img", "<iframe", "<b>bold</b>", "</td><script>"] {
        assert!(!html.contains(bad), "unescaped {bad:?}");
    }
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
}
