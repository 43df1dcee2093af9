//! Live capture from a network interface through libpcap (feature `live`).
//!
//! A capture thread does nothing but read packets from libpcap and copy them into a bounded
//! [queue](super::queue); the engine reads them from there through [`PacketSource`], like a
//! file's. So the time the engine spends on a packet (dissecting, decoding a message, writing
//! a line) is never time in which libpcap's kernel ring goes unread. When the engine falls
//! behind for longer than the queue lasts, the capture thread drops packets and counts them
//! ([`CaptureStats::queue_dropped`]), apart from those the kernel drops.
//!
//! The handle is non-blocking and an empty read sleeps briefly: libpcap's own read timeout
//! does not fire on a quiet Linux interface (TPACKET_V3 waits for a block), and a stop flag
//! (set by Ctrl-C, for instance) must end the capture promptly. On a stop the packets already
//! queued are still analysed.

use super::queue::{self, Batch, Consumer, Next, Producer};
use super::{CaptureError, InputSummary, LinkType, Packet, PacketSource, SourceItem};
use crate::time::Timestamp;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use super::queue::QueueLimits;

/// libpcap's buffering timeout: how long the kernel may hold packets before handing them over.
const READ_TIMEOUT_MS: i32 = 200;

/// Pause after an empty non-blocking read; short enough to add no visible latency.
const IDLE_SLEEP: std::time::Duration = std::time::Duration::from_millis(5);

/// How long a quiet interface waits before an idle tick lets ended sessions be reported.
const IDLE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// The kernel buffer requested by default (`sniff --buffer-size`): 64 MiB, about half a
/// second of a saturated 1 Gbit/s link. The capture thread only has to be scheduled within
/// that time, which it is even on a busy machine; longer stalls of the engine are the
/// queue's to absorb.
pub const DEFAULT_KERNEL_BUFFER_BYTES: usize = 64 << 20;

/// How a capture is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOptions {
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// Whether to put the interface into promiscuous mode.
    pub promisc: bool,
    /// A BPF filter applied in the kernel.
    pub bpf: Option<String>,
    /// The kernel's capture buffer (libpcap's buffer size); at most `i32::MAX`.
    pub kernel_buffer_bytes: usize,
    /// How much captured traffic may wait for the engine.
    pub queue: QueueLimits,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            snaplen: 262_144,
            promisc: true,
            bpf: None,
            kernel_buffer_bytes: DEFAULT_KERNEL_BUFFER_BYTES,
            queue: QueueLimits::default(),
        }
    }
}

/// Reads a byte count such as `65536`, `512K`, `64M` or `1G` (binary multiples; `KiB`, `MB` and
/// the like are read the same way).
pub fn parse_byte_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let number: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count like 65536, 512K, 64M or 1G"))?;
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{text:?}: unknown unit (use K, M or G)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// What a capture saw and lost; complete once the source has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets read from libpcap, whether queued or dropped for a full queue.
    pub captured: u64,
    /// Packets dropped because the queue to the engine was full.
    pub queue_dropped: u64,
    /// Packets the kernel dropped for want of buffer space (libpcap's `ps_drop`), if known.
    pub kernel_dropped: Option<u64>,
    /// Packets the interface or its driver dropped (libpcap's `ps_ifdrop`), if known.
    pub interface_dropped: Option<u64>,
    /// The most packets waiting in the queue at once.
    pub queue_peak_packets: usize,
    /// The most bytes waiting in the queue at once.
    pub queue_peak_bytes: usize,
    /// The queue's bounds.
    pub queue_limits: QueueLimits,
}

/// An interface libpcap can capture on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The name to pass to [`LiveSource::open`].
    pub name: String,
    /// libpcap's description, if it has one.
    pub description: Option<String>,
    /// The interface's addresses.
    pub addresses: Vec<IpAddr>,
}

/// How the capture thread ended, left for the engine's side.
#[derive(Debug, Default)]
struct CaptureEnd {
    captured: u64,
    kernel: Option<pcap::Stat>,
    error: Option<String>,
}

/// The capture handle before the first read, then the thread reading it.
enum Reader {
    Ready(Box<pcap::Capture<pcap::Active>>, QueueLimits),
    Running {
        queue: Consumer,
        thread: std::thread::JoinHandle<()>,
        end: Arc<Mutex<CaptureEnd>>,
    },
    Ended,
}

