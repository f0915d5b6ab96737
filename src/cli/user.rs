//! `portcullis user …`

use clap::Subcommand;
use serde_json::json;

use crate::cli::{CliError, clock, open, output, read_password_stdin, tx};
use crate::config::Config;
use crate::keys::secrets::{random_id, random_token};
use crate::sign_in::password;
use crate::store::{sessions, tokens, users};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user
    Add {
        /// The sign-in name (letters, digits, '.', '_', '-', '@')
        username: String,
        /// The user's email address
        #[arg(long)]
        email: Option<String>,
        /// The user's display name
        #[arg(long)]
        name: Option<String>,
        /// A group the user belongs to (repeatable)
        #[arg(long = "group")]
        groups: Vec<String>,
        /// A role the user holds (repeatable); `admin` administers Portcullis
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Read the password from one line of stdin (otherwise one is generated and printed once)
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (ends their sessions and tokens)
    SetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Stop a user from signing in (ends their sessions and tokens)
    Disable { username: String },
    /// Let a disabled user sign in again
    Enable { username: String },
    /// Show one user (personal data masked unless --reveal, which is recorded)
    Show {
        username: String,
        #[arg(long)]
        reveal: bool,
    },
    /// Remove every second factor of a user (TOTP, passkeys, recovery codes)
    ResetMfa { username: String },
    /// List users (personal data masked unless --reveal, which is recorded)
    List {
        #[arg(long)]
        reveal: bool,
    },
    /// Change a user's email, name or whether the email is verified (audited without the
    /// values); a new email is unverified unless --email-verified true
    Set {
        username: String,
        /// The new email address ('' removes it)
        #[arg(long)]
        email: Option<String>,
        /// The new display name ('' removes it)
        #[arg(long)]
        name: Option<String>,
        /// Whether the email address is verified (the email_verified claim)
        #[arg(long, value_name = "true|false")]
        email_verified: Option<bool>,
    },
    /// Remove a user with their sessions, tokens, consents and second factors
    Remove { username: String },
}

