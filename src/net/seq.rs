//! TCP sequence numbers with wrapping (RFC 1982 style) comparison.
//!
//! Sequence numbers live on a 32-bit circle, so "before" only means something for numbers
//! less than 2^31 apart; [`SeqNum`] deliberately does not implement `Ord` (the relation is
//! not transitive). [`StreamOffsets`] turns them into 64-bit offsets from the start of a
//! stream, which do order totally and never wrap.

use std::ops::{Add, Sub};

/// A TCP sequence (or acknowledgement) number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// The raw 32-bit value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Signed distance from `earlier` to `self`: positive when `self` comes after it.
    ///
    /// Numbers exactly 2^31 apart yield `i32::MIN` (RFC 1982 leaves that case undefined).
    pub const fn distance_from(self, earlier: SeqNum) -> i32 {
        self.0.wrapping_sub(earlier.0) as i32
    }

    /// Whether `self` comes strictly before `other` on the sequence circle.
    pub const fn precedes(self, other: SeqNum) -> bool {
        other.distance_from(self) > 0
    }

    /// Whether `self` comes strictly after `other` on the sequence circle.
    pub const fn follows(self, other: SeqNum) -> bool {
        self.distance_from(other) > 0
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;

    /// Advances by `n` bytes, wrapping around 2^32.
    fn add(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }
}

impl Sub<u32> for SeqNum {
    type Output = SeqNum;

    /// Goes back by `n` bytes, wrapping around 2^32.
    fn sub(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(n))
    }
}

impl Sub<SeqNum> for SeqNum {
    type Output = i32;

    /// Serial-number difference, see [`SeqNum::distance_from`].
    fn sub(self, earlier: SeqNum) -> i32 {
        self.distance_from(earlier)
    }
}

impl From<u32> for SeqNum {
    fn from(v: u32) -> Self {
        SeqNum(v)
    }
}

/// Maps sequence numbers of one stream to 64-bit offsets from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOffsets {
    first: SeqNum,
}

impl StreamOffsets {
    /// Offsets of a stream whose first byte has sequence number `first`.
    pub const fn new(first: SeqNum) -> Self {
        StreamOffsets { first }
    }

    /// Sequence number of the stream's first byte.
    pub const fn first(self) -> SeqNum {
        self.first
    }

    /// Sequence number of the byte at `offset` (wraps every 4 GiB, as on the wire).
    pub const fn seq_at(self, offset: u64) -> SeqNum {
        // Truncation is the point: the wire keeps offsets modulo 2^32.
        SeqNum(self.first.0.wrapping_add(offset as u32))
    }

    /// Offset of `seq`, read as the one within ±2^31 of the known offset `near`.
    ///
    /// Negative results lie before the stream start. Reading relative to a moving
    /// reference (normally the next expected byte) keeps streams longer than 4 GiB and
    /// initial sequence numbers near 2^32 exact.
    pub const fn offset_near(self, seq: SeqNum, near: u64) -> i64 {
        let reference = self.seq_at(near);
        (near as i64).wrapping_add(seq.distance_from(reference) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_comparison_wraps() {
        let a = SeqNum(u32::MAX - 5);
        let b = a + 10;
        assert_eq!(b, SeqNum(4));
        assert!(a.precedes(b));
        assert!(b.follows(a));
        assert!(!b.precedes(a));
        assert_eq!(b - a, 10);
        assert_eq!(a - b, -10);
        assert_eq!(b - 10, a);
        assert!(!a.precedes(a) && !a.follows(a));
    }

    #[test]
    fn half_circle_apart_is_neither_before_nor_after_in_both_ways() {
        let a = SeqNum(0);
        let b = SeqNum(1 << 31);
        assert_eq!(b - a, i32::MIN);
        assert!(!b.follows(a));
    }

    #[test]
    fn offsets_survive_wraparound_near_two_to_the_32() {
        let offs = StreamOffsets::new(SeqNum(u32::MAX - 2));
        assert_eq!(offs.offset_near(SeqNum(u32::MAX - 2), 0), 0);
        assert_eq!(offs.offset_near(SeqNum(1), 0), 4);
        assert_eq!(offs.offset_near(SeqNum(u32::MAX - 4), 0), -2);
        assert_eq!(offs.seq_at(4), SeqNum(1));
    }

    #[test]
    fn offsets_beyond_four_gib_stay_exact_relative_to_reference() {
        let offs = StreamOffsets::new(SeqNum(1000));
        let far = 5u64 << 30; // 5 GiB into the stream
        let seq = offs.seq_at(far + 7);
        assert_eq!(offs.offset_near(seq, far), (far + 7) as i64);
        let back = offs.seq_at(far - 100);
        assert_eq!(offs.offset_near(back, far), (far - 100) as i64);
    }
}
