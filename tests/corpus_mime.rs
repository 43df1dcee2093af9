//! Differential test (issue 5): the messages mailsift extracts from SMTP against the IMF
//! objects tshark exports (`--export-objects imf`), by hash; and decoded subjects against
//! the subjects of Zeek's `smtp.log` baselines, Arkime's test baselines and tshark's
//! `imf.subject`, over the public corpus.
//!
//! Hashes. mailsift's `sha256` covers the message content after dot-unstuffing, ending with
//! the CRLF that precedes the terminating `.` line. tshark's object is the DATA content as
//! reassembled: without the terminating `.` line but with dot-stuffing left in (a line
//! `..x` stays `..x`). Each object is therefore compared as is, then unstuffed (see
//! `corpus_support::unstuff`), then with its final CRLF added or removed; the figures say how
//! many needed which step. POP3 RETR content is compared in corpus_pop3 (tshark exports it
//! per TCP segment, not per message).
//!
//! Subjects. Zeek and tshark log the `Subject` field raw (RFC 2047 encoded words and all);
//! mailsift and Arkime decode it. The raw references are decoded by this test's own small
//! RFC 2047 decoder (independent of mailsift's) so that decoded is compared with decoded;
//! mismatches print the raw value, the reference's decoding and mailsift's.

mod corpus_support;

use corpus_support::{
    Analysis, Capture, Corpus, Expected, Figure, Mismatch, analyse, decode_rfc2047, par_map,
    print_figures, sha256_hex, triage, tshark_unescape, unstuff, zeek_log,
};
use mailsift::session::{MessageSource, Protocol};
use std::collections::BTreeMap;

/// Ports on which tshark 4.0 dissects SMTP (and so exports IMF from DATA).
const TSHARK_SMTP_PORTS: [u16; 2] = [25, 587];

