//! The client side: command lines, their arguments, AUTH responses and resynchronisation.

use super::*;

impl Core {
    pub(super) fn client_line(&mut self, line: Line<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        match self.client {
            ClientMode::SaslLine => self.sasl_line(line, ts, rec),
            ClientMode::Resync => self.resync_line(line, ts, rec),
            ClientMode::BodyAfterGap(_) => self.skip_body_line(line, ts, rec),
            _ => self.command_line(line, ts, rec),
        }
    }

    pub(super) fn command_line(&mut self, line: Line<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        const C: Option<Direction> = Some(Direction::Client);
        let facts = self.report_line(&line, Direction::Client, ts, rec, true);
        let text = line.text();
        if matches!(text, Cow::Owned(_)) {
            rec.anomaly(ts, C, "invalid_utf8", "command line is not valid UTF-8");
        }
        let cmd = split_command(&text);
        let junk = facts.binary || cmd.is_none_or(|c| c.shape != VerbShape::Word);
        if junk {
            if self.junk_line(Direction::Client, facts.binary, line.wire_len(), ts, rec) {
                self.owe_junk_reply(&line, ts, rec);
                return;
            }
        } else if cmd.is_some_and(|c| c.verb.is_known()) {
            // An unknown verb is neither: it does not end a run of junk.
            self.valid_line(Direction::Client);
        }
        let Some(cmd) = cmd else {
            rec.anomaly(
                ts,
                C,
                "empty_command_line",
                "empty line where a command was expected",
            );
            // Servers answer an empty line with a syntax error: it still takes a reply.
            self.push_pending(Step::Other, ts, false, None, rec);
            return;
        };
        match cmd.shape {
            VerbShape::Word => {}
            VerbShape::NonAscii => rec.anomaly(
                ts,
                C,
                "non_ascii_command",
                "command verb with non-ASCII characters",
            ),
            VerbShape::Malformed => rec.anomaly(
                ts,
                C,
                "malformed_command",
                "line does not start with a command verb",
            ),
        }
        rec.push_event(
            ts,
            Direction::Client,
            EventKind::Command {
                verb: cmd.token.to_ascii_uppercase(),
                arg: cmd.arg.map(str::to_string),
            },
        );
        self.summary.commands += 1;
        match cmd.verb {
            Verb::Helo | Verb::Ehlo => {
                let ehlo = cmd.verb == Verb::Ehlo;
                match cmd.arg.map(str::trim).filter(|n| !n.is_empty()) {
                    Some(name) => self.summary.helo = Some(name.to_string()),
                    None => rec.anomaly(ts, C, "helo_without_name", "HELO/EHLO without a domain"),
                }
                self.summary.helo_verb = Some(if ehlo { "EHLO" } else { "HELO" }.to_string());
                let abandoned = self.abandon_bdat(ts, rec);
                self.push_pending(Step::Helo { ehlo }, ts, false, abandoned, rec);
            }
            Verb::Mail => {
                let path = self.path_arg(cmd.arg, parse_mail_arg, ts, rec);
                let abandoned = self.abandon_bdat(ts, rec);
                self.push_pending(Step::Mail { path }, ts, false, abandoned, rec);
            }
            Verb::Rcpt => {
                let path = self.path_arg(cmd.arg, parse_rcpt_arg, ts, rec);
                self.push_pending(Step::Rcpt { path }, ts, false, None, rec);
            }
            Verb::Data => {
                if cmd.arg.is_some() {
                    rec.anomaly(ts, C, "data_with_argument", "DATA takes no argument");
                }
                let abandoned = self.abandon_bdat(ts, rec);
                self.push_pending(Step::Data, ts, true, abandoned, rec);
            }
            Verb::Bdat => match parse_bdat_arg(cmd.arg) {
                Ok(arg) => {
                    self.client = ClientMode::Chunk {
                        remaining: arg.size,
                        last: arg.last,
                    };
                    if arg.size == 0 {
                        self.chunk_done(arg.last, ts, rec);
                    }
                }
                Err(e) => {
                    // The server cannot know the chunk's length either: it rejects the command
                    // and reads on for commands, which is what we do too.
                    rec.anomaly(ts, C, "bdat_invalid", e.to_string());
                    if let Some(m) = self.bdat.as_mut() {
                        m.complete = false;
                    }
                    self.push_pending(Step::Bdat(None), ts, false, None, rec);
                    self.client = ClientMode::Resync;
                }
            },
            Verb::Rset => {
                let abandoned = self.abandon_bdat(ts, rec);
                self.push_pending(Step::Rset, ts, false, abandoned, rec);
            }
            Verb::Quit => {
                self.summary.quit = true;
                let abandoned = self.abandon_bdat(ts, rec);
                self.push_pending(Step::Quit, ts, false, abandoned, rec);
            }
            Verb::Starttls => {
                self.summary.starttls_attempted = true;
                let abandoned = self.abandon_bdat(ts, rec);
                self.push_pending(Step::Starttls, ts, true, abandoned, rec);
            }
            Verb::Auth => self.start_auth(cmd.arg, ts, rec),
            Verb::Vrfy | Verb::Expn | Verb::Help | Verb::Noop | Verb::Etrn => {
                self.push_pending(Step::Other, ts, false, None, rec);
            }
            Verb::Unknown => {
                self.summary.unknown_commands += 1;
                self.push_pending(Step::Other, ts, false, None, rec);
            }
        }
    }

