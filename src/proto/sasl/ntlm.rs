//! NTLMSSP messages (MS-NLMP 2.2): typed, bounds-checked views over the decoded bytes.
//!
//! Every field is read through `get`, so a truncated or lying message yields missing fields,
//! never a panic. Views borrow from the message; nothing is copied until the caller decides.

/// `NTLMSSP\0`, the first eight bytes of every message.
pub(super) const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// Strings are UTF-16LE rather than the OEM code page.
pub(crate) const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
/// NTLMv1 with extended session security (the "NTLM2 session response").
pub(crate) const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
/// The Type 1 message carries a domain name.
const NEGOTIATE_OEM_DOMAIN_SUPPLIED: u32 = 0x0000_1000;
/// The Type 1 message carries a workstation name.
const NEGOTIATE_OEM_WORKSTATION_SUPPLIED: u32 = 0x0000_2000;

/// Why a message could not be read at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NtlmError {
    /// Fewer than the 12 bytes of signature and type.
    #[error("NTLM message too short ({0} bytes)")]
    TooShort(usize),
    /// The signature is not `NTLMSSP\0`.
    #[error("not an NTLMSSP message (bad signature)")]
    BadSignature,
    /// A message type other than 1, 2 or 3.
    #[error("unknown NTLM message type {0}")]
    UnknownType(u32),
}

/// A security buffer field (length, allocated length, offset) resolved against its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field<'a> {
    /// The header holding the field lies past the end of the message.
    Absent,
    /// The header points outside the message.
    OutOfBounds,
    /// The field's bytes (possibly empty).
    Present(&'a [u8]),
}

/// Type 1: the client's opening offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Negotiate<'a> {
    /// Flags the client asks for (absent in a truncated message).
    pub(crate) flags: Option<u32>,
    /// Client domain, in the OEM code page, when the client supplied one.
    pub(crate) domain: Field<'a>,
    /// Client workstation, in the OEM code page, when the client supplied one.
    pub(crate) workstation: Field<'a>,
}

/// Type 2: the server's challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Challenge<'a> {
    /// Flags the server settled on.
    pub(crate) flags: Option<u32>,
    /// The 8-byte server challenge.
    pub(crate) server_challenge: Option<[u8; 8]>,
    /// The server's target (domain or server) name.
    pub(crate) target_name: Field<'a>,
}

/// Type 3: the client's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Authenticate<'a> {
    /// LM (or LMv2) response.
    pub(crate) lm_response: Field<'a>,
    /// NT (or NTLMv2) response.
    pub(crate) nt_response: Field<'a>,
    /// Domain of the account.
    pub(crate) domain: Field<'a>,
    /// Account name.
    pub(crate) user: Field<'a>,
    /// Client workstation.
    pub(crate) workstation: Field<'a>,
    /// Flags, when the message is long enough to carry them (old clients omit them).
    pub(crate) flags: Option<u32>,
}

/// One NTLMSSP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NtlmMessage<'a> {
    /// Type 1.
    Negotiate(Negotiate<'a>),
    /// Type 2.
    Challenge(Challenge<'a>),
    /// Type 3.
    Authenticate(Authenticate<'a>),
}

/// Reads a message; fields that do not fit are reported as absent or out of bounds.
pub(crate) fn parse(msg: &[u8]) -> Result<NtlmMessage<'_>, NtlmError> {
    let (Some(signature), Some(kind)) = (msg.get(..8), le_u32(msg, 8)) else {
        return Err(NtlmError::TooShort(msg.len()));
    };
    if signature != SIGNATURE {
        return Err(NtlmError::BadSignature);
    }
    match kind {
        1 => Ok(NtlmMessage::Negotiate(parse_negotiate(msg))),
        2 => Ok(NtlmMessage::Challenge(parse_challenge(msg))),
        3 => Ok(NtlmMessage::Authenticate(parse_authenticate(msg))),
        other => Err(NtlmError::UnknownType(other)),
    }
}

fn parse_negotiate(msg: &[u8]) -> Negotiate<'_> {
    let flags = le_u32(msg, 12);
    let supplied = |bit: u32| flags.is_some_and(|f| f & bit != 0);
    // The domain and workstation headers are only meaningful when the flags say so; early
    // Type 1 messages end right after the flags.
    let domain = if supplied(NEGOTIATE_OEM_DOMAIN_SUPPLIED) {
        security_buffer(msg, 16)
    } else {
        Field::Absent
    };
    let workstation = if supplied(NEGOTIATE_OEM_WORKSTATION_SUPPLIED) {
        security_buffer(msg, 24)
    } else {
        Field::Absent
    };
    Negotiate {
        flags,
        domain,
        workstation,
    }
}

fn parse_challenge(msg: &[u8]) -> Challenge<'_> {
    let server_challenge = msg.get(24..32).and_then(|b| <[u8; 8]>::try_from(b).ok());
    Challenge {
        target_name: security_buffer(msg, 12),
        flags: le_u32(msg, 20),
        server_challenge,
    }
}

