//! Golden JSON: the export of every bundled capture is compared with a reviewed snapshot.
//!
//! Regenerate on purpose with `BLESS=1 cargo test --test golden`, then review the diff.

mod common;

use common::*;
use mailsift::engine::EngineConfig;
use mailsift::proto::tls::KeyStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Makes the document independent of where the checkout lives.
fn normalise(mut doc: serde_json::Value) -> serde_json::Value {
    for input in doc["inputs"].as_array_mut().unwrap() {
        let p = input["path"].as_str().unwrap().to_string();
        let name = Path::new(&p)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        input["path"] = serde_json::Value::String(name);
    }
    doc["mailsift"] = serde_json::Value::String("VERSION".into());
    doc
}

#[test]
fn bundled_captures_match_their_golden_json() {
    let bless = std::env::var_os("BLESS").is_some();
    std::fs::create_dir_all(golden_dir()).unwrap();
    let mut failures = Vec::new();
    let mut runs = Vec::new();
    for capture in bundled_captures() {
        let name = capture.file_name().unwrap().to_string_lossy().to_string();
        runs.push((capture.clone(), name.clone(), EngineConfig::default()));
        // A capture with its key log beside it is also checked decrypted.
        let keys = capture.with_extension("keys");
        if keys.exists() {
            let (store, warnings) = KeyStore::open(&[keys], false).unwrap();
            assert!(warnings.is_empty(), "{warnings:?}");
            let mut config = EngineConfig::default();
            config.limits.keys = Some(Arc::new(store));
            runs.push((capture, format!("{name}.decrypted"), config));
        }
    }
    for (capture, name, config) in runs {
        let got = normalise(export_document(std::slice::from_ref(&capture), config));
        let path = golden_dir().join(format!("{name}.json"));
        if bless {
            let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            failures.push(format!("{name}: no golden file (run with BLESS=1)"));
            continue;
        };
        let want: serde_json::Value = serde_json::from_str(&text).unwrap();
        if want != got {
            failures.push(format!("{name}: {}", first_difference(&want, &got, "")));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches:\n{}",
        failures.join("\n")
    );
}

/// The JSON pointer and values of the first difference, to make a failure readable.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> String {
    use serde_json::Value::*;
    match (a, b) {
        (Object(x), Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if v == w => {}
                    Some(w) => return first_difference(v, w, &format!("{at}/{k}")),
                    None => return format!("{at}/{k} missing in output"),
                }
            }
            for k in y.keys() {
                if !x.contains_key(k) {
                    return format!("{at}/{k} new in output");
                }
            }
            format!("{at}: differs")
        }
        (Array(x), Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if v != w {
                    return first_difference(v, w, &format!("{at}/{i}"));
                }
            }
            format!("{at}: differs")
        }
        _ => format!("{at}: expected {a}, got {b}"),
    }
}

/// Drops every `sha256`, `sha1` and `md5` key under `messages`.
fn without_message_hashes(mut doc: serde_json::Value) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for key in ["sha256", "sha1", "md5"] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    for session in doc["sessions"].as_array_mut().unwrap() {
        strip(&mut session["messages"]);
    }
    doc
}

#[test]
fn without_content_hashes_only_the_part_hashes_change() {
    let mut config = EngineConfig::default();
    config.limits.content_hashes = false;
    let mut hashed_messages = 0;
    for capture in bundled_captures() {
        let name = capture.file_name().unwrap().to_string_lossy().to_string();
        let with = normalise(export_document(
            std::slice::from_ref(&capture),
            EngineConfig::default(),
        ));
        let without = normalise(export_document(
            std::slice::from_ref(&capture),
            config.clone(),
        ));
        for session in without["sessions"].as_array().unwrap() {
            for m in session["messages"].as_array().unwrap() {
                // The message's own SHA-256 is always computed, as it streams by.
                assert_eq!(
                    m["sha256"].as_str().map(str::len),
                    Some(64),
                    "{name}: message not hashed"
                );
                for p in m["parts"].as_array().unwrap() {
                    assert!(p["sha256"].is_null(), "{name}: part hashed");
                }
                for a in m["attachments"].as_array().unwrap() {
                    assert_eq!(a["md5"], "", "{name}: attachment hashed");
                }
                hashed_messages += 1;
            }
        }
        assert_eq!(
            without_message_hashes(with),
            without_message_hashes(without),
            "{name}"
        );
    }
    assert!(hashed_messages > 5);
}