/// Packets captured from a network interface.
pub struct LiveSource {
    device: String,
    reader: Reader,
    link: LinkType,
    stop: Arc<AtomicBool>,
    /// Packets after which the capture ends by itself (`sniff --count`), if any.
    packet_limit: Option<u64>,
    /// The batch being read, and the index of its next packet.
    batch: Option<Batch>,
    next_in_batch: usize,
    finished: bool,
    /// When the last packet or idle tick was handed out.
    last_activity: Instant,
    summary: InputSummary,
    stats: CaptureStats,
}

/// Sorts a failure to open `device`: a refused permission and a missing interface each have
/// their own remedy, which the command line tells. libpcap gives only a message, not its code.
fn open_error(device: &str, e: &pcap::Error) -> CaptureError {
    let reason = e.to_string();
    let lower = reason.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        return CaptureError::LivePermission {
            device: device.to_string(),
            reason,
        };
    }
    let listed = pcap::Device::list()
        .ok()
        .map(|list| list.iter().any(|d| d.name == device));
    if lower.contains("no such device") || listed == Some(false) {
        return CaptureError::NoSuchDevice {
            device: device.to_string(),
            reason,
        };
    }
    CaptureError::Live {
        device: device.to_string(),
        reason,
    }
}

impl LiveSource {
    /// Starts capturing on `device`, keeping `snaplen` bytes per packet, with an optional BPF
    /// filter, and the default kernel buffer and queue.
    pub fn open(
        device: &str,
        snaplen: u32,
        promisc: bool,
        bpf: Option<&str>,
    ) -> Result<LiveSource, CaptureError> {
        LiveSource::open_with(
            device,
            &LiveOptions {
                snaplen,
                promisc,
                bpf: bpf.map(str::to_string),
                ..LiveOptions::default()
            },
        )
    }

    /// Starts capturing on `device` as `options` say. The kernel buffers packets from now on;
    /// the capture thread starts with the first read.
    pub fn open_with(device: &str, options: &LiveOptions) -> Result<LiveSource, CaptureError> {
        let live_error = |reason: String| CaptureError::Live {
            device: device.to_string(),
            reason,
        };
        let buffer = i32::try_from(options.kernel_buffer_bytes).map_err(|_| {
            live_error(format!(
                "kernel buffer of {} bytes is too large (at most {})",
                options.kernel_buffer_bytes,
                i32::MAX
            ))
        })?;
        let pcap_error = |e: pcap::Error| open_error(device, &e);
        let mut capture = pcap::Capture::from_device(device)
            .map_err(pcap_error)?
            .snaplen(i32::try_from(options.snaplen).unwrap_or(i32::MAX))
            .promisc(options.promisc)
            .timeout(READ_TIMEOUT_MS)
            .buffer_size(buffer)
            .open()
            .map_err(pcap_error)?
            .setnonblock()
            .map_err(pcap_error)?;
        if let Some(expr) = &options.bpf {
            capture
                .filter(expr, true)
                .map_err(|e| CaptureError::Filter {
                    filter: expr.to_string(),
                    reason: e.to_string(),
                })?;
        }
        // libpcap reports a DLT_ value; for the link types decoded they equal the LINKTYPE_
        // numbers, except DLT_RAW, which is 12 (or 14) and read as raw IP all the same.
        let link = LinkType(u32::try_from(capture.get_datalink().0).unwrap_or(u32::MAX));
        let summary = InputSummary {
            path: device.to_string(),
            format: Some("live".into()),
            link_types: vec![link.name()],
            ..InputSummary::default()
        };
        Ok(LiveSource {
            device: device.to_string(),
            reader: Reader::Ready(Box::new(capture), options.queue),
            link,
            stop: Arc::new(AtomicBool::new(false)),
            packet_limit: None,
            batch: None,
            next_in_batch: 0,
            finished: false,
            last_activity: Instant::now(),
            summary,
            stats: CaptureStats {
                captured: 0,
                queue_dropped: 0,
                kernel_dropped: None,
                interface_dropped: None,
                queue_peak_packets: 0,
                queue_peak_bytes: 0,
                queue_limits: options.queue,
            },
        })
    }

