//! TCP sequence numbers with wrapping (RFC 1982 style) comparison.
