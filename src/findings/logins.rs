//! Logins across attempts: a success after failures in one session, and the run-level rules
//! over every session's logins ([`LoginTracker`]: brute force, a login after failures from
//! the same client in other sessions).

use super::*;

pub(super) fn login_after_failures(rec: &SessionRecord, out: &mut Vec<Finding>) {
    // Credentials are recorded in the order the client made the attempts (stream order).
    // Their times are no substitute: a retransmitted or reordered segment can give an earlier
    // attempt a later capture time.
    let attempts = rec
        .credentials
        .iter()
        .filter(|c| c.success.is_some() && !c.is_proxy_login());
    let mut failed: Vec<LoginAttempt> = Vec::new();
    let mut failures = 0u64;
    for c in attempts {
        if c.success == Some(false) {
            failures += 1;
            if failed.len() < MAX_LISTED_FAILURES {
                failed.push(attempt(c));
            }
            continue;
        }
        if failures == 0 {
            continue;
        }
        let severity = if failures >= DEFAULT_BRUTE_FORCE_THRESHOLD {
            Severity::High
        } else {
            Severity::Medium
        };
        let plural = if failures == 1 { "" } else { "s" };
        let more = failures - failed.len() as u64;
        let mut f = Rule::LoginAfterFailures.finding(
            severity,
            c.ts,
            format!(
                "login as {} ({}) succeeded after {failures} failed attempt{plural} in this session \
                 (failed: {})",
                user_shown(c.username.as_deref()),
                mechanism_label(&c.mechanism),
                failure_list(&failed, more)
            ),
        );
        f.details = Some(Box::new(FindingDetails {
            login: Some(attempt(c)),
            failures: failed,
            more_failures: more,
            ..FindingDetails::default()
        }));
        out.push(f);
        return;
    }
}

/// Failed logins listed in one `login-after-failures` finding; the rest are counted.
pub const MAX_LISTED_FAILURES: usize = 10;

/// Failed-login times the run keeps, for counting the failures before a login; past this,
/// later failures are still counted in totals, not timed.
pub const MAX_TIMED_FAILURES: usize = 1_000_000;

/// Successful logins per client kept while no failure from another session precedes them (a
/// later session may bring one); past this, the earliest is dropped.
pub(super) const MAX_PENDING_SUCCESSES: usize = 64;

/// An attempt of this session, as its own findings name it (no session id).
fn attempt(c: &Credential) -> LoginAttempt {
    LoginAttempt {
        ts: c.ts,
        session: None,
        user: c.username.clone(),
        mechanism: c.mechanism.clone(),
    }
}

/// `alice, bob (session 4), and 3 more` for a finding's message. Times stay in the details:
/// a message is compared as text, and capture times vary by microseconds between the live
/// and the file reading of the same traffic.
fn failure_list(failed: &[LoginAttempt], more: u64) -> String {
    let mut items: Vec<String> = failed
        .iter()
        .map(|a| {
            let session = a
                .session
                .map(|id| format!(" (session {id})"))
                .unwrap_or_default();
            format!("{}{session}", user_shown(a.user.as_deref()))
        })
        .collect();
    if more > 0 {
        items.push(format!("and {more} more"));
    }
    items.join(", ")
}

/// A finding about the whole run rather than one session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunFinding {
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
    /// The client IP it concerns, if one.
    pub client: Option<IpAddr>,
    /// Ids of the sessions involved (at most a few dozen).
    pub sessions: Vec<u64>,
}

/// One login attempt remembered by the tracker.
#[derive(Debug, Clone)]
struct Mark {
    ts: Timestamp,
    session: u64,
    username: Option<String>,
    mechanism: String,
}

impl Mark {
    fn attempt(&self) -> LoginAttempt {
        LoginAttempt {
            ts: self.ts,
            session: Some(self.session),
            user: self.username.clone(),
            mechanism: self.mechanism.clone(),
        }
    }

    fn key(&self) -> (Timestamp, u64) {
        (self.ts, self.session)
    }
}

/// The best two marks from distinct sessions (earliest or latest, by `better`).
///
/// Enough to decide exactly whether some failure precedes some success of another session:
/// if the earliest failure and the latest success share a session, the runner-up on either
/// side is from another session and still brackets the pair.
#[derive(Debug, Clone, Default)]
struct BestTwo(Vec<Mark>);

impl BestTwo {
    fn offer(&mut self, mark: Mark, better: fn(Timestamp, Timestamp) -> bool) {
        if let Some(same) = self.0.iter_mut().find(|m| m.session == mark.session) {
            if better(mark.ts, same.ts) {
                *same = mark;
            }
        } else {
            self.0.push(mark);
        }
        self.0.sort_by(|a, b| {
            if better(a.ts, b.ts) {
                std::cmp::Ordering::Less
            } else if better(b.ts, a.ts) {
                std::cmp::Ordering::Greater
            } else {
                a.session.cmp(&b.session)
            }
        });
        self.0.truncate(2);
    }
}