    /// Uses `flag` (for example one set by a Ctrl-C handler) to end the capture.
    pub fn with_stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = flag;
        self
    }

    /// Ends the capture after `count` packets were captured; it then ends through the same
    /// path as a stop, which notes the packets the kernel dropped.
    pub fn with_packet_limit(mut self, count: u64) -> Self {
        self.packet_limit = Some(count);
        self
    }

    /// The flag that ends the capture when set; the packets already queued are still read,
    /// then `next_packet` returns `Ok(None)`.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// The link type of the interface.
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// Packets captured and lost so far; the kernel's figures come once the source has ended.
    pub fn capture_stats(&self) -> CaptureStats {
        match &self.reader {
            Reader::Running { queue, .. } => CaptureStats {
                queue_dropped: queue.dropped(),
                queue_peak_packets: queue.peak().0,
                queue_peak_bytes: queue.peak().1,
                ..self.stats
            },
            Reader::Ready(..) | Reader::Ended => self.stats,
        }
    }

    /// Interfaces libpcap can capture on.
    pub fn list_devices() -> Result<Vec<DeviceInfo>, CaptureError> {
        let devices = pcap::Device::list().map_err(|e| CaptureError::Live {
            device: "(device list)".into(),
            reason: e.to_string(),
        })?;
        Ok(devices
            .into_iter()
            .map(|d| DeviceInfo {
                name: d.name,
                description: d.desc,
                addresses: d.addresses.into_iter().map(|a| a.addr).collect(),
            })
            .collect())
    }

    /// Starts the capture thread, if it has not started.
    fn start(&mut self) -> Result<(), String> {
        let Reader::Ready(..) = self.reader else {
            return Ok(());
        };
        let Reader::Ready(capture, limits) = std::mem::replace(&mut self.reader, Reader::Ended)
        else {
            return Ok(());
        };
        let (producer, consumer) = queue::queue(limits);
        let end = Arc::new(Mutex::new(CaptureEnd::default()));
        let (stop, limit, thread_end) =
            (Arc::clone(&self.stop), self.packet_limit, Arc::clone(&end));
        let thread = std::thread::Builder::new()
            .name("mailsift-capture".into())
            .spawn(move || capture_loop(*capture, producer, &stop, limit, &thread_end))
            .map_err(|e| format!("cannot start the capture thread: {e}"))?;
        self.reader = Reader::Running {
            queue: consumer,
            thread,
            end,
        };
        Ok(())
    }

    /// Ends the capture once the queue is read through; returns the capture thread's error.
    fn finish(&mut self) -> Option<String> {
        self.finished = true;
        let Reader::Running { queue, thread, end } =
            std::mem::replace(&mut self.reader, Reader::Ended)
        else {
            return None;
        };
        let queue_dropped = queue.dropped();
        (self.stats.queue_peak_packets, self.stats.queue_peak_bytes) = queue.peak();
        drop(queue);
        let panicked = thread.join().is_err();
        let mut end = std::mem::take(&mut *end.lock().unwrap_or_else(|p| p.into_inner()));
        if panicked {
            end.error = Some("the capture thread panicked".into());
        }
        self.stats_from(&end);
        self.stats.queue_dropped = queue_dropped;
        end.error
    }

    fn stats_from(&mut self, end: &CaptureEnd) {
        self.stats.captured = end.captured;
        if let Some(stat) = end.kernel {
            self.stats.kernel_dropped = Some(u64::from(stat.dropped));
            self.stats.interface_dropped = Some(u64::from(stat.if_dropped));
        }
    }
}

