//! The mailsift command line: arguments in, library calls, tables or JSON out, an exit code.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use mailsift::capture::InputSummary;
use mailsift::engine::{self, EngineConfig, EngineStats, PortMap, SessionSink};
use mailsift::findings::{DEFAULT_BRUTE_FORCE_THRESHOLD, RunFinding};
use mailsift::limits::Limits;
use mailsift::output::hashcat::{HashcatSummary, HashcatWriter, mode_name};
use mailsift::output::json::{DocumentWriter, NdjsonWriter};
use mailsift::output::review::{Review, ReviewOptions, ReviewReport};
use mailsift::output::table::SessionTable;
use mailsift::session::{MessageBlob, SessionRecord, Severity};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Turns network captures into readable, trustworthy accounts of SMTP and POP3 traffic.
#[derive(Parser)]
#[command(name = "mailsift", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse capture files and print tables of what happened.
    Analyze(AnalyzeArgs),
    /// Analyse capture files and write sessions as JSON.
    Export(ExportArgs),
    /// Capture from a network interface (reserved for the live-capture work).
    Sniff(SniffArgs),
}

#[derive(Args)]
struct InputArgs {
    /// Capture files (pcap, pcapng, optionally gzip-compressed), analysed as one capture in order.
    #[arg(required = true, value_name = "CAPTURE")]
    captures: Vec<PathBuf>,
    /// Map another server port to a protocol, e.g. `smtp=2525`, `pop3s=1995` (repeatable).
    #[arg(long = "port", value_name = "PROTO=PORT")]
    ports: Vec<String>,
    /// Only analyse packets matching this BPF capture filter (libpcap syntax).
    #[arg(long, value_name = "FILTER")]
    bpf: Option<String>,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Args)]
struct LimitArgs {
    /// Most TCP flows tracked at once.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_flows)]
    max_flows: usize,
    /// Seconds of capture time after which an idle flow is finished.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().flow_idle_timeout_secs)]
    idle_timeout: u64,
    /// Bytes of a message kept for decoding and extraction (it is hashed in full regardless).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_message_bytes)]
    max_message_bytes: usize,
}

/// Exit status when `--fail-on` is given and a finding reaches its severity.
const EXIT_FINDINGS: u8 = 3;

/// A finding severity on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
enum SeverityArg {
    Info,
    Low,
    Medium,
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

#[derive(Args)]
struct ReviewArgs {
    /// Write crackable challenge-response exchanges (CRAM-MD5, APOP, NTLM) as hashcat input
    /// lines to FILE; the modes are listed on standard error.
    #[arg(long, value_name = "FILE", conflicts_with = "redact")]
    hashcat: Option<PathBuf>,
    /// Mask passwords, tokens and challenge responses in every output.
    #[arg(long)]
    redact: bool,
    /// Exit with status 3 when a finding of this severity or higher exists.
    #[arg(long, value_name = "SEVERITY", value_enum)]
    fail_on: Option<SeverityArg>,
    /// Failed logins from one client IP that make a brute-force finding.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BRUTE_FORCE_THRESHOLD,
          value_parser = clap::value_parser!(u64).range(1..))]
    brute_force_threshold: u64,
}

impl ReviewArgs {
    fn review(&self, tables: bool) -> Result<Review> {
        let review = Review::new(ReviewOptions {
            redact: self.redact,
            brute_force_threshold: self.brute_force_threshold,
            tables,
        });
        Ok(match &self.hashcat {
            None => review,
            Some(path) => {
                let w = HashcatWriter::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                review.with_hashcat(w)
            }
        })
    }

    /// Reports the hashcat file on standard error; a write failure is an error.
    fn report_hashcat(&self, outcome: Option<io::Result<HashcatSummary>>) -> Result<()> {
        let (Some(path), Some(outcome)) = (&self.hashcat, outcome) else {
            return Ok(());
        };
        let summary = outcome.with_context(|| format!("cannot write {}", path.display()))?;
        let path = path.display();
        if summary.total() == 0 {
            print_error(&format!(
                "hashcat: no crackable challenge-response exchange; {path} is empty"
            ));
            return Ok(());
        }
        let modes: Vec<String> = summary
            .lines_per_mode
            .iter()
            .map(|(mode, n)| format!("{n} for -m {mode} ({})", mode_name(*mode)))
            .collect();
        print_error(&format!(
            "hashcat: {} lines in {path}: {}",
            summary.total(),
            modes.join(", ")
        ));
        Ok(())
    }

    fn fails(&self, report: &ReviewReport) -> bool {
        self.fail_on.is_some_and(|s| report.fails(s.into()))
    }
}

#[derive(Args)]
struct AnalyzeArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    review: ReviewArgs,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    review: ReviewArgs,
    /// Write JSON here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// One session object per line instead of one document.
    #[arg(long)]
    ndjson: bool,
}

#[derive(Args)]
struct SniffArgs {
    /// Interface to capture on.
    #[arg(short, long, value_name = "IFACE")]
    interface: Option<String>,
}

fn config_from(input: &InputArgs) -> Result<EngineConfig> {
    let mut ports = PortMap::default();
    for spec in &input.ports {
        ports.add_spec(spec)?;
    }
    let limits = Limits {
        max_flows: input.limits.max_flows,
        flow_idle_timeout_secs: input.limits.idle_timeout,
        max_message_bytes: input.limits.max_message_bytes,
        ..Limits::default()
    };
    Ok(EngineConfig { limits, ports })
}

