//! Thin wrappers over the RustCrypto primitives, chosen at run time by suite.

use super::DecryptError;
use super::suite::{BulkCipher, HashAlg};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};

/// HMAC of the concatenation of `parts` under `key`.
pub fn hmac(hash: HashAlg, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match hash {
        HashAlg::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        HashAlg::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        HashAlg::Sha384 => run::<Hmac<sha2::Sha384>>(key, parts),
    }
}

/// HKDF-Expand (RFC 5869 §2.3) of `prk` with `info` into `len` bytes.
pub fn hkdf_expand(
    hash: HashAlg,
    prk: &[u8],
    info: &[u8],
    len: usize,
) -> Result<Vec<u8>, DecryptError> {
    let mut out = vec![0; len];
    let result = match hash {
        HashAlg::Sha256 => hkdf::Hkdf::<sha2::Sha256>::from_prk(prk)
            .map_err(|_| DecryptError::BadKeyLength)?
            .expand(info, &mut out),
        HashAlg::Sha384 => hkdf::Hkdf::<sha2::Sha384>::from_prk(prk)
            .map_err(|_| DecryptError::BadKeyLength)?
            .expand(info, &mut out),
        // No TLS 1.3 suite uses SHA-1.
        HashAlg::Sha1 => return Err(DecryptError::BadKeyLength),
    };
    result.map_err(|_| DecryptError::BadKeyLength)?;
    Ok(out)
}

/// An AEAD key ready to open records.
#[derive(Clone)]
pub enum AeadKey {
    /// AES-128-GCM.
    Aes128Gcm(Box<Aes128Gcm>),
    /// AES-256-GCM.
    Aes256Gcm(Box<Aes256Gcm>),
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305(Box<ChaCha20Poly1305>),
}

// Key material stays out of debug output.
impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AeadKey::Aes128Gcm(_) => "AeadKey::Aes128Gcm",
            AeadKey::Aes256Gcm(_) => "AeadKey::Aes256Gcm",
            AeadKey::ChaCha20Poly1305(_) => "AeadKey::ChaCha20Poly1305",
        })
    }
}

/// The length of every AEAD tag used by TLS here.
pub const TAG_LEN: usize = 16;

impl AeadKey {
    /// A key for `cipher` (an AEAD) from `key`.
    pub fn new(cipher: BulkCipher, key: &[u8]) -> Result<Self, DecryptError> {
        let bad = |_| DecryptError::BadKeyLength;
        Ok(match cipher {
            BulkCipher::Aes128Gcm => {
                AeadKey::Aes128Gcm(Box::new(Aes128Gcm::new_from_slice(key).map_err(bad)?))
            }
            BulkCipher::Aes256Gcm => {
                AeadKey::Aes256Gcm(Box::new(Aes256Gcm::new_from_slice(key).map_err(bad)?))
            }
            BulkCipher::ChaCha20Poly1305 => AeadKey::ChaCha20Poly1305(Box::new(
                ChaCha20Poly1305::new_from_slice(key).map_err(bad)?,
            )),
            BulkCipher::Aes128Cbc(_) | BulkCipher::Aes256Cbc(_) => {
                return Err(DecryptError::BadKeyLength);
            }
        })
    }

    /// Opens `ciphertext || tag` under `nonce` and `aad`; the plaintext, or
    /// [`DecryptError::BadRecordMac`].
    pub fn open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        if ciphertext_and_tag.len() < TAG_LEN {
            return Err(DecryptError::Truncated);
        }
        let mut buffer = ciphertext_and_tag.to_vec();
        let result = match self {
            AeadKey::Aes128Gcm(k) => k.decrypt_in_place(&(*nonce).into(), aad, &mut buffer),
            AeadKey::Aes256Gcm(k) => k.decrypt_in_place(&(*nonce).into(), aad, &mut buffer),
            AeadKey::ChaCha20Poly1305(k) => k.decrypt_in_place(&(*nonce).into(), aad, &mut buffer),
        };
        result.map_err(|_| DecryptError::BadRecordMac)?;
        Ok(buffer)
    }
}

/// AES-CBC decryption without padding removal of `data` (a whole number of blocks) with `iv`.
pub fn aes_cbc_decrypt(key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), DecryptError> {
    use cbc::cipher::block_padding::NoPadding;
    use cbc::cipher::{BlockModeDecrypt, KeyIvInit};
    let bad = |_| DecryptError::BadKeyLength;
    let result = match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded::<NoPadding>(data)
            .map(|_| ()),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded::<NoPadding>(data)
            .map(|_| ()),
        _ => return Err(DecryptError::BadKeyLength),
    };
    result.map_err(|_| DecryptError::Truncated)
}
