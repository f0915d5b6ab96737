//! The signing algorithms: RS256 (default), ES256 and EdDSA (Ed25519). One private-key type
//! for all three, usable wherever openidconnect wants a `PrivateSigningKey`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreJsonCurveType, CoreJsonWebKey, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::{JsonWebKeyId, PrivateSigningKey, SigningError};
use rand::RngCore;
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use serde_json::{Value, json};
use zeroize::Zeroizing;

pub const RS256: &str = "RS256";
pub const ES256: &str = "ES256";
pub const EDDSA: &str = "EdDSA";
pub const ALL: &[&str] = &[RS256, ES256, EDDSA];

pub fn jws_alg(alg: &str) -> Option<CoreJwsSigningAlgorithm> {
    match alg {
        RS256 => Some(CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
        ES256 => Some(CoreJwsSigningAlgorithm::EcdsaP256Sha256),
        EDDSA => Some(CoreJwsSigningAlgorithm::EdDsa),
        _ => None,
    }
}

/// An RSA key: openidconnect's type describes it (its JWK), ring signs with it, about three
/// times faster than the rsa crate (PKCS#1 v1.5 signatures are deterministic, so both give the
/// same bytes).
pub struct RsaKey {
    described: CoreRsaPrivateSigningKey,
    signer: ring::signature::RsaKeyPair,
}

/// A private signing key of any supported algorithm.
pub enum AnyKey {
    Rsa(Box<RsaKey>),
    Es256(p256::ecdsa::SigningKey, String),
    EdDsa(ed25519_dalek::SigningKey, String),
}

/// New private key material for `alg`: PKCS#1 PEM for RSA, the 32-byte secret otherwise.
pub fn generate(alg: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut rng = rand::rngs::OsRng;
    match alg {
        RS256 => {
            let private = rsa::RsaPrivateKey::new(&mut rng, 2048)
                .map_err(|e| format!("RSA key generation failed: {e}"))?;
            let pem = private
                .to_pkcs1_pem(LineEnding::LF)
                .map_err(|e| format!("RSA key encoding failed: {e}"))?;
            Ok(Zeroizing::new(pem.as_bytes().to_vec()))
        }
        ES256 => {
            // A random 32-byte string is a valid P-256 scalar with overwhelming probability.
            for _ in 0..8 {
                let mut b = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(b.as_mut());
                if p256::ecdsa::SigningKey::from_slice(b.as_ref()).is_ok() {
                    return Ok(Zeroizing::new(b.to_vec()));
                }
            }
            Err("P-256 key generation failed".into())
        }
        EDDSA => {
            let mut b = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(b.as_mut());
            Ok(Zeroizing::new(b.to_vec()))
        }
        other => Err(format!("unsupported signing algorithm {other}")),
    }
}

impl AnyKey {
    /// Rebuilds a key from the material `generate` made.
    pub fn from_material(alg: &str, kid: &str, material: &[u8]) -> Result<AnyKey, String> {
        match alg {
            RS256 => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                let pem = std::str::from_utf8(material).map_err(|_| "RSA key is not PEM")?;
                let described = CoreRsaPrivateSigningKey::from_pem(
                    pem,
                    Some(JsonWebKeyId::new(kid.to_string())),
                )?;
                let der = rsa::RsaPrivateKey::from_pkcs1_pem(pem)
                    .and_then(|k| k.to_pkcs1_der())
                    .map_err(|e| format!("invalid RSA key: {e}"))?;
                let signer = ring::signature::RsaKeyPair::from_der(der.as_bytes())
                    .map_err(|e| format!("RSA key refused for signing: {e}"))?;
                Ok(AnyKey::Rsa(Box::new(RsaKey { described, signer })))
            }
            ES256 => p256::ecdsa::SigningKey::from_slice(material)
                .map(|k| AnyKey::Es256(k, kid.to_string()))
                .map_err(|_| "invalid P-256 key".to_string()),
            EDDSA => {
                let b: [u8; 32] = material.try_into().map_err(|_| "invalid Ed25519 key")?;
                Ok(AnyKey::EdDsa(
                    ed25519_dalek::SigningKey::from_bytes(&b),
                    kid.to_string(),
                ))
            }
            other => Err(format!("unsupported signing algorithm {other}")),
        }
    }

    /// The public JWK to publish (with `use` and `alg`).
    pub fn public_jwk(&self, alg: &str, kid: &str) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match self {
            AnyKey::Rsa(_) => {
                let jwk = self.as_verification_key();
                let mut v = serde_json::to_value(&jwk).unwrap_or_default();
                v["alg"] = json!(alg);
                v["use"] = json!("sig");
                v["kid"] = json!(kid);
                v
            }
            AnyKey::Es256(k, _) => {
                let point = k.verifying_key().to_sec1_point(false);
                let bytes = point.as_bytes();
                json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": alg, "kid": kid,
                       "x": b64(&bytes[1..33]), "y": b64(&bytes[33..65])})
            }
            AnyKey::EdDsa(k, _) => json!({"kty": "OKP", "crv": "Ed25519", "use": "sig",
                "alg": alg, "kid": kid, "x": b64(&k.verifying_key().to_bytes())}),
        }
    }
}

impl PrivateSigningKey for AnyKey {
    type VerificationKey = CoreJsonWebKey;

