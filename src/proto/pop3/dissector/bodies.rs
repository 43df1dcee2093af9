//! Multi-line bodies (RETR and TOP messages, listings) and the server gaps that cut them.

use super::*;

impl Pop3Dissector {
    pub(super) fn open_body(
        &mut self,
        request: Request,
        status: PendingStatus,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) {
        let listing = |listing| BodySink::Listing {
            framer: LineFramer::new(self.max_line_len).with_budget(self.keep.budget.clone()),
            listing,
        };
        let sink = match request {
            Request::Retr(number) => BodySink::Message {
                collector: None,
                source: MessageSource::Retr,
                number,
            },
            Request::Top(number) => BodySink::Message {
                collector: None,
                source: MessageSource::Top,
                number,
            },
            Request::List(_) => listing(Listing::Sizes),
            Request::Uidl(_) => listing(Listing::Uids),
            Request::Capa => listing(Listing::Capa(Capabilities::default())),
            Request::AuthList => listing(Listing::AuthMechanisms(Vec::new())),
            _ => BodySink::Discard,
        };
        if matches!(
            request,
            Request::Retr(_) | Request::Top(_) | Request::List(_) | Request::Uidl(_)
        ) {
            Self::in_transaction(rec);
        }
        self.server_phase = ServerPhase::Body(Box::new(Body {
            scanner: DotScanner::new(),
            status: Some(status),
            sink,
            last_ts: ts,
            cut: false,
        }));
    }

