//! mailsift: turns network captures into readable, trustworthy accounts of SMTP and POP3 traffic.
//!
//! The pipeline: [`capture`] (packet sources) -> [`net`] (decode, flows, reassembly) ->
//! [`proto`] (dissectors) -> [`session`] records -> [`output`]. [`engine`] drives it;
//! [`findings`] judges each finished session.

pub mod capture;
pub mod direction;
pub mod engine;
pub mod findings;
pub mod limits;
pub mod mail;
pub mod net;
pub mod output;
pub mod progress;
pub mod proto;
pub mod session;
pub mod time;
