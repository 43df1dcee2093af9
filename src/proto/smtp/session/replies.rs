//! The server side: reply lines, pairing each reply with the command it answers, and
//! what each reply does (capabilities, AUTH outcomes, the STARTTLS switch).

use super::*;

impl Core {
    pub(super) fn server_line(&mut self, line: Line<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        let text = line.text();
        let Some(parsed) = parse_reply_line(&text) else {
            if self.skipping_junk(Direction::Server) {
                return;
            }
            if self.server == ServerMode::Resync {
                rec.anomaly(
                    ts,
                    Some(Direction::Server),
                    "server_resync_skipped",
                    "lines skipped while looking for a reply after a gap or mid-stream start",
                );
                return;
            }
            let facts = self.report_line(&line, Direction::Server, ts, rec, true);
            if self.junk_line(Direction::Server, facts.binary, line.wire_len(), ts, rec) {
                return;
            }
            rec.anomaly(
                ts,
                Some(Direction::Server),
                "unparseable_reply_line",
                "server line that is not a reply",
            );
            rec.push_event(
                ts,
                Direction::Server,
                EventKind::Line {
                    text: text.into_owned(),
                },
            );
            return;
        };
        if self.server == ServerMode::Resync {
            self.resume_after_junk(Direction::Server, ts, rec);
            self.server = ServerMode::Replies;
        }
        self.report_line(&line, Direction::Server, ts, rec, true);
        self.valid_line(Direction::Server);
        let continues = match self.reply.as_ref() {
            None => false,
            Some(b) if b.code == parsed.code => true,
            Some(b) if b.cut_by_gap => {
                self.finish_reply(rec);
                false
            }
            Some(_) => {
                // All lines of a reply carry one code: a new code means the previous reply
                // never sent its last line, and this line starts the next reply.
                rec.anomaly(
                    ts,
                    Some(Direction::Server),
                    "reply_code_mismatch",
                    "multi-line reply cut short by a line with another code",
                );
                self.finish_reply(rec);
                false
            }
        };
        if !continues {
            self.reply = Some(ReplyBuilder {
                code: parsed.code,
                ts,
                lines: Vec::new(),
                dropped_lines: 0,
                after_gap: std::mem::take(&mut self.next_after_gap),
                cut_by_gap: false,
            });
        }
        if let Some(b) = self.reply.as_mut() {
            b.ts = ts;
            if b.lines.len() < MAX_REPLY_LINES {
                b.lines.push(parsed.text.to_string());
            } else {
                b.dropped_lines += 1;
            }
        }
        if !parsed.more {
            self.finish_reply(rec);
        }
    }

    /// A reply is complete: record its event and queue it for its command.
    pub(super) fn finish_reply(&mut self, rec: &mut SessionRecord) {
        let Some(b) = self.reply.take() else {
            return;
        };
        const S: Option<Direction> = Some(Direction::Server);
        if b.cut_by_gap {
            rec.anomaly(
                b.ts,
                S,
                "reply_cut_by_gap",
                "multi-line reply interrupted by a gap",
            );
        }
        if b.dropped_lines > 0 {
            rec.anomaly(
                b.ts,
                S,
                "reply_too_many_lines",
                format!("reply of more than {MAX_REPLY_LINES} lines; the rest were counted"),
            );
        }
        self.summary.replies += 1;
        let greeting = if self.replies_parsed > 0 {
            Greeting::No
        } else if self.clean_start && (b.code == 220 || b.code >= 400) {
            // 220, or a refusal (421, 554): other codes cannot open a session, so the
            // greeting was not sent or not captured and this reply answers a command.
            Greeting::Definite
        } else if b.code == 220 {
            Greeting::Maybe
        } else {
            Greeting::No
        };
        self.replies_parsed += 1;
        let text = b.lines.first().cloned().unwrap_or_default();
        let more = b.lines.get(1..).unwrap_or_default().to_vec();
        let kind = if b.code == 334 {
            EventKind::AuthData { raw: text.clone() }
        } else {
            EventKind::Reply {
                code: b.code,
                enhanced: parse_enhanced(b.code, &text).map(|c| c.to_string()),
                lines: b.lines,
            }
        };
        rec.push_event(b.ts, Direction::Server, kind);
        let full = self.replies.len() >= self.max_pending
            || !self.replies_charge.admit(
                &self.replies,
                text.len() + more.iter().map(String::len).sum::<usize>(),
            );
        if full && let Some(dropped) = self.replies.pop_front() {
            rec.anomaly(
                b.ts,
                S,
                "too_many_unanswered_replies",
                "too many replies ahead of their commands; the oldest was dropped",
            );
            if dropped.greeting == Greeting::No {
                self.owed_commands += 1;
            }
        }
        self.replies.push_back(HeldReply {
            code: b.code,
            ts: b.ts,
            text,
            more,
            greeting,
            after_gap: b.after_gap,
            slipped: false,
        });
        if b.code == 220 && greeting != Greeting::Definite {
            // It may accept STARTTLS, after which the server speaks TLS.
            self.server = ServerMode::Paused;
        }
    }

