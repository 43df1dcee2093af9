//! Shared plumbing for the differential tests over the public capture corpus
//! (`../shared/corpus`): reading its index files, running tshark, running mailsift,
//! and printing figure tables. Nothing here copies corpus contents into the project.
#![allow(dead_code)]

use mailsift::engine::{self, EngineConfig, SessionSink};
use mailsift::session::{MessageBlob, SessionRecord};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One capture of the corpus, as MANIFEST.tsv and ORACLE.jsonl describe it.
#[derive(Debug, Clone)]
pub struct Capture {
    /// Path relative to the corpus root; also the key used in expected-mismatch tables.
    pub local_path: String,
    /// Source repository (`owner/name`).
    pub repo: String,
    /// Path of the capture inside its source repository.
    pub path_in_repo: String,
    /// Feature tags (`auth-login`, `bdat`, `nonstd-port-2525`, ...).
    pub features: Vec<String>,
    /// SMTP sessions with payload, per tshark.
    pub smtp_sessions: u32,
    /// POP3 sessions with payload, per tshark.
    pub pop3_sessions: u32,
    /// Credentials `tshark -z credentials` lists.
    pub tshark_credentials: u32,
    /// The capture's ORACLE.jsonl entry (null when missing).
    pub oracle: serde_json::Value,
    /// Absolute path of the capture file.
    pub file: PathBuf,
}

impl Capture {
    /// Whether MANIFEST.tsv tags the capture with `tag`.
    pub fn has(&self, tag: &str) -> bool {
        self.features.iter().any(|f| f == tag)
    }

    /// Non-standard server ports the corpus says carry mail (`nonstd-port-N` tags).
    pub fn nonstd_ports(&self) -> Vec<u16> {
        self.features
            .iter()
            .filter_map(|f| f.strip_prefix("nonstd-port-"))
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

/// The corpus index.
#[derive(Debug)]
pub struct Corpus {
    /// Corpus root folder.
    pub root: PathBuf,
    /// Every capture, in MANIFEST.tsv order.
    pub captures: Vec<Capture>,
    /// EXPECTED_OUTPUTS.tsv rows: (local path of the output, repo, capture path in that repo).
    pub expected: Vec<(String, String, String)>,
}

impl Corpus {
    /// Expected-output files of the source projects for `cap` whose name ends with `suffix`.
    pub fn expected_outputs(&self, cap: &Capture, suffix: &str) -> Vec<PathBuf> {
        self.expected
            .iter()
            .filter(|(local, repo, for_path)| {
                *repo == cap.repo && *for_path == cap.path_in_repo && local.ends_with(suffix)
            })
            .map(|(local, _, _)| self.root.join(local))
            .collect()
    }
}

/// Opens the corpus and checks tshark is there; prints why and returns None when either is
/// missing, so the calling test passes as skipped.
pub fn open(test: &str) -> Option<Corpus> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !root.join("MANIFEST.tsv").is_file() {
        eprintln!("{test}: SKIPPED, no corpus at {}", root.display());
        return None;
    }
    if !tshark_available() {
        eprintln!("{test}: SKIPPED, tshark is not installed");
        return None;
    }
    let manifest = std::fs::read_to_string(root.join("MANIFEST.tsv")).ok()?;
    let mut oracle: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(root.join("ORACLE.jsonl")) {
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                && let Some(p) = v["local_path"].as_str()
            {
                oracle.insert(p.to_string(), v);
            }
        }
    }
    let mut lines = manifest.lines();
    let header: Vec<&str> = lines.next()?.split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (c_local, c_repo, c_path, c_feat, c_smtp, c_pop, c_cred) = (
        col("local_path")?,
        col("repo")?,
        col("path_in_repo")?,
        col("features")?,
        col("smtp_sessions")?,
        col("pop3_sessions")?,
        col("tshark_credentials_found")?,
    );
    let mut captures = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("");
        let local = get(c_local).to_string();
        captures.push(Capture {
            file: root.join(&local),
            repo: get(c_repo).to_string(),
            path_in_repo: get(c_path).to_string(),
            features: get(c_feat).split(',').map(str::to_string).collect(),
            smtp_sessions: get(c_smtp).parse().unwrap_or(0),
            pop3_sessions: get(c_pop).parse().unwrap_or(0),
            tshark_credentials: get(c_cred).parse().unwrap_or(0),
            oracle: oracle.remove(&local).unwrap_or_default(),
            local_path: local,
        });
    }
    let mut expected = Vec::new();
    if let Ok(text) = std::fs::read_to_string(root.join("EXPECTED_OUTPUTS.tsv")) {
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            if let (Some(l), Some(r), Some(p)) = (f.first(), f.get(1), f.get(4)) {
                expected.push((l.to_string(), r.to_string(), p.to_string()));
            }
        }
    }
    Some(Corpus {
        root,
        captures,
        expected,
    })
}

