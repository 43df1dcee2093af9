//! POP3 (RFC 1939, 2449, 2595, 3206, 5034): commands, multi-line replies, logins, the mailbox view.
//!
//! [`Pop3Dissector`] parses the client stream into commands and the server stream into
//! replies and pairs them through a queue of pending commands, so the record depends only on
//! each direction's bytes, never on how the capture interleaves them. See `dissector.rs` for
//! the hold and resynchronisation rules.

pub mod body;
pub mod command;
mod dissector;
pub mod mailbox;
pub mod reply;

pub use dissector::Pop3Dissector;
pub use mailbox::{Capabilities, Mailbox, Pop3State, Pop3Summary};

#[cfg(test)]
mod session_tests;
