//! Live capture end to end: real Postfix and Dovecot on loopback (`captures/lab.sh`, on free high
//! ports), real clients (swaks, Python's smtplib/poplib via `captures/scenarios.py`), and
//! `mailsift sniff -i lo` running beside `tcpdump -i lo -w` with the same filter. The sessions
//! sniff prints must be the ones `mailsift export` finds in tcpdump's file, and must be printed
//! while the capture still runs.
//!
//! Needs root and the servers and clients; without them the test prints why and passes, unless
//! `MAILSIFT_LIVE_E2E=require` (set by `.ci/run`) turns the skip into a failure.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MAILSIFT: &str = env!("CARGO_BIN_EXE_mailsift");

/// Fake accounts of the lab (captures/README.md).
const ALICE: &str = "alice@mailsift.test";
const ALICE_PW: &str = "Wonderland-42";
const BOB: &str = "bob";
const WRONG_PW: &str = "Not-The-Password-0";

/// The lab's servers stop themselves after this long even if the test dies without cleaning up.
const LAB_WATCHDOG_SECS: u64 = 300;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Why a test cannot run here, if it cannot: it passes with a note, unless
/// `MAILSIFT_LIVE_E2E=require` makes that a failure.
fn skip(test: &str, reason: Option<String>) -> bool {
    let Some(reason) = reason else {
        return false;
    };
    assert!(
        std::env::var("MAILSIFT_LIVE_E2E").as_deref() != Ok("require"),
        "{test} required but cannot run: {reason}"
    );
    eprintln!("{test} skipped: {reason}");
    true
}

/// Why packets cannot be captured here, if they cannot.
fn cannot_capture() -> Option<String> {
    if !cfg!(feature = "live") {
        return Some("built without live capture (run `cargo test --features live`)".into());
    }
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root (the servers and packet capture need it)".into());
    }
    None
}

/// Why the lab cannot run on this machine, if it cannot.
fn missing_prerequisite() -> Option<String> {
    if let Some(reason) = cannot_capture() {
        return Some(reason);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = [
        "bash", "postfix", "postconf", "dovecot", "doveconf", "swaks", "tcpdump", "python3",
        "openssl", "ss", "unshare", "hostname", "setsid", "getent",
    ]
    .into_iter()
    .filter(|cmd| !std::env::split_paths(&path).any(|dir| dir.join(cmd).is_file()))
    .collect();
    if !missing.is_empty() {
        return Some(format!("missing commands: {}", missing.join(" ")));
    }
    if !Path::new("/usr/lib/dovecot/pop3").is_file() {
        return Some("missing the Dovecot POP3 server (dovecot-pop3d)".into());
    }
    for user in ["postfix", "dovenull", "mail"] {
        let known = Command::new("getent").args(["passwd", user]).output();
        if !known.is_ok_and(|o| o.status.success()) {
            return Some(format!("missing system user {user}"));
        }
    }
    None
}

/// Runs a command to completion, killing it (and failing the test) after `limit`.
fn run_for(cmd: &mut Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let status = wait_for(&mut child, limit).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not finish within {limit:?}");
    });
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Waits up to `limit` for a child to exit.
fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGINT, as Ctrl-C does.
fn interrupt(child: &Child) {
    signal(child, "INT");
}

/// Sends a signal (through bash's builtin `kill`: no extra package needed).
fn signal(child: &Child, name: &str) {
    let sent = Command::new("bash")
        .args(["-c", "kill -s \"$1\" \"$2\"", "bash", name])
        .arg(child.id().to_string())
        .status();
    assert!(sent.is_ok_and(|s| s.success()), "cannot send SIG{name}");
}

/// A background process that is killed when the test ends, however it ends.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Five free TCP ports on loopback (IPv4 and IPv6, where the servers listen).
fn free_ports() -> [u16; 5] {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < 5 {
        let v4 = TcpListener::bind("127.0.0.1:0").expect("bind on 127.0.0.1");
        let port = v4.local_addr().expect("bound address").port();
        // A port taken on ::1 (or no IPv6 at all) is skipped; the lab listens on both.
        if let Ok(v6) = TcpListener::bind(("::1", port)) {
            ports.push(port);
            held.push(v6);
        }
        held.push(v4);
    }
    [ports[0], ports[1], ports[2], ports[3], ports[4]]
}