/// Whether a `tshark` binary runs.
pub fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `tshark -n -r FILE ARGS...` and returns its standard output (lossy UTF-8).
pub fn tshark(file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(file)
        .args(args)
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => panic!("tshark on {}: {e}", file.display()),
    }
}

/// Runs `tshark -n -r FILE ARGS... --export-objects imf,DIR` and returns the exported files'
/// names and contents; the scratch folder is removed again.
pub fn tshark_imf_objects(file: &Path, args: &[&str]) -> (String, Vec<(String, Vec<u8>)>) {
    let dir = scratch_dir("imf");
    let spec = format!("imf,{}", dir.display());
    let mut all: Vec<&str> = args.to_vec();
    all.push("--export-objects");
    all.push(&spec);
    let stdout = tshark(file, &all);
    let mut objects = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if let Ok(bytes) = std::fs::read(e.path()) {
                objects.push((e.file_name().to_string_lossy().into_owned(), bytes));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    objects.sort();
    (stdout, objects)
}

fn scratch_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("mailsift-corpus-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    dir
}

/// What mailsift made of one capture.
#[derive(Default)]
pub struct Analysis {
    /// Finished sessions.
    pub sessions: Vec<SessionRecord>,
    /// Message bytes by (session id, message index), when they were asked for.
    pub blobs: BTreeMap<(u64, usize), Vec<u8>>,
}

impl SessionSink for Analysis {
    fn session(&mut self, rec: SessionRecord) {
        self.sessions.push(rec);
    }
    fn message_bytes(&mut self, rec: &SessionRecord, blob: MessageBlob) {
        // The bytes were streamed to a spool file; read them back and leave nothing behind.
        let bytes = std::fs::read(&blob.files.eml).expect("spooled message");
        let _ = std::fs::remove_file(&blob.files.eml);
        for a in &blob.files.attachments {
            let _ = std::fs::remove_file(&a.file);
        }
        self.blobs.insert((rec.id, blob.message), bytes);
    }
}

/// Runs one capture through mailsift, mapping the corpus's non-standard mail ports when
/// `extra_ports` is set and keeping message bytes when `keep_bytes` is set.
pub fn analyse(cap: &Capture, keep_bytes: bool, extra_ports: bool) -> Analysis {
    // The other tools list connections that carried nothing too; so do these comparisons.
    let mut config = EngineConfig {
        report_empty_sessions: true,
        ..EngineConfig::default()
    };
    let spool = keep_bytes.then(|| scratch_dir("spool"));
    config.limits.spool = spool
        .as_ref()
        .map(|d| std::sync::Arc::new(mailsift::mail::Spool::new(d)));
    if extra_ports {
        for p in cap.nonstd_ports() {
            // The corpus tags only SMTP captures with non-standard ports.
            config
                .ports
                .add_spec(&format!("smtp={p}"))
                .expect("valid port spec");
        }
    }
    let mut sink = Analysis::default();
    engine::run_files(
        std::slice::from_ref(&cap.file),
        config,
        &mut None,
        &mut sink,
        &mut |_| {},
    );
    if let Some(d) = spool {
        let _ = std::fs::remove_dir_all(d);
    }
    sink
}

/// Maps `f` over `items` on two worker threads (the machine has two cores, and tshark
/// start-up dominates), keeping the input order in the result.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 2);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    results.lock().expect("no poisoned lock")[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no poisoned lock")
        .into_iter()
        .map(|r| r.expect("every item mapped"))
        .collect()
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A figure for the summary table: `agreed` out of `total`.
pub struct Figure {
    /// What is counted.
    pub what: String,
    /// How many agree.
    pub agreed: usize,
    /// How many were compared.
    pub total: usize,
}

impl Figure {
    /// A new figure.
    pub fn new(what: &str, agreed: usize, total: usize) -> Self {
        Figure {
            what: what.to_string(),
            agreed,
            total,
        }
    }

    /// Agreement as a fraction (1.0 when nothing was compared).
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.agreed as f64 / self.total as f64
        }
    }
}

