//! Differential test (issue 3): SMTP commands mailsift reports against tshark's SMTP
//! requests and the corpus's raw scan of client lines, and SMTP envelopes against Zeek's
//! `smtp.log` baselines, over the public corpus.
//!
//! Commands. tshark's `smtp.command_line` is read rather than the `smtp.req.command` /
//! `smtp.req.parameter` pair: when several pipelined commands share a segment tshark repeats
//! `smtp.req.command` but leaves out `smtp.req.parameter` for those without one, so the two
//! lists cannot be paired. Each command line is split into verb (upper-cased: tshark keeps
//! the case as sent, mailsift upper-cases) and parameter (verbatim, both sides), and
//! compared as multisets per capture. tshark 4.0 stops following a session at the first
//! BDAT, only dissects ports 25 and 587, and shows SASL exchange lines as no command; the
//! corpus's raw scan of client lines (ORACLE.jsonl `raw_client_cmds`) covers BDAT sessions
//! and other ports, so mailsift's verb counts are also compared with it.
//!
//! Envelopes. Zeek writes one `smtp.log` row per transaction; mailsift keeps the envelope
//! (MAIL FROM path, RCPT TO paths) on each message. They are compared as multisets of
//! (sender, sorted recipients).

mod corpus_support;

use corpus_support::{
    Capture, Corpus, Expected, Figure, Mismatch, analyse, par_map, print_figures, triage, tshark,
    tshark_unescape, zeek_log,
};
use mailsift::session::{Direction, EventKind, Protocol};
use std::collections::BTreeMap;

/// Ports on which tshark 4.0 dissects SMTP.
const TSHARK_SMTP_PORTS: [u16; 2] = [25, 587];

/// Separator between occurrences in tshark's field output (a byte no command line holds).
const AGGREGATOR: &str = "\u{1f}";

