//! Capture files: pcap (both byte orders, micro- and nanosecond) and pcapng, read in pure Rust.
//!
//! The file is streamed through one buffer that grows only when a single record is larger than
//! it (up to [`MAX_RECORD_LEN`]); gzip-compressed captures are recognised by their magic bytes
//! and decompressed on the fly, up to a [`GunzipLimit`]. Record framing is parsed here
//! directly rather than through a general pcapng library: the hot path must not allocate per
//! packet, every length must be checked against the bytes actually present, and errors must
//! name the byte offset.

use super::gunzip::{GunzipLimit, LimitedGunzip, limit_hit};
use super::{CaptureError, InputSummary, LinkType, Packet, PacketSource};
use crate::progress::{CountingReader, Progress};
use crate::time::Timestamp;
use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Size of the read buffer; big reads keep system-call overhead negligible.
const READ_BUFFER_LEN: usize = 2 << 20;

/// Largest record or block accepted; a longer one is reported as corrupt instead of allocated.
pub const MAX_RECORD_LEN: usize = 8 << 20;

/// The first bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// pcap magic numbers, as read in the file's own byte order.
const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Alexey Kuznetsov's patched libpcap format: microseconds, 8 extra bytes per record header.
const PCAP_MAGIC_KUZNETSOV: u32 = 0xa1b2_cd34;
const PCAP_HEADER_LEN: usize = 24;

/// pcapng block types.
const BLOCK_SECTION_HEADER: u32 = 0x0a0d_0d0a;
const BLOCK_INTERFACE_DESCRIPTION: u32 = 1;
const BLOCK_OBSOLETE_PACKET: u32 = 2;
const BLOCK_SIMPLE_PACKET: u32 = 3;
const BLOCK_ENHANCED_PACKET: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// pcapng option codes used here.
const OPT_END_OF_OPTIONS: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// Byte order of a pcap file or a pcapng section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    /// The `u16` at `at`, if the slice holds it.
    fn u16_at(self, bytes: &[u8], at: usize) -> Option<u16> {
        let raw: [u8; 2] = bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            ByteOrder::Little => u16::from_le_bytes(raw),
            ByteOrder::Big => u16::from_be_bytes(raw),
        })
    }

    /// The `u32` at `at`, if the slice holds it.
    fn u32_at(self, bytes: &[u8], at: usize) -> Option<u32> {
        let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            ByteOrder::Little => u32::from_le_bytes(raw),
            ByteOrder::Big => u32::from_be_bytes(raw),
        })
    }

    /// The `i64` at `at`, if the slice holds it.
    fn i64_at(self, bytes: &[u8], at: usize) -> Option<i64> {
        let raw: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(match self {
            ByteOrder::Little => i64::from_le_bytes(raw),
            ByteOrder::Big => i64::from_be_bytes(raw),
        })
    }
}

/// A reader with one bounded, reusable buffer and the file offset of its first unread byte.
struct ByteStream {
    reader: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Offset in the (decompressed) input of `buf[start]`.
    offset: u64,
    eof: bool,
}

impl ByteStream {
    fn new(reader: Box<dyn Read + Send>) -> Self {
        ByteStream {
            reader,
            buf: vec![0; READ_BUFFER_LEN],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// The bytes read but not yet consumed.
    fn available(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// Makes at least `want` unread bytes available; `Ok(false)` if the input ends first.
    fn fill(&mut self, want: usize) -> io::Result<bool> {
        while self.end - self.start < want {
            if self.eof {
                return Ok(false);
            }
            // Move the partial record to the front so every read is as large as possible;
            // what is moved is less than one record.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                // One record larger than the buffer (the caller capped `want`): grow by
                // doubling as its bytes arrive, so a lying length in a short file costs
                // little memory before the end of the input shows it up.
                let grown = (self.buf.len() * 2)
                    .min(want.div_ceil(READ_BUFFER_LEN) * READ_BUFFER_LEN)
                    .max(self.end + 1);
                self.buf.resize(grown, 0);
            } else if self.buf.len() > READ_BUFFER_LEN && want <= READ_BUFFER_LEN {
                // Give back memory a giant record needed once.
                let keep = READ_BUFFER_LEN.max(self.end);
                self.buf.truncate(keep);
                self.buf.shrink_to_fit();
            }
            let Some(space) = self.buf.get_mut(self.end..) else {
                return Ok(false);
            };
            match self.reader.read(space) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Marks `n` available bytes as read.
    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }
}

/// Units per second of a pcapng interface's timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TsResolution {
    units_per_sec: u64,
}

impl TsResolution {
    const MICROS: TsResolution = TsResolution {
        units_per_sec: 1_000_000,
    };
    #[cfg(test)]
    const NANOS: TsResolution = TsResolution {
        units_per_sec: 1_000_000_000,
    };

    /// Decodes an `if_tsresol` byte: a power of 10, or of 2 when the top bit is set.
    fn from_option(raw: u8) -> Option<TsResolution> {
        let exponent = u32::from(raw & 0x7f);
        let units_per_sec = if raw & 0x80 == 0 {
            10u64.checked_pow(exponent)?
        } else {
            1u64.checked_shl(exponent)?
        };
        Some(TsResolution { units_per_sec })
    }

    /// Converts a count of units since the epoch (plus whole seconds of offset) to a timestamp.
    fn timestamp(self, units: u64, offset_secs: i64) -> Timestamp {
        let offset_nanos = offset_secs.saturating_mul(1_000_000_000);
        let nanos = match self.units_per_sec {
            1_000_000 => i64::try_from(units)
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000),
            1_000_000_000 => i64::try_from(units).unwrap_or(i64::MAX),
            per_sec => {
                let secs = i64::try_from(units / per_sec).unwrap_or(i64::MAX);
                let frac = u128::from(units % per_sec) * 1_000_000_000 / u128::from(per_sec);
                secs.saturating_mul(1_000_000_000)
                    .saturating_add(i64::try_from(frac).unwrap_or(0))
            }
        };
        Timestamp(nanos.saturating_add(offset_nanos))
    }
}

/// What a pcapng Interface Description Block declared.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    resolution: TsResolution,
    offset_secs: i64,
}