/// Prints a figure table under a title.
pub fn print_figures(title: &str, figures: &[Figure]) {
    eprintln!("\n== {title}");
    let width = figures.iter().map(|f| f.what.len()).max().unwrap_or(0);
    for f in figures {
        eprintln!(
            "  {:<width$}  {:>5} / {:<5} ({:5.1}%)",
            f.what,
            f.agreed,
            f.total,
            100.0 * f.ratio()
        );
    }
}

/// A difference between mailsift and a reference, with the capture it was seen in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mismatch {
    /// Capture path relative to the corpus root.
    pub capture: String,
    /// Stable kind, matched against the test's table of expected mismatches.
    pub kind: &'static str,
    /// What differs (no credentials or message contents).
    pub detail: String,
}

/// One expected difference: the capture, the mismatch kind, how many mismatches of that
/// kind the capture gives, and why mailsift is right or why the difference is tolerated.
pub type Expected = (&'static str, &'static str, usize, &'static str);

/// Splits mismatches into explained ones (their capture and kind are in `expected`, with the
/// same number of occurrences) and new ones; prints both, and returns the new ones plus the
/// expected entries that no longer occur as listed.
pub fn triage<'a>(
    mismatches: &[Mismatch],
    expected: &'a [Expected],
) -> (Vec<Mismatch>, Vec<&'a Expected>) {
    let mut new = Vec::new();
    let mut seen = vec![0usize; expected.len()];
    for m in mismatches {
        match expected
            .iter()
            .position(|(c, k, _, _)| *c == m.capture && *k == m.kind)
        {
            Some(i) => {
                seen[i] += 1;
                eprintln!("  explained  {} [{}] {}", m.capture, m.kind, m.detail);
            }
            None => {
                eprintln!("  NEW        {} [{}] {}", m.capture, m.kind, m.detail);
                new.push(m.clone());
            }
        }
    }
    let mut stale = Vec::new();
    for (e, n) in expected.iter().zip(seen) {
        if n == e.2 {
            eprintln!("  reason     {} [{}] x{n}: {}", e.0, e.1, e.3);
        } else {
            eprintln!(
                "  CHANGED    {} [{}] occurs {n} times, the table says {}",
                e.0, e.1, e.2
            );
            stale.push(e);
        }
    }
    (new, stale)
}

/// Turns an IMF object as tshark exports it (the wire form of DATA or RETR content) into
/// message content as mailsift records it: drops the terminating `.` line when it is there
/// and undoes dot-stuffing (RFC 5321 4.5.2, RFC 1939 3).
pub fn unstuff(wire: &[u8]) -> Vec<u8> {
    let body = if wire == b".\r\n" {
        &[][..]
    } else {
        wire.strip_suffix(b"\r\n.\r\n".as_slice())
            .map(|b| &wire[..b.len() + 2])
            .unwrap_or(wire)
    };
    let mut out = Vec::with_capacity(body.len());
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            at_line_start = false;
            continue;
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    out
}

/// Decodes a header value the way RFC 2047 reads it, independently of mailsift's own
/// decoder: unfolds, decodes `=?charset?B|Q?...?=` words in the charsets the corpus uses
/// (UTF-8, US-ASCII, ISO-8859-1, Windows-1252) and drops white space between adjacent
/// encoded words. Returns None for a charset this test helper does not know.
pub fn decode_rfc2047(raw: &str) -> Option<String> {
    let unfolded = raw.replace("\r\n", "").replace('\n', "");
    let mut out = String::new();
    let mut rest = unfolded.as_str();
    let mut pending_space = String::new();
    let mut after_word = false;
    while !rest.is_empty() {
        if let Some((decoded, len)) = encoded_word(rest) {
            let decoded = decoded?;
            if !after_word {
                out.push_str(&pending_space);
            }
            pending_space.clear();
            out.push_str(&decoded);
            rest = &rest[len..];
            after_word = true;
            continue;
        }
        let ch = rest.chars().next()?;
        rest = &rest[ch.len_utf8()..];
        if ch == ' ' || ch == '\t' {
            pending_space.push(ch);
            continue;
        }
        out.push_str(&pending_space);
        pending_space.clear();
        out.push(ch);
        after_word = false;
    }
    out.push_str(&pending_space);
    Some(out)
}