/// Known differences: (capture, mismatch kind, reason).
const EXPECTED_MISMATCHES: &[Expected] = &[
    (
        "zeek/testing/btest/Traces/smtp-mail-transactions-invalid.pcap",
        "tshark_object_unmatched",
        1,
        "tshark exports the text lines sent after each refused DATA (503) as messages; the \
         server answered them as commands (500) and accepted no message there, so mailsift \
         reports none",
    ),
    (
        "zeek/testing/btest/Traces/smtp.pcap",
        "message_not_in_tshark",
        1,
        "tshark's DATA reassembly splices a retransmitted segment into the message (its \
         15156-byte object repeats text from the message start in mid-body); mailsift's 14545 \
         bytes equal Zeek's message/rfc822 file for this traffic (size and SHA-1)",
    ),
    (
        "zeek/testing/btest/Traces/smtp.pcap",
        "tshark_object_unmatched",
        1,
        "tshark's DATA reassembly splices a retransmitted segment into the message (its \
         15156-byte object repeats text from the message start in mid-body); mailsift's 14545 \
         bytes equal Zeek's message/rfc822 file for this traffic (size and SHA-1)",
    ),
    (
        "zeek/testing/btest/Traces/smtp.pcap",
        "zeek_part_sha256",
        2,
        "Zeek's quoted-printable decoding ends each QP part with a CRLF more than the part \
         holds (1868 vs 1866 and 10809 vs 10807 bytes); Python's email package and Suricata's \
         size of that attachment (10807) agree with mailsift",
    ),
    (
        "zeek/testing/btest/Traces/smtp/rfc3030-bdat-0-last.pcap",
        "bdat_message_not_in_tshark",
        1,
        "tshark 4.0 exports no IMF object for BDAT content",
    ),
    (
        "zeek/testing/btest/Traces/smtp/rfc3030-bdat-example1.pcap",
        "bdat_message_not_in_tshark",
        1,
        "tshark 4.0 exports no IMF object for BDAT content",
    ),
    (
        "zeek/testing/btest/Traces/smtp/rfc3030-bdat-multipart-chunked.pcap",
        "bdat_message_not_in_tshark",
        1,
        "tshark 4.0 exports no IMF object for BDAT content",
    ),
    (
        "zeek/testing/btest/Traces/smtp/rfc3030-bdat-multipart.pcap",
        "bdat_message_not_in_tshark",
        1,
        "tshark 4.0 exports no IMF object for BDAT content",
    ),
    (
        "suricata-verify/tests/bug-3616-smtp/input.pcap",
        "message_not_in_tshark",
        1,
        "same traffic as zeek smtp.pcap's first session: tshark's DATA reassembly splices a \
         retransmitted segment into the message (its 15156-byte object repeats text from the \
         message start in mid-body); mailsift's 14545 bytes equal Zeek's message/rfc822 file \
         for this traffic (size and SHA-1)",
    ),
    (
        "suricata-verify/tests/bug-3616-smtp/input.pcap",
        "tshark_object_unmatched",
        1,
        "same traffic as zeek smtp.pcap's first session: tshark's DATA reassembly splices a \
         retransmitted segment into the message (its 15156-byte object repeats text from the \
         message start in mid-body); mailsift's 14545 bytes equal Zeek's message/rfc822 file \
         for this traffic (size and SHA-1)",
    ),
    (
        "suricata-verify/tests/issue-4220-01-ids/1flowB.pcap",
        "message_not_in_tshark",
        1,
        "tshark's object lacks about 11.7 kB: it drops segments it takes for retransmissions \
         and joins base64 lines from different places; mailsift delivers the stream without a \
         gap and the attachment decodes cleanly (700928 bytes)",
    ),
    (
        "suricata-verify/tests/issue-4220-01-ids/1flowB.pcap",
        "tshark_object_unmatched",
        1,
        "tshark's object lacks about 11.7 kB: it drops segments it takes for retransmissions \
         and joins base64 lines from different places; mailsift delivers the stream without a \
         gap and the attachment decodes cleanly (700928 bytes)",
    ),
    (
        "suricata-verify/tests/smtp-bdat-bad-tail-reply-queue/input.pcap",
        "message_not_in_tshark",
        1,
        "the DATA message follows a refused BDAT; tshark takes everything after the BDAT line \
         as chunk data and exports nothing",
    ),
    (
        "suricata-verify/tests/smtp-bdat-last-next-mail/input.pcap",
        "bdat_message_not_in_tshark",
        1,
        "tshark 4.0 exports no IMF object for BDAT content",
    ),
    (
        "suricata-verify/tests/smtp-bdat-last-next-mail/input.pcap",
        "message_not_in_tshark",
        1,
        "the DATA message after the BDAT transaction: tshark, out of step since the BDAT \
         segments, exports nothing for it",
    ),
    (
        "suricata-verify/tests/smtp-bdat-multichunk-inspection/input.pcap",
        "bdat_message_not_in_tshark",
        1,
        "tshark 4.0 exports no IMF object for BDAT content",
    ),
    (
        "suricata-verify/tests/smtp-bdat-multichunk-inspection/input.pcap",
        "message_not_in_tshark",
        1,
        "the DATA message after the BDAT transaction: tshark, out of step since the BDAT \
         segments, exports nothing for it",
    ),
    (
        "suricata-verify/tests/smtp-bdat-multichunk-next-mail/input.pcap",
        "bdat_message_not_in_tshark",
        1,
        "tshark 4.0 exports no IMF object for BDAT content",
    ),
    (
        "suricata-verify/tests/smtp-bdat-multichunk-next-mail/input.pcap",
        "message_not_in_tshark",
        1,
        "the DATA message after the BDAT transaction: tshark, out of step since the BDAT \
         segments, exports nothing for it",
    ),
    (
        "suricata-verify/tests/smtp-bdat-zero-last-next-mail/input.pcap",
        "bdat_message_not_in_tshark",
        1,
        "tshark 4.0 exports no IMF object for BDAT content",
    ),
    (
        "suricata-verify/tests/smtp-bug-5981/input.pcap",
        "message_not_in_tshark",
        1,
        "crafted retransmissions carry different bytes (four overlap conflicts); tshark's \
         object mixes copies and loses lines; mailsift keeps the first copy, and its \
         attachment equals the SHA-256 and size Suricata's test expects for this payload",
    ),
    (
        "suricata-verify/tests/smtp-bug-5981/input.pcap",
        "tshark_object_unmatched",
        1,
        "crafted retransmissions carry different bytes (four overlap conflicts); tshark's \
         object mixes copies and loses lines; mailsift keeps the first copy, and its \
         attachment equals the SHA-256 and size Suricata's test expects for this payload",
    ),
    (
        "suricata-verify/tests/smtp-bug-5989/input.pcap",
        "message_not_in_tshark",
        1,
        "crafted retransmissions carry different bytes (four overlap conflicts); tshark's \
         object mixes copies and loses lines; mailsift keeps the first copy, and its \
         attachment equals the SHA-256 and size Suricata's test expects for this payload",
    ),
    (
        "suricata-verify/tests/smtp-bug-5989/input.pcap",
        "tshark_object_unmatched",
        1,
        "crafted retransmissions carry different bytes (four overlap conflicts); tshark's \
         object mixes copies and loses lines; mailsift keeps the first copy, and its \
         attachment equals the SHA-256 and size Suricata's test expects for this payload",
    ),
    (
        "suricata-verify/tests/smtp-long-DATA-line/input.pcap",
        "message_not_in_tshark",
        1,
        "crafted retransmissions carry different bytes (four overlap conflicts); tshark's \
         object mixes copies and loses lines; mailsift keeps the first copy, and its \
         attachment equals the SHA-256 and size Suricata's test expects for this payload",
    ),
    (
        "suricata-verify/tests/smtp-long-DATA-line/input.pcap",
        "tshark_object_unmatched",
        1,
        "crafted retransmissions carry different bytes (four overlap conflicts); tshark's \
         object mixes copies and loses lines; mailsift keeps the first copy, and its \
         attachment equals the SHA-256 and size Suricata's test expects for this payload",
    ),
    (
        "suricata-verify/tests/smtp-pipelining/input.pcap",
        "message_not_in_tshark",
        1,
        "MAIL, RCPT and DATA are pipelined in the segment that carries the message; tshark's \
         object is that whole segment (87 bytes, command lines included), mailsift's message \
         the 16 bytes after DATA",
    ),
    (
        "suricata-verify/tests/smtp-pipelining/input.pcap",
        "tshark_object_unmatched",
        1,
        "MAIL, RCPT and DATA are pipelined in the segment that carries the message; tshark's \
         object is that whole segment (87 bytes, command lines included), mailsift's message \
         the 16 bytes after DATA",
    ),
    (
        "arkime/tests/pcap/smtp-subject-windows.pcap",
        "message_not_in_tshark",
        1,
        "the client sends its whole session in one segment before the server's greeting; \
         tshark shows it as a DATA fragment and exports nothing",
    ),
    (
        "arkime/tests/pcap/smtp-subject-windows.pcap",
        "subject",
        1,
        "the Subject holds a raw 8-bit byte 0x92 with no encoded word; raw header bytes must \
         be UTF-8 (RFC 6532) and this is not; Arkime guesses Windows-1252 (a right quote), \
         mailsift shows U+FFFD (open question, see CORPUS.md)",
    ),
    (
        "BruteShark/Pcap_Examples/PCAPNG Examples/SMTP - Auth Login.pcapng",
        "message_not_in_tshark",
        1,
        "same traffic as zeek smtp.pcap's first session: tshark's DATA reassembly splices a \
         retransmitted segment into the message (its 15156-byte object repeats text from the \
         message start in mid-body); mailsift's 14545 bytes equal Zeek's message/rfc822 file \
         for this traffic (size and SHA-1)",
    ),
    (
        "BruteShark/Pcap_Examples/PCAPNG Examples/SMTP - Auth Login.pcapng",
        "tshark_object_unmatched",
        1,
        "same traffic as zeek smtp.pcap's first session: tshark's DATA reassembly splices a \
         retransmitted segment into the message (its 15156-byte object repeats text from the \
         message start in mid-body); mailsift's 14545 bytes equal Zeek's message/rfc822 file \
         for this traffic (size and SHA-1)",
    ),
    (
        "smtp-nel-filter/pcaps/smtp_data.pcap",
        "message_not_in_tshark",
        1,
        "same traffic as zeek smtp.pcap's first session: tshark's DATA reassembly splices a \
         retransmitted segment into the message (its 15156-byte object repeats text from the \
         message start in mid-body); mailsift's 14545 bytes equal Zeek's message/rfc822 file \
         for this traffic (size and SHA-1)",
    ),
    (
        "smtp-nel-filter/pcaps/smtp_data.pcap",
        "tshark_object_unmatched",
        1,
        "same traffic as zeek smtp.pcap's first session: tshark's DATA reassembly splices a \
         retransmitted segment into the message (its 15156-byte object repeats text from the \
         message start in mid-body); mailsift's 14545 bytes equal Zeek's message/rfc822 file \
         for this traffic (size and SHA-1)",
    ),
];

