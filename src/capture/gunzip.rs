//! Decompression of `.gz` captures with a bound on how far a file may expand.
//!
//! Deflate turns 1 KB into up to about 1 MB, so a small file could otherwise keep a run busy
//! for minutes. The stream stops once the decompressed bytes exceed both
//! [`GunzipLimit::floor_bytes`] and [`GunzipLimit::max_ratio`] times the compressed bytes
//! consumed so far: every file up to the floor is read whole, and beyond it only a file that
//! compresses like real traffic. The packets read before the stop are kept and the stop is
//! reported as the file's error, with the offset.

use flate2::bufread::MultiGzDecoder;
use std::io::{self, BufReader, Read};

/// Decompressed bytes always allowed, whatever the ratio: 1 GiB.
pub const DEFAULT_GUNZIP_FLOOR: u64 = 1 << 30;
/// Decompressed bytes allowed per compressed byte past the floor. The bundled and corpus
/// captures compress 1 to 6 times; deflate's own limit is about 1,032.
pub const DEFAULT_GUNZIP_RATIO: u64 = 100;

/// How far a gzip-compressed input may expand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GunzipLimit {
    /// Decompressed bytes allowed whatever the ratio.
    pub floor_bytes: u64,
    /// Decompressed bytes allowed per compressed byte past the floor; 0 means no limit.
    pub max_ratio: u64,
}

impl Default for GunzipLimit {
    fn default() -> Self {
        GunzipLimit {
            floor_bytes: DEFAULT_GUNZIP_FLOOR,
            max_ratio: DEFAULT_GUNZIP_RATIO,
        }
    }
}

impl GunzipLimit {
    /// Decompressed bytes allowed after `compressed` bytes of input.
    fn allowed(&self, compressed: u64) -> u64 {
        if self.max_ratio == 0 {
            return u64::MAX;
        }
        self.floor_bytes
            .max(compressed.saturating_mul(self.max_ratio))
    }
}

/// The error a [`LimitedGunzip`] stops with, carried inside an [`io::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "gzip stream expands {decompressed} bytes from {compressed} compressed, past {max_ratio} \
     times (--max-gunzip-ratio); the rest of the file is not read"
)]
pub struct GunzipLimitHit {
    /// Decompressed bytes delivered.
    pub decompressed: u64,
    /// Compressed bytes consumed.
    pub compressed: u64,
    /// The ratio in force.
    pub max_ratio: u64,
}

/// Counts the bytes read from the file.
struct Counted<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A gzip decoder (all members of a multi-member file) that stops at a [`GunzipLimit`].
pub struct LimitedGunzip<R: Read> {
    decoder: MultiGzDecoder<BufReader<Counted<R>>>,
    decompressed: u64,
    limit: GunzipLimit,
}

impl<R: Read> LimitedGunzip<R> {
    /// Decompresses `reader`, read in chunks of `buffer` bytes.
    pub fn new(reader: R, buffer: usize, limit: GunzipLimit) -> Self {
        let counted = Counted {
            inner: reader,
            bytes: 0,
        };
        LimitedGunzip {
            decoder: MultiGzDecoder::new(BufReader::with_capacity(buffer, counted)),
            decompressed: 0,
            limit,
        }
    }

    /// Compressed bytes the decoder has taken so far (read from the file, less those still
    /// waiting in the read buffer).
    fn compressed(&self) -> u64 {
        let buffered = self.decoder.get_ref();
        buffered.get_ref().bytes - buffered.buffer().len() as u64
    }
}

impl<R: Read> Read for LimitedGunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let compressed = self.compressed();
        let allowed = self.limit.allowed(compressed);
        if self.decompressed > allowed {
            return Err(io::Error::other(GunzipLimitHit {
                decompressed: self.decompressed,
                compressed,
                max_ratio: self.limit.max_ratio,
            }));
        }
        // Never hand out more than the limit allows now (the next read sees the new ratio);
        // at the limit, one byte more tells a stream that ends there from one that goes on.
        let room = (allowed - self.decompressed).max(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let Some(part) = buf.get_mut(..want) else {
            return Ok(0);
        };
        let n = self.decoder.read(part)?;
        self.decompressed += n as u64;
        Ok(n)
    }
}

/// The limit hit behind `e`, if that is what stopped the stream.
pub fn limit_hit(e: &io::Error) -> Option<GunzipLimitHit> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<GunzipLimitHit>())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip_zeros(len: usize) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![0u8; 1 << 16];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            enc.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
        enc.finish().unwrap()
    }

    fn read_all(r: &mut dyn Read) -> (u64, Option<io::Error>) {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (total, None),
                Ok(n) => total += n as u64,
                Err(e) => return (total, Some(e)),
            }
        }
    }

    #[test]
    fn a_bomb_stops_just_past_the_floor_and_says_why() {
        let z = gzip_zeros(64 << 20);
        let limit = GunzipLimit {
            floor_bytes: 4 << 20,
            max_ratio: 100,
        };
        let mut r = LimitedGunzip::new(&z[..], 1 << 12, limit);
        let (n, err) = read_all(&mut r);
        let hit = limit_hit(&err.expect("stopped")).expect("the limit");
        assert_eq!(hit.decompressed, n);
        assert!((4 << 20..5 << 20).contains(&n), "{n}");
        assert!(hit.compressed > 0 && hit.compressed * 100 < n);
        assert!(hit.to_string().contains("--max-gunzip-ratio"));
    }

    #[test]
    fn ordinary_ratios_and_small_files_are_read_whole() {
        // Under the floor: read whole however well it compresses.
        let z = gzip_zeros(2 << 20);
        let mut r = LimitedGunzip::new(&z[..], 1 << 12, GunzipLimit::default());
        assert_eq!(read_all(&mut r).0, 2 << 20);
        assert!(read_all(&mut r).1.is_none());
        // Past the floor at an ordinary ratio: pseudo-random bytes barely compress.
        let mut data = Vec::with_capacity(3 << 20);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        while data.len() < 3 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes()[..4]);
            data.extend_from_slice(&[0; 4]);
        }
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&data).unwrap();
        let z = enc.finish().unwrap();
        let limit = GunzipLimit {
            floor_bytes: 1 << 20,
            max_ratio: 10,
        };
        let (n, err) = read_all(&mut LimitedGunzip::new(&z[..], 1 << 12, limit));
        assert!(err.is_none(), "{err:?}");
        assert_eq!(n, data.len() as u64);
    }

    #[test]
    fn ratio_zero_turns_the_limit_off() {
        let z = gzip_zeros(8 << 20);
        let limit = GunzipLimit {
            floor_bytes: 1 << 20,
            max_ratio: 0,
        };
        let (n, err) = read_all(&mut LimitedGunzip::new(&z[..], 1 << 12, limit));
        assert!(err.is_none());
        assert_eq!(n, 8 << 20);
    }
}
