//! What each command accepts, with clap's derive: the doc comments are the `--help` texts.
//!
//! Values are checked here, while parsing, so a bad one (a `--port` mapping, a `--bpf`
//! expression) is a command-line error with exit status 2 before any file is opened.

use super::help;
use clap::{Args, Parser, Subcommand};
use mailsift::capture::gunzip::GunzipLimit;
use mailsift::engine::PortMap;
use mailsift::findings::DEFAULT_BRUTE_FORCE_THRESHOLD;
use mailsift::limits::Limits;
use mailsift::mail::HashSelection;
use mailsift::output::table::ColorChoice;
use mailsift::session::Severity;
use std::path::PathBuf;

/// Turns network captures into readable, trustworthy accounts of SMTP and POP3 traffic.
#[derive(Parser)]
#[command(name = "mailsift", version = help::VERSION, about, max_term_width = 100,
          after_help = help::MAIN)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Analyze capture files and print tables of what happened.
    #[command(visible_alias = "analyse", after_help = help::ANALYZE)]
    Analyze(OfflineArgs),
    /// Analyze capture files and write sessions as JSON.
    #[command(after_help = help::EXPORT)]
    Export(OfflineArgs),
    /// Print chosen sessions in full as text: header, transcript, credentials, messages.
    #[command(after_help = help::SHOW)]
    Show(ShowArgs),
    /// Capture live from a network interface and report sessions as they end.
    #[command(after_help = help::SNIFF)]
    Sniff(SniffArgs),
    /// Print a shell completion script to standard output.
    #[command(after_help = help::COMPLETIONS)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output, or write one page per command.
    #[command(after_help = help::MAN)]
    Man {
        /// Write mailsift.1 and one mailsift-COMMAND.1 per command into DIR instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `analyze` and `export`: the same options; they differ in what they write by default.
#[derive(Args)]
pub struct OfflineArgs {
    /// The captures and how to read them.
    #[command(flatten)]
    pub input: InputArgs,
    /// Findings, credentials, hashcat.
    #[command(flatten)]
    pub review: ReviewArgs,
    /// Where and in which form the results go.
    #[command(flatten)]
    pub output: OutputArgs,
    /// The progress line.
    #[command(flatten)]
    pub progress: ProgressArgs,
}

/// `show`: the input and review options of `analyze`, and the sessions to print.
#[derive(Args)]
pub struct ShowArgs {
    /// The captures and how to read them.
    #[command(flatten)]
    pub input: InputArgs,
    /// Findings, credentials, hashcat.
    #[command(flatten)]
    pub review: ReviewArgs,
    /// The session to print: its id as the tables and the JSON `id` give it, or its uid as
    /// the HTML report, Zeek logs and ECS give it (`C` and the id in base 62) (repeatable).
    #[arg(long = "session", value_name = "ID", required = true, value_parser = parse_session)]
    pub sessions: Vec<u64>,
    /// Write the transcripts here instead of standard output (`-` is standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The progress line.
    #[command(flatten)]
    pub progress: ProgressArgs,
}

/// The progress line shared by `analyze`, `export`, `show` and `sniff`.
#[derive(Args)]
pub struct ProgressArgs {
    /// Do not show progress on standard error (it is shown only when standard error is a
    /// terminal and the run lasts more than a second).
    #[arg(short, long)]
    pub quiet: bool,
}

/// The capture files and how to read them.
#[derive(Args)]
pub struct InputArgs {
    /// Capture files (pcap, pcapng, optionally gzip-compressed), analyzed as one capture in order.
    #[arg(
        value_name = "CAPTURE",
        required_unless_present = "read",
        conflicts_with = "read"
    )]
    pub captures: Vec<PathBuf>,
    /// Read this capture file, as tcpdump and tshark do (repeatable; instead of CAPTURE...).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Vec<PathBuf>,
    /// Map another server port to a protocol, e.g. `smtp=2525`, `pop3s=1995` (repeatable).
    #[arg(long = "port", value_name = "PROTO=PORT", value_parser = parse_port)]
    pub ports: Vec<String>,
    /// Only analyze packets matching this BPF capture filter (libpcap syntax; needs a build
    /// with the `live` feature).
    #[arg(long, value_name = "FILTER", value_parser = parse_bpf)]
    pub bpf: Option<String>,
    /// Write every message (.eml) and attachment into a new run folder under DIR, with a manifest.json.
    #[arg(long, value_name = "DIR")]
    pub extract: Option<PathBuf>,
    /// Do not look for SMTP and POP3 by content on ports other than 25, 110, 465, 587, 995 and
    /// those given with --port (by default mail is found on any TCP port).
    #[arg(long)]
    pub no_detect: bool,
    /// Analyze only shard K of N (K from 0 to N-1): the flows whose symmetric hash falls to
    /// it; every shard reads all inputs, and the N outputs together are the single run's.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<mailsift::net::flow::Shard>,
    /// Also report connections that carried no payload either way (SYNs, refused or half-open
    /// connections); by default they are only counted (stats.empty_sessions).
    #[arg(long)]
    pub empty_sessions: bool,
    /// NSS key log file (SSLKEYLOGFILE format) with TLS secrets: sessions whose keys it holds
    /// are decrypted and dissected like clear text (repeatable).
    #[arg(long = "keylog", value_name = "FILE")]
    pub keylogs: Vec<PathBuf>,
    /// Threads decoding messages beside the one reading packets (default: one per core);
    /// 1 does everything on one thread. The output is the same for any number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Resource limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl InputArgs {
    /// The files to read: the positional ones, or those given with `-r` (clap allows one kind).
    pub fn files(&self) -> &[PathBuf] {
        if self.captures.is_empty() {
            &self.read
        } else {
            &self.captures
        }
    }
}

