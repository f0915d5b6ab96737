//! Portable schema shared by both backends (TEXT ids and JSON, naive-UTC timestamps).

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        email -> Nullable<Text>,
        name -> Nullable<Text>,
        groups -> Text,
        roles -> Text,
        password_hash -> Nullable<Text>,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        email_verified -> Bool,
    }
}

diesel::table! {
    clients (client_id) {
        client_id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        public -> Bool,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        scopes -> Text,
        grant_types -> Text,
        auth_method -> Text,
        skip_consent -> Bool,
        require_mfa -> Bool,
        backchannel_logout_uri -> Nullable<Text>,
        id_token_alg -> Text,
        created_at -> Timestamp,
        web_origins -> Text,
        previous_secret_hash -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamp>,
        requests_per_minute -> Nullable<Integer>,
        updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        sid -> Text,
        user_id -> Nullable<Text>,
        csrf_token -> Text,
        auth_time -> Nullable<Timestamp>,
        amr -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        pending_user_id -> Nullable<Text>,
        password_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    auth_requests (id) {
        id -> Text,
        client_id -> Text,
        params -> Text,
        login_sid -> Nullable<Text>,
        consented -> Bool,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        client_ip -> Nullable<Text>,
    }
}

diesel::table! {
    auth_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        scope -> Text,
        grant_data -> Text,
        family_id -> Text,
        used -> Bool,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    tokens (token_hash) {
        token_hash -> Text,
        kind -> Text,
        family_id -> Text,
        client_id -> Text,
        user_id -> Nullable<Text>,
        scope -> Text,
        grant_data -> Text,
        rotated -> Bool,
        revoked -> Bool,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        rotated_at -> Nullable<Timestamp>,
        successor_sealed -> Nullable<Text>,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        claims -> Text,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        private_pem -> Text,
        public_jwk -> Text,
        state -> Text,
        created_at -> Timestamp,
        activated_at -> Nullable<Timestamp>,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    session_clients (sid, client_id) {
        sid -> Text,
        client_id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    logout_deliveries (id) {
        id -> Text,
        client_id -> Text,
        uri -> Text,
        logout_token -> Text,
        attempts -> Integer,
        delivered -> Bool,
        last_error -> Nullable<Text>,
        next_attempt_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    throttles (key) {
        key -> Text,
        failures -> Integer,
        first_failure_at -> Timestamp,
        last_failure_at -> Timestamp,
        blocked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    password_history (id) {
        id -> Text,
        user_id -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        at -> Timestamp,
        event -> Text,
        actor -> Nullable<Text>,
        user_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Nullable<Text>,
        outcome -> Text,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        body -> Text,
        attempts -> Integer,
        delivered -> Bool,
        last_error -> Nullable<Text>,
        next_attempt_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_checkpoints (seq) {
        seq -> BigInt,
        hash -> Text,
        at -> Timestamp,
        key_id -> Text,
        mac -> Text,
    }
}

diesel::table! {
    totp_credentials (user_id) {
        user_id -> Text,
        secret -> Text,
        confirmed -> Bool,
        last_step -> Nullable<BigInt>,
        created_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    passkeys (credential_id) {
        credential_id -> Text,
        user_id -> Text,
        name -> Text,
        passkey -> Text,
        backup_eligible -> Bool,
        backup_state -> Bool,
        sign_count -> BigInt,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    recovery_codes (code_hash) {
        code_hash -> Text,
        user_id -> Text,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webauthn_ceremonies (id) {
        id -> Text,
        kind -> Text,
        sid -> Text,
        user_id -> Nullable<Text>,
        state -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    pushed_requests (id) {
        id -> Text,
        client_id -> Text,
        params -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    detection_facts (id) {
        id -> BigInt,
        kind -> Text,
        subject -> Text,
        other -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    instances (id) {
        id -> Text,
        seen_at -> Timestamp,
    }
}

diesel::table! {
    job_runs (name) {
        name -> Text,
        next_run_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    job_runs,
    detection_facts,
    instances,
    pushed_requests,
    totp_credentials,
    passkeys,
    recovery_codes,
    webauthn_ceremonies,
    audit_checkpoints,
    webhook_deliveries,
    audit_log,
    throttles,
    password_history,
    session_clients,
    logout_deliveries,
    users,
    clients,
    sessions,
    auth_requests,
    auth_codes,
    tokens,
    consents,
    signing_keys,
);