    /// After a paused-on reply is consumed, the server stream may be read on.
    pub(super) fn release_server(&mut self) {
        if self.server == ServerMode::Paused && self.replies.is_empty() {
            self.server = ServerMode::Replies;
        }
    }

    /// Pairs the next reply with its command; true if anything was done.
    pub(super) fn match_next(&mut self, rec: &mut SessionRecord) -> bool {
        if let Some(front) = self.replies.front() {
            let greeting = match front.greeting {
                Greeting::Definite => true,
                Greeting::Maybe => match self.pending.front() {
                    None => return false,
                    Some(p) => !matches!(p.step, Step::Starttls),
                },
                Greeting::No => false,
            };
            if greeting {
                if let Some(r) = self.replies.pop_front() {
                    self.summary.greeting_code = Some(r.code);
                    self.summary.greeting = Some(r.text);
                }
                self.release_server();
                return true;
            }
        }
        // The client waits on the front entry: a guess made now could depend on whether its
        // next bytes have arrived yet, so a lost reply waits for the bound or the end.
        let waits_on_front = self.pending.len() == 1
            && matches!(self.client, ClientMode::Paused)
            && self
                .pending
                .front()
                .is_some_and(|p| p.pauses_client && p.assumed.is_none());
        if self.pending.front().is_some_and(|p| p.reply_lost) {
            if waits_on_front {
                return false;
            }
            if let Some(p) = self.pending.pop_front() {
                self.complete(p, None, rec);
            }
            return true;
        }
        if self.owed_replies > 0 && !self.replies.is_empty() {
            self.owed_replies -= 1;
            self.replies.pop_front();
            self.release_server();
            return true;
        }
        let (Some(p), Some(r)) = (self.pending.front(), self.replies.front()) else {
            return false;
        };
        let slip = if (p.uncertain || r.after_gap) && !plausible(&p.step, r.code) {
            // Alignment is in doubt here and the code does not fit.
            if p.uncertain {
                Some((
                    Slip::ExtraReply,
                    "reply_for_lost_command",
                    "reply that fits no command seen: its command was not captured",
                ))
            } else {
                Some((
                    Slip::ReplyLost,
                    "reply_lost_in_gap",
                    "command whose reply was not captured",
                ))
            }
        } else {
            // A stray code may close one command as unanswered, not a whole queue.
            let once = |slip| match slip {
                Slip::ReplyLost if r.slipped => Slip::ExtraReply,
                other => other,
            };
            sequence_slip(&p.step, r.code).map(|slip| {
                (
                    once(slip),
                    "reply_sequence_mismatch",
                    "a reply code that cannot answer its command: replies and commands re-aligned",
                )
            })
        };
        if let Some((slip, kind, detail)) = slip {
            let at = r.ts;
            rec.anomaly(at, Some(Direction::Server), kind, detail);
            match slip {
                Slip::ExtraReply => {
                    self.replies.pop_front();
                    self.release_server();
                }
                Slip::ReplyLost if waits_on_front => {
                    if let Some(p) = self.pending.front_mut() {
                        p.reply_lost = true;
                    }
                }
                Slip::ReplyLost => {
                    if let Some(r) = self.replies.front_mut() {
                        r.slipped = true;
                    }
                    if let Some(p) = self.pending.pop_front() {
                        self.complete(p, None, rec);
                    }
                }
            }
            return true;
        }
        let (Some(p), Some(r)) = (self.pending.pop_front(), self.replies.pop_front()) else {
            return false;
        };
        self.complete(p, Some(r), rec);
        self.release_server();
        true
    }