/// Server ports of one lab run.
#[derive(Clone, Copy)]
struct Ports {
    smtp: u16,
    submission: u16,
    smtps: u16,
    pop3: u16,
    pop3s: u16,
}

impl Ports {
    /// The same BPF filter for sniff and tcpdump: the lab's ports only.
    fn bpf(&self) -> String {
        let list: Vec<String> = self.all().iter().map(|p| format!("port {p}")).collect();
        format!("tcp and ({})", list.join(" or "))
    }

    fn all(&self) -> [u16; 5] {
        [
            self.smtp,
            self.submission,
            self.smtps,
            self.pop3,
            self.pop3s,
        ]
    }

    /// `--port` options mapping the high ports to their protocols, for sniff and export alike.
    fn mailsift_args(&self) -> Vec<String> {
        [
            ("smtp", self.smtp),
            ("submission", self.submission),
            ("smtps", self.smtps),
            ("pop3", self.pop3),
            ("pop3s", self.pop3s),
        ]
        .iter()
        .flat_map(|(proto, port)| ["--port".to_string(), format!("{proto}={port}")])
        .collect()
    }

    /// scenarios.py's `--port-map`.
    fn port_map(&self) -> String {
        format!(
            "25={},587={},465={},110={},995={}",
            self.smtp, self.submission, self.smtps, self.pop3, self.pop3s
        )
    }
}

/// Running Postfix and Dovecot in a private temp dir; stopped and removed on drop.
struct Lab {
    dir: PathBuf,
    ports: Ports,
}

