//! The message decoder this crate used before the streaming one, kept for tests as an oracle:
//! the whole message parsed at once by `mail-parser`, behind a bounded pre-scan.

pub(crate) mod guard;
pub(crate) mod mime;

pub(crate) use mime::decode;
