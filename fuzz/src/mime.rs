//! MIME decoding from fuzzer bytes: an options byte, a split byte, then the message streamed
//! through `mail::MessageStream`.
//!
//! Options: bit 0 says the message is complete, bit 1 adds a run with a gap, bit 2
//! selects [`tight_limits`] so every limit is within the fuzzer's reach, bit 3 turns content
//! hashing off and bit 4 leaves base64 undecoded (both as `analyze` does).

use mailsift::mail::{
    HashSelection, MessageStream, MimeLimits, MimeSummary, StreamOptions, decode_message,
};

/// Complete-message flag.
pub const COMPLETE: u8 = 0x01;
/// Want-attachments flag.
pub const ATTACHMENTS: u8 = 0x02;
/// Tight-limits flag.
pub const TIGHT: u8 = 0x04;
/// No-content-hashes flag.
pub const NO_HASHES: u8 = 0x08;
/// No-content-decoding flag.
pub const NO_DECODING: u8 = 0x10;

/// MIME limits small enough for short fuzz inputs to hit each of them.
pub fn tight_limits() -> MimeLimits {
    MimeLimits {
        max_decode_bytes: 2048,
        max_header_block_bytes: 256,
        max_headers: 8,
        max_depth: 3,
        max_parts: 6,
        max_urls: 3,
        max_body_bytes: 64,
        max_header_tokens: 64,
        max_header_blocks: 8,
        max_scan_work: 16 << 10,
        content_hashes: true,
        decode_content: true,
    }
}

/// Bounds every decoded summary respects; `input_len` is the size of the message given.
pub fn check_summary(s: &MimeSummary, limits: &MimeLimits, input_len: usize) {
    assert!(
        s.parts.len() <= limits.max_parts,
        "{} parts kept, limit {}",
        s.parts.len(),
        limits.max_parts
    );
    assert!(
        s.urls.len() <= limits.max_urls,
        "{} urls kept, limit {}",
        s.urls.len(),
        limits.max_urls
    );
    assert!(
        s.attachments.len() <= s.parts.len(),
        "{} attachments from {} parts",
        s.attachments.len(),
        s.parts.len()
    );
    for body in [&s.body_text, &s.body_html].into_iter().flatten() {
        // A cut never splits a character, so it may stop a few bytes short, never beyond.
        assert!(
            body.len() <= limits.max_body_bytes,
            "body excerpt of {} bytes, limit {}",
            body.len(),
            limits.max_body_bytes
        );
    }
    assert!(
        s.decoded_bytes as usize <= input_len,
        "{} bytes decoded of {input_len}",
        s.decoded_bytes
    );
}

/// Decodes one input, in one piece and in pieces cut where the fuzzer says (with a gap when
/// bit 1 is set), and checks the results.
pub fn run(data: &[u8]) {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let Some((&cut, message)) = rest.split_first() else {
        return;
    };
    let mut limits = if options & TIGHT != 0 {
        tight_limits()
    } else {
        MimeLimits::default()
    };
    limits.decode_content = options & NO_DECODING == 0;
    let mut stream = StreamOptions::new(limits.clone());
    if options & NO_HASHES != 0 {
        stream.hashes = HashSelection::NONE;
    }
    let complete = options & COMPLETE != 0;
    let whole = decode_message(message, complete, &stream);
    let summary = whole.mime.as_ref().expect("MIME decoded");
    check_summary(summary, &limits, message.len());
    let hashed = summary.parts.iter().any(|p| p.sha256.is_some());
    assert!(
        options & NO_HASHES == 0 || !hashed,
        "a part hash when hashes are off"
    );
    // Any split of the message gives the same record.
    let step = usize::from(cut).max(1);
    let mut s = MessageStream::new(&stream);
    for piece in message.chunks(step) {
        s.push(piece);
    }
    assert_eq!(s.finish(complete), whole, "a split changed the record");
    if options & ATTACHMENTS != 0 && !message.is_empty() {
        // A gap in the middle: never a panic, the size counts what was captured.
        let mid = message.len() / 2;
        let mut s = MessageStream::new(&stream);
        s.push(&message[..mid]);
        s.gap(u64::from(cut));
        s.push(&message[mid..]);
        let gapped = s.finish(complete);
        assert_eq!(gapped.size, message.len() as u64);
        assert_eq!(gapped.missing_bytes, u64::from(cut));
    }
    serde_json::to_string(summary).expect("a MIME summary always serialises");
}