/// How a tshark object was brought to mailsift's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Normalisation {
    /// Equal as exported.
    AsIs,
    /// Equal once dot-stuffing is undone.
    Unstuffed,
    /// Equal once unstuffed and the final CRLF added.
    UnstuffedPlusCrlf,
    /// Equal once unstuffed and the final CRLF removed.
    UnstuffedMinusCrlf,
}

/// The candidate hashes of one tshark object, most literal first.
fn candidate_hashes(obj: &[u8]) -> Vec<(Normalisation, String)> {
    let un = unstuff(obj);
    let mut v = vec![
        (Normalisation::AsIs, sha256_hex(obj)),
        (Normalisation::Unstuffed, sha256_hex(&un)),
    ];
    let mut plus = un.clone();
    plus.extend_from_slice(b"\r\n");
    v.push((Normalisation::UnstuffedPlusCrlf, sha256_hex(&plus)));
    if let Some(minus) = un.strip_suffix(b"\r\n") {
        v.push((Normalisation::UnstuffedMinusCrlf, sha256_hex(minus)));
    }
    v
}

/// A subject comparison with one reference.
#[derive(Default)]
struct SubjectTally {
    compared: usize,
    equal: usize,
}

#[derive(Default)]
struct CaptureResult {
    /// mailsift SMTP messages, by source.
    messages: usize,
    bdat_messages: usize,
    /// Messages matched to a tshark object, by normalisation.
    matched: BTreeMap<Normalisation, usize>,
    /// IMF frames tshark saw on SMTP ports (one per DATA it reassembled).
    tshark_frames: usize,
    /// tshark IMF objects that matched a message, that are message/rfc822 parts of another
    /// object, and that are IMF of other protocols (POP3 pieces, IMAP).
    tshark_matched: usize,
    embedded_objects: usize,
    other_protocol_objects: usize,
    /// Whole messages Zeek's file analysis hashed (message/rfc822 files), and equal ones.
    zeek_messages: usize,
    zeek_messages_equal: usize,
    /// MIME parts Zeek hashed (SHA-256, or SHA-1 of attachments), and equal ones.
    zeek_parts: usize,
    zeek_parts_equal: usize,
    /// Files Suricata's test expectations name (fileinfo), and equal attachments.
    suricata_files: usize,
    suricata_files_equal: usize,
    /// Messages on a port tshark does not dissect as SMTP.
    off_port_messages: usize,
    /// Messages whose bytes hash to their reported sha256 (blob check).
    blob_ok: usize,
    zeek: SubjectTally,
    arkime: SubjectTally,
    tshark_subjects: SubjectTally,
    mismatches: Vec<Mismatch>,
}

