//! What decryption needs to know about a cipher suite.

use super::DecryptError;
use crate::proto::tls::CipherSuite;

/// A hash used by a PRF, HKDF or record MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-1 (TLS 1.2 CBC record MACs only).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

impl HashAlg {
    /// The digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
        }
    }
}

/// The record protection of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkCipher {
    /// AES-128 in GCM mode.
    Aes128Gcm,
    /// AES-256 in GCM mode.
    Aes256Gcm,
    /// ChaCha20 with Poly1305.
    ChaCha20Poly1305,
    /// AES-128 in CBC mode with an HMAC of the given hash.
    Aes128Cbc(HashAlg),
    /// AES-256 in CBC mode with an HMAC of the given hash.
    Aes256Cbc(HashAlg),
}

impl BulkCipher {
    /// The encryption key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            BulkCipher::Aes128Gcm | BulkCipher::Aes128Cbc(_) => 16,
            BulkCipher::Aes256Gcm | BulkCipher::ChaCha20Poly1305 | BulkCipher::Aes256Cbc(_) => 32,
        }
    }

    /// The record MAC of a CBC suite, `None` for an AEAD.
    pub fn mac(self) -> Option<HashAlg> {
        match self {
            BulkCipher::Aes128Cbc(h) | BulkCipher::Aes256Cbc(h) => Some(h),
            _ => None,
        }
    }
}

/// The decryption parameters of one cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuiteParams {
    /// The suite's code point.
    pub suite: CipherSuite,
    /// The PRF hash (TLS 1.2) or HKDF hash (TLS 1.3).
    pub hash: HashAlg,
    /// The record protection.
    pub cipher: BulkCipher,
    /// True for the TLS 1.3 suites (`TLS_AES_*`, `TLS_CHACHA20_*`).
    pub tls13: bool,
}

impl SuiteParams {
    /// The parameters of `suite`, or [`DecryptError::UnsupportedSuite`].
    ///
    /// Read from the IANA name so that every key exchange (RSA, DHE, ECDHE, PSK, anon) with a
    /// supported cipher is covered without a hand-kept list of code points.
    pub fn for_suite(suite: CipherSuite) -> Result<Self, DecryptError> {
        let unsupported = DecryptError::UnsupportedSuite(suite.0);
        let name = suite.name().ok_or(unsupported.clone())?;
        let tls13 = matches!(suite.0, 0x1301..=0x1305);
        let cipher_part = match name.split_once("_WITH_") {
            Some((_, c)) => c,
            None if tls13 => name.trim_start_matches("TLS_"),
            None => return Err(unsupported),
        };
        let (cipher, hash) = match cipher_part {
            "AES_128_GCM_SHA256" => (BulkCipher::Aes128Gcm, HashAlg::Sha256),
            "AES_256_GCM_SHA384" => (BulkCipher::Aes256Gcm, HashAlg::Sha384),
            "CHACHA20_POLY1305_SHA256" => (BulkCipher::ChaCha20Poly1305, HashAlg::Sha256),
            // The PRF of a TLS 1.2 _SHA (SHA-1 MAC) suite is the default SHA-256 one.
            "AES_128_CBC_SHA" => (BulkCipher::Aes128Cbc(HashAlg::Sha1), HashAlg::Sha256),
            "AES_256_CBC_SHA" => (BulkCipher::Aes256Cbc(HashAlg::Sha1), HashAlg::Sha256),
            "AES_128_CBC_SHA256" => (BulkCipher::Aes128Cbc(HashAlg::Sha256), HashAlg::Sha256),
            "AES_256_CBC_SHA256" => (BulkCipher::Aes256Cbc(HashAlg::Sha256), HashAlg::Sha256),
            "AES_128_CBC_SHA384" => (BulkCipher::Aes128Cbc(HashAlg::Sha384), HashAlg::Sha384),
            "AES_256_CBC_SHA384" => (BulkCipher::Aes256Cbc(HashAlg::Sha384), HashAlg::Sha384),
            _ => return Err(unsupported),
        };
        Ok(SuiteParams {
            suite,
            hash,
            cipher,
            tls13,
        })
    }
}
