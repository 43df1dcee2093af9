//! Exit statuses, and errors turned into one line that says what failed and what to do.

use std::fmt;

/// Exit status when no input could be read, an output failed, or live capture failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status of a command line that cannot work, as clap gives for its own errors.
pub const EXIT_USAGE: u8 = 2;
/// Exit status when `--fail-on` is given and a finding reaches its severity.
pub const EXIT_FINDINGS: u8 = 3;

/// What a build without libpcap says when asked for what needs it.
#[cfg(not(feature = "live"))]
pub const NO_LIVE: &str = "this build has no live capture or BPF filters: build with \
    `cargo build --release --features live` (it needs libpcap, e.g. `apt-get install libpcap-dev`)";

/// A command line that parsed but cannot work; it exits with [`EXIT_USAGE`], like clap's own.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The exit status for an error that ended a command.
pub fn exit_status(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<UsageError>().is_some() {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

/// The error of a run in which no input could be read; each file's own error came before it.
pub fn no_input() -> anyhow::Error {
    anyhow::anyhow!(
        "no input could be read (see the error for each file above), so nothing was written"
    )
}

/// A live-capture error with its remedy: how to get the right to capture, or which
/// interfaces exist.
#[cfg(feature = "live")]
pub fn live(e: mailsift::capture::CaptureError) -> anyhow::Error {
    use mailsift::capture::CaptureError;
    use mailsift::capture::live::LiveSource;
    match e {
        CaptureError::LivePermission { .. } => {
            let exe = std::env::current_exe()
                .map_or_else(|_| "mailsift".to_string(), |p| p.display().to_string());
            anyhow::anyhow!(
                "{e}: run as root (sudo), or let this binary capture: \
                 sudo setcap cap_net_raw,cap_net_admin=eip {exe}"
            )
        }
        CaptureError::NoSuchDevice { .. } => match LiveSource::list_devices() {
            Ok(list) if !list.is_empty() => {
                let names: Vec<String> = list.into_iter().map(|d| d.name).collect();
                anyhow::anyhow!(
                    "{e}: the interfaces here are {} (`mailsift sniff --list-interfaces` \
                     describes them)",
                    names.join(", ")
                )
            }
            _ => anyhow::anyhow!("{e}: `mailsift sniff --list-interfaces` lists the interfaces"),
        },
        other => anyhow::Error::new(other),
    }
}