/// The capture thread: reads packets and queues copies until stopped, at the packet limit, or
/// when libpcap fails; then notes libpcap's drop counters in `end` and closes the queue.
fn capture_loop(
    mut capture: pcap::Capture<pcap::Active>,
    mut queue: Producer,
    stop: &AtomicBool,
    limit: Option<u64>,
    end: &Mutex<CaptureEnd>,
) {
    let mut captured = 0u64;
    let mut error = None;
    loop {
        if stop.load(Ordering::Relaxed)
            || queue.abandoned()
            || limit.is_some_and(|limit| captured >= limit)
        {
            break;
        }
        match capture.next_packet() {
            Ok(p) => {
                captured += 1;
                let tv = p.header.ts;
                // time_t and suseconds_t are not i64 on every platform.
                #[allow(clippy::useless_conversion)]
                let ts = Timestamp(
                    i64::from(tv.tv_sec)
                        .saturating_mul(1_000_000_000)
                        .saturating_add(i64::from(tv.tv_usec).saturating_mul(1_000)),
                );
                queue.push(ts, p.header.len, p.data);
            }
            Err(pcap::Error::TimeoutExpired) => {
                // Nothing waiting in the kernel: hand over what was copied, then nap.
                queue.flush();
                std::thread::sleep(IDLE_SLEEP);
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    let kernel = capture.stats().ok();
    *end.lock().unwrap_or_else(|p| p.into_inner()) = CaptureEnd {
        captured,
        kernel,
        error,
    };
    queue.close();
}

/// What one step of the capture loop produced, without borrowing the source.
enum Step {
    /// The packet at this index of the current batch.
    Packet(usize),
    Idle(Timestamp),
    End,
}

impl LiveSource {
    /// Waits for the next packet, or for an idle tick when none came for [`IDLE_TICK`].
    fn step(&mut self, ticks: bool) -> Result<Step, CaptureError> {
        loop {
            if self.finished {
                return Ok(Step::End);
            }
            if let Some(batch) = &self.batch
                && self.next_in_batch < batch.len()
            {
                let i = self.next_in_batch;
                self.next_in_batch += 1;
                return Ok(Step::Packet(i));
            }
            if let Err(reason) = self.start() {
                self.finished = true;
                return self.ended(Some(reason));
            }
            let Reader::Running { queue, .. } = &mut self.reader else {
                let error = self.finish();
                return self.ended(error);
            };
            let deadline = ticks.then(|| self.last_activity + IDLE_TICK);
            match queue.next(self.batch.take(), deadline) {
                Next::Batch(batch) => {
                    self.last_activity = Instant::now();
                    self.summary.packets += batch.len() as u64;
                    self.summary.bytes += batch.bytes() as u64;
                    self.next_in_batch = 0;
                    self.batch = Some(batch);
                }
                Next::Timeout => {
                    self.last_activity = Instant::now();
                    return Ok(Step::Idle(wall_clock()));
                }
                Next::Closed => {
                    let error = self.finish();
                    return self.ended(error);
                }
            }
        }
    }

    fn ended(&self, error: Option<String>) -> Result<Step, CaptureError> {
        match error {
            None => Ok(Step::End),
            Some(reason) => Err(CaptureError::Live {
                device: self.device.clone(),
                reason,
            }),
        }
    }

    fn packet(&self, i: usize) -> Option<Packet<'_>> {
        let (ts, orig_len, data) = self.batch.as_ref()?.get(i)?;
        Some(Packet {
            ts,
            link: self.link,
            data,
            orig_len,
        })
    }
}

impl Drop for LiveSource {
    /// Stops the capture thread of a source dropped before its end.
    fn drop(&mut self) {
        self.finish();
    }
}

/// The current time as a capture timestamp: libpcap stamps packets with the same clock.
fn wall_clock() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX))
}

