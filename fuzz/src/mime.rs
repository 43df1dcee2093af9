//! MIME decoding from fuzzer bytes: an options byte, then the message handed to `mail::decode`.
//!
//! Options: bit 0 says the message is complete, bit 1 asks for attachment contents, bit 2
//! selects [`tight_limits`] so every limit is within the fuzzer's reach, bit 3 turns content
//! hashing off and bit 4 leaves base64 undecoded (both as `analyze` does).

use mailsift::mail::{MimeLimits, MimeSummary, decode};

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
        s.decoded_bytes as usize <= input_len.min(limits.max_decode_bytes),
        "{} bytes decoded of {input_len}",
        s.decoded_bytes
    );
}

/// Decodes one input and checks the result.
pub fn run(data: &[u8]) {
    let Some((&options, message)) = data.split_first() else {
        return;
    };
    let mut limits = if options & TIGHT != 0 {
        tight_limits()
    } else {
        MimeLimits::default()
    };
    limits.content_hashes = options & NO_HASHES == 0;
    limits.decode_content = options & NO_DECODING == 0;
    let decoded = decode(
        message,
        options & COMPLETE != 0,
        &limits,
        options & ATTACHMENTS != 0,
    );
    check_summary(&decoded.summary, &limits, message.len());
    let hashed = decoded.summary.parts.iter().any(|p| p.sha256.is_some());
    assert!(
        limits.content_hashes || !hashed,
        "a part hash when hashes are off"
    );
    if options & ATTACHMENTS == 0 {
        assert!(decoded.attachments.is_empty(), "contents nobody asked for");
    } else {
        assert!(decoded.attachments.len() <= decoded.summary.attachments.len());
    }
    serde_json::to_string(&decoded.summary).expect("a MIME summary always serialises");
}
