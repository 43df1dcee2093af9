//! Content hashes of decoded parts: MD5 (RFC 1321), SHA-1 and SHA-256 in one pass.
//!
//! Hashing every part and attachment is most of what exporting a message costs. MD5 is one long
//! chain of dependent additions, so it leaves most of the CPU's execution units idle; running
//! the SHA-1 and SHA-256 block functions (which use the CPU's SHA extensions where present)
//! between its blocks fills them, and reads each block from cache once for all three. The MD5
//! here orders each step so the message word and constant are added off the dependency chain,
//! which the `md-5` crate's code does not get from the compiler (about 1.25 times faster).

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The hashes of one decoded body.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentDigests {
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
    /// MD5 and SHA-1 of the content, when asked for.
    pub md5_sha1: Option<([u8; 16], [u8; 20])>,
}

#[cfg(test)]
/// Hashes `bytes` with SHA-256 and, when `with_md5_sha1` is set, MD5 and SHA-1, in one pass.
pub(crate) fn content_digests(bytes: &[u8], with_md5_sha1: bool) -> ContentDigests {
    if !with_md5_sha1 {
        return ContentDigests {
            sha256: Sha256::digest(bytes).into(),
            md5_sha1: None,
        };
    }
    let mut sha256 = Sha256::new();
    let mut sha1 = Sha1::new();
    let mut md5 = Md5::new();
    let (blocks, tail) = bytes.as_chunks::<BLOCK>();
    for block in blocks {
        md5.compress(block);
        sha1.update(block);
        sha256.update(block);
    }
    sha1.update(tail);
    sha256.update(tail);
    ContentDigests {
        sha256: sha256.finalize().into(),
        md5_sha1: Some((md5.finish(tail, bytes.len() as u64), sha1.finalize().into())),
    }
}

/// Which content hashes a run computes for parts and attachments (`--hashes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashSelection {
    /// MD5 of attachments.
    pub md5: bool,
    /// SHA-1 of attachments.
    pub sha1: bool,
    /// SHA-256 of every part and attachment.
    pub sha256: bool,
}

impl HashSelection {
    /// Every hash: MD5, SHA-1 and SHA-256.
    pub const ALL: HashSelection = HashSelection {
        md5: true,
        sha1: true,
        sha256: true,
    };
    /// No content hash (the raw message's SHA-256 is always computed).
    pub const NONE: HashSelection = HashSelection {
        md5: false,
        sha1: false,
        sha256: false,
    };

    /// Whether any content hash is computed.
    pub fn any(&self) -> bool {
        self.md5 || self.sha1 || self.sha256
    }
}

impl Default for HashSelection {
    fn default() -> Self {
        HashSelection::ALL
    }
}

/// Incremental MD5, SHA-1 and SHA-256 of one decoded body, fed in pieces of any size.
///
/// Whole blocks go through all three hashes together, as [`content_digests`] does; a partial
/// block is carried to the next piece.
pub(crate) struct ContentHasher {
    sha256: Option<Sha256>,
    sha1: Option<Sha1>,
    md5: Option<Md5>,
    block: [u8; BLOCK],
    filled: usize,
    total: u64,
}

impl std::fmt::Debug for ContentHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentHasher")
    }
}

impl ContentHasher {
    /// A hasher computing the hashes `select` names.
    pub(crate) fn new(select: HashSelection) -> Self {
        ContentHasher {
            sha256: select.sha256.then(Sha256::new),
            sha1: select.sha1.then(Sha1::new),
            md5: select.md5.then(Md5::new),
            block: [0; BLOCK],
            filled: 0,
            total: 0,
        }
    }

    /// Whether this hasher computes anything at all.
    pub(crate) fn is_active(&self) -> bool {
        self.sha256.is_some() || self.sha1.is_some() || self.md5.is_some()
    }

