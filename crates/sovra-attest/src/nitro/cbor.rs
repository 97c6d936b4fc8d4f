//! A small CBOR (RFC 8949) reader: definite-length items only, bounded nesting, never panics.
//! Enough for COSE_Sign1 and the Nitro attestation document.

use crate::error::AttestError;

/// A decoded item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    /// Unsigned integer.
    Uint(u64),
    /// Negative integer (the value is -1 - n).
    Nint(u64),
    /// Byte string.
    Bytes(&'a [u8]),
    /// Text string.
    Text(&'a str),
    /// Array.
    Array(Vec<Item<'a>>),
    /// Map (pairs in order).
    Map(Vec<(Item<'a>, Item<'a>)>),
    /// Tagged item.
    Tag(u64, Box<Item<'a>>),
    /// Simple values: false (20), true (21), null (22), undefined (23).
    Simple(u8),
}

const MAX_DEPTH: usize = 16;

fn err(msg: &str) -> AttestError {
    AttestError::malformed(format!("CBOR: {msg}"))
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, AttestError> {
        let v = *self.b.get(self.i).ok_or_else(|| err("truncated"))?;
        self.i += 1;
        Ok(v)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], AttestError> {
        let n = usize::try_from(n).map_err(|_| err("length too large"))?;
        let end = self
            .i
            .checked_add(n)
            .ok_or_else(|| err("length too large"))?;
        let s = self.b.get(self.i..end).ok_or_else(|| err("truncated"))?;
        self.i = end;
        Ok(s)
    }

    fn arg(&mut self, info: u8) -> Result<u64, AttestError> {
        Ok(match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(
                self.take(2)?.try_into().map_err(|_| err("truncated"))?,
            )),
            26 => u64::from(u32::from_be_bytes(
                self.take(4)?.try_into().map_err(|_| err("truncated"))?,
            )),
            27 => u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| err("truncated"))?),
            _ => {
                return Err(err(
                    "indefinite lengths and reserved values are not accepted",
                ));
            }
        })
    }

    fn item(&mut self, depth: usize) -> Result<Item<'a>, AttestError> {
        if depth > MAX_DEPTH {
            return Err(err("nested too deeply"));
        }
        let first = self.byte()?;
        let (major, info) = (first >> 5, first & 0x1f);
        if major == 7 {
            return match info {
                20..=23 => Ok(Item::Simple(info)),
                _ => Err(err("floats and other simple values are not expected here")),
            };
        }
        let n = self.arg(info)?;
        // Every element takes at least one byte: refuse counts the input cannot hold.
        let remaining = (self.b.len() - self.i.min(self.b.len())) as u64;
        Ok(match major {
            0 => Item::Uint(n),
            1 => Item::Nint(n),
            2 => Item::Bytes(self.take(n)?),
            3 => Item::Text(
                std::str::from_utf8(self.take(n)?).map_err(|_| err("text is not UTF-8"))?,
            ),
            4 => {
                if n > remaining {
                    return Err(err("truncated array"));
                }
                let mut v = Vec::new();
                for _ in 0..n {
                    v.push(self.item(depth + 1)?);
                }
                Item::Array(v)
            }
            5 => {
                if n.saturating_mul(2) > remaining {
                    return Err(err("truncated map"));
                }
                let mut v = Vec::new();
                for _ in 0..n {
                    let k = self.item(depth + 1)?;
                    let val = self.item(depth + 1)?;
                    v.push((k, val));
                }
                Item::Map(v)
            }
            6 => Item::Tag(n, Box::new(self.item(depth + 1)?)),
            _ => return Err(err("unknown major type")),
        })
    }
}

/// Decodes exactly one item spanning all of `b`.
pub fn decode(b: &[u8]) -> Result<Item<'_>, AttestError> {
    let mut r = Reader { b, i: 0 };
    let item = r.item(0)?;
    if r.i != b.len() {
        return Err(err("trailing bytes after the item"));
    }
    Ok(item)
}

impl<'a> Item<'a> {
    /// The value of text key `k` in a map.
    pub fn get(&self, k: &str) -> Option<&Item<'a>> {
        match self {
            Item::Map(m) => m
                .iter()
                .find(|(key, _)| *key == Item::Text(k))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses() {
        assert_eq!(decode(&[0x18, 0x64]).unwrap(), Item::Uint(100));
        assert_eq!(decode(&[0x38, 0x22]).unwrap(), Item::Nint(34));
        assert_eq!(decode(&[0x43, 1, 2, 3]).unwrap(), Item::Bytes(&[1, 2, 3]));
        assert_eq!(
            decode(&[0xa1, 0x61, b'a', 0xf5]).unwrap().get("a"),
            Some(&Item::Simple(21))
        );
        for bad in [
            &[][..],
            &[0x43, 1],
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x5f],
            &[0x01, 0x02],
            &[0xfb],
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        let deep = vec![0x81u8; 100];
        assert!(decode(&deep).is_err());
    }
}
