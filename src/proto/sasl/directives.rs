//! DIGEST-MD5 directive lists (RFC 2831 section 7.1): `key=value` pairs separated by commas,
//! values either tokens or quoted strings with backslash escapes.

/// The directives of one DIGEST-MD5 challenge or response, in the order sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Directives {
    /// Lower-cased names and unquoted values.
    entries: Vec<(String, Vec<u8>)>,
    /// Something could not be read (missing `=`, unterminated quote, junk after a value).
    pub(crate) malformed: bool,
}

impl Directives {
    /// Parses a list, keeping every well-formed directive even when others are broken.
    pub(crate) fn parse(input: &[u8]) -> Directives {
        let mut out = Directives::default();
        let mut rest = input;
        loop {
            rest = skip_separators(rest);
            if rest.is_empty() {
                break;
            }
            let key_len = rest
                .iter()
                .position(|&b| b == b'=' || b == b',' || b.is_ascii_whitespace())
                .unwrap_or(rest.len());
            let (key, after_key) = rest.split_at(key_len);
            let after_key = after_key.trim_ascii_start();
            let Some(value_text) = after_key.strip_prefix(b"=") else {
                out.malformed = true;
                rest = skip_past_comma(after_key);
                continue;
            };
            let value_text = value_text.trim_ascii_start();
            let (value, after_value) = if let Some(quoted) = value_text.strip_prefix(b"\"") {
                let (value, after, terminated) = unquote(quoted);
                out.malformed |= !terminated;
                (value, after)
            } else {
                let len = value_text
                    .iter()
                    .position(|&b| b == b',')
                    .unwrap_or(value_text.len());
                let (token, after) = value_text.split_at(len);
                (token.trim_ascii_end().to_vec(), after)
            };
            out.entries
                .push((String::from_utf8_lossy(key).to_ascii_lowercase(), value));
            let after_value = after_value.trim_ascii_start();
            if !after_value.is_empty() && !after_value.starts_with(b",") {
                out.malformed = true;
            }
            rest = skip_past_comma(after_value);
        }
        out
    }

    /// The first value of `key` (lower-case).
    pub(crate) fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

/// Reads a quoted string whose opening quote is already consumed: the unescaped value, what
/// follows the closing quote, and whether there was one.
fn unquote(input: &[u8]) -> (Vec<u8>, &[u8], bool) {
    let mut value = Vec::with_capacity(input.len());
    let mut bytes = input.iter().enumerate();
    while let Some((i, &b)) = bytes.next() {
        match b {
            b'"' => return (value, input.get(i + 1..).unwrap_or_default(), true),
            b'\\' => match bytes.next() {
                Some((_, &escaped)) => value.push(escaped),
                None => break,
            },
            other => value.push(other),
        }
    }
    (value, &[], false)
}

fn skip_separators(input: &[u8]) -> &[u8] {
    let start = input
        .iter()
        .position(|&b| b != b',' && !b.is_ascii_whitespace())
        .unwrap_or(input.len());
    input.get(start..).unwrap_or_default()
}

fn skip_past_comma(input: &[u8]) -> &[u8] {
    match input.iter().position(|&b| b == b',') {
        Some(i) => input.get(i + 1..).unwrap_or_default(),
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tokens_and_quoted_strings() {
        let d = Directives::parse(
            br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#,
        );
        assert!(!d.malformed);
        assert_eq!(d.get("realm"), Some(&b"elwood.innosoft.com"[..]));
        assert_eq!(d.get("nonce"), Some(&b"OA6MG9tEQGm2hh"[..]));
        assert_eq!(d.get("algorithm"), Some(&b"md5-sess"[..]));
        assert_eq!(d.get("charset"), Some(&b"utf-8"[..]));
        assert_eq!(d.get("missing"), None);
    }

    #[test]
    fn handles_escapes_commas_in_quotes_whitespace_and_case() {
        let d = Directives::parse(br#" , UserName = "a\"b,c\\d" ,, nc = 00000001 ,"#);
        assert!(!d.malformed);
        assert_eq!(d.get("username"), Some(&br#"a"b,c\d"#[..]));
        assert_eq!(d.get("nc"), Some(&b"00000001"[..]));
    }

    #[test]
    fn keeps_good_directives_around_broken_ones() {
        let d = Directives::parse(br#"junk,nonce="n1" trailing,qop=auth,cnonce="open"#);
        assert!(d.malformed);
        assert_eq!(d.get("nonce"), Some(&b"n1"[..]));
        assert_eq!(d.get("qop"), Some(&b"auth"[..]));
        assert_eq!(d.get("cnonce"), Some(&b"open"[..]));
    }

    #[test]
    fn first_of_repeated_directives_wins() {
        let d = Directives::parse(br#"realm="one",realm="two""#);
        assert_eq!(d.get("realm"), Some(&b"one"[..]));
    }

    #[test]
    fn dangling_backslash_does_not_panic() {
        let d = Directives::parse(b"a=\"x\\");
        assert!(d.malformed);
        assert_eq!(d.get("a"), Some(&b"x"[..]));
    }
}