impl PacketSource for LiveSource {
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        match self.step(false)? {
            Step::Packet(i) => Ok(self.packet(i)),
            Step::Idle(_) | Step::End => Ok(None),
        }
    }

    fn next_item(&mut self) -> Result<Option<SourceItem<'_>>, CaptureError> {
        match self.step(true)? {
            Step::Packet(i) => Ok(self.packet(i).map(SourceItem::Packet)),
            Step::Idle(ts) => Ok(Some(SourceItem::Idle(ts))),
            Step::End => Ok(None),
        }
    }

    fn summary(&self) -> InputSummary {
        self.summary.clone()
    }

    fn note_error(&mut self, message: String) {
        self.summary.errors.push(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::net::decode::{Decoded, Decoder};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    #[test]
    fn byte_sizes_take_binary_suffixes() {
        assert_eq!(parse_byte_size("65536"), Ok(65536));
        assert_eq!(parse_byte_size("512K"), Ok(512 << 10));
        assert_eq!(parse_byte_size("64M"), Ok(64 << 20));
        assert_eq!(parse_byte_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_byte_size("1g"), Ok(1 << 30));
        assert!(parse_byte_size("").is_err());
        assert!(parse_byte_size("M").is_err());
        assert!(parse_byte_size("12X").is_err());
        assert!(parse_byte_size("-1").is_err());
        assert!(parse_byte_size("99999999999999999999G").is_err());
    }

    #[test]
    fn a_kernel_buffer_too_large_for_libpcap_is_refused() {
        let options = LiveOptions {
            kernel_buffer_bytes: usize::MAX,
            ..LiveOptions::default()
        };
        let err = LiveSource::open_with("lo", &options)
            .err()
            .expect("rejected");
        assert!(
            matches!(err, CaptureError::Live { ref reason, .. } if reason.contains("too large"))
        );
    }

    #[test]
    fn unknown_device_is_named_as_such() {
        let err = LiveSource::open("no-such-interface0", 65535, false, None)
            .err()
            .expect("rejected");
        assert!(
            // Without the right to capture, libpcap fails before it looks for the device.
            matches!(err, CaptureError::NoSuchDevice { ref device, .. }
                | CaptureError::LivePermission { ref device, .. } if device == "no-such-interface0")
        );
    }

    #[test]
    fn devices_can_be_listed() {
        let devices = LiveSource::list_devices().expect("device list");
        assert!(devices.iter().all(|d| !d.name.is_empty()));
    }

    /// Opens the loopback interface, or explains why the test cannot run here.
    fn open_loopback(filter: Option<&str>) -> Option<LiveSource> {
        match LiveSource::open("lo", 65535, false, filter) {
            Ok(src) => Some(src),
            Err(CaptureError::Filter { .. }) => panic!("filter rejected"),
            Err(e) => {
                eprintln!("cannot capture on lo ({e}); skipped");
                None
            }
        }
    }

    #[test]
    fn stop_flag_ends_the_capture() {
        let Some(mut src) = open_loopback(Some("tcp port 9")) else {
            return;
        };
        let flag = src.stop_flag();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            flag.store(true, Ordering::Relaxed);
        });
        let started = Instant::now();
        assert!(matches!(src.next_packet(), Ok(None)));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(src.next_packet(), Ok(None)));
        stopper.join().unwrap();
        assert_eq!(src.summary().format.as_deref(), Some("live"));
    }

    #[test]
    fn packet_limit_ends_the_capture() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let filter = format!("tcp port {port}");
        let Some(src) = open_loopback(Some(&filter)) else {
            return;
        };
        let mut src = src.with_packet_limit(2);
        let flag = src.stop_flag();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        // The handshake alone is three packets; a stuck capture is stopped after 5 s.
        let client = std::thread::spawn(move || {
            let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let _ = listener.accept();
            if finished.recv_timeout(Duration::from_secs(5)).is_err() {
                flag.store(true, Ordering::Relaxed);
            }
            drop(s);
        });
        let started = Instant::now();
        let mut packets = 0;
        while let Ok(Some(_)) = src.next_packet() {
            packets += 1;
        }
        let _ = done.send(());
        assert_eq!(packets, 2);
        assert!(started.elapsed() < Duration::from_secs(4));
        assert_eq!(src.summary().packets, 2);
        assert!(matches!(src.next_packet(), Ok(None)));
        let stats = src.capture_stats();
        assert_eq!((stats.captured, stats.queue_dropped), (2, 0));
        assert_eq!(stats.kernel_dropped, Some(0));
        client.join().unwrap();
    }

    #[test]
    fn bad_filter_is_a_filter_error() {
        if open_loopback(None).is_none() {
            return;
        }
        let err = LiveSource::open("lo", 65535, false, Some("tcp port nonsense"))
            .err()
            .expect("rejected");
        assert!(matches!(err, CaptureError::Filter { .. }));
    }

    #[test]
    fn captures_and_decodes_loopback_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let filter = format!("tcp port {port}");
        let Some(mut src) = open_loopback(Some(&filter)) else {
            return;
        };
        let flag = src.stop_flag();
        let client = std::thread::spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let _ = listener.accept();
            let _ = s.write_all(b"HELO live\r\n");
            // Give the capture up to five seconds, but stop waiting once it saw the line.
            let deadline = Instant::now() + Duration::from_secs(5);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            flag.store(true, Ordering::Relaxed);
        });
        let mut decoder = Decoder::new(&Limits::default());
        let mut saw_payload = false;
        while let Ok(Some(pkt)) = src.next_packet() {
            if let Ok(Decoded::Tcp(seg)) = decoder.decode(&pkt) {
                assert!(seg.src_port == port || seg.dst_port == port);
                if seg.payload == b"HELO live\r\n" {
                    saw_payload = true;
                    src.stop_flag().store(true, Ordering::Relaxed);
                }
            }
        }
        client.join().unwrap();
        assert!(saw_payload);
        assert!(src.summary().packets >= 3);
    }
}
