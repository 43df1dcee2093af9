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

/// A `--port` mapping that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad port mapping {0:?}: expected PROTO=PORT with PROTO one of smtp, smtps, pop3, pop3s")]
pub struct PortSpecError(pub String);

impl PortMap {
    /// Adds or replaces a mapping from text like `smtp=2525` or `pop3s=1995`.
    pub fn add_spec(&mut self, spec: &str) -> Result<(), PortSpecError> {
        let err = || PortSpecError(spec.to_string());
        let (proto, port) = spec.split_once('=').ok_or_else(err)?;
        let port: u16 = port.trim().parse().map_err(|_| err())?;
        let entry = match proto.trim().to_ascii_lowercase().as_str() {
            "smtp" | "submission" => (Protocol::Smtp, Framing::Plain),
            "smtps" => (Protocol::Smtp, Framing::ImplicitTls),
            "pop3" | "pop" => (Protocol::Pop3, Framing::Plain),
            "pop3s" | "pops" => (Protocol::Pop3, Framing::ImplicitTls),
            _ => return Err(err()),
        };
        if port == 0 {
            return Err(err());
        }
        Arc::make_mut(&mut self.map).insert(port, entry);
        Ok(())
    }

    /// The protocol served on `port`, if any.
    pub fn get(&self, port: u16) -> Option<(Protocol, Framing)> {
        self.map.get(&port).copied()
    }
}
