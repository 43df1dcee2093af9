//! Bytes as a message through MIME decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailsift_fuzz::tolerate_caught_mime_parser_panics();
    mailsift_fuzz::mime::run(data);
});
