//! The progress line on standard error while a run reads its inputs: bytes read of the
//! total, rate, sessions and ETA for files; packets and sessions for a live capture.
//!
//! The run only publishes counters (`mailsift::progress`); a thread of its own reads them a
//! few times a second and draws with indicatif, so the run never waits on the terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use mailsift::output::table::plural;
use mailsift::progress::Progress;
use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// A run shorter than this shows nothing: a line that flashes and vanishes is noise.
const DELAY: Duration = Duration::from_secs(1);
/// How often the line is redrawn, and (in hertz) the most indicatif redraws it.
const TICK: Duration = Duration::from_millis(250);
const REDRAWS_PER_SECOND: u8 = 4;

/// What the line measures.
#[derive(Debug, Clone, Copy)]
pub enum Measure {
    /// Capture files, with their total size on disk when every one has a known size.
    Files {
        /// Bytes of all inputs, for the percentage and the ETA.
        total: Option<u64>,
    },
    /// A live capture, which has no end to estimate.
    // Only `sniff` measures it, and a build without `live` has no `sniff`.
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    Live,
}

/// The progress line of one run; dropping it stops and clears the line.
pub struct ProgressLine {
    counters: Option<Arc<Progress>>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressLine {
    /// Starts the line when `enabled` (the caller checks `--quiet` and the terminals);
    /// otherwise a line that shows nothing and has no counters for the run to update.
    pub fn start(measure: Measure, enabled: bool) -> ProgressLine {
        if !enabled {
            return ProgressLine {
                counters: None,
                stop: None,
                thread: None,
            };
        }
        let counters = Progress::shared();
        let (stop, stopped) = mpsc::channel();
        let shown = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || draw(&shown, measure, &stopped))
            .ok();
        ProgressLine {
            counters: thread.as_ref().map(|_| counters),
            stop: Some(stop),
            thread,
        }
    }

    /// The counters for the run to publish into, when the line is shown.
    pub fn counters(&self) -> Option<Arc<Progress>> {
        self.counters.clone()
    }

    /// Stops the line and clears it, before the run's results are printed.
    pub fn finish(self) {}
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread, which clears the line and ends.
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The drawing thread: waits out [`DELAY`], then follows the counters until stopped.
fn draw(counters: &Arc<Progress>, measure: Measure, stopped: &mpsc::Receiver<()>) {
    let started = std::time::Instant::now();
    if stopped.recv_timeout(DELAY) != Err(RecvTimeoutError::Timeout) {
        return;
    }
    let target = ProgressDrawTarget::stderr_with_hz(REDRAWS_PER_SECOND);
    let total = match measure {
        Measure::Files { total } => total,
        Measure::Live => None,
    };
    let bar = ProgressBar::with_draw_target(total, target);
    bar.set_elapsed(started.elapsed());
    let template = if total.is_some() {
        "{line} [{wide_bar}]"
    } else {
        "{spinner} {line}"
    };
    // The text is made from the bar's own state when it is drawn, so the bar and the text
    // always show the same moment.
    let sessions = Arc::clone(counters);
    let line = move |state: &ProgressState, out: &mut dyn fmt::Write| {
        let text = match measure {
            Measure::Files { total } => {
                files_line(state.pos(), total, state.elapsed(), sessions.sessions())
            }
            Measure::Live => live_line(state.pos(), sessions.sessions(), state.elapsed()),
        };
        let _ = out.write_str(&text);
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.with_key("line", line).progress_chars("=> "));
    }
    // With a ticker installed, only the ticker draws (a few times a second).
    bar.enable_steady_tick(TICK);
    loop {
        bar.set_position(match measure {
            Measure::Files { .. } => counters.bytes_read(),
            Measure::Live => counters.packets(),
        });
        if stopped.recv_timeout(TICK) != Err(RecvTimeoutError::Timeout) {
            break;
        }
    }
    bar.finish_and_clear();
}

/// The text for files: `12.0 MiB of 48.0 MiB (25%), 6.0 MiB/s, 3 sessions, ETA 6s`.
pub fn files_line(read: u64, total: Option<u64>, elapsed: Duration, sessions: u64) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { read as f64 / secs } else { 0.0 };
    let sessions = plural(sessions, "session", "sessions");
    let rate_text = format!("{}/s", bytes_text(rate as u64));
    match total {
        Some(total) if total > 0 => {
            let done = read.min(total);
            let percent = done * 100 / total;
            let eta = if rate > 0.0 {
                duration_text(((total - done) as f64 / rate).ceil() as u64)
            } else {
                "?".to_string()
            };
            format!(
                "{} of {} ({percent}%), {rate_text}, {sessions}, ETA {eta}",
                bytes_text(read),
                bytes_text(total)
            )
        }
        _ => format!("{}, {rate_text}, {sessions}", bytes_text(read)),
    }
}

/// The text for a live capture: `1200 packets (400/s), 3 sessions, 3s`.
pub fn live_line(packets: u64, sessions: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        packets as f64 / secs
    } else {
        0.0
    };
    format!(
        "{} ({:.0}/s), {}, {}",
        plural(packets, "packet", "packets"),
        rate,
        plural(sessions, "session", "sessions"),
        duration_text(elapsed.as_secs())
    )
}

/// Bytes in binary units with one decimal: `512 B`, `1.5 KiB`, `2.0 GiB`.
fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).unwrap_or(&"PiB"))
}

/// Whole seconds as `42s`, `3m07s` or `2h05m`.
fn duration_text(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn files_show_share_rate_sessions_and_time_left() {
        let line = files_line(12 * MIB, Some(48 * MIB), Duration::from_secs(2), 3);
        assert_eq!(
            line,
            "12.0 MiB of 48.0 MiB (25%), 6.0 MiB/s, 3 sessions, ETA 6s"
        );
    }

    #[test]
    fn an_unknown_total_has_no_share_and_no_eta() {
        let line = files_line(1536, None, Duration::from_secs(1), 1);
        assert_eq!(line, "1.5 KiB, 1.5 KiB/s, 1 session");
    }

    #[test]
    fn nothing_read_yet_has_an_unknown_eta() {
        let line = files_line(0, Some(MIB), Duration::ZERO, 0);
        assert_eq!(line, "0 B of 1.0 MiB (0%), 0 B/s, 0 sessions, ETA ?");
    }

    #[test]
    fn long_waits_read_as_minutes_or_hours() {
        assert_eq!(duration_text(187), "3m07s");
        assert_eq!(duration_text(7500), "2h05m");
        // 1 MiB/s with 10 GiB left: hours, not a count of seconds.
        let line = files_line(
            MIB * 100,
            Some(10 * 1024 * MIB),
            Duration::from_secs(100),
            0,
        );
        assert!(line.ends_with("ETA 2h49m"), "{line}");
    }

    #[test]
    fn a_live_capture_shows_packets_their_rate_and_sessions() {
        assert_eq!(
            live_line(1200, 3, Duration::from_secs(3)),
            "1200 packets (400/s), 3 sessions, 3s"
        );
    }
}
