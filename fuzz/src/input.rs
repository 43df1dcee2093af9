//! A lenient reader over fuzzer bytes: every read succeeds while bytes remain, and a read past
//! the end yields `None` (numbers) or the bytes that are left (slices).

/// Reads little-endian numbers and byte runs from the front of an input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The next byte.
    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    /// The next two bytes as a little-endian `u16`; a lone last byte counts as the low half.
    pub fn u16(&mut self) -> Option<u16> {
        let lo = self.u8()?;
        let hi = self.u8().unwrap_or(0);
        Some(u16::from_le_bytes([lo, hi]))
    }

    /// The next four bytes as a little-endian `u32`, missing high bytes read as zero.
    pub fn u32(&mut self) -> Option<u32> {
        let lo = self.u16()?;
        let hi = self.u16().unwrap_or(0);
        Some(u32::from(lo) | (u32::from(hi) << 16))
    }

    /// Up to `n` bytes (fewer when the input ends first).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = rest;
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_and_runs_then_runs_dry() {
        let mut r = Reader::new(&[1, 0x34, 0x12, 9, 8, 7]);
        assert_eq!(r.u8(), Some(1));
        assert_eq!(r.u16(), Some(0x1234));
        assert_eq!(r.take(5), &[9, 8, 7]);
        assert!(r.is_empty());
        assert_eq!(r.u32(), None);
    }
}