    /// Applies a command's outcome; `reply` is `None` when it never came.
    pub(super) fn complete(
        &mut self,
        p: Pending,
        reply: Option<HeldReply>,
        rec: &mut SessionRecord,
    ) {
        if let Some(m) = p.abandoned {
            self.finish_message(*m, None, rec);
        }
        let code = reply.as_ref().map(|r| r.code);
        let resolution = p.pauses_client.then(|| match code {
            Some(c) => resolution_for(&p.step, c),
            None => self.guess(&p.step),
        });
        match p.step {
            Step::Helo { ehlo } => {
                // A rejected HELO/EHLO changes nothing; an accepted one resets the transaction.
                if !is_rejection(code) {
                    self.txn = Transaction::default();
                    self.transaction_abandoned();
                }
                if ehlo
                    && is_positive(code)
                    && let Some(r) = reply.as_ref()
                {
                    self.apply_capabilities(parse_capabilities(&r.more));
                }
            }
            Step::Mail { path } => {
                self.transaction_mail(p.ts, path.as_deref(), reply.as_ref());
                if !is_rejection(code) {
                    self.txn = Transaction {
                        open: true,
                        mail_from: path,
                        rcpt_to: Vec::new(),
                        rcpt_named: 0,
                        rcpt_bytes: 0,
                    };
                    self.summary.transactions += 1;
                }
            }
            Step::Rcpt { path } => {
                self.transaction_rcpt(path.as_deref(), code);
                self.txn.rcpt_named += 1;
                if is_rejection(code) {
                    self.summary.recipients_rejected += 1;
                } else if let Some(path) = path {
                    let cost = path.len() + std::mem::size_of::<String>();
                    if self.may_keep_recipient(cost) {
                        self.txn.rcpt_to.push(path);
                        self.txn.rcpt_bytes += cost;
                    } else {
                        rec.anomaly(
                            p.ts,
                            Some(Direction::Client),
                            "too_many_recipients",
                            format!(
                                "more than {MAX_RECIPIENTS} recipients, or more than the run's memory budget holds; the rest not kept"
                            ),
                        );
                    }
                }
            }
            Step::Data if !self.commands_lost || self.txn.open => {
                self.transaction_data(p.ts, reply.as_ref(), rec);
            }
            Step::Data | Step::Bdat(None) | Step::Other => {}
            Step::Quit => self.transaction_abandoned(),
            Step::DataEnd(m) | Step::Bdat(Some(m)) => {
                let verdict = reply.as_ref().map(transactions::reply_of);
                self.finish_message(*m, verdict, rec);
                self.txn = Transaction::default();
            }
            Step::Rset | Step::LostDataEnd => {
                self.txn = Transaction::default();
                self.transaction_abandoned();
            }
            Step::Starttls => {
                if code == Some(220) {
                    self.summary.starttls_accepted = true;
                    self.txn = Transaction::default();
                    self.transaction_abandoned();
                    let ts = reply.as_ref().map_or(p.ts, |r| r.ts);
                    self.start_tls(Direction::Server, ts, rec);
                    if matches!(self.server, ServerMode::Paused | ServerMode::Tls) {
                        self.server = ServerMode::Tls;
                    } else {
                        rec.anomaly(
                            p.ts,
                            None,
                            "assumed_reply_contradicted",
                            "a reply arrived too late and contradicts the reading taken",
                        );
                    }
                } else if is_positive(code) {
                    rec.anomaly(
                        p.ts,
                        Some(Direction::Server),
                        "unexpected_starttls_reply",
                        "STARTTLS answered with a 2xx other than 220; taken as refused",
                    );
                }
            }
            Step::Auth => self.auth_reply(reply.as_ref(), rec),
        }
        if let Some(resolution) = resolution {
            match p.assumed {
                Some(assumed) => {
                    if code.is_some() && assumed != resolution {
                        rec.anomaly(
                            p.ts,
                            None,
                            "assumed_reply_contradicted",
                            "a reply arrived too late and contradicts the reading taken",
                        );
                    }
                }
                None => {
                    if matches!(self.client, ClientMode::Paused) {
                        self.resume_client(resolution, p.ts, rec);
                    }
                }
            }
        }
    }

    pub(super) fn apply_capabilities(&mut self, caps: Capabilities) {
        let s = &mut self.summary;
        s.capabilities = caps.raw;
        s.pipelining = caps.pipelining;
        s.starttls_offered = caps.starttls;
        s.chunking = caps.chunking;
        s.eightbitmime = caps.eightbitmime;
        s.binarymime = caps.binarymime;
        s.smtputf8 = caps.smtputf8;
        s.dsn = caps.dsn;
        s.enhanced_status_codes = caps.enhanced_status_codes;
        s.size_limit = caps.size_limit;
        s.auth_mechanisms = caps.auth_mechanisms;
    }

    pub(super) fn auth_reply(&mut self, reply: Option<&HeldReply>, rec: &mut SessionRecord) {
        let Some(reply) = reply else {
            if let Some(auth) = self.auth.take() {
                self.finish_auth(auth, None, rec);
            }
            return;
        };
        if (300..400).contains(&reply.code) {
            if reply.code != 334 {
                rec.anomaly(
                    reply.ts,
                    Some(Direction::Server),
                    "unexpected_auth_reply",
                    "AUTH step answered with a 3xx other than 334",
                );
            }
            if let Some(auth) = self.auth.as_mut() {
                auth.server_challenge(&reply.text);
            }
        } else if let Some(auth) = self.auth.take() {
            let success = (200..300).contains(&reply.code);
            self.finish_auth(auth, Some(success), rec);
        }
    }

    pub(super) fn finish_auth(
        &mut self,
        auth: SaslExchange,
        success: Option<bool>,
        rec: &mut SessionRecord,
    ) {
        let problems: Vec<String> = auth.problems().to_vec();
        let credential = auth.finish(success);
        for problem in problems {
            rec.anomaly(
                credential.ts,
                Some(Direction::Client),
                "sasl_malformed",
                problem,
            );
        }
        if success == Some(true) {
            self.summary.authenticated = true;
        }
        if rec.credentials.len() < MAX_CREDENTIALS {
            rec.credentials.push(credential);
        } else {
            rec.anomaly(
                credential.ts,
                Some(Direction::Client),
                "credential_limit",
                format!("more than {MAX_CREDENTIALS} AUTH attempts; later ones are counted only"),
            );
        }
    }
}
