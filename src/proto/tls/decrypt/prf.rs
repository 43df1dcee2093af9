//! The TLS 1.2 PRF (RFC 5246 §5), master secret (§8.1, RFC 7627) and key block (§6.3).

use super::DecryptError;
use super::crypto::hmac;
use super::suite::{BulkCipher, HashAlg, SuiteParams};

/// P_hash(secret, seed) truncated to `len` bytes (RFC 5246 §5).
pub fn p_hash(hash: HashAlg, secret: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.output_len());
    let mut a = hmac(hash, secret, &[seed]);
    while out.len() < len {
        out.extend_from_slice(&hmac(hash, secret, &[&a, seed]));
        a = hmac(hash, secret, &[&a]);
    }
    out.truncate(len);
    out
}

/// PRF(secret, label, seed) = P_hash(secret, label + seed), `len` bytes.
pub fn prf(hash: HashAlg, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let mut full = Vec::with_capacity(label.len() + seed.len());
    full.extend_from_slice(label);
    full.extend_from_slice(seed);
    p_hash(hash, secret, &full, len)
}

/// The master secret from a pre-master secret and both randoms (RFC 5246 §8.1).
pub fn master_secret(
    hash: HashAlg,
    pre_master: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> Vec<u8> {
    let seed = [&client_random[..], &server_random[..]].concat();
    prf(hash, pre_master, b"master secret", &seed, 48)
}

/// The extended master secret from a pre-master secret and the session hash (RFC 7627 §4).
pub fn extended_master_secret(hash: HashAlg, pre_master: &[u8], session_hash: &[u8]) -> Vec<u8> {
    prf(
        hash,
        pre_master,
        b"extended master secret",
        session_hash,
        48,
    )
}

/// One direction's write keys from the key block.
#[derive(Clone, PartialEq, Eq)]
pub struct WriteKeys {
    /// The HMAC key (empty for AEAD suites).
    pub mac_key: Vec<u8>,
    /// The cipher key.
    pub key: Vec<u8>,
    /// The implicit IV: the 4-byte salt of GCM, the 12-byte IV of ChaCha20-Poly1305, empty for
    /// CBC (TLS 1.2 sends each record's IV).
    pub iv: Vec<u8>,
}

// Key material stays out of debug output.
impl std::fmt::Debug for WriteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteKeys")
            .field("mac_key_len", &self.mac_key.len())
            .field("key_len", &self.key.len())
            .field("iv_len", &self.iv.len())
            .finish()
    }
}

/// Both directions' keys of a TLS 1.2 session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBlock {
    /// What the client writes with.
    pub client: WriteKeys,
    /// What the server writes with.
    pub server: WriteKeys,
}

/// The implicit IV length a TLS 1.2 suite takes from the key block.
fn fixed_iv_len(cipher: BulkCipher) -> usize {
    match cipher {
        BulkCipher::Aes128Gcm | BulkCipher::Aes256Gcm => 4,
        BulkCipher::ChaCha20Poly1305 => 12,
        BulkCipher::Aes128Cbc(_) | BulkCipher::Aes256Cbc(_) => 0,
    }
}

/// The key block of `params` from the 48-byte master secret and both randoms (RFC 5246 §6.3).
pub fn key_block(
    params: &SuiteParams,
    master: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> Result<KeyBlock, DecryptError> {
    if master.len() != 48 {
        return Err(DecryptError::BadKeyLength);
    }
    let mac_len = params.cipher.mac().map_or(0, HashAlg::output_len);
    let key_len = params.cipher.key_len();
    let iv_len = fixed_iv_len(params.cipher);
    // The key block's seed is server random first, unlike the master secret's.
    let seed = [&server_random[..], &client_random[..]].concat();
    let block = prf(
        params.hash,
        master,
        b"key expansion",
        &seed,
        2 * (mac_len + key_len + iv_len),
    );
    let mut rest = block.as_slice();
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n);
        rest = tail;
        head.to_vec()
    };
    let (client_mac, server_mac) = (take(mac_len), take(mac_len));
    let (client_key, server_key) = (take(key_len), take(key_len));
    let (client_iv, server_iv) = (take(iv_len), take(iv_len));
    Ok(KeyBlock {
        client: WriteKeys {
            mac_key: client_mac,
            key: client_key,
            iv: client_iv,
        },
        server: WriteKeys {
            mac_key: server_mac,
            key: server_key,
            iv: server_iv,
        },
    })
}