impl Lab {
    fn start() -> Lab {
        let [smtp, submission, smtps, pop3, pop3s] = free_ports();
        let ports = Ports {
            smtp,
            submission,
            smtps,
            pop3,
            pop3s,
        };
        let dir = unique_dir();
        let lab = Lab { dir, ports };
        let out = run_for(
            Command::new("bash")
                .arg(repo().join("captures/lab.sh"))
                .arg("start")
                .arg(&lab.dir)
                .env("LAB_SMTP_PORT", smtp.to_string())
                .env("LAB_SUBMISSION_PORT", submission.to_string())
                .env("LAB_SMTPS_PORT", smtps.to_string())
                .env("LAB_POP3_PORT", pop3.to_string())
                .env("LAB_POP3S_PORT", pop3s.to_string())
                .env("LAB_NAME", format!("mailsift-live-{}", std::process::id()))
                .env("LAB_WATCHDOG_SECS", LAB_WATCHDOG_SECS.to_string()),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "lab did not start:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Runs one scenarios.py client against the lab.
    fn python_client(&self, name: &str) {
        let out = run_for(
            Command::new("python3")
                .env("SSLKEYLOGFILE", self.path("live.keys"))
                .arg(repo().join("captures/scenarios.py"))
                .args(["client", name, "--port-map", &self.ports.port_map()])
                .arg("--src")
                .arg(repo().join("captures/source"))
                .arg("--ca")
                .arg(self.path("tls/cert.pem")),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "client {name} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs swaks against the lab; returns whether the server accepted everything.
    fn swaks(&self, port: u16, extra: &[&str]) -> bool {
        let message = std::fs::read_to_string(repo().join("captures/source/short.eml"))
            .expect("captures/source/short.eml");
        let out = run_for(
            Command::new("swaks")
                .args(["--silent", "2", "--helo", "client.mailsift.test"])
                .args(["--timeout", "30", "--server", "127.0.0.1"])
                .args(["--port", &port.to_string()])
                .args(["--from", ALICE, "--to", "bob@mailsift.test"])
                // swaks ends DATA with CRLF "." CRLF itself.
                .args(["--data", message.trim_end_matches('\n')])
                .args(extra),
            Duration::from_secs(60),
        );
        out.status.success()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let stopped = Command::new("bash")
            .arg(repo().join("captures/lab.sh"))
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .ok()
            .and_then(|mut c| wait_for(&mut c, Duration::from_secs(60)));
        if stopped.is_none() {
            eprintln!(
                "lab in {} did not stop; its watchdog stops it",
                self.dir.display()
            );
            return;
        }
        if std::env::var_os("MAILSIFT_LIVE_KEEP").is_some() {
            eprintln!("lab files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A new directory of this process in the temp folder.
fn unique_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    for n in 0..100u32 {
        let dir =
            std::env::temp_dir().join(format!("mailsift-live-{}-{nanos}-{n}", std::process::id()));
        if std::fs::create_dir(&dir).is_ok() {
            return dir;
        }
    }
    panic!("cannot create a temp dir");
}

/// Waits until `file` contains `text` (a process's "ready" line), failing after `limit`.
fn wait_for_text(file: &Path, text: &str, child: &mut Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let log = std::fs::read_to_string(file).unwrap_or_default();
        if log.contains(text) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{} exited ({status}): {log}", file.display());
        }
        assert!(
            Instant::now() < deadline,
            "no {text:?} in {} within {limit:?}: {log}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `mailsift sniff -i lo` with the lab's filter and ports, standard error in `stderr_file`.
fn start_sniff(lab: &Lab, extra: &[&str], stderr_file: &Path) -> Background {
    let stderr = std::fs::File::create(stderr_file).expect("sniff stderr file");
    let mut child = Command::new(MAILSIFT)
        .args(["sniff", "-i", "lo", "--bpf", &lab.ports.bpf()])
        .arg("--keylog")
        .arg(lab.path("live.keys"))
        .args(lab.ports.mailsift_args())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start mailsift sniff");
    // The line comes after the capture handle and its filter are set up.
    wait_for_text(
        stderr_file,
        "capturing on lo",
        &mut child,
        Duration::from_secs(20),
    );
    Background(child)
}

/// Reads a child's standard output line by line on a thread, each line with its arrival time.
fn line_reader(child: &mut Child) -> mpsc::Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

/// A validator for one session object: the export schema's `session` definition.
fn session_validator() -> jsonschema::Validator {
    let path = repo().join("schema/mailsift-export.schema.json");
    let mut schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema file")).expect("JSON");
    let session_schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": schema["$defs"].take(),
        "$ref": "#/$defs/session",
    });
    jsonschema::validator_for(&session_schema).expect("schema compiles")
}

/// Splits NDJSON output into session objects (each checked against the schema) and the
/// run-findings line's findings.
fn parse_ndjson(lines: &[String]) -> (Vec<Map<String, Value>>, Vec<Value>) {
    let validator = session_validator();
    let mut sessions = Vec::new();
    let mut run_findings = Vec::new();
    for line in lines {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON value per line ({e}): {line}"));
        if let Some(Value::Array(findings)) = value.get("run_findings") {
            run_findings.extend(findings.iter().cloned());
            continue;
        }
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .take(5)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "not a valid session: {errors:#?}\n{line}"
        );
        let Value::Object(session) = value else {
            panic!("a session line is not an object: {line}");
        };
        sessions.push(session);
    }
    (sessions, run_findings)
}

/// What a session is compared by: everything but `id`, which is the number of its first
/// packet since the capture started and so depends on when each capture began, not on the
/// traffic. Keyed by the client endpoint, unique per session here.
fn comparable(sessions: &[Map<String, Value>]) -> BTreeMap<String, Map<String, Value>> {
    sessions
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.remove("id");
            (s["client"].to_string(), s)
        })
        .collect()
}

/// Run findings with the session ids they name replaced by those sessions' clients (ids depend
/// on input numbering; see [`comparable`]).
fn comparable_run_findings(findings: &[Value], sessions: &[Map<String, Value>]) -> Vec<Value> {
    let client_of: BTreeMap<String, Value> = sessions
        .iter()
        .map(|s| (s["id"].to_string(), s["client"].clone()))
        .collect();
    findings
        .iter()
        .cloned()
        .map(|mut f| {
            if let Some(Value::Array(ids)) = f.get_mut("sessions") {
                for id in ids.iter_mut() {
                    *id = client_of
                        .get(&id.to_string())
                        .cloned()
                        .unwrap_or(Value::Null);
                }
            }
            f
        })
        .collect()
}

/// How far the two captures' timestamps of one packet may be apart. Each packet socket gets
/// its own kernel timestamp on loopback (they differ by a microsecond or so), so sniff's and
/// tcpdump's times of the same packet are close but not always equal.
const TIMESTAMP_TOLERANCE_NANOS: i128 = 50_000_000;

/// Asserts that two JSON values are equal, except that timestamps (`2026-01-02T03:04:05.678Z`
/// strings) may differ by [`TIMESTAMP_TOLERANCE_NANOS`].
fn same_up_to_timestamps(path: &str, sniffed: &Value, exported: &Value) {
    match (sniffed, exported) {
        (Value::Object(a), Value::Object(b)) => {
            let keys_a: Vec<&String> = a.keys().collect();
            let keys_b: Vec<&String> = b.keys().collect();
            assert_eq!(
                keys_a, keys_b,
                "{path}: different fields (left sniff, right export)"
            );
            for (key, value) in a {
                same_up_to_timestamps(&format!("{path}.{key}"), value, &b[key]);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: lengths differ: {a:?} vs {b:?}");
            for (n, (x, y)) in a.iter().zip(b).enumerate() {
                same_up_to_timestamps(&format!("{path}[{n}]"), x, y);
            }
        }
        (Value::String(a), Value::String(b)) if a != b => {
            match (timestamp_nanos(a), timestamp_nanos(b)) {
                (Some(x), Some(y)) => assert!(
                    (x - y).abs() <= TIMESTAMP_TOLERANCE_NANOS,
                    "{path}: times {a} and {b} too far apart"
                ),
                _ => panic!("{path}: {a:?} (sniff) != {b:?} (export)"),
            }
        }
        _ => assert_eq!(sniffed, exported, "{path} (left sniff, right export)"),
    }
}

/// Nanoseconds since the epoch of an RFC 3339 UTC time as mailsift writes it.
fn timestamp_nanos(text: &str) -> Option<i128> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut ymd = date.split('-').map(|n| n.parse::<i128>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut hms_parts = hms.split(':').map(|n| n.parse::<i128>().ok());
    let (hh, mm, ss) = (hms_parts.next()??, hms_parts.next()??, hms_parts.next()??);
    let digits = fraction.len().min(9);
    let frac: i128 = fraction.get(..digits)?.parse().ok()?;
    let nanos = frac * 10i128.pow(9 - digits as u32);
    // Days since 1970-01-01 of a proleptic Gregorian date (eras of 400 years).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60 * 1_000_000_000 + ss * 1_000_000_000 + nanos)
}

/// The sessions of a capture file as `mailsift export --ndjson` writes them.
fn export_ndjson(lab: &Lab, pcap: &Path) -> Vec<String> {
    export_lines(lab, pcap, "ndjson")
}

/// `mailsift export --format FORMAT` of a capture file, line by line.
fn export_lines(lab: &Lab, pcap: &Path, format: &str) -> Vec<String> {
    let out = run_for(
        Command::new(MAILSIFT)
            .args(["export", "--format", format])
            .arg("--keylog")
            .arg(lab.path("live.keys"))
            .args(lab.ports.mailsift_args())
            .arg(pcap),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn timestamps_parse_to_epoch_nanoseconds() {
    assert_eq!(timestamp_nanos("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        timestamp_nanos("2000-03-01T00:00:01.5Z"),
        Some(951_868_801_500_000_000)
    );
    assert_eq!(
        timestamp_nanos("2026-11-26T14:22:33.109796Z").map(|n| n % 1_000_000_000),
        Some(109_796_000)
    );
    assert_eq!(timestamp_nanos("mail.mailsift.test"), None);
}

#[test]
fn sniff_matches_tcpdump_on_real_servers() {
    if skip("live end-to-end test", missing_prerequisite()) {
        return;
    }
    let lab = Lab::start();
    let ports = lab.ports;
    // The Python clients append their TLS secrets here while sniff watches it.
    std::fs::write(lab.path("live.keys"), "").expect("key log file");

    // tcpdump and sniff side by side, same interface, same filter.
    let pcap = lab.path("live.pcap");
    let tcpdump_err = lab.path("tcpdump.err");
    let mut tcpdump = Background(
        Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "-s", "0", "-w"])
            .arg(&pcap)
            .arg(ports.bpf())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&tcpdump_err).expect("tcpdump stderr file"))
            .spawn()
            .expect("start tcpdump"),
    );
    wait_for_text(
        &tcpdump_err,
        "listening on",
        &mut tcpdump.0,
        Duration::from_secs(20),
    );
    let sniff_err = lab.path("sniff.err");
    let mut sniff = start_sniff(&lab, &["--ndjson"], &sniff_err);
    let lines = line_reader(&mut sniff.0);
    // A second sniff streams the same traffic as Elastic Common Schema events.
    let ecs_err = lab.path("sniff-ecs.err");
    let mut ecs_sniff = start_sniff(&lab, &["--ecs"], &ecs_err);
    let ecs_lines = line_reader(&mut ecs_sniff.0);

    // The traffic: a cleartext AUTH PLAIN login with a message, a failed AUTH LOGIN, a
    // STARTTLS session, and a POP3 USER/PASS session with RETR and DELE.
    let plain_login = [
        "--auth",
        "PLAIN",
        "--auth-user",
        ALICE,
        "--auth-password",
        ALICE_PW,
    ];
    assert!(
        lab.swaks(ports.submission, &plain_login),
        "AUTH PLAIN login"
    );
    let bad_login = [
        "--auth",
        "LOGIN",
        "--auth-user",
        BOB,
        "--auth-password",
        WRONG_PW,
    ];
    assert!(
        !lab.swaks(ports.submission, &bad_login),
        "login with the wrong password succeeded"
    );
    lab.python_client("smtp-starttls");
    lab.python_client("pop3-mailbox");
    let clients_done = Instant::now();

    // Every session ended with FIN; sniff must print each within seconds, with no more
    // traffic on the interface and before it is told to stop.
    const SESSIONS: usize = 4;
    let mut early = Vec::new();
    let deadline = clients_done + Duration::from_secs(30);
    while early.len() < SESSIONS {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok((at, line)) => early.push((at, line)),
            Err(_) => panic!(
                "sniff printed {} of {SESSIONS} sessions within 30 s of their end: {early:#?}\n{}",
                early.len(),
                std::fs::read_to_string(&sniff_err).unwrap_or_default()
            ),
        }
    }
    let last_arrival = early
        .iter()
        .map(|(at, _)| *at)
        .max()
        .unwrap_or(clients_done);
    eprintln!(
        "sessions printed {:?} after the last client finished",
        last_arrival.saturating_duration_since(clients_done)
    );

    // Ctrl-C: a clean exit, status 0, nothing lost.
    let stopped_at = Instant::now();
    interrupt(&sniff.0);
    let status = wait_for(&mut sniff.0, Duration::from_secs(15)).expect("sniff ends on SIGINT");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(5),
        "slow stop: {:?}",
        stopped_at.elapsed()
    );
    let sniff_log = std::fs::read_to_string(&sniff_err).unwrap_or_default();
    assert!(status.success(), "sniff exit status {status}: {sniff_log}");
    assert!(
        sniff_log.lines().any(|l| l
            == "mailsift: 0 packets dropped by the kernel, 0 by the interface, 0 by mailsift (queue full)"),
        "sniff lost packets (or did not say): {sniff_log}"
    );
    let mut sniffed: Vec<String> = early.into_iter().map(|(_, l)| l).collect();
    while let Ok((_, line)) = lines.recv_timeout(Duration::from_secs(5)) {
        sniffed.push(line);
    }
    let (sniff_sessions, sniff_run_findings) = parse_ndjson(&sniffed);
    assert_eq!(
        sniff_sessions.len(),
        SESSIONS,
        "sessions after SIGINT that should have been printed before: {sniffed:#?}"
    );

    interrupt(&tcpdump.0);
    wait_for(&mut tcpdump.0, Duration::from_secs(15)).expect("tcpdump ends on SIGINT");
    let tcpdump_log = std::fs::read_to_string(&tcpdump_err).unwrap_or_default();
    assert!(
        tcpdump_log
            .lines()
            .any(|l| l.trim() == "0 packets dropped by kernel"),
        "tcpdump lost packets: {tcpdump_log}"
    );

    let captured = |log: &str, suffix: &str| -> Option<u64> {
        log.lines()
            .find_map(|l| l.strip_suffix(suffix)?.rsplit(' ').next()?.parse().ok())
    };
    let sniff_log = std::fs::read_to_string(&sniff_err).unwrap_or_default();
    assert_eq!(
        captured(&sniff_log, " packets captured on lo"),
        captured(&tcpdump_log, " packets captured"),
        "packet counts differ:\n{sniff_log}\n{tcpdump_log}"
    );

    // The ECS stream holds the events export writes from tcpdump's file: the same number of
    // each kind (session, message, credential, finding), each line one JSON object.
    interrupt(&ecs_sniff.0);
    let status = wait_for(&mut ecs_sniff.0, Duration::from_secs(15)).expect("ECS sniff ends");
    assert!(status.success(), "ECS sniff exit status {status}");
    let mut ecs_live = Vec::new();
    while let Ok((_, line)) = ecs_lines.recv_timeout(Duration::from_secs(5)) {
        ecs_live.push(line);
    }
    let datasets = |lines: &[String]| -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for line in lines {
            let event: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON value per line ({e}): {line}"));
            let dataset = event["event"]["dataset"]
                .as_str()
                .unwrap_or("none")
                .to_string();
            *counts.entry(dataset).or_default() += 1;
        }
        counts
    };
    let live_counts = datasets(&ecs_live);
    assert_eq!(live_counts, datasets(&export_lines(&lab, &pcap, "ecs")));
    assert_eq!(live_counts.get("mailsift.session"), Some(&SESSIONS));

