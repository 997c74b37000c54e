//! Text helpers every layer uses: hex digests and PostgreSQL identifier
//! quoting. (Temporary relation names are materialize's: `relation::temp_name`.)

use sha2::Digest;

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The sha256 of a text, in hex.
pub fn sha256_hex(text: &str) -> String {
    hex(&sha2::Sha256::digest(text.as_bytes()))
}

/// A PostgreSQL string literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// PostgreSQL identifier quoting.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A URL component with everything but unreserved characters and `/` percent-encoded.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` escapes of a URL component decoded (malformed ones kept as written).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|&b| hex(b)),
            bytes.get(i + 2).and_then(|&b| hex(b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` with each `{{ doc('name') }}` replaced by the docs block `name`
/// (`lookup` gives its contents, trimmed when it was read, as dbt trims
/// them); a reference to no block stays as written.
pub fn resolve_doc_refs<'a>(text: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    if !text.contains("doc(") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + len].trim();
        out.push_str(&rest[..start]);
        let name = inner
            .strip_prefix("doc(")
            .and_then(|s| s.strip_suffix(')'))
            .map(|s| s.trim().trim_matches(|c| c == '"' || c == '\''));
        match name.and_then(&lookup) {
            Some(body) => out.push_str(body),
            None => out.push_str(&rest[start..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_and_quoting() {
        assert_eq!(super::hex(&[0, 15, 255]), "000fff");
        assert_eq!(super::quote_ident("a\"b"), "\"a\"\"b\"");
        assert!(super::sha256_hex("").starts_with("e3b0c442"));
        let path = "/tmp/a b/&%x";
        assert_eq!(super::percent_encode(path), "/tmp/a%20b/%26%25x");
        assert_eq!(super::percent_decode(&super::percent_encode(path)), path);
    }
}
