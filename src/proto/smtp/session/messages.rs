//! Message content: DATA bodies and BDAT chunks, their end, and the message records that wait
//! for the server's verdict; and the session's end, which settles what is still open.

use super::*;

impl Core {
    pub(super) fn skip_body_line(
        &mut self,
        line: Line<'_>,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) {
        let ClientMode::BodyAfterGap(body) = &mut self.client else {
            return;
        };
        body.lines_after_gap = body.lines_after_gap.saturating_add(1);
        let just_after_gap =
            body.lines_after_gap == 1 || (body.lines_after_gap == 2 && body.blank_after_gap);
        if just_after_gap && line.ending != LineEnding::None && follows_a_message(&line) {
            self.end_of_data_lost(line, ts, rec);
            return;
        }
        if body.lines_after_gap == 1 {
            body.blank_after_gap = line.bytes.is_empty();
        }
        if line.bytes != b"." || line.ending == LineEnding::None {
            // Line starts are known again, so dot-stuffing can be undone line by line.
            let content = line.bytes.strip_prefix(b".").unwrap_or(line.bytes);
            body.message.push(content, ts, &self.keep);
            let ending: &[u8] = match line.ending {
                LineEnding::CrLf => b"\r\n",
                LineEnding::Lf => b"\n",
                LineEnding::None => b"",
            };
            body.message.push(ending, ts, &self.keep);
            body.skipped += line.wire_len();
            return;
        }
        let skipped = body.skipped;
        let why = format!(
            "{skipped} body bytes after a gap were read into the message, which is incomplete"
        );
        self.end_body_after_gap(("data_after_gap", &why), ts, rec);
    }

    /// Ends a message a gap cut, with an anomaly saying how its end was found; it waits for
    /// its reply in the queue.
    fn end_body_after_gap(
        &mut self,
        (kind, detail): (&str, &str),
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) {
        let ClientMode::BodyAfterGap(body) =
            std::mem::replace(&mut self.client, ClientMode::Commands)
        else {
            return;
        };
        rec.anomaly(ts, Some(Direction::Client), kind, detail);
        let ended = self.close_message(body.message, ts, rec);
        self.push_pending(Step::DataEnd(Box::new(ended)), ts, false, None, rec);
    }

    /// A gap took the end-of-data line: `line`, just after it, is a command. The message ends
    /// there (incomplete) and waits for its reply; the line is read as the command it is.
    fn end_of_data_lost(&mut self, line: Line<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        let why = "a gap took the end-of-data line: the command after it ends the message";
        self.end_body_after_gap(("end_of_data_lost", why), ts, rec);
        self.command_line(line, ts, rec);
    }

    /// The end-of-data line was read: the message waits for its reply in the queue.
    pub(super) fn end_body(&mut self, canonical: bool, ts: Timestamp, rec: &mut SessionRecord) {
        let ClientMode::Body(body) = std::mem::replace(&mut self.client, ClientMode::Commands)
        else {
            return;
        };
        const C: Option<Direction> = Some(Direction::Client);
        let stats = body.unstuffer.stats();
        if stats.bare_lf_lines > 0 {
            rec.anomaly(
                ts,
                C,
                "bare_lf_in_body",
                format!("{} body lines ended by LF without CR", stats.bare_lf_lines),
            );
        }
        if stats.long_lines > 0 {
            rec.anomaly(
                ts,
                C,
                "body_line_too_long",
                format!("{} body lines longer than 998 characters", stats.long_lines),
            );
        }
        if !canonical {
            rec.anomaly(
                ts,
                C,
                "nonstandard_end_of_data",
                "end of data not written as CRLF.CRLF; servers disagree on such endings \
                 (SMTP smuggling)",
            );
        }
        let ended = self.close_message(body.message, ts, rec);
        self.push_pending(Step::DataEnd(Box::new(ended)), ts, false, None, rec);
    }

    /// A BDAT chunk is complete: the command now waits for its reply.
    pub(super) fn chunk_done(&mut self, last: bool, ts: Timestamp, rec: &mut SessionRecord) {
        self.client = ClientMode::Commands;
        let message = if last {
            let open = self
                .bdat
                .take()
                .unwrap_or_else(|| OpenMessage::new(MessageSource::Bdat));
            Some(Box::new(self.close_message(open, ts, rec)))
        } else {
            None
        };
        self.push_pending(Step::Bdat(message), ts, false, None, rec);
    }

