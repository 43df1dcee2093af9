//! Bytes as a flow on an unmapped port: the content probe, proxy tunnel handshakes (HTTP
//! CONNECT, SOCKS4/4a/5) and the mail dialogue inside them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailsift_fuzz::tolerate_caught_mime_parser_panics();
    mailsift_fuzz::session::run_probe(data);
});