    /// Feeds body bytes; returns how many belonged to the body.
    pub(super) fn body_bytes(
        &mut self,
        input: &[u8],
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> usize {
        let keep = &self.keep;
        let ServerPhase::Body(body) = &mut self.server_phase else {
            return 0;
        };
        body.last_ts = ts;
        let Body { scanner, sink, .. } = &mut **body;
        let result = match sink {
            BodySink::Message {
                collector, source, ..
            } => {
                let source = *source;
                scanner.scan(input, |chunk| {
                    collector
                        .get_or_insert_with(|| keep.collector(source, ts))
                        .push(chunk, ts)
                })
            }
            BodySink::Listing { framer, listing } => {
                let (result, unterminated) = scan_listing(scanner, framer, input, |line| {
                    listing_line(listing, line.bytes, line.overlong(), ts, rec)
                });
                if unterminated {
                    rec.anomaly(
                        ts,
                        Some(Direction::Server),
                        "listing_unterminated",
                        "a listing ended without its \".\" line: a status line followed it",
                    );
                    let phase = std::mem::replace(
                        &mut self.server_phase,
                        ServerPhase::Lines { after_gap: false },
                    );
                    if let ServerPhase::Body(body) = phase {
                        self.finish_body(*body, ts, false, rec);
                    }
                    return result.consumed;
                }
                result
            }
            BodySink::Discard | BodySink::Skip { .. } => scanner.scan(input, |_| {}),
        };
        if result.ended {
            let phase = std::mem::replace(
                &mut self.server_phase,
                ServerPhase::Lines { after_gap: false },
            );
            if let ServerPhase::Body(body) = phase {
                self.finish_body(*body, ts, true, rec);
            }
        }
        result.consumed
    }

    /// Ends a body: its status event, its message or listing. `complete` is false when a
    /// gap or the end of the capture cut it.
    pub(super) fn finish_body(
        &mut self,
        body: Body,
        ts: Timestamp,
        complete: bool,
        rec: &mut SessionRecord,
    ) {
        let complete = complete && !body.cut;
        let Body {
            scanner,
            status,
            sink,
            ..
        } = body;
        let dir = Some(Direction::Server);
        if scanner.bare_lf() > 0 {
            rec.anomaly(ts, dir, "bare_lf", "line ended by LF without CR");
        }
        if let Some(status) = status {
            status.emit(Some(scanner.lines()), ts, rec);
        }
        match sink {
            BodySink::Message {
                collector,
                source,
                number,
            } => {
                let collector = collector.unwrap_or_else(|| self.keep.collector(source, ts));
                let uidl = number.and_then(|n| {
                    rec.pop3
                        .as_ref()
                        .and_then(|s| s.mailbox.uids.get(&n).cloned())
                });
                let size = collector.size();
                let envelope = Envelope {
                    number,
                    uidl,
                    ..Envelope::default()
                };
                let complete = complete && source == MessageSource::Retr;
                let mut collector = collector;
                let admission = rec.admit_message(ts, Direction::Server, size);
                if admission != MessageAdmission::Dropped {
                    if admission == MessageAdmission::HashOnly {
                        collector.skip_mime();
                    }
                    let index = collector.finish(envelope, complete, rec);
                    rec.push_event(
                        ts,
                        Direction::Server,
                        EventKind::MessageData {
                            message: index,
                            bytes: size,
                        },
                    );
                }
                if let Some(n) = number {
                    let mb = &mut summary(rec).mailbox;
                    let marked = match source {
                        MessageSource::Top => mb.mark_partially_retrieved(n),
                        _ => mb.mark_retrieved(n),
                    };
                    if marked.is_err() {
                        listing_full(ts, rec);
                    }
                }
            }
            BodySink::Listing { listing, .. } => match listing {
                Listing::Capa(caps) => summary(rec).capabilities = Some(caps),
                Listing::AuthMechanisms(mechs) => summary(rec).auth_mechanisms = Some(mechs),
                Listing::Sizes | Listing::Uids => {}
            },
            BodySink::Discard => {}
            BodySink::Skip { reason } => rec.anomaly(
                ts,
                dir,
                "resync",
                format!(
                    "skipped to the end of a body whose start was not seen ({reason}); {} lines",
                    scanner.lines()
                ),
            ),
        }
    }

    pub(super) fn server_gap(&mut self, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        if matches!(self.server_phase, ServerPhase::Tls) {
            self.tls_gap(Direction::Server, len, ts, rec);
            return;
        }
        rec.push_event(ts, Direction::Server, EventKind::Gap { bytes: len });
        self.server.framer.clear();
        let phase = std::mem::replace(
            &mut self.server_phase,
            ServerPhase::Lines { after_gap: true },
        );
        match phase {
            ServerPhase::Body(mut body) if matches!(body.sink, BodySink::Message { .. }) => {
                // The message goes on after the gap: its MIME walk resumes at the next boundary.
                if let BodySink::Message {
                    collector, source, ..
                } = &mut body.sink
                {
                    let source = *source;
                    collector
                        .get_or_insert_with(|| self.keep.collector(source, ts))
                        .gap(len, ts);
                }
                if !body.cut {
                    rec.anomaly(
                        ts,
                        Some(Direction::Server),
                        "data_after_gap",
                        "a gap cut into a message: the rest of its body is read into it, which is incomplete",
                    );
                }
                body.cut = true;
                body.scanner = DotScanner::new();
                self.server_phase = ServerPhase::Body(body);
            }
            ServerPhase::Body(body) => {
                let sink = match body.sink {
                    BodySink::Skip { reason } => BodySink::Skip { reason },
                    _ => {
                        self.finish_body(*body, ts, false, rec);
                        BodySink::Skip {
                            reason: "gap inside the body",
                        }
                    }
                };
                // The rest of the body runs to its terminator, which cannot occur inside it.
                self.server_phase = ServerPhase::Body(Box::new(Body {
                    scanner: DotScanner::new(),
                    status: None,
                    sink,
                    last_ts: ts,
                    cut: false,
                }));
            }
            ServerPhase::Probe(status) => {
                let status_ts = status.ts;
                status.emit(None, status_ts, rec);
            }
            ServerPhase::StlsOutcome { .. } => {
                self.server_phase = ServerPhase::StlsOutcome {
                    cut_line: CutLine::Unknown,
                };
            }
            ServerPhase::Greeting => {
                if self.handshake_seen {
                    rec.anomaly(
                        ts,
                        Some(Direction::Server),
                        "greeting_lost",
                        "a gap swallowed the greeting",
                    );
                }
                if !matches!(self.queue.front(), Some(Pending::Lost)) {
                    self.queue.push_front(Pending::Lost);
                }
            }
            ServerPhase::Lines { .. } => {
                if !self.gap_front(ts, rec) {
                    self.held = Some(Held::Gap { ts });
                }
            }
            ServerPhase::Tls => {}
        }
    }

    /// A server gap between replies damaged the reply to the queue's front command; false
    /// if that command is not known yet.
    pub(super) fn gap_front(&mut self, ts: Timestamp, rec: &mut SessionRecord) -> bool {
        match self.resolve_front(ts) {
            Front::Wait => false,
            Front::Unmatched | Front::Lost => true,
            Front::Command(request) => {
                self.pop_command();
                match request {
                    Request::Stls => {
                        self.server_phase = ServerPhase::StlsOutcome {
                            cut_line: CutLine::Unknown,
                        };
                    }
                    Request::SaslAuth => {
                        if let Some(flow) = self.auth.as_mut() {
                            flow.forced = true;
                        }
                    }
                    _ => {}
                }
                rec.anomaly(
                    ts,
                    Some(Direction::Server),
                    "reply_lost",
                    "a gap swallowed the start of a reply; its command stays unanswered",
                );
                if !matches!(self.queue.front(), Some(Pending::Lost)) {
                    self.queue.push_front(Pending::Lost);
                }
                true
            }
        }
    }

    // ----- credentials ------------------------------------------------------------------
}

/// Scans listing bytes line by line; stops before a line that opens with `+` or `-`, which
/// no listing line does (LIST and UIDL lines start with a number, capabilities and SASL
/// mechanisms with a letter): the server has moved on to the next reply without the `.`
/// line. Returns what was scanned, and whether the listing ended that way.
fn scan_listing(
    scanner: &mut DotScanner,
    framer: &mut LineFramer,
    input: &[u8],
    mut on_line: impl FnMut(crate::proto::line::Line<'_>),
) -> (ScanResult, bool) {
    let mut used = 0;
    while let Some(rest) = input.get(used..).filter(|r| !r.is_empty()) {
        if scanner.at_line_start() && framer.is_empty() && matches!(rest[0], b'+' | b'-') {
            return (
                ScanResult {
                    consumed: used,
                    ended: false,
                },
                true,
            );
        }
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |p| p + 1);
        let r = scanner.scan(&rest[..end], |chunk| {
            let mut chunk = chunk;
            while let Some(line) = framer.next_line(&mut chunk) {
                on_line(line);
            }
        });
        used += r.consumed;
        if r.ended {
            return (
                ScanResult {
                    consumed: used,
                    ended: true,
                },
                false,
            );
        }
    }
    (
        ScanResult {
            consumed: used,
            ended: false,
        },
        false,
    )
}
