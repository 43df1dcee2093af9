//! The two sides of a TCP connection, and values kept once per side.

use serde::Serialize;

/// Which side of a TCP connection sent something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The connection's initiator (SYN sender, or the side off the mail port).
    Client,
    /// The side on the mail port.
    Server,
}

impl Direction {
    /// The other side.
    pub fn opposite(self) -> Direction {
        match self {
            Direction::Client => Direction::Server,
            Direction::Server => Direction::Client,
        }
    }

    /// Index 0 for the client, 1 for the server, for two-element arrays.
    pub fn index(self) -> usize {
        match self {
            Direction::Client => 0,
            Direction::Server => 1,
        }
    }

    /// Lower-case name as used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Client => "client",
            Direction::Server => "server",
        }
    }
}

/// A value kept once per direction, serialised as `{"client": .., "server": ..}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PerDirection<T> {
    /// The client's value.
    pub client: T,
    /// The server's value.
    pub server: T,
}

impl<T> PerDirection<T> {
    /// The value for one direction.
    pub fn get(&self, dir: Direction) -> &T {
        match dir {
            Direction::Client => &self.client,
            Direction::Server => &self.server,
        }
    }

    /// The value for one direction, mutably.
    pub fn get_mut(&mut self, dir: Direction) -> &mut T {
        match dir {
            Direction::Client => &mut self.client,
            Direction::Server => &mut self.server,
        }
    }
}
