//! First start: create an `admin` user when nobody holds the admin role.

use chrono::NaiveDateTime;

use crate::config::PasswordPolicy;
use crate::db::{self, DbConn};
use crate::error::InternalError;
use crate::keys::secrets::{random_id, random_token};
use crate::sign_in::password;
use crate::store::users::{self, User};

pub const ADMIN_ROLE: &str = "admin";

/// What bootstrap did (`Debug` never shows the generated password).
#[derive(PartialEq, Eq)]
pub enum Bootstrap {
    /// An admin already exists.
    NotNeeded,
    /// Created `admin`; the password is returned only when it was generated.
    Created { generated_password: Option<String> },
    /// A user called `admin` exists without the role; nothing was changed.
    NameTaken,
}

impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bootstrap::NotNeeded => f.write_str("NotNeeded"),
            Bootstrap::Created { generated_password } => f
                .debug_struct("Created")
                .field(
                    "generated_password",
                    &generated_password.as_ref().map(|_| "[redacted]"),
                )
                .finish(),
            Bootstrap::NameTaken => f.write_str("NameTaken"),
        }
    }
}

pub fn ensure_admin(
    conn: &mut DbConn,
    policy: &PasswordPolicy,
    given_password: Option<String>,
    now: NaiveDateTime,
) -> Result<Bootstrap, InternalError> {
    let has_admin = users::all_roles(conn)?.iter().any(|r| {
        serde_json::from_str::<Vec<String>>(r)
            .unwrap_or_default()
            .iter()
            .any(|x| x == ADMIN_ROLE)
    });
    if has_admin {
        return Ok(Bootstrap::NotNeeded);
    }
    if users::find_by_username(conn, "admin")?.is_some() {
        return Ok(Bootstrap::NameTaken);
    }
    let (pw, generated) = match given_password {
        Some(p) => {
            password::check_policy(policy, &p, &["admin", "Administrator"]).map_err(|m| {
                InternalError::with(
                    "PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD",
                    password::PasswordError::Policy(m),
                )
            })?;
            (p, false)
        }
        None => (random_token(), true),
    };
    let hash = password::hash(&pw)?;
    let user = User {
        id: random_id(),
        username: "admin".into(),
        email: None,
        name: Some("Administrator".into()),
        groups: "[]".into(),
        roles: serde_json::to_string(&[ADMIN_ROLE])?,
        password_hash: Some(hash),
        disabled: false,
        created_at: now,
        updated_at: now,
        email_verified: false,
    };
    db::transaction(conn, |c| {
        users::insert(c, &user)?;
        password::remember(
            c,
            &user.id,
            user.password_hash.as_deref().unwrap_or_default(),
            policy.history,
            now,
        )?;
        crate::audit::record(
            c,
            &crate::context::RequestMeta::default(),
            now,
            crate::audit::Event::new("admin.user.add", "success")
                .actor("bootstrap")
                .user(&user.id)
                .details(serde_json::json!({"username": "admin", "roles": [ADMIN_ROLE]})),
        )
    })?;
    Ok(Bootstrap::Created {
        generated_password: generated.then_some(pw),
    })
}
