//! Network layers: link and IP decoding, defragmentation, TCP flows and stream reassembly.

pub mod decode;
pub mod defrag;
pub mod flow;
pub mod link;
pub mod reassembly;
pub mod seq;
