//! Lines for offline password recovery with hashcat, built from challenge-response credentials.
//!
//! Each line is in the input format of one hashcat hash mode (`-m`):
//! - CRAM-MD5: mode 10200 ("CRAM-MD5"), `$cram_md5$<base64(challenge)>$<base64(user SP digest)>`.
//!   (Mode 16400 is "CRAM-MD5 Dovecot", a stored-password format, not a captured exchange.)
//! - APOP: mode 20, `md5($salt.$pass)`, `<digest>:<timestamp>` with the timestamp's brackets.
//! - NetNTLMv1 and NetNTLMv1 with extended session security: mode 5500,
//!   `user::domain:lm_response:nt_response:server_challenge`; hashcat recognises the
//!   extended-session-security variant by an LM response of client challenge + 16 zero bytes.
//! - NetNTLMv2: mode 5600, `user::domain:server_challenge:NTProofStr:rest_of_nt_response`.
//! - DIGEST-MD5 has no hashcat mode that takes a captured exchange, so it yields no line.
//!
//! No line is produced when a field would break the format (a `:` in an NTLM user or domain,
//! a line break anywhere) or when the material is incomplete. Hashcat has length limits this
//! module does not enforce (e.g. NetNTLM user names up to 60 characters, domains up to 45, an
//! NTLMv2 blob up to 512 bytes); hashcat reports lines beyond them when loading. Text that
//! the SASL decoder had to escape (reported as a problem there) will not crack.

use crate::session::Credential;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Hashcat mode for APOP: md5($salt.$pass).
pub const MODE_APOP: u32 = 20;
/// Hashcat mode for NetNTLMv1 / NetNTLMv1+ESS.
pub const MODE_NETNTLMV1: u32 = 5500;
/// Hashcat mode for NetNTLMv2.
pub const MODE_NETNTLMV2: u32 = 5600;
/// Hashcat mode for CRAM-MD5 exchanges.
pub const MODE_CRAM_MD5: u32 = 10200;

/// One line of hashcat input and the hash mode that reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashcatLine {
    /// The hashcat hash mode (`-m`).
    pub mode: u32,
    /// The hash line, without a line terminator.
    pub line: String,
}

/// The hashcat line for a crackable credential, or `None` (cleartext, tokens, DIGEST-MD5,
/// incomplete exchanges).
pub fn hashcat_line(cred: &Credential) -> Option<HashcatLine> {
    let line = match cred.mechanism.as_str() {
        "CRAM-MD5" => cram_md5(cred)?,
        "APOP" => apop(cred)?,
        "NTLM" => ntlm(cred)?,
        _ => return None,
    };
    if line.line.contains(['\r', '\n']) {
        return None;
    }
    Some(line)
}

fn cram_md5(cred: &Credential) -> Option<HashcatLine> {
    let user = cred.username.as_deref()?;
    let challenge = cred
        .details
        .challenge
        .as_deref()
        .filter(|c| !c.is_empty())?;
    let digest = cred.details.response.as_deref().filter(|d| is_hex(d, 32))?;
    let response = format!("{user} {}", digest.to_ascii_lowercase());
    Some(HashcatLine {
        mode: MODE_CRAM_MD5,
        line: format!(
            "$cram_md5${}${}",
            STANDARD.encode(challenge),
            STANDARD.encode(response)
        ),
    })
}

fn apop(cred: &Credential) -> Option<HashcatLine> {
    let timestamp = cred
        .details
        .challenge
        .as_deref()
        .filter(|c| !c.is_empty())?;
    let digest = cred.details.response.as_deref().filter(|d| is_hex(d, 32))?;
    Some(HashcatLine {
        mode: MODE_APOP,
        line: format!("{}:{timestamp}", digest.to_ascii_lowercase()),
    })
}

