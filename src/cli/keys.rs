//! `portcullis keys …`

use clap::Subcommand;
use serde_json::json;

use crate::cli::{CliError, clock, open, output, tx};
use crate::config::Config;
use crate::keys::signing;
use crate::store::signing_keys;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys with their state
    List,
    /// Add a new signing key: published now, signing once the publish delay has passed
    Rotate,
    /// Re-encrypt everything under the master key from PORTCULLIS_MASTER_KEY(_FILE), reading
    /// with the one in PORTCULLIS_PREVIOUS_MASTER_KEY(_FILE); servers keep serving meanwhile
    RotateMaster,
    /// Print a new random master key (32 bytes, base64) for PORTCULLIS_MASTER_KEY or its file;
    /// needs no configuration or database
    GenerateMaster,
}

/// `keys generate-master`: runs before any configuration is read, so it never creates a
/// database or a development key as a side effect.
pub fn generate_master(json: bool) {
    let key = crate::keys::master::MasterKey::generate_encoded();
    output(json, &json!({"master_key": key.as_str()}), key.as_str());
}

fn no_master_key() -> CliError {
    CliError(
        "no master key: set PORTCULLIS_MASTER_KEY or PORTCULLIS_MASTER_KEY_FILE (in development, portcullis migrate or serve creates data/master.key)".into(),
    )
}

pub fn run(config: &Config, cmd: KeysCommand, json: bool) -> Result<(), CliError> {
    match cmd {
        KeysCommand::GenerateMaster => {
            generate_master(json);
            Ok(())
        }
        KeysCommand::RotateMaster => {
            let new = config
                .master_key
                .as_ref()
                .map(|(k, _)| k)
                .ok_or_else(no_master_key)?;
            let old = config.previous_master_key.as_ref().ok_or_else(|| {
                CliError(
                    "set PORTCULLIS_PREVIOUS_MASTER_KEY (or _FILE) to the key being replaced"
                        .into(),
                )
            })?;
            if old.id == new.id {
                return Err(CliError(
                    "the new and the previous master key are the same".into(),
                ));
            }
            let mut conn = open(config)?;
            let keys = signing::reseal_all(&mut conn, old, new)?;
            let totp = crate::sign_in::totp::reseal_all(&mut conn, old, new)?;
            let checkpoints = crate::audit::resign_checkpoints(&mut conn, old, new)?;
            tx(&mut conn, |c| {
                crate::cli::audit_change(
                    c,
                    "admin.keys.rotate_master",
                    None,
                    None,
                    json!({"from": old.id, "to": new.id, "signing_keys": keys, "totp_secrets": totp, "checkpoints": checkpoints}),
                )
            })?;
            output(
                json,
                &json!({"from": old.id, "to": new.id, "signing_keys": keys, "totp_secrets": totp, "checkpoints": checkpoints}),
                &format!(
                    "re-encrypted {keys} signing key(s) and {totp} TOTP secret(s), and re-signed {checkpoints} checkpoint(s) under master key {}; the previous key is no longer needed",
                    new.id
                ),
            );
            Ok(())
        }
        KeysCommand::Rotate => {
            let mut conn = open(config)?;
            let now = clock().naive();
            let master = config
                .master_key
                .as_ref()
                .map(|(k, _)| k)
                .ok_or_else(no_master_key)?;
            let key = tx(&mut conn, |c| {
                signing::ensure_signing_key(c, master, now)?;
                let key = signing::rotate(c, master, now)?.ok_or_else(|| {
                    CliError("a rotation is already pending (a key in state next exists)".into())
                })?;
                crate::cli::audit_change(
                    c,
                    "admin.keys.rotate",
                    None,
                    None,
                    json!({"kid": key.kid}),
                )?;
                Ok(key)
            })?;
            let signs_from = now + chrono::Duration::seconds(config.key_publish_delay);
            output(
                json,
                &json!({"kid": key.kid, "state": key.state, "signs_from": signs_from.and_utc().to_rfc3339()}),
                &format!(
                    "new signing key {} published; it signs from {} (running servers pick it up within a minute)",
                    key.kid,
                    signs_from.and_utc().to_rfc3339()
                ),
            );
            Ok(())
        }
        KeysCommand::List => {
            let mut conn = open(config)?;
            let now = clock().naive();
            let master = config
                .master_key
                .as_ref()
                .map(|(k, _)| k)
                .ok_or_else(no_master_key)?;
            tx(&mut conn, |c| {
                signing::ensure_signing_key(c, master, now)?;
                Ok(())
            })?;
            let keys = signing_keys::list(&mut conn)?;
            let doc = json!(
                keys.iter()
                    .map(|k| json!({
                        "kid": k.kid,
                        "alg": k.alg,
                        "state": k.state,
                        "created_at": k.created_at.and_utc().to_rfc3339(),
                        "activated_at": k.activated_at.map(|t| t.and_utc().to_rfc3339()),
                        "retired_at": k.retired_at.map(|t| t.and_utc().to_rfc3339()),
                    }))
                    .collect::<Vec<_>>()
            );
            let text = std::iter::once("KID\tALG\tSTATE\tCREATED".to_string())
                .chain(keys.iter().map(|k| {
                    format!(
                        "{}\t{}\t{}\t{}",
                        k.kid,
                        k.alg,
                        k.state,
                        k.created_at.and_utc().to_rfc3339()
                    )
                }))
                .collect::<Vec<_>>()
                .join("\n");
            output(json, &doc, &text);
            Ok(())
        }
    }
}
