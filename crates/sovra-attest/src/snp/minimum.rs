//! The minimum reported TCB: what makes SEV-SNP evidence current enough to be called compliant.
//!
//! A report's REPORTED_TCB (checked against the VCEK/VLEK's TCB extensions, so it cannot be
//! claimed higher than the key it was signed with) is compared component by component with a
//! minimum for its processor generation. A generation without a minimum is never current.

use super::report::{Product, Tcb};
use crate::claims::VerifiedClaims;
use serde_json::{Value, json};

/// The lowest acceptable SVN of each TCB component (FMC applies to Turin only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MinimumTcb {
    /// PSP boot loader SVN.
    pub bootloader: u8,
    /// PSP OS (TEE) SVN.
    pub tee: u8,
    /// SNP firmware SVN.
    pub snp: u8,
    /// Microcode SVN.
    pub microcode: u8,
    /// FMC SVN (Turin).
    pub fmc: u8,
}

/// The minimum per processor generation; `None`: that generation is never current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinimumTcbs {
    /// EPYC 7003.
    pub milan: Option<MinimumTcb>,
    /// EPYC 9004.
    pub genoa: Option<MinimumTcb>,
    /// EPYC 9005.
    pub turin: Option<MinimumTcb>,
}

impl MinimumTcbs {
    /// Sovra's defaults: the SNP firmware SVN that AMD security bulletin AMD-SB-3019
    /// (CVE-2024-56161, February 2025) requires, 0x18 (24) on Milan and 0x17 (23) on Genoa.
    /// Firmware at that SVN refuses to run SNP guests on microcode without the fix, so the
    /// microcode is not compared by default (its SVN differs between steppings of one
    /// generation). No default for Turin: no bulletin gives one. See docs/attestation.md.
    pub const DEFAULT: Self = Self {
        milan: Some(MinimumTcb {
            bootloader: 0,
            tee: 0,
            snp: 24,
            microcode: 0,
            fmc: 0,
        }),
        genoa: Some(MinimumTcb {
            bootloader: 0,
            tee: 0,
            snp: 23,
            microcode: 0,
            fmc: 0,
        }),
        turin: None,
    };

    /// The minimum of `product`.
    pub fn of(&self, product: Product) -> Option<MinimumTcb> {
        match product {
            Product::Milan => self.milan,
            Product::Genoa => self.genoa,
            Product::Turin => self.turin,
        }
    }
}

impl std::str::FromStr for MinimumTcb {
    type Err = String;

    /// `bootloader=4,tee=0,snp=24,microcode=213[,fmc=1]`: components left out are 0.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut m = Self::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not COMPONENT=SVN (e.g. snp=24)"))?;
            let value: u8 = value
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: an SVN is a whole number from 0 to 255"))?;
            let slot = match name.trim() {
                "bootloader" => &mut m.bootloader,
                "tee" => &mut m.tee,
                "snp" => &mut m.snp,
                "microcode" => &mut m.microcode,
                "fmc" => &mut m.fmc,
                other => {
                    return Err(format!(
                        "{other:?} is not a TCB component (bootloader, tee, snp, microcode, fmc)"
                    ));
                }
            };
            *slot = value;
        }
        Ok(m)
    }
}

impl std::fmt::Display for MinimumTcb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bootloader={},tee={},snp={},microcode={},fmc={}",
            self.bootloader, self.tee, self.snp, self.microcode, self.fmc
        )
    }
}

impl Default for MinimumTcbs {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How a report's TCB compares with the minimum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcbVerdict {
    /// Every component is at or above the minimum.
    Current,
    /// A component is below the minimum.
    Below {
        /// The first component below (`bootloader`, `tee`, `snp`, `microcode`, `fmc`).
        component: &'static str,
        /// The report's SVN.
        reported: u8,
        /// The minimum.
        minimum: u8,
    },
    /// No minimum is configured for the generation.
    NoMinimum(Product),
}

impl TcbVerdict {
    /// Whether the TCB is current.
    pub fn is_current(&self) -> bool {
        matches!(self, Self::Current)
    }

    /// Why not, in words an operator can act on (`None` when current).
    pub fn reason(&self) -> Option<String> {
        match self {
            Self::Current => None,
            Self::Below {
                component,
                reported,
                minimum,
            } => Some(format!(
                "reported {component} SVN {reported} is below the minimum {minimum}"
            )),
            Self::NoMinimum(p) => Some(format!(
                "no minimum TCB is configured for {} (attestation.snp_min_tcb.{})",
                p.name(),
                p.name().to_ascii_lowercase()
            )),
        }
    }
}

