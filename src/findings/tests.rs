//! Each rule on records built by hand.

use super::*;
use crate::proto::pop3::{Capabilities, Pop3Summary};
use crate::proto::tls::{
    AlertDescription, CertificateInfo, ClientHelloInfo, TlsAlert, TlsHandshake, TlsVersion,
};
use crate::session::{CredentialDetails, Endpoint, PerDirection, TlsInfo};

const T0: i64 = 1_700_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_parts(T0 + secs, 0)
}

fn session(id: u64, protocol: Protocol, client: &str, port: u16) -> SessionRecord {
    SessionRecord::new(
        id,
        protocol,
        Endpoint {
            ip: client.parse().unwrap(),
            port: 40000,
        },
        Endpoint {
            ip: "192.0.2.25".parse().unwrap(),
            port,
        },
        at(0),
    )
}

fn pop3() -> SessionRecord {
    session(1, Protocol::Pop3, "198.51.100.7", 110)
}

fn smtp() -> SessionRecord {
    session(1, Protocol::Smtp, "198.51.100.7", 587)
}

fn cred(ts: i64, mechanism: &str, user: Option<&str>, success: Option<bool>) -> Credential {
    Credential {
        ts: at(ts),
        mechanism: mechanism.to_string(),
        username: user.map(str::to_string),
        password: None,
        success,
        encrypted: false,
        details: CredentialDetails::default(),
    }
}

fn password(ts: i64, mechanism: &str, user: &str, success: Option<bool>) -> Credential {
    Credential {
        password: Some("Wonderland-42".into()),
        ..cred(ts, mechanism, Some(user), success)
    }
}

fn challenge_response(mechanism: &str) -> Credential {
    let mut c = cred(3, mechanism, Some("alice"), Some(true));
    c.details.challenge = Some("<1896.697170952@mail.example>".into());
    c.details.response = Some("b913a602c7eda7a495b4e6e7334d3890".into());
    c
}

fn event(rec: &mut SessionRecord, ts: i64, from: Direction, kind: EventKind) {
    rec.push_event(at(ts), from, kind);
}

fn command(rec: &mut SessionRecord, ts: i64, verb: &str) {
    event(
        rec,
        ts,
        Direction::Client,
        EventKind::Command {
            verb: verb.to_string(),
            arg: None,
        },
    );
}

fn reply(rec: &mut SessionRecord, ts: i64, code: u16, lines: &[&str]) {
    event(
        rec,
        ts,
        Direction::Server,
        EventKind::Reply {
            code,
            enhanced: None,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        },
    );
}

fn status(rec: &mut SessionRecord, ts: i64, ok: bool, text: &str) {
    event(
        rec,
        ts,
        Direction::Server,
        EventKind::Status {
            ok,
            text: text.to_string(),
            resp_code: None,
            body_lines: None,
        },
    );
}

fn start_tls(rec: &mut SessionRecord, mode: TlsMode, ts: i64) -> &mut TlsHandshake {
    rec.tls = Some(Box::new(TlsInfo {
        mode,
        started: at(ts),
        encrypted_bytes: PerDirection::default(),
        handshake: TlsHandshake::default(),
        decrypted: false,
        decryption: None,
    }));
    &mut rec.tls.as_mut().unwrap().handshake
}

fn rules(rec: &SessionRecord) -> Vec<(String, Severity)> {
    session_findings(rec)
        .into_iter()
        .map(|f| (f.rule, f.severity))
        .collect()
}

fn only(rec: &SessionRecord, rule: Rule) -> Vec<Finding> {
    session_findings(rec)
        .into_iter()
        .filter(|f| f.rule == rule.id())
        .collect()
}

fn client_hello(legacy: TlsVersion, supported: &[TlsVersion]) -> ClientHelloInfo {
    ClientHelloInfo {
        sslv2_format: false,
        legacy_version: legacy,
        supported_versions: supported.to_vec(),
        cipher_suites: Vec::new(),
        extensions: Vec::new(),
        supported_groups: Vec::new(),
        ec_point_formats: Vec::new(),
        signature_algorithms: Vec::new(),
        alpn: Vec::new(),
        compression_methods: vec![0],
        session_id_length: 0,
    }
}

fn certificate_info(self_signed: bool, not_before: i64, not_after: i64) -> CertificateInfo {
    CertificateInfo {
        subject: "CN=mail.example".into(),
        issuer: "CN=mail.example".into(),
        serial: "01".into(),
        not_before: at(not_before),
        not_after: at(not_after),
        san: vec!["mail.example".into()],
        self_signed,
        key_type: "ec".into(),
        key_bits: Some(256),
        signature_algorithm: "ecdsa-with-SHA256".into(),
        sha256: "00".repeat(32),
        chain_length: 1,
    }
}

// ----- cleartext-password ---------------------------------------------------------------

#[test]
fn user_pass_in_clear_is_a_high_cleartext_password() {
    let mut r = pop3();
    r.credentials
        .push(password(1, "USER", "alice@mailsift.test", Some(true)));
    let f = session_findings(&r);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, "cleartext-password");
    assert_eq!(f[0].severity, Severity::High);
    assert_eq!(f[0].ts, at(1));
    assert_eq!(
        f[0].message,
        "password for alice@mailsift.test sent in clear text over POP3 USER/PASS (login succeeded)"
    );
    assert!(
        !f[0].message.contains("Wonderland"),
        "no secret in messages"
    );
}

#[test]
fn auth_plain_and_login_in_clear_are_cleartext_passwords() {
    let mut r = smtp();
    r.credentials
        .push(password(1, "PLAIN", "alice", Some(false)));
    r.credentials.push(password(2, "LOGIN", "bob", None));
    let f = only(&r, Rule::CleartextPassword);
    assert_eq!(f.len(), 2);
    assert_eq!(
        f[0].message,
        "password for alice sent in clear text over SMTP AUTH PLAIN (login failed)"
    );
    assert_eq!(
        f[1].message,
        "password for bob sent in clear text over SMTP AUTH LOGIN (no verdict seen)"
    );
}

#[test]
fn passwords_inside_tls_are_not_findings() {
    let mut r = pop3();
    let mut c = password(1, "USER", "alice", Some(true));
    c.encrypted = true;
    r.credentials.push(c);
    start_tls(&mut r, TlsMode::Implicit, 0).established = true;
    assert_eq!(rules(&r), []);
}

