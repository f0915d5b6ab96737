// The reference of the versus benchmark: node-oidc-provider set up the way the benchmark sets
// up Portcullis, so that the same requests do comparable work on both.
//
//   - an RS256 signing key (RSA 2048), generated once and kept in the database;
//   - one confidential client, `bench` / `secret`, authenticating with client_secret_post,
//     allowed client_credentials and refresh_token;
//   - opaque access tokens, refresh tokens rotated on every use, an ID token on every refresh
//     of an `openid` grant;
//   - introspection and userinfo on the same paths as Portcullis (/introspect, /userinfo);
//   - everything persisted in SQLite (WAL, synchronous=NORMAL, as Portcullis opens it) through
//     the adapter below; accounts are rows of that database too;
//   - no rate limits (node-oidc-provider has none of its own).
//
// Two modes, both configured through the environment:
//
//   node server.mjs seed    creates the database (REF_DB) with its key, 1000 accounts,
//                           REF_SEED_ROWS filler tokens, and REF_CHAINS refresh tokens for the
//                           load; prints {"refresh_tokens":[...]} on one line and exits.
//   node server.mjs         serves REF_ISSUER on 127.0.0.1:REF_PORT from that database.

import { createServer } from 'node:http';
import {
  createPrivateKey, generateKeyPairSync, randomBytes, sign,
} from 'node:crypto';

import Database from 'better-sqlite3';
import Provider from 'oidc-provider';

const env = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) throw new Error(`${name} is required`);
    return fallback;
  }
  return v;
};

const DB_PATH = env('REF_DB');
const ISSUER = env('REF_ISSUER');
const CLIENT_ID = 'bench';
const CLIENT_SECRET = 'secret';
const SCOPE = 'openid offline_access';
const ACCOUNTS = 1000;

// Lifetimes as Portcullis's defaults: access and ID tokens 10 minutes, refresh 30 days.
const ACCESS_TTL = 600;
const REFRESH_TTL = 30 * 24 * 3600;

const now = () => Math.floor(Date.now() / 1000);

const db = new Database(DB_PATH);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = 10000');
db.exec(`
  CREATE TABLE IF NOT EXISTS oidc_models (
    model TEXT NOT NULL,
    id TEXT NOT NULL,
    payload TEXT NOT NULL,
    grant_id TEXT,
    user_code TEXT,
    uid TEXT,
    expires_at INTEGER,
    consumed_at INTEGER,
    PRIMARY KEY (model, id)
  );
  CREATE INDEX IF NOT EXISTS oidc_models_grant_id ON oidc_models (grant_id) WHERE grant_id IS NOT NULL;
  CREATE INDEX IF NOT EXISTS oidc_models_user_code ON oidc_models (user_code) WHERE user_code IS NOT NULL;
  CREATE INDEX IF NOT EXISTS oidc_models_uid ON oidc_models (uid) WHERE uid IS NOT NULL;
  CREATE INDEX IF NOT EXISTS oidc_models_expires_at ON oidc_models (expires_at);
  CREATE TABLE IF NOT EXISTS signing_keys (kid TEXT PRIMARY KEY, jwk TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT,
    disabled INTEGER NOT NULL DEFAULT 0
  );
`);

const sql = {
  find: db.prepare(`SELECT payload, consumed_at FROM oidc_models
    WHERE model = ? AND id = ? AND (expires_at IS NULL OR expires_at > ?)`),
  findBy: (column) => db.prepare(`SELECT payload, consumed_at FROM oidc_models
    WHERE model = ? AND ${column} = ? AND (expires_at IS NULL OR expires_at > ?)`),
  upsert: db.prepare(`INSERT INTO oidc_models
      (model, id, payload, grant_id, user_code, uid, expires_at, consumed_at)
    VALUES (@model, @id, @payload, @grantId, @userCode, @uid, @expiresAt, NULL)
    ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload,
      grant_id = excluded.grant_id, user_code = excluded.user_code, uid = excluded.uid,
      expires_at = excluded.expires_at, consumed_at = NULL`),
  consume: db.prepare('UPDATE oidc_models SET consumed_at = ? WHERE model = ? AND id = ?'),
  destroy: db.prepare('DELETE FROM oidc_models WHERE model = ? AND id = ?'),
  revokeByGrantId: db.prepare('DELETE FROM oidc_models WHERE grant_id = ?'),
  account: db.prepare('SELECT id, username, email FROM accounts WHERE id = ? AND disabled = 0'),
};
const findByUid = sql.findBy('uid');
const findByUserCode = sql.findBy('user_code');

function row(found) {
  if (!found) return undefined;
  const payload = JSON.parse(found.payload);
  if (found.consumed_at !== null) payload.consumed = found.consumed_at;
  return payload;
}

// node-oidc-provider's storage interface, one instance per model name.
class SqliteAdapter {
  constructor(model) {
    this.model = model;
  }

  async upsert(id, payload, expiresIn) {
    sql.upsert.run({
      model: this.model,
      id,
      payload: JSON.stringify(payload),
      grantId: payload.grantId ?? null,
      userCode: payload.userCode ?? null,
      uid: payload.uid ?? null,
      expiresAt: typeof expiresIn === 'number' ? now() + expiresIn : null,
    });
  }

  async find(id) {
    return row(sql.find.get(this.model, id, now()));
  }

  async findByUid(uid) {
    return row(findByUid.get(this.model, uid, now()));
  }

  async findByUserCode(userCode) {
    return row(findByUserCode.get(this.model, userCode, now()));
  }

  async consume(id) {
    sql.consume.run(now(), this.model, id);
  }

  async destroy(id) {
    sql.destroy.run(this.model, id);
  }

  async revokeByGrantId(grantId) {
    sql.revokeByGrantId.run(grantId);
  }
}

