//! Outputs: they read finished session records and never parse traffic.

pub mod activity;
pub mod credentials;
pub mod extract;
pub mod findings;
pub mod hashcat;
pub mod json;
pub mod redact;
pub mod review;
pub mod table;
