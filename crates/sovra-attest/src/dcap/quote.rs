//! Intel DCAP quotes: SGX v3, TDX v4 (TD 1.0) and v5 (TD 1.0 / TD 1.5 / SGX bodies), with ECDSA
//! P-256 attestation keys and QE certification data (PCK chain inside).

use crate::error::AttestError;

/// TEE type of an SGX quote.
pub const TEE_SGX: u32 = 0x0000_0000;
/// TEE type of a TDX quote.
pub const TEE_TDX: u32 = 0x0000_0081;

/// Size of an SGX report body (also the QE report).
pub const SGX_BODY_LEN: usize = 384;
const TD10_LEN: usize = 584;
const TD15_LEN: usize = 648;

/// The quote header.
#[derive(Debug, Clone)]
pub struct Header {
    /// Quote version (3, 4, 5).
    pub version: u16,
    /// Attestation key type (2 = ECDSA P-256).
    pub att_key_type: u16,
    /// TEE type.
    pub tee_type: u32,
    /// QE SVN.
    pub qe_svn: u16,
    /// PCE SVN.
    pub pce_svn: u16,
    /// QE vendor ID.
    pub qe_vendor_id: [u8; 16],
    /// User data.
    pub user_data: [u8; 20],
}

/// An SGX enclave report body (the quoted enclave, or the QE).
#[derive(Debug, Clone)]
pub struct SgxReport {
    /// The raw 384 bytes.
    pub raw: Vec<u8>,
    /// CPU SVN.
    pub cpu_svn: [u8; 16],
    /// MISCSELECT.
    pub misc_select: u32,
    /// ATTRIBUTES.
    pub attributes: [u8; 16],
    /// MRENCLAVE.
    pub mr_enclave: [u8; 32],
    /// MRSIGNER.
    pub mr_signer: [u8; 32],
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// REPORTDATA.
    pub report_data: [u8; 64],
}

/// A TD report body (TD 1.0, or TD 1.5 with the extra fields).
#[derive(Debug, Clone)]
pub struct TdReport {
    /// TEE_TCB_SVN.
    pub tee_tcb_svn: [u8; 16],
    /// MRSEAM.
    pub mr_seam: [u8; 48],
    /// MRSIGNERSEAM.
    pub mr_signer_seam: [u8; 48],
    /// SEAMATTRIBUTES.
    pub seam_attributes: [u8; 8],
    /// TDATTRIBUTES.
    pub td_attributes: [u8; 8],
    /// XFAM.
    pub xfam: [u8; 8],
    /// MRTD.
    pub mr_td: [u8; 48],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// MROWNER.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// RTMR0..3.
    pub rtmr: [[u8; 48]; 4],
    /// REPORTDATA.
    pub report_data: [u8; 64],
    /// TD 1.5: TEE_TCB_SVN2.
    pub tee_tcb_svn2: Option<[u8; 16]>,
    /// TD 1.5: MRSERVICETD.
    pub mr_service_td: Option<[u8; 48]>,
}

/// The quoted body.
#[derive(Debug, Clone)]
pub enum Body {
    /// An SGX enclave.
    Sgx(SgxReport),
    /// A TD.
    Td(Box<TdReport>),
}

/// A parsed quote.
#[derive(Debug, Clone)]
pub struct Quote {
    /// Header.
    pub header: Header,
    /// Body.
    pub body: Body,
    /// The bytes the attestation key signs (header ‖ [v5 body descriptor] ‖ body).
    pub signed: Vec<u8>,
    /// ECDSA signature (r ‖ s) by the attestation key.
    pub signature: [u8; 64],
    /// Attestation public key (x ‖ y).
    pub attestation_key: [u8; 64],
    /// The QE report.
    pub qe_report: SgxReport,
    /// The PCK's signature over the QE report (r ‖ s).
    pub qe_report_signature: [u8; 64],
    /// QE authentication data.
    pub qe_auth_data: Vec<u8>,
    /// PCK certificate chain (PEM), from certification data type 5.
    pub pck_chain_pem: Vec<u8>,
}

pub(crate) struct Cur<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) i: usize,
}

fn trunc(what: &str) -> AttestError {
    AttestError::malformed(format!("quote truncated in {what}"))
}

impl<'a> Cur<'a> {
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], AttestError> {
        let end = self.i.checked_add(n).ok_or_else(|| trunc(what))?;
        let s = self.b.get(self.i..end).ok_or_else(|| trunc(what))?;
        self.i = end;
        Ok(s)
    }
    pub(crate) fn arr<const N: usize>(&mut self, what: &str) -> Result<[u8; N], AttestError> {
        <[u8; N]>::try_from(self.take(N, what)?).map_err(|_| trunc(what))
    }
    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, AttestError> {
        Ok(u16::from_le_bytes(self.arr(what)?))
    }
    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, AttestError> {
        Ok(u32::from_le_bytes(self.arr(what)?))
    }
}

/// Parses an SGX report body.
pub fn parse_sgx_report(b: &[u8]) -> Result<SgxReport, AttestError> {
    let mut c = Cur { b, i: 0 };
    let cpu_svn = c.arr("cpu_svn")?;
    let misc_select = c.u32("misc_select")?;
    c.take(28, "reserved")?;
    let attributes = c.arr("attributes")?;
    let mr_enclave = c.arr("mr_enclave")?;
    c.take(32, "reserved")?;
    let mr_signer = c.arr("mr_signer")?;
    c.take(96, "reserved")?;
    let isv_prod_id = c.u16("isv_prod_id")?;
    let isv_svn = c.u16("isv_svn")?;
    c.take(60, "reserved")?;
    let report_data = c.arr("report_data")?;
    if c.i != SGX_BODY_LEN || b.len() != SGX_BODY_LEN {
        return Err(AttestError::malformed("an SGX report body is 384 bytes"));
    }
    Ok(SgxReport {
        raw: b.to_vec(),
        cpu_svn,
        misc_select,
        attributes,
        mr_enclave,
        mr_signer,
        isv_prod_id,
        isv_svn,
        report_data,
    })
}

