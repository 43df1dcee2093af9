//! Differential test (issue 6): every mail credential `tshark -z credentials` lists is also
//! found by mailsift, over the public corpus; and every credential mailsift finds beyond
//! tshark's is accounted for in `EXTRA_CREDENTIALS` with the reason it is right.
//!
//! tshark 4.0's credentials tap lists one user name per SMTP AUTH LOGIN exchange, still
//! base64-encoded as sent, and one per POP3 USER command. It decodes neither AUTH PLAIN on
//! POP3, CRAM-MD5, NTLM nor XOAUTH2, and its SMTP tap does not list AUTH PLAIN users. A
//! tshark user name is matched against mailsift's user name as is and, failing that, after
//! base64 decoding; the figures say how many needed decoding. tshark's HTTP and FTP
//! credentials are not mail and are left out.
//!
//! The test prints user names only as lengths, never the names or secrets.

mod corpus_support;

use corpus_support::{
    Capture, Expected, Figure, Mismatch, analyse, par_map, print_figures, triage, tshark,
};
use mailsift::session::Protocol;
use std::collections::BTreeMap;

/// Credentials mailsift finds that tshark does not list, by capture, protocol and
/// mechanism, with how many and why each is right.
const EXTRA_CREDENTIALS: &[(&str, &str, &str, usize, &str)] = &[
    (
        "zeek/testing/btest/Traces/pop3/pop3.pcap",
        "pop3",
        "PLAIN",
        3,
        "POP3 AUTH PLAIN (RFC 5034): tshark 4.0 does not decode it; the base64 line after \
         `AUTH PLAIN` holds authzid, user and password separated by NUL",
    ),
    (
        "suricata-verify/tests/smtp-bug-5989/input.pcap",
        "smtp",
        "LOGIN",
        1,
        "AUTH LOGIN with both base64 responses sent; a crafted oversized first server segment \
         hides the server's 334 replies, so tshark never enters its AUTH state; the user is \
         the client's first response",
    ),
    (
        "arkime/tests/pcap/ntlm_synthetic.pcap",
        "pop3",
        "NTLM",
        1,
        "POP3 AUTH NTLM: tshark's credentials tap lists no NTLM over POP3; mailsift reads \
         user and domain from the NTLM AUTHENTICATE message",
    ),
    (
        "arkime/tests/pcap/ntlm_synthetic.pcap",
        "smtp",
        "NTLM",
        1,
        "SMTP AUTH NTLM: tshark's credentials tap lists no NTLM over SMTP; mailsift reads \
         user and domain from the NTLM AUTHENTICATE message",
    ),
    (
        "arkime/tests/pcap/smtp-data-250.pcap",
        "smtp",
        "PLAIN",
        1,
        "SMTP AUTH PLAIN: tshark shows the base64 blob (smtp.auth.username_password) but its \
         credentials tap lists no PLAIN; the blob holds authzid, user and password separated \
         by NUL",
    ),
    (
        "arkime/tests/pcap/smtp-data-521.pcap",
        "smtp",
        "PLAIN",
        1,
        "SMTP AUTH PLAIN: tshark shows the base64 blob (smtp.auth.username_password) but its \
         credentials tap lists no PLAIN; the blob holds authzid, user and password separated \
         by NUL",
    ),
    (
        "nDPI/tests/cfgs/default/pcap/pop3.pcap",
        "pop3",
        "PLAIN",
        3,
        "POP3 AUTH PLAIN (RFC 5034): tshark 4.0 does not decode it; the base64 line after \
         `AUTH PLAIN` holds authzid, user and password separated by NUL",
    ),
    (
        "BruteShark/Pcap_Examples/PCAPNG Examples/POP3.pcapng",
        "pop3",
        "PLAIN",
        3,
        "POP3 AUTH PLAIN (RFC 5034): tshark 4.0 does not decode it; the base64 line after \
         `AUTH PLAIN` holds authzid, user and password separated by NUL",
    ),
    (
        "BruteShark/Pcap_Examples/PCAPNG Examples/SMTP - Auth Plain.pcapng",
        "smtp",
        "PLAIN",
        1,
        "SMTP AUTH PLAIN, which tshark's credentials tap does not list; this client sends \
         `<name> NUL NUL <password>`, the name in the authorization-identity slot and an empty \
         authentication identity, so mailsift reports an empty user (RFC 4616 reading) with \
         the name as authzid and the password",
    ),
    (
        "BruteShark/Pcap_Examples/SMTP - Auth Plain.pcap",
        "smtp",
        "PLAIN",
        1,
        "SMTP AUTH PLAIN, which tshark's credentials tap does not list; this client sends \
         `<name> NUL NUL <password>`, the name in the authorization-identity slot and an empty \
         authentication identity, so mailsift reports an empty user (RFC 4616 reading) with \
         the name as authzid and the password",
    ),
];

