//! Differential test (issue 4): POP3 commands and retrieved messages against tshark, over
//! the public corpus. One tshark run per capture yields both the request fields and the IMF
//! objects (`-Y pop.request -T fields ... --export-objects imf,DIR`).
//!
//! Commands: mailsift's `command` events on POP3 sessions (verb + arg) equal tshark's
//! `pop.request.command` + `pop.request.parameter`, per capture, as multisets, after two
//! normalisations, both counted in the figures:
//! - tshark keeps the verb as sent (`retr`), mailsift upper-cases it (RFC 1939 verbs are
//!   case-insensitive), so tshark's verb is upper-cased before comparing;
//! - tshark has no SASL state, so each client line of an AUTH exchange (base64 or `*`)
//!   shows up as a request whose "command" is the whole line. mailsift reports those lines
//!   as `auth_data` events, which are added to its side as (line, no parameter).
//!
//! Messages: tshark 4.0 does not reassemble RETR/TOP replies. Each server segment that does
//! not start with `+OK`/`-ERR` goes to its IMF dissector on its own, so `--export-objects
//! imf` writes one object per TCP segment of a message, dot-stuffing and the final `.` line
//! included, and also the SASL `+ ` challenge lines. The test checks exactly that: every
//! object is either a piece of the wire form of a message mailsift retrieved (its bytes
//! re-dot-stuffed and terminated) or a SASL challenge line, the pieces cover each message,
//! and a whole message matches by hash only where it fitted in one segment.

mod corpus_support;

use corpus_support::{
    Capture, Expected, Figure, Mismatch, analyse, par_map, print_figures, sha256_hex, triage,
    unstuff,
};
use mailsift::session::{EventKind, MessageSource, Protocol};
use std::collections::BTreeMap;

/// Known differences: (capture, mismatch kind, reason).
const EXPECTED_MISMATCHES: &[Expected] = &[(
    "protolens/tests/pcap/pop3.pcap",
    "message_coverage",
    1,
    "the RETR reply's segments arrive out of order and are retransmitted (SACK recovery); \
     tshark 4.0 marks them 'previous segment not captured' and shows DATA fragments that it \
     never hands to IMF, so it exports nothing; mailsift reassembles the reply without a gap \
     and its message has exactly the size the server's '+OK N octets' line announces",
)];

/// Multiset of (verb, parameter).
type Commands = BTreeMap<(String, String), usize>;

/// Whether a capture can hold POP3 according to the corpus index.
fn has_pop3(cap: &Capture) -> bool {
    cap.pop3_sessions > 0
        || cap.oracle["pop_cmds"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
        || cap.oracle["ports"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == 110 || p == 995))
}

/// RFC 1939/2449/5034 verbs, to tell SASL continuation lines from commands on tshark's side.
const POP3_VERBS: &[&str] = &[
    "USER", "PASS", "APOP", "AUTH", "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "QUIT", "TOP",
    "UIDL", "CAPA", "STLS", "UTF8", "LANG", "XTND",
];

