//! `--redact`: masks every secret of a finished session record before any output sees it, so
//! tables, JSON and transcripts all show the same masked record and none can forget to mask.
//!
//! Secrets are passwords, bearer tokens and challenge responses (CRAM-MD5/APOP digests,
//! DIGEST-MD5 responses, NTLM LM/NT responses). They are replaced by [`MASK`] where they are
//! known to sit:
//! - credentials: `password`, `token`, `response`, `lm_response`, `nt_response`;
//! - client commands: the `PASS` argument, an `AUTH` initial response, the `APOP` digest;
//! - client SASL lines (`auth_data` events from the client);
//! - transcript `line` events, read the same way: a client line `PASS x`, `AUTH MECH x`,
//!   `APOP name x`, and every client line answering a SASL prompt (`334 ...` / `+ ...`).
//!
//! Then every free text of the record (event texts, reply lines, anomaly details, finding
//! messages, the POP3 greeting) is scrubbed of any secret found above, and of the base64 forms
//! of each password, so a secret echoed somewhere unexpected is masked too. Free-text scrubbing
//! only looks for secrets of at least [`MIN_SCRUB_CHARS`] characters: shorter ones would mask
//! ordinary words. User names, challenges, nonces and message contents are not secrets and
//! are kept as they are, even when a password happens to equal a user name or a word in a
//! message (masking those would hide who logged in while telling the reader the password).

use crate::session::{Direction, EventKind, SessionRecord};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// What a secret is replaced with.
pub const MASK: &str = "<redacted>";

/// Shortest secret searched for in free text.
pub const MIN_SCRUB_CHARS: usize = 4;

/// Masks every secret in `rec`.
pub fn redact(rec: &mut SessionRecord) {
    let mut secrets = Secrets::default();
    mask_credentials(rec, &mut secrets);
    mask_events(rec, &mut secrets);
    let secrets = secrets.finish();
    if secrets.is_empty() {
        return;
    }
    scrub_free_text(rec, &secrets);
}

/// Secrets collected while masking, for the free-text pass.
#[derive(Debug, Default)]
struct Secrets(Vec<String>);

impl Secrets {
    fn add(&mut self, secret: &str) {
        if secret.chars().count() >= MIN_SCRUB_CHARS && secret != MASK {
            self.0.push(secret.to_string());
        }
    }

    /// Longest first, so a secret that contains another is masked whole.
    fn finish(mut self) -> Vec<String> {
        self.0
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.0.dedup();
        self.0
    }
}

/// Replaces the value with [`MASK`], remembering the original.
fn mask(value: &mut String, secrets: &mut Secrets) {
    if value != MASK {
        secrets.add(value);
        *value = MASK.to_string();
    }
}

fn mask_option(value: &mut Option<String>, secrets: &mut Secrets) {
    if let Some(v) = value.as_mut() {
        mask(v, secrets);
    }
}

fn mask_credentials(rec: &mut SessionRecord, secrets: &mut Secrets) {
    for c in &mut rec.credentials {
        if let Some(password) = &c.password {
            // How the password travels inside SASL and LOGIN lines.
            let user = c.username.as_deref().unwrap_or("");
            let authzid = c.details.authzid.as_deref().unwrap_or("");
            let plain = format!("{authzid}\0{user}\0{password}");
            for encoded in [
                STANDARD.encode(password),
                STANDARD_NO_PAD.encode(password),
                STANDARD.encode(&plain),
                STANDARD_NO_PAD.encode(&plain),
            ] {
                secrets.add(&encoded);
            }
        }
        mask_option(&mut c.password, secrets);
        let d = &mut c.details;
        for value in [
            &mut d.token,
            &mut d.response,
            &mut d.lm_response,
            &mut d.nt_response,
        ] {
            mask_option(value, secrets);
        }
    }
}

