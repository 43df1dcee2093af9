//! The export is byte-identical whatever the number of threads.

mod common;

use common::*;
use mailsift::capture::workload::Workload;
use mailsift::engine::{self, EngineConfig, SessionSink};
use mailsift::output::json::DocumentWriter;
use mailsift::session::SessionRecord;
use std::path::PathBuf;

/// The export document's bytes for `paths`, analysed with `threads` threads.
fn export_bytes(paths: &[PathBuf], config: EngineConfig, threads: usize) -> Vec<u8> {
    struct Doc(Option<DocumentWriter<Vec<u8>>>);
    impl SessionSink for Doc {
        fn session(&mut self, rec: SessionRecord) {
            if let Some(w) = self.0.as_mut() {
                w.session(&rec).unwrap();
            }
        }
    }
    let mut doc = Doc(Some(DocumentWriter::new(Vec::new()).unwrap()));
    let summary =
        engine::run_files_threaded(paths, config, threads, &mut None, &mut doc, &mut |_| {});
    doc.0
        .take()
        .unwrap()
        .finish(&summary.inputs, &summary.stats)
        .unwrap()
}

fn assert_same_for_1_2_3_threads(paths: &[PathBuf], config: EngineConfig) {
    let one = export_bytes(paths, config.clone(), 1);
    assert!(one.len() > 100);
    for threads in [2, 3] {
        let many = export_bytes(paths, config.clone(), threads);
        assert!(
            one == many,
            "{paths:?}: export with {threads} threads differs from one thread"
        );
    }
}

#[test]
fn every_bundled_capture_exports_the_same_with_1_2_and_3_threads() {
    for capture in bundled_captures() {
        assert_same_for_1_2_3_threads(std::slice::from_ref(&capture), EngineConfig::default());
    }
}

#[test]
fn all_bundled_captures_as_one_run_export_the_same_with_1_2_and_3_threads() {
    assert_same_for_1_2_3_threads(&bundled_captures(), EngineConfig::default());
}

#[test]
fn a_synthetic_mixed_capture_exports_the_same_with_1_2_and_3_threads() {
    let dir = std::env::temp_dir().join(format!("mailsift-threads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mixed.pcap");
    let workload = Workload {
        target_bytes: 3 << 20,
        other_percent: 50,
        seed: 3,
    };
    std::fs::write(&path, workload.to_bytes()).unwrap();
    assert_same_for_1_2_3_threads(std::slice::from_ref(&path), EngineConfig::default());
    // Small limits: sessions end by eviction and MIME walks stop at their limits, on every
    // thread count.
    let mut config = EngineConfig::default();
    config.limits.max_flows = 5;
    config.limits.mime.max_parts = 2;
    config.limits.mime.max_body_bytes = 100;
    assert_same_for_1_2_3_threads(std::slice::from_ref(&path), config);
    // Every flow idle at each sweep: sessions end by timeout in the middle of their messages.
    let mut config = EngineConfig::default();
    config.limits.flow_idle_timeout_secs = 0;
    assert_same_for_1_2_3_threads(std::slice::from_ref(&path), config);
    std::fs::remove_dir_all(&dir).unwrap();
}
