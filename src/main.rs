//! The mailsift command line: arguments in, library calls, tables or JSON out, an exit code.

mod cli;

use anyhow::{Context, Result, bail};
use clap::Parser;
use cli::args::{
    Cli, Command, Format, FormatArgs, InputArgs, OfflineArgs, OutputArgs, ProgressArgs, ReviewArgs,
    ShowArgs, SniffArgs,
};
use cli::progress::{Measure, ProgressLine};
use mailsift::capture::InputSummary;
use mailsift::capture::gunzip::GunzipLimit;
use mailsift::engine::{self, EngineConfig, EngineStats, PortMap, SessionSink};
use mailsift::findings::RunFinding;
use mailsift::limits::Limits;
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
use mailsift::output::transcript::TranscriptWriter;
use mailsift::output::zeek::{LOG_FILES, ZeekLogs};
use mailsift::proto::tls::KeyStore;
use mailsift::session::{MessageBlob, SessionRecord};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// mimalloc instead of the system allocator: MIME decoding allocates and frees many short-lived
/// buffers on several threads, and glibc's malloc spent about 8% of an export's CPU on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        shard: input.shard,
        progress: None,
    })
}

/// Where finished sessions go for one command.
enum JsonOut {
    None,
    Document(DocumentWriter<Box<dyn Write + Send>>),
    Ndjson(NdjsonWriter<Box<dyn Write + Send>>),
    Ecs(EcsWriter<Box<dyn Write + Send>>),
    Transcript(TranscriptOut),
}

/// `--format transcript` writes every session as it ends; `show` keeps only the sessions
/// asked for and writes them, in the order asked, once the run knows which ids exist.
struct TranscriptOut {
    writer: TranscriptWriter<Box<dyn Write + Send>>,
    /// The ids given to `show --session`; empty for every session.
    wanted: Vec<u64>,
    /// The wanted sessions seen so far.
    kept: Vec<SessionRecord>,
    /// Every session id seen, for the error that names the ids there are.
    seen: Vec<u64>,
}

impl TranscriptOut {
    fn session(&mut self, rec: &SessionRecord) -> io::Result<()> {
        if self.wanted.is_empty() {
            return self.writer.session(rec);
        }
        self.seen.push(rec.id);
        if self.wanted.contains(&rec.id) {
            self.kept.push(rec.clone());
        }
        Ok(())
    }

    /// The one-line error for ids no session has, naming the first few ids there are.
    fn missing(&mut self) -> Option<anyhow::Error> {
        let missing: Vec<String> = self
            .wanted
            .iter()
            .filter(|id| !self.seen.contains(id))
            .map(u64::to_string)
            .collect();
        if missing.is_empty() {
            return None;
        }
        self.seen.sort_unstable();
        const SHOWN: usize = 10;
        let mut ids: Vec<String> = self.seen.iter().take(SHOWN).map(u64::to_string).collect();
        if self.seen.len() > SHOWN {
            ids.push(format!("... ({} in all)", self.seen.len()));
        }
        let there = if ids.is_empty() {
            "the capture holds no session".to_string()
        } else {
            format!("the session ids are {}", ids.join(", "))
        };
        let noun = if missing.len() == 1 { "id" } else { "ids" };
        Some(anyhow::anyhow!(
            "no session has {noun} {}: {there} (`mailsift analyze` lists them)",
            missing.join(", ")
        ))
    }

    /// Writes the kept sessions in the order asked for, then flushes.
    fn finish(mut self) -> io::Result<()> {
        for id in &self.wanted {
            if let Some(rec) = self.kept.iter().find(|r| r.id == *id) {
                self.writer.session(rec)?;
            }
        }
        self.writer.finish().map(|_| ())
    }
}

impl JsonOut {
    /// The writer for `format` into `out`; tables are not written through here.
    fn for_format(format: Format, out: Box<dyn Write + Send>) -> io::Result<JsonOut> {
        Ok(match format {
            Format::Table => JsonOut::None,
            Format::Json => JsonOut::Document(DocumentWriter::new(out)?),
            Format::Ndjson => JsonOut::Ndjson(NdjsonWriter::new(out)),
            Format::Ecs => JsonOut::Ecs(EcsWriter::new(out)),
            Format::Transcript => JsonOut::Transcript(TranscriptOut {
                writer: TranscriptWriter::new(out),
                wanted: Vec::new(),
                kept: Vec::new(),
                seen: Vec::new(),
            }),
        })
    }
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
    stop_on_output_error: Option<Arc<AtomicBool>>,
    /// Set by the first session: some input was read, so held output may go out.
    release: Option<Arc<AtomicBool>>,
}