#[test]
fn repeated_attempts_fold_into_one_finding_with_counts() {
    let mut r = pop3();
    for (ts, ok) in [(5, Some(false)), (3, Some(false)), (9, Some(true))] {
        r.credentials.push(password(ts, "USER", "alice", ok));
    }
    r.credentials.push(password(7, "USER", "bob", Some(false)));
    let f = only(&r, Rule::CleartextPassword);
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].ts, at(3), "the earliest attempt dates the group");
    assert!(
        f[0].message
            .ends_with("(3 attempts: 1 succeeded, 2 failed)"),
        "{}",
        f[0].message
    );
    assert!(f[1].message.contains("for bob"));
}

#[test]
fn a_password_without_user_and_odd_names_stay_one_line() {
    let mut r = pop3();
    r.credentials.push(Credential {
        password: Some("x".into()),
        ..cred(1, "USER", None, None)
    });
    r.credentials
        .push(password(2, "USER", "ev\nil\u{1b}[31m", Some(false)));
    let f = only(&r, Rule::CleartextPassword);
    assert!(f[0].message.starts_with("password for an unknown user "));
    assert!(
        f[1].message.contains("ev\\nil\\u{1b}[31m"),
        "{}",
        f[1].message
    );
    assert!(f.iter().all(|f| !f.message.contains(['\n', '\u{1b}'])));
}

#[test]
fn quoted_text_is_capped_and_cannot_reorder_a_line() {
    assert_eq!(quoted("ali\u{202e}ce"), "ali\\u{202e}ce");
    assert_eq!(quoted("Grüße"), "Grüße");
    let long = quoted(&"x".repeat(200));
    assert_eq!(long.chars().count(), MAX_QUOTED_CHARS + 1);
    assert!(long.ends_with('…'));
}

// ----- crackable-challenge-response -----------------------------------------------------

#[test]
fn challenge_responses_in_clear_are_medium_with_their_hashcat_mode() {
    for (mechanism, hint) in [
        ("CRAM-MD5", Some("hashcat -m 10200")),
        ("APOP", Some("hashcat -m 20")),
        ("DIGEST-MD5", None),
    ] {
        let mut r = pop3();
        r.credentials.push(challenge_response(mechanism));
        let f = session_findings(&r);
        assert_eq!(f.len(), 1, "{mechanism}");
        assert_eq!(f[0].rule, "crackable-challenge-response");
        assert_eq!(f[0].severity, Severity::Medium);
        assert!(
            f[0].message
                .contains("for alice sent outside TLS over POP3")
        );
        assert_eq!(
            f[0].message.contains("hashcat"),
            hint.is_some(),
            "{}",
            f[0].message
        );
        if let Some(hint) = hint {
            assert!(f[0].message.contains(hint), "{}", f[0].message);
        }
    }
}

#[test]
fn ntlm_in_clear_is_crackable() {
    let mut r = smtp();
    let mut c = cred(1, "NTLM", Some("carol"), Some(true));
    c.details.challenge = Some("0123456789abcdef".into());
    c.details.nt_response = Some("ab".repeat(60));
    c.details.ntlm_version = Some("v2".into());
    c.details.domain = Some("CORP".into());
    r.credentials.push(c);
    let f = only(&r, Rule::CrackableChallengeResponse);
    assert_eq!(f.len(), 1);
    assert!(f[0].message.contains("AUTH NTLM") && f[0].message.contains("-m 5600"));
}

#[test]
fn challenge_response_without_a_response_or_inside_tls_is_not_crackable() {
    let mut r = pop3();
    let mut cancelled = cred(1, "CRAM-MD5", None, Some(false));
    cancelled.details.challenge = Some("<1.2@x>".into());
    cancelled.details.cancelled = true;
    r.credentials.push(cancelled);
    let mut encrypted = challenge_response("CRAM-MD5");
    encrypted.encrypted = true;
    r.credentials.push(encrypted);
    assert_eq!(only(&r, Rule::CrackableChallengeResponse), []);
}

// ----- cleartext-bearer-token -----------------------------------------------------------

#[test]
fn bearer_tokens_in_clear_are_high() {
    for mechanism in ["XOAUTH2", "OAUTHBEARER"] {
        let mut r = smtp();
        let mut c = cred(1, mechanism, Some("dave@example.com"), Some(true));
        c.details.token = Some("ya29.secret-token".into());
        r.credentials.push(c.clone());
        let f = only(&r, Rule::CleartextBearerToken);
        assert_eq!(f.len(), 1, "{mechanism}");
        assert_eq!(f[0].severity, Severity::High);
        assert!(
            f[0].message
                .starts_with("bearer token for dave@example.com")
        );
        assert!(!f[0].message.contains("ya29"));
        assert_eq!(only(&r, Rule::CleartextPassword), []);

        let mut r = smtp();
        c.encrypted = true;
        r.credentials.push(c);
        assert_eq!(only(&r, Rule::CleartextBearerToken), []);
    }
}

// ----- starttls-not-used ----------------------------------------------------------------

fn ehlo_offering_starttls(r: &mut SessionRecord) {
    command(r, 1, "EHLO");
    reply(
        r,
        2,
        250,
        &["mail.example", "PIPELINING", "STARTTLS", "AUTH PLAIN LOGIN"],
    );
}

#[test]
fn smtp_starttls_offered_and_ignored() {
    let mut r = smtp();
    ehlo_offering_starttls(&mut r);
    let f = only(&r, Rule::StarttlsNotUsed);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Low);
    assert_eq!(f[0].ts, at(2));
    assert_eq!(
        f[0].message,
        "server offered STARTTLS but the client did not use it; the session stayed in clear text"
    );

    r.credentials
        .push(password(3, "PLAIN", "alice", Some(true)));
    let f = only(&r, Rule::StarttlsNotUsed);
    assert_eq!(f[0].severity, Severity::Medium);
    assert!(
        f[0].message
            .ends_with("credentials then went over the wire in clear text")
    );
}

