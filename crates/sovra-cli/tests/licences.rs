//! Every crate Sovra links is under a licence compatible with Apache-2.0, and every crate of our
//! own is Apache-2.0. Reads the resolved dependency graph with `cargo metadata`, so a new
//! dependency under BUSL, AGPL, GPL or SSPL (or with no licence at all) fails this test.

use std::process::Command;

/// Licence identifiers we accept in a dependency's SPDX expression.
const ALLOWED: &[&str] = &[
    "MIT",
    "MIT-0",
    "Apache-2.0",
    "LLVM-exception",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "Unlicense",
    "CC0-1.0",
    "BSL-1.0", // Boost Software License, not Business Source (BUSL)
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "OpenSSL",
];

/// Dependencies reviewed one by one under a licence outside [`ALLOWED`]: (crate, licence, why).
const REVIEWED: &[(&str, &str, &str)] = &[(
    "option-ext",
    "MPL-2.0",
    "via sev → dirs; used unmodified, and MPL-2.0's copyleft is per file, so linking it leaves \
     Sovra Apache-2.0 (ASF category B)",
)];

#[test]
fn every_dependency_licence_is_compatible_with_apache_2() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", "x86_64-unknown-linux-gnu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let resolved: Vec<&str> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let mut bad = Vec::new();
    let mut checked = 0;
    for p in meta["packages"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap();
        if !resolved.contains(&id) {
            continue;
        }
        checked += 1;
        let name = p["name"].as_str().unwrap();
        let licence = p["license"].as_str().unwrap_or("");
        if members.contains(&id) {
            if licence != "Apache-2.0" {
                bad.push(format!("{name} (ours): {licence:?}, want Apache-2.0"));
            }
            continue;
        }
        let unknown: Vec<&str> = licence
            .split(|c: char| c == '(' || c == ')' || c == '/' || c.is_whitespace())
            .filter(|t| !t.is_empty() && !matches!(*t, "OR" | "AND" | "WITH"))
            .filter(|t| !ALLOWED.contains(t))
            .collect();
        if REVIEWED.iter().any(|(n, l, _)| *n == name && *l == licence) {
            continue;
        }
        if licence.is_empty() || !unknown.is_empty() {
            bad.push(format!("{name}: {licence:?}"));
        }
    }
    assert!(
        checked > 50,
        "the dependency graph was read ({checked} packages)"
    );
    assert!(bad.is_empty(), "licences to review:\n{}", bad.join("\n"));
}