/// Known differences: (capture, mismatch kind, reason).
const EXPECTED_MISMATCHES: &[Expected] = &[
    (
        "zeek/testing/btest/Traces/smtp-mail-transactions-invalid.pcap",
        "tshark_command",
        4,
        "after the server refuses DATA (503), the client's message lines reach it as commands \
         and it answers 500 to each; mailsift reports them as the (unknown) commands they \
         were, tshark takes them as message text",
    ),
    (
        "zeek/testing/btest/Traces/smtp/rfc3030-bdat-multipart-chunked.pcap",
        "raw_scan_verb",
        4,
        "BDAT chunks do not end at line ends: the line-based raw scan meets each next BDAT in \
         mid-line and counts two chunk pieces whose first letters happen to spell MAIL and \
         RSET (a domain name and the tail of a parameter name); mailsift follows the chunk sizes (27 BDAT, 1 MAIL, 1 \
         QUIT, as tshark counts too)",
    ),
    (
        "zeek/testing/btest/Traces/smtp/rfc3030-bdat-multipart.pcap",
        "raw_scan_verb",
        1,
        "QUIT follows the last BDAT chunk in mid-line for the line-based raw scan; mailsift \
         follows the chunk size, and tshark reports the QUIT too",
    ),
    (
        "zeek/testing/btest/Traces/smtp/smtp-bdat-cmd-chunk-size-overflow.pcap",
        "tshark_command",
        2,
        "the BDAT size does not fit 64 bits; the server refuses it (521) and no chunk follows; \
         tshark drops the BDAT line and takes the QUIT after it as chunk data; mailsift \
         reports BDAT (with a bdat_invalid anomaly) and QUIT",
    ),
    (
        "zeek/testing/btest/Traces/smtp/smtp-bdat-cmd-chunk-size-overflow2.pcap",
        "tshark_command",
        2,
        "as in smtp-bdat-cmd-chunk-size-overflow: an oversized BDAT size refused with 521; \
         tshark drops BDAT and takes QUIT as chunk data",
    ),
    (
        "zeek/testing/btest/Traces/smtp/smtp-bdat-cmd-invalid.pcapng",
        "tshark_command",
        1,
        "each session sends a malformed BDAT (no size; a size with a bogus parameter; a \
         word instead of a size) that the server refuses (521); the client then sends only QUIT (6 bytes, no chunk); \
         tshark reads that QUIT as chunk data in the first two sessions, mailsift reads all \
         three as commands",
    ),
    (
        "suricata-verify/tests/bug-1045/smtpsuricataflowbitsFN.pcap",
        "tshark_command",
        1,
        "QUIT travels in the same segment as the end-of-data line; tshark takes the rest of \
         that segment as message data",
    ),
    (
        "suricata-verify/tests/smtp-bdat-bad-tail-reply-queue/input.pcap",
        "tshark_command",
        5,
        "a BDAT with a bogus parameter is refused (501) and the MAIL, RCPT and DATA pipelined behind it are \
         answered 250, 250, 354; tshark takes that whole segment as BDAT data and what \
         follows as message data; mailsift reads each command, the message and QUIT",
    ),
    (
        "suricata-verify/tests/smtp-bdat-last-next-mail/input.pcap",
        "tshark_command",
        2,
        "tshark 4.0 shows a segment holding `BDAT n LAST` and its chunk as a DATA fragment \
         (no BDAT request) and, after the next DATA transaction, takes QUIT as message data",
    ),
    (
        "suricata-verify/tests/smtp-bdat-multichunk-inspection/input.pcap",
        "tshark_command",
        3,
        "tshark 4.0 shows the BDAT segments (command and chunk together) as DATA fragments and \
         takes the final QUIT as message data",
    ),
    (
        "suricata-verify/tests/smtp-bdat-multichunk-next-mail/input.pcap",
        "tshark_command",
        3,
        "tshark 4.0 shows the BDAT segments (command and chunk together) as DATA fragments and \
         takes the final QUIT as message data",
    ),
    (
        "suricata-verify/tests/smtp-bdat-multichunk-next-mail/input.pcap",
        "raw_scan_verb",
        1,
        "the second BDAT follows the first chunk in mid-line (the chunk ends inside the \
         Subject line); the line-based raw scan misses it",
    ),
    (
        "suricata-verify/tests/smtp-bug-5989/input.pcap",
        "tshark_command",
        2,
        "MAILSIFT DEFECT (reported): the crafted first server segment (a 220 line followed by \
         5000 bytes without a line end) hides the server's replies; mailsift keeps the AUTH \
         LOGIN exchange open and takes the client's MAIL and RCPT lines as SASL responses \
         (two sasl_malformed anomalies), though LOGIN ends after two responses; tshark and \
         the raw scan report them as commands",
    ),
    (
        "suricata-verify/tests/smtp-bug-5989/input.pcap",
        "raw_scan_verb",
        2,
        "MAILSIFT DEFECT (reported): MAIL and RCPT taken as SASL responses, see the \
         tshark_command entry",
    ),
    (
        "suricata-verify/tests/smtp-pipelining/input.pcap",
        "tshark_command",
        3,
        "MAIL, RCPT and DATA are pipelined in the segment that also carries the message; \
         tshark gives that segment to IMF and lists no request of it",
    ),
    (
        "suricata-verify/tests/firewall/ruletype-firewall-127-smtp-interactive-commands/smtp-interactive.pcap",
        "raw_scan_verb",
        1,
        "a line of the message body begins with the letters of MAIL; the raw scan counts it as a MAIL \
         command (tshark, like mailsift, counts one MAIL)",
    ),
    (
        "arkime/tests/pcap/smtp-subject-utf8-q.pcap",
        "tshark_command",
        1,
        "QUIT travels in the same segment as the end-of-data line; tshark takes the rest of \
         that segment as message data",
    ),
    (
        "arkime/tests/pcap/smtp-subject-windows.pcap",
        "tshark_command",
        4,
        "the client sends its whole session, EHLO to the end-of-data line, in one segment \
         before the server's greeting; tshark shows that segment as a DATA fragment and lists \
         no request",
    ),
    (
        "packets/mail_receiver_server_3.pcapng",
        "tshark_command",
        1,
        "QUIT travels in the same segment as the end-of-data line; tshark takes the rest of \
         that segment as message data",
    ),
    (
        "packets/mail_sender_server_2.pcapng",
        "tshark_command",
        1,
        "in one of the two sessions QUIT travels in the same segment as the end-of-data line; \
         tshark takes the rest of that segment as message data",
    ),
    (
        "smtp-nel-filter/pcaps/smtp_2.pcap",
        "tshark_command",
        2,
        "after DATA is refused (503), the server answers RSET with 250 and QUIT with 221; \
         tshark takes both as message data",
    ),
];

/// Verbs of RFC 5321 and its extensions: the vocabulary of the raw client-line scan, and
/// what tells a command from a SASL exchange line on tshark's side.
const SMTP_VERBS: &[&str] = &[
    "HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "VRFY", "EXPN", "HELP", "NOOP", "QUIT",
    "AUTH", "STARTTLS", "TURN", "ETRN", "ATRN", "BURL", "SEND", "SOML", "SAML",
];

/// Multiset of (verb, parameter).
type Commands = BTreeMap<(String, String), usize>;