#[test]
fn smtp_starttls_used_or_not_offered_is_fine() {
    let mut r = smtp();
    ehlo_offering_starttls(&mut r);
    command(&mut r, 3, "STARTTLS");
    reply(&mut r, 4, 220, &["2.0.0 Ready to start TLS"]);
    start_tls(&mut r, TlsMode::Starttls, 4).established = true;
    assert_eq!(only(&r, Rule::StarttlsNotUsed), []);

    let mut r = smtp();
    command(&mut r, 1, "EHLO");
    reply(
        &mut r,
        2,
        250,
        &["mail.example", "X-STARTTLS-LIKE", "8BITMIME"],
    );
    r.credentials
        .push(password(3, "PLAIN", "alice", Some(true)));
    assert_eq!(only(&r, Rule::StarttlsNotUsed), []);
}

#[test]
fn pop3_stls_in_capa_and_ignored() {
    let mut r = pop3();
    status(&mut r, 0, true, "ready");
    command(&mut r, 1, "CAPA");
    status(&mut r, 2, true, "");
    let mut caps = Capabilities::default();
    caps.add_line("STLS");
    r.pop3 = Some(Box::new(Pop3Summary {
        capabilities: Some(caps),
        ..Default::default()
    }));
    r.credentials.push(password(3, "USER", "alice", Some(true)));
    let f = only(&r, Rule::StarttlsNotUsed);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Medium);
    assert_eq!(f[0].ts, at(2), "dated by the CAPA reply");
    assert!(f[0].message.starts_with("server offered STLS"));

    command(&mut r, 4, "STLS");
    assert_eq!(only(&r, Rule::StarttlsNotUsed), [], "tried, so not ignored");
}

// ----- starttls-refused -----------------------------------------------------------------

#[test]
fn smtp_starttls_answered_with_an_error_is_refused() {
    let mut r = smtp();
    ehlo_offering_starttls(&mut r);
    command(&mut r, 3, "STARTTLS");
    reply(
        &mut r,
        4,
        454,
        &["4.7.0 TLS not available due to local problem"],
    );
    r.credentials
        .push(password(5, "PLAIN", "alice", Some(true)));
    let f = only(&r, Rule::StarttlsRefused);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Medium);
    assert_eq!(f[0].ts, at(4));
    assert_eq!(
        f[0].message,
        "server refused STARTTLS with \"454 4.7.0 TLS not available due to local problem\"; \
         the session stayed in clear text (possible downgrade); credentials were sent in clear text"
    );
    assert_eq!(
        only(&r, Rule::StarttlsNotUsed),
        [],
        "a refusal is not a client's choice"
    );
}

#[test]
fn pop3_stls_refused_and_accepted() {
    let mut r = pop3();
    command(&mut r, 1, "STLS");
    status(&mut r, 2, false, "TLS support isn't enabled.");
    let f = only(&r, Rule::StarttlsRefused);
    assert_eq!(f.len(), 1);
    assert!(f[0].message.contains("\"-ERR TLS support isn't enabled.\""));

    let mut r = pop3();
    command(&mut r, 1, "STLS");
    status(&mut r, 2, true, "Begin TLS negotiation now.");
    start_tls(&mut r, TlsMode::Starttls, 2).established = true;
    assert_eq!(rules(&r), []);
}

#[test]
fn refusal_is_read_in_time_order_not_record_order() {
    let mut r = smtp();
    // The server side was parsed ahead: its reply sits before the command in the record.
    reply(&mut r, 4, 454, &["4.7.0 TLS not available"]);
    command(&mut r, 3, "STARTTLS");
    assert_eq!(only(&r, Rule::StarttlsRefused).len(), 1);
}

// ----- starttls-failed ------------------------------------------------------------------

#[test]
fn starttls_followed_by_something_that_is_not_tls_failed() {
    let mut r = smtp();
    start_tls(&mut r, TlsMode::Starttls, 4);
    r.anomaly(
        at(5),
        Some(Direction::Server),
        "not_tls",
        "text after STARTTLS",
    );
    let f = only(&r, Rule::StarttlsFailed);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Medium);
    assert_eq!(f[0].ts, at(4));
    assert!(
        f[0].message
            .contains("the bytes after the upgrade were not TLS")
    );
}

// ----- cleartext-instead-of-tls --------------------------------------------------------

#[test]
fn clear_text_after_an_accepted_starttls_is_high_and_not_also_a_failure() {
    let mut r = smtp();
    start_tls(&mut r, TlsMode::Starttls, 4);
    r.note_cleartext_instead_of_tls(TlsMode::Starttls, Direction::Client, at(5));
    r.note_cleartext_instead_of_tls(TlsMode::Starttls, Direction::Server, at(6));
    r.credentials
        .push(password(7, "PLAIN", "alice", Some(true)));
    let f = only(&r, Rule::CleartextInsteadOfTls);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::High);
    assert_eq!(f[0].ts, at(5));
    assert!(
        f[0].message
            .starts_with("STARTTLS was accepted but both sides went on")
    );
    assert!(f[0].message.contains("credentials included"));
    assert!(only(&r, Rule::StarttlsFailed).is_empty());
}

#[test]
fn a_clear_server_on_an_implicit_tls_port_is_named() {
    let mut r = session(1, Protocol::Pop3, "192.0.2.7", 995);
    r.note_cleartext_instead_of_tls(TlsMode::Implicit, Direction::Server, at(1));
    let f = only(&r, Rule::CleartextInsteadOfTls);
    assert_eq!(f.len(), 1);
    assert!(
        f[0].message
            .starts_with("port 995 is for TLS from the first byte, but the server")
    );
    assert!(!f[0].message.contains("credentials"));
}

#[test]
fn starttls_handshake_that_never_completed_failed() {
    let mut r = pop3();
    start_tls(&mut r, TlsMode::Starttls, 4).client_hello =
        Some(client_hello(TlsVersion::TLS12, &[TlsVersion::TLS13]));
    let f = only(&r, Rule::StarttlsFailed);
    assert_eq!(f.len(), 1);
    assert!(
        f[0].message
            .starts_with("STLS was accepted but TLS did not start")
    );
    assert!(f[0].message.contains("never completed"));

    // With bytes missing the handshake may just be unseen: no claim.
    r.missing_bytes.server = 100;
    assert_eq!(only(&r, Rule::StarttlsFailed), []);
    // ...unless an alert says it failed.
    r.tls.as_mut().unwrap().handshake.alerts.push(TlsAlert {
        ts: at(5),
        from: Direction::Client,
        level: AlertLevel(2),
        description: AlertDescription(48),
    });
    let f = only(&r, Rule::StarttlsFailed);
    assert_eq!(f.len(), 1);
    assert!(
        f[0].message
            .contains("client sent the fatal alert unknown_ca"),
        "{}",
        f[0].message
    );
}

