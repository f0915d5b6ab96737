//! The master key: 32 random bytes from the environment or a file, never from the database.
//! Purpose keys are derived from it with HKDF-SHA256.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::path::Path;
use zeroize::Zeroizing;

use crate::keys::secrets::sha256_hex;

/// The master key with a short public id (a hash prefix, so rotations can be told apart).
#[derive(Clone)]
pub struct MasterKey {
    pub id: String,
    bytes: Zeroizing<[u8; 32]>,
}

impl MasterKey {
    /// 32 new random bytes in base64: what `PORTCULLIS_MASTER_KEY` or its file holds.
    pub fn generate_encoded() -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(STANDARD.encode(MasterKey::random().bytes.as_ref()))
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({}, [redacted])", self.id)
    }
}

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Environment,
    File(String),
    /// Generated into `data/master.key` (development mode only).
    Generated(String),
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        let id = sha256_hex(&STANDARD.encode(bytes))[..12].to_string();
        MasterKey {
            id,
            bytes: Zeroizing::new(bytes),
        }
    }

    pub fn random() -> MasterKey {
        let mut b = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        MasterKey::from_bytes(b)
    }

    /// Parses base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<MasterKey, String> {
        let raw = STANDARD
            .decode(text.trim())
            .map_err(|_| "the master key must be base64".to_string())?;
        let bytes: [u8; 32] = raw.try_into().map_err(|_| {
            "the master key must be exactly 32 bytes (base64 of 32 random bytes)".to_string()
        })?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// A 32-byte key for one purpose (`audit-checkpoint`, …).
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"portcullis"), self.bytes.as_ref());
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit, so expand cannot fail.
        let _ = hk.expand(purpose.as_bytes(), out.as_mut());
        out
    }
}

/// The previous master key during a rotation: `PORTCULLIS_PREVIOUS_MASTER_KEY(_FILE)`.
pub fn load_previous(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<MasterKey>, String> {
    if let Some(v) = env("PORTCULLIS_PREVIOUS_MASTER_KEY") {
        return MasterKey::parse(&v).map(Some);
    }
    if let Some(path) = env("PORTCULLIS_PREVIOUS_MASTER_KEY_FILE") {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read PORTCULLIS_PREVIOUS_MASTER_KEY_FILE {path}: {e}"))?;
        return MasterKey::parse(&text).map(Some);
    }
    Ok(None)
}

/// Loads the master key: `PORTCULLIS_MASTER_KEY`, else `PORTCULLIS_MASTER_KEY_FILE`, else (in
/// development mode only) `data/master.key`, generated with mode 0600 when missing.
pub fn load(
    env: &dyn Fn(&str) -> Option<String>,
    dev_mode: bool,
) -> Result<(MasterKey, Source), String> {
    load_or_generate(env, dev_mode, true)?.ok_or_else(|| "no master key".to_string())
}

/// Like `load`, but a missing development key is generated only when `generate` is set;
/// otherwise the answer is `None` (commands that must not create state).
pub fn load_or_generate(
    env: &dyn Fn(&str) -> Option<String>,
    dev_mode: bool,
    generate: bool,
) -> Result<Option<(MasterKey, Source)>, String> {
    if let Some(v) = env("PORTCULLIS_MASTER_KEY") {
        return Ok(Some((MasterKey::parse(&v)?, Source::Environment)));
    }
    if let Some(path) = env("PORTCULLIS_MASTER_KEY_FILE") {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read PORTCULLIS_MASTER_KEY_FILE {path}: {e}"))?;
        return Ok(Some((MasterKey::parse(&text)?, Source::File(path))));
    }
    if !dev_mode {
        return Err("no master key: set PORTCULLIS_MASTER_KEY or PORTCULLIS_MASTER_KEY_FILE (32 random bytes, base64); an https issuer never generates one".into());
    }
    let path = Path::new("data").join("master.key");
    let shown = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((MasterKey::parse(&text)?, Source::File(shown)))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !generate => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::random();
            crate::private_files::create_dir_all(Path::new("data"))
                .map_err(|e| format!("cannot create data/: {e}"))?;
            crate::private_files::write_new(&path, &STANDARD.encode(key.bytes.as_ref()))
                .map_err(|e| format!("cannot write {shown}: {e}"))?;
            Ok(Some((key, Source::Generated(shown))))
        }
        Err(e) => Err(format!("cannot read {shown}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(MasterKey::parse("not base64!").is_err());
        assert!(MasterKey::parse(&STANDARD.encode([1u8; 16])).is_err());
        let k = MasterKey::parse(&STANDARD.encode([7u8; 32])).unwrap();
        assert_eq!(k.id.len(), 12);
        let shown = format!("{k:?}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(
            !shown.contains(&STANDARD.encode([7u8; 32])),
            "Debug never shows the key"
        );
    }

    #[test]
    fn purposes_get_different_keys() {
        let k = MasterKey::from_bytes([9u8; 32]);
        assert_ne!(*k.derive("a"), *k.derive("b"));
        assert_eq!(*k.derive("a"), *k.derive("a"));
    }

    #[test]
    fn an_https_issuer_without_a_master_key_is_refused() {
        let err = load(&|_| None, false).unwrap_err();
        assert!(err.contains("PORTCULLIS_MASTER_KEY"), "{err}");
    }
}