fn has_smtp(cap: &Capture) -> bool {
    cap.smtp_sessions > 0
        || cap.oracle["smtp_cmds"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
        || !cap.nonstd_ports().is_empty()
}

/// Splits a command line as tshark prints it (escaped, CRLF included) into verb and
/// parameter.
fn split_command_line(escaped: &str) -> (String, String) {
    let line = tshark_unescape(escaped);
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (verb, param) = line.split_once(' ').unwrap_or((line, ""));
    let upper = verb.to_ascii_uppercase();
    // A line that is no verb (a SASL response tshark took for a command) stays as sent.
    if SMTP_VERBS.contains(&upper.as_str()) {
        (upper, param.to_string())
    } else {
        (verb.to_string(), param.to_string())
    }
}

fn tshark_commands(text: &str) -> Commands {
    let mut out = Commands::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        for cmd in line.split(AGGREGATOR) {
            *out.entry(split_command_line(cmd)).or_default() += 1;
        }
    }
    out
}

/// Compares two multisets; returns (compared, agreed) and pushes a mismatch per difference.
fn compare_multisets<K: Ord + std::fmt::Debug>(
    cap: &Capture,
    kind: &'static str,
    theirs: &BTreeMap<K, usize>,
    ours: &BTreeMap<K, usize>,
    describe: impl Fn(&K) -> String,
    mismatches: &mut Vec<Mismatch>,
) -> (usize, usize) {
    let (mut compared, mut agreed) = (0, 0);
    let keys: std::collections::BTreeSet<&K> = theirs.keys().chain(ours.keys()).collect();
    for k in keys {
        let (t, o) = (
            theirs.get(k).copied().unwrap_or(0),
            ours.get(k).copied().unwrap_or(0),
        );
        compared += t.max(o);
        agreed += t.min(o);
        if t != o {
            mismatches.push(Mismatch {
                capture: cap.local_path.clone(),
                kind,
                detail: format!("{}: reference {t}, mailsift {o}", describe(k)),
            });
        }
    }
    (compared, agreed)
}

#[derive(Default)]
struct CaptureResult {
    sasl_as_commands: usize,
    zeek_without_message: usize,
    tshark_compared: usize,
    tshark_agreed: usize,
    raw_compared: usize,
    raw_agreed: usize,
    zeek_compared: usize,
    zeek_agreed: usize,
    mismatches: Vec<Mismatch>,
}

type Envelope = (String, Vec<String>);