#[test]
fn established_or_implicit_tls_did_not_fail() {
    let mut r = smtp();
    start_tls(&mut r, TlsMode::Starttls, 4).established = true;
    assert_eq!(only(&r, Rule::StarttlsFailed), []);
    let mut r = smtp();
    start_tls(&mut r, TlsMode::Implicit, 0);
    assert_eq!(only(&r, Rule::StarttlsFailed), []);
}

// ----- auth-without-tls -----------------------------------------------------------------

#[test]
fn smtp_auth_without_tls() {
    let mut r = smtp();
    r.credentials.push(password(4, "LOGIN", "bob", Some(false)));
    r.credentials.push(challenge_response("CRAM-MD5"));
    r.credentials.push(password(6, "LOGIN", "bob", Some(true)));
    let f = only(&r, Rule::AuthWithoutTls);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Medium);
    assert_eq!(f[0].ts, at(3));
    assert_eq!(
        f[0].message,
        "authentication (AUTH LOGIN, CRAM-MD5) on SMTP port 587 without TLS"
    );
}

#[test]
fn auth_inside_tls_cancelled_or_on_pop3_is_not_auth_without_tls() {
    let mut r = smtp();
    let mut c = password(4, "PLAIN", "alice", Some(true));
    c.encrypted = true;
    r.credentials.push(c);
    let mut cancelled = cred(5, "LOGIN", None, Some(false));
    cancelled.details.cancelled = true;
    r.credentials.push(cancelled);
    assert_eq!(only(&r, Rule::AuthWithoutTls), []);

    let mut r = pop3();
    r.credentials
        .push(password(1, "PLAIN", "alice", Some(true)));
    assert_eq!(only(&r, Rule::AuthWithoutTls), []);
}

// ----- weak-tls-version -----------------------------------------------------------------

#[test]
fn negotiated_versions_below_tls12_are_weak() {
    for (v, weak) in [
        (TlsVersion::SSL3, true),
        (TlsVersion::TLS10, true),
        (TlsVersion::TLS11, true),
        (TlsVersion::TLS12, false),
        (TlsVersion::TLS13, false),
    ] {
        let mut r = smtp();
        start_tls(&mut r, TlsMode::Implicit, 1).version = Some(v);
        let f = only(&r, Rule::WeakTlsVersion);
        assert_eq!(f.len(), usize::from(weak), "{v}");
        if weak {
            assert_eq!(f[0].severity, Severity::Medium);
            assert!(f[0].message.starts_with(&format!("{v} negotiated")));
        }
    }
}

#[test]
fn an_offer_topping_out_below_tls12_is_weak_when_nothing_was_negotiated() {
    let mut r = smtp();
    start_tls(&mut r, TlsMode::Implicit, 1).client_hello =
        Some(client_hello(TlsVersion::TLS10, &[]));
    let f = only(&r, Rule::WeakTlsVersion);
    assert_eq!(f.len(), 1);
    assert!(f[0].message.starts_with("client offered at most TLS 1.0"));

    let mut r = smtp();
    start_tls(&mut r, TlsMode::Implicit, 1).client_hello = Some(client_hello(
        TlsVersion::TLS12,
        &[TlsVersion(0x0a0a), TlsVersion::TLS13, TlsVersion::TLS12],
    ));
    assert_eq!(only(&r, Rule::WeakTlsVersion), []);

    // A TLS 1.3 capable client whose legacy_version says TLS 1.0 is not weak.
    let mut r = smtp();
    start_tls(&mut r, TlsMode::Implicit, 1).client_hello =
        Some(client_hello(TlsVersion::TLS10, &[TlsVersion::TLS13]));
    assert_eq!(only(&r, Rule::WeakTlsVersion), []);
}

// ----- weak-tls-cipher ------------------------------------------------------------------

#[test]
fn weak_cipher_suites_by_kind() {
    use crate::proto::tls::{CipherSuite, ExtensionType, ServerHelloInfo};
    let cases = [
        (0x0002, TlsVersion::TLS12, false, Some(Severity::High)), // RSA_WITH_NULL_SHA
        (0x0034, TlsVersion::TLS12, false, Some(Severity::High)), // DH_anon_WITH_AES_128_CBC_SHA
        (0x0003, TlsVersion::TLS10, false, Some(Severity::Medium)), // RSA_EXPORT_WITH_RC4_40_MD5
        (0x0005, TlsVersion::TLS12, false, Some(Severity::Medium)), // RSA_WITH_RC4_128_SHA
        (0x000a, TlsVersion::TLS12, false, Some(Severity::Medium)), // RSA_WITH_3DES_EDE_CBC_SHA
        (0xc009, TlsVersion::TLS12, false, Some(Severity::Low)), // ECDHE_ECDSA_WITH_AES_128_CBC_SHA
        (0xc009, TlsVersion::TLS12, true, None),                 // the same with encrypt_then_mac
        (0xc02b, TlsVersion::TLS12, false, None),                // ECDHE_ECDSA_WITH_AES_128_GCM
        (0x1301, TlsVersion::TLS13, false, None),                // TLS_AES_128_GCM_SHA256
    ];
    for (suite, version, etm, want) in cases {
        let mut r = smtp();
        let hs = start_tls(&mut r, TlsMode::Implicit, 1);
        let suite = CipherSuite(suite);
        hs.version = Some(version);
        hs.cipher = Some(suite.to_string());
        hs.server_hello = Some(ServerHelloInfo {
            legacy_version: TlsVersion::TLS12,
            selected_version: None,
            cipher_suite: suite,
            compression_method: 0,
            extensions: if etm {
                vec![ExtensionType::ENCRYPT_THEN_MAC]
            } else {
                vec![]
            },
            alpn: None,
            hello_retry_request: false,
            session_id_length: 0,
        });
        let f = only(&r, Rule::WeakTlsCipher);
        assert_eq!(f.first().map(|f| f.severity), want, "{suite}");
        if let Some(f) = f.first() {
            assert!(f.message.contains(&suite.to_string()), "{}", f.message);
        }
    }
}

