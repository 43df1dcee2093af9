//! What a part's decoded content is, told from its first bytes ("magic numbers"), so rules can
//! judge an attachment by what it holds and not only by the name its sender gave it.
//!
//! The bytes are looked at once, where the decoder produces them (the streaming leaf keeps
//! the first [`MAGIC_BYTES`] decoded bytes); the record carries the verdict as
//! [`ContentKind`], and nothing downstream reads the content again.

use super::decoder::Base64Decoder;
use serde::Serialize;

/// Decoded bytes of a part looked at to classify it.
pub const MAGIC_BYTES: usize = 16;

/// A kind of content recognised by its leading bytes; `content_kind` of a part in the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ContentKind {
    /// Windows PE executable or DLL (`MZ` and a binary DOS header).
    #[serde(rename = "pe")]
    Pe,
    /// ELF executable or shared object (`\x7fELF`).
    #[serde(rename = "elf")]
    Elf,
    /// Mach-O executable, 32 or 64 bit either byte order, or a universal binary (`CA FE BA BE`,
    /// which Java class files share: executable too).
    #[serde(rename = "mach_o")]
    MachO,
    /// A script with an interpreter line (`#!` and a path).
    #[serde(rename = "script")]
    Script,
    /// A Windows shell link (`.lnk`: header size 0x4C then the link CLSID).
    #[serde(rename = "windows_shortcut")]
    WindowsShortcut,
    /// An OLE2 compound file (`D0 CF 11 E0 A1 B1 1A E1`): legacy Office documents (doc, xls,
    /// ppt), which may carry VBA macros, and also msi and msg files.
    #[serde(rename = "ole2")]
    Ole2,
    /// A ZIP archive (`PK\x03\x04`, or an empty or spanned one); also the container of OOXML,
    /// OpenDocument, jar and apk files.
    #[serde(rename = "zip")]
    Zip,
    /// A RAR archive (`Rar!\x1a\x07`).
    #[serde(rename = "rar")]
    Rar,
    /// A 7-Zip archive (`7z\xbc\xaf\x27\x1c`).
    #[serde(rename = "7z")]
    SevenZip,
    /// gzip-compressed data (`\x1f\x8b\x08`).
    #[serde(rename = "gzip")]
    Gzip,
    /// bzip2-compressed data (`BZh` and a block size digit).
    #[serde(rename = "bzip2")]
    Bzip2,
    /// xz-compressed data (`\xfd7zXZ\0`).
    #[serde(rename = "xz")]
    Xz,
    /// A Microsoft cabinet (`MSCF\0\0\0\0`).
    #[serde(rename = "cab")]
    Cab,
    /// An ACE archive (`**ACE**` at offset 7).
    #[serde(rename = "ace")]
    Ace,
}

impl ContentKind {
    /// The kind of content that starts with `head` (the first [`MAGIC_BYTES`] or fewer), if
    /// one is recognised.
    pub fn of(head: &[u8]) -> Option<ContentKind> {
        let starts = |magic: &[u8]| head.starts_with(magic);
        // A DOS header is binary: text that happens to start with "MZ" is not one.
        let binary_after = |n: usize| head.iter().skip(n).any(|&b| b == 0 || b >= 0x80);
        let kind = if starts(b"MZ") && binary_after(2) {
            ContentKind::Pe
        } else if starts(b"\x7fELF") {
            ContentKind::Elf
        } else if [
            b"\xfe\xed\xfa\xce",
            b"\xfe\xed\xfa\xcf",
            b"\xce\xfa\xed\xfe",
            b"\xcf\xfa\xed\xfe",
            b"\xca\xfe\xba\xbe",
        ]
        .iter()
        .any(|m| starts(*m))
        {
            ContentKind::MachO
        } else if head.starts_with(b"#!") && head[2..].iter().find(|&&b| b != b' ') == Some(&b'/') {
            // An interpreter line names a path: `#!/bin/sh`, `#! /usr/bin/env python`.
            ContentKind::Script
        } else if starts(b"\x4c\x00\x00\x00\x01\x14\x02\x00") {
            ContentKind::WindowsShortcut
        } else if starts(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
            ContentKind::Ole2
        } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") || starts(b"PK\x07\x08") {
            ContentKind::Zip
        } else if starts(b"Rar!\x1a\x07") {
            ContentKind::Rar
        } else if starts(b"7z\xbc\xaf\x27\x1c") {
            ContentKind::SevenZip
        } else if starts(b"\x1f\x8b\x08") {
            // Deflate is the only method gzip defines (RFC 1952).
            ContentKind::Gzip
        } else if head.len() >= 4 && starts(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            ContentKind::Bzip2
        } else if starts(b"\xfd7zXZ\x00") {
            ContentKind::Xz
        } else if starts(b"MSCF\x00\x00\x00\x00") {
            ContentKind::Cab
        } else if head.get(7..14) == Some(b"**ACE**") {
            ContentKind::Ace
        } else {
            return None;
        };
        Some(kind)
    }

    /// The JSON name, e.g. `pe`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::Pe => "pe",
            ContentKind::Elf => "elf",
            ContentKind::MachO => "mach_o",
            ContentKind::Script => "script",
            ContentKind::WindowsShortcut => "windows_shortcut",
            ContentKind::Ole2 => "ole2",
            ContentKind::Zip => "zip",
            ContentKind::Rar => "rar",
            ContentKind::SevenZip => "7z",
            ContentKind::Gzip => "gzip",
            ContentKind::Bzip2 => "bzip2",
            ContentKind::Xz => "xz",
            ContentKind::Cab => "cab",
            ContentKind::Ace => "ace",
        }
    }

    /// Content that runs as a program when opened: native executables, scripts, shortcuts.
    pub fn is_executable(self) -> bool {
        matches!(
            self,
            ContentKind::Pe
                | ContentKind::Elf
                | ContentKind::MachO
                | ContentKind::Script
                | ContentKind::WindowsShortcut
        )
    }

    /// An archive or compressed container.
    pub fn is_archive(self) -> bool {
        matches!(
            self,
            ContentKind::Zip
                | ContentKind::Rar
                | ContentKind::SevenZip
                | ContentKind::Gzip
                | ContentKind::Bzip2
                | ContentKind::Xz
                | ContentKind::Cab
                | ContentKind::Ace
        )
    }
}

