//! Bytes as a capture file (pcap, pcapng, gzip): open it and read every packet.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailsift_fuzz::capture::read_file(data);
});