/// Where finished sessions go for one command.
enum JsonOut {
    None,
    Document(DocumentWriter<Box<dyn Write>>),
    Ndjson(NdjsonWriter<Box<dyn Write>>),
}

struct CliSink {
    table: Option<SessionTable>,
    json: JsonOut,
    /// First write error; later sessions are dropped once output failed.
    error: Option<io::Error>,
    /// Sees every session first (findings, hashcat, redaction).
    review: Review,
}

impl SessionSink for CliSink {
    fn session(&mut self, mut rec: SessionRecord) {
        self.review.session(&mut rec);
        if let Some(t) = self.table.as_mut() {
            t.add(&rec);
        }
        if self.error.is_some() {
            return;
        }
        let r = match &mut self.json {
            JsonOut::None => Ok(()),
            JsonOut::Document(w) => w.session(&rec),
            JsonOut::Ndjson(w) => w.session(&rec),
        };
        if let Err(e) = r {
            self.error = Some(e);
        }
    }

    fn message_bytes(&mut self, _rec: &SessionRecord, _blob: MessageBlob) {}
}

fn print_error(line: &str) {
    eprintln!("mailsift: {line}");
}

fn run_inputs(input: &InputArgs, sink: &mut CliSink) -> Result<engine::RunSummary> {
    let config = config_from(input)?;
    let mut filter = engine::build_filter(input.bpf.as_deref())?;
    let summary = engine::run_files(&input.captures, config, &mut filter, sink, &mut |e| {
        print_error(e)
    });
    Ok(summary)
}

fn finish_json(
    json: JsonOut,
    inputs: &[InputSummary],
    stats: &EngineStats,
    run_findings: Vec<RunFinding>,
) -> io::Result<()> {
    match json {
        JsonOut::None => Ok(()),
        JsonOut::Document(mut w) => {
            w.run_findings(run_findings);
            w.finish(inputs, stats).map(|_| ())
        }
        JsonOut::Ndjson(mut w) => {
            w.run_findings(&run_findings)?;
            w.finish().map(|_| ())
        }
    }
}

/// Treats a closed pipe (`mailsift ... | head`) as a normal end.
fn ok_unless_real(r: io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn analyze(args: AnalyzeArgs) -> Result<ExitCode> {
    let mut sink = CliSink {
        table: Some(SessionTable::new()),
        json: JsonOut::None,
        error: None,
        review: args.review.review(true)?,
    };
    let summary = run_inputs(&args.input, &mut sink)?;
    let mut report = sink.review.finish();
    args.review.report_hashcat(report.hashcat.take())?;
    let mut out = io::stdout().lock();
    let mut table = sink.table.take().unwrap_or_default();
    let r = (|| -> io::Result<()> {
        writeln!(out, "Sessions ({})", table.len())?;
        writeln!(out, "{}", table.render())?;
        writeln!(
            out,
            "{} packets, {} mail packets, {} sessions, {} bytes missing",
            summary.stats.packets,
            summary.stats.mail_packets,
            summary.stats.sessions,
            summary.stats.reassembly.missing
        )?;
        if let Some(creds) = report.credentials.as_mut() {
            if creds.is_empty() {
                writeln!(out, "\nCredentials: none seen")?;
            } else {
                writeln!(
                    out,
                    "\nCredentials ({} attempts in {} rows)",
                    creds.attempts(),
                    creds.len()
                )?;
                writeln!(out, "{}", creds.render())?;
                if creds.not_shown() > 0 {
                    writeln!(out, "({} more attempts not shown)", creds.not_shown())?;
                }
            }
        }
        if let Some(findings) = report.findings.as_mut() {
            if findings.is_empty() {
                writeln!(out, "\nFindings: none")?;
            } else {
                writeln!(out, "\nFindings ({})", findings.summary())?;
                writeln!(out, "{}", findings.render())?;
                if findings.not_shown() > 0 {
                    writeln!(out, "({} more findings not shown)", findings.not_shown())?;
                }
            }
        }
        out.flush()
    })();
    ok_unless_real(r)?;
    Ok(exit_code(&summary, args.review.fails(&report)))
}

fn export(args: ExportArgs) -> Result<ExitCode> {
    let out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout())),
    };
    let json = if args.ndjson {
        JsonOut::Ndjson(NdjsonWriter::new(out))
    } else {
        JsonOut::Document(DocumentWriter::new(out)?)
    };
    let mut sink = CliSink {
        table: None,
        json,
        error: None,
        review: args.review.review(false)?,
    };
    let summary = run_inputs(&args.input, &mut sink)?;
    let mut report = sink.review.finish();
    args.review.report_hashcat(report.hashcat.take())?;
    let fails = args.review.fails(&report);
    if let Some(e) = sink.error.take() {
        ok_unless_real(Err(e))?;
        return Ok(exit_code(&summary, fails));
    }
    ok_unless_real(finish_json(
        sink.json,
        &summary.inputs,
        &summary.stats,
        report.run_findings,
    ))?;
    Ok(exit_code(&summary, fails))
}

/// 1 when no input could be read, else 3 when `--fail-on` was reached, else 0.
fn exit_code(summary: &engine::RunSummary, findings_fail: bool) -> ExitCode {
    if !summary.any_input_read() {
        print_error("no input could be read");
        ExitCode::FAILURE
    } else if findings_fail {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

fn sniff(args: SniffArgs) -> Result<ExitCode> {
    let _ = args.interface;
    bail!("live capture is not available yet; analyse a capture file with `mailsift analyze`")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(a) => analyze(a),
        Command::Export(a) => export(a),
        Command::Sniff(a) => sniff(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            print_error(&format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}