/// The argument of a client command with its secret part masked, or `None` when the command
/// carries no secret.
fn masked_argument(verb: &str, arg: &str, secrets: &mut Secrets) -> Option<String> {
    let arg_trimmed = arg.trim_matches([' ', '\t']);
    if arg_trimmed.is_empty() {
        return None;
    }
    if verb.eq_ignore_ascii_case("PASS") {
        secrets.add(arg);
        secrets.add(arg_trimmed);
        return Some(MASK.to_string());
    }
    if verb.eq_ignore_ascii_case("AUTH") {
        let (mechanism, response) = arg_trimmed.split_once([' ', '\t'])?;
        let response = response.trim_matches([' ', '\t']);
        if response.is_empty() || response == "=" {
            return None;
        }
        secrets.add(response);
        return Some(format!("{mechanism} {MASK}"));
    }
    if verb.eq_ignore_ascii_case("APOP") {
        let (name, digest) = arg_trimmed.rsplit_once(' ')?;
        secrets.add(digest);
        return Some(format!("{name} {MASK}"));
    }
    None
}

/// A client line as a command: verb and argument.
fn split_command(line: &str) -> Option<(&str, &str)> {
    let (verb, arg) = line.split_once([' ', '\t'])?;
    verb.bytes()
        .all(|b| b.is_ascii_alphabetic())
        .then_some((verb, arg))
}

/// A server line that asks the client for SASL data: SMTP `334 ...`, POP3 `+ ...` or `+`.
fn is_sasl_prompt(line: &str) -> bool {
    line == "334" || line.starts_with("334 ") || line == "+" || line.starts_with("+ ")
}

/// Whether a client SASL line is a secret: everything but a cancel and an empty response.
fn is_secret_response(raw: &str) -> bool {
    !matches!(raw.trim(), "" | "*" | "=")
}

fn mask_events(rec: &mut SessionRecord, secrets: &mut Secrets) {
    // Transcripts carry no structure: a SASL prompt makes the client's next lines secret
    // until the server says something else.
    let mut prompted = false;
    for e in &mut rec.events {
        match (&mut e.kind, e.from) {
            (
                EventKind::Command {
                    verb,
                    arg: Some(arg),
                },
                Direction::Client,
            ) => {
                if let Some(masked) = masked_argument(verb, arg, secrets) {
                    *arg = masked;
                }
            }
            (EventKind::AuthData { raw }, Direction::Client) if is_secret_response(raw) => {
                mask(raw, secrets);
            }
            (EventKind::Line { text }, Direction::Client) => {
                if prompted {
                    if is_secret_response(text) {
                        mask(text, secrets);
                    }
                } else if let Some((verb, arg)) = split_command(text)
                    && let Some(masked) = masked_argument(verb, arg, secrets)
                {
                    *text = format!("{verb} {masked}");
                }
            }
            (EventKind::Line { text }, Direction::Server) => prompted = is_sasl_prompt(text),
            _ => {}
        }
    }
}

/// `text` with every secret replaced by [`MASK`], or `None` when it holds none. Masks already
/// in the text are left alone, so a secret that happens to occur inside [`MASK`] cannot
/// mangle it.
fn scrubbed(text: &str, secrets: &[String]) -> Option<String> {
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return None;
    }
    let pieces: Vec<String> = text
        .split(MASK)
        .map(|piece| scrub_piece(piece, secrets))
        .collect();
    Some(pieces.join(MASK))
}

fn scrub_piece(piece: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(piece.len());
    let mut rest = piece;
    while let Some(c) = rest.chars().next() {
        if let Some(s) = secrets.iter().find(|s| rest.starts_with(s.as_str())) {
            out.push_str(MASK);
            rest = rest.get(s.len()..).unwrap_or("");
        } else {
            out.push(c);
            rest = rest.get(c.len_utf8()..).unwrap_or("");
        }
    }
    out
}

fn scrub(text: &mut String, secrets: &[String]) {
    if let Some(clean) = scrubbed(text, secrets) {
        *text = clean;
    }
}