pub fn validate_username(u: &str) -> Result<(), CliError> {
    let ok = !u.is_empty()
        && u.len() <= 64
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(CliError(format!(
            "invalid username {u:?}: use 1-64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

fn validate_label(kind: &str, v: &str) -> Result<(), CliError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    if ok {
        Ok(())
    } else {
        Err(CliError(format!(
            "invalid {kind} {v:?}: use 1-64 letters, digits, '.', '_', '-' or ':'"
        )))
    }
}

pub(crate) fn validate_email(e: &str) -> Result<(), CliError> {
    let parts: Vec<&str> = e.split('@').collect();
    let ok = e.len() <= 254
        && parts.len() == 2
        && !parts[0].is_empty()
        && parts[1].contains('.')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(CliError(format!("invalid email address {e:?}")))
    }
}

/// A display name: at most 128 printable characters (empty means none).
pub(crate) fn validate_name(n: &str) -> Result<(), CliError> {
    if n.chars().count() > 128 || n.chars().any(char::is_control) {
        return Err(CliError(
            "invalid name: at most 128 printable characters".into(),
        ));
    }
    Ok(())
}

/// Personal data as the operator may see it: masked unless revealed.
fn email_of(u: &users::User, reveal: bool) -> Option<String> {
    u.email.as_deref().map(|e| {
        if reveal {
            e.to_string()
        } else {
            crate::audit::mask_email(e)
        }
    })
}

fn name_of(u: &users::User, reveal: bool) -> Option<String> {
    u.name.as_deref().map(|n| {
        if reveal {
            n.to_string()
        } else {
            crate::audit::mask(n)
        }
    })
}

fn user_json_as(u: &users::User, reveal: bool) -> serde_json::Value {
    json!({
        "id": u.id,
        "username": u.username,
        "email": email_of(u, reveal),
        "email_verified": u.email_verified,
        "name": name_of(u, reveal),
        "groups": u.group_list(),
        "roles": u.role_list(),
        "disabled": u.disabled,
        "has_password": u.password_hash.is_some(),
        "created_at": u.created_at.and_utc().to_rfc3339(),
    })
}

pub fn run(config: &Config, cmd: UserCommand, json: bool) -> Result<(), CliError> {
    let now = clock().naive();
    match cmd {
        UserCommand::Add {
            username,
            email,
            name,
            groups,
            roles,
            password_stdin,
        } => {
            validate_username(&username)?;
            if let Some(e) = &email {
                validate_email(e)?;
            }
            if let Some(n) = &name {
                validate_name(n)?;
            }
            for g in &groups {
                validate_label("group", g)?;
            }
            for r in &roles {
                validate_label("role", r)?;
            }
            let (pw, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (random_token(), true)
            };
            {
                let mut inputs: Vec<&str> = vec![username.as_str()];
                inputs.extend(email.as_deref());
                inputs.extend(name.as_deref());
                password::check_policy(&config.password, &pw, &inputs).map_err(CliError)?;
            }
            let hash = password::hash(&pw)?;
            let mut conn = open(config)?;
            let user = users::User {
                id: random_id(),
                username: username.clone(),
                email: email.filter(|e| !e.is_empty()),
                name: name.filter(|n| !n.is_empty()),
                groups: serde_json::to_string(&groups).unwrap_or_else(|_| "[]".into()),
                roles: serde_json::to_string(&roles).unwrap_or_else(|_| "[]".into()),
                password_hash: Some(hash),
                disabled: false,
                created_at: now,
                updated_at: now,
                email_verified: false,
            };
            tx(&mut conn, |c| {
                if users::find_by_username(c, &username)?.is_some() {
                    return Err(CliError(format!("user {username:?} already exists")));
                }
                users::insert(c, &user)?;
                crate::cli::audit_change(
                    c,
                    "admin.user.add",
                    Some(&user.id),
                    None,
                    serde_json::json!({"username": user.username, "roles": roles, "groups": groups}),
                )?;
                password::remember(
                    c,
                    &user.id,
                    user.password_hash.as_deref().unwrap_or_default(),
                    config.password.history,
                    now,
                )?;
                Ok(())
            })?;
            let mut doc = user_json_as(&user, false);
            let mut text = format!("created user {username} ({})", user.id);
            if generated {
                doc["password"] = json!(pw);
                text.push_str(&format!("\npassword: {pw}\n(shown once: store it now)"));
            }
            output(json, &doc, &text);
            Ok(())
        }
        UserCommand::SetPassword {
            username,
            password_stdin,
        } => {
            if !password_stdin {
                return Err(CliError("set-password needs --password-stdin".into()));
            }
            let pw = read_password_stdin()?;
            let mut conn = open(config)?;
            let u = find(&mut conn, &username)?;
            password::change(&mut conn, &config.password, &u, &pw, now)?;
            tx(&mut conn, |c| {
                crate::cli::audit_change(
                    c,
                    "admin.user.set_password",
                    Some(&u.id),
                    None,
                    serde_json::json!({}),
                )
            })?;
            output(
                json,
                &json!({"username": username, "password_changed": true}),
                &format!("password of {username} changed; their sessions and tokens were ended"),
            );
            Ok(())
        }
        UserCommand::Set {
            username,
            email,
            name,
            email_verified,
        } => {
            let changes = crate::cli::user_change::Changes {
                email,
                name,
                email_verified,
            };
            crate::cli::user_change::run_set(config, &username, &changes, json)
        }
        UserCommand::Remove { username } => {
            crate::cli::user_change::run_remove(config, &username, json)
        }
        UserCommand::Disable { username } => set_disabled(config, &username, true, json),
        UserCommand::Enable { username } => set_disabled(config, &username, false, json),
        UserCommand::Show { username, reveal } => {
            let mut conn = open(config)?;
            let u = find(&mut conn, &username)?;
            if reveal {
                tx(&mut conn, |c| {
                    crate::cli::audit_change(c, "admin.reveal", Some(&u.id), None, json!({}))
                })?;
            }
            let factors = crate::sign_in::second_factor::factors(&mut conn, &u.id)?;
            let keys = crate::store::mfa::passkeys_for(&mut conn, &u.id)?;
            // Passkey names are the user's own words ("Alice's phone"): masked like names.
            let key_name = |n: &str| {
                if reveal {
                    n.to_string()
                } else {
                    crate::audit::mask(n)
                }
            };
            let mut doc = user_json_as(&u, reveal);
            doc["mfa"] = json!({
                "totp": factors.totp,
                "passkeys": keys.iter().map(|p| json!({
                    "name": key_name(&p.name),
                    "created_at": p.created_at.and_utc().to_rfc3339(),
                    "last_used_at": p.last_used_at.map(|t| t.and_utc().to_rfc3339()),
                })).collect::<Vec<_>>(),
                "recovery_codes_remaining": factors.recovery_remaining,
            });
            let names: Vec<String> = keys.iter().map(|p| key_name(&p.name)).collect();
            let text = format!(
                "username: {}\nid: {}\nemail: {}\nemail verified: {}\nname: {}\ngroups: {}\nroles: {}\ndisabled: {}\ncreated: {}\ntotp: {}\npasskeys: {}{}\nrecovery codes left: {}",
                u.username,
                u.id,
                email_of(&u, reveal).unwrap_or_default(),
                u.email_verified,
                name_of(&u, reveal).unwrap_or_default(),
                u.group_list().join(", "),
                u.role_list().join(", "),
                u.disabled,
                u.created_at.and_utc().to_rfc3339(),
                if factors.totp { "on" } else { "off" },
                keys.len(),
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", names.join(", "))
                },
                factors.recovery_remaining
            );
            output(json, &doc, &text);
            Ok(())
        }
        UserCommand::ResetMfa { username } => {
            let mut conn = open(config)?;
            let before = tx(&mut conn, |c| {
                let u = find(c, &username)?;
                let before = crate::account::mfa::reset(c, &u.id)?;
                crate::cli::audit_change(
                    c,
                    "admin.user.reset_mfa",
                    Some(&u.id),
                    None,
                    json!({
                        "totp": before.totp,
                        "passkeys": before.passkeys,
                        "recovery_codes": before.recovery_remaining,
                    }),
                )?;
                Ok(before)
            })?;
            output(
                json,
                &json!({
                    "username": username,
                    "removed": {
                        "totp": before.totp,
                        "passkeys": before.passkeys,
                        "recovery_codes": before.recovery_remaining,
                    }
                }),
                &format!(
                    "second factors of {username} removed (totp: {}, passkeys: {}, recovery codes: {})",
                    if before.totp { "yes" } else { "no" },
                    before.passkeys,
                    before.recovery_remaining
                ),
            );
            Ok(())
        }
        UserCommand::List { reveal } => {
            let mut conn = open(config)?;
            let list = users::list(&mut conn)?;
            // Recorded only when something personal is actually shown.
            let revealed = list
                .iter()
                .filter(|u| u.email.is_some() || u.name.is_some())
                .count();
            if reveal && revealed > 0 {
                tx(&mut conn, |c| {
                    crate::cli::audit_change(
                        c,
                        "admin.reveal",
                        None,
                        None,
                        json!({"users": revealed}),
                    )
                })?;
            }
            let doc = json!(
                list.iter()
                    .map(|u| user_json_as(u, reveal))
                    .collect::<Vec<_>>()
            );
            let text = std::iter::once("USERNAME\tSTATE\tROLES".to_string())
                .chain(list.iter().map(|u| {
                    format!(
                        "{}\t{}\t{}",
                        u.username,
                        if u.disabled { "disabled" } else { "active" },
                        u.role_list().join(",")
                    )
                }))
                .collect::<Vec<_>>()
                .join("\n");
            output(json, &doc, &text);
            Ok(())
        }
    }
}

fn find(c: &mut crate::db::DbConn, username: &str) -> Result<users::User, CliError> {
    users::find_by_username(c, username)?.ok_or_else(|| CliError(format!("no user {username:?}")))
}

fn set_disabled(
    config: &Config,
    username: &str,
    disabled: bool,
    json: bool,
) -> Result<(), CliError> {
    let now = clock().naive();
    let mut conn = open(config)?;
    tx(&mut conn, |c| {
        let u = find(c, username)?;
        users::set_disabled(c, &u.id, disabled, now)?;
        crate::cli::audit_change(
            c,
            if disabled {
                "admin.user.disable"
            } else {
                "admin.user.enable"
            },
            Some(&u.id),
            None,
            serde_json::json!({}),
        )?;
        if disabled {
            sessions::delete_for_user(c, &u.id)?;
            tokens::revoke_for_user(c, &u.id)?;
        }
        Ok(())
    })?;
    let word = if disabled { "disabled" } else { "enabled" };
    output(
        json,
        &json!({"username": username, "disabled": disabled}),
        &format!("user {username} {word}"),
    );
    Ok(())
}
