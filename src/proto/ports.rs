//! Which server ports carry which protocol: the default mail ports and `--port` mappings.

use super::Framing;
use crate::session::Protocol;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Which server ports carry which protocol, and how they start.
#[derive(Debug, Clone)]
pub struct PortMap {
    /// Shared, so every probed flow can hold the mapping for a tunnel's target port.
    map: Arc<BTreeMap<u16, (Protocol, Framing)>>,
}

impl Default for PortMap {
    fn default() -> Self {
        let mut map = BTreeMap::new();
        map.insert(25, (Protocol::Smtp, Framing::Plain));
        map.insert(587, (Protocol::Smtp, Framing::Plain));
        map.insert(465, (Protocol::Smtp, Framing::ImplicitTls));
        map.insert(110, (Protocol::Pop3, Framing::Plain));
        map.insert(995, (Protocol::Pop3, Framing::ImplicitTls));
        PortMap { map: Arc::new(map) }
    }
}

/// A `--port` mapping that could not be understood; each says which part is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    /// No `=` between the protocol and the port.
    #[error("bad port mapping {0:?}: expected PROTO=PORT, e.g. smtp=2525")]
    NoEquals(String),
    /// The protocol is not one mailsift dissects.
    #[error(
        "bad port mapping {spec:?}: unknown protocol {proto:?} (known: smtp, smtps, pop3, pop3s)"
    )]
    UnknownProtocol {
        /// The whole mapping.
        spec: String,
        /// The protocol as given.
        proto: String,
    },
    /// The port is not a number from 1 to 65535.
    #[error("bad port mapping {spec:?}: the port {port:?} is not a number from 1 to 65535")]
    BadPort {
        /// The whole mapping.
        spec: String,
        /// The port as given.
        port: String,
    },
}

impl PortMap {
    /// Adds or replaces a mapping from text like `smtp=2525` or `pop3s=1995`.
    pub fn add_spec(&mut self, spec: &str) -> Result<(), PortSpecError> {
        let (proto, port) = spec
            .split_once('=')
            .ok_or_else(|| PortSpecError::NoEquals(spec.to_string()))?;
        let entry = match proto.trim().to_ascii_lowercase().as_str() {
            "smtp" | "submission" => (Protocol::Smtp, Framing::Plain),
            "smtps" => (Protocol::Smtp, Framing::ImplicitTls),
            "pop3" | "pop" => (Protocol::Pop3, Framing::Plain),
            "pop3s" | "pops" => (Protocol::Pop3, Framing::ImplicitTls),
            _ => {
                return Err(PortSpecError::UnknownProtocol {
                    spec: spec.to_string(),
                    proto: proto.trim().to_string(),
                });
            }
        };
        let port = match port.trim().parse::<u16>() {
            Ok(n) if n != 0 => n,
            _ => {
                return Err(PortSpecError::BadPort {
                    spec: spec.to_string(),
                    port: port.trim().to_string(),
                });
            }
        };
        Arc::make_mut(&mut self.map).insert(port, entry);
        Ok(())
    }

    /// The protocol served on `port`, if any.
    pub fn get(&self, port: u16) -> Option<(Protocol, Framing)> {
        self.map.get(&port).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_mapping_names_the_part_that_is_wrong() {
        let mut map = PortMap::default();
        let err = |spec| map.clone().add_spec(spec).unwrap_err().to_string();
        assert!(err("smtp=70000").contains("the port \"70000\""));
        assert!(err("smtp=0").contains("the port \"0\""));
        assert!(err("imap=143").contains("unknown protocol \"imap\""));
        assert!(err("2525").contains("expected PROTO=PORT"));
        map.add_spec("SMTP = 2525").unwrap();
        assert_eq!(map.get(2525), Some((Protocol::Smtp, Framing::Plain)));
    }
}