/// Bounds on what one run may hold or expand.
#[derive(Args)]
pub struct LimitArgs {
    /// Most TCP flows tracked at once.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_flows)]
    pub max_flows: usize,
    /// Seconds of capture time after which an idle flow is finished.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().flow_idle_timeout_secs)]
    pub idle_timeout: u64,
    /// Content hashes of parts and attachments, comma-separated: md5, sha1, sha256, or none
    /// (the message's own SHA-256 is always computed; --extract computes all three).
    #[arg(long, value_name = "LIST", default_value = "sha256", value_parser = parse_hashes)]
    pub hashes: HashSelection,
    /// Stop reading a .gz capture once it has expanded past 1 GiB and past N times the
    /// compressed bytes read (0: no limit); what was read before is kept.
    #[arg(long, value_name = "N", default_value_t = GunzipLimit::default().max_ratio)]
    pub max_gunzip_ratio: u64,
}

/// What goes to standard output (or `-o`): the same values for every command.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tables of sessions, SMTP, POP3, messages, credentials and findings.
    Table,
    /// One JSON document: sessions, inputs, stats, run findings.
    Json,
    /// One JSON session per line, then the run findings.
    Ndjson,
    /// Elastic Common Schema events, one per line.
    Ecs,
    /// Each session as text: header, transcript, credentials, messages, findings.
    Transcript,
}

/// `--format`, with the older one-word spellings kept working.
#[derive(Args)]
pub struct FormatArgs {
    /// What to write (default: table for analyze and sniff, json for export).
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub format: Option<Format>,
    /// The same as `--format ndjson`.
    #[arg(long, conflicts_with_all = ["format", "ecs"])]
    pub ndjson: bool,
    /// The same as `--format ecs`.
    #[arg(long, conflicts_with = "format")]
    pub ecs: bool,
}