    // The STARTTLS session was decrypted live, from a key log written while it ran.
    let starttls: Vec<_> = sniff_sessions
        .iter()
        .filter(|s| s["tls"].is_object())
        .collect();
    assert_eq!(starttls.len(), 1, "one TLS session");
    assert_eq!(
        starttls[0]["tls"]["decrypted"], true,
        "{:?}",
        starttls[0]["tls"]
    );
    let inside: Vec<&str> = starttls[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["tls"] == true && e["type"] == "command")
        .filter_map(|e| e["verb"].as_str())
        .collect();
    assert!(
        inside.contains(&"AUTH") && inside.contains(&"DATA"),
        "{inside:?}"
    );

    // What sniff saw is what export finds in tcpdump's file.
    let (file_sessions, file_run_findings) = parse_ndjson(&export_ndjson(&lab, &pcap));
    let live = comparable(&sniff_sessions);
    let file = comparable(&file_sessions);
    assert_eq!(
        live.keys().collect::<Vec<_>>(),
        file.keys().collect::<Vec<_>>(),
        "different sessions"
    );
    for (client, live_session) in &live {
        let file_session = Value::Object(file[client].clone());
        same_up_to_timestamps(
            &format!("session of {client}"),
            &Value::Object(live_session.clone()),
            &file_session,
        );
    }
    same_up_to_timestamps(
        "run findings",
        &Value::Array(comparable_run_findings(
            &sniff_run_findings,
            &sniff_sessions,
        )),
        &Value::Array(comparable_run_findings(&file_run_findings, &file_sessions)),
    );

