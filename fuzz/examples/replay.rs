//! Runs fuzz inputs through a target's check without libFuzzer, in an ordinary build with
//! debug assertions: `cargo run --example replay -- TARGET FILE...`. Each file is reported as
//! `ok` or with its panic message, so a folder of crashes can be triaged in one go.

use mailsift::session::Protocol;

fn target(name: &str) -> Option<fn(&[u8])> {
    Some(match name {
        "capture_file" => mailsift_fuzz::capture::read_file,
        "pipeline" => mailsift_fuzz::capture::pipeline,
        "decode" => mailsift_fuzz::decode::run,
        "reassembly" => mailsift_fuzz::reassembly::run,
        "line" => mailsift_fuzz::line::run,
        "pop3_session" => |d| mailsift_fuzz::session::run(Protocol::Pop3, d),
        "smtp_session" => |d| mailsift_fuzz::session::run(Protocol::Smtp, d),
        "tunnel" => mailsift_fuzz::session::run_probe,
        "sasl" => mailsift_fuzz::sasl::run,
        "tls_observer" => mailsift_fuzz::tls::run,
        "mime" => mailsift_fuzz::mime::run,
        _ => return None,
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_default();
    let Some(run) = target(&name) else {
        eprintln!("usage: replay TARGET FILE...  (unknown target {name:?})");
        std::process::exit(2);
    };
    mailsift_fuzz::tolerate_caught_mime_parser_panics();
    let mut failed = 0;
    for path in args {
        let Ok(data) = std::fs::read(&path) else {
            eprintln!("{path}: unreadable");
            continue;
        };
        match std::panic::catch_unwind(|| run(&data)) {
            Ok(()) => println!("{path}: ok"),
            Err(_) => {
                failed += 1;
                println!("{path}: FAILED (message above)");
            }
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