/// What the run knows about one client's logins.
#[derive(Debug, Clone, Default)]
struct ClientLogins {
    failures: u64,
    first_failure: Option<Timestamp>,
    last_failure: Option<Timestamp>,
    failure_sessions: Vec<u64>,
    more_failure_sessions: u64,
    users: Vec<String>,
    more_users: bool,
    earliest_failures: BestTwo,
    /// The earliest failures, by time (at most [`MAX_LISTED_FAILURES`]).
    first_failures: Vec<Mark>,
    /// The time of every failure (within the run's [`MAX_TIMED_FAILURES`]).
    failure_times: Vec<Timestamp>,
    /// The earliest success with a failure from another session before it. Once a success
    /// has one it keeps it (failures are only added), so only the earliest such matters.
    first_success_after_failure: Option<Mark>,
    /// Successes with no such failure yet, earliest first (at most [`MAX_PENDING_SUCCESSES`]).
    pending_successes: Vec<Mark>,
}

impl ClientLogins {
    /// Whether a failure from another session precedes `s`. Exact with the earliest two
    /// failures of distinct sessions (see [`BestTwo`]).
    fn follows_a_failure(&self, s: &Mark) -> bool {
        self.earliest_failures
            .0
            .iter()
            .any(|f| f.session != s.session && f.ts < s.ts)
    }

    /// Moves the pending successes that now follow a failure to the candidate.
    fn settle(&mut self) {
        let pending = std::mem::take(&mut self.pending_successes);
        for s in pending {
            if self.follows_a_failure(&s) {
                if self
                    .first_success_after_failure
                    .as_ref()
                    .is_none_or(|best| s.key() < best.key())
                {
                    self.first_success_after_failure = Some(s);
                }
            } else if self
                .first_success_after_failure
                .as_ref()
                .is_none_or(|best| s.key() < best.key())
            {
                // Later than the candidate it could never be reported.
                self.pending_successes.push(s);
            }
        }
        self.pending_successes.sort_by_key(Mark::key);
        let excess = self
            .pending_successes
            .len()
            .saturating_sub(MAX_PENDING_SUCCESSES);
        self.pending_successes.drain(..excess);
    }

    fn remember_failure(&mut self, mark: Mark) {
        let at = self
            .first_failures
            .partition_point(|m| m.key() <= mark.key());
        if at < MAX_LISTED_FAILURES {
            self.first_failures.insert(at, mark);
            self.first_failures.truncate(MAX_LISTED_FAILURES);
        }
    }
}

/// Counts logins per client IP across the run, for the run-level rules (`brute-force`,
/// `login-after-failures` across sessions). Feed it every finished session.
#[derive(Debug, Clone)]
pub struct LoginTracker {
    threshold: u64,
    client_limit: usize,
    clients: HashMap<IpAddr, ClientLogins>,
    untracked_clients: u64,
    first_untracked: Option<Timestamp>,
    timed_failures: usize,
}

impl Default for LoginTracker {
    fn default() -> Self {
        LoginTracker::new(DEFAULT_BRUTE_FORCE_THRESHOLD)
    }
}

impl LoginTracker {
    /// A tracker that reports brute force at `threshold` failed logins per client (at least 1).
    pub fn new(threshold: u64) -> Self {
        LoginTracker {
            threshold: threshold.max(1),
            client_limit: MAX_TRACKED_CLIENTS,
            clients: HashMap::new(),
            untracked_clients: 0,
            first_untracked: None,
            timed_failures: 0,
        }
    }

    /// The same tracker counting at most `limit` clients (default [`MAX_TRACKED_CLIENTS`]).
    pub fn with_client_limit(mut self, limit: usize) -> Self {
        self.client_limit = limit;
        self
    }