fn has_smtp(cap: &Capture) -> bool {
    cap.smtp_sessions > 0
        || cap.oracle["smtp_cmds"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
        || !cap.nonstd_ports().is_empty()
}

/// Subjects (decoded) of Arkime's `.test` baseline for a capture, if there is one.
fn arkime_subjects(corpus: &Corpus, cap: &Capture) -> Option<Vec<String>> {
    let path = corpus.expected_outputs(cap, ".test").into_iter().next()?;
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let mut out = Vec::new();
    for s in v["sessions3"].as_array()? {
        // Arkime also reads IMAP; only its SMTP sessions are compared.
        let smtp = s["body"]["protocol"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "smtp"));
        if !smtp {
            continue;
        }
        if let Some(subjects) = s["body"]["email"]["subject"].as_array() {
            out.extend(
                subjects
                    .iter()
                    .filter_map(|x| x.as_str())
                    .map(str::to_string),
            );
        }
    }
    Some(out)
}

/// Subjects (raw) of the fullest Zeek `smtp.log` baseline for a capture, if there is one.
fn zeek_subjects(corpus: &Corpus, cap: &Capture) -> Option<Vec<String>> {
    let logs = corpus.expected_outputs(cap, "/smtp.log");
    let rows = logs.iter().map(|p| zeek_log(p)).max_by_key(|r| r.len())?;
    Some(
        rows.iter()
            .filter_map(|r| r.get("subject").cloned().flatten())
            .collect(),
    )
}

/// Compares reference subjects (already decoded) with mailsift's decoded subjects as
/// multisets; prints each difference with the raw reference value.
fn compare_subjects(
    cap: &Capture,
    reference: &str,
    theirs: &[(String, Option<String>)],
    ours: &[String],
    tally: &mut SubjectTally,
    mismatches: &mut Vec<Mismatch>,
) {
    let mut left: Vec<&String> = ours.iter().collect();
    for (raw, decoded) in theirs {
        tally.compared += 1;
        let Some(decoded) = decoded else {
            mismatches.push(Mismatch {
                capture: cap.local_path.clone(),
                kind: "subject_undecodable",
                detail: format!(
                    "{reference} subject {raw:?} uses a charset the test cannot decode"
                ),
            });
            continue;
        };
        if let Some(i) = left.iter().position(|o| *o == decoded) {
            left.remove(i);
            tally.equal += 1;
        } else {
            mismatches.push(Mismatch {
                capture: cap.local_path.clone(),
                kind: "subject",
                detail: format!(
                    "{reference} raw {raw:?} decodes to {decoded:?}; mailsift has {:?}",
                    left
                ),
            });
        }
    }
}

