//! The mailsift command line: arguments in, library calls, tables or JSON out, an exit code.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use mailsift::capture::InputSummary;
use mailsift::capture::gunzip::GunzipLimit;
use mailsift::engine::{self, EngineConfig, EngineStats, PortMap, SessionSink};
use mailsift::findings::{DEFAULT_BRUTE_FORCE_THRESHOLD, RunFinding};
use mailsift::limits::Limits;
use mailsift::mail::HashSelection;
use mailsift::output::activity::ActivityTables;
use mailsift::output::ecs::EcsWriter;
use mailsift::output::extract::{ExtractError, Extractor};
use mailsift::output::file::{Access, AtomicFile};
use mailsift::output::hashcat::{HashcatSummary, HashcatWriter, mode_name};
use mailsift::output::html::{HtmlLimits, HtmlReport};
use mailsift::output::json::{DocumentWriter, NdjsonWriter};
use mailsift::output::review::{Review, ReviewOptions, ReviewReport};
use mailsift::output::table::report::{self, ReportParts};
use mailsift::output::table::{ColorChoice, SessionTable, Terminal, plural};
use mailsift::output::zeek::{LOG_FILES, ZeekLogs};
use mailsift::proto::tls::KeyStore;
use mailsift::session::{MessageBlob, SessionRecord, Severity};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc instead of the system allocator: MIME decoding allocates and frees many short-lived
/// buffers on several threads, and glibc's malloc spent about 8% of an export's CPU on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Capture live from a network interface and report sessions as they end.
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
    /// Write every message (.eml) and attachment into a new run folder under DIR, with a manifest.json.
    #[arg(long, value_name = "DIR")]
    extract: Option<PathBuf>,
    /// Do not look for SMTP and POP3 by content on ports other than 25, 110, 465, 587, 995 and
    /// those given with --port (by default mail is found on any TCP port).
    #[arg(long)]
    no_detect: bool,
    /// Also report connections that carried no payload either way (SYNs, refused or half-open
    /// connections); by default they are only counted (stats.empty_sessions).
    #[arg(long)]
    empty_sessions: bool,
    /// NSS key log file (SSLKEYLOGFILE format) with TLS secrets: sessions whose keys it holds
    /// are decrypted and dissected like clear text (repeatable).
    #[arg(long = "keylog", value_name = "FILE")]
    keylogs: Vec<PathBuf>,
    /// Threads decoding messages beside the one reading packets (default: one per core);
    /// 1 does everything on one thread. The output is the same for any number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
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
    /// Content hashes of parts and attachments, comma-separated: md5, sha1, sha256, or none
    /// (the message's own SHA-256 is always computed; --extract computes all three).
    #[arg(long, value_name = "LIST", default_value = "sha256", value_parser = parse_hashes)]
    hashes: HashSelection,
    /// Stop reading a .gz capture once it has expanded past 1 GiB and past N times the
    /// compressed bytes read (0: no limit); what was read before is kept.
    #[arg(long, value_name = "N", default_value_t = GunzipLimit::default().max_ratio)]
    max_gunzip_ratio: u64,
}

