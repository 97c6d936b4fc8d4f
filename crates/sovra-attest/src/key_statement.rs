//! Offline verification of Sovra key attestation statements (see the server's
//! `services/key_attestation.rs`): a compact JWS, ES256, `typ` `sovra-key-attestation+jwt`,
//! `x5c` = [attestation certificate, owner root]. It holds when the attestation certificate is
//! issued by the owner root the verifier pins, was valid when the version was created, and its
//! key signed the statement.

use crate::x509::{check_validity, parse_cert, subject_cn, verify_issued_by};
use sovra_crypto::jws::{Jws, VerifyKey};
use sovra_proto::kms::{KEY_STATEMENT_TYP, KeyStatement};

/// Why a statement does not hold. Each has a stable code ([`StatementError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    /// Not a key attestation statement (not a JWS, wrong `typ` or `alg`, claims out of shape).
    #[error("not a Sovra key attestation statement: {0}")]
    Malformed(String),
    /// The attestation certificate does not chain to the owner root given, or was not valid.
    #[error("the statement's certificate chain does not lead to this owner root: {0}")]
    ChainInvalid(String),
    /// The signature does not verify with the attestation certificate's key.
    #[error("the statement's signature does not verify: it was altered")]
    SignatureInvalid,
    /// The statement is about another version than the one expected.
    #[error("the statement is about {got}, not {expected}")]
    WrongVersion {
        /// The version expected.
        expected: String,
        /// The version the statement names.
        got: String,
    },
}

impl StatementError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "KEY_ATTESTATION_MALFORMED",
            Self::ChainInvalid(_) => "KEY_ATTESTATION_CHAIN_INVALID",
            Self::SignatureInvalid => "KEY_ATTESTATION_SIGNATURE_INVALID",
            Self::WrongVersion { .. } => "KEY_ATTESTATION_WRONG_VERSION",
        }
    }
}

/// A statement that holds.
#[derive(Debug, Clone)]
pub struct VerifiedStatement {
    /// What it says.
    pub statement: KeyStatement,
    /// The subject of the attestation certificate (which HSM signed).
    pub signer: String,
}

/// Verifies `jws` against the owner root certificate `owner_root` (DER); with `expect`, it must
/// be about that version (full resource name).
pub fn verify(
    jws: &str,
    owner_root: &[u8],
    expect: Option<&str>,
) -> Result<VerifiedStatement, StatementError> {
    let malformed = |m: &str| StatementError::Malformed(m.to_owned());
    let j = Jws::parse(jws.trim()).map_err(|e| StatementError::Malformed(e.to_string()))?;
    if j.typ() != Some(KEY_STATEMENT_TYP) {
        return Err(malformed("its typ is not sovra-key-attestation+jwt"));
    }
    if j.alg() != Some("ES256") {
        return Err(malformed("its alg is not ES256"));
    }
    let statement: KeyStatement = serde_json::from_value(serde_json::Value::Object(
        j.claims()
            .map_err(|e| StatementError::Malformed(e.to_string()))?,
    ))
    .map_err(|e| StatementError::Malformed(format!("claims: {e}")))?;
    let x5c = j
        .x5c()
        .map_err(|e| StatementError::Malformed(e.to_string()))?;
    let leaf_der = x5c
        .first()
        .ok_or_else(|| malformed("it carries no attestation certificate (x5c)"))?;
    let chain = |e: crate::error::AttestError| StatementError::ChainInvalid(e.to_string());
    let root = parse_cert(owner_root).map_err(chain)?;
    let leaf = parse_cert(leaf_der).map_err(chain)?;
    verify_issued_by(&leaf, &root).map_err(chain)?;
    check_validity(&leaf, statement.create_time).map_err(chain)?;
    let key = VerifyKey::from_spki(None, leaf.public_key().raw)
        .map_err(|e| StatementError::ChainInvalid(e.to_string()))?;
    j.verify_with(&key)
        .map_err(|_| StatementError::SignatureInvalid)?;
    if let Some(expected) = expect
        && statement.name != expected
    {
        return Err(StatementError::WrongVersion {
            expected: expected.to_owned(),
            got: statement.name,
        });
    }
    Ok(VerifiedStatement {
        statement,
        signer: subject_cn(&leaf),
    })
}
