//! Bytes as a chunked stream through the line framer, checked against a plain split.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailsift_fuzz::line::run(data);
});
