//! Bytes as a POP3 session: client and server chunks, gaps and FINs, then the end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailsift::session::Protocol;

fuzz_target!(|data: &[u8]| {
    mailsift_fuzz::tolerate_caught_mime_parser_panics();
    mailsift_fuzz::session::run(Protocol::Pop3, data);
});