// ----- certificates ---------------------------------------------------------------------

#[test]
fn self_signed_and_expired_certificates() {
    let mut r = smtp();
    start_tls(&mut r, TlsMode::Starttls, 50).certificate = Some(certificate_info(true, 0, 10));
    r.tls.as_mut().unwrap().handshake.established = true;
    let f = session_findings(&r);
    assert_eq!(
        f.iter()
            .map(|f| (f.rule.as_str(), f.severity))
            .collect::<Vec<_>>(),
        [
            ("expired-certificate", Severity::Low),
            ("self-signed-certificate", Severity::Low)
        ]
    );
    assert!(
        f[0].message.contains("expired on 2023-11-14T22:13:30"),
        "{}",
        f[0].message
    );
    assert!(
        f[1].message
            .starts_with("server certificate CN=mail.example is self-signed")
    );
}

#[test]
fn not_yet_valid_and_valid_certificates() {
    let mut r = smtp();
    start_tls(&mut r, TlsMode::Implicit, 50).certificate = Some(certificate_info(false, 60, 90));
    let f = only(&r, Rule::ExpiredCertificate);
    assert_eq!(f.len(), 1);
    assert!(f[0].message.contains("not valid until"));

    let mut r = smtp();
    start_tls(&mut r, TlsMode::Implicit, 50).certificate = Some(certificate_info(false, 0, 90));
    assert_eq!(rules(&r), []);
}

// ----- login-after-failures (one session) -----------------------------------------------

#[test]
fn success_after_failures_in_a_session() {
    let mut r = smtp();
    r.credentials
        .push(password(1, "PLAIN", "alice", Some(false)));
    r.credentials
        .push(password(2, "PLAIN", "alice", Some(false)));
    r.credentials
        .push(password(3, "PLAIN", "alice", Some(true)));
    let f = only(&r, Rule::LoginAfterFailures);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Medium);
    assert_eq!(f[0].ts, at(3));
    assert_eq!(
        f[0].message,
        "login as alice (AUTH PLAIN) succeeded after 2 failed attempts in this session \
         (failed: alice, alice)"
    );
    let d = f[0].details.as_ref().expect("details");
    let login = d.login.as_ref().expect("login");
    // The session's own finding: the session is this one, its id is not repeated.
    assert_eq!((login.ts, login.session), (at(3), None));
    assert_eq!(login.user.as_deref(), Some("alice"));
    assert_eq!(login.mechanism, "PLAIN");
    let failed: Vec<Timestamp> = d.failures.iter().map(|a| a.ts).collect();
    assert_eq!(failed, [at(1), at(2)]);
    assert_eq!(d.more_failures, 0);
}

#[test]
fn a_long_run_of_failures_lists_ten_and_counts_the_rest() {
    let mut r = pop3();
    for ts in 0..14 {
        r.credentials
            .push(password(ts, "USER", &format!("u{ts}"), Some(false)));
    }
    r.credentials.push(password(20, "USER", "u13", Some(true)));
    // Only the first success after the failures is reported.
    r.credentials.push(password(21, "USER", "u13", Some(false)));
    r.credentials.push(password(22, "USER", "u13", Some(true)));
    let f = only(&r, Rule::LoginAfterFailures);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].ts, at(20));
    let d = f[0].details.as_ref().unwrap();
    let users: Vec<&str> = d
        .failures
        .iter()
        .filter_map(|a| a.user.as_deref())
        .collect();
    assert_eq!(
        users,
        ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"]
    );
    assert_eq!(d.more_failures, 4);
    assert!(f[0].message.contains("after 14 failed attempts"));
    assert!(
        f[0].message
            .ends_with("(failed: u0, u1, u2, u3, u4, u5, u6, u7, u8, u9, and 4 more)"),
        "{}",
        f[0].message
    );
    let v = serde_json::to_value(&f[0]).unwrap();
    assert!(v["details"]["login"].get("session").is_none());
    assert_eq!(v["details"]["login"]["user"], "u13");
    assert_eq!(v["details"]["failures"].as_array().unwrap().len(), 10);
    assert_eq!(v["details"]["more_failures"], 4);
    assert!(v["details"].get("message_index").is_none());
}

#[test]
fn success_after_many_failures_is_high_and_order_is_the_order_of_attempts() {
    let mut r = pop3();
    for ts in 0..DEFAULT_BRUTE_FORCE_THRESHOLD as i64 {
        r.credentials
            .push(password(ts, "USER", "root", Some(false)));
    }
    r.credentials.push(password(50, "USER", "root", Some(true)));
    let f = only(&r, Rule::LoginAfterFailures);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::High);

    // A failed attempt whose segment was retransmitted carries a later capture time than the
    // successful attempt the client made after it; the order of attempts still counts.
    let mut r = smtp();
    r.credentials
        .push(password(9, "PLAIN", "alice", Some(false)));
    r.credentials
        .push(password(5, "PLAIN", "alice", Some(true)));
    assert_eq!(only(&r, Rule::LoginAfterFailures).len(), 1);

    let mut r = pop3();
    r.credentials.push(password(1, "USER", "root", Some(true)));
    r.credentials.push(password(2, "USER", "root", Some(false)));
    r.credentials.push(password(3, "USER", "root", None));
    assert_eq!(only(&r, Rule::LoginAfterFailures), []);
}

// ----- assess ---------------------------------------------------------------------------

#[test]
fn assess_appends_findings_in_time_order() {
    let mut r = smtp();
    ehlo_offering_starttls(&mut r);
    r.credentials
        .push(password(5, "PLAIN", "alice", Some(false)));
    r.credentials
        .push(password(6, "PLAIN", "alice", Some(true)));
    assess(&mut r);
    let got: Vec<&str> = r.findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(
        got,
        [
            "starttls-not-used",
            "auth-without-tls",
            "cleartext-password",
            "login-after-failures"
        ]
    );
    assert!(r.findings.windows(2).all(|w| w[0].ts <= w[1].ts));
}

#[test]
fn a_quiet_session_has_no_findings() {
    let mut r = smtp();
    command(&mut r, 1, "EHLO");
    reply(&mut r, 2, 250, &["mail.example", "8BITMIME"]);
    assert_eq!(rules(&r), []);
}

