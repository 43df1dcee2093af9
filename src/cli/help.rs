//! The examples and exit statuses shown after each command's `--help`, and in the man pages.

/// `mailsift --version`: the package version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MAILSIFT_GIT_COMMIT"),
    ")"
);

/// The exit statuses, as every command's help ends.
macro_rules! exit_statuses {
    () => {
        "Exit status:
  0  success
  1  no input could be read, an output could not be written, live capture failed, or no
     session has an id given to `show --session`
  2  bad command line (also: sniff or --bpf in a build without the `live` feature)
  3  --fail-on reached"
    };
}

/// After `mailsift --help`.
pub const MAIN: &str = concat!(
    "Examples:
  mailsift analyze capture.pcap                tables: sessions, logins, messages, findings
  mailsift export capture.pcap -o run.json     the same as one JSON document
  mailsift show capture.pcap --session 24      one session in full: header and transcript
  sudo mailsift sniff -i eth0 --format ndjson  live: one JSON line per session as it ends
  mailsift analyze --help                      more examples for one command

",
    exit_statuses!()
);

/// After `mailsift analyze --help`.
pub const ANALYZE: &str = concat!(
    "Examples:
  mailsift analyze capture.pcap
  mailsift analyze -r capture.pcapng                    -r FILE as in tcpdump and tshark
  mailsift analyze a.pcap b.pcap.gz                     several files, as one capture in order
  mailsift analyze --port smtp=2525 capture.pcap        SMTP on another port
  mailsift analyze --keylog tls.keys capture.pcap       decrypt TLS with a key log
  mailsift analyze --html report.html capture.pcap      tables, plus an HTML report
  mailsift analyze --zeek logs/ capture.pcap            tables, plus Zeek-style logs
  mailsift analyze --format json capture.pcap           the same as `export`

",
    exit_statuses!()
);

/// After `mailsift export --help`.
pub const EXPORT: &str = concat!(
    "Examples:
  mailsift export capture.pcap -o run.json              one JSON document
  mailsift export --format ndjson capture.pcap          one JSON session per line (or --ndjson)
  mailsift export --format ecs capture.pcap             Elastic Common Schema events (or --ecs)
  mailsift export --format transcript capture.pcap      every session as text (see `show`)
  mailsift export --zeek logs/ capture.pcap             only Zeek-style logs, nothing on stdout
  mailsift export --redact --fail-on high capture.pcap  secrets masked; status 3 on a high finding
  mailsift export --extract out/ capture.pcap           messages and attachments as files

",
    exit_statuses!()
);

/// After `mailsift show --help`.
pub const SHOW: &str = concat!(
    "Examples:
  mailsift show capture.pcap --session 24               one session, as `analyze` numbers it
  mailsift show capture.pcap --session 1 --session 24   several, in the order given
  mailsift show --redact capture.pcap --session 1       passwords and tokens masked
  mailsift export --format transcript capture.pcap      every session as text

An id that no session has is an error (status 1) naming the ids there are.

",
    exit_statuses!()
);

/// After `mailsift sniff --help`.
pub const SNIFF: &str = concat!(
    "Live capture needs a build with `--features live` (libpcap) and the right to capture: run
as root, or once: sudo setcap cap_net_raw,cap_net_admin=eip $(command -v mailsift)

Examples:
  mailsift sniff --list-interfaces
  sudo mailsift sniff -i eth0                           tables when Ctrl-C stops it
  sudo mailsift sniff -i eth0 --format ndjson           one JSON line per session as it ends
  sudo mailsift sniff -i eth0 --format ecs --bpf 'port 25'
  sudo mailsift sniff -i eth0 --duration 60 --fail-on high

",
    exit_statuses!()
);

/// After `mailsift completions --help`.
pub const COMPLETIONS: &str = "Examples:
  mailsift completions bash > ~/.local/share/bash-completion/completions/mailsift
  mailsift completions zsh > ~/.zfunc/_mailsift      (with fpath+=~/.zfunc in ~/.zshrc)
  mailsift completions fish > ~/.config/fish/completions/mailsift.fish";

/// After `mailsift man --help`.
pub const MAN: &str = "Examples:
  mailsift man | man -l -                    read it now
  mailsift man --dir /usr/local/share/man/man1    mailsift.1 and one page per command";
