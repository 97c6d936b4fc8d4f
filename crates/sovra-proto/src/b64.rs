//! Base64 for binary JSON fields: standard alphabet with padding on output; standard or
//! URL-safe, padded or not, on input.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Encodes bytes as standard, padded base64.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard or URL-safe base64, with or without padding.
pub fn decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let trimmed = s.trim_end_matches('=');
    if trimmed.contains(['+', '/']) {
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed)
    } else {
        URL_SAFE_NO_PAD.decode(trimmed)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn accepts_both_alphabets() {
        let v = vec![0xfb, 0xff, 0x00, 0x10];
        assert_eq!(super::decode(&super::encode(&v)).unwrap(), v);
        assert_eq!(super::decode("-_8AEA").unwrap(), v);
        assert!(super::decode("not base64!").is_err());
    }
}