fn parse_td(b: &[u8], td15: bool) -> Result<TdReport, AttestError> {
    let mut c = Cur { b, i: 0 };
    let mut r = TdReport {
        tee_tcb_svn: c.arr("tee_tcb_svn")?,
        mr_seam: c.arr("mr_seam")?,
        mr_signer_seam: c.arr("mr_signer_seam")?,
        seam_attributes: c.arr("seam_attributes")?,
        td_attributes: c.arr("td_attributes")?,
        xfam: c.arr("xfam")?,
        mr_td: c.arr("mr_td")?,
        mr_config_id: c.arr("mr_config_id")?,
        mr_owner: c.arr("mr_owner")?,
        mr_owner_config: c.arr("mr_owner_config")?,
        rtmr: [
            c.arr("rtmr0")?,
            c.arr("rtmr1")?,
            c.arr("rtmr2")?,
            c.arr("rtmr3")?,
        ],
        report_data: c.arr("report_data")?,
        tee_tcb_svn2: None,
        mr_service_td: None,
    };
    if td15 {
        r.tee_tcb_svn2 = Some(c.arr("tee_tcb_svn2")?);
        r.mr_service_td = Some(c.arr("mr_service_td")?);
    }
    Ok(r)
}

/// Parses a quote.
pub fn parse(b: &[u8]) -> Result<Quote, AttestError> {
    let mut c = Cur { b, i: 0 };
    let header = Header {
        version: c.u16("header")?,
        att_key_type: c.u16("header")?,
        tee_type: c.u32("header")?,
        qe_svn: c.u16("header")?,
        pce_svn: c.u16("header")?,
        qe_vendor_id: c.arr("header")?,
        user_data: c.arr("header")?,
    };
    if !(3..=5).contains(&header.version) {
        return Err(AttestError::Unsupported(format!(
            "quote version {} (supported: 3, 4, 5)",
            header.version
        )));
    }
    if header.att_key_type != 2 {
        return Err(AttestError::Unsupported(format!(
            "attestation key type {} (only 2, ECDSA P-256)",
            header.att_key_type
        )));
    }
    let body = match (header.version, header.tee_type) {
        (3, TEE_SGX) => Body::Sgx(parse_sgx_report(c.take(SGX_BODY_LEN, "body")?)?),
        (4, TEE_TDX) => Body::Td(Box::new(parse_td(c.take(TD10_LEN, "body")?, false)?)),
        (5, _) => {
            let ty = c.u16("body type")?;
            let size = c.u32("body size")? as usize;
            let raw = c.take(size, "body")?;
            match (ty, size, header.tee_type) {
                (1, SGX_BODY_LEN, TEE_SGX) => Body::Sgx(parse_sgx_report(raw)?),
                (2, TD10_LEN, TEE_TDX) => Body::Td(Box::new(parse_td(raw, false)?)),
                (3, TD15_LEN, TEE_TDX) => Body::Td(Box::new(parse_td(raw, true)?)),
                _ => {
                    return Err(AttestError::Unsupported(format!(
                        "v5 body type {ty} of {size} bytes"
                    )));
                }
            }
        }
        (v, t) => {
            return Err(AttestError::Unsupported(format!(
                "quote version {v} with TEE type {t:#x}"
            )));
        }
    };
    let signed = b.get(..c.i).ok_or_else(|| trunc("body"))?.to_vec();
    let sig_len = c.u32("signature data length")? as usize;
    let sig_data = c.take(sig_len, "signature data")?;
    // Quotes are often handed over in a fixed-size buffer: bytes after the signature data are
    // outside everything signed and are ignored (as Intel's and dcap-qvl's verifiers do).
    let mut s = Cur { b: sig_data, i: 0 };
    let signature = s.arr("quote signature")?;
    let attestation_key = s.arr("attestation key")?;
    // v4/v5 wrap the QE report in certification data type 6; v3 has it inline.
    let mut qe_part = if header.version == 3 {
        s
    } else {
        let t = s.u16("certification data type")?;
        if t != 6 {
            return Err(AttestError::Unsupported(format!(
                "certification data type {t} (expected 6, QE report)"
            )));
        }
        let n = s.u32("certification data size")? as usize;
        Cur {
            b: s.take(n, "QE certification data")?,
            i: 0,
        }
    };
    let qe_raw = qe_part.take(SGX_BODY_LEN, "QE report")?;
    let qe_sig: [u8; 64] = qe_part.arr("QE report signature")?;
    let auth_len = qe_part.u16("QE auth data size")? as usize;
    let auth = qe_part.take(auth_len, "QE auth data")?;
    let cert_type = qe_part.u16("certification data type")?;
    let cert_size = qe_part.u32("certification data size")? as usize;
    let chain = qe_part.take(cert_size, "PCK chain")?;
    if cert_type != 5 {
        return Err(AttestError::Unsupported(format!(
            "certification data type {cert_type} (only 5, the PCK certificate chain; fetching PCK certificates by PPID is not supported offline)"
        )));
    }
    let pck_chain_pem = chain.to_vec();
    Ok(Quote {
        header,
        body,
        signed,
        signature,
        attestation_key,
        qe_report: parse_sgx_report(qe_raw)?,
        qe_report_signature: qe_sig,
        qe_auth_data: auth.to_vec(),
        pck_chain_pem,
    })
}
