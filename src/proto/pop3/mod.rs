//! POP3 (RFC 1939, 2449, 2595, 5034): commands, multi-line replies, logins, the mailbox view.

use serde::Serialize;

/// What a POP3 session established, beyond its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pop3Summary {
    /// The user who logged in or tried to.
    pub user: Option<String>,
}
