//! The export document of every bundled capture validates against the published JSON Schema.

mod common;

use common::*;
use mailsift::engine::EngineConfig;
use std::path::Path;

fn schema() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/mailsift-export.schema.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, doc: &serde_json::Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .take(10)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

#[test]
fn every_bundled_capture_exports_valid_json() {
    let schema = schema();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let mut sessions = 0;
    // Every hash selection `--hashes` offers: all, SHA-256 only (the CLI's default), none.
    let selections = [
        mailsift::mail::HashSelection::ALL,
        mailsift::mail::HashSelection {
            md5: false,
            sha1: false,
            sha256: true,
        },
        mailsift::mail::HashSelection::NONE,
    ];
    for capture in bundled_captures() {
        let keys = capture.with_extension("keys");
        if keys.exists() {
            // Decrypted: events inside TLS, the decryption counts, the TLS 1.3 certificate.
            let (store, _) = mailsift::proto::tls::KeyStore::open(&[keys], false).unwrap();
            let mut config = EngineConfig::default();
            config.limits.keys = Some(std::sync::Arc::new(store));
            let doc = export_document(std::slice::from_ref(&capture), config);
            let text = doc.to_string();
            assert!(text.contains("\"decryption\"") && text.contains("\"tls\":true"));
            assert_valid(
                &validator,
                &doc,
                &format!("{} decrypted", capture.display()),
            );
        }
        for hashes in selections {
            let mut config = EngineConfig::default();
            config.limits.hashes = hashes;
            let doc = export_document(std::slice::from_ref(&capture), config);
            sessions += doc["sessions"].as_array().unwrap().len();
            assert_valid(
                &validator,
                &doc,
                &format!("{} {hashes:?}", capture.display()),
            );
        }
    }
    assert!(
        sessions >= 60,
        "only {sessions} sessions across the bundled captures"
    );
}

#[test]
fn an_ndjson_line_validates_as_a_session() {
    let mut schema = schema();
    let defs = schema["$defs"].take();
    let session_schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": defs,
        "$ref": "#/$defs/session",
    });
    let validator = jsonschema::validator_for(&session_schema).expect("schema compiles");
    let doc = export_document(
        &[captures_dir().join("pop3-mailbox.pcap")],
        EngineConfig::default(),
    );
    for s in doc["sessions"].as_array().unwrap() {
        assert_valid(&validator, s, "session");
    }
    // And the schema is not vacuous: a session without its id fails.
    let mut bad = doc["sessions"][0].clone();
    bad.as_object_mut().unwrap().remove("id");
    assert!(!validator.is_valid(&bad));
}

#[test]
fn attachment_findings_and_content_kinds_validate() {
    use mailsift::capture::synth::Conversation;
    let eml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/messages/dangerous-attachments.eml"),
    )
    .unwrap();
    let pkts = Conversation::new(
        "198.51.100.31:50200".parse().unwrap(),
        "192.0.2.25:25".parse().unwrap(),
    )
    .server("220 mx.example.test ESMTP\r\n")
    .client("EHLO c\r\n")
    .server("250 mx.example.test\r\n")
    .client("MAIL FROM:<a@example.test>\r\n")
    .server("250 OK\r\n")
    .client("RCPT TO:<b@example.org>\r\n")
    .server("250 OK\r\n")
    .client("DATA\r\n")
    .server("354 go ahead\r\n")
    .client(format!("{eml}.\r\n"))
    .server("250 queued\r\n")
    .packets();
    let pcap = write_pcap("schema-attachments.pcap", &pkts);
    let doc = export_document(std::slice::from_ref(&pcap), EngineConfig::default());
    let _ = std::fs::remove_file(pcap);
    let session = &doc["sessions"][0];
    assert!(
        session["messages"][0]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["content_kind"] == "pe")
    );
    assert!(
        session["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["details"]["attachment_path"] == "4")
    );
    let schema = schema();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    assert_valid(&validator, &doc, "attachments");
    // Not vacuous: an unknown content kind is refused.
    let mut bad = doc.clone();
    bad["sessions"][0]["messages"][0]["parts"][2]["content_kind"] = "banana".into();
    assert!(!validator.is_valid(&bad));
}