#[test]
fn rule_ids_are_unique_kebab_case() {
    let mut ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
    assert!(
        ids.iter()
            .all(|id| id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
    );
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), Rule::ALL.len());
}

#[test]
fn severities_parse_and_order() {
    assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
    assert_eq!(" low ".parse::<Severity>(), Ok(Severity::Low));
    assert!("critical".parse::<Severity>().is_err());
    assert!(Severity::Info < Severity::Low && Severity::Medium < Severity::High);
    assert_eq!(Severity::Medium.to_string(), "medium");
}

// ----- run level: brute-force and login-after-failures across sessions -------------------

fn login_session(id: u64, client: &str, ts: i64, user: &str, success: bool) -> SessionRecord {
    let mut r = session(id, Protocol::Pop3, client, 110);
    r.credentials
        .push(password(ts, "USER", user, Some(success)));
    r
}

#[test]
fn brute_force_at_the_threshold_from_one_client() {
    let mut t = LoginTracker::default();
    for i in 0..5 {
        let user = ["alice", "bob", "carol", "dave", "erin"][i as usize];
        t.observe(&login_session(10 + i, "203.0.113.9", i as i64, user, false));
    }
    // Failures from other clients do not add up.
    for i in 0..4 {
        t.observe(&login_session(30 + i, "203.0.113.10", i as i64, "x", false));
    }
    let f = t.finish();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].finding.rule, "brute-force");
    assert_eq!(f[0].finding.severity, Severity::Medium);
    assert_eq!(f[0].finding.ts, at(0));
    assert_eq!(f[0].client, Some("203.0.113.9".parse().unwrap()));
    assert_eq!(f[0].sessions, [10, 11, 12, 13, 14]);
    assert_eq!(
        f[0].finding.message,
        format!(
            "5 failed logins from 203.0.113.9 in 5 sessions between {} and {} \
             (users: alice, bob, carol, dave, erin)",
            at(0),
            at(4)
        )
    );
}

#[test]
fn brute_force_threshold_is_configurable_and_counts_within_sessions() {
    let mut r = session(1, Protocol::Smtp, "203.0.113.9", 587);
    for ts in 0..3 {
        r.credentials
            .push(password(ts, "PLAIN", &format!("u{ts}"), Some(false)));
    }
    let mut t = LoginTracker::new(3);
    t.observe(&r);
    let f = t.finish();
    assert_eq!(f.len(), 1);
    assert!(
        f[0].finding
            .message
            .starts_with("3 failed logins from 203.0.113.9 in 1 session ")
    );

    let mut t = LoginTracker::new(4);
    t.observe(&r);
    assert_eq!(t.finish(), []);
}

#[test]
fn many_users_are_summarised() {
    let mut t = LoginTracker::new(2);
    for i in 0..8 {
        t.observe(&login_session(
            i + 1,
            "203.0.113.9",
            i as i64,
            &format!("user{i}"),
            false,
        ));
    }
    let f = t.finish();
    assert!(
        f[0].finding
            .message
            .ends_with("(users: user0, user1, user2, user3, user4, others)"),
        "{}",
        f[0].finding.message
    );
}

#[test]
fn success_after_failures_in_other_sessions_whatever_the_finishing_order() {
    let fail = login_session(1, "198.51.100.7", 10, "alice", false);
    let ok = login_session(2, "198.51.100.7", 20, "alice", true);
    for order in [[&fail, &ok], [&ok, &fail]] {
        let mut t = LoginTracker::default();
        for r in order {
            t.observe(r);
        }
        let f = t.finish();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].finding.rule, "login-after-failures");
        assert_eq!(f[0].finding.severity, Severity::Medium);
        assert_eq!(f[0].finding.ts, at(20));
        assert_eq!(f[0].sessions, [1, 2]);
        assert_eq!(
            f[0].finding.message,
            "login as alice (USER/PASS) from 198.51.100.7 succeeded (session 2) after failed \
             logins from the same client in other sessions (1 failures in the run, 1 before it: \
             alice (session 1))"
        );
        let d = f[0].finding.details.as_ref().unwrap();
        assert_eq!(
            d.login.as_ref().map(|l| (l.ts, l.session)),
            Some((at(20), Some(2)))
        );
        assert_eq!(d.failures.len(), 1);
        assert_eq!((d.failures[0].ts, d.failures[0].session), (at(10), Some(1)));
    }
}

#[test]
fn the_first_success_after_failures_is_named_with_the_failures_before_it() {
    // Sessions finish in any order; a success before every failure is no candidate until a
    // failure from another session comes before it.
    let mut sessions = vec![
        login_session(1, "198.51.100.7", 5, "alice", true),
        login_session(2, "198.51.100.7", 300, "alice", true),
        login_session(3, "198.51.100.7", 200, "alice", true),
    ];
    for i in 0..12 {
        sessions.push(login_session(
            10 + i,
            "198.51.100.7",
            100 + i as i64,
            "root",
            false,
        ));
    }
    // A failure after the first success does not count before it.
    sessions.push(login_session(40, "198.51.100.7", 250, "mallory", false));
    for order in [false, true] {
        let mut t = LoginTracker::new(100);
        let mut list: Vec<&SessionRecord> = sessions.iter().collect();
        if order {
            list.reverse();
        }
        for r in list {
            t.observe(r);
        }
        let f = t.finish();
        assert_eq!(f.len(), 1, "{f:?}");
        let f = &f[0];
        assert_eq!(f.finding.ts, at(200));
        assert_eq!(f.sessions, [10, 3]);
        let d = f.finding.details.as_ref().unwrap();
        assert_eq!(d.login.as_ref().unwrap().session, Some(3));
        let listed: Vec<(Timestamp, Option<u64>)> =
            d.failures.iter().map(|a| (a.ts, a.session)).collect();
        let want: Vec<(Timestamp, Option<u64>)> = (0..10)
            .map(|i| (at(100 + i), Some(10 + i as u64)))
            .collect();
        assert_eq!(listed, want);
        assert_eq!(d.more_failures, 2);
        assert!(
            f.finding
                .message
                .contains("(13 failures in the run, 12 before it: "),
            "{}",
            f.finding.message
        );
        assert!(f.finding.message.ends_with(", and 2 more)"));
    }
}

