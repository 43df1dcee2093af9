//! URLs found in decoded text and HTML bodies, deduplicated in order of appearance, bounded.

use std::collections::HashSet;

/// Schemes reported; others (`mailto:`, `cid:`, `data:`) are not places to visit.
const SCHEMES: [&str; 4] = ["http", "https", "ftp", "ftps"];
/// Longest URL kept; longer ones are cut here.
const MAX_URL_LEN: usize = 4096;

/// Collects URLs across a message's text parts.
#[derive(Debug)]
pub(crate) struct UrlCollector {
    seen: HashSet<String, foldhash::fast::RandomState>,
    urls: Vec<String>,
    max: usize,
    /// More distinct URLs were found than `max`.
    pub truncated: bool,
}

impl UrlCollector {
    /// A collector keeping at most `max` distinct URLs.
    pub(crate) fn new(max: usize) -> Self {
        UrlCollector {
            seen: HashSet::default(),
            urls: Vec::new(),
            max,
            truncated: false,
        }
    }

    /// The URLs in order of first appearance.
    pub(crate) fn into_urls(self) -> Vec<String> {
        self.urls
    }

    /// Finds URLs in `text`; `html` decodes character references (`&amp;`) inside them.
    pub(crate) fn scan(&mut self, text: &str, html: bool) {
        let bytes = text.as_bytes();
        let mut starts: Vec<usize> = Vec::new();
        for i in memchr::memmem::find_iter(bytes, b"://") {
            let mut s = i;
            while s > 0 && bytes[s - 1].is_ascii_alphanumeric() {
                s -= 1;
            }
            let scheme = &text[s..i];
            if SCHEMES.iter().any(|k| k.eq_ignore_ascii_case(scheme)) {
                starts.push(s);
            }
        }
        for i in memchr::memmem::find_iter(bytes, b"www.") {
            let bounded = i == 0
                || !(bytes[i - 1].is_ascii_alphanumeric()
                    || bytes[i - 1] == b'/'
                    || bytes[i - 1] == b'.');
            if bounded {
                starts.push(i);
            }
        }
        starts.sort_unstable();
        let mut covered = 0usize;
        for s in starts {
            if s < covered {
                continue;
            }
            let end = url_end(text, s);
            covered = end;
            let candidate = &text[s..end];
            let decoded;
            let candidate = if html && candidate.contains('&') {
                decoded = decode_references(candidate);
                match decoded.find(ends_url) {
                    Some(j) => &decoded[..j],
                    None => decoded.as_str(),
                }
            } else {
                candidate
            };
            let url = trim_trailing(candidate);
            let host_len = url
                .find("://")
                .map_or(url.len().saturating_sub(4), |j| url.len() - j - 3);
            if host_len == 0 {
                continue;
            }
            self.add(url);
            if self.truncated {
                return;
            }
        }
    }

    fn add(&mut self, url: &str) {
        let url = match url.char_indices().nth(MAX_URL_LEN) {
            Some((i, _)) => &url[..i],
            None => url,
        };
        if self.seen.contains(url) {
            return;
        }
        if self.urls.len() >= self.max {
            self.truncated = true;
            return;
        }
        self.seen.insert(url.to_string());
        self.urls.push(url.to_string());
    }
}

/// Where the URL starting at byte `from` of `text` ends: the first character for which
/// [`ends_url`] holds, or the end. ASCII bytes are looked up in a table; only other characters
/// are decoded.
fn url_end(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii() {
            if ENDS_URL_ASCII[usize::from(b)] {
                return i;
            }
            i += 1;
        } else {
            // `i` is on a character boundary: it only ever moves by whole characters.
            let Some(c) = text.get(i..).and_then(|t| t.chars().next()) else {
                return bytes.len();
            };
            if ends_url(c) {
                return i;
            }
            i += c.len_utf8();
        }
    }
    bytes.len()
}

/// [`ends_url`] for every ASCII character.
static ENDS_URL_ASCII: [bool; 128] = {
    let mut table = [false; 128];
    let mut b = 0;
    while b < 128 {
        let whitespace = matches!(b, 0x09..=0x0d | 0x20);
        let control = b < 0x20 || b == 0x7f;
        table[b] = whitespace
            || control
            || matches!(
                b as u8,
                b'"' | b'\'' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'\\' | b'^'
            );
        b += 1;
    }
    table
};

