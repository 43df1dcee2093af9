//! Live capture from a network interface through libpcap (feature `live`).
//!
//! The handle is non-blocking and an empty read sleeps briefly: libpcap's own read timeout
//! does not fire on a quiet Linux interface (TPACKET_V3 waits for a block), and a stop flag
//! (set by Ctrl-C, for instance) must end the capture promptly.

use super::{CaptureError, InputSummary, LinkType, Packet, PacketSource, SourceItem};
use crate::time::Timestamp;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// libpcap's buffering timeout: how long the kernel may hold packets before handing them over.
const READ_TIMEOUT_MS: i32 = 200;

/// Pause after an empty non-blocking read; short enough to add no visible latency.
const IDLE_SLEEP: std::time::Duration = std::time::Duration::from_millis(5);

/// How long a quiet interface waits before an idle tick lets ended sessions be reported.
const IDLE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Kernel buffer requested for the capture; a large one rides out bursts without drops.
const KERNEL_BUFFER_BYTES: i32 = 16 << 20;

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

/// Packets captured from a network interface.
pub struct LiveSource {
    device: String,
    capture: pcap::Capture<pcap::Active>,
    link: LinkType,
    stop: Arc<AtomicBool>,
    /// Packets after which the capture ends by itself (`sniff --count`), if any.
    packet_limit: Option<u64>,
    /// The current packet, copied out of libpcap's buffer: a borrow of the capture handle
    /// cannot be returned from inside the retry loop that timeouts need.
    packet: Vec<u8>,
    finished: bool,
    /// When the last packet or idle tick was handed out.
    last_activity: std::time::Instant,
    summary: InputSummary,
}

impl LiveSource {
    /// Starts capturing on `device`, keeping `snaplen` bytes per packet, with an optional BPF filter.
    pub fn open(
        device: &str,
        snaplen: u32,
        promisc: bool,
        bpf: Option<&str>,
    ) -> Result<LiveSource, CaptureError> {
        let live_error = |e: pcap::Error| CaptureError::Live {
            device: device.to_string(),
            reason: e.to_string(),
        };
        let mut capture = pcap::Capture::from_device(device)
            .map_err(live_error)?
            .snaplen(i32::try_from(snaplen).unwrap_or(i32::MAX))
            .promisc(promisc)
            .timeout(READ_TIMEOUT_MS)
            .buffer_size(KERNEL_BUFFER_BYTES)
            .open()
            .map_err(live_error)?
            .setnonblock()
            .map_err(live_error)?;
        if let Some(expr) = bpf {
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
            capture,
            link,
            stop: Arc::new(AtomicBool::new(false)),
            packet_limit: None,
            packet: Vec::new(),
            finished: false,
            last_activity: std::time::Instant::now(),
            summary,
        })
    }

    /// Uses `flag` (for example one set by a Ctrl-C handler) to end the capture.
    pub fn with_stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = flag;
        self
    }

    /// Ends the capture after `count` packets. Unlike wrapping the source in
    /// [`super::Take`], the capture then ends through the same path as a stop, which notes
    /// the packets the kernel dropped.
    pub fn with_packet_limit(mut self, count: u64) -> Self {
        self.packet_limit = Some(count);
        self
    }

    /// The flag that ends the capture when set; `next_packet` then returns `Ok(None)`.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// The link type of the interface.
    pub fn link_type(&self) -> LinkType {
        self.link
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

    /// Ends the capture, noting packets the kernel or interface dropped.
    fn finish(&mut self) {
        self.finished = true;
        if let Ok(stat) = self.capture.stats() {
            let lost = u64::from(stat.dropped) + u64::from(stat.if_dropped);
            if lost > 0 {
                self.summary.errors.push(format!(
                    "{}: {lost} packets dropped by the kernel or interface ({} buffer, {} interface)",
                    self.device, stat.dropped, stat.if_dropped
                ));
            }
        }
    }
}

/// What one step of the capture loop produced, without borrowing the source.
enum Step {
    Packet { ts: Timestamp, orig_len: u32 },
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
            let limit_reached = self
                .packet_limit
                .is_some_and(|limit| self.summary.packets >= limit);
            if limit_reached || self.stop.load(Ordering::Relaxed) {
                self.finish();
                return Ok(Step::End);
            }
            match self.capture.next_packet() {
                Ok(p) => {
                    let tv = p.header.ts;
                    // time_t and suseconds_t are not i64 on every platform.
                    #[allow(clippy::useless_conversion)]
                    let ts = Timestamp(
                        i64::from(tv.tv_sec)
                            .saturating_mul(1_000_000_000)
                            .saturating_add(i64::from(tv.tv_usec).saturating_mul(1_000)),
                    );
                    let orig_len = p.header.len;
                    self.packet.clear();
                    self.packet.extend_from_slice(p.data);
                    self.last_activity = std::time::Instant::now();
                    self.summary.packets += 1;
                    self.summary.bytes += self.packet.len() as u64;
                    return Ok(Step::Packet { ts, orig_len });
                }
                Err(pcap::Error::TimeoutExpired) => {
                    if ticks && self.last_activity.elapsed() >= IDLE_TICK {
                        self.last_activity = std::time::Instant::now();
                        return Ok(Step::Idle(wall_clock()));
                    }
                    std::thread::sleep(IDLE_SLEEP);
                }
                Err(pcap::Error::NoMorePackets) => {
                    self.finish();
                    return Ok(Step::End);
                }
                Err(e) => {
                    self.finish();
                    return Err(CaptureError::Live {
                        device: self.device.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    fn packet(&self, ts: Timestamp, orig_len: u32) -> Packet<'_> {
        Packet {
            ts,
            link: self.link,
            data: &self.packet,
            orig_len,
        }
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
            Step::Packet { ts, orig_len } => Ok(Some(self.packet(ts, orig_len))),
            Step::Idle(_) | Step::End => Ok(None),
        }
    }

    fn next_item(&mut self) -> Result<Option<SourceItem<'_>>, CaptureError> {
        match self.step(true)? {
            Step::Packet { ts, orig_len } => {
                Ok(Some(SourceItem::Packet(self.packet(ts, orig_len))))
            }
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
    fn unknown_device_is_a_live_error() {
        let err = LiveSource::open("no-such-interface0", 65535, false, None)
            .err()
            .expect("rejected");
        assert!(
            matches!(err, CaptureError::Live { ref device, .. } if device == "no-such-interface0")
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
