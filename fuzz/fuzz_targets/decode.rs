//! Bytes as packets of every link type, through one decoder (defragmentation included).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailsift_fuzz::decode::run(data);
});
