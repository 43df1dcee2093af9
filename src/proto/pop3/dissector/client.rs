//! The client side: command lines, the queue of commands awaiting their reply, client gaps.

use super::*;

impl Pop3Dissector {
    pub(super) fn feed_client(
        &mut self,
        data: &[u8],
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> usize {
        let mut input = data;
        loop {
            if self.client.stopped {
                return data.len();
            }
            if self.client_tls {
                if self.clear_after_stls(Direction::Client, input, ts, rec) {
                    self.client_tls = false;
                    continue;
                }
                self.tls_data(Direction::Client, input, ts, rec);
                return data.len();
            }
            if self.upgrade.clear(Direction::Client)
                && self.client.framer.is_empty()
                && input.first() == Some(&HANDSHAKE_RECORD)
            {
                // Commands injected before the handshake, then TLS after all.
                self.client_tls = true;
                continue;
            }
            if self.client_blocked() {
                return data.len() - input.len();
            }
            if self.stls_wait {
                // Nobody will say whether STLS was accepted: the client's next byte does.
                match input.first() {
                    None => return data.len(),
                    Some(&b) if is_tls_record_start(b) && self.client.framer.is_empty() => {
                        rec.anomaly(
                            ts,
                            Some(Direction::Client),
                            "stls_reply_missing",
                            "TLS followed STLS without a reply in the capture",
                        );
                        self.start_tls(Direction::Client, ts, rec);
                        continue;
                    }
                    Some(_) => self.stls_wait = false,
                }
            }
            let mut scratch = std::mem::take(&mut self.client.scratch);
            let line = self.client.framer.next_line(&mut input).map(|l| {
                scratch.clear();
                scratch.extend_from_slice(l.bytes);
                (l.ending, l.discarded)
            });
            if let Some((ending, discarded)) = line {
                self.client_line(&scratch, ending, discarded, ts, rec);
            }
            self.client.scratch = scratch;
            if line.is_none() {
                return data.len();
            }
        }
    }

    pub(super) fn client_line(
        &mut self,
        bytes: &[u8],
        ending: LineEnding,
        discarded: u64,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) {
        let binary = line_anomalies(Direction::Client, bytes, ending, discarded, ts, rec);
        let junk_len = bytes.len() as u64 + discarded;
        let text = String::from_utf8_lossy(bytes);
        if let Some(flow) = self.auth.as_mut() {
            let forced = flow.forced || self.degraded || self.server.done || self.server.stopped;
            let is_response = if flow.responses_owed() {
                true
            } else if forced && !flow.client_moved_on {
                // The mechanism knows how many responses it sends and what they look like.
                let known = parse_command(&text).is_some_and(|c| c.verb.is_known());
                let command = flow.exchange.guess_line(&text, known) == GuessedLine::Command;
                flow.client_moved_on = command;
                !command
            } else {
                false
            };
            if is_response {
                rec.push_event(
                    ts,
                    Direction::Client,
                    EventKind::AuthData {
                        raw: text.to_string(),
                    },
                );
                flow.on_response(Some(&text));
                self.client.valid_line();
                self.finish_auth_if_complete(rec);
                return;
            }
        }
        let after_gap = std::mem::take(&mut self.client_after_gap);
        match parse_command(&text) {
            Some(cmd) if cmd.verb.is_known() => {
                self.client.valid_line();
                self.command(cmd, ts, rec);
            }
            Some(cmd) if !after_gap => {
                self.command(cmd, ts, rec);
                self.junk(Direction::Client, binary, junk_len, ts, rec);
            }
            _ if after_gap => rec.anomaly(
                ts,
                Some(Direction::Client),
                "fragment_after_gap",
                "the first client line after missing bytes was not a command; dropped",
            ),
            _ => {
                rec.push_event(
                    ts,
                    Direction::Client,
                    EventKind::Line {
                        text: text.into_owned(),
                    },
                );
                rec.anomaly(
                    ts,
                    Some(Direction::Client),
                    "unexpected_client_line",
                    "a client line that is not a command",
                );
                // Servers answer such a line with -ERR: it takes a reply like an unknown verb.
                self.enqueue(ts, Request::Other(ReplyShape::Unknown), rec);
                self.junk(Direction::Client, binary, junk_len, ts, rec);
            }
        }
    }

    pub(super) fn command(&mut self, cmd: Command<'_>, ts: Timestamp, rec: &mut SessionRecord) {
        rec.push_event(
            ts,
            Direction::Client,
            EventKind::Command {
                verb: cmd.verb_name(),
                arg: cmd.arg.map(str::to_string),
            },
        );
        let encrypted = rec.in_tls();
        let credential = |mechanism: &str, username: Option<&str>| Credential {
            ts,
            mechanism: mechanism.to_string(),
            username: username.map(str::to_string),
            password: None,
            success: None,
            encrypted,
            details: CredentialDetails::default(),
        };
        let request = match cmd.verb {
            Verb::User => {
                let cred = push_credential(rec, credential("USER", cmd.arg));
                self.open_user = Some(cred);
                Request::User { cred }
            }
            Verb::Pass => {
                let password = cmd.arg.unwrap_or("").to_string();
                let open = self
                    .open_user
                    .take()
                    .filter(|&i| rec.credentials.get(i).is_some_and(|c| c.password.is_none()));
                let cred = match open {
                    Some(i) => i,
                    None => push_credential(rec, credential("USER", None)),
                };
                if let Some(c) = rec.credentials.get_mut(cred) {
                    c.password = Some(password);
                }
                Request::Pass { cred }
            }
            Verb::Apop => {
                self.open_user = None;
                let (name, digest) = cmd.apop_args();
                let mut c = credential("APOP", name);
                c.details.response = digest.map(str::to_string);
                Request::Apop {
                    cred: push_credential(rec, c),
                }
            }
            Verb::Auth => match cmd.auth_args() {
                None => Request::AuthList,
                Some(args) => {
                    self.open_user = None;
                    if let Some(old) = self.auth.take() {
                        self.finish_auth(old, rec);
                    }
                    let mechanism = Mechanism::parse(args.mechanism);
                    let cred = push_credential(rec, credential(mechanism.name(), None));
                    self.auth = Some(AuthFlow {
                        exchange: SaslExchange::start(
                            args.mechanism,
                            args.initial_response,
                            ts,
                            encrypted,
                        ),
                        cred,
                        ts,
                        queued: VecDeque::new(),
                        challenges: 0,
                        fed_challenges: 0,
                        responses: 0,
                        verdict: None,
                        forced: false,
                        client_moved_on: false,
                    });
                    Request::SaslAuth
                }
            },
            Verb::Capa => Request::Capa,
            Verb::Stls => {
                self.stls_wait = true;
                Request::Stls
            }
            Verb::Stat => Request::Stat,
            Verb::List => Request::List(cmd.scope()),
            Verb::Uidl => Request::Uidl(cmd.scope()),
            Verb::Retr => Request::Retr(cmd.message_number()),
            Verb::Top => Request::Top(cmd.message_number()),
            Verb::Dele => Request::Dele(cmd.message_number()),
            Verb::Rset => Request::Rset,
            Verb::Quit => Request::Quit,
            Verb::Noop | Verb::Last => Request::Transactional,
            Verb::Other => {
                rec.anomaly(
                    ts,
                    Some(Direction::Client),
                    "unknown_command",
                    format!("unknown command {}", cmd.verb_name()),
                );
                Request::Other(cmd.reply_shape())
            }
            Verb::Xtnd | Verb::Rpop | Verb::Utf8 | Verb::Lang => Request::Other(cmd.reply_shape()),
        };
        self.enqueue(ts, request, rec);
    }

    pub(super) fn enqueue(&mut self, ts: Timestamp, request: Request, rec: &mut SessionRecord) {
        if self.unmatched_until.is_some_and(|t| ts <= t) {
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "reply_not_paired",
                "a command older than a reply already taken as answering nothing",
            );
            if request == Request::SaslAuth
                && let Some(flow) = self.auth.as_mut()
            {
                flow.forced = true;
            }
            return;
        }
        if self.commands_pending >= self.max_pending || !self.queue_charge.admit(&self.queue, 0) {
            // Only reached when nobody waits any more (degraded, or the server has finished).
            if let Some(pos) = self
                .queue
                .iter()
                .position(|p| matches!(p, Pending::Command { .. }))
            {
                self.queue.remove(pos);
                self.commands_pending -= 1;
                rec.anomaly(
                    ts,
                    Some(Direction::Client),
                    "pending_overflow",
                    format!(
                        "more than {} commands without a reply; the oldest is no longer paired",
                        self.max_pending
                    ),
                );
            }
        }
        self.queue.push_back(Pending::Command { ts, request });
        self.commands_pending += 1;
    }

    pub(super) fn client_gap(&mut self, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        if self.client_tls {
            self.tls_gap(Direction::Client, len, ts, rec);
            return;
        }
        rec.push_event(ts, Direction::Client, EventKind::Gap { bytes: len });
        self.client.framer.clear();
        if let Some(flow) = self.auth.as_mut()
            && flow.responses_owed()
        {
            // The missing bytes held the response the server asked for.
            flow.on_response(None);
            self.finish_auth_if_complete(rec);
            return;
        }
        if !matches!(self.queue.back(), Some(Pending::Lost)) {
            self.queue.push_back(Pending::Lost);
        }
        self.client_after_gap = true;
    }

    // ----- server side ------------------------------------------------------------------
}