fn compare(corpus: &Corpus, cap: &Capture) -> CaptureResult {
    let mut r = CaptureResult::default();
    let text = tshark(
        &cap.file,
        &[
            "-Y",
            "smtp.req",
            "-T",
            "fields",
            "-e",
            "smtp.command_line",
            "-E",
            "occurrence=a",
            "-E",
            &format!("aggregator={AGGREGATOR}"),
        ],
    );
    let theirs = tshark_commands(&text);

    let analysis = analyse(cap, false, true);
    let mut ours_on_tshark_ports = Commands::new();
    let mut verbs: BTreeMap<String, usize> = BTreeMap::new();
    let mut envelopes: BTreeMap<Envelope, usize> = BTreeMap::new();
    let mut sasl_lines: BTreeMap<String, usize> = BTreeMap::new();
    for s in analysis
        .sessions
        .iter()
        .filter(|s| s.protocol == Protocol::Smtp)
    {
        let tshark_port = TSHARK_SMTP_PORTS.contains(&s.server.port);
        for e in &s.events {
            match &e.kind {
                EventKind::Command { verb, arg } => {
                    if SMTP_VERBS.contains(&verb.as_str()) {
                        *verbs.entry(format!("smtp:{verb}")).or_default() += 1;
                    }
                    if tshark_port {
                        *ours_on_tshark_ports
                            .entry((verb.clone(), arg.clone().unwrap_or_default()))
                            .or_default() += 1;
                    }
                }
                EventKind::AuthData { raw } if tshark_port && e.from == Direction::Client => {
                    *sasl_lines.entry(raw.clone()).or_default() += 1;
                }
                _ => {}
            }
        }
        for m in &s.messages {
            let mut rcpt = m.rcpt_to.clone().unwrap_or_default();
            rcpt.sort();
            *envelopes
                .entry((m.mail_from.clone().unwrap_or_default(), rcpt))
                .or_default() += 1;
        }
    }
    // tshark loses the AUTH state when it misses the server's 334 replies and then shows the
    // client's SASL lines as commands; mailsift has them as auth_data events.
    for ((verb, param), n) in &theirs {
        if param.is_empty()
            && !SMTP_VERBS.contains(&verb.as_str())
            && let Some(m) = sasl_lines.get(verb)
        {
            r.sasl_as_commands += n.min(m);
            *ours_on_tshark_ports
                .entry((verb.clone(), String::new()))
                .or_default() += n.min(m);
        }
    }
    let (c, a) = compare_multisets(
        cap,
        "tshark_command",
        &theirs,
        &ours_on_tshark_ports,
        |(v, p)| format!("{v} (parameter of {} bytes)", p.len()),
        &mut r.mismatches,
    );
    (r.tshark_compared, r.tshark_agreed) = (c, a);

    let raw: BTreeMap<String, usize> = cap.oracle["raw_client_cmds"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with("smtp:"))
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0) as usize))
                .collect()
        })
        .unwrap_or_default();
    let (c, a) = compare_multisets(
        cap,
        "raw_scan_verb",
        &raw,
        &verbs,
        |v| v.clone(),
        &mut r.mismatches,
    );
    (r.raw_compared, r.raw_agreed) = (c, a);

    let logs = corpus.expected_outputs(cap, "/smtp.log");
    if let Some(rows) = logs.iter().map(|p| zeek_log(p)).max_by_key(|r| r.len()) {
        let mut zeek: BTreeMap<Envelope, usize> = BTreeMap::new();
        for row in rows {
            // Zeek logs every transaction and a session summary row (e.g. STARTTLS) too;
            // mailsift keeps envelopes on messages. A row whose last reply is a refusal
            // carried no message (DATA or BDAT refused); one without sender and recipients
            // is no transaction.
            let accepted = row
                .get("last_reply")
                .cloned()
                .flatten()
                .is_none_or(|r| r.starts_with('2'));
            let has_envelope = row.get("mailfrom").cloned().flatten().is_some()
                || row.get("rcptto").cloned().flatten().is_some();
            if !accepted || !has_envelope {
                r.zeek_without_message += 1;
                continue;
            }
            let from = row.get("mailfrom").cloned().flatten().unwrap_or_default();
            let mut rcpt: Vec<String> = row
                .get("rcptto")
                .cloned()
                .flatten()
                .map(|s| s.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            rcpt.sort();
            *zeek.entry((from, rcpt)).or_default() += 1;
        }
        let (c, a) = compare_multisets(
            cap,
            "zeek_envelope",
            &zeek,
            &envelopes,
            |(f, r)| format!("from {f:?} to {r:?}"),
            &mut r.mismatches,
        );
        (r.zeek_compared, r.zeek_agreed) = (c, a);
    }
    r
}

#[test]
fn smtp_commands_and_envelopes_match_references() {
    let Some(corpus) = corpus_support::open("corpus_smtp") else {
        return;
    };
    let caps: Vec<&Capture> = corpus.captures.iter().filter(|c| has_smtp(c)).collect();
    let results = par_map(&caps, |c| compare(&corpus, c));
    let sum = |f: fn(&CaptureResult) -> usize| results.iter().map(f).sum::<usize>();
    let figures = [
        Figure::new(
            "commands equal to tshark's (ports 25/587)",
            sum(|r| r.tshark_agreed),
            sum(|r| r.tshark_compared),
        ),
        Figure::new(
            "verb counts equal to the raw client-line scan",
            sum(|r| r.raw_agreed),
            sum(|r| r.raw_compared),
        ),
        Figure::new(
            "envelopes equal to Zeek smtp.log",
            sum(|r| r.zeek_agreed),
            sum(|r| r.zeek_compared),
        ),
    ];
    print_figures("SMTP commands and envelopes", &figures);
    eprintln!(
        "  SASL lines tshark shows as commands (matched to mailsift auth_data): {}",
        sum(|r| r.sasl_as_commands)
    );
    eprintln!(
        "  Zeek rows not compared (no accepted message, or no envelope): {}",
        sum(|r| r.zeek_without_message)
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
}

#[test]
fn command_lines_split() {
    assert_eq!(
        split_command_line(r"mail FROM:<a@example.test> SIZE=10\r\n"),
        ("MAIL".into(), "FROM:<a@example.test> SIZE=10".into())
    );
    assert_eq!(
        split_command_line(r"DATA\r\n"),
        ("DATA".into(), String::new())
    );
    let m = tshark_commands("RSET\\r\\n\u{1f}mail from:<b@example.test>\\r\\n\nQUIT\\r\\n\n");
    assert_eq!(m.len(), 3);
    assert_eq!(
        m[&("MAIL".to_string(), "from:<b@example.test>".to_string())],
        1
    );
}
