//! The messages in the bundled captures decode to exactly what the capture script sent:
//! message bytes equal the source `.eml` files (dot-unstuffed, CRLF), attachment hashes equal
//! the source files, and encoded words, RFC 2231 names and charsets decode as written there.

mod common;

use common::*;
use mailsift::engine::EngineConfig;
use sha2::{Digest, Sha256};

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The source file as the client sent it: LF line ends turned into CRLF.
fn as_sent(name: &str) -> Vec<u8> {
    let raw = std::fs::read(captures_dir().join("source").join(name)).unwrap();
    let text = String::from_utf8(raw).unwrap();
    text.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

fn messages(capture: &str) -> Vec<serde_json::Value> {
    let doc = export_document(&[captures_dir().join(capture)], EngineConfig::default());
    doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["messages"].as_array().unwrap().clone())
        .collect()
}

fn by_subject<'a>(
    msgs: &'a [serde_json::Value],
    subject: &str,
    source: &str,
) -> &'a serde_json::Value {
    msgs.iter()
        .find(|m| m["subject"] == subject && m["source"] == source)
        .unwrap_or_else(|| panic!("no {source} message with subject {subject:?}"))
}

#[test]
fn mime_message_over_smtp_and_pop3_decodes_as_sent() {
    let mime_sha = sha256_hex(&as_sent("mime-mixed.eml"));
    let logo = sha256_hex(&std::fs::read(captures_dir().join("source/logo.png")).unwrap());
    let measurements =
        sha256_hex(&std::fs::read(captures_dir().join("source/measurements.bin")).unwrap());
    let smtp = messages("smtp-mime.pcap");
    let pop3 = messages("pop3-mailbox.pcap");
    for m in [
        by_subject(&smtp, "Grüße aus Köln – Test mit Anhängen", "data"),
        by_subject(&pop3, "Grüße aus Köln – Test mit Anhängen", "retr"),
    ] {
        assert_eq!(
            m["sha256"], mime_sha,
            "message bytes differ from source/mime-mixed.eml"
        );
        assert_eq!(m["complete"], true);
        let atts = m["attachments"].as_array().unwrap();
        let find = |name: &str| {
            atts.iter()
                .find(|a| a["filename"] == name)
                .unwrap_or_else(|| panic!("no attachment {name:?}: {atts:#?}"))
        };
        assert_eq!(find("logo.png")["sha256"], logo);
        assert_eq!(find("logo.png")["content_type"], "image/png");
        let rfc2231 = find("Übersicht der Messdaten – Größe & Gewicht.bin");
        assert_eq!(rfc2231["sha256"], measurements);
        let nested = find("meeting-notes.eml");
        assert_eq!(nested["content_type"], "message/rfc822");
        // The attached message's headers stay in its part; the outer ones are untouched.
        let part = m["parts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["content_type"] == "message/rfc822")
            .unwrap();
        assert_eq!(part["message"]["subject"], "Meeting notes");
        assert_eq!(m["from"][0]["address"], "alice@mailsift.test");
        let text = m["body_text"].as_str().unwrap();
        assert!(
            text.contains("Grüße aus Köln – die Straße vor dem Büro"),
            "{text}"
        );
        let urls: Vec<&str> = m["urls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap())
            .collect();
        assert!(urls.contains(&"http://example.com/report.html"), "{urls:?}");
        assert!(
            urls.iter()
                .any(|u| u.starts_with("https://www.mailsift.test/docs/messdaten?id=42")),
            "{urls:?}"
        );
    }
}

#[test]
fn latin1_encoded_words_and_dot_stuffing() {
    let smtp = messages("smtp-mime.pcap");
    let latin = by_subject(&smtp, "Café crème à la gare", "data");
    assert_eq!(latin["sha256"], sha256_hex(&as_sent("latin1-subject.eml")));
    assert_eq!(latin["from"][0]["name"], "François Dupré");
    assert!(
        latin["body_text"]
            .as_str()
            .unwrap()
            .contains("près du quai n° 2")
    );

    let dots = messages("smtp-dotstuff.pcap");
    assert_eq!(dots.len(), 1);
    assert_eq!(
        dots[0]["sha256"],
        sha256_hex(&as_sent("dotstuff.eml")),
        "DATA must be dot-unstuffed to the bytes the client meant"
    );
    let pop3 = messages("pop3-mailbox.pcap");
    let retr = pop3
        .iter()
        .find(|m| m["source"] == "retr" && m["sha256"] == dots[0]["sha256"]);
    assert!(
        retr.is_some(),
        "RETR of the dot-stuffed message unstuffs to the same bytes"
    );
}