#[test]
fn no_cross_session_finding_for_earlier_success_other_client_or_same_session() {
    let mut t = LoginTracker::default();
    t.observe(&login_session(1, "198.51.100.7", 10, "alice", true));
    t.observe(&login_session(2, "198.51.100.7", 20, "alice", false));
    t.observe(&login_session(3, "198.51.100.8", 30, "alice", true));
    let mut same = login_session(4, "198.51.100.9", 1, "bob", false);
    same.credentials
        .push(password(2, "USER", "bob", Some(true)));
    t.observe(&same);
    assert_eq!(t.finish(), []);
}

#[test]
fn cross_session_pair_is_found_behind_a_session_that_has_both() {
    // Session 5 holds the earliest failure and the latest success; session 6 failed before
    // session 5's success, which is the pair to report.
    let mut both = login_session(5, "198.51.100.7", 1, "alice", false);
    both.credentials
        .push(password(50, "USER", "alice", Some(true)));
    let mut t = LoginTracker::default();
    t.observe(&both);
    t.observe(&login_session(6, "198.51.100.7", 10, "bob", false));
    let f = t.finish();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].sessions, [6, 5]);
    assert_eq!(f[0].finding.ts, at(50));
}

#[test]
fn cross_session_success_after_brute_force_is_high() {
    let mut t = LoginTracker::default();
    for i in 0..6 {
        t.observe(&login_session(
            i + 1,
            "203.0.113.9",
            i as i64,
            "root",
            false,
        ));
    }
    t.observe(&login_session(99, "203.0.113.9", 100, "root", true));
    let f = t.finish();
    let rules: Vec<(&str, Severity)> = f
        .iter()
        .map(|f| (f.finding.rule.as_str(), f.finding.severity))
        .collect();
    assert_eq!(
        rules,
        [
            ("brute-force", Severity::Medium),
            ("login-after-failures", Severity::High)
        ]
    );
}

#[test]
fn the_client_limit_bounds_memory_and_says_so() {
    let mut t = LoginTracker::new(1).with_client_limit(2);
    for (i, ip) in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]
        .into_iter()
        .enumerate()
    {
        t.observe(&login_session(i as u64 + 1, ip, i as i64, "x", false));
    }
    let f = t.finish();
    let mut rules: Vec<&str> = f.iter().map(|f| f.finding.rule.as_str()).collect();
    rules.sort_unstable();
    assert_eq!(
        rules,
        ["brute-force", "brute-force", "login-tracking-limit"]
    );
    let limit = f
        .iter()
        .find(|f| f.finding.rule == "login-tracking-limit")
        .unwrap();
    assert_eq!(limit.finding.severity, Severity::Info);
    assert_eq!(limit.client, None);
    assert!(
        limit
            .finding
            .message
            .starts_with("logins of 2 more clients were not counted")
    );
}

#[test]
fn sessions_without_verdicts_are_not_tracked() {
    let mut t = LoginTracker::new(1).with_client_limit(1);
    let mut r = session(1, Protocol::Pop3, "192.0.2.1", 110);
    r.credentials.push(password(1, "USER", "a", None));
    t.observe(&r);
    t.observe(&login_session(2, "192.0.2.2", 2, "b", false));
    let f = t.finish();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].finding.rule, "brute-force");
}

/// A message with one attachment per `(name, content)`, decoded by the project's streaming
/// decoder, as the session's message `index`.
fn message_with(
    index: usize,
    subject: &str,
    files: &[(&str, &[u8])],
) -> crate::session::MessageRecord {
    use base64::Engine;
    let mut m = format!(
        "From: a@example.com\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\n\r\nsee attached\r\n"
    );
    for (name, content) in files {
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        m.push_str(&format!(
            "--b\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n"
        ));
    }
    m.push_str("--b--\r\n");
    let options = crate::mail::StreamOptions::new(Default::default());
    let streamed = crate::mail::decode_message(m.as_bytes(), true, &options);
    crate::session::MessageRecord {
        index,
        source: crate::session::MessageSource::Data,
        first_seen: at(10 + index as i64),
        last_seen: at(11 + index as i64),
        mail_from: None,
        rcpt_to: None,
        number: None,
        uidl: None,
        size: streamed.size,
        missing_bytes: 0,
        sha256: streamed.sha256,
        complete: true,
        reply: None,
        mime: streamed.mime,
    }
}

