//! Bytes as one SASL exchange: a mechanism, then challenges and responses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailsift_fuzz::sasl::run(data);
});
