//! Diesel queries, one file per group of tables. No HTTP, no policy.

pub mod audit_log;
pub mod auth_codes;
pub mod auth_requests;
pub mod clients;
pub mod consents;
pub mod detection_facts;
pub mod instances;
pub mod job_runs;
pub mod logout_deliveries;
pub mod mfa;
pub mod password_history;
pub mod pushed_requests;
pub mod session_clients;
pub mod sessions;
pub mod signing_keys;
pub mod throttles;
pub mod tokens;
pub mod users;
pub mod webhook_deliveries;

#[cfg(test)]
mod tests {
    use chrono::NaiveDateTime;

    const MARK: &str = "secret-marker-7f3a";

    #[test]
    fn debug_output_of_stored_rows_shows_no_secret() {
        let t = NaiveDateTime::default();
        let shown = [
            format!(
                "{:?}",
                super::users::User {
                    id: "u".into(),
                    username: "alice".into(),
                    email: Some(MARK.into()),
                    name: Some(MARK.into()),
                    groups: "[]".into(),
                    roles: "[]".into(),
                    password_hash: Some(MARK.into()),
                    disabled: false,
                    created_at: t,
                    updated_at: t,
                    email_verified: false,
                }
            ),
            format!(
                "{:?}",
                super::clients::Client {
                    client_id: "c".into(),
                    name: "n".into(),
                    secret_hash: Some(MARK.into()),
                    public: false,
                    redirect_uris: "[]".into(),
                    post_logout_redirect_uris: "[]".into(),
                    scopes: "openid".into(),
                    grant_types: "[]".into(),
                    auth_method: "client_secret_basic".into(),
                    skip_consent: false,
                    require_mfa: false,
                    backchannel_logout_uri: None,
                    id_token_alg: "RS256".into(),
                    created_at: t,
                    web_origins: "[]".into(),
                    previous_secret_hash: Some(MARK.into()),
                    previous_secret_expires_at: None,
                    requests_per_minute: None,
                    updated_at: None,
                }
            ),
            format!(
                "{:?}",
                super::signing_keys::SigningKey {
                    kid: "k".into(),
                    alg: "RS256".into(),
                    private_pem: MARK.into(),
                    public_jwk: "{}".into(),
                    state: "active".into(),
                    created_at: t,
                    activated_at: None,
                    retired_at: None,
                }
            ),
            format!(
                "{:?}",
                super::mfa::Totp {
                    user_id: "u".into(),
                    secret: MARK.into(),
                    confirmed: true,
                    last_step: None,
                    created_at: t,
                    confirmed_at: None,
                    last_used_at: None,
                }
            ),
            format!(
                "{:?}",
                super::mfa::RecoveryCode {
                    code_hash: MARK.into(),
                    user_id: "u".into(),
                    used_at: None,
                    created_at: t,
                }
            ),
            format!(
                "{:?}",
                super::mfa::Ceremony {
                    id: MARK.into(),
                    kind: "register".into(),
                    sid: MARK.into(),
                    user_id: None,
                    state: MARK.into(),
                    expires_at: t,
                }
            ),
            format!(
                "{:?}",
                crate::bootstrap::Bootstrap::Created {
                    generated_password: Some(MARK.into())
                }
            ),
        ];
        for s in shown {
            assert!(!s.contains(MARK), "{s}");
        }
    }
}
