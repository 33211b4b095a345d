//! Sealed fields: small values kept in the store (layer names, OCR'd text, EXIF with GPS, an
//! original's SHA-256) encrypted under a key derived from the member's data key, so they are
//! unreadable without it and crypto-shredded with it. A sealed value is base64 of
//! `nonce (12) ‖ AES-256-GCM ciphertext`, bound to its owner and object by the AAD.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::DataKey;

const INFO: &[u8] = b"image-layered sealed fields v1";
const NONCE_LEN: usize = 12;

/// The key that seals a member's fields (derived, so it never encrypts a blob too).
pub struct FieldKey(Aes256Gcm);

impl FieldKey {
    pub fn new(key: &DataKey) -> Self {
        let mut okm = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, key.expose())
            .expand(INFO, okm.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(Aes256Gcm::new(okm.as_ref().into()))
    }

    /// Seals `plain`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .0
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .expect("AES-GCM encryption of a small value cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        STANDARD.encode(out)
    }

    /// Opens a sealed value; `None` if it was not sealed by this key for this `aad`.
    pub fn open(&self, aad: &[u8], sealed: &str) -> Option<Zeroizing<Vec<u8>>> {
        let bytes = STANDARD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        self.0
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok()
            .map(Zeroizing::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_field_opens_only_with_its_key_and_aad() {
        let key = DataKey::generate();
        let k = FieldKey::new(&key);
        let s = k.seal(b"owner|doc|layer", b"Logo text");
        assert!(!s.contains("Logo"));
        assert_eq!(
            k.open(b"owner|doc|layer", &s).unwrap().as_slice(),
            b"Logo text"
        );
        assert!(k.open(b"owner|doc|other", &s).is_none());
        assert!(FieldKey::new(&DataKey::generate())
            .open(b"owner|doc|layer", &s)
            .is_none());
        assert!(k.open(b"owner|doc|layer", "not base64!").is_none());
        // random nonces: the same value seals differently each time
        assert_ne!(s, k.seal(b"owner|doc|layer", b"Logo text"));
    }
}