fn compare(corpus: &Corpus, cap: &Capture) -> CaptureResult {
    let mut r = CaptureResult::default();
    let (fields, objects) = corpus_support::tshark_imf_objects(
        &cap.file,
        &[
            "-Y",
            "imf",
            "-T",
            "fields",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "imf.subject",
            "-E",
            "occurrence=f",
        ],
    );
    // IMF frames on SMTP ports, with their raw subjects; IMF frames of other protocols
    // (POP3 pieces, IMAP) are only counted.
    let mut tshark_subjects: Vec<String> = Vec::new();
    let mut other_frames = 0;
    for line in fields.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let port = |i: usize| f.get(i).and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
        if TSHARK_SMTP_PORTS.contains(&port(0)) || TSHARK_SMTP_PORTS.contains(&port(1)) {
            r.tshark_frames += 1;
            if let Some(s) = f.get(2).filter(|s| !s.is_empty()) {
                tshark_subjects.push(tshark_unescape(s));
            }
        } else {
            other_frames += 1;
        }
    }

    let analysis = analyse(cap, true, true);
    let mut object_hashes: Vec<(Vec<(Normalisation, String)>, bool)> = objects
        .iter()
        .map(|(_, bytes)| (candidate_hashes(bytes), false))
        .collect();
    let mut subjects: Vec<String> = Vec::new();
    for s in analysis
        .sessions
        .iter()
        .filter(|s| s.protocol == Protocol::Smtp)
    {
        let off_port = !TSHARK_SMTP_PORTS.contains(&s.server.port);
        for m in &s.messages {
            r.messages += 1;
            if m.source == MessageSource::Bdat {
                r.bdat_messages += 1;
            }
            if let Some(subject) = m.mime.as_ref().and_then(|x| x.header.subject.clone()) {
                subjects.push(subject);
            }
            if analysis
                .blobs
                .get(&(s.id, m.index))
                .is_some_and(|b| sha256_hex(b) == m.sha256)
            {
                r.blob_ok += 1;
            }
            let hit = object_hashes.iter_mut().find_map(|(cands, used)| {
                if *used {
                    return None;
                }
                let n = cands.iter().find(|(_, h)| *h == m.sha256)?.0;
                *used = true;
                Some(n)
            });
            let label = format!(
                "{} message {} ({:?}, {} bytes, complete: {})",
                s.client, m.index, m.source, m.size, m.complete
            );
            match hit {
                Some(n) => *r.matched.entry(n).or_default() += 1,
                None if off_port => {
                    r.off_port_messages += 1;
                }
                None => r.mismatches.push(Mismatch {
                    capture: cap.local_path.clone(),
                    kind: if m.source == MessageSource::Bdat {
                        "bdat_message_not_in_tshark"
                    } else {
                        "message_not_in_tshark"
                    },
                    detail: label,
                }),
            }
        }
    }
    // Objects no message matched: tshark also exports each message/rfc822 part it finds
    // inside a message (a piece of another object), and IMF from other protocols (POP3
    // pieces, which corpus_pop3 accounts for, and IMAP).
    let mut unmatched = Vec::new();
    for (i, ((name, bytes), (_, used))) in objects.iter().zip(&object_hashes).enumerate() {
        if *used {
            r.tshark_matched += 1;
            continue;
        }
        let inside_another = objects.iter().enumerate().any(|(j, (_, other))| {
            j != i && other.len() > bytes.len() && memchr::memmem::find(other, bytes).is_some()
        });
        if inside_another {
            r.embedded_objects += 1;
        } else {
            unmatched.push(format!("{name:?} ({} bytes)", bytes.len()));
        }
    }
    if unmatched.len() <= other_frames {
        r.other_protocol_objects += unmatched.len();
    } else {
        r.mismatches.push(Mismatch {
            capture: cap.local_path.clone(),
            kind: "tshark_object_unmatched",
            detail: format!(
                "{} tshark objects match no mailsift message ({} IMF frames of other protocols): {}",
                unmatched.len(),
                other_frames,
                unmatched.join(", ")
            ),
        });
    }

    compare_zeek_files(corpus, cap, &analysis, &mut r);
    compare_suricata_files(corpus, cap, &analysis, &mut r);

    if let Some(z) = zeek_subjects(corpus, cap) {
        let theirs: Vec<_> = z
            .into_iter()
            .map(|raw| (raw.clone(), decode_rfc2047(&raw)))
            .collect();
        compare_subjects(
            cap,
            "zeek",
            &theirs,
            &subjects,
            &mut r.zeek,
            &mut r.mismatches,
        );
    }
    if let Some(a) = arkime_subjects(corpus, cap) {
        let theirs: Vec<_> = a.into_iter().map(|d| (d.clone(), Some(d))).collect();
        compare_subjects(
            cap,
            "arkime",
            &theirs,
            &subjects,
            &mut r.arkime,
            &mut r.mismatches,
        );
    }
    let theirs: Vec<_> = tshark_subjects
        .into_iter()
        .map(|raw| (raw.clone(), decode_rfc2047(&raw)))
        .collect();
    compare_subjects(
        cap,
        "tshark",
        &theirs,
        &subjects,
        &mut r.tshark_subjects,
        &mut r.mismatches,
    );
    r
}