/// Keeps the first [`MAGIC_BYTES`] decoded bytes of a streaming part.
#[derive(Debug, Clone, Default)]
pub struct MagicSniffer {
    head: Vec<u8>,
    /// Set when the part's decoder leaves base64 as written (no output shows decoded content):
    /// the few leading bytes are decoded here for the classification alone.
    base64: Option<Base64Decoder>,
}

impl MagicSniffer {
    /// A sniffer fed decoded bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sniffer fed base64 as written, which it decodes itself (only its first bytes).
    pub fn for_raw_base64() -> Self {
        MagicSniffer {
            head: Vec::new(),
            base64: Some(Base64Decoder::new()),
        }
    }

    /// Whether it still wants bytes.
    pub fn hungry(&self) -> bool {
        self.head.len() < MAGIC_BYTES
    }

    /// The next bytes of the body (decoded, or base64 as written for [`Self::for_raw_base64`]).
    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.hungry() {
            return;
        }
        match self.base64.as_mut() {
            None => {
                let room = MAGIC_BYTES - self.head.len();
                self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            Some(decoder) => {
                // A few dozen characters at a time: a long body costs no more than its start.
                for piece in bytes.chunks(32) {
                    decoder.feed(piece, &mut self.head);
                    if self.head.len() >= MAGIC_BYTES {
                        break;
                    }
                }
                self.head.truncate(MAGIC_BYTES);
            }
        }
    }

    /// The classification of what was seen.
    pub fn finish(mut self) -> Option<ContentKind> {
        if let Some(mut decoder) = self.base64.take()
            && self.hungry()
        {
            decoder.finish(&mut self.head);
            self.head.truncate(MAGIC_BYTES);
        }
        ContentKind::of(&self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn leading_bytes_name_the_kind() {
        let cases: &[(&[u8], Option<ContentKind>)] = &[
            (b"MZ\x90\x00\x03\x00\x00\x00", Some(ContentKind::Pe)),
            (b"\x7fELF\x02\x01\x01", Some(ContentKind::Elf)),
            (b"\xcf\xfa\xed\xfe\x07\x00", Some(ContentKind::MachO)),
            (b"#!/bin/sh\necho hi\n", Some(ContentKind::Script)),
            (
                b"\x4c\x00\x00\x00\x01\x14\x02\x00\x00\x00",
                Some(ContentKind::WindowsShortcut),
            ),
            (
                b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00",
                Some(ContentKind::Ole2),
            ),
            (b"PK\x03\x04\x14\x00", Some(ContentKind::Zip)),
            (b"Rar!\x1a\x07\x01\x00", Some(ContentKind::Rar)),
            (b"7z\xbc\xaf\x27\x1c\x00\x04", Some(ContentKind::SevenZip)),
            (b"\x1f\x8b\x08\x00", Some(ContentKind::Gzip)),
            (b"BZh91AY&SY", Some(ContentKind::Bzip2)),
            (b"BZhx", None),
            (b"\xfd7zXZ\x00\x00", Some(ContentKind::Xz)),
            (b"MSCF\x00\x00\x00\x00\x10", Some(ContentKind::Cab)),
            (
                b"\x00\x00\x00\x00\x00\x00\x00**ACE**\x00",
                Some(ContentKind::Ace),
            ),
            (b"%PDF-1.7\n", None),
            (b"M", None),
            (b"MZ", None),
            (b"MZ is where the story starts", None),
            (b"MZP\x00\x02\x00", Some(ContentKind::Pe)),
            (b"#! /usr/bin/env python3\n", Some(ContentKind::Script)),
            (b"#!important note", None),
            (b"\x1f\x8bx", None),
            (b"", None),
            (b"Hello, world", None),
        ];
        for (head, want) in cases {
            assert_eq!(ContentKind::of(head), *want, "{head:?}");
        }
    }

    #[test]
    fn the_sniffer_keeps_only_the_head_whatever_the_split() {
        let body = b"MZ\x90\x00 the rest of a long executable body".repeat(100);
        for step in [1, 3, 7, 64, body.len()] {
            let mut s = MagicSniffer::new();
            for piece in body.chunks(step) {
                s.feed(piece);
            }
            assert_eq!(s.head.len(), MAGIC_BYTES);
            assert_eq!(s.finish(), Some(ContentKind::Pe));
        }
    }

    #[test]
    fn raw_base64_is_decoded_just_enough() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(b"\x7fELF\x02\x01\x01\x00");
        let wrapped = format!("{}\r\n{}\r\n", &encoded[..5], &encoded[5..]);
        for step in [1, 2, 5, wrapped.len()] {
            let mut s = MagicSniffer::for_raw_base64();
            for piece in wrapped.as_bytes().chunks(step) {
                s.feed(piece);
            }
            assert_eq!(s.finish(), Some(ContentKind::Elf), "step {step}");
        }
        // The start of a real PE file as mailers encode it.
        let mut s = MagicSniffer::for_raw_base64();
        s.feed(b"TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAA==\r\n");
        assert_eq!(s.finish(), Some(ContentKind::Pe));
    }
}