    /// Parses a MAIL/RCPT argument, reporting leniencies; returns the path to record.
    pub(super) fn path_arg(
        &mut self,
        arg: Option<&str>,
        parse: for<'a> fn(&'a str) -> Option<PathArg<'a>>,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> Option<String> {
        const C: Option<Direction> = Some(Direction::Client);
        let Some(p) = arg.and_then(parse) else {
            rec.anomaly(
                ts,
                C,
                "malformed_path_command",
                "MAIL/RCPT without a FROM:/TO: path",
            );
            return None;
        };
        let pr = p.problems;
        if pr.missing_colon {
            rec.anomaly(ts, C, "path_missing_colon", "no colon after FROM/TO");
        }
        if pr.space_after_colon {
            rec.anomaly(
                ts,
                C,
                "path_space_after_colon",
                "space between the colon and the path",
            );
        }
        if pr.missing_brackets {
            rec.anomaly(
                ts,
                C,
                "path_missing_brackets",
                "path not enclosed in angle brackets",
            );
        }
        if pr.unterminated {
            rec.anomaly(
                ts,
                C,
                "path_unterminated",
                "path with an unclosed bracket or quote",
            );
        }
        if pr.malformed_mailbox {
            rec.anomaly(
                ts,
                C,
                "malformed_address",
                "mailbox does not follow RFC 5321 syntax",
            );
        }
        if pr.bad_parameter {
            rec.anomaly(
                ts,
                C,
                "bad_esmtp_parameter",
                "malformed or unknown-valued ESMTP parameter",
            );
        }
        if p.path.source_route.is_some() {
            rec.anomaly(
                ts,
                C,
                "source_route",
                "obsolete source route in a path (ignored)",
            );
        }
        if !p.path.mailbox.is_ascii() && !p.smtputf8() {
            rec.anomaly(
                ts,
                C,
                "utf8_address_without_smtputf8",
                "non-ASCII address without the SMTPUTF8 parameter",
            );
        }
        if p.body() == Some(BodyType::BinaryMime) {
            self.summary.binarymime_used = true;
        }
        Some(p.path.mailbox.to_string())
    }

    pub(super) fn start_auth(&mut self, arg: Option<&str>, ts: Timestamp, rec: &mut SessionRecord) {
        self.summary.auth_attempts += 1;
        if let Some(stale) = self.auth.take() {
            self.finish_auth(stale, None, rec);
        }
        let (mechanism, initial) = match parse_auth_arg(arg) {
            Some(a) => (a.mechanism, a.initial_response),
            None => {
                rec.anomaly(
                    ts,
                    Some(Direction::Client),
                    "auth_malformed",
                    "AUTH without a well-formed mechanism name",
                );
                (arg.and_then(|a| a.split(' ').next()).unwrap_or(""), None)
            }
        };
        self.auth = Some(SaslExchange::start(mechanism, initial, ts, rec.in_tls()));
        self.push_pending(Step::Auth, ts, true, None, rec);
    }

    pub(super) fn sasl_line(&mut self, line: Line<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        self.report_line(&line, Direction::Client, ts, rec, false);
        let text = line.text();
        if let Some(cmd) = split_command(&text).filter(|c| is_strict_command(c))
            && !decodes_to_text(&text)
        {
            // A command (QUIT, RSET, ...) where a SASL answer belonged: the client gave up on
            // the exchange (RFC 4954 4: the server refuses an answer it cannot decode), so it
            // is recorded as cancelled, with no username made of the command's letters.
            rec.push_event(
                ts,
                Direction::Client,
                EventKind::Command {
                    verb: cmd.token.to_ascii_uppercase(),
                    arg: cmd.arg.map(str::to_string),
                },
            );
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "auth_abandoned",
                format!(
                    "{} sent in answer to an AUTH challenge: the exchange was given up",
                    cmd.token.to_ascii_uppercase()
                ),
            );
            if let Some(auth) = self.auth.as_mut() {
                auth.client_response("*");
            }
            self.push_pending(Step::Auth, ts, true, None, rec);
            return;
        }
        rec.push_event(
            ts,
            Direction::Client,
            EventKind::AuthData {
                raw: text.to_string(),
            },
        );
        if let Some(auth) = self.auth.as_mut() {
            auth.client_response(&text);
        }
        self.push_pending(Step::Auth, ts, true, None, rec);
    }

    /// A junk line from the bound on, kept as no event: servers still answer each whole line
    /// with an error, so it takes a reply as the lines before the bound did.
    fn owe_junk_reply(&mut self, line: &Line<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        if line.ending != LineEnding::None {
            self.push_pending(Step::Other, ts, false, None, rec);
        }
    }

    pub(super) fn resync_line(&mut self, line: Line<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        // A strict command opens with a verb of at least four letters and is not huge: any
        // other line is skipped without decoding it as text (junk and TLS records cost a byte
        // scan only). Its arguments may be UTF-8 (SMTPUTF8 paths).
        let plausible = line.bytes.len() <= MAX_STRICT_LINE
            && line.bytes.len() >= 4
            && line.bytes[..4].iter().all(u8::is_ascii_alphabetic);
        let strict = plausible && {
            let text = line.text();
            split_command(&text).is_some_and(|c| is_strict_command(&c))
        };
        if strict {
            self.resume_after_junk(Direction::Client, ts, rec);
            self.client = ClientMode::Commands;
            self.command_line(line, ts, rec);
        } else if self.skipping_junk(Direction::Client) {
            // No event: the not_smtp anomaly stands for the lines skipped.
            self.owe_junk_reply(&line, ts, rec);
        } else if line.bytes == b"." && line.ending != LineEnding::None {
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "lost_data_end",
                "end of a message body whose start was not captured",
            );
            self.push_pending(Step::LostDataEnd, ts, false, None, rec);
        } else {
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "client_resync_skipped",
                "lines skipped while looking for a command after a gap or mid-stream start",
            );
        }
    }
}

/// The longest line re-synchronisation takes for a command: RFC 5321 allows 512 octets, and
/// AUTH initial responses run longer; past this a line is not one to resume at.
const MAX_STRICT_LINE: usize = 12 << 10;

/// Whether a SASL answer decodes from base64 to printable text (as a LOGIN user name does); a
/// command word such as `QUIT` decodes to control bytes.
fn decodes_to_text(line: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
        .decode(line.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .is_some_and(|t| !t.is_empty() && t.chars().all(|c| !c.is_control()))
}