/// Characters that cannot be part of a URL written in text or in an HTML attribute.
fn ends_url(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '"' | '\'' | '<' | '>' | '`' | '{' | '}' | '|' | '\\' | '^'
        )
}

/// Drops sentence punctuation and unbalanced closing brackets at the end.
fn trim_trailing(url: &str) -> &str {
    let mut u = url;
    loop {
        let Some(last) = u.chars().last() else {
            return u;
        };
        let drop = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '*' => true,
            ')' => u.matches('(').count() < u.matches(')').count(),
            ']' => u.matches('[').count() < u.matches(']').count(),
            _ => false,
        };
        if !drop {
            return u;
        }
        u = &u[..u.len() - last.len_utf8()];
    }
}

/// Decodes the HTML character references that show up in URLs.
fn decode_references(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest.find(';').filter(|&j| j <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let ch = match entity {
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "lt" => Some('<'),
            "gt" => Some('>'),
            _ => entity.strip_prefix('#').and_then(|n| {
                let code = match n.strip_prefix(['x', 'X']) {
                    Some(h) => u32::from_str_radix(h, 16).ok(),
                    None => n.parse().ok(),
                };
                code.and_then(char::from_u32)
            }),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(text: &str, html: bool, max: usize) -> (Vec<String>, bool) {
        let mut c = UrlCollector::new(max);
        c.scan(text, html);
        let t = c.truncated;
        (c.into_urls(), t)
    }

    #[test]
    fn finds_urls_in_text_and_trims_punctuation() {
        let (u, _) = urls(
            "See https://example.com/a?b=1&c=2. Also (http://x.org/p_(1)) and www.test.net, ftp://f.example/x!\nHTTPS://EXAMPLE.com/A",
            false,
            10,
        );
        assert_eq!(
            u,
            vec![
                "https://example.com/a?b=1&c=2",
                "http://x.org/p_(1)",
                "www.test.net",
                "ftp://f.example/x",
                "HTTPS://EXAMPLE.com/A"
            ]
        );
    }

    #[test]
    fn html_attributes_and_entities() {
        let (u, _) = urls(
            r#"<a href="https://ex.com/t?a=1&amp;b=2">x</a><img src='http://img.ex.com/p.png'><a href="https://ex.com/t?a=1&amp;b=2">dup</a>mailto:a@b.c"#,
            true,
            10,
        );
        assert_eq!(
            u,
            vec!["https://ex.com/t?a=1&b=2", "http://img.ex.com/p.png"]
        );
    }

    #[test]
    fn bounded_and_deduplicated() {
        let text: String = (0..50)
            .map(|i| format!("http://h{i}.example/ http://h0.example/ "))
            .collect();
        let (u, truncated) = urls(&text, false, 10);
        assert_eq!(u.len(), 10);
        assert!(truncated);
        assert_eq!(u[0], "http://h0.example/");
        assert_eq!(u[1], "http://h1.example/");
    }

    #[test]
    fn schemes_without_host_and_others_are_ignored() {
        let (u, _) = urls("javascript://x http:// cid:abc data://q", false, 10);
        assert!(u.is_empty(), "{u:?}");
    }

    #[test]
    fn ascii_table_agrees_with_ends_url() {
        for b in 0u8..128 {
            assert_eq!(
                ENDS_URL_ASCII[usize::from(b)],
                ends_url(char::from(b)),
                "{b:#x}"
            );
        }
    }

    #[test]
    fn url_end_matches_the_char_by_char_search() {
        let samples = [
            "http://a.example/ü\u{a0}x",
            "https://b.example/p?q=1\u{2028}next",
            "www.c.example/\u{85}z",
            "ftp://d.example/日本語>tail",
            "http://e.example/plain",
            "http://f.example/\u{7f}x",
            "http://g.example/\u{3000}wide space",
        ];
        for text in samples {
            let want = text
                .char_indices()
                .find(|&(_, c)| ends_url(c))
                .map_or(text.len(), |(j, _)| j);
            assert_eq!(url_end(text, 0), want, "{text:?}");
        }
    }
}