fn parse_authenticate(msg: &[u8]) -> Authenticate<'_> {
    let lm_response = security_buffer(msg, 12);
    let nt_response = security_buffer(msg, 20);
    let domain = security_buffer(msg, 28);
    let user = security_buffer(msg, 36);
    let workstation = security_buffer(msg, 44);
    // Old clients end the header after the workstation field (52 bytes) and put the payload
    // right there, so bytes 60..64 are flags only if no payload starts before 64.
    let payload_start = [12, 20, 28, 36, 44, 52]
        .into_iter()
        .filter_map(|at| {
            let len = le_u16(msg, at)?;
            let offset = le_u32(msg, at + 4)?;
            (len > 0).then_some(offset)
        })
        .min()
        .unwrap_or(u32::MAX);
    let flags = if payload_start >= 64 {
        le_u32(msg, 60)
    } else {
        None
    };
    Authenticate {
        lm_response,
        nt_response,
        domain,
        user,
        workstation,
        flags,
    }
}

/// Resolves the 8-byte security buffer header at `at`: length u16, allocated length u16,
/// offset u32, all little-endian.
fn security_buffer(msg: &[u8], at: usize) -> Field<'_> {
    let (Some(len), Some(offset)) = (le_u16(msg, at), le_u32(msg, at + 4)) else {
        return Field::Absent;
    };
    let start = offset as usize;
    match start
        .checked_add(usize::from(len))
        .and_then(|end| msg.get(start..end))
    {
        Some(bytes) => Field::Present(bytes),
        // An empty field may carry any offset; it holds nothing to read.
        None if len == 0 => Field::Present(&[]),
        None => Field::OutOfBounds,
    }
}

fn le_u16(msg: &[u8], at: usize) -> Option<u16> {
    let bytes = msg.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(bytes.try_into().ok()?))
}

fn le_u32(msg: &[u8], at: usize) -> Option<u32> {
    let bytes = msg.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u32) -> Vec<u8> {
        let mut m = SIGNATURE.to_vec();
        m.extend_from_slice(&kind.to_le_bytes());
        m
    }

    fn secbuf(m: &mut Vec<u8>, len: u16, offset: u32) {
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&offset.to_le_bytes());
    }

    #[test]
    fn rejects_short_and_foreign_messages() {
        assert_eq!(parse(b"NTLMSSP\0\x01"), Err(NtlmError::TooShort(9)));
        assert_eq!(parse(b"NTLMSSX\0\x01\0\0\0"), Err(NtlmError::BadSignature));
        assert_eq!(parse(&header(7)), Err(NtlmError::UnknownType(7)));
    }

    #[test]
    fn negotiate_reads_supplied_names_only() {
        let mut m = header(1);
        let flags = NEGOTIATE_UNICODE | NEGOTIATE_OEM_DOMAIN_SUPPLIED;
        m.extend_from_slice(&flags.to_le_bytes());
        secbuf(&mut m, 3, 32);
        secbuf(&mut m, 2, 35);
        m.extend_from_slice(b"DOMWS");
        let NtlmMessage::Negotiate(n) = parse(&m).unwrap() else {
            panic!("not a negotiate message");
        };
        assert_eq!(n.flags, Some(flags));
        assert_eq!(n.domain, Field::Present(b"DOM"));
        // Workstation bytes are there but the flag does not announce them.
        assert_eq!(n.workstation, Field::Absent);
    }

    #[test]
    fn challenge_without_room_for_the_nonce_has_none() {
        let mut m = header(2);
        secbuf(&mut m, 0, 0);
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&[1, 2, 3]);
        let NtlmMessage::Challenge(c) = parse(&m).unwrap() else {
            panic!("not a challenge message");
        };
        assert_eq!(c.flags, Some(1));
        assert_eq!(c.server_challenge, None);
        assert_eq!(c.target_name, Field::Present(&[]));
    }

    #[test]
    fn authenticate_flags_only_when_the_header_is_long() {
        // Old layout: payload starts at 52, where a modern header has the session key.
        let mut m = header(3);
        for _ in 0..5 {
            secbuf(&mut m, 0, 52);
        }
        m[36..38].copy_from_slice(&4u16.to_le_bytes()); // user length
        m.extend_from_slice(b"user\x01\0\0\0\x02\0\0\0\x03\0\0\0");
        let NtlmMessage::Authenticate(a) = parse(&m).unwrap() else {
            panic!("not an authenticate message");
        };
        assert_eq!(a.user, Field::Present(b"user"));
        assert_eq!(a.flags, None);
    }

    #[test]
    fn out_of_bounds_and_overflowing_offsets_are_flagged() {
        let mut m = header(3);
        secbuf(&mut m, 24, 1000);
        secbuf(&mut m, 0xffff, u32::MAX);
        let NtlmMessage::Authenticate(a) = parse(&m).unwrap() else {
            panic!("not an authenticate message");
        };
        assert_eq!(a.lm_response, Field::OutOfBounds);
        assert_eq!(a.nt_response, Field::OutOfBounds);
        assert_eq!(a.domain, Field::Absent);
        assert_eq!(a.flags, None);
    }
}
