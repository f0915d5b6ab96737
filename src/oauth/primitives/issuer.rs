//! The issuer: opaque access and refresh tokens stored as hashes, refresh rotation with
//! reuse detection, and the ID token minted beside them.

use super::*;

/// Issues opaque access and refresh tokens (stored hashed) and mints ID tokens.
pub struct DbIssuer<'a, 'c> {
    pub conn: &'a SharedConn<'c>,
    pub ctx: Ctx<'a>,
    pub now: NaiveDateTime,
    pub client: &'a Client,
    pub flags: &'a RefCell<Flags>,
    /// The ID token minted by the last `issue` or `refresh`.
    pub id_token: Option<String>,
    /// Seconds the issued access token lives.
    pub expires_in: i64,
}

impl DbIssuer<'_, '_> {
    fn fail(&self, e: impl Into<InternalError>) {
        self.flags.borrow_mut().internal = Some(e.into());
    }

    /// Refuses the grant unless its user still exists and is not disabled (a grant without a
    /// user, client credentials, passes). Checked at every exchange and every refresh.
    fn check_owner(&self, grant: &Grant) -> Result<(), ()> {
        if grant.owner_id.is_empty() {
            return Ok(());
        }
        let found = {
            let mut conn = self.conn.borrow_mut();
            crate::store::users::find(&mut conn, &grant.owner_id)
        };
        match found {
            Ok(Some(u)) if !u.disabled => Ok(()),
            Ok(_) => {
                self.flags.borrow_mut().bad_grant = true;
                Err(())
            }
            Err(e) => {
                self.fail(e);
                Err(())
            }
        }
    }

    fn may_refresh(&self, scope: &str) -> bool {
        scope::contains(scope, scope::OFFLINE_ACCESS)
            && self
                .client
                .grant_type_list()
                .iter()
                .any(|g| g == "refresh_token")
    }

    /// Stores an access token for the grant's scope and, when `refresh_scope` allows one, a
    /// refresh token for `refresh_scope`, in the grant's family. A refresh that asks for fewer
    /// scopes narrows only the access token (RFC 6749 §6): the refresh token keeps the scope
    /// of the one it replaces.
    fn store_tokens(
        &mut self,
        grant: &Grant,
        data: &GrantData,
        refresh_scope: &str,
    ) -> Result<(String, Option<String>), ()> {
        let lt = &self.ctx.config.lifetimes;
        let access = random_token();
        let scope = scope::normalize(&grant.scope.to_string());
        let refresh_scope = scope::normalize(refresh_scope);
        let user_id = Some(grant.owner_id.clone()).filter(|s| !s.is_empty());
        let base = Token {
            token_hash: sha256_hex(&access),
            kind: tokens::ACCESS.into(),
            family_id: data.family_id.clone(),
            client_id: grant.client_id.clone(),
            user_id,
            scope: scope.clone(),
            grant_data: data.to_json(),
            rotated: false,
            revoked: false,
            created_at: self.now,
            expires_at: crate::protocol::params::after(self.now, lt.access_token),
            rotated_at: None,
            successor_sealed: None,
        };
        let mut conn = self.conn.borrow_mut();
        if let Err(e) = tokens::insert(&mut conn, &base) {
            drop(conn);
            self.fail(e);
            return Err(());
        }
        let mut refresh = None;
        if self.may_refresh(&refresh_scope) {
            let r = random_token();
            let row = Token {
                token_hash: sha256_hex(&r),
                kind: tokens::REFRESH.into(),
                scope: refresh_scope,
                expires_at: crate::protocol::params::after(self.now, lt.refresh_token),
                ..base
            };
            if let Err(e) = tokens::insert(&mut conn, &row) {
                drop(conn);
                self.fail(e);
                return Err(());
            }
            refresh = Some(r);
        }
        self.expires_in = lt.access_token;
        Ok((access, refresh))
    }

    fn mint_id_token(&mut self, grant: &Grant, data: &GrantData, access: &str) -> Result<(), ()> {
        if !grant.scope.iter().any(|s| s == scope::OPENID) {
            self.id_token = None;
            return Ok(());
        }
        let requested = if data.claims_id_token.is_empty() {
            serde_json::Map::new()
        } else {
            let user = {
                let mut conn = self.conn.borrow_mut();
                crate::store::users::find(&mut conn, &grant.owner_id)
            };
            match user {
                Ok(Some(u)) => crate::oidc::claims::subset(&u, &data.claims_id_token),
                Ok(None) => serde_json::Map::new(),
                Err(e) => {
                    self.fail(e);
                    return Err(());
                }
            }
        };
        match id_token::mint(
            self.ctx,
            &grant.owner_id,
            &grant.client_id,
            data,
            access,
            requested,
            &self.client.id_token_alg,
            self.now,
        ) {
            Ok(t) => {
                self.id_token = Some(t);
                Ok(())
            }
            Err(e) => {
                self.fail(e);
                Err(())
            }
        }
    }