const PE: &[u8] = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00PE body";
const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n";
const OLE2: &[u8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00\x00\x00 compound";
const ZIP: &[u8] = b"PK\x03\x04\x14\x00\x00\x00\x08\x00 zip entries";

fn attachment_rules(rec: &SessionRecord) -> Vec<(String, Severity, String)> {
    session_findings(rec)
        .into_iter()
        .filter(|f| {
            [
                Rule::ExecutableAttachment,
                Rule::DoubleExtension,
                Rule::FilenameBidiControl,
                Rule::MacroDocument,
                Rule::ArchiveAttachment,
            ]
            .iter()
            .any(|r| r.id() == f.rule)
        })
        .map(|f| {
            let d = f.details.expect("attachment findings carry details");
            (f.rule, f.severity, d.attachment_path.expect("path"))
        })
        .collect()
}

#[test]
fn executables_are_found_by_name_and_by_content() {
    let mut r = smtp();
    r.messages.push(message_with(
        0,
        "Invoice",
        &[
            ("setup.exe", PE),
            ("notes.txt", b"hello"),
            ("photo.jpg", PE),
            ("run.js", b"WScript.Echo(1)"),
            ("install.sh", b"#!/bin/sh\nrm -rf /tmp/x\n"),
        ],
    ));
    let found = only(&r, Rule::ExecutableAttachment);
    let paths: Vec<&str> = found
        .iter()
        .map(|f| {
            f.details
                .as_ref()
                .unwrap()
                .attachment_path
                .as_deref()
                .unwrap()
        })
        .collect();
    assert_eq!(paths, ["2", "4", "5", "6"]);
    assert!(found.iter().all(|f| f.severity == Severity::High));
    assert_eq!(
        found[0].message,
        "message 0 (\"Invoice\") attachment \"setup.exe\" (part 2): executable by name (.exe) \
         and by content (a Windows PE executable)"
    );
    assert!(
        found[1]
            .message
            .ends_with("content is a Windows PE executable though the name says .jpg"),
        "{}",
        found[1].message
    );
    assert!(
        found[2]
            .message
            .ends_with("executable or script by name (.js)")
    );
    let d = found[0].details.as_ref().unwrap();
    assert_eq!(d.message_index, Some(0));
    assert_eq!(d.filename.as_deref(), Some("setup.exe"));
    assert_eq!(d.extension.as_deref(), Some("exe"));
    assert_eq!(d.content_kind, Some(crate::mail::ContentKind::Pe));
    assert_eq!(found[0].ts, at(10));
}

#[test]
fn double_extensions_and_bidi_names_are_high() {
    let mut r = smtp();
    r.messages.push(message_with(
        3,
        "Scan",
        &[
            ("invoice.pdf.exe", PE),
            ("report.pdf     .scr", PE),
            ("photo\u{202e}gpj.exe", PE),
            ("archive.tar.gz", b"\x1f\x8b\x08\x00"),
            ("setup.v2.exe", PE),
        ],
    ));
    let got = attachment_rules(&r);
    let of = |rule: Rule| -> Vec<&str> {
        got.iter()
            .filter(|(id, ..)| id == rule.id())
            .map(|(_, _, p)| p.as_str())
            .collect()
    };
    assert_eq!(of(Rule::DoubleExtension), ["2", "3"]);
    assert_eq!(of(Rule::FilenameBidiControl), ["4"]);
    assert_eq!(of(Rule::ExecutableAttachment), ["2", "3", "4", "6"]);
    assert_eq!(of(Rule::ArchiveAttachment), ["5"]);
    let bidi = &only(&r, Rule::FilenameBidiControl)[0];
    assert_eq!(bidi.severity, Severity::High);
    // The name is quoted with its control escaped, and the real extension is named.
    assert!(
        bidi.message.contains("\"photo\\u{202e}gpj.exe\""),
        "{}",
        bidi.message
    );
    assert!(bidi.message.contains("(U+202E)"));
    assert!(bidi.message.ends_with("its real extension is .exe"));
    assert!(!bidi.message.contains('\u{202e}'));
    let double = &only(&r, Rule::DoubleExtension)[0];
    assert!(
        double
            .message
            .ends_with("named like a .pdf file but its real extension is .exe")
    );
}

#[test]
fn macro_documents_by_name_and_legacy_office_by_content() {
    let mut r = smtp();
    r.messages.push(message_with(
        0,
        "Q3",
        &[
            ("budget.xlsm", ZIP),
            ("letter.doc", OLE2),
            ("letter.docx", ZIP),
            ("setup.msi", OLE2),
            ("plain.pdf", PDF),
        ],
    ));
    let got = attachment_rules(&r);
    let macro_rows: Vec<(Severity, &str)> = got
        .iter()
        .filter(|(id, ..)| id == Rule::MacroDocument.id())
        .map(|(_, s, p)| (*s, p.as_str()))
        .collect();
    assert_eq!(macro_rows, [(Severity::Medium, "2"), (Severity::Low, "3")]);
    // A ZIP that is an OOXML document is not an archive finding; an msi is an executable.
    assert!(
        !got.iter()
            .any(|(id, ..)| id == Rule::ArchiveAttachment.id())
    );
    let exec: Vec<&str> = got
        .iter()
        .filter(|(id, ..)| id == Rule::ExecutableAttachment.id())
        .map(|(_, _, p)| p.as_str())
        .collect();
    assert_eq!(exec, ["5"]);
}

#[test]
fn archives_by_name_or_content_and_disk_images() {
    let mut r = smtp();
    r.messages.push(message_with(
        1,
        "files",
        &[
            ("photos.zip", ZIP),
            ("data.bin", b"Rar!\x1a\x07\x01\x00rar"),
            ("backup.7z", b"not really"),
            ("disk.iso", b"\x00\x00\x00\x00"),
            ("slides.pptx", ZIP),
        ],
    ));
    let got = attachment_rules(&r);
    assert_eq!(
        got,
        [
            (
                "archive-attachment".to_string(),
                Severity::Low,
                "2".to_string()
            ),
            (
                "archive-attachment".to_string(),
                Severity::Low,
                "3".to_string()
            ),
            (
                "archive-attachment".to_string(),
                Severity::Low,
                "4".to_string()
            ),
            (
                "archive-attachment".to_string(),
                Severity::Medium,
                "5".to_string()
            ),
        ]
    );
    let f = only(&r, Rule::ArchiveAttachment);
    assert!(
        f[1].message.contains("content is a RAR archive"),
        "{}",
        f[1].message
    );
    assert!(f[3].message.contains("disk image by name (.iso)"));
}

#[test]
fn harmless_attachments_and_messages_without_mime_make_no_attachment_finding() {
    let mut r = smtp();
    r.messages.push(message_with(
        0,
        "ok",
        &[
            ("report.pdf", PDF),
            ("notes.txt", b"plain"),
            ("logo.png", b"\x89PNG\r\n"),
        ],
    ));
    let mut bare = message_with(1, "x", &[]);
    bare.mime = None;
    r.messages.push(bare);
    assert!(attachment_rules(&r).is_empty());
}

#[test]
fn a_subject_with_controls_is_quoted_safely() {
    let mut r = smtp();
    r.messages.push(message_with(
        7,
        "=?UTF-8?Q?pay=E2=80=AEfdp?=",
        &[("a.exe", PE)],
    ));
    let f = &only(&r, Rule::ExecutableAttachment)[0];
    assert!(
        f.message
            .starts_with("message 7 (\"pay\\u{202e}fdp\") attachment \"a.exe\""),
        "{}",
        f.message
    );
}

#[test]
fn many_early_successes_do_not_push_out_a_later_one() {
    let mut t = LoginTracker::default();
    // The later success comes first, then more early successes than are kept, all before
    // the failure that finally makes the later one a finding.
    t.observe(&login_session(1, "198.51.100.7", 300, "alice", true));
    for i in 0..(2 * MAX_PENDING_SUCCESSES as u64) {
        t.observe(&login_session(
            100 + i,
            "198.51.100.7",
            i as i64,
            "alice",
            true,
        ));
    }
    t.observe(&login_session(2, "198.51.100.7", 200, "bob", false));
    let f = t.finish();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].finding.ts, at(300));
    assert_eq!(f[0].sessions, [2, 1]);
}