#[test]
fn messages_and_subjects_match_references() {
    let Some(corpus) = corpus_support::open("corpus_mime") else {
        return;
    };
    let caps: Vec<&Capture> = corpus.captures.iter().filter(|c| has_smtp(c)).collect();
    let results = par_map(&caps, |c| compare(&corpus, c));
    let sum = |f: &dyn Fn(&CaptureResult) -> usize| results.iter().map(f).sum::<usize>();
    let matched = sum(&|r| r.matched.values().sum());
    let messages = sum(&|r| r.messages);
    let comparable = messages - sum(&|r| r.off_port_messages);
    let figures = [
        Figure::new(
            "SMTP messages whose kept bytes hash to their sha256",
            sum(&|r| r.blob_ok),
            messages,
        ),
        Figure::new(
            "SMTP messages (tshark ports) matched to a tshark object",
            matched,
            comparable,
        ),
        Figure::new(
            "tshark SMTP DATA objects matched to a mailsift message",
            sum(&|r| r.tshark_matched),
            sum(&|r| r.tshark_frames),
        ),
        Figure::new(
            "messages equal to Zeek's message/rfc822 files (size + SHA-1)",
            sum(&|r| r.zeek_messages_equal),
            sum(&|r| r.zeek_messages),
        ),
        Figure::new(
            "MIME parts equal to Zeek's file hashes",
            sum(&|r| r.zeek_parts_equal),
            sum(&|r| r.zeek_parts),
        ),
        Figure::new(
            "attachments equal to Suricata fileinfo (name, size, SHA-256)",
            sum(&|r| r.suricata_files_equal),
            sum(&|r| r.suricata_files),
        ),
        Figure::new(
            "subjects equal to Zeek smtp.log (decoded)",
            sum(&|r| r.zeek.equal),
            sum(&|r| r.zeek.compared),
        ),
        Figure::new(
            "subjects equal to Arkime (decoded)",
            sum(&|r| r.arkime.equal),
            sum(&|r| r.arkime.compared),
        ),
        Figure::new(
            "subjects equal to tshark imf.subject (decoded)",
            sum(&|r| r.tshark_subjects.equal),
            sum(&|r| r.tshark_subjects.compared),
        ),
    ];
    print_figures(
        "MIME: messages and subjects vs tshark, Zeek, Arkime",
        &figures,
    );
    let mut by_norm: BTreeMap<Normalisation, usize> = BTreeMap::new();
    for r in &results {
        for (n, c) in &r.matched {
            *by_norm.entry(*n).or_default() += c;
        }
    }
    eprintln!("  hash matches by normalisation: {by_norm:?}");
    eprintln!(
        "  other tshark objects: {} message/rfc822 parts inside another object, {} IMF of other protocols (POP3 pieces, IMAP)",
        sum(&|r| r.embedded_objects),
        sum(&|r| r.other_protocol_objects)
    );
    eprintln!(
        "  BDAT messages: {}; messages on ports tshark does not dissect: {}",
        sum(&|r| r.bdat_messages),
        sum(&|r| r.off_port_messages)
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
    assert_eq!(
        figures[0].ratio(),
        1.0,
        "kept bytes hash to the reported sha256"
    );
    // Whole messages and attachments agree with Zeek and Suricata, decoded subjects with Zeek
    // and tshark; every other difference is in the table above.
    for i in [3, 5, 6, 8] {
        assert_eq!(figures[i].ratio(), 1.0, "{}", figures[i].what);
    }
}

#[test]
fn tshark_objects_normalise_to_message_content() {
    let content = b"Subject: x\r\n\r\n.hidden line\r\nend\r\n";
    let want = sha256_hex(content);
    let exported = b"Subject: x\r\n\r\n..hidden line\r\nend\r\n";
    let cands = candidate_hashes(exported);
    assert_eq!(
        cands.iter().find(|(_, h)| *h == want).map(|(n, _)| *n),
        Some(Normalisation::Unstuffed)
    );
    let without_crlf = b"Subject: x\r\n\r\n..hidden line\r\nend";
    let cands = candidate_hashes(without_crlf);
    assert_eq!(
        cands.iter().find(|(_, h)| *h == want).map(|(n, _)| *n),
        Some(Normalisation::UnstuffedPlusCrlf)
    );
}

/// Compares mailsift's messages and parts with the hashes of Zeek's file analysis: whole
/// messages (`message/rfc822` files without a parent, SHA-1 and size, from `files.cut` /
/// `files.log`) and parts (SHA-256 in the file-analysis `out` baseline; SHA-1 of parts that
/// mailsift lists as attachments).
fn compare_zeek_files(corpus: &Corpus, cap: &Capture, analysis: &Analysis, r: &mut CaptureResult) {
    use sha1::Digest;
    let messages: Vec<(u64, String)> = analysis
        .sessions
        .iter()
        .filter(|s| s.protocol == Protocol::Smtp)
        .flat_map(|s| s.messages.iter().map(move |m| (s.id, m)))
        .filter_map(|(id, m)| {
            let b = analysis.blobs.get(&(id, m.index))?;
            Some((m.size, hex::encode(sha1::Sha1::digest(b))))
        })
        .collect();
    let parts: Vec<&str> = analysis
        .sessions
        .iter()
        .flat_map(|s| s.messages.iter())
        .filter_map(|m| m.mime.as_ref())
        .flat_map(|x| x.parts.iter().filter_map(|p| p.sha256.as_deref()))
        .collect();
    // mailsift records SHA-1 for attachments only; for text bodies the decoded text it keeps
    // (`body_text`, `body_html`) stands in, which equals the part's bytes for ASCII and UTF-8.
    let mut part_sha1: Vec<String> = Vec::new();
    for x in analysis
        .sessions
        .iter()
        .flat_map(|s| s.messages.iter())
        .filter_map(|m| m.mime.as_ref())
    {
        part_sha1.extend(x.attachments.iter().map(|a| a.sha1.clone()));
        for body in [&x.body_text, &x.body_html].into_iter().flatten() {
            part_sha1.push(hex::encode(sha1::Sha1::digest(body.as_bytes())));
        }
    }
    let mut files = Vec::new();
    for suffix in ["/files.cut", "/files.log", "/files.log.cut"] {
        files.extend(corpus.expected_outputs(cap, suffix));
    }
    let mut seen_rows = std::collections::BTreeSet::new();
    for path in files {
        for row in zeek_log(&path) {
            let get = |k: &str| row.get(k).cloned().flatten();
            let Some(sha1) = get("sha1") else { continue };
            let mime = get("mime_type").unwrap_or_default();
            if !seen_rows.insert((sha1.clone(), mime.clone())) {
                continue;
            }
            if mime == "message/rfc822" && get("parent_fuid").is_none() {
                r.zeek_messages += 1;
                let size: Option<u64> = get("seen_bytes").and_then(|b| b.parse().ok());
                if messages
                    .iter()
                    .any(|(s, h)| *h == sha1 && size.is_none_or(|z| z == *s))
                {
                    r.zeek_messages_equal += 1;
                } else {
                    r.mismatches.push(Mismatch {
                        capture: cap.local_path.clone(),
                        kind: "zeek_message_hash",
                        detail: format!("Zeek message of {size:?} bytes, SHA-1 {sha1}; mailsift (size, SHA-1): {messages:?}"),
                    });
                }
            } else if mime != "message/rfc822" {
                r.zeek_parts += 1;
                if part_sha1.contains(&sha1) {
                    r.zeek_parts_equal += 1;
                } else {
                    r.mismatches.push(Mismatch {
                        capture: cap.local_path.clone(),
                        kind: "zeek_part_sha1",
                        detail: format!(
                            "Zeek {mime} part SHA-1 {sha1} is no mailsift attachment's"
                        ),
                    });
                }
            }
        }
    }
    for path in corpus.expected_outputs(cap, "/out") {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let mut smtp = false;
        for line in text.lines() {
            if let Some(src) = line.strip_prefix("source: ") {
                smtp = src == "SMTP";
            } else if let Some(h) = line.strip_prefix("SHA256: ").filter(|_| smtp) {
                r.zeek_parts += 1;
                if parts.contains(&h) {
                    r.zeek_parts_equal += 1;
                } else {
                    r.mismatches.push(Mismatch {
                        capture: cap.local_path.clone(),
                        kind: "zeek_part_sha256",
                        detail: format!("Zeek SMTP file SHA-256 {h} is no mailsift part's"),
                    });
                }
            }
        }
    }
}

/// A file Suricata's test expects to log (`fileinfo` events in `test.yaml`).
#[derive(Debug, Default, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SuricataFile {
    filename: String,
    size: Option<u64>,
    sha256: Option<String>,
}