    /// A command that ends a BDAT transfer without LAST takes the partial message along.
    pub(super) fn abandon_bdat(
        &mut self,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> Option<Box<EndedMessage>> {
        let mut open = self.bdat.take()?;
        open.complete = false;
        rec.anomaly(
            ts,
            Some(Direction::Client),
            "bdat_message_abandoned",
            "BDAT transfer ended without a LAST chunk",
        );
        Some(Box::new(self.close_message(open, ts, rec)))
    }

    /// The end of a message was read: its event is recorded now, in client-stream order, so
    /// that events sharing a timestamp keep their order whatever the interleaving; the record
    /// itself waits for the message's place in the command order.
    pub(super) fn close_message(
        &mut self,
        mut open: OpenMessage,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> EndedMessage {
        let size = open.size();
        let complete = open.complete;
        if let Some(c) = open.collector.as_mut() {
            // The content is all in: decode and free it now; only the record waits for the reply.
            c.end(complete);
        }
        // Recorded messages are numbered in the order they end, which is the order they are
        // recorded in; one refused here is counted by the record and leaves no gap.
        let admission = rec.admit_message(ts, Direction::Client, size);
        let index = (admission != MessageAdmission::Dropped).then(|| rec.messages_admitted - 1);
        let mut ended = open.close(ts, &self.keep, index);
        if admission == MessageAdmission::HashOnly {
            ended.collector.skip_mime();
        }
        if let Some(index) = index {
            rec.push_event(
                ts,
                Direction::Client,
                EventKind::MessageData {
                    message: index,
                    bytes: ended.collector.size(),
                },
            );
        }
        ended
    }

    pub(super) fn finish_message(
        &mut self,
        m: EndedMessage,
        verdict: Option<MessageReply>,
        rec: &mut SessionRecord,
    ) {
        let final_code = verdict.as_ref().map(|v| v.code);
        let mut recorded = None;
        if let Some(announced) = m.index {
            let index = m.collector.finish(self.txn.envelope(), m.complete, rec);
            recorded = Some(index);
            if let Some(record) = rec.messages.get_mut(index) {
                record.reply = verdict.clone();
            }
            if index != announced {
                // Messages end in client order and are recorded in command order, which
                // agree; say so loudly if they ever do not.
                rec.anomaly(
                    m.end_ts,
                    None,
                    "message_index_mismatch",
                    format!("message recorded at {index}, announced at {announced}"),
                );
            }
        }
        self.transaction_message(m.end_ts, recorded, verdict.as_ref());
        match final_code {
            Some(c) if (200..300).contains(&c) => self.summary.messages_accepted += 1,
            Some(_) => self.summary.messages_rejected += 1,
            None => {}
        }
    }

    /// The most likely reply to a pausing command, judged from the client's held bytes.
    pub(super) fn guess(&self, step: &Step) -> Resolution {
        let first_line = || {
            let line = self.client_hold.first_line(self.max_line_len);
            String::from_utf8_lossy(&line).into_owned()
        };
        let is_strict = |text: &str| split_command(text).is_some_and(|c| is_strict_command(&c));
        match step {
            Step::Data if self.client_hold.is_empty() || is_strict(&first_line()) => {
                Resolution::Commands
            }
            Step::Data => Resolution::Body,
            Step::Auth if self.client_hold.is_empty() => Resolution::Commands,
            Step::Auth => {
                let text = first_line();
                let command = match &self.auth {
                    // The mechanism knows how many responses it sends and what they look
                    // like; a command verb with a sloppy argument (`MAIL FROM: <a>`) still
                    // counts as a command once they are all in.
                    Some(auth) => {
                        let known = split_command(&text)
                            .is_some_and(|c| c.shape == VerbShape::Word && c.verb != Verb::Unknown);
                        auth.guess_line(&text, known) == GuessedLine::Command
                    }
                    None => is_strict(&text),
                };
                if command {
                    Resolution::Commands
                } else {
                    Resolution::Sasl
                }
            }
            Step::Starttls if self.client_hold.first_byte().is_some_and(may_open_tls) => {
                Resolution::Tls
            }
            _ => Resolution::Commands,
        }
    }

    pub(super) fn resume_client(
        &mut self,
        resolution: Resolution,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) {
        self.client = match resolution {
            Resolution::Body => ClientMode::Body(Box::new(DataBody::new())),
            Resolution::Commands => ClientMode::Commands,
            Resolution::Sasl => ClientMode::SaslLine,
            Resolution::Tls => {
                self.start_tls(Direction::Client, ts, rec);
                ClientMode::Tls
            }
        };
    }

    /// A paused client whose reply cannot come (held bytes over the bound, reply dropped, or
    /// the end of the capture) moves on with the likely reading.
    pub(super) fn resolve_stuck_pause(&mut self, at_end: bool, rec: &mut SessionRecord) -> bool {
        if !matches!(self.client, ClientMode::Paused) {
            return false;
        }
        let overflow = self.client_hold.bytes > PAUSED_BYTES_CAP
            || (self.holds_over_budget && !self.client_hold.is_empty());
        let Some(p) = self.pending.back() else {
            self.client = ClientMode::Commands;
            return true;
        };
        if !(at_end || overflow) {
            return false;
        }
        let guess = self.guess(&p.step);
        let ts = p.ts;
        if overflow {
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "paused_client_overflow",
                "over 1 MiB (or the run's memory budget) sent while waiting for a reply; the likely reply was assumed",
            );
        }
        if let Some(p) = self.pending.back_mut() {
            p.assumed = Some(guess);
        }
        self.resume_client(guess, ts, rec);
        true
    }

    /// At the end: a possible greeting with no command to decide against is the greeting.
    pub(super) fn settle_greeting_at_end(&mut self, _rec: &mut SessionRecord) -> bool {
        match self.replies.front_mut() {
            Some(r) if r.greeting == Greeting::Maybe && self.pending.is_empty() => {
                r.greeting = Greeting::Definite;
                true
            }
            _ => false,
        }
    }

    /// At the end: a server paused on a reply no command will claim reads on.
    pub(super) fn release_stuck_server(&mut self) -> bool {
        if self.server == ServerMode::Paused && self.pending.is_empty() {
            self.server = ServerMode::Replies;
            return true;
        }
        false
    }

    /// A server paused on a 220 past the bound reads on: as TLS if its next bytes look like
    /// TLS, as replies otherwise.
    pub(super) fn resolve_server_overflow(&mut self, rec: &mut SessionRecord) -> bool {
        let over = self.server_hold.bytes > PAUSED_BYTES_CAP
            || (self.holds_over_budget && !self.server_hold.is_empty());
        if self.server != ServerMode::Paused || !over {
            return false;
        }
        let ts = self.replies.back().map_or(Timestamp::default(), |r| r.ts);
        rec.anomaly(
            ts,
            Some(Direction::Server),
            "paused_server_overflow",
            "over 1 MiB (or the run's memory budget) sent after a 220 that no command claimed yet; the likely reading was taken",
        );
        if let Some(r) = self.replies.back_mut()
            && r.greeting == Greeting::Maybe
        {
            r.greeting = Greeting::Definite;
        }
        if self.server_hold.first_byte().is_some_and(may_open_tls) {
            self.start_tls(Direction::Server, ts, rec);
            self.server = ServerMode::Tls;
        } else {
            self.server = ServerMode::Replies;
        }
        true
    }

    /// At the end: a multi-line reply whose last line never came is complete as it is.
    pub(super) fn finish_open_reply(&mut self, rec: &mut SessionRecord) -> bool {
        let Some(b) = self.reply.as_ref() else {
            return false;
        };
        if self.server == ServerMode::Paused || !self.server_hold.is_empty() {
            return false;
        }
        rec.anomaly(
            b.ts,
            Some(Direction::Server),
            "reply_unterminated",
            "multi-line reply without its last line",
        );
        self.finish_reply(rec);
        true
    }

    /// Closes everything still open and writes the summary.
    pub(super) fn finish(&mut self, ts: Timestamp, rec: &mut SessionRecord) {
        self.ended = true;
        while let Some(p) = self.pending.pop_front() {
            self.complete(p, None, rec);
        }
        let mode = std::mem::replace(&mut self.client, ClientMode::Stopped);
        if let ClientMode::Body(body) | ClientMode::BodyAfterGap(body) = mode {
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "data_unterminated",
                "message body without its end-of-data line",
            );
            let mut message = body.message;
            message.complete = false;
            let ended = self.close_message(message, ts, rec);
            self.finish_message(ended, None, rec);
        }
        if let Some(mut open) = self.bdat.take() {
            open.complete = false;
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "bdat_unterminated",
                "BDAT transfer without its LAST chunk",
            );
            let ended = self.close_message(open, ts, rec);
            self.finish_message(ended, None, rec);
        }
        for r in self.replies.drain(..) {
            if r.greeting == Greeting::No {
                rec.anomaly(
                    r.ts,
                    Some(Direction::Server),
                    "reply_without_command",
                    "reply with no command to answer",
                );
            }
        }
        if let Some(auth) = self.auth.take() {
            self.finish_auth(auth, None, rec);
        }
        self.transaction_abandoned();
        self.not_smtp_verdict(rec);
        self.client_hold = Hold::default();
        self.server_hold = Hold::default();
        // A decrypted TLS layer ends its own dissector first, which leaves its summary.
        if let Some(tls) = self.tls.as_mut() {
            tls.finish(ts, rec);
        }
        let mut summary = self.summary.clone();
        if let Some(inner) = rec.smtp.take() {
            summary.absorb_inner(&inner);
        }
        rec.smtp = Some(Box::new(summary));
    }
}

/// Whether a line is a command that follows a message (a new transaction, a reset, the
/// end), written strictly: what a gap that took the end-of-data line leaves next.
fn follows_a_message(line: &Line<'_>) -> bool {
    let Ok(text) = std::str::from_utf8(line.bytes) else {
        return false;
    };
    split_command(text).is_some_and(|cmd| {
        matches!(
            cmd.verb,
            Verb::Quit | Verb::Rset | Verb::Mail | Verb::Helo | Verb::Ehlo | Verb::Noop
        ) && is_strict_command(&cmd)
    })
}
