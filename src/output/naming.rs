//! Names the report formats share: stable ids for sessions and attachments, and how rules
//! and severities are shown, so the ECS, Zeek and HTML outputs agree on them.

use crate::session::Severity;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` in base 62 (digits, upper case, lower case), at least one digit.
fn base62(mut n: u64, out: &mut String) {
    let mut digits = [0u8; 11];
    let mut len = 0;
    loop {
        digits[len] = BASE62[(n % 62) as usize];
        len += 1;
        n /= 62;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[..len].iter().rev().map(|&b| char::from(b)));
}

/// The session id a uid of [`session_uid`] names, if `uid` is one.
pub fn session_id_of_uid(uid: &str) -> Option<u64> {
    let digits = uid.strip_prefix('C')?;
    if digits.is_empty() || digits.len() > 11 {
        return None;
    }
    digits.bytes().try_fold(0u64, |n, b| {
        let d = BASE62.iter().position(|&x| x == b)? as u64;
        n.checked_mul(62)?.checked_add(d)
    })
}

/// The Zeek-style connection uid of a session: `C` and its id in base 62.
///
/// The session id is the number of the session's first packet, so the uid is the same on
/// every run over the same capture, and ties Zeek rows, ECS events and HTML anchors together.
pub fn session_uid(session_id: u64) -> String {
    let mut s = String::from("C");
    base62(session_id, &mut s);
    s
}

/// The Zeek-style file id of an attachment: `F`, then the session id, message index and
/// attachment index in base 62, separated by `_` (not a base-62 digit, so distinct
/// attachments always get distinct ids).
pub fn file_uid(session_id: u64, message: usize, attachment: usize) -> String {
    let mut s = String::from("F");
    base62(session_id, &mut s);
    s.push('_');
    base62(message as u64, &mut s);
    s.push('_');
    base62(attachment as u64, &mut s);
    s
}

/// A human name for a rule id: `cleartext-password` reads "Cleartext password".
pub fn rule_name(rule_id: &str) -> String {
    let mut out = String::with_capacity(rule_id.len());
    for (i, c) in rule_id.chars().enumerate() {
        match c {
            '-' | '_' => out.push(' '),
            c if i == 0 => out.extend(c.to_uppercase()),
            c => out.push(c),
        }
    }
    out
}

/// A severity as a number for tools that sort by it: info 1, low 2, medium 3, high 4.
pub fn severity_number(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_session_uid_reads_back_as_its_id() {
        for id in [0, 1, 61, 62, 199, 4_000_000_007, u64::MAX] {
            assert_eq!(session_id_of_uid(&session_uid(id)), Some(id), "{id}");
        }
        for bad in ["", "C", "X12", "C1_2", "Czzzzzzzzzzzz"] {
            assert_eq!(session_id_of_uid(bad), None, "{bad:?}");
        }
    }

    use super::*;

    #[test]
    fn session_uids_are_base62_and_distinct() {
        assert_eq!(session_uid(0), "C0");
        assert_eq!(session_uid(61), "Cz");
        assert_eq!(session_uid(62), "C10");
        assert_eq!(session_uid(24), "CO");
        assert_eq!(session_uid(u64::MAX), "CLygHa16AHYF");
        let uids: std::collections::HashSet<String> = (0..5000).map(session_uid).collect();
        assert_eq!(uids.len(), 5000);
    }

    #[test]
    fn file_uids_cannot_collide_across_parts() {
        assert_eq!(file_uid(1, 0, 2), "F1_0_2");
        assert_ne!(file_uid(1, 11, 1), file_uid(11, 1, 1));
        assert_eq!(file_uid(62, 61, 0), "F10_z_0");
    }

    #[test]
    fn rule_names_read_as_words() {
        assert_eq!(rule_name("cleartext-password"), "Cleartext password");
        assert_eq!(rule_name("auth-without-tls"), "Auth without tls");
        assert_eq!(rule_name(""), "");
    }

    #[test]
    fn severity_numbers_grow_with_severity() {
        let n: Vec<u8> = Severity::ALL.into_iter().map(severity_number).collect();
        assert_eq!(n, [1, 2, 3, 4]);
    }
}