/// Re-applies dot-stuffing and the terminating line, giving the bytes as they were sent.
fn wire_form(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 16);
    let mut at_line_start = true;
    for &b in content {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The size a `+OK N octets` RETR status line announces (RFC 1939's usual form).
fn announced_octets(text: &str) -> Option<u64> {
    let mut words = text.split_whitespace();
    let n = words.next()?.parse().ok()?;
    words
        .next()?
        .to_ascii_lowercase()
        .starts_with("octet")
        .then_some(n)
}

#[derive(Default)]
struct CaptureResult {
    /// Commands compared (size of the larger multiset), and how many both sides have.
    commands: usize,
    commands_agreed: usize,
    /// tshark verbs that were not upper case as sent.
    lower_case_verbs: usize,
    /// tshark "requests" that are SASL continuation lines.
    sasl_lines: usize,
    /// RETR/TOP messages mailsift reports, and how many tshark exported whole (by hash).
    messages: usize,
    messages_whole_in_tshark: usize,
    top_messages: usize,
    /// Messages whose wire bytes tshark's per-segment objects cover completely.
    messages_covered: usize,
    /// tshark IMF objects: total, pieces of a message, SASL challenge lines.
    objects: usize,
    object_pieces: usize,
    object_challenges: usize,
    object_other: usize,
    /// RETR messages whose +OK line announces an octet count, and how many have that size.
    announced: usize,
    announced_equal: usize,
    mismatches: Vec<Mismatch>,
}

fn compare(cap: &Capture) -> CaptureResult {
    let mut r = CaptureResult::default();
    let (fields, objects) = corpus_support::tshark_imf_objects(
        &cap.file,
        &[
            "-Y",
            "pop.request",
            "-T",
            "fields",
            "-e",
            "pop.request.command",
            "-e",
            "pop.request.parameter",
            "-E",
            "occurrence=f",
        ],
    );
    let mut theirs = Commands::new();
    for line in fields.lines() {
        let (verb, param) = line.split_once('\t').unwrap_or((line, ""));
        if verb.chars().any(|c| c.is_ascii_lowercase()) {
            r.lower_case_verbs += 1;
        }
        let verb = verb.to_ascii_uppercase();
        if !POP3_VERBS.contains(&verb.as_str()) {
            r.sasl_lines += 1;
            // A SASL line is case-sensitive base64: keep it as sent.
            *theirs
                .entry((
                    line.split('\t').next().unwrap_or("").to_string(),
                    param.to_string(),
                ))
                .or_default() += 1;
            continue;
        }
        *theirs.entry((verb, param.to_string())).or_default() += 1;
    }

    let analysis = analyse(cap, true, false);
    let mut ours = Commands::new();
    let mut wires: Vec<(String, Vec<u8>, String)> = Vec::new();
    for s in analysis
        .sessions
        .iter()
        .filter(|s| s.protocol == Protocol::Pop3)
    {
        let mut last_status: Option<&str> = None;
        for e in &s.events {
            match &e.kind {
                EventKind::Status { text, .. } => last_status = Some(text),
                EventKind::MessageData { message, .. } => {
                    let size = s
                        .messages
                        .get(*message)
                        .filter(|m| m.source == MessageSource::Retr)
                        .map(|m| m.size);
                    if let (Some(size), Some(octets)) =
                        (size, last_status.and_then(announced_octets))
                    {
                        r.announced += 1;
                        if size == octets {
                            r.announced_equal += 1;
                        } else {
                            eprintln!(
                                "  note: {} RETR of {size} bytes announced as {octets} octets",
                                cap.local_path
                            );
                        }
                    }
                    last_status = None;
                }
                EventKind::Command { verb, arg } => {
                    *ours
                        .entry((verb.clone(), arg.clone().unwrap_or_default()))
                        .or_default() += 1;
                }
                EventKind::AuthData { raw } if e.from == mailsift::session::Direction::Client => {
                    *ours.entry((raw.clone(), String::new())).or_default() += 1;
                }
                _ => {}
            }
        }
        for m in &s.messages {
            if !matches!(m.source, MessageSource::Retr | MessageSource::Top) {
                continue;
            }
            let label = format!(
                "{} message {} ({:?}, {} bytes)",
                s.client, m.index, m.source, m.size
            );
            match analysis.blobs.get(&(s.id, m.index)) {
                Some(bytes) if sha256_hex(bytes) == m.sha256 => {
                    wires.push((label, wire_form(bytes), m.sha256.clone()))
                }
                _ => r.mismatches.push(Mismatch {
                    capture: cap.local_path.clone(),
                    kind: "blob_hash",
                    detail: format!("{label}: kept bytes do not hash to the reported sha256"),
                }),
            }
            r.messages += 1;
            if m.source == MessageSource::Top {
                r.top_messages += 1;
            }
        }
    }

    let keys: std::collections::BTreeSet<_> = theirs.keys().chain(ours.keys()).collect();
    for k in keys {
        let (t, o) = (
            theirs.get(k).copied().unwrap_or(0),
            ours.get(k).copied().unwrap_or(0),
        );
        r.commands += t.max(o);
        r.commands_agreed += t.min(o);
        if t != o {
            r.mismatches.push(Mismatch {
                capture: cap.local_path.clone(),
                kind: "command",
                detail: format!(
                    "{} (param of {} bytes): tshark {t}, mailsift {o}",
                    k.0,
                    k.1.len()
                ),
            });
        }
    }

    // Objects belong to this comparison only on captures with POP3 (tshark also exports
    // SMTP DATA, which corpus_mime compares).
    if !ours.is_empty() || !theirs.is_empty() {
        let mut covered = vec![0usize; wires.len()];
        for (_, obj) in &objects {
            r.objects += 1;
            if let Some(i) = wires
                .iter()
                .position(|(_, w, _)| memchr::memmem::find(w, obj).is_some())
            {
                r.object_pieces += 1;
                covered[i] += obj.len();
                if sha256_hex(&unstuff(obj)) == wires[i].2 {
                    r.messages_whole_in_tshark += 1;
                }
            } else if obj.starts_with(b"+ ") || obj == b"+\r\n" {
                r.object_challenges += 1;
            } else {
                // Bodies of LIST, UIDL and CAPA replies sent apart from their status line,
                // and server lines that are not replies at all.
                r.object_other += 1;
            }
        }
        for ((label, w, _), c) in wires.iter().zip(covered) {
            if c == w.len() {
                r.messages_covered += 1;
            } else {
                r.mismatches.push(Mismatch {
                    capture: cap.local_path.clone(),
                    kind: "message_coverage",
                    detail: format!(
                        "{label}: tshark objects cover {c} of {} wire bytes",
                        w.len()
                    ),
                });
            }
        }
    }
    r
}

#[test]
fn pop3_commands_and_messages_match_tshark() {
    let Some(corpus) = corpus_support::open("corpus_pop3") else {
        return;
    };
    let caps: Vec<&Capture> = corpus.captures.iter().filter(|c| has_pop3(c)).collect();
    let results = par_map(&caps, |c| compare(c));
    let sum = |f: fn(&CaptureResult) -> usize| results.iter().map(f).sum::<usize>();
    let figures = [
        Figure::new(
            "captures with equal command multisets",
            results
                .iter()
                .filter(|r| r.commands == r.commands_agreed)
                .count(),
            caps.len(),
        ),
        Figure::new(
            "commands agreeing (verb + parameter)",
            sum(|r| r.commands_agreed),
            sum(|r| r.commands),
        ),
        Figure::new(
            "RETR/TOP messages covered by tshark's IMF pieces",
            sum(|r| r.messages_covered),
            sum(|r| r.messages),
        ),
        Figure::new(
            "RETR/TOP messages tshark exported whole (one segment)",
            sum(|r| r.messages_whole_in_tshark),
            sum(|r| r.messages),
        ),
        Figure::new(
            "tshark IMF objects that are message pieces",
            sum(|r| r.object_pieces),
            sum(|r| r.objects),
        ),
        Figure::new(
            "RETR sizes equal to the '+OK N octets' announcement",
            sum(|r| r.announced_equal),
            sum(|r| r.announced),
        ),
    ];
    print_figures("POP3 vs tshark", &figures);
    eprintln!(
        "  of the messages, {} came from TOP",
        sum(|r| r.top_messages)
    );
    eprintln!(
        "  normalised: {} tshark verbs sent in lower case; {} SASL continuation lines tshark shows as requests",
        sum(|r| r.lower_case_verbs),
        sum(|r| r.sasl_lines)
    );
    eprintln!(
        "  other tshark IMF objects: {} SASL '+ ' challenge lines, {} listing bodies or stray server lines",
        sum(|r| r.object_challenges),
        sum(|r| r.object_other)
    );
    let mismatches: Vec<Mismatch> = results.into_iter().flat_map(|r| r.mismatches).collect();
    let (new, stale) = triage(&mismatches, EXPECTED_MISMATCHES);
    assert!(
        new.is_empty(),
        "{} unexplained mismatches (listed above)",
        new.len()
    );
    assert!(
        stale.is_empty(),
        "expected mismatches that no longer occur: update the table"
    );
    assert!(
        caps.len() >= 8,
        "the corpus has POP3 captures: {}",
        caps.len()
    );
    assert_eq!(figures[1].ratio(), 1.0, "every POP3 command agrees");
    // All but the one explained above.
    assert!(
        figures[2].ratio() >= 0.98,
        "retrieved messages covered by tshark's pieces"
    );
}

#[test]
fn announced_octets_parse() {
    assert_eq!(announced_octets("4321 octets"), Some(4321));
    assert_eq!(announced_octets("120 Octets follow"), Some(120));
    assert_eq!(announced_octets("message follows"), None);
    assert_eq!(announced_octets("3 9000"), None);
}

#[test]
fn wire_form_restuffs_and_terminates() {
    assert_eq!(wire_form(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
    assert_eq!(wire_form(b".x"), b"..x\r\n.\r\n");
    assert_eq!(wire_form(b""), b".\r\n");
}
