//! The Microsoft Azure Attestation policy language (text format), versions 1.0, 1.1 and 1.2.
//!
//! Supported: `version=`; `configurationrules` (1.2), `authorizationrules`, `issuancerules`;
//! conditions `[type==…, value op …, issuer==…, valueType==…]` with optional binding (`c:`),
//! joined by `&&`, negated with `!` (1.2); `permit()`, `deny()`, `add()`, `issue()`,
//! `issue(claim=c)`, `issueproperty()`; 1.2 functions `AppendString`, `NegateBool`,
//! `IsSubsetOf`, `ContainsOnlyValue`, `JsonToClaimValue` and `JmesPath` (dotted paths only).
//! See docs/policy.md for the semantics Sovra implements.

pub mod eval;
pub mod lexer;
pub mod parser;

use crate::error::PolicyError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

pub use eval::Decision;

/// A compiled MAA policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    ast: parser::Ast,
}

impl Policy {
    /// Parses and checks `text`.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let toks = lexer::lex(text)?;
        Ok(Self {
            ast: parser::parse(&toks)?,
        })
    }

    /// The declared version.
    pub fn version(&self) -> &str {
        &self.ast.version
    }

    /// Evaluates the policy over `claims`.
    pub fn evaluate(&self, claims: &Map<String, Value>) -> Result<Decision, PolicyError> {
        eval::evaluate(&self.ast, claims)
    }
}

/// MAA's `x-ms-policy-hash`: BASE64URL(SHA256(UTF8(BASE64URL(UTF8(text))))), no padding.
pub fn policy_hash(text: &str) -> String {
    let inner = URL_SAFE_NO_PAD.encode(text.as_bytes());
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, inner.as_bytes());
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

#[cfg(test)]
mod tests;
