//! Decryption of TLS records from key log secrets: the TLS 1.3 key schedule and the TLS 1.2
//! PRF, and the record protection of the AEAD and CBC suites.
//!
//! Layout: [`suite`] says what a cipher suite needs (hash, cipher, key sizes); [`crypto`] wraps
//! the RustCrypto primitives behind one hash and one AEAD enum; [`tls13`] is the TLS 1.3 key
//! schedule (RFC 8446 §7) and record layer (§5); [`prf`] and [`tls12`] are the TLS 1.2 PRF and
//! key block (RFC 5246 §5, §6.3) and record layer (§6.2.3, RFC 5288, RFC 7905, RFC 7366).
//!
//! Only the TLS logic is written here; every cipher, MAC and hash comes from RustCrypto. A
//! record that fails authentication is an error and never yields bytes.

pub mod crypto;
pub mod prf;
pub mod session;
pub mod suite;
#[cfg(test)]
mod tests;
pub mod tls12;
pub mod tls13;

pub use session::{Decryptor, DirectionStats, Plaintext, SessionError, SessionParams};
pub use suite::{BulkCipher, HashAlg, SuiteParams};
pub use tls12::Tls12RecordDecrypter;
pub use tls13::{Tls13RecordDecrypter, TrafficKeys};

/// Why a record (or a key) could not be turned into plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// The cipher suite is not one this module decrypts.
    #[error("cipher suite {0:#06x} is not supported for decryption")]
    UnsupportedSuite(u16),
    /// A secret or key of the wrong length for the suite.
    #[error("a key of the wrong length for the suite")]
    BadKeyLength,
    /// The record is too short to hold its nonce, tag, MAC or padding.
    #[error("record too short to be protected by this suite")]
    Truncated,
    /// The tag or MAC did not verify: wrong key, wrong sequence number, or altered bytes.
    #[error("record failed authentication")]
    BadRecordMac,
    /// TLS 1.3: the inner plaintext was all padding, with no content type.
    #[error("inner plaintext has no content type")]
    NoContentType,
    /// The record's sequence number would wrap (2^64 records).
    #[error("sequence number exhausted")]
    SequenceExhausted,
}
