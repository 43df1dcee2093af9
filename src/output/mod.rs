//! Outputs: they read finished session records and never parse traffic.

pub mod activity;
pub mod anomalies;
pub mod credentials;
pub mod ecs;
pub mod extract;
pub mod file;
pub mod findings;
pub mod hashcat;
pub mod html;
pub mod json;
pub mod naming;
pub mod redact;
pub mod review;
pub mod table;
pub mod tally;
pub mod transcript;
pub mod zeek;
