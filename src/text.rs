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

#[cfg(test)]
mod tests {
    #[test]
    fn hex_and_quoting() {
        assert_eq!(super::hex(&[0, 15, 255]), "000fff");
        assert_eq!(super::quote_ident("a\"b"), "\"a\"\"b\"");
        assert!(super::sha256_hex("").starts_with("e3b0c442"));
    }
}