/// Parses `--hashes`: a comma-separated list of md5, sha1 and sha256 (or `none`).
fn parse_hashes(text: &str) -> std::result::Result<HashSelection, String> {
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
    /// The review, and the hashcat file to commit once it is written.
    fn review(&self, tables: bool) -> Result<(Review, Option<AtomicFile>)> {
        let review = Review::new(ReviewOptions {
            redact: self.redact,
            brute_force_threshold: self.brute_force_threshold,
            tables,
        });
        Ok(match &self.hashcat {
            None => (review, None),
            Some(path) => {
                let (w, file) = HashcatWriter::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                (review.with_hashcat(w), Some(file))
            }
        })
    }

    /// Puts the hashcat file in place and reports it on standard error; a write failure is
    /// an error (and leaves no file).
    fn report_hashcat(
        &self,
        outcome: Option<io::Result<HashcatSummary>>,
        file: Option<AtomicFile>,
    ) -> Result<()> {
        let (Some(path), Some(outcome), Some(file)) = (&self.hashcat, outcome, file) else {
            return Ok(());
        };
        let summary = outcome.with_context(|| format!("cannot write {}", path.display()))?;
        file.commit()
            .with_context(|| format!("cannot write {}", path.display()))?;
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
    /// Also write a self-contained HTML report (summary, findings, credentials, sessions
    /// with transcripts and messages) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Do not fit the tables to the terminal: every column and row kept, full timestamps.
    #[arg(long)]
    wide: bool,
    /// Colour severities: `auto` (on a terminal, unless NO_COLOR is set), `always`, `never`.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    review: ReviewArgs,
    /// Write the export here instead of standard output (`-` is standard output).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// What to write: one JSON document (default), one JSON session per line, or Elastic
    /// Common Schema events (one per line).
    #[arg(long, value_name = "FORMAT", value_enum)]
    format: Option<ExportFormat>,
    /// One session object per line instead of one document (the same as `--format ndjson`).
    #[arg(long, conflicts_with = "format")]
    ndjson: bool,
    /// Also write Zeek-style logs (smtp.log, pop3.log, mail_files.log, credentials.log,
    /// findings.log) into DIR; alone, it replaces the JSON on standard output.
    #[arg(long, value_name = "DIR")]
    zeek: Option<PathBuf>,
    /// Also write a self-contained HTML report to FILE; alone, it replaces the JSON on
    /// standard output.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

/// The formats `export` writes to standard output or `--output`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExportFormat {
    /// One JSON document: sessions, inputs, stats, run findings.
    Json,
    /// One JSON session per line, then the run findings.
    Ndjson,
    /// Elastic Common Schema events, one per line.
    Ecs,
}

impl ExportArgs {
    /// Whether the stream format goes out: unless only report files were asked for.
    fn streams(&self) -> bool {
        self.format.is_some()
            || self.ndjson
            || self.output.is_some()
            || (self.zeek.is_none() && self.html.is_none())
    }

    fn format(&self) -> ExportFormat {
        match (self.format, self.ndjson) {
            (Some(f), _) => f,
            (None, true) => ExportFormat::Ndjson,
            (None, false) => ExportFormat::Json,
        }
    }
}

#[derive(Args)]
struct SniffArgs {
    /// Content hashes of parts and attachments, as for `export` (default: sha256).
    #[arg(long, value_name = "LIST", default_value = "sha256", value_parser = parse_hashes)]
    hashes: HashSelection,
    /// Do not look for SMTP and POP3 by content on unmapped ports.
    #[arg(long)]
    no_detect: bool,
    /// Also report connections that carried no payload either way (by default only counted).
    #[arg(long)]
    empty_sessions: bool,
    /// NSS key log file with TLS secrets, re-read as clients append to it: sessions whose keys
    /// it holds are decrypted live (repeatable).
    #[arg(long = "keylog", value_name = "FILE")]
    keylogs: Vec<PathBuf>,
    /// Interface to capture on (default: libpcap's default device).
    #[arg(short, long, value_name = "IFACE")]
    interface: Option<String>,
    /// List the interfaces that can be captured on, and exit.
    #[arg(long)]
    list_interfaces: bool,
    /// Map another server port to a protocol, e.g. `smtp=2525` (repeatable).
    #[arg(long = "port", value_name = "PROTO=PORT")]
    ports: Vec<String>,
    /// Only capture packets matching this BPF filter (applied in the kernel).
    #[arg(long, value_name = "FILTER")]
    bpf: Option<String>,
    /// Stop after this many packets.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Print each session as a JSON line when it ends, instead of tables at the end.
    #[arg(long)]
    ndjson: bool,
    /// Print each session as Elastic Common Schema events (NDJSON) when it ends.
    #[arg(long, conflicts_with = "ndjson")]
    ecs: bool,
    /// Do not put the interface into promiscuous mode.
    #[arg(long)]
    no_promisc: bool,
    /// Bytes kept of each packet.
    #[arg(long, value_name = "BYTES", default_value_t = 262_144)]
    snaplen: u32,
    /// The kernel's capture buffer, e.g. `64M` or `1G` (default 64M: half a second of a
    /// saturated 1 Gbit/s link). Packets wait there until the capture thread copies them into
    /// a queue of up to 256 MiB for analysis.
    #[cfg(feature = "live")]
    #[arg(long, value_name = "BYTES", value_parser = kernel_buffer_size)]
    buffer_size: Option<usize>,
    #[command(flatten)]
    review: ReviewArgs,
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

/// Reads the `--keylog` files; a skipped line is reported with its file and line number.
fn open_keylogs(files: &[PathBuf], live: bool) -> Result<Option<Arc<KeyStore>>> {
    if files.is_empty() {
        return Ok(None);
    }
    let (store, warnings) = KeyStore::open(files, live)?;
    for w in &warnings {
        eprintln!("mailsift: key log {w} (line skipped)");
    }
    if store.is_empty() && !live {
        eprintln!("mailsift: the key logs hold no usable secret; no session will be decrypted");
    }
    Ok(Some(Arc::new(store)))
}

fn config_from(input: &InputArgs) -> Result<EngineConfig> {
    let mut ports = PortMap::default();
    for spec in &input.ports {
        ports.add_spec(spec)?;
    }
    let limits = Limits {
        max_flows: input.limits.max_flows,
        flow_idle_timeout_secs: input.limits.idle_timeout,
        hashes: input.limits.hashes,
        keys: open_keylogs(&input.keylogs, false)?,
        gunzip: GunzipLimit {
            max_ratio: input.limits.max_gunzip_ratio,
            ..GunzipLimit::default()
        },
        ..Limits::default()
    };
    Ok(EngineConfig {
        limits,
        ports,
        no_detection: input.no_detect,
        report_empty_sessions: input.empty_sessions,
    })
}

/// Where finished sessions go for one command.
enum JsonOut {
    None,
    Document(DocumentWriter<Box<dyn Write + Send>>),
    Ndjson(NdjsonWriter<Box<dyn Write + Send>>),
    Ecs(EcsWriter<Box<dyn Write + Send>>),
}

/// Report files written beside the main output (Zeek logs, the HTML report).
#[derive(Default)]
struct FileOutputs {
    zeek: Option<ZeekLogs>,
    html: Option<HtmlReport>,
    /// First write error; the reports stop after it.
    error: Option<anyhow::Error>,
}

impl FileOutputs {
    fn create(zeek: Option<&PathBuf>, html: Option<&PathBuf>, redacted: bool) -> Result<Self> {
        let zeek = match zeek {
            Some(dir) => Some(
                ZeekLogs::create(dir)
                    .with_context(|| format!("cannot create the Zeek logs in {}", dir.display()))?,
            ),
            None => None,
        };
        let html = match html {
            Some(path) => Some(
                HtmlReport::create(path, redacted, HtmlLimits::default())
                    .with_context(|| format!("cannot create {}", path.display()))?,
            ),
            None => None,
        };
        Ok(FileOutputs {
            zeek,
            html,
            error: None,
        })
    }

    /// Whether some report shows message and attachment hashes.
    fn shows_hashes(&self) -> bool {
        self.zeek.is_some() || self.html.is_some()
    }

    fn session(&mut self, rec: &SessionRecord) {
        if self.error.is_some() {
            return;
        }
        if let Some(z) = self.zeek.as_mut()
            && let Err(e) = z.session(rec)
        {
            self.error = Some(anyhow::Error::new(e).context("cannot write the Zeek logs"));
            return;
        }
        if let Some(h) = self.html.as_mut()
            && let Err(e) = h.session(rec)
        {
            self.error = Some(anyhow::Error::new(e).context("cannot write the HTML report"));
        }
    }

    /// Finishes every report and says where each went.
    fn finish(
        self,
        inputs: &[InputSummary],
        stats: &EngineStats,
        run_findings: &[RunFinding],
    ) -> Result<()> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if let Some(h) = self.html {
            let s = h
                .finish(inputs, stats, run_findings)
                .context("cannot write the HTML report")?;
            let omitted = if s.events_omitted > 0 {
                format!(" ({} transcript events left out)", s.events_omitted)
            } else {
                String::new()
            };
            eprintln!(
                "mailsift: HTML report in {}: {} sessions{omitted}",
                s.path.display(),
                s.sessions_shown
            );
        }
        if let Some(mut z) = self.zeek {
            z.run_findings(run_findings)
                .context("cannot write the Zeek logs")?;
            let s = z.finish().context("cannot write the Zeek logs")?;
            let counts: Vec<String> = LOG_FILES
                .iter()
                .zip(s.rows)
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            eprintln!(
                "mailsift: Zeek logs in {}: {}",
                s.dir.display(),
                counts.join(", ")
            );
        }
        Ok(())
    }
}

struct CliSink {
    table: Option<SessionTable>,
    /// SMTP, POP3 and message tables, kept alongside the sessions table.
    activity: Option<ActivityTables>,
    json: JsonOut,
    extractor: Option<Extractor>,
    /// First write error; later sessions are dropped once output failed.
    error: Option<io::Error>,
    /// First extraction error; extraction stops after it.
    extract_error: Option<ExtractError>,
    /// Sees every session first (findings, hashcat, redaction).
    review: Review,
    /// Zeek logs and the HTML report.
    files: FileOutputs,
    /// Set when output fails, to end a live capture whose reader went away (`| head -1`).
    stop_on_output_error: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl CliSink {
    fn new(
        table: Option<SessionTable>,
        json: JsonOut,
        input: &InputArgs,
        review: Review,
    ) -> Result<Self> {
        let extractor = match &input.extract {
            Some(dir) => Some(Extractor::create(dir)?),
            None => None,
        };
        Ok(CliSink {
            activity: table.as_ref().map(|_| ActivityTables::new()),
            table,
            json,
            extractor,
            error: None,
            extract_error: None,
            review,
            files: FileOutputs::default(),
            stop_on_output_error: None,
        })
    }

    /// Finishes extraction and says where the files went.
    fn finish_extraction(&mut self) -> Result<()> {
        if let Some(e) = self.extract_error.take() {
            bail!("extraction stopped: {e}");
        }
        if let Some(x) = self.extractor.take() {
            let s = x.finish()?;
            eprintln!(
                "mailsift: extracted {} and {} into {} (manifest: {})",
                plural(s.messages, "message", "messages"),
                plural(s.attachments, "attachment", "attachments"),
                s.dir.display(),
                s.manifest.display()
            );
        }
        Ok(())
    }
}

impl SessionSink for CliSink {
    fn session(&mut self, mut rec: SessionRecord) {
        self.review.session(&mut rec);
        if let Some(t) = self.table.as_mut() {
            t.add(&rec);
        }
        if let Some(t) = self.activity.as_mut() {
            t.add(&rec);
        }
        self.files.session(&rec);
        if self.error.is_some() {
            return;
        }
        let r = match &mut self.json {
            JsonOut::None => Ok(()),
            JsonOut::Document(w) => w.session(&rec),
            JsonOut::Ndjson(w) => w.session(&rec),
            JsonOut::Ecs(w) => w.session(&rec),
        };
        if let Err(e) = r {
            self.error = Some(e);
            if let Some(stop) = &self.stop_on_output_error {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    fn message_bytes(&mut self, rec: &SessionRecord, blob: MessageBlob) {
        if self.extract_error.is_some() {
            return;
        }
        if let Some(x) = self.extractor.as_mut()
            && let Err(e) = x.message(rec, blob)
        {
            self.extract_error = Some(e);
        }
    }
}

fn print_error(line: &str) {
    eprintln!("mailsift: {line}");
}

/// Runs the inputs into `sink`; `content_hashes` is off when no output shows message hashes.
fn run_inputs(
    input: &InputArgs,
    sink: &mut CliSink,
    content_hashes: bool,
) -> Result<engine::RunSummary> {
    let mut config = config_from(input)?;
    config.limits.content_hashes = content_hashes;
    if let Some(x) = sink.extractor.as_mut() {
        config.limits.spool = Some(x.spool()?);
    }
    // Outputs that show no hash show no decoded content either, unless files are extracted.
    config.limits.mime.decode_content = content_hashes || config.limits.spool.is_some();
    let mut filter = engine::build_filter(input.bpf.as_deref())?;
    let threads = match input.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let summary = engine::run_files_threaded(
        &input.captures,
        config,
        threads,
        &mut filter,
        sink,
        &mut |e| print_error(e),
    );
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
        JsonOut::Ecs(mut w) => {
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

/// Prints the summary, then every table, laid out for `terminal`.
fn print_tables(
    terminal: &Terminal,
    table: &mut SessionTable,
    activity: &mut ActivityTables,
    inputs: &[InputSummary],
    stats: &EngineStats,
    review: &mut ReviewReport,
) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let parts = ReportParts {
        sessions: table,
        activity,
        inputs,
        stats,
        review,
    };
    report::write(&mut out, terminal, parts)?;
    out.flush()
}

fn analyze(args: AnalyzeArgs) -> Result<ExitCode> {
    let (review, hashcat) = args.review.review(true)?;
    let mut sink = CliSink::new(
        Some(SessionTable::new()),
        JsonOut::None,
        &args.input,
        review,
    )?;
    sink.files = FileOutputs::create(None, args.html.as_ref(), args.review.redact)?;
    // The tables show no hash, and extraction hashes the files it writes itself.
    let hashes = sink.files.shows_hashes();
    let summary = run_inputs(&args.input, &mut sink, hashes)?;
    sink.finish_extraction()?;
    let mut report = sink.review.finish();
    args.review.report_hashcat(report.hashcat.take(), hashcat)?;
    std::mem::take(&mut sink.files).finish(
        &summary.inputs,
        &summary.stats,
        &report.run_findings,
    )?;
    let mut table = sink.table.take().unwrap_or_default();
    let mut activity = sink.activity.take().unwrap_or_default();
    ok_unless_real(print_tables(
        &Terminal::detect(args.wide, args.color),
        &mut table,
        &mut activity,
        &summary.inputs,
        &summary.stats,
        &mut report,
    ))?;
    Ok(exit_code(&summary, args.review.fails(&report)))
}

fn export(args: ExportArgs) -> Result<ExitCode> {
    // `-o FILE` is written under a temporary name and takes its own once whole.
    let output = match args
        .output
        .as_deref()
        .filter(|p| *p != std::path::Path::new("-"))
    {
        Some(p) => Some(
            AtomicFile::create(p, Access::Default)
                .with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => None,
    };
    let out: Box<dyn Write + Send> = match &output {
        Some(f) => Box::new(BufWriter::new(f.handle()?)),
        None => Box::new(BufWriter::new(io::stdout())),
    };
    let json = match args.format() {
        _ if !args.streams() => JsonOut::None,
        ExportFormat::Json => JsonOut::Document(DocumentWriter::new(out)?),
        ExportFormat::Ndjson => JsonOut::Ndjson(NdjsonWriter::new(out)),
        ExportFormat::Ecs => JsonOut::Ecs(EcsWriter::new(out)),
    };
    let (review, hashcat) = args.review.review(false)?;
    let mut sink = CliSink::new(None, json, &args.input, review)?;
    sink.files = FileOutputs::create(args.zeek.as_ref(), args.html.as_ref(), args.review.redact)?;
    let summary = run_inputs(&args.input, &mut sink, true)?;
    sink.finish_extraction()?;
    let mut report = sink.review.finish();
    args.review.report_hashcat(report.hashcat.take(), hashcat)?;
    let fails = args.review.fails(&report);
    std::mem::take(&mut sink.files).finish(
        &summary.inputs,
        &summary.stats,
        &report.run_findings,
    )?;
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
    if let (Some(f), Some(p)) = (output, &args.output) {
        // Only a real file was opened: `-` is standard output.
        f.commit()
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
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

#[cfg(feature = "live")]
fn sniff(args: SniffArgs) -> Result<ExitCode> {
    use mailsift::capture::live::{LiveOptions, LiveSource};
    use std::sync::atomic::Ordering;

    if args.list_interfaces {
        for d in LiveSource::list_devices()? {
            let addrs: Vec<String> = d.addresses.iter().map(|a| a.to_string()).collect();
            println!(
                "{}\t{}\t{}",
                d.name,
                addrs.join(","),
                d.description.unwrap_or_default()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let device = match args.interface {
        Some(d) => d,
        None => match pcap::Device::lookup() {
            Ok(Some(d)) => d.name,
            _ => bail!("no default capture device; name one with --interface"),
        },
    };
    let mut ports = PortMap::default();
    for spec in &args.ports {
        ports.add_spec(spec)?;
    }
    // Streamed lines carry hashes and decoded content; the tables show neither.
    let streaming = args.ndjson || args.ecs;
    let mut config = EngineConfig {
        limits: Limits {
            content_hashes: streaming,
            hashes: args.hashes,
            keys: open_keylogs(&args.keylogs, true)?,
            ..Limits::default()
        },
        ports,
        no_detection: args.no_detect,
        report_empty_sessions: args.empty_sessions,
    };
    config.limits.mime.decode_content = streaming;
    let defaults = LiveOptions::default();
    let options = LiveOptions {
        snaplen: args.snaplen,
        promisc: !args.no_promisc,
        bpf: args.bpf.clone(),
        kernel_buffer_bytes: args.buffer_size.unwrap_or(defaults.kernel_buffer_bytes),
        ..defaults
    };
    let mut src = LiveSource::open_with(&device, &options)?;
    if let Some(n) = args.count {
        src = src.with_packet_limit(n);
    }
    let stop = src.stop_flag();
    let on_signal = stop.clone();
    // SIGINT, and (feature `termination`) SIGTERM and SIGHUP too: `kill`, `timeout` or a
    // closed terminal end the capture cleanly, with the tables and the last lines written.
    ctrlc::set_handler(move || on_signal.store(true, Ordering::Relaxed))
        .context("cannot install the Ctrl-C handler")?;
    if let Some(secs) = args.duration {
        let timer = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(secs));
            timer.store(true, Ordering::Relaxed);
        });
    }
    eprintln!("mailsift: capturing on {device}; Ctrl-C to stop");
    let json = if args.ndjson {
        JsonOut::Ndjson(NdjsonWriter::new(Box::new(LineFlush(io::stdout()))))
    } else if args.ecs {
        JsonOut::Ecs(EcsWriter::new(Box::new(LineFlush(io::stdout()))))
    } else {
        JsonOut::None
    };
    let table = (!streaming).then(SessionTable::new);
    let (review, hashcat) = args.review.review(!streaming)?;
    let mut sink = CliSink {
        activity: table.as_ref().map(|_| ActivityTables::new()),
        table,
        json,
        extractor: None,
        error: None,
        extract_error: None,
        review,
        files: FileOutputs::default(),
        stop_on_output_error: Some(stop.clone()),
    };
    let mut engine = engine::Engine::new(config);
    let input = engine.run_source(&mut src, &mut None, &mut sink);
    for e in &input.errors {
        print_error(e);
    }
    // Like tcpdump's closing counts: says the capture ended, what it saw and what it lost.
    let counts = src.capture_stats();
    print_error(&format!("{} packets captured on {device}", counts.captured));
    let known = |n: Option<u64>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
    print_error(&format!(
        "{} packets dropped by the kernel, {} by the interface, {} by mailsift (queue full)",
        known(counts.kernel_dropped),
        known(counts.interface_dropped),
        counts.queue_dropped
    ));
    let limits = counts.queue_limits;
    print_error(&format!(
        "at most {} packets ({} MiB) waited for analysis at once; the queue holds {} ({} MiB)",
        counts.queue_peak_packets,
        counts.queue_peak_bytes >> 20,
        limits.packets,
        limits.bytes >> 20
    ));
    let stats = engine.finish(&mut sink);
    let mut report = sink.review.finish();
    args.review.report_hashcat(report.hashcat.take(), hashcat)?;
    if let Some(e) = sink.error.take() {
        ok_unless_real(Err(e))?;
    }
    let run_findings = std::mem::take(&mut report.run_findings);
    let inputs = [input];
    ok_unless_real(finish_json(sink.json, &inputs, &stats, run_findings))?;
    if let Some(mut table) = sink.table.take() {
        let mut activity = sink.activity.take().unwrap_or_default();
        let terminal = Terminal::detect(false, ColorChoice::Auto);
        ok_unless_real(print_tables(
            &terminal,
            &mut table,
            &mut activity,
            &inputs,
            &stats,
            &mut report,
        ))?;
    }
    if args.review.fails(&report) {
        return Ok(ExitCode::from(EXIT_FINDINGS));
    }
    Ok(ExitCode::SUCCESS)
}

/// Flushes after every line, so each session appears as soon as it ends.
#[cfg(feature = "live")]
struct LineFlush<W: Write>(W);

#[cfg(feature = "live")]
impl<W: Write> Write for LineFlush<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.write(buf)?;
        if buf.contains(&b'\n') {
            self.0.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(not(feature = "live"))]
fn sniff(_args: SniffArgs) -> Result<ExitCode> {
    bail!(
        "this build has no live capture: build with `cargo build --release --features live` \
         (it needs libpcap, e.g. `apt-get install libpcap-dev`)"
    )
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
