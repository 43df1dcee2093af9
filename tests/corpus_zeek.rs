//! Differential test: the `smtp.log` that `export --zeek` writes against the Zeek `smtp.log`
//! baselines of the public corpus, for the columns both fill from the same facts: `mailfrom`,
//! `rcptto` and `subject` (and that our file has Zeek's column layout).
//!
//! Zeek logs a row per transaction, refused ones included, and a row for STARTTLS; mailsift
//! logs a row per message carried and one for STARTTLS. So the rows compared are Zeek's rows
//! with a 2xx last reply and an envelope, as multisets of (sender, sorted recipients,
//! subject), against the rows of ours that carry an envelope. Skips without the corpus.

mod corpus_support;

use corpus_support::{analyse, zeek_log};
use mailsift::output::zeek::ZeekLogs;
use std::collections::BTreeMap;

type Row = BTreeMap<String, Option<String>>;
type Key = (Option<String>, Vec<String>, Option<String>);

fn key(row: &Row) -> Key {
    let get = |k: &str| row.get(k).cloned().flatten();
    let mut rcpt: Vec<String> = get("rcptto")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    rcpt.sort();
    (get("mailfrom"), rcpt, get("subject"))
}

fn has_envelope(row: &Row) -> bool {
    row.get("mailfrom").cloned().flatten().is_some()
        || row.get("rcptto").cloned().flatten().is_some()
}

/// The `#fields` line of a log.
fn fields_line(path: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find(|l| l.starts_with("#fields\t"))
        .map(str::to_string)
}

#[test]
fn smtp_log_matches_zeek_baselines() {
    let Some(corpus) = corpus_support::open("smtp_log_matches_zeek_baselines") else {
        return;
    };
    let scratch = std::env::temp_dir().join(format!("mailsift-corpus-zeek-{}", std::process::id()));
    let (mut compared, mut agreed, mut captures) = (0usize, 0usize, 0usize);
    let mut problems = Vec::new();
    for cap in &corpus.captures {
        let baselines = corpus.expected_outputs(cap, "/smtp.log");
        let Some((baseline, zeek_rows)) = baselines
            .iter()
            .map(|p| (p.clone(), zeek_log(p)))
            .max_by_key(|(_, rows)| rows.len())
        else {
            continue;
        };
        captures += 1;
        let dir = scratch.join(captures.to_string());
        let mut logs = ZeekLogs::create(&dir).expect("log folder");
        for rec in &analyse(cap, false, true).sessions {
            logs.session(rec).expect("write");
        }
        logs.finish().expect("finish");
        let ours_path = dir.join("smtp.log");

        // Our columns are Zeek's, then is_webmail.
        let ours_fields = fields_line(&ours_path).unwrap_or_default();
        let zeek_fields = fields_line(&baseline).unwrap_or_default();
        if !ours_fields.starts_with(&zeek_fields) {
            problems.push(format!(
                "{}: column layout differs:\n  zeek {zeek_fields}\n  ours {ours_fields}",
                cap.local_path
            ));
        }

        let mut want: BTreeMap<Key, usize> = BTreeMap::new();
        for row in &zeek_rows {
            let accepted = row
                .get("last_reply")
                .cloned()
                .flatten()
                .is_none_or(|r| r.starts_with('2'));
            if accepted && has_envelope(row) {
                *want.entry(key(row)).or_default() += 1;
            }
        }
        let mut have: BTreeMap<Key, usize> = BTreeMap::new();
        for row in zeek_log(&ours_path).iter().filter(|r| has_envelope(r)) {
            *have.entry(key(row)).or_default() += 1;
        }
        for (k, n) in &want {
            compared += n;
            let got = have.get(k).copied().unwrap_or(0);
            agreed += got.min(*n);
            if got < *n {
                problems.push(format!(
                    "{}: Zeek has {n} row(s) {k:?}, ours {got}; ours: {:?}",
                    cap.local_path,
                    have.keys().collect::<Vec<_>>()
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!(
        "smtp.log vs Zeek: {captures} captures, {agreed} of {compared} transactions agree on \
         mailfrom, rcptto and subject"
    );
    assert!(captures > 0, "the corpus lists Zeek smtp.log baselines");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