impl CliSink {
    fn new(
        table: Option<SessionTable>,
        json: JsonOut,
        extract: Option<&PathBuf>,
        review: Review,
    ) -> Result<Self> {
        let extractor = match extract {
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
            release: None,
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
        if let Some(release) = &self.release {
            release.store(true, Ordering::Relaxed);
        }
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
            JsonOut::Transcript(w) => w.session(&rec),
        };
        if let Err(e) = r {
            self.error = Some(e);
            if let Some(stop) = &self.stop_on_output_error {
                stop.store(true, Ordering::Relaxed);
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
    progress: Option<Arc<mailsift::progress::Progress>>,
) -> Result<engine::RunSummary> {
    let mut config = config_from(input)?;
    config.progress = progress;
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
        input.files(),
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
        // Run findings span sessions; the transcript is of sessions only.
        JsonOut::Transcript(w) => w.finish(),
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
    out: &mut dyn Write,
) -> io::Result<()> {
    let parts = ReportParts {
        sessions: table,
        activity,
        inputs,
        stats,
        review,
    };
    report::write(out, terminal, parts)?;
    out.flush()
}

/// `show`: `export --format transcript` kept to the sessions asked for.
fn show(args: ShowArgs) -> Result<ExitCode> {
    let offline_args = OfflineArgs {
        input: args.input,
        review: args.review,
        output: OutputArgs {
            format: FormatArgs {
                format: Some(Format::Transcript),
                ndjson: false,
                ecs: false,
            },
            output: args.output,
            zeek: None,
            html: None,
            wide: false,
            color: ColorChoice::Never,
        },
        progress: args.progress,
    };
    offline(offline_args, Format::Json, &args.sessions)
}

/// `analyze` and `export`: one run, told apart by what each writes when not told; `sessions`
/// (from `show`) keeps the transcript to those ids.
fn offline(args: OfflineArgs, default: Format, sessions: &[u64]) -> Result<ExitCode> {
    let format = args.output.format.chosen().unwrap_or(default);
    // analyze always prints; export's JSON gives way to report files asked for alone.
    let streams = default == Format::Table || args.output.export_streams();
    let release = Arc::new(AtomicBool::new(false));
    let (out, file) = open_output(args.output.output.as_deref(), &release)?;
    let terminal = file.is_none() && io::stdout().is_terminal();
    let mut out = Some(out);
    let mut json = match out.take_if(|_| streams && format != Format::Table) {
        Some(w) => JsonOut::for_format(format, w)?,
        None => JsonOut::None,
    };
    if let JsonOut::Transcript(t) = &mut json {
        t.wanted = sessions.to_vec();
    }
    let tables = streams && format == Format::Table;
    let (review, hashcat) = args.review.review(tables)?;
    let table = tables.then(SessionTable::new);
    let mut sink = CliSink::new(table, json, args.input.extract.as_ref(), review)?;
    sink.release = Some(Arc::clone(&release));
    let (zeek, html) = (args.output.zeek.as_ref(), args.output.html.as_ref());
    sink.files = FileOutputs::create(zeek, html, args.review.redact)?;
    // Tables show no hash, and extraction hashes the files it writes itself.
    let hashes = !matches!(sink.json, JsonOut::None) || sink.files.shows_hashes();
    // Sessions written to the terminal as they end would be torn by a line redrawn beside them.
    let streams_to_terminal =
        terminal && !matches!(sink.json, JsonOut::None) && sessions.is_empty();
    let line = ProgressLine::start(
        Measure::Files {
            total: total_size(args.input.files()),
        },
        progress_wanted(&args.progress) && !streams_to_terminal,
    );
    let summary = run_inputs(&args.input, &mut sink, hashes, line.counters())?;
    line.finish();
    if !summary.any_input_read() {
        // Dropped uncommitted, every output file goes; what stdout held goes too.
        return Err(cli::errors::no_input());
    }
    release.store(true, Ordering::Relaxed);
    sink.finish_extraction()?;
    let mut report = sink.review.finish();
    args.review.report_hashcat(report.hashcat.take(), hashcat)?;
    let fails = args.review.fails(&report);
    if let JsonOut::Transcript(t) = &mut sink.json
        && let Some(e) = t.missing()
    {
        // Dropped uncommitted, `-o` is not left behind half-written.
        return Err(e);
    }
    let (inputs, stats) = (&summary.inputs, &summary.stats);
    std::mem::take(&mut sink.files).finish(inputs, stats, &report.run_findings)?;
    if let Some(e) = sink.error.take() {
        ok_unless_real(Err(e))?;
        return Ok(exit_code(fails));
    }
    match (sink.table.take(), out) {
        (Some(mut table), Some(mut out)) => {
            let mut activity = sink.activity.take().unwrap_or_default();
            let layout = Terminal::detect(terminal, args.output.wide, args.output.color);
            let r = print_tables(
                &layout,
                &mut table,
                &mut activity,
                inputs,
                stats,
                &mut report,
                &mut out,
            );
            ok_unless_real(r)?;
        }
        _ => ok_unless_real(finish_json(sink.json, inputs, stats, report.run_findings))?,
    }
    if let (Some(f), Some(p)) = (file, &args.output.output) {
        f.commit()
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(exit_code(fails))
}

/// Whether a progress line may be drawn: not `--quiet`, and standard error is a terminal.
fn progress_wanted(args: &ProgressArgs) -> bool {
    !args.quiet && io::stderr().is_terminal()
}

/// The inputs' total size on disk, when every one has a size (a pipe has none).
fn total_size(files: &[PathBuf]) -> Option<u64> {
    files
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len())
        })
        .sum()
}

/// The main output: `-o FILE` (written under a temporary name, taking its own once whole)
/// or standard output, holding what is written until `release` is set.
fn open_output(
    path: Option<&Path>,
    release: &Arc<AtomicBool>,
) -> Result<(Box<dyn Write + Send>, Option<AtomicFile>)> {
    let file = match path.filter(|p| *p != Path::new("-")) {
        Some(p) => Some(
            AtomicFile::create(p, Access::Default)
                .with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => None,
    };
    let inner: Box<dyn Write + Send> = match &file {
        Some(f) => Box::new(f.handle()?),
        None => Box::new(io::stdout()),
    };
    let held = HeldOutput {
        inner,
        held: Some(Vec::new()),
        release: Arc::clone(release),
    };
    Ok((Box::new(BufWriter::new(held)), file))
}

/// Holds what is written until the run knows that some input was read, so that a run that
/// read nothing writes nothing: no JSON document without sessions to mistake for a result.
struct HeldOutput {
    inner: Box<dyn Write + Send>,
    /// What was written before the release; `None` once passed on.
    held: Option<Vec<u8>>,
    /// Set by the first session, or once the run has read some input.
    release: Arc<AtomicBool>,
}

impl HeldOutput {
    /// Passes on what was held once released; true when nothing is held any more.
    fn pass_on(&mut self) -> io::Result<bool> {
        if self.held.is_some() && self.release.load(Ordering::Relaxed) {
            let held = self.held.take().unwrap_or_default();
            self.inner.write_all(&held)?;
        }
        Ok(self.held.is_none())
    }
}

impl Write for HeldOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pass_on()? {
            return self.inner.write(buf);
        }
        if let Some(held) = self.held.as_mut() {
            held.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pass_on()? {
            self.inner.flush()
        } else {
            Ok(())
        }
    }
}

/// 3 when `--fail-on` was reached, else 0.
fn exit_code(findings_fail: bool) -> ExitCode {
    if findings_fail {
        ExitCode::from(cli::errors::EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(feature = "live")]
fn sniff(args: SniffArgs) -> Result<ExitCode> {
    use mailsift::capture::live::{LiveOptions, LiveSource};

    if args.list_interfaces {
        return list_interfaces();
    }
    let device = match args.interface {
        Some(d) => d,
        None => match pcap::Device::lookup() {
            Ok(Some(d)) => d.name,
            _ => bail!(
                "no default capture device: name one with --interface (`mailsift sniff \
                 --list-interfaces` lists them)"
            ),
        },
    };
    let mut ports = PortMap::default();
    for spec in &args.ports {
        ports.add_spec(spec)?;
    }
    // Streamed lines carry hashes and decoded content; the tables show neither.
    let format = args.format.chosen().unwrap_or(Format::Table);
    let streaming = format != Format::Table;
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
        shard: None,
        progress: None,
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
    let mut src = LiveSource::open_with(&device, &options).map_err(cli::errors::live)?;
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
    let json = JsonOut::for_format(format, Box::new(LineFlush(io::stdout())))?;
    let table = (!streaming).then(SessionTable::new);
    let (review, hashcat) = args.review.review(!streaming)?;
    let mut sink = CliSink::new(table, json, None, review)?;
    sink.stop_on_output_error = Some(stop.clone());
    // Lines streamed to the terminal would be torn by a line redrawn beside them.
    let streams_to_terminal = streaming && io::stdout().is_terminal();
    let line = ProgressLine::start(
        Measure::Live,
        progress_wanted(&args.progress) && !streams_to_terminal,
    );
    config.progress = line.counters();
    let mut engine = engine::Engine::new(config);
    let (input, saved) = match &args.write {
        None => (engine.run_source(&mut src, &mut None, &mut sink), Ok(())),
        Some(path) => record(&mut engine, &mut src, &mut sink, path, args.snaplen)?,
    };
    line.finish();
    for e in &input.errors {
        print_error(e);
    }
    print_capture_stats(&src, &device);
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
        let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
        let auto = mailsift::output::table::ColorChoice::Auto;
        let layout = Terminal::detect(io::stdout().is_terminal(), false, auto);
        let r = print_tables(
            &layout,
            &mut table,
            &mut activity,
            &inputs,
            &stats,
            &mut report,
            &mut out,
        );
        ok_unless_real(r)?;
    }
    // A capture file that could not be written fails the run, after what it analysed.
    saved?;
    Ok(exit_code(args.review.fails(&report)))
}

/// Runs the capture through `engine` while saving it to `path` (`sniff -w`); the file takes
/// its name once the capture stopped and every packet is written, and not at all on failure.
/// A file that cannot be created is an error at once; one that fails while being written is
/// the second value, so the sessions captured are still reported.
#[cfg(feature = "live")]
fn record(
    engine: &mut engine::Engine,
    src: &mut mailsift::capture::live::LiveSource,
    sink: &mut CliSink,
    path: &Path,
    snaplen: u32,
) -> Result<(InputSummary, Result<()>)> {
    use mailsift::capture::pcap_writer::PcapWriter;
    use mailsift::capture::record::Recording;

    let cannot = || format!("cannot write {}", path.display());
    // A capture of mail traffic holds the passwords it saw: for its owner only.
    let file = AtomicFile::create(path, Access::Private).with_context(cannot)?;
    let out = BufWriter::with_capacity(1 << 16, file.handle().with_context(cannot)?);
    let link = src.link_type().0;
    let writer = PcapWriter::with_header(out, link, snaplen, false).with_context(cannot)?;
    let mut recording = Recording::new(src, writer);
    let input = engine.run_source(&mut recording, &mut None, sink);
    let saved = recording
        .finish()
        .and_then(|out| out.into_inner().map_err(io::IntoInnerError::into_error))
        .and_then(|_| file.commit())
        .with_context(cannot);
    Ok((input, saved))
}

/// `sniff --list-interfaces`: name, addresses and description, one interface a line.
#[cfg(feature = "live")]
fn list_interfaces() -> Result<ExitCode> {
    let devices = mailsift::capture::live::LiveSource::list_devices()?;
    let mut out = io::stdout().lock();
    for d in devices {
        let addrs: Vec<String> = d.addresses.iter().map(|a| a.to_string()).collect();
        let line = writeln!(
            out,
            "{}\t{}\t{}",
            d.name,
            addrs.join(","),
            d.description.unwrap_or_default()
        );
        ok_unless_real(line)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Like tcpdump's closing counts: says the capture ended, what it saw and what it lost.
#[cfg(feature = "live")]
fn print_capture_stats(src: &mailsift::capture::live::LiveSource, device: &str) {
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
    Err(cli::errors::UsageError(cli::errors::NO_LIVE.to_string()).into())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(a) => offline(a, Format::Table, &[]),
        Command::Export(a) => offline(a, Format::Json, &[]),
        Command::Show(a) => show(a),
        Command::Sniff(a) => sniff(a),
        Command::Completions { shell } => {
            cli::generate::completions(shell).map(|()| ExitCode::SUCCESS)
        }
        Command::Man { dir } => cli::generate::man(dir.as_deref()).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            print_error(&format!("{e:#}"));
            ExitCode::from(cli::errors::exit_status(&e))
        }
    }
}
