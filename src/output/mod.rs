//! Outputs: they read finished session records and never parse traffic.

pub mod extract;
pub mod json;
pub mod table;
