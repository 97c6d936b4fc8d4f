//! The bounds every policy input is held to, before and during work.
//!
//! Policy text reaches Sovra from Policy Administrators (stored policies) and from anyone who
//! can attest (MAA draft policies, which need no API token). Each limit below is checked before
//! the work it bounds: the text's size before lexing, the token count before parsing, the nesting
//! depth while parsing (the parser recurses), and a work budget while evaluating. The values are
//! far above what real policies use (Azure's published samples: under 4 KiB, nesting of 3) and far
//! below what would hurt a node; docs/threat-model.md lists them.

/// Largest policy text, bytes (MAA and Rego).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Most tokens in an MAA policy.
pub const MAX_TOKENS: usize = 16 * 1024;
/// Deepest nesting of MAA function calls (`AppendString(AppendString(…))`).
pub const MAX_DEPTH: usize = 16;
/// Most rules in an MAA policy (all sections together).
pub const MAX_RULES: usize = 512;
/// Most conditions in one rule, and tests in one condition.
pub const MAX_CONDITIONS: usize = 32;
/// Most arguments of one function call.
pub const MAX_ARGS: usize = 8;
/// Deepest bracket nesting (`(`, `[`, `{`) in a Rego policy: the Rego parser's time grows
/// exponentially with it.
pub const MAX_REGO_DEPTH: usize = 12;
/// Parse work a Rego policy may need: each `[` or `{` costs 2^(its nesting depth), which is how
/// the Rego parser's time grows (about a microsecond a unit here), so many moderately nested
/// structures are bounded together, not only the deepest one.
pub const MAX_REGO_PARSE_WORK: u64 = 1 << 18;
/// Wall-clock budget of one Rego evaluation, milliseconds.
pub const REGO_EVAL_MILLIS: u64 = 250;

/// Most claims in the set an MAA policy works on (incoming plus added).
pub const MAX_CLAIMS: usize = 4096;
/// Largest value one rule may produce (e.g. an `AppendString` result), bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most bytes all `add`/`issue` rules of one evaluation may produce together.
pub const MAX_PRODUCED_BYTES: usize = 1 << 20;
/// Work units of one MAA evaluation (a claim test is one, long strings and arrays cost more).
pub const MAX_WORK: u64 = 2_000_000;