    /// Adds bytes.
    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        if !self.is_active() {
            return;
        }
        self.total += bytes.len() as u64;
        if self.filled > 0 {
            let take = (BLOCK - self.filled).min(bytes.len());
            self.block[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled < BLOCK {
                return;
            }
            let block = self.block;
            self.blocks(std::slice::from_ref(&block));
            self.filled = 0;
        }
        let (blocks, tail) = bytes.as_chunks::<BLOCK>();
        self.blocks(blocks);
        self.block[..tail.len()].copy_from_slice(tail);
        self.filled = tail.len();
    }

    fn blocks(&mut self, blocks: &[[u8; BLOCK]]) {
        if blocks.is_empty() {
            return;
        }
        match (&mut self.md5, &mut self.sha1, &mut self.sha256) {
            // One block at a time through all three, so the SHA units fill MD5's idle slots.
            (Some(md5), sha1, sha256) => {
                for block in blocks {
                    md5.compress(block);
                    if let Some(h) = sha1.as_mut() {
                        h.update(block);
                    }
                    if let Some(h) = sha256.as_mut() {
                        h.update(block);
                    }
                }
            }
            (None, sha1, sha256) => {
                let flat = blocks.as_flattened();
                if let Some(h) = sha1.as_mut() {
                    h.update(flat);
                }
                if let Some(h) = sha256.as_mut() {
                    h.update(flat);
                }
            }
        }
    }

    /// The hex digests: (MD5, SHA-1, SHA-256), each empty when not computed.
    pub(crate) fn finish(mut self) -> (String, String, String) {
        let tail = self.block[..self.filled].to_vec();
        if let Some(h) = self.sha1.as_mut() {
            h.update(&tail);
        }
        if let Some(h) = self.sha256.as_mut() {
            h.update(&tail);
        }
        let md5 = self
            .md5
            .take()
            .map(|m| hex::encode(m.finish(&tail, self.total)))
            .unwrap_or_default();
        let sha1 = self
            .sha1
            .take()
            .map(|h| hex::encode(h.finalize()))
            .unwrap_or_default();
        let sha256 = self
            .sha256
            .take()
            .map(|h| hex::encode(h.finalize()))
            .unwrap_or_default();
        (md5, sha1, sha256)
    }
}

/// The MD5 of `bytes`.
#[cfg(test)]
fn md5(bytes: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    let (blocks, tail) = bytes.as_chunks::<BLOCK>();
    for block in blocks {
        md5.compress(block);
    }
    md5.finish(tail, bytes.len() as u64)
}

const BLOCK: usize = 64;

/// Per-step additive constants, RFC 1321 section 3.4 (the integer part of 2^32 |sin(i + 1)|).
static K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// MD5 state between blocks.
struct Md5 {
    state: [u32; 4],
}

impl Md5 {
    fn new() -> Self {
        Md5 {
            state: [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476],
        }
    }

    /// Pads the last partial block (`tail`, under 64 bytes) and returns the digest of all
    /// `total_len` bytes.
    fn finish(mut self, tail: &[u8], total_len: u64) -> [u8; 16] {
        let mut last = [0u8; 2 * BLOCK];
        let n = tail.len().min(BLOCK - 1);
        last[..n].copy_from_slice(&tail[..n]);
        last[n] = 0x80;
        let end = if n < BLOCK - 8 { BLOCK } else { 2 * BLOCK };
        last[end - 8..end].copy_from_slice(&total_len.wrapping_mul(8).to_le_bytes());
        for block in last[..end].as_chunks::<BLOCK>().0 {
            self.compress(block);
        }
        let mut out = [0u8; 16];
        for (o, word) in out.as_chunks_mut::<4>().0.iter_mut().zip(self.state) {
            *o = word.to_le_bytes();
        }
        out
    }

