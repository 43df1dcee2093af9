//! SMTP (RFC 5321 and extensions): commands, replies, AUTH, STARTTLS, DATA and BDAT.

use serde::Serialize;

/// What an SMTP session established, beyond its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SmtpSummary {
    /// The last HELO/EHLO argument.
    pub helo: Option<String>,
}
