//! The TLS observer from fuzzer bytes: an options byte, then stream operations (see
//! [`crate::session`]) fed to `TlsObserver`. Bit 0 of the options picks implicit TLS (else
//! STARTTLS), bit 1 says the server's side started it.

use crate::input::Reader;
use crate::session::{StreamOp, Timed, check_equivalent, new_record, parse_ops, stamp, start_ts};
use mailsift::limits::Limits;
use mailsift::proto::tls::TlsObserver;
use mailsift::session::{Direction, Protocol, TlsMode};
use serde_json::Value;

/// Largest TLS record body (2^14 plus expansion), as the record reader accepts it.
const MAX_RECORD_BODY: u64 = (1 << 14) + 2048;

fn drive(mode: TlsMode, first: Direction, ops: &[Timed<'_>], input_len: usize) -> Value {
    let limits = Limits::default();
    let mut rec = new_record(Protocol::Smtp, &limits);
    let mut last = start_ts();
    let mut observer = TlsObserver::start(mode, first, last, &mut rec);
    for (ts, op) in ops {
        let ts = *ts;
        last = last.max(ts);
        match *op {
            StreamOp::Data(dir, bytes) => observer.on_data(dir, bytes, ts, &mut rec),
            StreamOp::Gap(dir, len) => observer.on_gap(dir, len, ts, &mut rec),
            StreamOp::Fin(_) => {}
        }
    }
    observer.finish(last.plus_secs(1), &mut rec);
    // Ordered as the engine orders every finished record.
    rec.events.sort_by_key(|e| (e.ts, e.from));
    rec.anomalies
        .sort_by(|a, b| (a.ts, a.from, &a.kind).cmp(&(b.ts, b.from, &b.kind)));
    let tls = rec
        .tls
        .as_ref()
        .expect("TLS state set when the observer starts");
    let mut seen = [0u64; 2];
    let mut missing = [0u64; 2];
    for (_, op) in ops {
        match *op {
            StreamOp::Data(dir, b) => seen[dir.index()] += b.len() as u64,
            StreamOp::Gap(dir, len) => missing[dir.index()] += len,
            StreamOp::Fin(_) => {}
        }
    }
    for dir in [Direction::Client, Direction::Server] {
        let i = dir.index();
        assert_eq!(
            *tls.encrypted_bytes.get(dir),
            seen[i],
            "every TLS byte is counted once"
        );
        // application_data_bytes adds up record lengths from their headers: beyond the bytes
        // seen it may only count gaps and the unseen rest of the last record.
        let app = *tls.handshake.application_data_bytes.get(dir);
        assert!(
            app <= seen[i].saturating_add(missing[i]) + MAX_RECORD_BODY,
            "{app} application data bytes from {} seen and {} missing",
            seen[i],
            missing[i]
        );
    }
    crate::check::record(&rec, &limits, input_len)
}

/// Observes one input as sent and in the variants that may not change the record.
pub fn run(data: &[u8]) {
    let mut r = Reader::new(data);
    let options = r.u8().unwrap_or(0);
    let mode = if options & 1 != 0 {
        TlsMode::Implicit
    } else {
        TlsMode::Starttls
    };
    let first = if options & 2 != 0 {
        Direction::Server
    } else {
        Direction::Client
    };
    let ops = stamp(&parse_ops(&mut r));
    check_equivalent(&ops, &mut |variant| drive(mode, first, variant, data.len()));
}
