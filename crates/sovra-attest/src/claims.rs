//! Verified claims: the only thing a verifier hands to policy.

use crate::evidence::EvidenceType;
use crate::snp::report::{Product, Tcb};
use crate::x509::TrustRoot;
use serde_json::{Map, Value};

/// Claims extracted from evidence after every check passed.
///
/// Only verifiers in this crate can construct it, so holding one means the evidence was verified.
/// Binary values in `claims` are lowercase hex strings.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    evidence_type: EvidenceType,
    claims: Map<String, Value>,
    report_data: Vec<u8>,
    debug: bool,
    tcb_status: Option<String>,
    root: TrustRoot,
    snp_tcb: Option<(Product, Tcb)>,
}

impl VerifiedClaims {
    /// Builds the claims of a verified piece of evidence (verifiers only).
    pub(crate) fn new(
        evidence_type: EvidenceType,
        claims: Map<String, Value>,
        report_data: Vec<u8>,
        debug: bool,
        tcb_status: Option<String>,
        root: TrustRoot,
    ) -> Self {
        Self {
            evidence_type,
            claims,
            report_data,
            debug,
            tcb_status,
            root,
            snp_tcb: None,
        }
    }

    /// The same claims, carrying the SEV-SNP processor generation and REPORTED_TCB (verifiers
    /// only: the TCB was checked against the signing key's certificate).
    pub(crate) fn with_snp_tcb(mut self, product: Product, reported: Tcb) -> Self {
        self.snp_tcb = Some((product, reported));
        self
    }

    /// The SEV-SNP processor generation and REPORTED_TCB (bare SEV-SNP evidence, or the SNP
    /// report inside Azure vTPM evidence); `None` for other types.
    pub fn snp_tcb(&self) -> Option<(Product, &Tcb)> {
        self.snp_tcb.as_ref().map(|(p, t)| (*p, t))
    }

    /// The root the evidence's certificate chain ended at.
    pub fn root(&self) -> &TrustRoot {
        &self.root
    }

    /// The evidence type these claims came from.
    pub fn evidence_type(&self) -> EvidenceType {
        self.evidence_type
    }

    /// The normalised, type-specific claims (binary values as lowercase hex).
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The raw report data / user data / qualifying data the evidence binds (empty if none).
    pub fn report_data(&self) -> &[u8] {
        &self.report_data
    }

    /// Whether the TEE runs in a debug mode (its memory is readable by the host).
    pub fn debug(&self) -> bool {
        self.debug
    }

    /// The TCB status as the collateral classifies it (`UpToDate`, `OutOfDate`, …), if the
    /// evidence type has one.
    pub fn tcb_status(&self) -> Option<&str> {
        self.tcb_status.as_deref()
    }

    /// The claims as one JSON object, including `evidence_type`, `debug` and `tcb_status`.
    pub fn to_json(&self) -> Value {
        let mut m = self.claims.clone();
        m.insert(
            "evidence_type".into(),
            Value::String(self.evidence_type.as_str().into()),
        );
        m.insert("debug".into(), Value::Bool(self.debug));
        if let Some(s) = &self.tcb_status {
            m.insert("tcb_status".into(), Value::String(s.clone()));
        }
        m.insert("trust_root".into(), Value::String(self.root.id()));
        m.insert(
            "trust_root_kind".into(),
            Value::String(self.root.kind().into()),
        );
        m.insert(
            "report_data".into(),
            Value::String(sovra_proto::hex::encode(&self.report_data)),
        );
        Value::Object(m)
    }
}