/// The `fileinfo` expectations of Suricata `test.yaml` files (a line-based read of the
/// `fileinfo.filename`, `.size` and `.sha256` keys of each filter).
fn suricata_files(text: &str) -> Vec<SuricataFile> {
    let mut out: Vec<SuricataFile> = Vec::new();
    let mut current: Option<SuricataFile> = None;
    for line in text.lines() {
        let t = line.trim();
        let value = |k: &str| {
            t.strip_prefix(k)
                .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
        };
        if t.starts_with("- filter:") {
            out.extend(current.take());
        } else if let Some(v) = value("fileinfo.filename:") {
            out.extend(current.take());
            current = Some(SuricataFile {
                filename: v,
                ..Default::default()
            });
        } else if let (Some(c), Some(v)) = (current.as_mut(), value("fileinfo.size:")) {
            c.size = v.parse().ok();
        } else if let (Some(c), Some(v)) = (current.as_mut(), value("fileinfo.sha256:")) {
            c.sha256 = Some(v);
        }
    }
    out.extend(current);
    out.sort();
    out.dedup();
    out
}

/// Compares Suricata's expected `fileinfo` entries with mailsift's attachments. Suricata
/// cuts long file names, so its name may be a prefix of mailsift's.
fn compare_suricata_files(
    corpus: &Corpus,
    cap: &Capture,
    analysis: &Analysis,
    r: &mut CaptureResult,
) {
    let attachments: Vec<_> = analysis
        .sessions
        .iter()
        .flat_map(|s| s.messages.iter())
        .filter_map(|m| m.mime.as_ref())
        .flat_map(|x| x.attachments.iter())
        .collect();
    for path in corpus.expected_outputs(cap, "test.yaml") {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for f in suricata_files(&text) {
            r.suricata_files += 1;
            let hit = attachments.iter().any(|a| {
                a.filename
                    .as_deref()
                    .is_some_and(|n| n.starts_with(&f.filename))
                    && f.size.is_none_or(|z| z == a.size)
                    && f.sha256.as_deref().is_none_or(|h| h == a.sha256)
            });
            if hit {
                r.suricata_files_equal += 1;
            } else {
                let ours: Vec<_> = attachments
                    .iter()
                    .map(|a| (a.filename.clone(), a.size, a.sha256.clone()))
                    .collect();
                r.mismatches.push(Mismatch {
                    capture: cap.local_path.clone(),
                    kind: "suricata_fileinfo",
                    detail: format!("Suricata expects {f:?}; mailsift attachments: {ours:?}"),
                });
            }
        }
    }
}

#[test]
fn suricata_fileinfo_expectations_parse() {
    let yaml = "checks:\n- filter:\n    count: 1\n    match:\n      event_type: fileinfo\n      fileinfo.filename: a.dat\n      fileinfo.sha256: \"ab12\"\n      fileinfo.size: 10\n- filter:\n    match:\n      event_type: fileinfo\n      fileinfo.filename: a.dat\n      fileinfo.size: 10\n      fileinfo.sha256: ab12\n";
    let f = suricata_files(yaml);
    assert_eq!(
        f,
        vec![SuricataFile {
            filename: "a.dat".into(),
            size: Some(10),
            sha256: Some("ab12".into())
        }]
    );
}