impl FormatArgs {
    /// The format asked for, if any.
    pub fn chosen(&self) -> Option<Format> {
        match (self.format, self.ndjson, self.ecs) {
            (Some(f), _, _) => Some(f),
            (None, true, _) => Some(Format::Ndjson),
            (None, false, true) => Some(Format::Ecs),
            (None, false, false) => None,
        }
    }
}

/// Where the results of `analyze` and `export` go.
#[derive(Args)]
pub struct OutputArgs {
    /// The main output's form.
    #[command(flatten)]
    pub format: FormatArgs,
    /// Write the main output here instead of standard output (`-` is standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write Zeek-style logs (smtp.log, pop3.log, mail_files.log, credentials.log,
    /// findings.log) into DIR; for export alone (no --format or -o), instead of the JSON.
    #[arg(long, value_name = "DIR")]
    pub zeek: Option<PathBuf>,
    /// Also write a self-contained HTML report (summary, findings, credentials, sessions with
    /// transcripts and messages) to FILE; for export alone, instead of the JSON.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Do not fit the tables to the terminal: every column and row kept, full timestamps.
    #[arg(long)]
    pub wide: bool,
    /// Colour severities in the tables: `auto` (on a terminal, unless NO_COLOR is set),
    /// `always`, `never`.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

impl OutputArgs {
    /// Whether export's JSON goes out: unless only report files were asked for.
    pub fn export_streams(&self) -> bool {
        self.format.chosen().is_some()
            || self.output.is_some()
            || (self.zeek.is_none() && self.html.is_none())
    }
}

/// A finding severity on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SeverityArg {
    /// Informational and up: every finding.
    Info,
    /// Low and up.
    Low,
    /// Medium and up.
    Medium,
    /// High only.
    High,
}

impl From<SeverityArg> for Severity {
    fn from(s: SeverityArg) -> Severity {
        match s {
            SeverityArg::Info => Severity::Info,
            SeverityArg::Low => Severity::Low,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::High => Severity::High,
        }
    }
}

/// Findings, credentials and what is done with secrets.
#[derive(Args)]
pub struct ReviewArgs {
    /// Write crackable challenge-response exchanges (CRAM-MD5, APOP, NTLM) as hashcat input
    /// lines to FILE; the modes are listed on standard error.
    #[arg(long, value_name = "FILE", conflicts_with = "redact")]
    pub hashcat: Option<PathBuf>,
    /// Mask passwords, tokens and challenge responses in every output.
    #[arg(long)]
    pub redact: bool,
    /// Exit with status 3 when a finding of this severity or higher exists.
    #[arg(long, value_name = "SEVERITY", value_enum)]
    pub fail_on: Option<SeverityArg>,
    /// Failed logins from one client IP that make a brute-force finding.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BRUTE_FORCE_THRESHOLD,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub brute_force_threshold: u64,
}

