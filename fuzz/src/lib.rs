//! What the fuzz targets share with the seed writer: the byte formats that turn a fuzzer's input
//! into operations on one mailsift parser (with encoders, so seeds can be written in them), the
//! drivers that run those operations, and the invariants checked after each run.
//!
//! Every driver is a plain function of the input bytes, so a crash found by the fuzzer can also be
//! replayed from an ordinary test or debugger. Each format is read leniently: whatever bytes the
//! fuzzer produces, they decode to *some* sequence of operations, and a short input simply ends it.

pub mod capture;
pub mod check;
pub mod decode;
pub mod input;
pub mod line;
pub mod mime;
pub mod reassembly;
pub mod sasl;
pub mod session;
pub mod tls;

/// Lets panics raised inside `mail-parser` reach the `catch_unwind` that mailsift wraps around
/// it, instead of aborting as the fuzzing runtime's panic hook does for every panic.
///
/// mailsift deliberately survives a panic of that third-party MIME parser (it becomes a
/// `mime_decoder_panic` problem); every other panic still goes to the previous hook, which
/// aborts and so reports the crash.
pub fn tolerate_caught_mime_parser_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_mime_parser = info
                .location()
                .is_some_and(|l| l.file().contains("mail-parser"));
            if in_mime_parser && std::env::var_os("MAILSIFT_FUZZ_STRICT_MIME").is_none() {
                return;
            }
            previous(info);
        }));
    });
}