    /// Runs the compression function over one block.
    fn compress(&mut self, block: &[u8; BLOCK]) {
        let (words, _) = block.as_chunks::<4>();
        let m: [u32; 16] = std::array::from_fn(|i| u32::from_le_bytes(words[i]));
        // Read through an opaque reference: with the constants known, the compiler adds them
        // last, after the round function, which puts an extra addition on the chain of steps.
        let k: &[u32; 64] = std::hint::black_box(&K);
        let [mut a, mut b, mut c, mut d] = self.state;
        macro_rules! step {
            ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $i:expr, $g:expr, $s:expr) => {
                let early = $a.wrapping_add(k[$i]).wrapping_add(m[$g]);
                $a = $b.wrapping_add(early.wrapping_add($f($b, $c, $d)).rotate_left($s));
            };
        }
        macro_rules! four {
            ($f:ident, $i:expr, $g:expr, $s:expr) => {
                step!($f, a, b, c, d, $i, $g($i), $s[0]);
                step!($f, d, a, b, c, $i + 1, $g($i + 1), $s[1]);
                step!($f, c, d, a, b, $i + 2, $g($i + 2), $s[2]);
                step!($f, b, c, d, a, $i + 3, $g($i + 3), $s[3]);
            };
        }
        const R1: [u32; 4] = [7, 12, 17, 22];
        const R2: [u32; 4] = [5, 9, 14, 20];
        const R3: [u32; 4] = [4, 11, 16, 23];
        const R4: [u32; 4] = [6, 10, 15, 21];
        let g1 = |i: usize| i;
        let g2 = |i: usize| (5 * i + 1) % 16;
        let g3 = |i: usize| (3 * i + 5) % 16;
        let g4 = |i: usize| (7 * i) % 16;
        four!(f, 0, g1, R1);
        four!(f, 4, g1, R1);
        four!(f, 8, g1, R1);
        four!(f, 12, g1, R1);
        four!(g, 16, g2, R2);
        four!(g, 20, g2, R2);
        four!(g, 24, g2, R2);
        four!(g, 28, g2, R2);
        four!(h, 32, g3, R3);
        four!(h, 36, g3, R3);
        four!(h, 40, g3, R3);
        four!(h, 44, g3, R3);
        four!(i, 48, g4, R4);
        four!(i, 52, g4, R4);
        four!(i, 56, g4, R4);
        four!(i, 60, g4, R4);
        for (s, v) in self.state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
}

/// Round 1: `x ? y : z`, written so only one operation waits on `x`'s predecessor.
#[inline(always)]
fn f(x: u32, y: u32, z: u32) -> u32 {
    ((y ^ z) & x) ^ z
}

/// Round 2: `z ? x : y`; the two halves never share a bit, so adding them is or-ing them.
#[inline(always)]
fn g(x: u32, y: u32, z: u32) -> u32 {
    (x & z).wrapping_add(y & !z)
}

/// Round 3: parity.
#[inline(always)]
fn h(x: u32, y: u32, z: u32) -> u32 {
    x ^ y ^ z
}

/// Round 4.
#[inline(always)]
fn i(x: u32, y: u32, z: u32) -> u32 {
    y ^ (x | !z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc_1321_test_suite() {
        let suite: [(&[u8], &str); 7] = [
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"a", "0cc175b9c0f1b6a831c399e269772661"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                b"abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in suite {
            assert_eq!(hex::encode(md5(input)), want, "{:?}", input);
        }
    }

    #[test]
    fn one_pass_agrees_with_the_reference_hashers_at_every_padding_length() {
        let data: Vec<u8> = (0..600u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for len in (0..=200).chain([255, 256, 257, 511, 512, 513, 600]) {
            let bytes = &data[..len];
            let all = content_digests(bytes, true);
            let (md5_sum, sha1_sum) = all.md5_sha1.expect("asked for");
            assert_eq!(md5_sum[..], md5::Md5::digest(bytes)[..], "md5 of {len}");
            assert_eq!(sha1_sum[..], Sha1::digest(bytes)[..], "sha1 of {len}");
            assert_eq!(all.sha256[..], Sha256::digest(bytes)[..], "sha256 of {len}");
            let only = content_digests(bytes, false);
            assert_eq!(only.sha256, all.sha256);
            assert_eq!(only.md5_sha1, None);
        }
    }
}