fn ntlm(cred: &Credential) -> Option<HashcatLine> {
    let d = &cred.details;
    let user = cred.username.as_deref().filter(|u| !u.is_empty())?;
    let domain = d.domain.as_deref().unwrap_or_default();
    if user.contains(':') || domain.contains(':') {
        return None;
    }
    let challenge = d.challenge.as_deref().filter(|c| is_hex(c, 16))?;
    let nt = d.nt_response.as_deref()?;
    match d.ntlm_version.as_deref()? {
        version @ ("v1" | "v1-ess") => {
            if !is_hex(nt, 48) {
                return None;
            }
            let lm = d.lm_response.as_deref().filter(|lm| is_hex(lm, 48));
            // Hashcat takes an LM response ending in 16 zero bytes as the ESS marker, so a
            // plain v1 exchange whose LM field looks like that must not pass it on.
            let lm_field = match (version, lm) {
                ("v1-ess", Some(lm)) => lm,
                ("v1-ess", None) => return None,
                (_, Some(lm)) if !lm.ends_with(&"0".repeat(32)) => lm,
                _ => "",
            };
            Some(HashcatLine {
                mode: MODE_NETNTLMV1,
                line: format!("{user}::{domain}:{lm_field}:{nt}:{challenge}"),
            })
        }
        "v2" => {
            if nt.len() <= 32 || nt.len() % 2 != 0 || !nt.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let (proof, blob) = nt.split_at(32);
            Some(HashcatLine {
                mode: MODE_NETNTLMV2,
                line: format!("{user}::{domain}:{challenge}:{proof}:{blob}"),
            })
        }
        _ => None,
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::sasl::SaslExchange;
    use crate::proto::sasl::testing::{self, Type3, b64};
    use crate::session::CredentialDetails;
    use crate::time::Timestamp;
    use base64::engine::general_purpose::STANDARD;

    fn credential(
        mechanism: &str,
        username: Option<&str>,
        details: CredentialDetails,
    ) -> Credential {
        Credential {
            ts: Timestamp(0),
            mechanism: mechanism.to_string(),
            username: username.map(str::to_string),
            password: None,
            success: Some(true),
            encrypted: false,
            details,
        }
    }

    #[test]
    fn cram_md5_line_recomputes_from_the_password() {
        // RFC 2195 section 2.
        let challenge = "<1896.697170952@postoffice.reston.mci.net>";
        let password = "tanstaaftanstaaf";
        let digest = hex::encode(testing::hmac_md5(
            password.as_bytes(),
            &[challenge.as_bytes()],
        ));
        assert_eq!(digest, "b913a602c7eda7a495b4e6e7334d3890");

        let mut sasl = SaslExchange::start("CRAM-MD5", None, Timestamp(0), false);
        sasl.server_challenge(&b64(challenge));
        sasl.client_response(&b64(format!("tim {digest}")));
        let line = hashcat_line(&sasl.finish(Some(true))).expect("crackable");
        assert_eq!(line.mode, 10200);

        let fields: Vec<&str> = line.line.split('$').collect();
        assert_eq!(fields.len(), 4);
        assert_eq!(fields[..2], ["", "cram_md5"]);
        let line_challenge = STANDARD.decode(fields[2]).unwrap();
        let line_response = String::from_utf8(STANDARD.decode(fields[3]).unwrap()).unwrap();
        let (user, line_digest) = line_response.rsplit_once(' ').unwrap();
        assert_eq!(user, "tim");
        assert_eq!(
            line_digest,
            hex::encode(testing::hmac_md5(password.as_bytes(), &[&line_challenge]))
        );
    }

    #[test]
    fn apop_line_recomputes_from_the_password() {
        // RFC 1939 section 7.
        let timestamp = "<1896.697170952@dbc.mtview.ca.us>";
        let digest = hex::encode(testing::md5(&[timestamp.as_bytes(), b"tanstaaf"]));
        assert_eq!(digest, "c4c9334bac560ecc979e58001b3e22fb");
        let cred = credential(
            "APOP",
            Some("mrose"),
            CredentialDetails {
                challenge: Some(timestamp.to_string()),
                response: Some(digest.clone()),
                ..Default::default()
            },
        );
        let line = hashcat_line(&cred).expect("crackable");
        assert_eq!(line.mode, 20);
        assert_eq!(line.line, format!("{digest}:{timestamp}"));
        let (hash, salt) = line.line.split_once(':').unwrap();
        assert_eq!(
            hash,
            hex::encode(testing::md5(&[salt.as_bytes(), b"tanstaaf"]))
        );
    }

    /// Runs a full NTLM exchange through the SASL decoder and returns its credential.
    fn ntlm_exchange(server_challenge: [u8; 8], type3: &Type3<'_>) -> Credential {
        let mut sasl = SaslExchange::start(
            "NTLM",
            Some(&b64(testing::type1(
                testing::UNICODE | testing::NTLM,
                "",
                "",
            ))),
            Timestamp(0),
            false,
        );
        sasl.server_challenge(&b64(testing::type2(type3.flags, server_challenge, "CORP")));
        sasl.client_response(&b64(testing::type3(type3)));
        assert_eq!(sasl.problems(), [] as [String; 0]);
        sasl.finish(Some(true))
    }

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn netntlmv2_line_recomputes_ntproofstr_from_the_password() {
        let (password, user, domain) = ("Summer2024!", "alice", "CORP");
        let server_challenge = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
        let blob = testing::ntlmv2_blob([0xaa; 8], domain);
        let nt = testing::ntlmv2_response(password, user, domain, server_challenge, &blob);
        let lm = [0u8; 24];
        let cred = ntlm_exchange(
            server_challenge,
            &Type3 {
                flags: testing::UNICODE | testing::NTLM | testing::ESS,
                lm: &lm,
                nt: &nt,
                domain,
                user,
                workstation: "WS01",
            },
        );
        assert_eq!(cred.details.ntlm_version.as_deref(), Some("v2"));
        let line = hashcat_line(&cred).expect("crackable");
        assert_eq!(line.mode, 5600);

        let f: Vec<&str> = line.line.split(':').collect();
        assert_eq!(f.len(), 6);
        assert_eq!((f[0], f[1], f[2]), (user, "", domain));
        let line_challenge: [u8; 8] = unhex(f[3]);
        let line_blob = hex::decode(f[5]).unwrap();
        let key = testing::ntowf_v2(password, f[0], f[2]);
        let proof = testing::hmac_md5(&key, &[&line_challenge, &line_blob]);
        assert_eq!(f[4], hex::encode(proof));
    }

    #[test]
    fn netntlmv1_line_recomputes_the_nt_response_from_the_password() {
        let password = "Password";
        let server_challenge = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
        let nt = testing::ntlmv1_response(password, server_challenge);
        let cred = ntlm_exchange(
            server_challenge,
            &Type3 {
                flags: testing::UNICODE | testing::NTLM,
                lm: &nt,
                nt: &nt,
                domain: "CORP",
                user: "bob",
                workstation: "",
            },
        );
        assert_eq!(cred.details.ntlm_version.as_deref(), Some("v1"));
        let line = hashcat_line(&cred).expect("crackable");
        assert_eq!(line.mode, 5500);
        let f: Vec<&str> = line.line.split(':').collect();
        assert_eq!(f.len(), 6);
        assert_eq!((f[0], f[1], f[2]), ("bob", "", "CORP"));
        assert_eq!(f[3], hex::encode(nt));
        let recomputed = testing::ntlmv1_response(password, unhex(f[5]));
        assert_eq!(f[4], hex::encode(recomputed));
    }

    #[test]
    fn netntlmv1_ess_line_recomputes_the_nt_response_from_the_password() {
        let password = "Password";
        let server_challenge = [0x99; 8];
        let client_challenge = [0x42, 0, 7, 1, 2, 3, 4, 0x80];
        let session_hash = testing::md5(&[&server_challenge, &client_challenge]);
        let nt = testing::ntlmv1_response(password, session_hash[..8].try_into().unwrap());
        let mut lm = [0u8; 24];
        lm[..8].copy_from_slice(&client_challenge);
        let cred = ntlm_exchange(
            server_challenge,
            &Type3 {
                flags: testing::UNICODE | testing::NTLM | testing::ESS,
                lm: &lm,
                nt: &nt,
                domain: "",
                user: "carol",
                workstation: "PC",
            },
        );
        assert_eq!(cred.details.ntlm_version.as_deref(), Some("v1-ess"));
        let line = hashcat_line(&cred).expect("crackable");
        assert_eq!(line.mode, 5500);
        let f: Vec<&str> = line.line.split(':').collect();
        assert_eq!((f[0], f[1], f[2]), ("carol", "", ""));
        // What hashcat does: the effective challenge is MD5(server + client challenge)[..8].
        let line_lm = hex::decode(f[3]).unwrap();
        let line_server: [u8; 8] = unhex(f[5]);
        let effective = testing::md5(&[&line_server, &line_lm[..8]]);
        let recomputed = testing::ntlmv1_response(password, effective[..8].try_into().unwrap());
        assert_eq!(f[4], hex::encode(recomputed));
    }

    #[test]
    fn plain_v1_never_passes_an_ess_looking_lm_response() {
        let cred = credential(
            "NTLM",
            Some("dave"),
            CredentialDetails {
                challenge: Some("0011223344556677".into()),
                nt_response: Some("ab".repeat(24)),
                lm_response: Some(format!("{}{}", "cd".repeat(8), "0".repeat(32))),
                ntlm_version: Some("v1".into()),
                ..Default::default()
            },
        );
        let line = hashcat_line(&cred).expect("crackable");
        assert_eq!(
            line.line,
            format!("dave::::{}:0011223344556677", "ab".repeat(24))
        );
    }

    #[test]
    fn no_line_for_uncrackable_or_unrepresentable_credentials() {
        let ntlm_v2 = |user: &str, challenge: Option<&str>| {
            credential(
                "NTLM",
                Some(user),
                CredentialDetails {
                    challenge: challenge.map(str::to_string),
                    nt_response: Some("ab".repeat(60)),
                    ntlm_version: Some("v2".into()),
                    ..Default::default()
                },
            )
        };
        assert!(hashcat_line(&ntlm_v2("eve", Some("0011223344556677"))).is_some());
        assert_eq!(
            hashcat_line(&ntlm_v2("e:ve", Some("0011223344556677"))),
            None
        );
        assert_eq!(hashcat_line(&ntlm_v2("eve", None)), None);
        assert_eq!(hashcat_line(&ntlm_v2("eve", Some("00112233"))), None);

        let digest = credential(
            "DIGEST-MD5",
            Some("chris"),
            CredentialDetails {
                challenge: Some("OA6MG9tEQGm2hh".into()),
                response: Some("d388dad90d4bbd760a152321f2143af7".into()),
                ..Default::default()
            },
        );
        assert_eq!(hashcat_line(&digest), None);
        assert_eq!(
            hashcat_line(&credential(
                "PLAIN",
                Some("u"),
                CredentialDetails::default()
            )),
            None
        );

        let apop_with_newline = credential(
            "APOP",
            None,
            CredentialDetails {
                challenge: Some("<1.2@host>\n".into()),
                response: Some("0".repeat(32)),
                ..Default::default()
            },
        );
        assert_eq!(hashcat_line(&apop_with_newline), None);
        let cram_without_challenge = credential(
            "CRAM-MD5",
            Some("tim"),
            CredentialDetails {
                response: Some("0".repeat(32)),
                ..Default::default()
            },
        );
        assert_eq!(hashcat_line(&cram_without_challenge), None);
    }
}
