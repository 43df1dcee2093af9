//! The crafted captures (`captures/crafted-*.pcap`): the bundled files are what
//! `examples/crafted_captures.rs` writes, and each shows the behaviour it was made for. Their
//! golden JSON and transform invariance are checked with every bundled capture.

mod common;

#[path = "../examples/crafted_captures.rs"]
mod crafted;

use common::*;
use mailsift::session::{EventKind, SessionRecord};

fn sessions(name: &str) -> Vec<SessionRecord> {
    run(&[captures_dir().join(name)]).0
}

#[test]
fn bundled_crafted_captures_are_what_the_generator_writes() {
    for (name, packets) in crafted::crafted_captures() {
        let fresh = temp_path(name);
        crafted::write_capture(&fresh, &packets).unwrap();
        let bundled = std::fs::read(captures_dir().join(name)).unwrap();
        assert!(
            std::fs::read(&fresh).unwrap() == bundled,
            "{name} differs from what examples/crafted_captures.rs writes: rerun it"
        );
    }
}

#[test]
fn clear_text_where_tls_was_expected_is_dissected() {
    let s = sessions("crafted-tls-cleartext.pcap");
    assert_eq!(s.len(), 5);
    for rec in &s {
        let clear = rec.cleartext_instead_of_tls.expect("clear text noted");
        assert!(clear.client, "session {}", rec.id);
        assert!(
            rec.findings
                .iter()
                .any(|f| f.rule == "cleartext-instead-of-tls"),
            "session {}",
            rec.id
        );
        // Only TLS records count as encrypted.
        let encrypted = rec.tls.as_ref().map_or(0, |t| t.encrypted_bytes.client);
        let tls_sent = if rec.id == s[1].id {
            crafted::client_hello_record().len() as u64
        } else {
            0
        };
        assert_eq!(encrypted, tls_sent, "session {}", rec.id);
    }
    // Logins after the upgrade are seen, and sent in clear text.
    let users: Vec<(&str, bool)> = s
        .iter()
        .flat_map(|r| &r.credentials)
        .map(|c| (c.username.as_deref().unwrap_or("?"), c.encrypted))
        .collect();
    assert_eq!(
        users,
        [
            ("alice", false),
            ("bob", false),
            ("alice", false),
            ("bob", false)
        ]
    );
    assert_eq!(s[0].messages.len(), 1);
    assert_eq!(s[2].messages.len(), 1);
    // The commands injected before the handshake are shown.
    let injected: Vec<&str> = s[1]
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Command { verb, .. } => Some(verb.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(injected, ["EHLO", "STARTTLS", "RSET", "MAIL"]);
}

#[test]
fn replies_pair_with_their_commands_without_a_greeting() {
    let s = sessions("crafted-missing-greeting.pcap");
    assert_eq!(s.len(), 3);
    for rec in &s {
        assert_eq!(rec.credentials.len(), 1, "session {}", rec.id);
        assert_eq!(rec.credentials[0].success, Some(true), "session {}", rec.id);
    }
    let smtp = s[0].smtp.as_ref().unwrap();
    assert!(smtp.greeting.is_none() && smtp.quit);
    assert_eq!(smtp.mail_transactions[0].outcome.as_str(), "delivered");
    let caps = s[1].pop3.as_ref().unwrap().capabilities.as_ref().unwrap();
    assert!(caps.stls && caps.uidl);
    assert_eq!(s[1].pop3.as_ref().unwrap().mailbox.message_count, Some(1));
    assert!(s[2].has_anomaly("greeting_lost"));
}

#[test]
fn an_unterminated_listing_does_not_swallow_the_session() {
    let s = sessions("crafted-broken-listing.pcap");
    let pop3 = s[0].pop3.as_ref().unwrap();
    assert_eq!(pop3.mailbox.sizes.len(), 2);
    assert_eq!(pop3.mailbox.uids.len(), 2);
    assert_eq!(s[0].messages.len(), 1);
    assert!(s[0].messages[0].complete);
    assert!(pop3.mailbox.deletions_committed);
    assert!(s[0].has_anomaly("listing_unterminated"));
}

#[test]
fn lost_segments_around_the_end_of_data_keep_the_session_in_step() {
    let s = sessions("crafted-data-gaps.pcap");
    assert_eq!(s.len(), 4);
    for rec in &s[..3] {
        let smtp = rec.smtp.as_ref().unwrap();
        assert!(smtp.quit, "session {}", rec.id);
        assert_eq!(rec.messages.len(), 1);
        assert!(!rec.messages[0].complete);
        assert_eq!(rec.messages[0].reply.as_ref().map(|r| r.code), Some(250));
        assert!(
            !rec.has_anomaly("reply_without_command"),
            "session {}",
            rec.id
        );
    }
    // The lost NOOP's gap comes before the reply that answered it, in time.
    let rec = &s[3];
    let order = mailsift::session::presentation_order(&rec.events);
    let kinds: Vec<&str> = order
        .iter()
        .map(|&i| match &rec.events[i].kind {
            EventKind::Gap { .. } => "gap",
            EventKind::Reply { code: 250, .. } => "250",
            EventKind::Reply { .. } => "reply",
            EventKind::Command { .. } => "command",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["reply", "command", "gap", "250", "250", "command", "reply"]
    );
}
