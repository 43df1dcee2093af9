//! Bytes as a sequence of segment, SYN, ACK and flush operations on one TCP direction.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailsift_fuzz::reassembly::run(data);
});