    // What the traffic must have produced, so that equal outputs are not equally empty.
    let by_server_port = |port: u16| -> Vec<&Map<String, Value>> {
        live.values()
            .filter(|s| s["server"]["port"] == port)
            .collect()
    };
    let submission = by_server_port(ports.submission);
    assert_eq!(submission.len(), 2);
    let mut logins: Vec<(String, bool, usize)> = submission
        .iter()
        .flat_map(|s| {
            let messages = s["messages"].as_array().map_or(0, Vec::len);
            s["credentials"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |c| {
                    (
                        c["mechanism"].as_str().unwrap_or_default().to_string(),
                        c["success"] == true,
                        messages,
                    )
                })
        })
        .collect();
    logins.sort();
    assert_eq!(
        logins,
        [
            ("LOGIN".to_string(), false, 0),
            ("PLAIN".to_string(), true, 1)
        ],
        "submission logins (mechanism, success, messages)"
    );
    let starttls = by_server_port(ports.smtp);
    assert_eq!(starttls.len(), 1);
    assert!(
        starttls[0]["tls"]["version"].is_string(),
        "STARTTLS session without TLS: {}",
        starttls[0]["tls"]
    );
    let pop3 = by_server_port(ports.pop3);
    assert_eq!(pop3.len(), 1);
    assert_eq!(pop3[0]["protocol"], "pop3");
    assert_eq!(pop3[0]["credentials"][0]["success"], true);
    let pop3_messages = pop3[0]["messages"].as_array().map_or(0, Vec::len);
    assert!(
        pop3_messages >= 4,
        "POP3 RETR of 4 messages: {pop3_messages}"
    );
    let deletes = pop3[0]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["verb"] == "DELE")
        .count();
    assert_eq!(deletes, 4, "POP3 DELE commands");
    assert!(
        sniff_run_findings
            .iter()
            .any(|f| f["rule"] == "login-after-failures"),
        "run findings: {sniff_run_findings:?}"
    );

    // Without --ndjson: the tables, printed when Ctrl-C stops the capture.
    let table_err = lab.path("sniff-table.err");
    let mut table_sniff = start_sniff(&lab, &[], &table_err);
    let table_lines = line_reader(&mut table_sniff.0);
    assert!(lab.swaks(ports.smtp, &[]), "plain SMTP session");
    // Let the closing FIN/ACKs pass before stopping.
    std::thread::sleep(Duration::from_secs(1));
    interrupt(&table_sniff.0);
    let status =
        wait_for(&mut table_sniff.0, Duration::from_secs(15)).expect("sniff ends on SIGINT");
    let table_log = std::fs::read_to_string(&table_err).unwrap_or_default();
    assert!(status.success(), "sniff exit status {status}: {table_log}");
    let mut table = String::new();
    while let Ok((_, line)) = table_lines.recv_timeout(Duration::from_secs(5)) {
        table.push_str(&line);
        table.push('\n');
    }
    for expected in [
        "Sessions (1)".to_string(),
        "SMTP sessions (1)".to_string(),
        format!("127.0.0.1:{}", ports.smtp),
        "closed".to_string(),
    ] {
        assert!(table.contains(&expected), "no {expected:?} in:\n{table}");
    }
}