    /// Counts the login attempts of a finished session.
    pub fn observe(&mut self, rec: &SessionRecord) {
        if !rec
            .credentials
            .iter()
            .any(|c| c.success.is_some() && !c.is_proxy_login())
        {
            return;
        }
        let full = self.clients.len() >= self.client_limit;
        let client = match self.clients.get_mut(&rec.client.ip) {
            Some(c) => c,
            None if full => {
                self.untracked_clients += 1;
                let ts = rec.first_seen;
                self.first_untracked = Some(self.first_untracked.map_or(ts, |t| t.min(ts)));
                return;
            }
            None => self.clients.entry(rec.client.ip).or_default(),
        };
        let mut session_failed = false;
        // A proxy login is to another server than the mail server's: not counted here.
        for c in rec.credentials.iter().filter(|c| !c.is_proxy_login()) {
            let mark = || Mark {
                ts: c.ts,
                session: rec.id,
                username: c.username.clone(),
                mechanism: c.mechanism.clone(),
            };
            match c.success {
                Some(false) => {
                    session_failed = true;
                    client.failures += 1;
                    client.first_failure = Some(client.first_failure.map_or(c.ts, |t| t.min(c.ts)));
                    client.last_failure = Some(client.last_failure.map_or(c.ts, |t| t.max(c.ts)));
                    if let Some(u) = &c.username
                        && !client.users.contains(u)
                    {
                        if client.users.len() < MAX_REMEMBERED_USERS {
                            client.users.push(u.clone());
                        } else {
                            client.more_users = true;
                        }
                    }
                    client.earliest_failures.offer(mark(), |a, b| a < b);
                    client.remember_failure(mark());
                    if self.timed_failures < MAX_TIMED_FAILURES {
                        self.timed_failures += 1;
                        client.failure_times.push(c.ts);
                    }
                }
                Some(true) => client.pending_successes.push(mark()),
                None => {}
            }
        }
        client.settle();
        if session_failed {
            if client.failure_sessions.len() < MAX_LISTED_SESSIONS {
                client.failure_sessions.push(rec.id);
            } else {
                client.more_failure_sessions += 1;
            }
        }
    }

    /// The run-level findings, ordered by time.
    pub fn finish(self) -> Vec<RunFinding> {
        let mut out = Vec::new();
        for (ip, c) in &self.clients {
            if c.failures >= self.threshold {
                out.push(self.brute_force(*ip, c));
            }
            if let Some(f) = self.cross_session_success(*ip, c) {
                out.push(f);
            }
        }
        if self.untracked_clients > 0 {
            out.push(RunFinding {
                finding: Rule::LoginTrackingLimit.finding(
                    Severity::Info,
                    self.first_untracked.unwrap_or_default(),
                    format!(
                        "logins of {} more clients were not counted (limit of {} clients): \
                         brute-force and login-after-failures findings may be missing",
                        self.untracked_clients, self.client_limit
                    ),
                ),
                client: None,
                sessions: Vec::new(),
            });
        }
        out.sort_by(|a, b| {
            (a.finding.ts, &a.finding.rule, a.client).cmp(&(
                b.finding.ts,
                &b.finding.rule,
                b.client,
            ))
        });
        out
    }

    fn brute_force(&self, ip: IpAddr, c: &ClientLogins) -> RunFinding {
        let mut sessions = c.failure_sessions.clone();
        sessions.sort_unstable();
        let session_count = sessions.len() as u64 + c.more_failure_sessions;
        let mut users: Vec<String> = c.users.iter().map(|u| quoted(u)).collect();
        if c.more_users {
            users.push("others".to_string());
        }
        let users = if users.is_empty() {
            String::new()
        } else {
            format!(" (users: {})", users.join(", "))
        };
        let first = c.first_failure.unwrap_or_default();
        let last = c.last_failure.unwrap_or_default();
        let plural = if session_count == 1 { "" } else { "s" };
        RunFinding {
            finding: Rule::BruteForce.finding(
                Severity::Medium,
                first,
                format!(
                    "{} failed logins from {ip} in {session_count} session{plural} between {first} \
                     and {last}{users}",
                    c.failures
                ),
            ),
            client: Some(ip),
            sessions,
        }
    }

    fn cross_session_success(&self, ip: IpAddr, c: &ClientLogins) -> Option<RunFinding> {
        let success = c.first_success_after_failure.as_ref()?;
        let failure = c
            .earliest_failures
            .0
            .iter()
            .find(|f| f.session != success.session && f.ts < success.ts)?;
        let severity = if c.failures >= self.threshold {
            Severity::High
        } else {
            Severity::Medium
        };
        let listed: Vec<LoginAttempt> = c
            .first_failures
            .iter()
            .filter(|f| f.ts < success.ts)
            .map(Mark::attempt)
            .collect();
        let mut times = c.failure_times.clone();
        times.sort_unstable();
        let before = times.partition_point(|&t| t < success.ts) as u64;
        let more = before.saturating_sub(listed.len() as u64);
        let mut finding = Rule::LoginAfterFailures.finding(
            severity,
            success.ts,
            format!(
                "login as {} ({}) from {ip} succeeded (session {}) after failed logins from the \
                 same client in other sessions ({} failures in the run, {} before it: {})",
                user_shown(success.username.as_deref()),
                mechanism_label(&success.mechanism),
                success.session,
                c.failures,
                before.max(listed.len() as u64),
                failure_list(&listed, more)
            ),
        );
        finding.details = Some(Box::new(FindingDetails {
            login: Some(success.attempt()),
            failures: listed,
            more_failures: more,
            ..FindingDetails::default()
        }));
        Some(RunFinding {
            finding,
            client: Some(ip),
            sessions: vec![failure.session, success.session],
        })
    }
}