    fn data_of(grant: &Grant) -> GrantData {
        grant
            .extensions
            .private()
            .find(|(k, _)| *k == grant_data::EXTENSION)
            .and_then(|(_, v)| v)
            .and_then(GrantData::from_json)
            .unwrap_or_else(|| GrantData {
                family_id: random_id(),
                ..Default::default()
            })
    }

    fn recover(&self, token: &str, kind: &str) -> Result<Option<Grant>, ()> {
        let mut conn = self.conn.borrow_mut();
        let row = match tokens::find(&mut conn, &sha256_hex(token)) {
            Ok(r) => r,
            Err(e) => {
                drop(conn);
                self.fail(e);
                return Err(());
            }
        };
        let Some(row) = row.filter(|r| r.kind == kind) else {
            self.flags.borrow_mut().bad_grant = true;
            return Ok(None);
        };
        if kind == tokens::REFRESH && row.rotated && !row.revoked {
            // A rotated refresh token came back: someone holds a copy. End the whole family.
            // (A retry within the reuse window never gets here: `refresh_reuse::retry` answered it.)
            if let Err(e) = tokens::revoke_family(&mut conn, &row.family_id) {
                drop(conn);
                self.fail(e);
                return Err(());
            }
            tracing::warn!(client_id = %row.client_id, "refresh token reused; its family was revoked");
            self.flags.borrow_mut().refresh_reused = true;
        }
        if row.revoked
            || row.rotated
            || row.expires_at <= self.now
            || row.client_id != self.client.client_id
        {
            self.flags.borrow_mut().bad_grant = true;
            return Ok(None);
        }
        let mut extensions = Extensions::new();
        extensions.set_raw(
            grant_data::EXTENSION.into(),
            Value::private(Some(row.grant_data)),
        );
        let redirect = self
            .client
            .redirect_uri_list()
            .first()
            .and_then(|u| u.parse().ok())
            .or_else(|| self.ctx.config.issuer.parse().ok())
            .ok_or(())?;
        Ok(Some(Grant {
            owner_id: row.user_id.unwrap_or_default(),
            client_id: row.client_id,
            scope: row.scope.parse().map_err(|_| ())?,
            redirect_uri: redirect,
            until: to_utc(row.expires_at),
            extensions,
        }))
    }
}

impl Issuer for DbIssuer<'_, '_> {
    fn issue(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        self.check_owner(&grant)?;
        let data = Self::data_of(&grant);
        let (access, refresh) = self.store_tokens(&grant, &data, &grant.scope.to_string())?;
        self.mint_id_token(&grant, &data, &access)?;
        Ok(IssuedToken {
            token: access,
            refresh,
            until: to_utc(crate::protocol::params::after(self.now, self.expires_in)),
            token_type: TokenType::Bearer,
        })
    }

    /// Rotates: the presented refresh token is consumed exactly once, a new pair is issued.
    fn refresh(&mut self, refresh: &str, grant: Grant) -> Result<RefreshedToken, ()> {
        self.check_owner(&grant)?;
        let (original, consumed) = {
            let mut conn = self.conn.borrow_mut();
            let hash = sha256_hex(refresh);
            let original = tokens::find(&mut conn, &hash).map(|r| r.map(|t| t.scope));
            (original, tokens::mark_rotated(&mut conn, &hash, self.now))
        };
        // The successor keeps the scope of the token it replaces, whatever was asked for now.
        let refresh_scope = match original {
            Ok(Some(scope)) => scope,
            Ok(None) => {
                self.flags.borrow_mut().bad_grant = true;
                return Err(());
            }
            Err(e) => {
                self.fail(e);
                return Err(());
            }
        };
        match consumed {
            Ok(1) => {}
            Ok(_) => {
                self.flags.borrow_mut().bad_grant = true;
                return Err(());
            }
            Err(e) => {
                self.fail(e);
                return Err(());
            }
        }
        let data = Self::data_of(&grant);
        let (access, new_refresh) = self.store_tokens(&grant, &data, &refresh_scope)?;
        self.mint_id_token(&grant, &data, &access)?;
        Ok(RefreshedToken {
            token: access,
            refresh: new_refresh,
            until: to_utc(crate::protocol::params::after(self.now, self.expires_in)),
            token_type: TokenType::Bearer,
        })
    }

    fn recover_token<'t>(&'t self, token: &'t str) -> Result<Option<Grant>, ()> {
        self.recover(token, tokens::ACCESS)
    }

    fn recover_refresh<'t>(&'t self, token: &'t str) -> Result<Option<Grant>, ()> {
        self.recover(token, tokens::REFRESH)
    }
}
