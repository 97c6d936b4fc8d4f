//! Tokens of the MAA policy language, each with its line and column.

use crate::error::PolicyError;
use crate::limits::{MAX_POLICY_BYTES, MAX_TOKENS};

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An identifier or keyword (`version`, `permit`, `c`, `type`, …).
    Ident(String),
    /// A double-quoted string (escapes `\"` and `\\`).
    Str(String),
    /// An integer.
    Int(i64),
    /// A version number such as `1.2`.
    Version(String),
    /// Punctuation and operators: `; { } [ ] ( ) , : . = => == != < <= > >= && || !`.
    Punct(&'static str),
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    /// The token.
    pub tok: Tok,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

const PUNCT: &[&str] = &[
    "=>", "==", "!=", "<=", ">=", "&&", "||", ";", "{", "}", "[", "]", "(", ")", ",", ":", ".",
    "=", "<", ">", "!",
];

/// Splits `text` into tokens. Comments (`//` to end of line, `/* … */`) and whitespace are
/// skipped.
pub fn lex(text: &str) -> Result<Vec<Spanned>, PolicyError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge {
            what: "bytes",
            limit: MAX_POLICY_BYTES,
        });
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let at = |i: usize| chars.get(i).copied();
    let err = |line, col, msg: String| PolicyError::Syntax { line, col, msg };
    while let Some(c) = at(i) {
        if out.len() >= MAX_TOKENS {
            return Err(PolicyError::TooLarge {
                what: "tokens",
                limit: MAX_TOKENS,
            });
        }
        let (l0, c0) = (line, col);
        let adv = |n: usize, i: &mut usize, line: &mut usize, col: &mut usize| {
            for _ in 0..n {
                if at(*i) == Some('\n') {
                    *line += 1;
                    *col = 1;
                } else {
                    *col += 1;
                }
                *i += 1;
            }
        };
        if c.is_whitespace() {
            adv(1, &mut i, &mut line, &mut col);
            continue;
        }
        if c == '/' && at(i + 1) == Some('/') {
            while at(i).is_some_and(|c| c != '\n') {
                adv(1, &mut i, &mut line, &mut col);
            }
            continue;
        }
        if c == '/' && at(i + 1) == Some('*') {
            adv(2, &mut i, &mut line, &mut col);
            loop {
                match at(i) {
                    None => return Err(err(l0, c0, "unterminated /* comment".into())),
                    Some('*') if at(i + 1) == Some('/') => {
                        adv(2, &mut i, &mut line, &mut col);
                        break;
                    }
                    Some(_) => adv(1, &mut i, &mut line, &mut col),
                }
            }
            continue;
        }
        if c == '"' {
            adv(1, &mut i, &mut line, &mut col);
            let mut s = String::new();
            loop {
                match at(i) {
                    None | Some('\n') => {
                        return Err(err(l0, c0, "unterminated string".into()));
                    }
                    Some('"') => {
                        adv(1, &mut i, &mut line, &mut col);
                        break;
                    }
                    Some('\\') => {
                        let e =
                            at(i + 1).ok_or_else(|| err(l0, c0, "unterminated string".into()))?;
                        s.push(e);
                        adv(2, &mut i, &mut line, &mut col);
                    }
                    Some(ch) => {
                        s.push(ch);
                        adv(1, &mut i, &mut line, &mut col);
                    }
                }
            }
            out.push(Spanned {
                tok: Tok::Str(s),
                line: l0,
                col: c0,
            });
            continue;
        }
        if c.is_ascii_digit() || (c == '-' && at(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let mut s = String::from(c);
            adv(1, &mut i, &mut line, &mut col);
            while let Some(d) = at(i).filter(|d| d.is_ascii_digit() || *d == '.') {
                s.push(d);
                adv(1, &mut i, &mut line, &mut col);
            }
            let tok = if s.contains('.') {
                Tok::Version(s)
            } else {
                Tok::Int(
                    s.parse()
                        .map_err(|_| err(l0, c0, format!("number {s} is out of range")))?,
                )
            };
            out.push(Spanned {
                tok,
                line: l0,
                col: c0,
            });
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let mut s = String::new();
            while let Some(d) =
                at(i).filter(|d| d.is_alphanumeric() || *d == '_' || *d == '$' || *d == '-')
            {
                s.push(d);
                adv(1, &mut i, &mut line, &mut col);
            }
            out.push(Spanned {
                tok: Tok::Ident(s),
                line: l0,
                col: c0,
            });
            continue;
        }
        let rest: String = chars
            .get(i..(i + 2).min(chars.len()))
            .unwrap_or_default()
            .iter()
            .collect();
        let Some(p) = PUNCT.iter().find(|p| rest.starts_with(**p)) else {
            return Err(err(l0, c0, format!("unexpected character {c:?}")));
        };
        adv(p.len(), &mut i, &mut line, &mut col);
        out.push(Spanned {
            tok: Tok::Punct(p),
            line: l0,
            col: c0,
        });
    }
    Ok(out)
}
