//! Counters a run publishes as it goes, so another thread can show how far it has got.
//!
//! The engine and the file reader only store into atomics (bytes once per read buffer,
//! packets and sessions once per packet read); nothing here draws or formats, and a run
//! without a [`Progress`] pays nothing.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How far a run has got: input bytes read, packets and sessions seen so far.
#[derive(Debug, Default)]
pub struct Progress {
    bytes_read: AtomicU64,
    packets: AtomicU64,
    sessions: AtomicU64,
}

impl Progress {
    /// A new set of counters at zero, to share between the run and a display.
    pub fn shared() -> Arc<Progress> {
        Arc::new(Progress::default())
    }

    /// Bytes read from the input files so far (as stored on disk, before any gunzip).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// Packets read so far, over all inputs.
    pub fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    /// Sessions finished so far, over all inputs.
    pub fn sessions(&self) -> u64 {
        self.sessions.load(Ordering::Relaxed)
    }

    /// Adds `n` bytes read from an input.
    pub fn add_bytes(&self, n: u64) {
        self.bytes_read.fetch_add(n, Ordering::Relaxed);
    }

    /// Publishes the engine's running totals of packets and sessions.
    pub fn publish(&self, packets: u64, sessions: u64) {
        // Plain stores: the engine thread is the only writer, and a reader wants a recent
        // value, not an ordered one.
        self.packets.store(packets, Ordering::Relaxed);
        self.sessions.store(sessions, Ordering::Relaxed);
    }
}

/// A reader that adds what it reads to a [`Progress`]: one atomic add per `read` call, which
/// the capture reader makes once per buffer, not per packet.
pub struct CountingReader<R> {
    inner: R,
    progress: Arc<Progress>,
}

impl<R: Read> CountingReader<R> {
    /// Wraps `inner`, counting into `progress`.
    pub fn new(inner: R, progress: Arc<Progress>) -> Self {
        CountingReader { inner, progress }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add_bytes(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counting_reader_adds_what_it_reads_and_passes_the_bytes_on() {
        let progress = Progress::shared();
        let mut r = CountingReader::new(&b"hello world"[..], Arc::clone(&progress));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(progress.bytes_read(), 11);
        progress.publish(5, 2);
        assert_eq!((progress.packets(), progress.sessions()), (5, 2));
    }
}