fn scrub_free_text(rec: &mut SessionRecord, secrets: &[String]) {
    for e in &mut rec.events {
        match &mut e.kind {
            EventKind::Line { text } => scrub(text, secrets),
            EventKind::Command { arg, .. } => {
                if let Some(a) = arg.as_mut() {
                    scrub(a, secrets);
                }
            }
            EventKind::Reply { lines, .. } => lines.iter_mut().for_each(|l| scrub(l, secrets)),
            EventKind::Status { text, .. } => scrub(text, secrets),
            EventKind::AuthData { raw } => scrub(raw, secrets),
            EventKind::MessageData { .. } | EventKind::TlsStart { .. } | EventKind::Gap { .. } => {}
        }
    }
    for a in &mut rec.anomalies {
        scrub(&mut a.detail, secrets);
    }
    for f in &mut rec.findings {
        scrub(&mut f.message, secrets);
    }
    if let Some(greeting) = rec.pop3.as_mut().and_then(|p| p.greeting.as_mut()) {
        scrub(greeting, secrets);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Credential, CredentialDetails, Endpoint, Protocol};
    use crate::time::Timestamp;

    fn rec(protocol: Protocol) -> SessionRecord {
        let ep = |port| Endpoint {
            ip: "192.0.2.1".parse().unwrap(),
            port,
        };
        SessionRecord::new(1, protocol, ep(40000), ep(25), Timestamp(0))
    }

    fn line(r: &mut SessionRecord, from: Direction, text: &str) {
        r.push_event(
            Timestamp(r.events.len() as i64),
            from,
            EventKind::Line { text: text.into() },
        );
    }

    fn json(r: &SessionRecord) -> String {
        serde_json::to_string(r).unwrap()
    }

    #[test]
    fn transcript_lines_lose_their_secrets() {
        let mut r = rec(Protocol::Smtp);
        for (from, text) in [
            (Direction::Server, "220 mail.example ESMTP"),
            (Direction::Client, "EHLO client"),
            (Direction::Server, "250 AUTH PLAIN LOGIN"),
            (
                Direction::Client,
                "AUTH PLAIN AGFsaWNlQG1haWxzaWZ0LnRlc3QAV29uZGVybGFuZC00Mg==",
            ),
            (Direction::Server, "235 2.7.0 Authentication successful"),
            (Direction::Client, "AUTH LOGIN"),
            (Direction::Server, "334 VXNlcm5hbWU6"),
            (Direction::Client, "Ym9i"),
            (Direction::Server, "334 UGFzc3dvcmQ6"),
            (Direction::Client, "QnVpbGRlci03"),
            (Direction::Server, "235 2.7.0 Authentication successful"),
            (Direction::Client, "MAIL FROM:<bob@example.org>"),
        ] {
            line(&mut r, from, text);
        }
        redact(&mut r);
        let texts: Vec<&str> = r
            .events
            .iter()
            .map(|e| match &e.kind {
                EventKind::Line { text } => text.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(texts[3], "AUTH PLAIN <redacted>");
        assert_eq!(texts[5], "AUTH LOGIN");
        assert_eq!(
            texts[7], MASK,
            "the user name answer is masked with the rest"
        );
        assert_eq!(texts[9], MASK);
        assert_eq!(texts[11], "MAIL FROM:<bob@example.org>");
        let out = json(&r);
        for secret in ["AGFsaWNl", "QnVpbGRlci03", "Ym9i"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
    }

    #[test]
    fn credentials_commands_and_sasl_lines_are_masked_and_echoes_scrubbed() {
        let mut r = rec(Protocol::Pop3);
        let cmd = |verb: &str, arg: &str| EventKind::Command {
            verb: verb.into(),
            arg: Some(arg.into()),
        };
        r.push_event(Timestamp(1), Direction::Client, cmd("USER", "alice"));
        r.push_event(
            Timestamp(2),
            Direction::Client,
            cmd("PASS", "Wonderland-42"),
        );
        r.push_event(
            Timestamp(3),
            Direction::Server,
            EventKind::Status {
                ok: false,
                text: "[AUTH] wrong password Wonderland-42 for alice".into(),
                resp_code: Some("AUTH".into()),
                body_lines: None,
            },
        );
        r.push_event(
            Timestamp(4),
            Direction::Client,
            cmd("APOP", "alice c4c9334bac560ecc979e58001b3e22fb"),
        );
        r.push_event(
            Timestamp(5),
            Direction::Client,
            cmd("AUTH", "PLAIN AGJvYgBCdWlsZGVyLTc="),
        );
        r.push_event(Timestamp(6), Direction::Client, cmd("AUTH", "LOGIN"));
        r.push_event(
            Timestamp(7),
            Direction::Server,
            EventKind::AuthData {
                raw: "VXNlcm5hbWU6".into(),
            },
        );
        r.push_event(
            Timestamp(8),
            Direction::Client,
            EventKind::AuthData {
                raw: "QnVpbGRlci03".into(),
            },
        );
        r.push_event(
            Timestamp(9),
            Direction::Client,
            EventKind::AuthData { raw: "*".into() },
        );
        // A stray line (after a gap) holding the PLAIN blob and the LOGIN password encoded.
        line(
            &mut r,
            Direction::Client,
            "AGJvYgBCdWlsZGVyLTc= QnVpbGRlci03",
        );
        r.anomaly(
            Timestamp(10),
            Some(Direction::Client),
            "odd",
            "saw Wonderland-42 here",
        );
        let base = Credential {
            ts: Timestamp(2),
            mechanism: "USER".into(),
            username: Some("alice".into()),
            password: Some("Wonderland-42".into()),
            success: Some(false),
            encrypted: false,
            details: CredentialDetails::default(),
        };
        r.credentials.push(base.clone());
        r.credentials.push(Credential {
            mechanism: "PLAIN".into(),
            username: Some("bob".into()),
            password: Some("Builder-7".into()),
            ..base.clone()
        });
        r.credentials.push(Credential {
            mechanism: "APOP".into(),
            password: None,
            details: CredentialDetails {
                challenge: Some("<1.2@host>".into()),
                response: Some("c4c9334bac560ecc979e58001b3e22fb".into()),
                ..Default::default()
            },
            ..base.clone()
        });
        r.credentials.push(Credential {
            mechanism: "XOAUTH2".into(),
            password: None,
            details: CredentialDetails {
                token: Some("ya29.A0ARrdaM-token".into()),
                ..Default::default()
            },
            ..base.clone()
        });
        r.credentials.push(Credential {
            mechanism: "NTLM".into(),
            password: None,
            details: CredentialDetails {
                challenge: Some("0123456789abcdef".into()),
                nt_response: Some("ab".repeat(24)),
                lm_response: Some("cd".repeat(24)),
                ..Default::default()
            },
            ..base
        });
        redact(&mut r);
        let out = json(&r);
        for secret in [
            "Wonderland-42",
            "V29uZGVybGFuZC00Mg",
            "Builder-7",
            "QnVpbGRlci03",
            "AGJvYgBCdWlsZGVyLTc",
            "c4c9334bac560ecc979e58001b3e22fb",
            "ya29",
            &"ab".repeat(24),
            &"cd".repeat(24),
        ] {
            assert!(!out.contains(secret), "{secret} left in {out}");
        }
        // What is not secret stays.
        for kept in [
            "alice",
            "bob",
            "<1.2@host>",
            "0123456789abcdef",
            "VXNlcm5hbWU6",
            "\"raw\":\"*\"",
        ] {
            assert!(out.contains(kept), "{kept} lost");
        }
        assert_eq!(r.credentials[0].password.as_deref(), Some(MASK));
        assert!(
            matches!(&r.events[3].kind, EventKind::Command { arg: Some(a), .. } if a == "alice <redacted>")
        );
        assert!(
            matches!(&r.events[4].kind, EventKind::Command { arg: Some(a), .. } if a == "PLAIN <redacted>")
        );
        assert!(
            matches!(&r.events[2].kind, EventKind::Status { text, .. } if text == "[AUTH] wrong password <redacted> for alice")
        );
        assert_eq!(r.anomalies[0].detail, "saw <redacted> here");
    }

    #[test]
    fn scrubbing_leaves_masks_and_short_secrets_alone() {
        let secrets = vec!["dact".to_string()];
        assert_eq!(
            scrubbed("<redacted> and dact", &secrets).as_deref(),
            Some("<redacted> and <redacted>")
        );
        assert_eq!(scrubbed("nothing here", &secrets), None);
        let mut s = Secrets::default();
        s.add("abc");
        s.add("abcd");
        s.add("abcdef");
        assert_eq!(s.finish(), ["abcdef", "abcd"]);
        assert_eq!(
            scrub_piece("xabcdefy abcdz", &["abcdef".into(), "abcd".into()]),
            "x<redacted>y <redacted>z"
        );
    }

    #[test]
    fn a_record_without_secrets_is_unchanged() {
        let mut r = rec(Protocol::Smtp);
        line(&mut r, Direction::Client, "EHLO client");
        line(&mut r, Direction::Client, "MAIL FROM:<a@b>");
        let before = json(&r);
        redact(&mut r);
        assert_eq!(json(&r), before);
    }
}
