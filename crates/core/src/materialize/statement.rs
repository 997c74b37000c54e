//! A model, snapshot or test is one SQL statement: pm wraps it (`create
//! table … as (<sql>)`), so a second statement in it would run as a
//! statement of its own. This finds where a second statement starts,
//! reading PostgreSQL's lexical rules: quoted strings (`'…'`, `E'…'` with
//! backslash escapes), quoted identifiers, dollar quotes, line and nested
//! block comments.

use crate::error::{Code, Problem};
use crate::manifest::Node;

/// The byte offset of the first `;` that ends a statement and is followed by
/// more than whitespace, comments and semicolons; None for one statement
/// (with or without a trailing `;`).
pub fn second_statement(sql: &str) -> Option<usize> {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut first_end = None;
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(b.len(), |n| i + n + 1);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(b, i);
                continue;
            }
            b'\'' => {
                let escapes =
                    i > 0 && matches!(b[i - 1], b'e' | b'E') && (i < 2 || !is_ident_byte(b[i - 2]));
                i = skip_string(b, i, escapes);
            }
            b'"' => i = skip_quoted_identifier(b, i),
            b'$' if i == 0 || !is_ident_byte(b[i - 1]) => match dollar_tag(sql, i) {
                Some(tag) => {
                    let body = i + tag.len();
                    i = sql[body..]
                        .find(tag)
                        .map_or(b.len(), |n| body + n + tag.len());
                }
                None => i += 1,
            },
            b';' => {
                first_end.get_or_insert(i);
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                if let Some(end) = first_end {
                    return Some(end);
                }
                i += 1;
            }
        }
        // Whatever was skipped (a string, an identifier) is statement text.
        if let Some(end) = first_end {
            if matches!(c, b'\'' | b'"' | b'$') {
                return Some(end);
            }
        }
    }
    None
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn skip_block_comment(b: &[u8], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Past the closing quote of a string starting at `start`.
fn skip_string(b: &[u8], start: usize, backslash_escapes: bool) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if backslash_escapes => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

fn skip_quoted_identifier(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'"' if b.get(i + 1) == Some(&b'"') => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// `$tag$` (or `$$`) starting at `start`; None for `$1` and lone dollars.
fn dollar_tag(sql: &str, start: usize) -> Option<&str> {
    let rest = &sql[start + 1..];
    let end = rest.find('$')?;
    let tag = &rest[..end];
    let valid = tag.is_empty()
        || (tag.starts_with(|c: char| c.is_alphabetic() || c == '_')
            && tag.chars().all(|c| c.is_alphanumeric() || c == '_'));
    valid.then(|| &sql[start..start + end + 2])
}

/// An error when `node`'s compiled SQL holds more than one statement,
/// pointing at the second one in the node's file where it can be found there.
pub fn check_single(node: &Node, sql: &str) -> Result<(), Problem> {
    let Some(at) = second_statement(sql) else {
        return Ok(());
    };
    let second = sql[at + 1..].trim_start();
    let snippet: String = second.chars().take(40).collect();
    let first_line = snippet.lines().next().unwrap_or("").trim();
    let mut p = Problem::new(
        Code::CompileStatements,
        format!(
            "{} `{}` holds more than one SQL statement: `;` ends its SELECT and `{}` follows",
            node.resource_type.as_str(),
            node.name,
            first_line
        ),
    )
    .help("a model, snapshot or test is one SELECT: remove the `;` and what follows it (hooks run other statements: pre_hook / post_hook)");
    let raw = &node.raw_code;
    if let Some(pos) = raw
        .find(first_line)
        .filter(|_| !first_line.is_empty() && !raw.is_empty())
    {
        let line = raw[..pos].matches('\n').count() + node.line.max(1);
        p = p.in_file(&node.original_file_path, raw.clone()).label(
            pos..pos + first_line.len(),
            format!("a second statement (line {line})"),
        );
    }
    Err(p)
}

#[cfg(test)]
mod tests {
    use super::second_statement as second;

    #[test]
    fn one_statement_with_or_without_a_trailing_semicolon() {
        assert_eq!(second("select 1"), None);
        assert_eq!(second("select 1;"), None);
        assert_eq!(second("select 1 ;\n -- done\n /* really */ ;\n"), None);
        assert_eq!(second("select ';' as a, \"x;y\" from t -- ; drop\n"), None);
        assert_eq!(second("select $$;$$, $tag$ ; $x$ $tag$, $1 from t"), None);
        assert_eq!(second("select E'\\'; drop table x; --' as a"), None);
        assert_eq!(
            second("select 'it''s; fine' /* a /* nested ; */ comment */"),
            None
        );
        assert_eq!(second("select a$b from t"), None);
    }

    #[test]
    fn a_second_statement_is_found_after_its_semicolon() {
        assert_eq!(second("select 1; drop table x"), Some(8));
        assert_eq!(
            second("select 1 as id) ; drop table x; create table y as (select 1"),
            Some(16)
        );
        assert_eq!(second("select 1;\n'x'"), Some(8));
        assert_eq!(second("select 1; -- c\n delete from t"), Some(8));
        assert_eq!(second("select 'a';$$x$$"), Some(10));
    }
}