    fn sign(&self, alg: &CoreJwsSigningAlgorithm, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        match (self, alg) {
            (AnyKey::Rsa(k), CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256) => {
                let mut sig = vec![0u8; k.signer.public().modulus_len()];
                k.signer
                    .sign(
                        &ring::signature::RSA_PKCS1_SHA256,
                        &ring::rand::SystemRandom::new(),
                        message,
                        &mut sig,
                    )
                    .map_err(|_| SigningError::CryptoError)?;
                Ok(sig)
            }
            (AnyKey::Rsa(k), _) => k.described.sign(alg, message),
            (AnyKey::Es256(k, _), CoreJwsSigningAlgorithm::EcdsaP256Sha256) => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = k.sign(message);
                Ok(sig.to_bytes().to_vec())
            }
            (AnyKey::EdDsa(k, _), CoreJwsSigningAlgorithm::EdDsa) => {
                use ed25519_dalek::Signer;
                Ok(k.sign(message).to_bytes().to_vec())
            }
            _ => Err(SigningError::UnsupportedAlg(
                "key and algorithm differ".into(),
            )),
        }
    }

    fn as_verification_key(&self) -> CoreJsonWebKey {
        match self {
            AnyKey::Rsa(k) => k.described.as_verification_key(),
            AnyKey::Es256(k, kid) => {
                let point = k.verifying_key().to_sec1_point(false);
                let bytes = point.as_bytes();
                CoreJsonWebKey::new_ec(
                    bytes[1..33].to_vec(),
                    bytes[33..65].to_vec(),
                    CoreJsonCurveType::P256,
                    Some(JsonWebKeyId::new(kid.clone())),
                )
            }
            AnyKey::EdDsa(k, kid) => CoreJsonWebKey::new_okp(
                k.verifying_key().to_bytes().to_vec(),
                CoreJsonCurveType::Ed25519,
                Some(JsonWebKeyId::new(kid.clone())),
            ),
        }
    }
}

/// A public key from its published JWK, to verify tokens we issued.
#[derive(Debug, Clone)]
pub enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    pub fn from_jwk(jwk: &Value) -> Option<PublicKey> {
        let part = |name: &str| {
            jwk[name]
                .as_str()
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
        };
        match jwk["kty"].as_str()? {
            "RSA" => {
                let n = rsa::BigUint::from_bytes_be(&part("n")?);
                let e = rsa::BigUint::from_bytes_be(&part("e")?);
                rsa::RsaPublicKey::new(n, e).ok().map(PublicKey::Rsa)
            }
            "EC" => {
                let mut sec1 = vec![4u8];
                sec1.extend(part("x")?);
                sec1.extend(part("y")?);
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .ok()
                    .map(PublicKey::Es256)
            }
            "OKP" => {
                let x: [u8; 32] = part("x")?.try_into().ok()?;
                ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .ok()
                    .map(PublicKey::EdDsa)
            }
            _ => None,
        }
    }

    /// Checks a JWS signature made with `alg` over `message`.
    pub fn verify(&self, alg: &str, message: &[u8], signature: &[u8]) -> bool {
        match (self, alg) {
            (PublicKey::Rsa(k), RS256) => {
                use rsa::pkcs1v15::{Signature, VerifyingKey};
                use rsa::signature::Verifier;
                Signature::try_from(signature).is_ok_and(|s| {
                    VerifyingKey::<sha2::Sha256>::new(k.clone())
                        .verify(message, &s)
                        .is_ok()
                })
            }
            (PublicKey::Es256(k), ES256) => {
                use p256::ecdsa::signature::Verifier;
                p256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|s| k.verify(message, &s).is_ok())
            }
            (PublicKey::EdDsa(k), EDDSA) => {
                let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
                    return false;
                };
                k.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes))
                    .is_ok()
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_through_its_published_jwk() {
        for alg in [ES256, EDDSA] {
            let material = generate(alg).unwrap();
            let key = AnyKey::from_material(alg, "k1", &material).unwrap();
            let jwk = key.public_jwk(alg, "k1");
            assert_eq!(jwk["alg"], alg);
            assert!(jwk.get("d").is_none());
            let sig = key.sign(&jws_alg(alg).unwrap(), b"hello").unwrap();
            let public = PublicKey::from_jwk(&jwk).unwrap();
            assert!(public.verify(alg, b"hello", &sig), "{alg}");
            assert!(!public.verify(alg, b"hellO", &sig), "{alg}");
            assert!(!public.verify(RS256, b"hello", &sig), "{alg}");
        }
    }

    /// ring signs RS256; the rsa crate (openidconnect's own signer) gives the same bytes, and
    /// the published JWK verifies them.
    #[test]
    fn rs256_signed_with_ring_matches_the_rsa_crate_and_verifies() {
        let material = generate(RS256).unwrap();
        let key = AnyKey::from_material(RS256, "r1", &material).unwrap();
        let alg = jws_alg(RS256).unwrap();
        let sig = key.sign(&alg, b"hello").unwrap();
        let AnyKey::Rsa(k) = &key else {
            panic!("an RSA key")
        };
        assert_eq!(sig, k.described.sign(&alg, b"hello").unwrap());
        let public = PublicKey::from_jwk(&key.public_jwk(RS256, "r1")).unwrap();
        assert!(public.verify(RS256, b"hello", &sig));
        assert!(!public.verify(RS256, b"hellO", &sig));
    }
}
