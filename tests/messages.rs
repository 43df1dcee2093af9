//! Golden records of single messages: each `tests/messages/NAME.eml` is streamed through
//! `MessageStream` and its record compared with `NAME.json` (`BLESS=1` rewrites them). A
//! `NAME.gap` file (`OFFSET MISSING`) cuts the message there with a gap of that many bytes.
//! Every message is also fed in pieces of several sizes, which must give the same record.

use mailsift::mail::{MessageStream, StreamOptions, StreamedMessage};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn messages() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/messages");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/messages")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    out.sort();
    out
}

/// Where the capture missed bytes of this message: (offset, missing bytes).
fn gap_of(eml: &Path) -> Option<(usize, u64)> {
    let text = std::fs::read_to_string(eml.with_extension("gap")).ok()?;
    let mut it = text.split_whitespace().map(|n| n.parse::<u64>().ok());
    let (Some(Some(at)), Some(Some(missing))) = (it.next(), it.next()) else {
        panic!("{}: a .gap file holds OFFSET MISSING", eml.display());
    };
    Some((at as usize, missing))
}

/// Streams `bytes` in pieces of `step` bytes, skipping `gap` (the bytes at the offset are
/// dropped and announced as missing).
fn stream(bytes: &[u8], gap: Option<(usize, u64)>, step: usize) -> StreamedMessage {
    let options = StreamOptions::new(Default::default());
    let mut s = MessageStream::new(&options);
    let (before, after) = match gap {
        Some((at, missing)) => {
            let resume = (at + missing as usize).min(bytes.len());
            (&bytes[..at], Some((missing, &bytes[resume..])))
        }
        None => (bytes, None),
    };
    for piece in before.chunks(step.max(1)) {
        s.push(piece);
    }
    if let Some((missing, rest)) = after {
        s.gap(missing);
        for piece in rest.chunks(step.max(1)) {
            s.push(piece);
        }
    }
    s.finish(true)
}

fn record(m: &StreamedMessage) -> Value {
    json!({
        "size": m.size,
        "sha256": m.sha256,
        "missing_bytes": m.missing_bytes,
        "mime": m.mime,
        "problems": m.problems,
    })
}

#[test]
fn messages_match_their_golden_records() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    let all = messages();
    assert!(all.len() >= 10, "the message corpus is missing");
    for eml in all {
        let bytes = std::fs::read(&eml).expect("read message");
        let gap = gap_of(&eml);
        let whole = stream(&bytes, gap, usize::MAX);
        for step in [1, 2, 7, 64, 1000] {
            assert_eq!(
                stream(&bytes, gap, step),
                whole,
                "{}: pieces of {step} bytes",
                eml.display()
            );
        }
        let got = record(&whole);
        let golden = eml.with_extension("json");
        if bless {
            let text = serde_json::to_string_pretty(&got).expect("json") + "\n";
            std::fs::write(&golden, text).expect("write golden");
            continue;
        }
        match std::fs::read(&golden) {
            Ok(text) => {
                let want: Value = serde_json::from_slice(&text).expect("golden json");
                if want != got {
                    failures.push(format!(
                        "{}: differs from {}",
                        eml.display(),
                        golden.display()
                    ));
                }
            }
            Err(_) => failures.push(format!("{}: no golden record", eml.display())),
        }
    }
    assert!(failures.is_empty(), "{failures:#?} (BLESS=1 rewrites them)");
}

/// What the goldens say, checked by hand for the cases the corpus is there for.
#[test]
fn the_hard_cases_come_out_as_they_should() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/messages");
    let get = |name: &str| {
        let p = dir.join(name);
        let bytes = std::fs::read(&p).expect("message");
        record(&stream(&bytes, gap_of(&p), usize::MAX))
    };
    let kinds = |v: &Value| -> Vec<String> {
        v["problems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["kind"].as_str().map(str::to_string))
            .collect()
    };

    let nested = get("nested-multipart.eml");
    assert_eq!(nested["mime"]["attachments"][0]["size"], 5000);
    assert_eq!(nested["mime"]["attachments"][0]["filename"], "report.pdf");
    assert!(
        nested["mime"]["urls"]
            .as_array()
            .is_some_and(|u| u.len() >= 2)
    );

    let deep = get("rfc822-in-rfc822.eml");
    let inner = deep["mime"]["attachments"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["filename"] == "inner.bin"))
        .expect("the innermost attachment");
    assert_eq!(inner["path"], "2.2.1");
    assert_eq!(inner["size"], "innermost bytes".len());

    let words = get("encoded-words.eml");
    assert_eq!(words["mime"]["subject"], "café and 日本語");
    assert_eq!(words["mime"]["attachments"][0]["filename"], "€ rates.txt");

    let eight = get("eight-bit-headers.eml");
    assert_eq!(eight["mime"]["subject"], "Grüße aus München");
    assert!(
        kinds(&eight).contains(&"header_8bit_not_utf8".to_string()),
        "{:?}",
        kinds(&eight)
    );

    let open = get("missing-final-boundary.eml");
    assert!(kinds(&open).contains(&"mime_unterminated_part".to_string()));
    assert_eq!(open["mime"]["attachments"][0]["filename"], "last.zip");

    let bad = get("bad-base64.eml");
    let k = kinds(&bad);
    assert!(k.contains(&"mime_bad_base64".to_string()), "{k:?}");
    assert!(k.contains(&"mime_encoded_message".to_string()), "{k:?}");
    assert!(
        bad["mime"]["attachments"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["filename"] == "payload.exe")),
        "the file inside the mislabelled message is reported"
    );

    let cut = get("cut-by-gap.eml");
    assert_eq!(cut["missing_bytes"], 1200);
    let after = cut["mime"]["attachments"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["filename"] == "after-gap.bin"))
        .expect("the part after the gap");
    assert_eq!(after["complete"], true);
    assert_eq!(after["size"], "complete after the gap".len());
    assert_eq!(cut["mime"]["attachments"][0]["complete"], false);

    let long = get("long-lines.eml");
    assert_eq!(
        long["mime"]["parts"][0]["size"],
        200_000 + 2 + "short line after it\r\n".len()
    );

    // A delimiter is matched as a prefix (`--realx` ends a part of `real`); an undeclared
    // boundary (`--fake`) is content.
    let lies = get("broken-boundaries.eml");
    assert_eq!(
        lies["mime"]["parts"][2]["content_type"],
        "application/octet-stream"
    );
    assert_eq!(lies["mime"]["parts"][2]["filename"], "after.bin");
    assert_eq!(lies["mime"]["parts"].as_array().map(Vec::len), Some(3));

    let bare = get("no-headers.eml");
    assert!(kinds(&bare).contains(&"mime_no_headers".to_string()));
}
