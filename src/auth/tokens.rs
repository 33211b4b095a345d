//! Secrets handed to clients: session tokens and API keys. Only their SHA-256 is stored; the
//! plaintext is shown once. An API key reads `il_<key id>_<secret>` so the id finds the record
//! and the secret is compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::ApiKeyId;

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

pub fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// A new API key: its printable form and the hex hash of its secret.
pub fn new_api_key(id: ApiKeyId) -> (String, String) {
    let secret = random_token();
    let key = format!("il_{}_{}", id.0.simple(), secret);
    (key, hex::encode(sha256(&secret)))
}

/// Splits `il_<id>_<secret>` into its id and secret.
pub fn parse_api_key(key: &str) -> Option<(ApiKeyId, &str)> {
    let rest = key.strip_prefix("il_")?;
    let (id, secret) = rest.split_once('_')?;
    let id = uuid::Uuid::try_parse(id).ok()?;
    Some((ApiKeyId(id), secret))
}

/// Constant-time check of a presented secret against a stored hex hash.
pub fn secret_matches(secret: &str, stored_hex: &str) -> bool {
    let presented = hex::encode(sha256(secret));
    presented.as_bytes().ct_eq(stored_hex.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_parse_and_match() {
        let id = ApiKeyId::new();
        let (key, hash) = new_api_key(id);
        let (pid, secret) = parse_api_key(&key).unwrap();
        assert_eq!(pid, id);
        assert!(secret_matches(secret, &hash));
        assert!(!secret_matches("nope", &hash));
        assert!(parse_api_key("il_notauuid_x").is_none());
        assert!(parse_api_key("bearer").is_none());
    }
}
