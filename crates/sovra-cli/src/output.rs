//! Printing: JSON for scripts, tables and sentences for people.

use crate::context::{CliError, Global, Output};
use serde::Serialize;
use std::io::Write;

/// Prints a line to stdout; a closed pipe is not an error.
pub fn say(s: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{s}");
}

/// Writes bytes to stdout as they are.
pub fn write_raw(b: &[u8]) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(b);
    let _ = o.flush();
}

/// Prints `value` as JSON (json mode) or with `human` (human mode).
pub fn emit<T: Serialize>(g: &Global, value: &T, human: impl FnOnce(&T)) {
    match g.output {
        Output::Json => say(&serde_json::to_string_pretty(value).unwrap_or_default()),
        Output::Human => human(value),
    }
}

/// A simple left-aligned table.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        say(s.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    if rows.is_empty() {
        say("(none)");
    }
    for r in rows {
        line(r);
    }
}

/// Key/value lines.
pub fn fields(pairs: &[(&str, String)]) {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        if !v.is_empty() {
            say(&format!("{k:<w$}  {v}"));
        }
    }
}

/// Prints an error to stderr in the chosen format.
pub fn print_error(g: &Global, e: &CliError) {
    match (g.output, e) {
        (Output::Json, CliError::Client(sovra_client::ClientError::Api(api))) => {
            eprintln!("{}", serde_json::json!({ "error": api }));
        }
        (Output::Json, CliError::Coded { code, message }) => eprintln!(
            "{}",
            serde_json::json!({ "error": { "code": code, "message": message } })
        ),
        (Output::Json, other) => eprintln!(
            "{}",
            serde_json::json!({ "error": { "code": "CLIENT_ERROR", "message": other.to_string() } })
        ),
        (Output::Human, CliError::Client(sovra_client::ClientError::Api(api))) => {
            eprintln!("error: {}: {}", api.code, api.message)
        }
        (Output::Human, other) => eprintln!("error: {other}"),
    }
}

/// Last path segment of a resource name.
pub fn short(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_string()
}
