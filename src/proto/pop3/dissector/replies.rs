//! The server side: status and continuation lines, each paired with the command it answers.

use super::*;

impl Pop3Dissector {
    pub(super) fn feed_server(
        &mut self,
        data: &[u8],
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> usize {
        let mut input = data;
        loop {
            if self.server.stopped || input.is_empty() {
                return data.len();
            }
            if self.held.is_some() {
                return data.len() - input.len();
            }
            match &mut self.server_phase {
                ServerPhase::Tls => {
                    if self.clear_after_stls(Direction::Server, input, ts, rec) {
                        self.server_phase = ServerPhase::Lines { after_gap: false };
                        continue;
                    }
                    self.tls_data(Direction::Server, input, ts, rec);
                    return data.len();
                }
                ServerPhase::Lines { .. }
                    if self.upgrade.clear(Direction::Server)
                        && self.server.framer.is_empty()
                        && [HANDSHAKE_RECORD, ALERT_RECORD].contains(&input[0]) =>
                {
                    self.server_phase = ServerPhase::Tls;
                }
                ServerPhase::Body(_) => {
                    let n = self.body_bytes(input, ts, rec);
                    input = &input[n..];
                }
                ServerPhase::StlsOutcome { cut_line } => {
                    let first = input[0];
                    let in_cut_line = *cut_line == CutLine::Skipping
                        || (*cut_line == CutLine::Unknown
                            && first != b'+'
                            && first != b'-'
                            && is_text_byte(first));
                    if in_cut_line {
                        // The rest of the reply line the gap cut; it may end in a later segment.
                        match input.iter().position(|&b| b == b'\n') {
                            Some(p) => {
                                input = &input[p + 1..];
                                *cut_line = CutLine::Skipped;
                            }
                            None => {
                                *cut_line = CutLine::Skipping;
                                return data.len();
                            }
                        }
                        continue;
                    }
                    if is_tls_record_start(first) {
                        rec.anomaly(
                            ts,
                            Some(Direction::Server),
                            "stls_reply_lost",
                            "the STLS reply was not captured; TLS records follow",
                        );
                        self.start_tls(Direction::Server, ts, rec);
                    } else {
                        self.stls_wait = false;
                        self.server_phase = ServerPhase::Lines { after_gap: true };
                    }
                }
                _ => {
                    let mut scratch = std::mem::take(&mut self.server.scratch);
                    let line = self.server.framer.next_line(&mut input).map(|l| {
                        scratch.clear();
                        scratch.extend_from_slice(l.bytes);
                        (l.ending, l.discarded)
                    });
                    if let Some((ending, discarded)) = line {
                        self.server_line_framed(&scratch, ending, discarded, ts, rec);
                    }
                    self.server.scratch = scratch;
                    if line.is_none() {
                        return data.len();
                    }
                }
            }
        }
    }

    /// A line just framed from the server stream; held (with its anomalies already noted)
    /// when it needs a command not yet seen.
    pub(super) fn server_line_framed(
        &mut self,
        bytes: &[u8],
        ending: LineEnding,
        discarded: u64,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> Outcome {
        let binary = line_anomalies(Direction::Server, bytes, ending, discarded, ts, rec);
        let text = String::from_utf8_lossy(bytes);
        let outcome = self.server_line(&text, binary, ts, rec);
        if outcome == Outcome::Held {
            self.held = Some(Held::Line {
                text: text.into_owned(),
                binary,
                ts,
            });
        }
        outcome
    }

    /// Retries what the server side held; false if it still has to wait.
    pub(super) fn retry_held(&mut self, held: Held, rec: &mut SessionRecord) -> bool {
        match held {
            Held::Line { text, binary, ts } => {
                if self.server_line(&text, binary, ts, rec) == Outcome::Held {
                    self.held = Some(Held::Line { text, binary, ts });
                    return false;
                }
                true
            }
            Held::Gap { ts } => {
                if !self.gap_front(ts, rec) {
                    self.held = Some(Held::Gap { ts });
                    return false;
                }
                true
            }
        }
    }

    pub(super) fn server_line(
        &mut self,
        text: &str,
        binary: bool,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> Outcome {
        let phase = std::mem::replace(
            &mut self.server_phase,
            ServerPhase::Lines { after_gap: false },
        );
        match phase {
            ServerPhase::Greeting => self.first_server_line(text, binary, ts, rec),
            ServerPhase::Lines { after_gap } => {
                let outcome = self.lines_line(text, binary, after_gap, ts, rec);
                if outcome == Outcome::Held {
                    self.server_phase = ServerPhase::Lines { after_gap };
                }
                outcome
            }
            ServerPhase::Probe(status) => self.probe_line(status, text, binary, ts, rec),
            other => {
                // Bodies, TLS and the STLS probe never reach the line parser.
                self.server_phase = other;
                Outcome::Done
            }
        }
    }

    pub(super) fn first_server_line(
        &mut self,
        text: &str,
        binary: bool,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> Outcome {
        let line = parse_server_line(text);
        if !self.handshake_seen {
            return match line {
                ServerLine::Status(_) | ServerLine::Continuation(_) => {
                    self.lines_line(text, binary, false, ts, rec)
                }
                ServerLine::Other => {
                    rec.anomaly(
                        ts,
                        Some(Direction::Server),
                        "midstream_pickup",
                        "the capture starts inside a multi-line reply; its rest is skipped",
                    );
                    self.start_skip(text, ts, "mid-stream pickup");
                    Outcome::Done
                }
            };
        }
        match line {
            ServerLine::Status(s) => {
                self.server.valid_line();
                if !s.canonical {
                    rec.anomaly(
                        ts,
                        Some(Direction::Server),
                        "lowercase_status",
                        "status indicator not in upper case",
                    );
                }
                if !s.ok {
                    rec.anomaly(
                        ts,
                        Some(Direction::Server),
                        "greeting_refused",
                        "the server greeted with -ERR",
                    );
                }
                let sm = summary(rec);
                sm.greeting = Some(s.text.to_string());
                sm.apop_timestamp = apop_timestamp(s.text).map(str::to_string);
                PendingStatus::new(&s, ts).emit(None, ts, rec);
            }
            ServerLine::Continuation(_) | ServerLine::Other => {
                rec.anomaly(
                    ts,
                    Some(Direction::Server),
                    "bad_greeting",
                    "the first server line is not a status line",
                );
                rec.push_event(
                    ts,
                    Direction::Server,
                    EventKind::Line {
                        text: text.to_string(),
                    },
                );
                self.junk(Direction::Server, binary, text.len() as u64, ts, rec);
            }
        }
        Outcome::Done
    }

    /// Starts skipping a body whose first line (`first_line`) was just read.
    pub(super) fn start_skip(&mut self, first_line: &str, ts: Timestamp, reason: &'static str) {
        self.server_phase = if first_line == "." {
            ServerPhase::Lines { after_gap: false }
        } else {
            ServerPhase::Body(Box::new(Body {
                scanner: DotScanner::after_first_line(),
                status: None,
                sink: BodySink::Skip { reason },
                last_ts: ts,
                cut: false,
            }))
        };
    }

    pub(super) fn lines_line(
        &mut self,
        text: &str,
        binary: bool,
        after_gap: bool,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> Outcome {
        match parse_server_line(text) {
            ServerLine::Status(s) => self.status_line(&s, ts, rec),
            ServerLine::Continuation(payload) => self.continuation_line(payload, text, ts, rec),
            ServerLine::Other if after_gap => {
                self.start_skip(text, ts, "gap before the reply");
                Outcome::Done
            }
            ServerLine::Other => {
                rec.push_event(
                    ts,
                    Direction::Server,
                    EventKind::Line {
                        text: text.to_string(),
                    },
                );
                rec.anomaly(
                    ts,
                    Some(Direction::Server),
                    "unexpected_server_line",
                    "a server line that is neither a status line nor part of a body",
                );
                self.junk(Direction::Server, binary, text.len() as u64, ts, rec);
                Outcome::Done
            }
        }
    }

    pub(super) fn probe_line(
        &mut self,
        status: PendingStatus,
        text: &str,
        binary: bool,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> Outcome {
        if text == "." {
            status.emit(Some(0), ts, rec);
            return Outcome::Done;
        }
        match parse_server_line(text) {
            ServerLine::Status(_) | ServerLine::Continuation(_) => {
                let status_ts = status.ts;
                status.emit(None, status_ts, rec);
                self.lines_line(text, binary, false, ts, rec)
            }
            ServerLine::Other => {
                self.server_phase = ServerPhase::Body(Box::new(Body {
                    scanner: DotScanner::after_first_line(),
                    status: Some(status),
                    sink: BodySink::Discard,
                    last_ts: ts,
                    cut: false,
                }));
                Outcome::Done
            }
        }
    }

    /// Settles what the next server line answers, dropping `Lost` markers the time rule
    /// shows to be answered already. The queue's command is not removed.
    pub(super) fn resolve_front(&mut self, ts: Timestamp) -> Front {
        loop {
            match self.queue.front() {
                None => {
                    return if self.client_exhausted() {
                        Front::Unmatched
                    } else {
                        Front::Wait
                    };
                }
                Some(Pending::Command { request, .. }) => return Front::Command(*request),
                Some(Pending::Lost) => match self.queue.get(1) {
                    Some(Pending::Command { ts: sent, .. }) if *sent <= ts => {
                        self.queue.pop_front();
                    }
                    Some(Pending::Command { .. }) => return Front::Lost,
                    Some(Pending::Lost) => {
                        self.queue.pop_front();
                    }
                    None => {
                        return if self.client_exhausted() {
                            Front::Lost
                        } else {
                            Front::Wait
                        };
                    }
                },
            }
        }
    }

    pub(super) fn pop_command(&mut self) {
        if let Some(Pending::Command { .. }) = self.queue.front() {
            self.queue.pop_front();
            self.commands_pending = self.commands_pending.saturating_sub(1);
        }
    }

    pub(super) fn status_line(
        &mut self,
        s: &StatusLine<'_>,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> Outcome {
        let front = self.resolve_front(ts);
        if front == Front::Wait {
            return Outcome::Held;
        }
        self.server.valid_line();
        if !s.canonical {
            rec.anomaly(
                ts,
                Some(Direction::Server),
                "lowercase_status",
                "status indicator not in upper case",
            );
        }
        match front {
            Front::Wait => {}
            Front::Command(request) => {
                self.pop_command();
                self.reply(request, s, ts, rec);
            }
            Front::Lost => self.answer_unknown(s, ts, rec),
            Front::Unmatched => {
                rec.anomaly(
                    ts,
                    Some(Direction::Server),
                    "reply_without_command",
                    "a reply with no command to answer",
                );
                self.unmatched_until = Some(ts);
                self.answer_unknown(s, ts, rec);
            }
        }
        Outcome::Done
    }

    /// A status line answering a command that is not known.
    pub(super) fn answer_unknown(
        &mut self,
        s: &StatusLine<'_>,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) {
        let status = PendingStatus::new(s, ts);
        if s.ok {
            self.server_phase = ServerPhase::Probe(status);
        } else {
            status.emit(None, ts, rec);
        }
    }

    pub(super) fn continuation_line(
        &mut self,
        payload: &str,
        text: &str,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> Outcome {
        let front = self.resolve_front(ts);
        let auth_data = |rec: &mut SessionRecord| {
            rec.push_event(
                ts,
                Direction::Server,
                EventKind::AuthData {
                    raw: payload.to_string(),
                },
            );
        };
        match front {
            Front::Wait => return Outcome::Held,
            Front::Command(Request::SaslAuth) if self.auth.is_some() => {
                self.server.valid_line();
                auth_data(rec);
                if let Some(flow) = self.auth.as_mut() {
                    flow.on_challenge(payload);
                }
            }
            Front::Lost => auth_data(rec),
            Front::Unmatched => {
                rec.anomaly(
                    ts,
                    Some(Direction::Server),
                    "reply_without_command",
                    "a reply with no command to answer",
                );
                self.unmatched_until = Some(ts);
                auth_data(rec);
            }
            Front::Command(_) => {
                rec.anomaly(
                    ts,
                    Some(Direction::Server),
                    "unexpected_continuation",
                    "a SASL continuation outside an AUTH exchange",
                );
                rec.push_event(
                    ts,
                    Direction::Server,
                    EventKind::Line {
                        text: text.to_string(),
                    },
                );
            }
        }
        Outcome::Done
    }

    pub(super) fn in_transaction(rec: &mut SessionRecord) {
        let sm = summary(rec);
        if matches!(sm.state, Pop3State::Authorization | Pop3State::Unknown) {
            sm.state = Pop3State::Transaction;
        }
    }

    /// The reply to a known command.
    pub(super) fn reply(
        &mut self,
        request: Request,
        s: &StatusLine<'_>,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) {
        let status = PendingStatus::new(s, ts);
        if s.ok {
            match request.shape() {
                ReplyShape::MultiLineOnOk => {
                    self.open_body(request, status, ts, rec);
                    return;
                }
                ReplyShape::Unknown => {
                    self.server_phase = ServerPhase::Probe(status);
                    return;
                }
                ReplyShape::SingleLine => {}
            }
        }
        status.emit(None, ts, rec);
        let ok = s.ok;
        match request {
            Request::User { cred } if !ok => set_success(rec, cred, false),
            Request::Pass { cred } => {
                set_success(rec, cred, ok);
                if ok {
                    Self::in_transaction(rec);
                }
            }
            Request::Apop { cred } => {
                set_success(rec, cred, ok);
                self.fill_apop_challenge(cred, rec);
                if ok {
                    Self::in_transaction(rec);
                }
            }
            Request::SaslAuth => {
                if ok {
                    Self::in_transaction(rec);
                }
                if let Some(flow) = self.auth.as_mut() {
                    flow.verdict = Some(ok);
                }
                self.finish_auth_if_complete(rec);
            }
            Request::Stls => {
                self.stls_wait = false;
                if ok {
                    self.start_tls(Direction::Server, ts, rec);
                }
            }
            Request::Stat if ok => {
                match super::super::reply::parse_stat(s.text) {
                    Some((count, size)) => {
                        let mb = &mut summary(rec).mailbox;
                        mb.message_count = Some(count);
                        mb.size = Some(size);
                    }
                    None => rec.anomaly(
                        ts,
                        Some(Direction::Server),
                        "bad_stat",
                        format!("STAT reply {:?}", s.text),
                    ),
                }
                Self::in_transaction(rec);
            }
            Request::List(Scope::One(_)) if ok => {
                if let Some((n, size)) = parse_scan_listing(s.text)
                    && summary(rec).mailbox.set_size(n, size).is_err()
                {
                    listing_full(ts, rec);
                }
                Self::in_transaction(rec);
            }
            Request::Uidl(Scope::One(_)) if ok => {
                if let Some((n, uid, _)) = parse_uid_listing(s.text)
                    && summary(rec).mailbox.set_uid(n, uid).is_err()
                {
                    listing_full(ts, rec);
                }
                Self::in_transaction(rec);
            }
            Request::Dele(n) if ok => {
                if let Some(n) = n
                    && summary(rec).mailbox.mark_deleted(n).is_err()
                {
                    listing_full(ts, rec);
                }
                Self::in_transaction(rec);
            }
            Request::Rset if ok => {
                summary(rec).mailbox.reset();
                Self::in_transaction(rec);
            }
            Request::Quit if ok => {
                let sm = summary(rec);
                if sm.state == Pop3State::Transaction {
                    sm.state = Pop3State::Update;
                    sm.mailbox.deletions_committed = true;
                }
            }
            Request::Transactional if ok => Self::in_transaction(rec),
            _ => {}
        }
    }
}