/// tshark credentials that mailsift does not find: (capture, kind, reason). None expected.
const EXPECTED_MISMATCHES: &[Expected] = &[];

/// A mail credential: protocol, mechanism (mailsift's name; tshark's side has none) and user.
#[derive(Debug, Clone)]
struct Cred {
    protocol: &'static str,
    mechanism: String,
    user: String,
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Smtp => "smtp",
        Protocol::Pop3 => "pop3",
    }
}

/// Rows of `tshark -q -z credentials`: `packet protocol username info...`, SMTP and POP3 only.
fn tshark_credentials(text: &str) -> Vec<Cred> {
    let mut out = Vec::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        let (Some(pkt), Some(proto), Some(user)) = (t.first(), t.get(1), t.get(2)) else {
            continue;
        };
        if pkt.parse::<u64>().is_err() {
            continue;
        }
        let protocol = match *proto {
            "SMTP" => "smtp",
            "POP3" | "POP" => "pop3",
            _ => continue,
        };
        out.push(Cred {
            protocol,
            mechanism: String::new(),
            user: (*user).to_string(),
        });
    }
    out
}

fn b64_decode(s: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    String::from_utf8(bytes).ok()
}

#[derive(Default)]
struct CaptureResult {
    asked: bool,
    tshark: usize,
    found: usize,
    found_after_b64: usize,
    mailsift: usize,
    /// Extra credentials by (protocol, mechanism).
    extra: BTreeMap<(&'static str, String), usize>,
    mismatches: Vec<Mismatch>,
}

/// Whether tshark's credentials tap is worth running on a capture: it takes about half a
/// second per file, so it runs where the corpus index says tshark lists credentials, where
/// a login of any kind is tagged, or where mailsift finds one.
fn worth_asking_tshark(cap: &Capture, ours: &[(Cred, bool)]) -> bool {
    cap.tshark_credentials > 0
        || !ours.is_empty()
        || cap.features.iter().any(|f| {
            f.starts_with("auth-") || f.starts_with("pop-user") || f.starts_with("pop-auth")
        })
}

fn compare(cap: &Capture) -> CaptureResult {
    let mut r = CaptureResult::default();
    let mut ours: Vec<(Cred, bool)> = Vec::new();
    for s in analyse(cap, false, true).sessions {
        for c in &s.credentials {
            ours.push((
                Cred {
                    protocol: protocol_name(s.protocol),
                    mechanism: c.mechanism.clone(),
                    user: c.username.clone().unwrap_or_default(),
                },
                false,
            ));
        }
    }
    if !worth_asking_tshark(cap, &ours) {
        return r;
    }
    r.asked = true;
    let theirs = tshark_credentials(&tshark(&cap.file, &["-q", "-z", "credentials"]));
    r.tshark = theirs.len();
    r.mailsift = ours.len();
    for t in &theirs {
        let decoded = b64_decode(&t.user);
        let hit = ours
            .iter()
            .position(|(o, used)| !used && o.protocol == t.protocol && o.user == t.user);
        let hit_b64 = || {
            ours.iter().position(|(o, used)| {
                !used && o.protocol == t.protocol && Some(&o.user) == decoded.as_ref()
            })
        };
        if let Some(i) = hit {
            ours[i].1 = true;
            r.found += 1;
        } else if let Some(i) = hit_b64() {
            ours[i].1 = true;
            r.found += 1;
            r.found_after_b64 += 1;
        } else {
            r.mismatches.push(Mismatch {
                capture: cap.local_path.clone(),
                kind: "tshark_credential_not_found",
                detail: format!(
                    "{} user name of {} characters listed by tshark",
                    t.protocol,
                    t.user.len()
                ),
            });
        }
    }
    for (o, used) in &ours {
        if !used {
            *r.extra
                .entry((o.protocol, o.mechanism.clone()))
                .or_default() += 1;
        }
    }
    r
}

#[test]
fn every_tshark_credential_is_found() {
    let Some(corpus) = corpus_support::open("corpus_credentials") else {
        return;
    };
    let results = par_map(&corpus.captures, compare);
    let sum = |f: fn(&CaptureResult) -> usize| results.iter().map(f).sum::<usize>();
    let extra_total: usize = results.iter().flat_map(|r| r.extra.values()).sum();
    let figures = [
        Figure::new(
            "tshark mail credentials found by mailsift",
            sum(|r| r.found),
            sum(|r| r.tshark),
        ),
        Figure::new(
            "  of them matched after base64-decoding tshark's name",
            sum(|r| r.found_after_b64),
            sum(|r| r.found),
        ),
        Figure::new(
            "mailsift credentials tshark also lists",
            sum(|r| r.mailsift) - extra_total,
            sum(|r| r.mailsift),
        ),
    ];
    print_figures("Credentials vs tshark -z credentials", &figures);
    eprintln!(
        "  tshark asked on {} captures (index count, login tags or mailsift findings)",
        results.iter().filter(|r| r.asked).count()
    );
    eprintln!("  mailsift finds {extra_total} more:");

    // Every extra credential must be in the table, with the same count.
    let mut unexplained = Vec::new();
    let mut seen = vec![false; EXTRA_CREDENTIALS.len()];
    for (cap, r) in corpus.captures.iter().zip(&results) {
        for ((proto, mech), n) in &r.extra {
            let row = EXTRA_CREDENTIALS
                .iter()
                .position(|(c, p, m, _, _)| *c == cap.local_path && p == proto && m == mech);
            match row {
                Some(i) if EXTRA_CREDENTIALS[i].3 == *n => {
                    seen[i] = true;
                    eprintln!(
                        "    {n} x {proto} {mech} in {}: {}",
                        cap.local_path, EXTRA_CREDENTIALS[i].4
                    );
                }
                _ => {
                    eprintln!("    NEW {n} x {proto} {mech} in {}", cap.local_path);
                    unexplained.push((cap.local_path.clone(), *proto, mech.clone(), *n));
                }
            }
        }
    }
    for (row, s) in EXTRA_CREDENTIALS.iter().zip(&seen) {
        if !s {
            eprintln!("    STALE {} x {} {} in {}", row.3, row.1, row.2, row.0);
        }
    }
    let mismatches: Vec<Mismatch> = results.into_iter().flat_map(|r| r.mismatches).collect();
    let (new, stale) = triage(&mismatches, EXPECTED_MISMATCHES);
    assert!(
        new.is_empty(),
        "tshark credentials mailsift misses (listed above)"
    );
    assert!(stale.is_empty(), "expected mismatches that no longer occur");
    assert!(
        unexplained.is_empty(),
        "extra credentials without a reason: {unexplained:?}"
    );
    assert!(
        seen.iter().all(|s| *s),
        "EXTRA_CREDENTIALS rows that no longer occur"
    );
    assert_eq!(figures[0].ratio(), 1.0, "every tshark credential is found");
}

#[test]
fn credential_rows_parse() {
    let text = "\
===================================================================\n\
Packet     Protocol         Username         Info            \n\
------     --------         --------         --------\n\
14         SMTP             dXNlcg==         Username in packet 12\n\
10         POP3             user@example.test    Username in packet 6\n\
361        HTTP             admin            auth username\n\
===================================================================\n";
    let c = tshark_credentials(text);
    assert_eq!(c.len(), 2, "HTTP is not mail");
    assert_eq!(c[0].protocol, "smtp");
    assert_eq!(b64_decode(&c[0].user).as_deref(), Some("user"));
    assert_eq!(c[1].user, "user@example.test");
}
