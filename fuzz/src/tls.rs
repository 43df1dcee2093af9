//! The TLS observer from fuzzer bytes: an options byte, then stream operations (see
//! [`crate::session`]) fed to `TlsObserver`. Bit 0 of the options picks implicit TLS (else
//! STARTTLS), bit 1 says the server's side started it.

use crate::input::Reader;
use crate::session::{OwnedOp, StreamOp, fixed_ts, merge_data, new_record, parse_ops};
use mailsift::limits::Limits;
use mailsift::proto::tls::TlsObserver;
use mailsift::session::{Direction, Protocol, TlsMode};
use serde_json::Value;

fn drive(mode: TlsMode, first: Direction, ops: &[StreamOp<'_>], input_len: usize) -> Value {
    let limits = Limits::default();
    let mut rec = new_record(Protocol::Smtp, &limits);
    let ts = fixed_ts();
    let mut observer = TlsObserver::start(mode, first, ts, &mut rec);
    for op in ops {
        match *op {
            StreamOp::Data(dir, bytes) => observer.on_data(dir, bytes, ts, &mut rec),
            StreamOp::Gap(dir, len) => observer.on_gap(dir, len, ts, &mut rec),
            StreamOp::Fin(_) => {}
        }
    }
    observer.finish(ts, &mut rec);
    let tls = rec
        .tls
        .as_ref()
        .expect("TLS state set when the observer starts");
    let seen: u64 = ops
        .iter()
        .map(|op| match op {
            StreamOp::Data(_, b) => b.len() as u64,
            _ => 0,
        })
        .sum();
    assert_eq!(
        tls.encrypted_bytes.client + tls.encrypted_bytes.server,
        seen,
        "every TLS byte is counted once"
    );
    let app = &tls.handshake.application_data_bytes;
    assert!(
        app.client <= tls.encrypted_bytes.client && app.server <= tls.encrypted_bytes.server,
        "more application data than bytes seen"
    );
    crate::check::record(&rec, &limits, input_len)
}

/// Observes one input as sent and with each side's consecutive data joined; both must agree.
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
    let ops = parse_ops(&mut r);
    let as_sent = drive(mode, first, &ops, data.len());
    let merged = merge_data(&ops);
    if merged.len() == ops.len() {
        return;
    }
    let merged_ops: Vec<StreamOp<'_>> = merged.iter().map(OwnedOp::as_op).collect();
    let joined = drive(mode, first, &merged_ops, data.len());
    if let Some(diff) = crate::check::first_difference(&as_sent, &joined) {
        panic!("TLS record depends on segment boundaries: {diff}");
    }
}