/// Compares `tcb` of a `product` report with `mins`.
pub fn evaluate(tcb: &Tcb, product: Product, mins: &MinimumTcbs) -> TcbVerdict {
    let Some(min) = mins.of(product) else {
        return TcbVerdict::NoMinimum(product);
    };
    let fmc = match product {
        Product::Turin => Some((tcb.fmc.unwrap_or(0), min.fmc)),
        Product::Milan | Product::Genoa => None,
    };
    [
        ("bootloader", Some((tcb.bootloader, min.bootloader))),
        ("tee", Some((tcb.tee, min.tee))),
        ("snp", Some((tcb.snp, min.snp))),
        ("microcode", Some((tcb.microcode, min.microcode))),
        ("fmc", fmc),
    ]
    .into_iter()
    .find_map(|(component, pair)| {
        pair.filter(|(reported, minimum)| reported < minimum)
            .map(|(reported, minimum)| TcbVerdict::Below {
                component,
                reported,
                minimum,
            })
    })
    .unwrap_or(TcbVerdict::Current)
}

/// The verdict on SEV-SNP claims (bare or inside Azure vTPM evidence); `None` for other types.
pub fn evaluate_claims(v: &VerifiedClaims, mins: &MinimumTcbs) -> Option<TcbVerdict> {
    let (product, tcb) = v.snp_tcb()?;
    Some(evaluate(tcb, product, mins))
}

/// A minimum as a JSON claim value (`null` when there is none).
pub fn to_json(min: Option<MinimumTcb>, product: Product) -> Value {
    match min {
        None => Value::Null,
        Some(m) if product == Product::Turin => json!({
            "bootloader": m.bootloader, "tee": m.tee, "snp": m.snp, "microcode": m.microcode, "fmc": m.fmc,
        }),
        Some(m) => json!({
            "bootloader": m.bootloader, "tee": m.tee, "snp": m.snp, "microcode": m.microcode,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milan(bl: u8, tee: u8, snp: u8, ucode: u8) -> Tcb {
        Tcb {
            raw: 0,
            bootloader: bl,
            tee,
            snp,
            microcode: ucode,
            fmc: None,
        }
    }

    #[test]
    fn every_component_must_reach_the_minimum() {
        let d = MinimumTcbs::DEFAULT;
        assert!(evaluate(&milan(4, 0, 24, 217), Product::Milan, &d).is_current());
        assert!(evaluate(&milan(9, 9, 99, 255), Product::Milan, &d).is_current());
        assert_eq!(
            evaluate(&milan(3, 0, 8, 115), Product::Milan, &d),
            TcbVerdict::Below {
                component: "snp",
                reported: 8,
                minimum: 24
            }
        );
        let strict: MinimumTcbs = MinimumTcbs {
            milan: Some("bootloader=4,snp=24,microcode=213".parse().unwrap()),
            ..d
        };
        assert_eq!(
            evaluate(&milan(3, 0, 24, 220), Product::Milan, &strict),
            TcbVerdict::Below {
                component: "bootloader",
                reported: 3,
                minimum: 4
            }
        );
        // A high microcode does not make up for an old SNP firmware.
        assert_eq!(
            evaluate(&milan(4, 0, 23, 255), Product::Milan, &d),
            TcbVerdict::Below {
                component: "snp",
                reported: 23,
                minimum: 24
            }
        );
    }

    #[test]
    fn minimums_parse_from_and_print_as_component_lists() {
        let m: MinimumTcb = " bootloader=4, tee=1,snp=24 ,microcode=213"
            .parse()
            .unwrap();
        assert_eq!(
            (m.bootloader, m.tee, m.snp, m.microcode, m.fmc),
            (4, 1, 24, 213, 0)
        );
        assert_eq!(m.to_string().parse::<MinimumTcb>().unwrap(), m);
        assert!(
            "snp=256"
                .parse::<MinimumTcb>()
                .unwrap_err()
                .contains("0 to 255")
        );
        assert!(
            "firmware=3"
                .parse::<MinimumTcb>()
                .unwrap_err()
                .contains("bootloader")
        );
        assert!(
            "snp"
                .parse::<MinimumTcb>()
                .unwrap_err()
                .contains("COMPONENT=SVN")
        );
    }

    #[test]
    fn turin_has_no_default_and_checks_fmc_when_configured() {
        let t = Tcb {
            raw: 0,
            bootloader: 1,
            tee: 1,
            snp: 1,
            microcode: 1,
            fmc: Some(0),
        };
        assert_eq!(
            evaluate(&t, Product::Turin, &MinimumTcbs::DEFAULT),
            TcbVerdict::NoMinimum(Product::Turin)
        );
        let mins = MinimumTcbs {
            turin: Some(MinimumTcb {
                fmc: 1,
                ..MinimumTcb::default()
            }),
            ..MinimumTcbs::DEFAULT
        };
        assert_eq!(
            evaluate(&t, Product::Turin, &mins),
            TcbVerdict::Below {
                component: "fmc",
                reported: 0,
                minimum: 1
            }
        );
    }
}
