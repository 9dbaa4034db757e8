//! The v1r private key file (`PW_RSA_KEY_PATH`), loaded once while the configuration is read.
//!
//! The file as pypowerwall writes it (`tedapi_rsa_private.pem`, PKCS#1 "RSA PRIVATE KEY";
//! PKCS#8 "PRIVATE KEY" is accepted too), RSA-4096 only, and the DER PKCS#1 public key the
//! gateway identifies us by. The key never reaches a log: `Debug` shows its fingerprint.

use std::fmt;

use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha512;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;

/// Key size pypowerwall registers and this client expects.
pub const KEY_BITS: usize = 4096;

/// The file `python -m pypowerwall register` writes and reuses.
pub const REGISTER_KEY_FILENAME: &str = "tedapi_rsa_private.pem";

/// A registered v1r private key. `Debug` shows the fingerprint only.
pub struct RsaKey {
    signing: SigningKey<Sha512>,
    public_der: Vec<u8>,
    fingerprint: String,
    bits: usize,
}

impl fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaKey")
            .field("bits", &self.bits)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl RsaKey {
    /// Reads a PEM private key file (`PW_RSA_KEY_PATH`). Errors say what is wrong and how to
    /// get a key, never the key's content.
    pub fn load(path: &str) -> Result<RsaKey, String> {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the RSA private key '{path}': {e} (create and register one with \
                 `python -m pypowerwall register`, which writes {REGISTER_KEY_FILENAME})"
            )
        })?;
        RsaKey::from_pem(&pem).map_err(|e| format!("'{path}': {e}"))
    }

    /// Parses a PEM private key: PKCS#1 "RSA PRIVATE KEY" (what pypowerwall writes) or
    /// unencrypted PKCS#8 "PRIVATE KEY". Only RSA-4096 keys are accepted.
    pub fn from_pem(pem: &str) -> Result<RsaKey, String> {
        let key = if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            rsa::PrivateKey::from_pkcs1_pem(pem)
                .map_err(|e| format!("not a usable PKCS#1 RSA private key ({e})"))?
        } else if pem.contains("-----BEGIN PRIVATE KEY-----") {
            rsa::PrivateKey::from_pkcs8_pem(pem)
                .map_err(|e| format!("not a usable PKCS#8 RSA private key ({e})"))?
        } else if pem.contains("ENCRYPTED") {
            return Err(
                "encrypted private keys are not supported (pypowerwall writes an \
                        unencrypted PEM)"
                    .into(),
            );
        } else {
            return Err(
                "not a PEM private key (expected \"-----BEGIN RSA PRIVATE KEY-----\")".into(),
            );
        };
        let bits = key.size() * 8;
        if bits != KEY_BITS {
            return Err(format!(
                "the RSA key has {bits} bits; v1r keys are RSA-{KEY_BITS} (as \
                 `python -m pypowerwall register` makes them)"
            ));
        }
        RsaKey::from_private(key)
    }

    /// Any key size: for the simulator's tests only (the gateway side wants [`KEY_BITS`]).
    #[doc(hidden)]
    pub fn from_pem_any_size(pem: &str) -> Result<RsaKey, String> {
        let key = rsa::PrivateKey::from_pkcs1_pem(pem).map_err(|e| e.to_string())?;
        RsaKey::from_private(key)
    }

    fn from_private(key: rsa::PrivateKey) -> Result<RsaKey, String> {
        let bits = key.size() * 8;
        let public_der = key
            .to_public_key()
            .to_pkcs1_der()
            .map_err(|e| format!("cannot encode the public key ({e})"))?
            .as_bytes()
            .to_vec();
        let fingerprint = hex(ring::digest::digest(&ring::digest::SHA256, &public_der).as_ref());
        Ok(RsaKey {
            signing: SigningKey::<Sha512>::new(key),
            public_der,
            fingerprint,
            bits,
        })
    }

    /// The DER PKCS#1 RSAPublicKey sent as `signer_identity.public_key`.
    pub fn public_der(&self) -> &[u8] {
        &self.public_der
    }

    /// SHA-256 hex of [`RsaKey::public_der`], as `pypowerwall register` prints it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn bits(&self) -> usize {
        self.bits
    }

    /// RSASSA-PKCS1-v1_5 with SHA-512 over `msg`.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        self.signing
            .try_sign(msg)
            .map(|s| s.to_vec())
            .map_err(|e| format!("RSA signing failed: {e}"))
    }
}

use crate::wire::hex_lower as hex;