/// `sniff`'s options.
#[derive(Args)]
pub struct SniffArgs {
    /// Content hashes of parts and attachments, as for `export` (default: sha256).
    #[arg(long, value_name = "LIST", default_value = "sha256", value_parser = parse_hashes)]
    pub hashes: HashSelection,
    /// Do not look for SMTP and POP3 by content on unmapped ports.
    #[arg(long)]
    pub no_detect: bool,
    /// Also report connections that carried no payload either way (by default only counted).
    #[arg(long)]
    pub empty_sessions: bool,
    /// NSS key log file with TLS secrets, re-read as clients append to it: sessions whose keys
    /// it holds are decrypted live (repeatable).
    #[arg(long = "keylog", value_name = "FILE")]
    pub keylogs: Vec<PathBuf>,
    /// Interface to capture on (default: libpcap's default device; see --list-interfaces).
    #[arg(short, long, value_name = "IFACE")]
    pub interface: Option<String>,
    /// List the interfaces that can be captured on, and exit.
    #[arg(long)]
    pub list_interfaces: bool,
    /// Map another server port to a protocol, e.g. `smtp=2525` (repeatable).
    #[arg(long = "port", value_name = "PROTO=PORT", value_parser = parse_port)]
    pub ports: Vec<String>,
    /// Only capture packets matching this BPF filter (applied in the kernel).
    #[arg(long, value_name = "FILTER", value_parser = parse_bpf)]
    pub bpf: Option<String>,
    /// Stop after this many packets.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// Also save the packets captured to FILE as pcap, as `tcpdump -w` does (owner-readable
    /// only: it holds whatever passwords it saw); it takes its name when the capture stops.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// What to print: tables when the capture stops (table, the default), or each session as
    /// it ends (ndjson, ecs); json writes one document, closed when the capture stops.
    #[command(flatten)]
    pub format: FormatArgs,
    /// Do not put the interface into promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,
    /// Bytes kept of each packet.
    #[arg(long, value_name = "BYTES", default_value_t = 262_144)]
    pub snaplen: u32,
    /// The kernel's capture buffer, e.g. `64M` or `1G` (default 64M: half a second of a
    /// saturated 1 Gbit/s link). Packets wait there until the capture thread copies them into
    /// a queue of up to 256 MiB for analysis.
    #[cfg(feature = "live")]
    #[arg(long, value_name = "BYTES", value_parser = kernel_buffer_size)]
    pub buffer_size: Option<usize>,
    /// Findings, credentials, hashcat.
    #[command(flatten)]
    pub review: ReviewArgs,
    /// The progress line.
    #[command(flatten)]
    pub progress: ProgressArgs,
}

/// Parses `--hashes`: a comma-separated list of md5, sha1 and sha256 (or `none`).
fn parse_hashes(text: &str) -> Result<HashSelection, String> {
    let mut sel = HashSelection::NONE;
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.to_ascii_lowercase().as_str() {
            "md5" => sel.md5 = true,
            "sha1" | "sha-1" => sel.sha1 = true,
            "sha256" | "sha-256" => sel.sha256 = true,
            "none" => {}
            other => return Err(format!("unknown hash {other:?} (known: md5, sha1, sha256)")),
        }
    }
    Ok(sel)
}

/// Checks `--port` as the engine will read it, so a bad mapping is a command-line error.
/// Parses `--session`: a session id, or a uid such as `C3D`.
fn parse_session(text: &str) -> Result<u64, String> {
    text.parse()
        .ok()
        .or_else(|| mailsift::output::naming::session_id_of_uid(text))
        .ok_or_else(|| {
            format!(
                "\"{text}\" is neither a session id (a number) nor a uid (C and base-62 digits)"
            )
        })
}

/// Parses `--shard K/N`: two whole numbers with K below N.
fn parse_shard(text: &str) -> Result<mailsift::net::flow::Shard, String> {
    let bad = || format!("\"{text}\" is not K/N with K from 0 to N-1 (for example 0/4)");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (index, count): (u32, u32) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(mailsift::net::flow::Shard { index, count })
}

fn parse_port(text: &str) -> Result<String, String> {
    PortMap::default()
        .add_spec(text)
        .map(|()| text.to_string())
        .map_err(|e| e.to_string())
}

/// Compiles `--bpf` once while parsing, so a typo is a command-line error.
#[cfg(feature = "live")]
fn parse_bpf(text: &str) -> Result<String, String> {
    mailsift::engine::build_filter(Some(text))
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

/// Without libpcap no filter can be compiled, however well written.
#[cfg(not(feature = "live"))]
fn parse_bpf(_text: &str) -> Result<String, String> {
    Err(super::errors::NO_LIVE.to_string())
}

/// `--buffer-size`: a byte count libpcap accepts (an `int`).
#[cfg(feature = "live")]
fn kernel_buffer_size(text: &str) -> Result<usize, String> {
    let n = mailsift::capture::live::parse_byte_size(text)?;
    if n == 0 || i32::try_from(n).is_err() {
        return Err(format!("{text:?}: must be from 1 byte to 2047M"));
    }
    Ok(n)
}
