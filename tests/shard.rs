//! `--shard K/N`: each shard analyses the flows whose symmetric hash falls to it, and the N
//! outputs together are the single run's: their session lines (NDJSON and ECS), sorted by
//! session id, equal the single run's byte for byte. Checked on every bundled capture and on
//! generated busy captures (many connections open at once, non-mail traffic on other ports),
//! for N = 2, 3 and 7.

use std::path::{Path, PathBuf};
use std::process::Command;

fn mailsift() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mailsift"))
}

/// The session lines of `export` over `input` with `args`, each keyed by its session id.
fn export(input: &Path, args: &[&str]) -> Vec<(u64, String)> {
    let out = mailsift()
        .arg("export")
        .args(args)
        .arg(input)
        .output()
        .expect("mailsift runs");
    assert!(out.status.success(), "{input:?} {args:?}: {:?}", out.status);
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    text.lines()
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            // NDJSON sessions carry `id`; ECS events their session's `mailsift.session.id`.
            let id = v["id"]
                .as_u64()
                .or_else(|| v["mailsift"]["session"]["id"].as_u64())?;
            Some((id, line.to_string()))
        })
        .collect()
}

/// Checks that the shards of `input` for each N add up to the single run, in `format`.
fn check(input: &Path, format: &str) {
    let single = export(input, &["--format", format]);
    assert!(!single.is_empty(), "{input:?} {format}: no session lines");
    for n in [2u32, 3, 7] {
        let mut merged = Vec::new();
        for k in 0..n {
            let shard = format!("{k}/{n}");
            let lines = export(input, &["--format", format, "--shard", &shard]);
            merged.extend(lines);
        }
        // A stable sort keeps each session's events (ECS) in their order.
        merged.sort_by_key(|(id, _)| *id);
        let mut want = single.clone();
        want.sort_by_key(|(id, _)| *id);
        assert_eq!(merged.len(), want.len(), "{input:?} {format}, {n} shards");
        for (got, want) in merged.iter().zip(&want) {
            assert_eq!(got, want, "{input:?} {format}, {n} shards");
        }
    }
}

fn bundled() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("captures/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "pcap" || x == "pcapng" || x == "gz")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_shards_of_every_bundled_capture_add_up_to_the_single_run() {
    let files = bundled();
    assert!(files.len() > 10, "{files:?}");
    for f in &files {
        check(f, "ndjson");
    }
}

#[test]
fn ecs_shards_add_up_too() {
    for name in ["smtp-auth-fail.pcap", "pop3-mailbox.pcap", "mixed.pcapng"] {
        check(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("captures")
                .join(name),
            "ecs",
        );
    }
}

#[test]
fn the_shards_of_a_busy_generated_capture_add_up_to_the_single_run() {
    use mailsift::capture::workload::mix::Mix;
    // Many connections at once, some of the bytes non-mail flows found by content: shards
    // must agree on when every session ends, whoever's packets came in between.
    let mix = Mix {
        target_bytes: 6 << 20,
        concurrent: 60,
        min_message: 2048,
        max_message: 64 << 10,
        other_percent: 30,
        ..Mix::default()
    };
    let (bytes, _) = mix.to_bytes();
    let path = std::env::temp_dir().join(format!("mailsift-shard-{}.pcap", std::process::id()));
    std::fs::write(&path, bytes).expect("temp file");
    check(&path, "ndjson");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_bad_shard_is_a_command_line_error() {
    for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
        let out = mailsift()
            .args([
                "export",
                &format!("--shard={bad}"),
                "captures/smtp-plain.pcap",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("mailsift runs");
        assert_eq!(out.status.code(), Some(2), "--shard {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("K/N"), "--shard {bad}: {err}");
    }
}
