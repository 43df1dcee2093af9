//! Bytes as the TLS part of a session, both directions, through the TLS observer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailsift_fuzz::tls::run(data);
});
