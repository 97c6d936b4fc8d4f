//! TPM evidence as it arrives: go-tpm-tools' `Attestation` protobuf, or Sovra's JSON envelope:
//!
//! ```json
//! {"ak_pub": "<base64 TPMT_PUBLIC>", "ak_cert": "<base64 DER, optional>",
//!  "quotes": [{"quote": "<base64 TPMS_ATTEST>", "signature": "<base64 TPMT_SIGNATURE>",
//!              "pcrs": {"hash": "sha256", "values": {"0": "<hex>", …}}}],
//!  "event_log": "<base64, optional>"}
//! ```

use super::structs::{ALG_SHA1, ALG_SHA256, ALG_SHA384, ALG_SHA512};
use crate::error::AttestError;
use base64::Engine;
use std::collections::BTreeMap;

/// One quote with the PCR values it covers.
#[derive(Debug, Clone, Default)]
pub struct QuoteIn {
    /// TPMS_ATTEST.
    pub attest: Vec<u8>,
    /// TPMT_SIGNATURE.
    pub signature: Vec<u8>,
    /// Bank of the values.
    pub bank: u16,
    /// PCR index → value.
    pub pcrs: BTreeMap<u32, Vec<u8>>,
}

/// Decoded TPM evidence.
#[derive(Debug, Clone, Default)]
pub struct TpmEvidence {
    /// The AK's TPMT_PUBLIC.
    pub ak_pub: Vec<u8>,
    /// The AK certificate, if any.
    pub ak_cert: Option<Vec<u8>>,
    /// Quotes (one per bank).
    pub quotes: Vec<QuoteIn>,
    /// Event log.
    pub event_log: Option<Vec<u8>>,
}

fn bad(m: &str) -> AttestError {
    AttestError::malformed(format!("TPM evidence: {m}"))
}

/// A protobuf field: number, payload (length-delimited or fixed), varint value.
type Field<'a> = (u64, &'a [u8], u64);

struct Pb<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Pb<'a> {
    fn varint(&mut self) -> Result<u64, AttestError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .b
                .get(self.i)
                .ok_or_else(|| bad("truncated protobuf"))?;
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("protobuf varint too long"))
    }
    /// Next field: number and payload (bytes for length-delimited, else empty with the value).
    fn field(&mut self) -> Result<Option<Field<'a>>, AttestError> {
        if self.i >= self.b.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (num, wt) = (key >> 3, key & 7);
        match wt {
            0 => Ok(Some((num, &[][..], self.varint()?))),
            1 | 5 => {
                let n = if wt == 1 { 8 } else { 4 };
                let end = self
                    .i
                    .checked_add(n)
                    .ok_or_else(|| bad("truncated protobuf"))?;
                let s = self
                    .b
                    .get(self.i..end)
                    .ok_or_else(|| bad("truncated protobuf"))?;
                self.i = end;
                Ok(Some((num, s, 0)))
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| bad("length"))?;
                let end = self
                    .i
                    .checked_add(n)
                    .ok_or_else(|| bad("truncated protobuf"))?;
                let s = self
                    .b
                    .get(self.i..end)
                    .ok_or_else(|| bad("truncated protobuf"))?;
                self.i = end;
                Ok(Some((num, s, 0)))
            }
            _ => Err(bad("unsupported protobuf wire type")),
        }
    }
}

fn pb_quote(b: &[u8]) -> Result<QuoteIn, AttestError> {
    let mut q = QuoteIn::default();
    let mut p = Pb { b, i: 0 };
    while let Some((num, s, _)) = p.field()? {
        match num {
            1 => q.attest = s.to_vec(),
            2 => q.signature = s.to_vec(),
            3 => {
                let mut r = Pb { b: s, i: 0 };
                while let Some((n, v, val)) = r.field()? {
                    match n {
                        1 => q.bank = u16::try_from(val).map_err(|_| bad("hash"))?,
                        2 => {
                            let mut e = Pb { b: v, i: 0 };
                            let (mut key, mut value) = (0u32, Vec::new());
                            while let Some((k, vv, kv)) = e.field()? {
                                match k {
                                    1 => key = u32::try_from(kv).map_err(|_| bad("PCR index"))?,
                                    2 => value = vv.to_vec(),
                                    _ => {}
                                }
                            }
                            q.pcrs.insert(key, value);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(q)
}

fn protobuf(b: &[u8]) -> Result<TpmEvidence, AttestError> {
    let mut ev = TpmEvidence::default();
    let mut p = Pb { b, i: 0 };
    while let Some((num, s, _)) = p.field()? {
        match num {
            1 => ev.ak_pub = s.to_vec(),
            2 => ev.quotes.push(pb_quote(s)?),
            3 => ev.event_log = Some(s.to_vec()),
            6 => ev.ak_cert = Some(s.to_vec()),
            _ => {}
        }
    }
    if ev.ak_pub.is_empty() || ev.quotes.is_empty() {
        return Err(bad("no AK public key or no quote"));
    }
    Ok(ev)
}

fn bank(name: &str) -> Option<u16> {
    Some(match name {
        "sha1" => ALG_SHA1,
        "sha256" => ALG_SHA256,
        "sha384" => ALG_SHA384,
        "sha512" => ALG_SHA512,
        _ => return None,
    })
}

// serde_json::Value indexing returns Null for missing members; it never panics.
#[allow(clippy::indexing_slicing)]
fn envelope(v: &serde_json::Value) -> Result<TpmEvidence, AttestError> {
    let b64 = |k: &serde_json::Value, what: &str| -> Result<Vec<u8>, AttestError> {
        let s = k
            .as_str()
            .ok_or_else(|| bad(&format!("{what} must be a base64 string")))?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .or_else(|_| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('='))
            })
            .map_err(|_| bad(&format!("{what} is not base64")))
    };
    let mut ev = TpmEvidence {
        ak_pub: b64(&v["ak_pub"], "ak_pub")?,
        ..Default::default()
    };
    if !v["ak_cert"].is_null() {
        ev.ak_cert = Some(b64(&v["ak_cert"], "ak_cert")?);
    }
    if !v["event_log"].is_null() {
        ev.event_log = Some(b64(&v["event_log"], "event_log")?);
    }
    for q in v["quotes"]
        .as_array()
        .ok_or_else(|| bad("quotes must be an array"))?
    {
        let mut qi = QuoteIn {
            attest: b64(&q["quote"], "quote")?,
            signature: b64(&q["signature"], "signature")?,
            bank: bank(q["pcrs"]["hash"].as_str().unwrap_or(""))
                .ok_or_else(|| bad("pcrs.hash must be sha1, sha256, sha384 or sha512"))?,
            ..Default::default()
        };
        for (k, val) in q["pcrs"]["values"]
            .as_object()
            .ok_or_else(|| bad("pcrs.values must be an object"))?
        {
            let idx: u32 = k.parse().map_err(|_| bad("PCR indexes are numbers"))?;
            let hexv = val
                .as_str()
                .and_then(sovra_proto::hex::decode)
                .ok_or_else(|| bad("PCR values are hex"))?;
            qi.pcrs.insert(idx, hexv);
        }
        ev.quotes.push(qi);
    }
    if ev.quotes.is_empty() {
        return Err(bad("no quote"));
    }
    Ok(ev)
}

/// Decodes the evidence (JSON envelope if it parses as JSON, else the protobuf).
pub fn decode(b: &[u8]) -> Result<TpmEvidence, AttestError> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) {
        return envelope(&v);
    }
    protobuf(b)
}