/// `--count` ends a capture by itself after that many packets, with status 0.
#[test]
fn sniff_stops_after_count() {
    if skip("live --count test", cannot_capture()) {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind on 127.0.0.1");
    let port = listener.local_addr().expect("bound address").port();
    let err_file = unique_dir().join("sniff.err");
    let mut sniff = Background(
        Command::new(MAILSIFT)
            .args(["sniff", "-i", "lo", "--count", "2", "--ndjson"])
            .args(["--bpf", &format!("tcp port {port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_file).expect("stderr file"))
            .spawn()
            .expect("start mailsift sniff"),
    );
    wait_for_text(
        &err_file,
        "capturing on lo",
        &mut sniff.0,
        Duration::from_secs(20),
    );
    // A TCP handshake: three packets.
    let _client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _server = listener.accept().expect("accept");
    let status = wait_for(&mut sniff.0, Duration::from_secs(10)).expect("sniff ends by itself");
    let log = std::fs::read_to_string(&err_file).unwrap_or_default();
    let _ = std::fs::remove_dir_all(err_file.parent().unwrap_or(Path::new("/nonexistent")));
    assert!(status.success(), "exit status {status}: {log}");
    assert!(log.contains("2 packets captured on lo"), "{log}");
}

/// SIGTERM (`kill`, `timeout`) ends a capture as cleanly as Ctrl-C: status 0, tables printed.
#[test]
fn sniff_stops_cleanly_on_sigterm() {
    if skip("live SIGTERM test", cannot_capture()) {
        return;
    }
    let quiet_port = free_ports()[0];
    let dir = unique_dir();
    let err_file = dir.join("sniff.err");
    let mut sniff = Background(
        Command::new(MAILSIFT)
            .args(["sniff", "-i", "lo"])
            .args(["--bpf", &format!("tcp port {quiet_port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_file).expect("stderr file"))
            .spawn()
            .expect("start mailsift sniff"),
    );
    let lines = line_reader(&mut sniff.0);
    wait_for_text(
        &err_file,
        "capturing on lo",
        &mut sniff.0,
        Duration::from_secs(20),
    );
    signal(&sniff.0, "TERM");
    let status = wait_for(&mut sniff.0, Duration::from_secs(10)).expect("sniff ends on SIGTERM");
    let log = std::fs::read_to_string(&err_file).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "exit status {status}: {log}");
    let mut stdout = String::new();
    while let Ok((_, line)) = lines.recv_timeout(Duration::from_secs(5)) {
        stdout.push_str(&line);
    }
    assert!(stdout.contains("Sessions (0)"), "{stdout}");
}

/// When the reader of `--ndjson` goes away (`sniff --ndjson | head -1`), the capture ends at
/// the next session instead of running on with nowhere to write.
#[test]
fn sniff_stops_when_its_output_is_closed() {
    if skip("live closed-output test", cannot_capture()) {
        return;
    }
    use std::io::Write;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind on 127.0.0.1");
    let port = listener.local_addr().expect("bound address").port();
    let dir = unique_dir();
    let err_file = dir.join("sniff.err");
    let mut sniff = Background(
        Command::new(MAILSIFT)
            .args(["sniff", "-i", "lo", "--ndjson"])
            .args(["--bpf", &format!("tcp port {port}")])
            .args(["--port", &format!("smtp={port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_file).expect("stderr file"))
            .spawn()
            .expect("start mailsift sniff"),
    );
    wait_for_text(
        &err_file,
        "capturing on lo",
        &mut sniff.0,
        Duration::from_secs(20),
    );
    drop(sniff.0.stdout.take());
    // One short SMTP-looking session, closed from both sides.
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (mut server, _) = listener.accept().expect("accept");
    server.write_all(b"220 lab ESMTP\r\n").expect("greeting");
    client.write_all(b"QUIT\r\n").expect("QUIT");
    server.write_all(b"221 bye\r\n").expect("reply");
    drop(client);
    drop(server);
    let status = wait_for(&mut sniff.0, Duration::from_secs(20));
    let log = std::fs::read_to_string(&err_file).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let status = status.unwrap_or_else(|| panic!("sniff kept running without a reader: {log}"));
    assert!(status.success(), "exit status {status}: {log}");
}

/// `--duration` ends a capture on a quiet interface by itself, with status 0.
#[test]
fn sniff_stops_after_duration() {
    if skip("live --duration test", cannot_capture()) {
        return;
    }
    let quiet_port = free_ports()[0];
    for mode in [&["--ndjson"][..], &[][..]] {
        let started = Instant::now();
        let out = run_for(
            Command::new(MAILSIFT)
                .args(["sniff", "-i", "lo", "--duration", "1"])
                .args(["--bpf", &format!("tcp port {quiet_port}")])
                .args(mode),
            Duration::from_secs(15),
        );
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "exit status {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(6),
            "took {took:?}"
        );
        if mode.is_empty() {
            assert!(stdout.contains("Sessions (0)"), "{stdout}");
        } else {
            assert_eq!(stdout, "", "no sessions, no lines");
        }
    }
}

/// `-w FILE` saves what sniff captured as a pcap that `export` reads back to the same
/// sessions; the file is there only once the capture stopped.
#[test]
fn sniff_writes_what_it_captured_to_a_pcap_file() {
    if skip("live -w test", cannot_capture()) {
        return;
    }
    use std::io::Write;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind on 127.0.0.1");
    let port = listener.local_addr().expect("bound address").port();
    let dir = unique_dir();
    let (err_file, pcap) = (dir.join("sniff.err"), dir.join("saved.pcap"));
    let smtp_port = format!("smtp={port}");
    let mut sniff = Background(
        Command::new(MAILSIFT)
            .args(["sniff", "-i", "lo", "--ndjson", "--port", &smtp_port])
            .args(["--bpf", &format!("tcp port {port}")])
            .arg("-w")
            .arg(&pcap)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_file).expect("stderr file"))
            .spawn()
            .expect("start mailsift sniff"),
    );
    let lines = line_reader(&mut sniff.0);
    wait_for_text(
        &err_file,
        "capturing on lo",
        &mut sniff.0,
        Duration::from_secs(20),
    );
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (mut server, _) = listener.accept().expect("accept");
    server.write_all(b"220 lab ESMTP\r\n").expect("greeting");
    client.write_all(b"QUIT\r\n").expect("QUIT");
    server.write_all(b"221 bye\r\n").expect("reply");
    drop(client);
    drop(server);
    // The session's line: the capture has seen all of it, and still runs.
    let (_, first) = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("the session's line while the capture runs");
    let mut sniffed = vec![first];
    assert!(
        !pcap.exists(),
        "the file takes its name only when the capture stops"
    );
    interrupt(&sniff.0);
    let status = wait_for(&mut sniff.0, Duration::from_secs(10)).expect("sniff ends on SIGINT");
    let log = std::fs::read_to_string(&err_file).unwrap_or_default();
    assert!(status.success(), "exit status {status}: {log}");
    while let Ok((_, line)) = lines.recv_timeout(Duration::from_secs(2)) {
        sniffed.push(line);
    }
    let exported = run_for(
        Command::new(MAILSIFT)
            .args(["export", "--ndjson", "--port", &smtp_port])
            .arg(&pcap),
        Duration::from_secs(30),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(exported.status.success(), "{exported:?}");
    let exported: Vec<String> = String::from_utf8_lossy(&exported.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let (sniffed, _) = parse_ndjson(&sniffed);
    let (exported, _) = parse_ndjson(&exported);
    assert_eq!(sniffed.len(), 1, "{log}");
    assert_eq!(exported.len(), sniffed.len());
}