/// Decodes an encoded word at the start of `s`: (decoded text or None for an unknown
/// charset, length consumed), or None when `s` does not start with one.
fn encoded_word(s: &str) -> Option<(Option<String>, usize)> {
    let body = s.strip_prefix("=?")?;
    let (charset, body) = body.split_once('?')?;
    let (enc, body) = body.split_once('?')?;
    let end = body.find("?=")?;
    let text = &body[..end];
    if charset.is_empty() || enc.len() != 1 || text.contains(' ') {
        return None;
    }
    let len = 2 + charset.len() + 1 + enc.len() + 1 + end + 2;
    let bytes = match enc {
        "B" | "b" => {
            use base64::Engine;
            let cfg = base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
            base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, cfg)
                .decode(text)
                .ok()?
        }
        "Q" | "q" => {
            let mut v = Vec::new();
            let b = text.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => v.push(b' '),
                    b'=' if let Some(v8) = b
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok()) =>
                    {
                        v.push(v8);
                        i += 2;
                    }
                    c => v.push(c),
                }
                i += 1;
            }
            v
        }
        _ => return None,
    };
    let charset = charset.split('*').next().unwrap_or("").to_ascii_lowercase();
    Some((decode_charset(&charset, &bytes), len))
}

/// Decodes bytes in one of the charsets the corpus's encoded words use.
pub fn decode_charset(charset: &str, bytes: &[u8]) -> Option<String> {
    const CP1252_HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match charset {
        "utf-8" | "utf8" => Some(String::from_utf8_lossy(bytes).into_owned()),
        "us-ascii" | "ascii" | "iso-8859-1" | "latin1" | "iso8859-1" => {
            Some(bytes.iter().map(|&b| b as char).collect())
        }
        "windows-1252" | "cp1252" => Some(
            bytes
                .iter()
                .map(|&b| match b {
                    0x80..=0x9f => CP1252_HIGH[(b - 0x80) as usize],
                    _ => b as char,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Undoes the escapes tshark's `-T fields` output applies to strings (`\r`, `\n`, `\t`, `\\`).
pub fn tshark_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

/// Rows of a Zeek ASCII log as field-name maps; `-` (unset) and `(empty)` become None.
/// Reads `zeek-cut` output too, whose header is the first line that is not a comment.
pub fn zeek_log(path: &Path) -> Vec<BTreeMap<String, Option<String>>> {
    let Ok(text) = std::fs::read(path) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&text);
    let mut fields: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("#fields\t") {
            fields = f.split('\t').map(str::to_string).collect();
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if fields.is_empty() {
            fields = line.split('\t').map(str::to_string).collect();
            continue;
        }
        let row = fields
            .iter()
            .zip(line.split('\t'))
            .map(|(k, v)| {
                let v = match v {
                    "-" | "(empty)" => None,
                    v => Some(zeek_unescape(v)),
                };
                (k.clone(), v)
            })
            .collect();
        rows.push(row);
    }
    rows
}

/// Zeek writes non-printable bytes as `\xNN`; turns them back into bytes (read as UTF-8).
fn zeek_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && let Some(h) = b.get(i + 2..i + 4)
            && let Some(v) = std::str::from_utf8(h)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn rfc2047_reference_decoder() {
    assert_eq!(decode_rfc2047("plain text").as_deref(), Some("plain text"));
    assert_eq!(
        decode_rfc2047("=?iso-8859-1?Q?caf=E9_noir?=").as_deref(),
        Some("café noir")
    );
    // White space between adjacent encoded words goes; folding keeps its white space.
    assert_eq!(
        decode_rfc2047("a  =?utf-8?B?w6k=?= =?UTF-8?q?=C3=A8?=\r\n  b").as_deref(),
        Some("a  éè  b")
    );
    assert_eq!(decode_rfc2047("=?koi8-r?B?AAAA?="), None);
    assert_eq!(tshark_unescape(r"a\r\n b\\c"), "a\r\n b\\c");
    assert_eq!(zeek_unescape(r"caf\xc3\xa9"), "café");
}