/// State of a legacy pcap file.
#[derive(Debug)]
struct PcapFormat {
    order: ByteOrder,
    nanos: bool,
    record_header_len: usize,
    link: LinkType,
}

/// State of a pcapng file: the current section's byte order and interfaces.
#[derive(Debug)]
struct PcapNgFormat {
    order: ByteOrder,
    interfaces: Vec<Interface>,
    /// Simple Packet Blocks carry no time: they get the last time seen.
    last_ts: Timestamp,
}

#[derive(Debug)]
enum Format {
    Pcap(PcapFormat),
    PcapNg(PcapNgFormat),
}

/// A packet's metadata and where its bytes are in the stream buffer.
struct Record {
    ts: Timestamp,
    link: LinkType,
    data: Range<usize>,
    orig_len: u32,
}

/// A pcap or pcapng file read record by record.
pub struct FileSource {
    path: PathBuf,
    stream: ByteStream,
    format: Format,
    gzip: bool,
    finished: bool,
    summary: InputSummary,
}

impl FileSource {
    /// Opens a capture file and reads its header (a `.gz` one with the default limit).
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        FileSource::open_with(path, GunzipLimit::default())
    }

    /// Opens a capture file and reads its header; a `.gz` one expands at most to `gunzip`.
    pub fn open_with(path: &Path, gunzip: GunzipLimit) -> Result<FileSource, CaptureError> {
        let file = File::open(path).map_err(|source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        FileSource::from_reader_with(path, Box::new(file), gunzip)
    }

    /// [`FileSource::open_with`], adding the bytes read from the file to `progress`.
    pub fn open_counted(
        path: &Path,
        gunzip: GunzipLimit,
        progress: Arc<Progress>,
    ) -> Result<FileSource, CaptureError> {
        let file = File::open(path).map_err(|source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let counted = CountingReader::new(file, progress);
        FileSource::from_reader_with(path, Box::new(counted), gunzip)
    }

    /// Reads a capture from any byte stream (a pipe, standard input, memory); `path` names it in reports.
    pub fn from_reader(
        path: impl Into<PathBuf>,
        reader: Box<dyn Read + Send>,
    ) -> Result<FileSource, CaptureError> {
        FileSource::from_reader_with(path, reader, GunzipLimit::default())
    }

    /// [`FileSource::from_reader`] with a limit on how far a gzip stream may expand.
    pub fn from_reader_with(
        path: impl Into<PathBuf>,
        mut reader: Box<dyn Read + Send>,
        gunzip: GunzipLimit,
    ) -> Result<FileSource, CaptureError> {
        let path = path.into();
        let io_err = |source| CaptureError::Io {
            path: path.clone(),
            source,
        };
        let mut head = [0u8; 2];
        let head_len = read_up_to(&mut reader, &mut head).map_err(io_err)?;
        let head = head.get(..head_len).unwrap_or(&[]).to_vec();
        let gzip = head == GZIP_MAGIC;
        let rejoined: Box<dyn Read + Send> = Box::new(io::Cursor::new(head).chain(reader));
        let reader: Box<dyn Read + Send> = if gzip {
            Box::new(LimitedGunzip::new(rejoined, 1 << 20, gunzip))
        } else {
            rejoined
        };
        let mut source = FileSource {
            stream: ByteStream::new(reader),
            format: Format::Pcap(PcapFormat {
                order: ByteOrder::Little,
                nanos: false,
                record_header_len: 16,
                link: LinkType::ETHERNET,
            }),
            gzip,
            finished: false,
            summary: InputSummary {
                path: path.display().to_string(),
                ..InputSummary::default()
            },
            path,
        };
        source.read_file_header()?;
        Ok(source)
    }

    /// Recognises the format from the first bytes and reads a pcap file header.
    fn read_file_header(&mut self) -> Result<(), CaptureError> {
        if !self.fill(4)? {
            return Err(self.not_a_capture());
        }
        let avail = self.stream.available();
        let (Some(le), Some(be)) = (
            ByteOrder::Little.u32_at(avail, 0),
            ByteOrder::Big.u32_at(avail, 0),
        ) else {
            return Err(self.not_a_capture());
        };
        if le == BLOCK_SECTION_HEADER {
            if !self.fill(12)? {
                return Err(self.not_a_capture());
            }
            let Some(order) = section_byte_order(self.stream.available()) else {
                return Err(self.not_a_capture());
            };
            // The section header itself is read as the first block.
            self.format = Format::PcapNg(PcapNgFormat {
                order,
                interfaces: Vec::new(),
                last_ts: Timestamp::default(),
            });
            self.summary.format = Some("pcapng".into());
            return Ok(());
        }
        let (order, magic) = match (le, be) {
            (PCAP_MAGIC_MICROS | PCAP_MAGIC_NANOS | PCAP_MAGIC_KUZNETSOV, _) => {
                (ByteOrder::Little, le)
            }
            (_, PCAP_MAGIC_MICROS | PCAP_MAGIC_NANOS | PCAP_MAGIC_KUZNETSOV) => {
                (ByteOrder::Big, be)
            }
            _ => return Err(self.not_a_capture()),
        };
        self.summary.format = Some("pcap".into());
        if !self.fill(PCAP_HEADER_LEN)? {
            return Err(self.truncated(0));
        }
        let header = self.stream.available();
        // The low 16 bits are the link type; the high bits may carry FCS information.
        let network = order.u32_at(header, 20).unwrap_or(0);
        let link = LinkType(network & 0xffff);
        self.format = Format::Pcap(PcapFormat {
            order,
            nanos: magic == PCAP_MAGIC_NANOS,
            record_header_len: if magic == PCAP_MAGIC_KUZNETSOV {
                24
            } else {
                16
            },
            link,
        });
        self.note_link(link);
        self.stream.consume(PCAP_HEADER_LEN);
        Ok(())
    }

    /// Reads until the next packet record, the end of the input or an error.
    fn next_record(&mut self) -> Result<Option<Record>, CaptureError> {
        match self.format {
            Format::Pcap(_) => self.next_pcap_record(),
            Format::PcapNg(_) => loop {
                if let Some(step) = self.next_pcapng_block()? {
                    match step {
                        BlockStep::Packet(rec) => return Ok(Some(rec)),
                        BlockStep::Skipped => {}
                    }
                } else {
                    return Ok(None);
                }
            },
        }
    }

    fn next_pcap_record(&mut self) -> Result<Option<Record>, CaptureError> {
        let Format::Pcap(fmt) = &self.format else {
            return Ok(None);
        };
        let (order, nanos, header_len, link) =
            (fmt.order, fmt.nanos, fmt.record_header_len, fmt.link);
        let offset = self.stream.offset;
        if !self.fill(header_len)? {
            return if self.stream.available().is_empty() {
                Ok(None)
            } else {
                Err(self.truncated(offset))
            };
        }
        let header = self.stream.available();
        let field = |at| order.u32_at(header, at).unwrap_or(0);
        let (secs, frac, caplen, orig_len) = (field(0), field(4), field(8), field(12));
        let caplen = caplen as usize;
        if caplen > MAX_RECORD_LEN {
            return Err(self.corrupt(
                offset,
                format!("record claims {caplen} captured bytes, more than any real packet"),
            ));
        }
        let total = header_len + caplen;
        if !self.fill(total)? {
            return Err(self.truncated(offset));
        }
        let frac_nanos = if nanos {
            i64::from(frac)
        } else {
            i64::from(frac) * 1_000
        };
        let ts = Timestamp(
            i64::from(secs)
                .saturating_mul(1_000_000_000)
                .saturating_add(frac_nanos),
        );
        let data_start = self.stream.start + header_len;
        self.stream.consume(total);
        Ok(Some(Record {
            ts,
            link,
            data: data_start..data_start + caplen,
            orig_len,
        }))
    }

    /// Reads one pcapng block; `None` at the end of the input.
    fn next_pcapng_block(&mut self) -> Result<Option<BlockStep>, CaptureError> {
        let offset = self.stream.offset;
        if !self.fill(8)? {
            return if self.stream.available().is_empty() {
                Ok(None)
            } else {
                Err(self.truncated(offset))
            };
        }
        let Format::PcapNg(fmt) = &self.format else {
            return Ok(None);
        };
        let mut order = fmt.order;
        let block_type = order.u32_at(self.stream.available(), 0).unwrap_or(0);
        if block_type == BLOCK_SECTION_HEADER {
            // A new section may switch byte order: its byte-order magic decides how to read
            // even its own length.
            if !self.fill(12)? {
                return Err(self.truncated(offset));
            }
            order = section_byte_order(self.stream.available()).ok_or_else(|| {
                self.corrupt(
                    offset,
                    "section header with an unknown byte-order magic".into(),
                )
            })?;
        }
        let block_len = order.u32_at(self.stream.available(), 4).unwrap_or(0) as usize;
        if block_len < 12 || !block_len.is_multiple_of(4) {
            return Err(self.corrupt(
                offset,
                format!("block length {block_len} is not a multiple of 4 of at least 12"),
            ));
        }
        if block_len > MAX_RECORD_LEN {
            return Err(self.corrupt(
                offset,
                format!("block length {block_len} is beyond any real block"),
            ));
        }
        if !self.fill(block_len)? {
            return Err(self.truncated(offset));
        }
        let block_start = self.stream.start;
        let block = self.stream.available().get(..block_len).unwrap_or(&[]);
        let trailer = order.u32_at(block, block_len - 4).unwrap_or(0) as usize;
        if trailer != block_len {
            return Err(self.corrupt(
                offset,
                format!("trailing block length {trailer} differs from the leading {block_len}"),
            ));
        }
        let body = block.get(8..block_len - 4).unwrap_or(&[]);
        let step = match block_type {
            BLOCK_SECTION_HEADER => {
                let major = order.u16_at(body, 4);
                if body.len() < 16 {
                    return Err(self.corrupt(offset, "section header block too short".into()));
                }
                if major != Some(1) {
                    return Err(self.corrupt(
                        offset,
                        format!("unsupported pcapng major version {}", major.unwrap_or(0)),
                    ));
                }
                if let Format::PcapNg(fmt) = &mut self.format {
                    fmt.order = order;
                    fmt.interfaces.clear();
                }
                BlockStep::Skipped
            }
            BLOCK_INTERFACE_DESCRIPTION => {
                let iface = parse_interface(order, body).map_err(|r| self.corrupt(offset, r))?;
                let (iface, bad_resolution) = iface;
                if let Some(raw) = bad_resolution {
                    let msg = format!(
                        "{}: interface block at offset {offset} has an invalid if_tsresol {raw:#04x}; \
                         timestamps read as microseconds",
                        self.path.display()
                    );
                    self.summary.errors.push(msg);
                }
                self.note_link(iface.link);
                if let Format::PcapNg(fmt) = &mut self.format {
                    fmt.interfaces.push(iface);
                }
                BlockStep::Skipped
            }
            BLOCK_ENHANCED_PACKET | BLOCK_OBSOLETE_PACKET => {
                let obsolete = block_type == BLOCK_OBSOLETE_PACKET;
                let fields = (|| {
                    let if_id = if obsolete {
                        u32::from(order.u16_at(body, 0)?)
                    } else {
                        order.u32_at(body, 0)?
                    };
                    let high = order.u32_at(body, 4)?;
                    let low = order.u32_at(body, 8)?;
                    let caplen = order.u32_at(body, 12)? as usize;
                    let orig_len = order.u32_at(body, 16)?;
                    Some((
                        if_id,
                        (u64::from(high) << 32) | u64::from(low),
                        caplen,
                        orig_len,
                    ))
                })();
                let Some((if_id, units, caplen, orig_len)) = fields else {
                    return Err(self.corrupt(offset, "packet block too short".into()));
                };
                if caplen > body.len() - 20 {
                    return Err(self.corrupt(
                        offset,
                        format!(
                            "captured length {caplen} runs past the end of its {block_len}-byte block"
                        ),
                    ));
                }
                let iface = self.interface(if_id).ok_or_else(|| {
                    self.corrupt(
                        offset,
                        format!("packet on interface {if_id}, which no interface block declared"),
                    )
                })?;
                let ts = iface.resolution.timestamp(units, iface.offset_secs);
                if let Format::PcapNg(fmt) = &mut self.format {
                    fmt.last_ts = ts;
                }
                let data_start = block_start + 28;
                BlockStep::Packet(Record {
                    ts,
                    link: iface.link,
                    data: data_start..data_start + caplen,
                    orig_len,
                })
            }
            BLOCK_SIMPLE_PACKET => {
                let Some(orig_len) = order.u32_at(body, 0) else {
                    return Err(self.corrupt(offset, "simple packet block too short".into()));
                };
                let iface = self.interface(0).ok_or_else(|| {
                    self.corrupt(
                        offset,
                        "simple packet block before any interface block".into(),
                    )
                })?;
                // The block holds the packet padded to 4 bytes, cut to the interface's snaplen.
                let mut caplen = (orig_len as usize).min(body.len() - 4);
                if iface.snaplen > 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                let ts = match &self.format {
                    Format::PcapNg(fmt) => fmt.last_ts,
                    Format::Pcap(_) => Timestamp::default(),
                };
                let data_start = block_start + 12;
                BlockStep::Packet(Record {
                    ts,
                    link: iface.link,
                    data: data_start..data_start + caplen,
                    orig_len,
                })
            }
            _ => BlockStep::Skipped,
        };
        self.stream.consume(block_len);
        Ok(Some(step))
    }

    /// The current section's interface `id`.
    fn interface(&self, id: u32) -> Option<Interface> {
        match &self.format {
            Format::PcapNg(fmt) => fmt.interfaces.get(id as usize).copied(),
            Format::Pcap(_) => None,
        }
    }

    /// Makes `want` bytes available, turning read failures into capture errors.
    fn fill(&mut self, want: usize) -> Result<bool, CaptureError> {
        self.stream.fill(want).map_err(|e| {
            self.read_error(self.stream.offset + self.stream.available().len() as u64, e)
        })
    }

    fn read_error(&self, offset: u64, source: io::Error) -> CaptureError {
        if let Some(hit) = limit_hit(&source) {
            return CaptureError::GunzipLimit {
                path: self.path.clone(),
                offset,
                hit,
            };
        }
        if self.gzip {
            // Decompression errors describe the file's content, not the OS.
            match source.kind() {
                io::ErrorKind::UnexpectedEof => return self.truncated(self.stream.offset),
                io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
                    return self.corrupt(offset, format!("gzip stream: {source}"));
                }
                _ => {}
            }
        }
        CaptureError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn note_link(&mut self, link: LinkType) {
        let name = link.name();
        if !self.summary.link_types.contains(&name) {
            self.summary.link_types.push(name);
        }
    }

    fn not_a_capture(&self) -> CaptureError {
        CaptureError::NotACapture {
            path: self.path.clone(),
        }
    }

    fn truncated(&self, offset: u64) -> CaptureError {
        CaptureError::Truncated {
            path: self.path.clone(),
            offset,
        }
    }

    fn corrupt(&self, offset: u64, reason: String) -> CaptureError {
        CaptureError::Corrupt {
            path: self.path.clone(),
            offset,
            reason,
        }
    }
}

/// What one pcapng block turned out to be.
enum BlockStep {
    Packet(Record),
    Skipped,
}

/// The byte order announced by a section header block's byte-order magic.
fn section_byte_order(block: &[u8]) -> Option<ByteOrder> {
    if ByteOrder::Little.u32_at(block, 8)? == BYTE_ORDER_MAGIC {
        Some(ByteOrder::Little)
    } else if ByteOrder::Big.u32_at(block, 8)? == BYTE_ORDER_MAGIC {
        Some(ByteOrder::Big)
    } else {
        None
    }
}

/// Parses an Interface Description Block body; also returns an unusable `if_tsresol` value.
fn parse_interface(order: ByteOrder, body: &[u8]) -> Result<(Interface, Option<u8>), String> {
    let (Some(link), Some(snaplen)) = (order.u16_at(body, 0), order.u32_at(body, 4)) else {
        return Err("interface description block too short".into());
    };
    let mut iface = Interface {
        link: LinkType(u32::from(link)),
        snaplen,
        resolution: TsResolution::MICROS,
        offset_secs: 0,
    };
    let mut bad_resolution = None;
    let mut at = 8;
    while let (Some(code), Some(len)) = (order.u16_at(body, at), order.u16_at(body, at + 2)) {
        if code == OPT_END_OF_OPTIONS {
            break;
        }
        let len = usize::from(len);
        let Some(value) = body.get(at + 4..at + 4 + len) else {
            return Err(format!("option {code} runs past the end of its block"));
        };
        match code {
            OPT_IF_TSRESOL => {
                if let Some(&raw) = value.first() {
                    match TsResolution::from_option(raw) {
                        Some(r) => iface.resolution = r,
                        None => bad_resolution = Some(raw),
                    }
                }
            }
            OPT_IF_TSOFFSET => {
                if let Some(secs) = order.i64_at(value, 0) {
                    iface.offset_secs = secs;
                }
            }
            _ => {}
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    Ok((iface, bad_resolution))
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..) {
        if rest.is_empty() {
            break;
        }
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl PacketSource for FileSource {
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        let rec = match self.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => {
                self.finished = true;
                return Ok(None);
            }
            Err(e) => {
                self.finished = true;
                return Err(e);
            }
        };
        let Some(data) = self.stream.buf.get(rec.data) else {
            self.finished = true;
            return Err(self.corrupt(self.stream.offset, "record outside the read buffer".into()));
        };
        self.summary.packets += 1;
        self.summary.bytes += data.len() as u64;
        Ok(Some(Packet {
            ts: rec.ts,
            link: rec.link,
            data,
            orig_len: rec.orig_len,
        }))
    }

    fn summary(&self) -> InputSummary {
        self.summary.clone()
    }

    fn note_error(&mut self, message: String) {
        self.summary.errors.push(message);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// Builds legacy pcap files in memory.
    pub(crate) struct PcapBuilder {
        big_endian: bool,
        nanos: bool,
        pub(crate) bytes: Vec<u8>,
    }

    impl PcapBuilder {
        pub(crate) fn new(big_endian: bool, nanos: bool, link: u32, snaplen: u32) -> Self {
            let mut b = PcapBuilder {
                big_endian,
                nanos,
                bytes: Vec::new(),
            };
            let magic = if nanos {
                PCAP_MAGIC_NANOS
            } else {
                PCAP_MAGIC_MICROS
            };
            b.u32(magic);
            b.u16(2);
            b.u16(4);
            b.u32(0);
            b.u32(0);
            b.u32(snaplen);
            b.u32(link);
            b
        }

        fn u16(&mut self, v: u16) {
            let raw = if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.bytes.extend_from_slice(&raw);
        }

        fn u32(&mut self, v: u32) {
            let raw = if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.bytes.extend_from_slice(&raw);
        }

        /// Adds a record; `frac` is micro- or nanoseconds as the file declares.
        pub(crate) fn packet(&mut self, secs: u32, frac: u32, data: &[u8], orig_len: u32) {
            let _ = self.nanos;
            self.u32(secs);
            self.u32(frac);
            self.u32(data.len() as u32);
            self.u32(orig_len);
            self.bytes.extend_from_slice(data);
        }
    }

    /// Builds pcapng files in memory.
    pub(crate) struct PcapNgBuilder {
        big_endian: bool,
        pub(crate) bytes: Vec<u8>,
    }

    impl PcapNgBuilder {
        pub(crate) fn new(big_endian: bool) -> Self {
            let mut b = PcapNgBuilder {
                big_endian,
                bytes: Vec::new(),
            };
            b.section(big_endian);
            b
        }

        fn u16v(&self, v: u16) -> [u8; 2] {
            if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }

        fn u32v(&self, v: u32) -> [u8; 4] {
            if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }

        /// Appends a block with the given body (padded to 4 bytes here).
        pub(crate) fn block(&mut self, block_type: u32, body: &[u8]) {
            let mut body = body.to_vec();
            while !body.len().is_multiple_of(4) {
                body.push(0);
            }
            let len = (body.len() + 12) as u32;
            let ty = self.u32v(block_type);
            let l = self.u32v(len);
            self.bytes.extend_from_slice(&ty);
            self.bytes.extend_from_slice(&l);
            self.bytes.extend_from_slice(&body);
            self.bytes.extend_from_slice(&l);
        }

        /// Starts a new section, possibly switching byte order.
        pub(crate) fn section(&mut self, big_endian: bool) {
            self.big_endian = big_endian;
            let mut body = Vec::new();
            body.extend_from_slice(&self.u32v(BYTE_ORDER_MAGIC));
            body.extend_from_slice(&self.u16v(1));
            body.extend_from_slice(&self.u16v(0));
            body.extend_from_slice(&[0xff; 8]);
            self.block(BLOCK_SECTION_HEADER, &body);
        }

        /// Declares an interface with optional `if_tsresol` and `if_tsoffset`.
        pub(crate) fn interface(
            &mut self,
            link: u16,
            snaplen: u32,
            tsresol: Option<u8>,
            tsoffset: Option<i64>,
        ) {
            let mut body = Vec::new();
            body.extend_from_slice(&self.u16v(link));
            body.extend_from_slice(&self.u16v(0));
            body.extend_from_slice(&self.u32v(snaplen));
            if let Some(r) = tsresol {
                body.extend_from_slice(&self.u16v(OPT_IF_TSRESOL));
                body.extend_from_slice(&self.u16v(1));
                body.extend_from_slice(&[r, 0, 0, 0]);
            }
            if let Some(off) = tsoffset {
                body.extend_from_slice(&self.u16v(OPT_IF_TSOFFSET));
                body.extend_from_slice(&self.u16v(8));
                let raw = if self.big_endian {
                    off.to_be_bytes()
                } else {
                    off.to_le_bytes()
                };
                body.extend_from_slice(&raw);
            }
            if tsresol.is_some() || tsoffset.is_some() {
                body.extend_from_slice(&[0; 4]);
            }
            self.block(BLOCK_INTERFACE_DESCRIPTION, &body);
        }

        /// Adds an Enhanced Packet Block with a raw 64-bit timestamp in interface units.
        pub(crate) fn enhanced(&mut self, if_id: u32, units: u64, data: &[u8], orig_len: u32) {
            let mut body = Vec::new();
            body.extend_from_slice(&self.u32v(if_id));
            body.extend_from_slice(&self.u32v((units >> 32) as u32));
            body.extend_from_slice(&self.u32v(units as u32));
            body.extend_from_slice(&self.u32v(data.len() as u32));
            body.extend_from_slice(&self.u32v(orig_len));
            body.extend_from_slice(data);
            while !body.len().is_multiple_of(4) {
                body.push(0);
            }
            // An epb_flags option, to check options after the data are skipped.
            body.extend_from_slice(&self.u16v(2));
            body.extend_from_slice(&self.u16v(4));
            body.extend_from_slice(&self.u32v(1));
            body.extend_from_slice(&[0; 4]);
            self.block(BLOCK_ENHANCED_PACKET, &body);
        }

        /// Adds a Simple Packet Block.
        pub(crate) fn simple(&mut self, data: &[u8], orig_len: u32) {
            let mut body = Vec::new();
            body.extend_from_slice(&self.u32v(orig_len));
            body.extend_from_slice(data);
            self.block(BLOCK_SIMPLE_PACKET, &body);
        }
    }

    pub(crate) fn source(bytes: Vec<u8>) -> Result<FileSource, CaptureError> {
        FileSource::from_reader("mem.pcap", Box::new(io::Cursor::new(bytes)))
    }

    /// A packet read back: time, link type, captured bytes, original length.
    pub(crate) type ReadPacket = (Timestamp, LinkType, Vec<u8>, u32);

    /// Every packet, then the error that ended the read, if any.
    pub(crate) fn read_all(src: &mut FileSource) -> (Vec<ReadPacket>, Option<CaptureError>) {
        let mut out = Vec::new();
        loop {
            match src.next_packet() {
                Ok(Some(p)) => out.push((p.ts, p.link, p.data.to_vec(), p.orig_len)),
                Ok(None) => return (out, None),
                Err(e) => {
                    // After an error the source stays finished.
                    assert!(matches!(src.next_packet(), Ok(None)));
                    return (out, Some(e));
                }
            }
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn two_packet_pcap(big_endian: bool, nanos: bool) -> Vec<u8> {
        let mut b = PcapBuilder::new(big_endian, nanos, 1, 65535);
        b.packet(1_700_000_000, 250, b"first", 5);
        b.packet(1_700_000_001, 999, b"second!", 60);
        b.bytes
    }

    #[test]
    fn reads_pcap_in_both_byte_orders() {
        for big in [false, true] {
            let mut src = source(two_packet_pcap(big, false)).unwrap();
            let (pkts, err) = read_all(&mut src);
            assert!(err.is_none());
            assert_eq!(pkts.len(), 2);
            assert_eq!(pkts[0].0, Timestamp::from_parts(1_700_000_000, 250_000));
            assert_eq!(pkts[0].1, LinkType::ETHERNET);
            assert_eq!(pkts[0].2, b"first");
            assert_eq!(pkts[1].2, b"second!");
            assert_eq!(pkts[1].3, 60);
            let s = src.summary();
            assert_eq!(s.format.as_deref(), Some("pcap"));
            assert_eq!(s.link_types, vec!["ethernet"]);
            assert_eq!((s.packets, s.bytes), (2, 12));
        }
    }

    #[test]
    fn reads_nanosecond_pcap() {
        for big in [false, true] {
            let mut src = source(two_packet_pcap(big, true)).unwrap();
            let (pkts, err) = read_all(&mut src);
            assert!(err.is_none());
            assert_eq!(pkts[0].0, Timestamp::from_parts(1_700_000_000, 250));
            assert_eq!(pkts[1].0, Timestamp::from_parts(1_700_000_001, 999));
        }
    }

    #[test]
    fn reads_gzip_compressed_capture() {
        let mut src = source(gzip(&two_packet_pcap(false, false))).unwrap();
        let (pkts, err) = read_all(&mut src);
        assert!(err.is_none());
        assert_eq!(pkts.len(), 2);
        assert_eq!(pkts[1].2, b"second!");
    }

    #[test]
    fn truncated_gzip_stream_is_truncated() {
        let mut b = PcapBuilder::new(false, false, 1, 65535);
        for i in 0..200u32 {
            b.packet(i, 0, &[i as u8; 100], 100);
        }
        let z = gzip(&b.bytes);
        let mut src = source(z[..z.len() / 2].to_vec()).unwrap();
        let (pkts, err) = read_all(&mut src);
        assert!(pkts.len() < 200);
        assert!(
            matches!(err, Some(CaptureError::Truncated { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn truncated_last_record_after_complete_packets() {
        let mut bytes = two_packet_pcap(false, false);
        let full = bytes.len();
        bytes.truncate(full - 3);
        let mut src = source(bytes).unwrap();
        let (pkts, err) = read_all(&mut src);
        assert_eq!(pkts.len(), 1);
        match err {
            Some(CaptureError::Truncated { offset, .. }) => assert_eq!(offset, 24 + 16 + 5),
            other => panic!("expected truncation, got {other:?}"),
        }
        // A cut inside a record header is truncation too.
        let mut bytes = two_packet_pcap(false, false);
        bytes.truncate(24 + 16 + 5 + 7);
        let (pkts, err) = read_all(&mut source(bytes).unwrap());
        assert_eq!(pkts.len(), 1);
        assert!(matches!(err, Some(CaptureError::Truncated { .. })));
    }

    #[test]
    fn absurd_caplen_is_corrupt_with_offset() {
        let mut b = PcapBuilder::new(false, false, 1, 65535);
        b.packet(1, 0, b"ok", 2);
        b.u32(2);
        b.u32(0);
        b.u32(0x7fff_fff0);
        b.u32(60);
        b.bytes.extend_from_slice(&[0; 64]);
        let mut src = source(b.bytes).unwrap();
        let (pkts, err) = read_all(&mut src);
        assert_eq!(pkts.len(), 1);
        let err = err.expect("an error");
        assert!(
            matches!(err, CaptureError::Corrupt { offset: 42, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("mem.pcap"));
        assert!(err.to_string().contains("offset 42"));
    }

    #[test]
    fn lying_length_in_a_short_file_costs_little_memory() {
        let mut b = PcapBuilder::new(false, false, 1, 65535);
        b.u32(1);
        b.u32(0);
        // The longest record accepted, far longer than the file and the read buffer.
        b.u32(MAX_RECORD_LEN as u32);
        b.u32(MAX_RECORD_LEN as u32);
        b.bytes.extend_from_slice(&[0; 100]);
        let mut src = source(b.bytes).unwrap();
        let (pkts, err) = read_all(&mut src);
        assert!(pkts.is_empty());
        assert!(matches!(
            err,
            Some(CaptureError::Truncated { offset: 24, .. })
        ));
        assert!(src.stream.buf.len() <= 2 * READ_BUFFER_LEN);
    }

    #[test]
    fn caplen_beyond_snaplen_or_orig_len_is_delivered() {
        let mut b = PcapBuilder::new(false, false, 1, 4);
        b.packet(1, 0, b"longer than snaplen", 3);
        let (pkts, err) = read_all(&mut source(b.bytes).unwrap());
        assert!(err.is_none());
        assert_eq!(pkts[0].2, b"longer than snaplen");
        assert_eq!(pkts[0].3, 3);
    }

    #[test]
    fn not_a_capture_and_missing_file() {
        for junk in [
            &b""[..],
            b"GIF89a not a capture",
            b"\x0a\x0d\x0d\x0a\0\0\0\0\0\0\0\0",
        ] {
            let err = source(junk.to_vec()).err().expect("rejected");
            assert!(matches!(err, CaptureError::NotACapture { .. }), "{err:?}");
        }
        let err = FileSource::open(Path::new("/nonexistent/dir/x.pcap"))
            .err()
            .expect("rejected");
        assert!(matches!(err, CaptureError::Io { .. }));
        assert!(err.to_string().starts_with("/nonexistent/dir/x.pcap: "));
        // A pcap magic followed by less than a header.
        let err = source(PCAP_MAGIC_MICROS.to_le_bytes().to_vec())
            .err()
            .expect("rejected");
        assert!(matches!(err, CaptureError::Truncated { offset: 0, .. }));
    }

    #[test]
    fn pcapng_two_interfaces_with_own_link_and_resolution() {
        for big in [false, true] {
            let mut b = PcapNgBuilder::new(big);
            b.interface(1, 65535, None, None);
            // Raw IP, nanoseconds, ten seconds of offset.
            b.interface(101, 65535, Some(9), Some(10));
            // Linux SLL, 2^-20 second units.
            b.interface(113, 0, Some(0x80 | 20), None);
            b.enhanced(0, 1_700_000_000_000_001, b"eth", 3);
            b.enhanced(1, 1_700_000_000_123_456_789, b"raw-ip", 100);
            b.enhanced(2, (5 << 20) | (1 << 19), b"sll", 3);
            let mut src = source(b.bytes).unwrap();
            let (pkts, err) = read_all(&mut src);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(pkts.len(), 3);
            assert_eq!(pkts[0].0, Timestamp::from_parts(1_700_000_000, 1_000));
            assert_eq!(pkts[0].1, LinkType::ETHERNET);
            assert_eq!(pkts[1].0, Timestamp::from_parts(1_700_000_010, 123_456_789));
            assert_eq!(pkts[1].1, LinkType::RAW);
            assert_eq!(pkts[1].2, b"raw-ip");
            assert_eq!(pkts[1].3, 100);
            assert_eq!(pkts[2].0, Timestamp::from_parts(5, 500_000_000));
            assert_eq!(pkts[2].1, LinkType::LINUX_SLL);
            let s = src.summary();
            assert_eq!(s.format.as_deref(), Some("pcapng"));
            assert_eq!(s.link_types, vec!["ethernet", "raw", "linux_sll"]);
            assert_eq!((s.packets, s.bytes), (3, 12));
        }
    }

    #[test]
    fn pcapng_sections_switch_byte_order_and_reset_interfaces() {
        let mut b = PcapNgBuilder::new(false);
        b.interface(1, 65535, None, None);
        b.enhanced(0, 1, b"le", 2);
        b.section(true);
        b.interface(229, 65535, None, None);
        b.enhanced(0, 2, b"be", 2);
        b.simple(b"spb-data", 8);
        let (pkts, err) = read_all(&mut source(b.bytes).unwrap());
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts.len(), 3);
        assert_eq!(pkts[0].1, LinkType::ETHERNET);
        assert_eq!(pkts[1].1, LinkType::IPV6);
        assert_eq!(pkts[1].2, b"be");
        // A simple packet: interface 0 of its section, the time of the packet before.
        assert_eq!(pkts[2].1, LinkType::IPV6);
        assert_eq!(pkts[2].2, b"spb-data");
        assert_eq!(pkts[2].0, Timestamp::from_micros(2));
    }

    #[test]
    fn simple_packet_block_respects_snaplen_and_padding() {
        let mut b = PcapNgBuilder::new(false);
        b.interface(1, 4, None, None);
        b.simple(b"abcdef", 6);
        b.simple(b"xy", 2);
        let (pkts, err) = read_all(&mut source(b.bytes).unwrap());
        assert!(err.is_none());
        assert_eq!(pkts[0].2, b"abcd");
        assert_eq!(pkts[0].3, 6);
        assert_eq!(pkts[1].2, b"xy");
    }

    #[test]
    fn pcapng_packet_without_interface_is_corrupt() {
        let mut b = PcapNgBuilder::new(false);
        b.interface(1, 65535, None, None);
        b.enhanced(0, 1, b"ok", 2);
        let bad_at = b.bytes.len() as u64;
        b.enhanced(3, 1, b"orphan", 6);
        let (pkts, err) = read_all(&mut source(b.bytes).unwrap());
        assert_eq!(pkts.len(), 1);
        match err {
            Some(CaptureError::Corrupt { offset, reason, .. }) => {
                assert_eq!(offset, bad_at);
                assert!(reason.contains("interface 3"));
            }
            other => panic!("expected corrupt, got {other:?}"),
        }
    }

    #[test]
    fn pcapng_bad_block_lengths_are_corrupt() {
        // Leading length not a multiple of 4.
        let mut b = PcapNgBuilder::new(false);
        b.interface(1, 65535, None, None);
        let at = b.bytes.len();
        b.enhanced(0, 1, b"data", 4);
        b.bytes[at + 4] = b.bytes[at + 4].wrapping_add(1);
        let (pkts, err) = read_all(&mut source(b.bytes.clone()).unwrap());
        assert!(pkts.is_empty());
        assert!(matches!(err, Some(CaptureError::Corrupt { offset, .. }) if offset == at as u64));
        // Trailing length differs.
        let mut b = PcapNgBuilder::new(false);
        b.interface(1, 65535, None, None);
        b.enhanced(0, 1, b"data", 4);
        let n = b.bytes.len();
        b.bytes[n - 4] ^= 0x40;
        let (_, err) = read_all(&mut source(b.bytes).unwrap());
        assert!(
            matches!(err, Some(CaptureError::Corrupt { reason, .. }) if reason.contains("trailing"))
        );
        // Captured length beyond the block.
        let mut b = PcapNgBuilder::new(false);
        b.interface(1, 65535, None, None);
        let at = b.bytes.len();
        b.enhanced(0, 1, b"data", 4);
        b.bytes[at + 20..at + 24].copy_from_slice(&400u32.to_le_bytes());
        let (_, err) = read_all(&mut source(b.bytes).unwrap());
        assert!(
            matches!(err, Some(CaptureError::Corrupt { reason, .. }) if reason.contains("captured length"))
        );
    }

    #[test]
    fn pcapng_truncated_block_is_truncated() {
        let mut b = PcapNgBuilder::new(true);
        b.interface(1, 65535, None, None);
        b.enhanced(0, 1, b"complete", 8);
        let at = b.bytes.len() as u64;
        b.enhanced(0, 2, b"cut short", 9);
        b.bytes.truncate(b.bytes.len() - 5);
        let (pkts, err) = read_all(&mut source(b.bytes).unwrap());
        assert_eq!(pkts.len(), 1);
        assert!(matches!(err, Some(CaptureError::Truncated { offset, .. }) if offset == at));
    }

    #[test]
    fn invalid_tsresol_is_noted_and_micros_assumed() {
        let mut b = PcapNgBuilder::new(false);
        b.interface(1, 65535, Some(0x80 | 90), None);
        b.enhanced(0, 3, b"x", 1);
        let mut src = source(b.bytes).unwrap();
        let (pkts, err) = read_all(&mut src);
        assert!(err.is_none());
        assert_eq!(pkts[0].0, Timestamp::from_micros(3));
        assert_eq!(src.summary().errors.len(), 1);
    }

    #[test]
    fn resolution_decoding() {
        assert_eq!(TsResolution::from_option(6), Some(TsResolution::MICROS));
        assert_eq!(TsResolution::from_option(9), Some(TsResolution::NANOS));
        assert_eq!(
            TsResolution::from_option(0x80 | 10).map(|r| r.units_per_sec),
            Some(1024)
        );
        assert_eq!(TsResolution::from_option(20), None);
        assert_eq!(
            TsResolution::from_option(3).unwrap().timestamp(1_500, -1),
            Timestamp::from_parts(0, 500_000_000)
        );
    }

    #[test]
    fn record_larger_than_read_buffer_is_read_whole() {
        let big = vec![0xabu8; READ_BUFFER_LEN + 12_345];
        let mut b = PcapBuilder::new(false, false, 1, 0);
        b.packet(1, 0, b"small", 5);
        b.packet(2, 0, &big, big.len() as u32);
        b.packet(3, 0, b"after", 5);
        let (pkts, err) = read_all(&mut source(b.bytes).unwrap());
        assert!(err.is_none());
        assert_eq!(pkts.len(), 3);
        assert_eq!(pkts[1].2.len(), big.len());
        assert_eq!(pkts[2].2, b"after");
    }

    #[test]
    fn streams_in_small_reads() {
        /// A reader that hands out at most 3 bytes per call.
        struct Trickle(io::Cursor<Vec<u8>>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(3);
                self.0.read(&mut buf[..n])
            }
        }
        let mut b = PcapNgBuilder::new(false);
        b.interface(1, 65535, None, None);
        for i in 0..50u8 {
            b.enhanced(0, u64::from(i), &[i; 37], 37);
        }
        let mut src =
            FileSource::from_reader("trickle", Box::new(Trickle(io::Cursor::new(b.bytes))))
                .unwrap();
        let (pkts, err) = read_all(&mut src);
        assert!(err.is_none());
        assert_eq!(pkts.len(), 50);
        assert_eq!(pkts[49].2, vec![49u8; 37]);
    }

    /// Corpus captures (skipped when the corpus is absent) read with the packet counts tshark reports.
    #[test]
    fn corpus_packet_counts_match_manifest() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
        let Ok(manifest) = std::fs::read_to_string(root.join("MANIFEST.tsv")) else {
            eprintln!("corpus absent; skipped");
            return;
        };
        let mut checked = 0;
        for line in manifest.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (Some(path), Some(link), Some(packets), Some(features)) =
                (cols.first(), cols.get(7), cols.get(8), cols.get(11))
            else {
                continue;
            };
            let wanted =
                features.contains("pcapng") || features.contains("gzip") || *link == "null";
            if !wanted {
                continue;
            }
            let expected: u64 = packets.parse().unwrap();
            let mut src = FileSource::open(&root.join(path)).unwrap();
            let (pkts, err) = read_all(&mut src);
            assert!(err.is_none(), "{path}: {err:?}");
            assert_eq!(pkts.len() as u64, expected, "{path}");
            assert_eq!(src.summary().packets, expected);
            if *link == "null" {
                assert_eq!(src.summary().link_types, vec!["null"], "{path}");
            }
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} corpus files checked");
    }

    proptest::proptest! {
        /// Mutated captures never panic: every read ends in packets, then the end or one error.
        #[test]
        fn mutated_captures_never_panic(
            ng in proptest::bool::ANY,
            flips in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..6),
            cut in 0usize..400,
        ) {
            let mut bytes = if ng {
                let mut b = PcapNgBuilder::new(false);
                b.interface(1, 65535, Some(9), Some(1));
                for i in 0..5u8 {
                    b.enhanced(0, u64::from(i), &[i; 30], 30);
                }
                b.simple(b"simple", 6);
                b.bytes
            } else {
                let mut b = PcapBuilder::new(true, false, 1, 65535);
                for i in 0..5u8 {
                    b.packet(u32::from(i), 0, &[i; 30], 30);
                }
                b.bytes
            };
            for (at, flip) in flips {
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= flip;
                }
            }
            bytes.truncate(bytes.len().saturating_sub(cut));
            if let Ok(mut src) = source(bytes) {
                let (pkts, _) = read_all(&mut src);
                proptest::prop_assert!(pkts.len() <= 6);
            }
        }
    }
}