function signingKey() {
  const stored = db.prepare('SELECT jwk FROM signing_keys LIMIT 1').get();
  if (stored) return JSON.parse(stored.jwk);
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = {
    ...privateKey.export({ format: 'jwk' }),
    kid: randomBytes(8).toString('hex'),
    alg: 'RS256',
    use: 'sig',
  };
  db.prepare('INSERT INTO signing_keys (kid, jwk) VALUES (?, ?)').run(jwk.kid, JSON.stringify(jwk));
  return jwk;
}

const provider = new Provider(ISSUER, {
  adapter: SqliteAdapter,
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    client_name: 'Bench',
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    redirect_uris: ['https://rp.example/cb'],
    scope: 'openid offline_access api',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [signingKey()] },
  scopes: ['openid', 'offline_access', 'api'],
  claims: { openid: ['sub'], profile: ['preferred_username'], email: ['email'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // As Portcullis: a client learns about its own tokens only.
    introspection: {
      enabled: true,
      allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
    },
    userinfo: { enabled: true },
    revocation: { enabled: true },
  },
  routes: { introspection: '/introspect', userinfo: '/userinfo', revocation: '/revoke' },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: ACCESS_TTL,
    ClientCredentials: ACCESS_TTL,
    IdToken: ACCESS_TTL,
    RefreshToken: REFRESH_TTL,
    Grant: REFRESH_TTL,
    AuthorizationCode: 60,
    Interaction: 3600,
    Session: 12 * 3600,
  },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  async findAccount(_ctx, sub) {
    const account = sql.account.get(sub);
    if (!account) return undefined;
    return {
      accountId: account.id,
      async claims() {
        return { sub: account.id, preferred_username: account.username, email: account.email };
      },
    };
  },
});

provider.on('server_error', (_ctx, err) => {
  process.stderr.write(`server_error: ${err?.stack ?? err}\n`);
});

async function seed() {
  const addAccount = db.prepare('INSERT OR IGNORE INTO accounts (id, username, email) VALUES (?, ?, ?)');
  db.transaction(() => {
    for (let i = 0; i < ACCOUNTS; i += 1) {
      addAccount.run(`u${i}`, `user${i}`, `user${i}@example.com`);
    }
  })();

  // Filler rows like those of a server in use: refresh tokens issued over the last 30 days
  // (some already rotated), and the access tokens of the last minutes.
  const rows = Number(env('REF_SEED_ROWS', '0'));
  const batch = 10000;
  const t = now();
  for (let start = 0; start < rows; start += batch) {
    db.transaction(() => {
      for (let i = start; i < Math.min(rows, start + batch); i += 1) {
        const refresh = i % 5 !== 0;
        const id = randomBytes(32).toString('base64url');
        const grantId = randomBytes(16).toString('base64url');
        const iat = refresh ? t - Math.floor((i * 2591) % (29 * 86400)) : t - (i % 300);
        const exp = iat + (refresh ? REFRESH_TTL : ACCESS_TTL);
        const payload = {
          iat,
          exp,
          jti: id,
          kind: refresh ? 'RefreshToken' : 'AccessToken',
          clientId: CLIENT_ID,
          accountId: `u${i % ACCOUNTS}`,
          grantId,
          gty: 'authorization_code',
          scope: SCOPE,
          expiresWithSession: false,
          ...(refresh ? { iiat: iat, rotations: 0, authTime: iat, amr: ['pwd'] } : {}),
        };
        sql.upsert.run({
          model: payload.kind,
          id,
          payload: JSON.stringify(payload),
          grantId,
          userCode: null,
          uid: null,
          expiresAt: exp,
        });
        if (refresh && i % 3 === 0) sql.consume.run(iat + 3600, payload.kind, id);
      }
    })();
  }

  const client = await provider.Client.find(CLIENT_ID);
  const chains = Number(env('REF_CHAINS', '16'));
  const refreshTokens = [];
  for (let i = 0; i < chains; i += 1) {
    const accountId = `u${i % ACCOUNTS}`;
    const grant = new provider.Grant({ accountId, clientId: CLIENT_ID });
    grant.addOIDCScope(SCOPE);
    const grantId = await grant.save();
    const refresh = new provider.RefreshToken({
      accountId,
      client,
      grantId,
      gty: 'authorization_code',
      scope: SCOPE,
      authTime: now(),
      amr: ['pwd'],
      expiresWithSession: false,
      rotations: 0,
    });
    refreshTokens.push(await refresh.save());
  }
  // What an ID token's RS256 signature costs here (node:crypto, which jose signs with).
  const key = createPrivateKey({ key: signingKey(), format: 'jwk' });
  const t0 = now();
  const input = Buffer.from(`${randomBytes(30).toString('base64url')}.${Buffer.from(JSON.stringify({
    iss: ISSUER, sub: 'u0', aud: CLIENT_ID, iat: t0, exp: t0 + ACCESS_TTL, auth_time: t0, amr: ['pwd'],
  })).toString('base64url')}`);
  const signMs = [];
  for (let i = 0; i < Number(env('REF_SIGNATURES', '0')); i += 1) {
    const started = process.hrtime.bigint();
    sign('sha256', input, key);
    signMs.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  process.stdout.write(`${JSON.stringify({ refresh_tokens: refreshTokens, sign_ms: signMs })}\n`);
  db.close();
}

if (process.argv[2] === 'seed') {
  await seed();
} else {
  const port = Number(env('REF_PORT'));
  const server = createServer(provider.callback());
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1', () => {
    process.stderr.write(`listening on 127.0.0.1:${port}\n`);
  });
  const stop = () => {
    server.close(() => {
      db.close();
      process.exit(0);
    });
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
