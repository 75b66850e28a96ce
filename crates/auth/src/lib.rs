//! Access control: who a request is (Basic credentials of a user or a robot, a bearer token
//! this registry signed, or nobody), what it may do (roles on repository globs), the Docker
//! token service that clients obtain tokens from, and the management of accounts.
//!
//! - `password`: argon2id hashes and robot secrets.
//! - `token`: signed access and refresh tokens, and the keys that sign them.
//! - `scope`: the token scheme's scope grammar.
//! - `access`: a snapshot of accounts and bindings, and what it allows (`View::may`).
//! - `limiter`: failed logins per source and per account.
//!
//! Access control is on once a user exists: before, every caller is the anonymous principal
//! with every permission, as the registry always was on loopback.

pub mod access;
pub mod limiter;
pub mod password;
pub mod scope;
pub mod token;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use shipshape_meta::accounts::{self, Role};
use shipshape_meta::principal::{Grants, Kind, Permission, Principal};
use shipshape_meta::{Catalogue, Clock, MetaError, Millis, commit, events, web_sessions};
use shipshape_oci::RepoGlob;

pub use access::{Account, View};
pub use scope::ResourceScope;
use token::{Claims, Keys, TokenError};

/// A robot logs in with this prefix before its name (`robot$ci`), as Harbor's robots do; a
/// user name cannot contain `$`.
pub const ROBOT_PREFIX: &str = "robot$";

/// How long a successful password check is remembered, so that clients sending Basic
/// credentials on every request do not pay an argon2 hash each.
const VERIFIED_MS: Millis = 60_000;
/// A web UI session unused this long is forgotten.
pub const SESSION_IDLE: Millis = 12 * 3600 * 1000;

/// A session's last use is written at most this often: a page's requests cost one read each.
const SESSION_TOUCH: Millis = 60_000;

/// The catalogue's key of a session: the SHA-256 of its cookie id, so that nothing stored can
/// be presented as a session.
fn session_key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// The account a subject (`user:ID`, `robot:ID`) names, by id only: [`View::current`] fills in
/// the rest as it stands now.
fn account_of_subject(subject: &str) -> Option<Account> {
    let (kind, id) = subject.split_once(':')?;
    let id = id.parse().ok()?;
    match kind {
        "user" => Some(Account::User {
            id,
            name: String::new(),
            admin: false,
        }),
        "robot" => Some(Account::Robot {
            id,
            name: String::new(),
        }),
        _ => None,
    }
}

/// How often the cached view of accounts is compared with the catalogue's version.
const VIEW_MS: Millis = 1_000;

/// Errors of access control. Messages never contain a secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("too many failed logins from {who}; try again in {seconds} s")]
    RateLimited { who: String, seconds: u64 },
    #[error("{0}")]
    BadToken(#[from] TokenError),
    #[error("{who} may not {what}")]
    Denied { who: String, what: &'static str },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("catalogue: {0}")]
    Meta(#[from] MetaError),
    #[error("signing keys: {0}")]
    Keys(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, AuthError>;

/// What a request presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic { user: String, secret: String },
    Bearer(String),
}

/// The token endpoint's answer, in the shape both the Docker GET form and the OAuth2 POST
/// form expect.
#[derive(Clone, Debug, Serialize)]
pub struct TokenReply {
    pub token: String,
    pub access_token: String,
    pub expires_in: i64,
    pub issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scopes granted, space-separated (the OAuth2 form's field).
    pub scope: String,
}

/// A user as the management API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct UserInfo {
    pub name: String,
    pub admin: bool,
    pub created_at: Millis,
    pub created_by: String,
    pub last_login_at: Option<Millis>,
}

/// A robot as the management API shows it (never its secret).
#[derive(Clone, Debug, Serialize)]
pub struct RobotInfo {
    pub name: String,
    /// What it logs in as: `robot$NAME`.
    pub login: String,
    pub description: Option<String>,
    pub created_at: Millis,
    pub created_by: String,
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
}

/// A binding as the management API shows it: the subject by name.
#[derive(Clone, Debug, Serialize)]
pub struct BindingInfo {
    /// `user:NAME`, `robot:NAME` or `anonymous`.
    pub subject: String,
    pub pattern: String,
    pub role: String,
    pub created_at: Millis,
    pub created_by: String,
}

/// The access-control service. Cheap to clone.
#[derive(Clone)]
pub struct Auth(Arc<Inner>);

struct Inner {
    catalogue: Catalogue,
    clock: Arc<dyn Clock>,
    keys: RwLock<Keys>,
    service: String,
    view: RwLock<Arc<View>>,
    view_checked_at: AtomicI64,
    limiter: Mutex<limiter::Limiter>,
    /// Digest of (name, secret) of a recent successful check, with the account and the view
    /// version it was made at.
    verified: Mutex<HashMap<[u8; 32], (Account, i64, Millis)>>,
    /// Digest of an access token whose signature and claims were checked, with its claims:
    /// a client sends the same token with every request for its lifetime, and decoding and
    /// verifying it each time cost a quarter of a manifest read's throughput. Only the token
    /// is remembered; the account it names is looked up in the view every time, so a revoked
    /// robot or removed user is refused at once.
    tokens: Mutex<HashMap<[u8; 32], Claims>>,
    /// Password checks running at once. Each argon2id check holds 19 MiB for its duration: 64
    /// clients sending Basic credentials right after a start (nothing remembered yet) took the
    /// server to 1.3 GiB, and as many connections as `max_connections` allows could take it
    /// anywhere. More checks than cores gain nothing; the rest wait their turn.
    checks: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("service", &self.0.service)
            .finish()
    }
}

impl Auth {
    /// Opens access control: the signing keys under `keys_dir` (created on first start, mode
    /// 0600) and the accounts in the catalogue. `service` names this registry in tokens.
    pub async fn open(
        catalogue: Catalogue,
        clock: Arc<dyn Clock>,
        keys_dir: &Path,
        service: &str,
    ) -> Result<Auth> {
        let keys = Keys::open_or_create(keys_dir, clock.now() / 1000)?;
        let auth = Auth(Arc::new(Inner {
            catalogue,
            clock,
            keys: RwLock::new(keys),
            service: service.to_string(),
            view: RwLock::new(Arc::new(View::default())),
            view_checked_at: AtomicI64::new(i64::MIN),
            limiter: Mutex::default(),
            verified: Mutex::default(),
            tokens: Mutex::default(),
            checks: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
        }));
        auth.load_view().await?;
        Ok(auth)
    }

    /// The name tokens are issued for (`service` in the challenge and the token request).
    pub fn service(&self) -> &str {
        &self.0.service
    }

    fn now(&self) -> Millis {
        self.0.clock.now()
    }

    async fn load_view(&self) -> Result<Arc<View>> {
        let mut conn = self.0.catalogue.reader().await?;
        let version = accounts::version(&mut conn).await?;
        let users = accounts::list_users(&mut conn).await?;
        let robots = accounts::list_robots(&mut conn).await?;
        let bindings = accounts::bindings(&mut conn).await?;
        let view = Arc::new(View::new(version, users, robots, bindings));
        *self.0.view.write().expect("view") = view.clone();
        self.0.view_checked_at.store(self.now(), Ordering::Relaxed);
        Ok(view)
    }

    /// The accounts and bindings, at most `VIEW_MS` old: a change made through another node
    /// is seen within that; one made through this node at once.
    pub async fn view(&self) -> Result<Arc<View>> {
        let now = self.now();
        let cached = self.0.view.read().expect("view").clone();
        if now.saturating_sub(self.0.view_checked_at.load(Ordering::Relaxed)) < VIEW_MS {
            return Ok(cached);
        }
        let version = accounts::version(&mut self.0.catalogue.reader().await?).await?;
        if version == cached.version {
            self.0.view_checked_at.store(now, Ordering::Relaxed);
            return Ok(cached);
        }
        self.load_view().await
    }

    /// Whether access control is on (a user exists).
    pub async fn enabled(&self) -> Result<bool> {
        Ok(self.view().await?.enabled)
    }

    /// The principal a request acts as, and, for a bearer token, the scopes it carries (on
    /// `/v2/` a token allows what it says and no more: `Caller::token_allows`). Without
    /// credentials, the anonymous principal (with what anonymous bindings allow, or everything
    /// while access control is off).
    pub async fn caller(&self, creds: &Credentials, source: Option<String>) -> Result<Caller> {
        let view = self.view().await?;
        let (account, scopes) = match creds {
            Credentials::None => (Account::Anonymous, None),
            Credentials::Basic { user, secret } => (
                self.check_secret(&view, user, secret, source.as_deref())
                    .await?,
                None,
            ),
            Credentials::Bearer(token) => {
                let claims = self.verify_token(token, "access")?;
                (
                    account_of_claims(&view, &claims, self.now())?,
                    Some(claims.access),
                )
            }
        };
        Ok(Caller {
            principal: principal_of(&view, account, source),
            scopes,
            enabled: view.enabled,
        })
    }

    /// Checks a login form's name and secret, with the failed-login limits, and returns the
    /// account, for the web UI to keep in a session (never the secret).
    pub async fn login(&self, user: &str, secret: &str, source: Option<String>) -> Result<Account> {
        let view = self.view().await?;
        self.check_secret(&view, user, secret, source.as_deref())
            .await
    }

    /// The caller a web UI session acts as: its account as it stands now, so a removed user
    /// or a revoked robot loses the session and a changed role applies at once.
    pub async fn session_caller(
        &self,
        account: &Account,
        source: Option<String>,
    ) -> Result<Caller> {
        let view = self.view().await?;
        let account = view
            .current(account, self.now())
            .ok_or(AuthError::BadCredentials)?;
        Ok(Caller {
            principal: principal_of(&view, account, source),
            scopes: None,
            enabled: view.enabled,
        })
    }

    /// Records a web UI session of `account` under the cookie id `id` (chosen by the caller,
    /// unguessable), in the catalogue so that every node knows it. Sessions idle past
    /// [`SESSION_IDLE`] are forgotten on the way, a batch at a time.
    pub async fn start_session(&self, id: &str, account: &Account) -> Result<()> {
        let now = self.now();
        let mut tx = self.0.catalogue.begin().await?;
        web_sessions::delete_idle(&mut tx, now - SESSION_IDLE, 100).await?;
        web_sessions::insert(&mut tx, &session_key(id), &account.subject(), now).await?;
        commit(tx).await?;
        Ok(())
    }

    /// The account of the web UI session `id` as it stands now; `None` for a session unknown,
    /// idle too long, or whose account was removed or revoked since (then it is forgotten).
    pub async fn session(&self, id: &str) -> Result<Option<Account>> {
        let now = self.now();
        let key = session_key(id);
        let found = {
            let mut conn = self.0.catalogue.reader().await?;
            web_sessions::find(&mut conn, &key, now - SESSION_IDLE).await?
        };
        let Some((subject, last_used)) = found else {
            return Ok(None);
        };
        let view = self.view().await?;
        let current = account_of_subject(&subject).and_then(|a| view.current(&a, now));
        if current.is_none() || last_used < now - SESSION_TOUCH {
            let mut tx = self.0.catalogue.begin().await?;
            tx.leaves_figures();
            if current.is_some() {
                web_sessions::touch(&mut tx, &key, now).await?;
            } else {
                web_sessions::delete(&mut tx, &key).await?;
            }
            commit(tx).await?;
        }
        Ok(current)
    }

    /// Ends the web UI session `id` (a logout) on every node.
    pub async fn end_session(&self, id: &str) -> Result<()> {
        let mut tx = self.0.catalogue.begin().await?;
        web_sessions::delete(&mut tx, &session_key(id)).await?;
        commit(tx).await?;
        Ok(())
    }

    fn verify_token(&self, token: &str, typ: &str) -> Result<Claims> {
        let now_secs = self.now() / 1000;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.0.tokens.lock().expect("tokens").get(&digest)
            && claims.typ == typ
            && claims.exp > now_secs
        {
            return Ok(claims.clone());
        }
        let claims = self
            .0
            .keys
            .read()
            .expect("keys")
            .verify(token, &self.0.service, now_secs)?;
        if claims.typ != typ {
            return Err(
                TokenError::Invalid(format!("a {} token, not an {typ} token", claims.typ)).into(),
            );
        }
        if typ == "access" {
            let mut tokens = self.0.tokens.lock().expect("tokens");
            if tokens.len() >= 10_000 {
                tokens.retain(|_, c| c.exp > now_secs);
                if tokens.len() >= 10_000 {
                    tokens.clear();
                }
            }
            tokens.insert(digest, claims.clone());
        }
        Ok(claims)
    }

    /// Checks a user's password or a robot's secret, with the failed-login limits.
    async fn check_secret(
        &self,
        view: &View,
        user: &str,
        secret: &str,
        source: Option<&str>,
    ) -> Result<Account> {
        let now = self.now();
        let source_key = format!("source {}", source.unwrap_or("unknown"));
        let account_key = format!("account {user}");
        {
            let limiter = self.0.limiter.lock().expect("limiter");
            let checks = [
                (
                    &source_key,
                    source.unwrap_or("this source"),
                    limiter::SOURCE_FAILURES,
                ),
                (&account_key, user, limiter::FAILURES),
            ];
            for (key, who, limit) in checks {
                if let Some(seconds) = limiter.blocked(key, limit, now) {
                    return Err(AuthError::RateLimited {
                        who: who.to_string(),
                        seconds,
                    });
                }
            }
        }
        let digest: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(secret.as_bytes())
            .finalize()
            .into();
        if let Some((account, version, at)) = self.0.verified.lock().expect("verified").get(&digest)
            && *version == view.version
            && now - at < VERIFIED_MS
            && let Some(current) = view.current(account, now)
        {
            return Ok(current);
        }
        let found = self.verify_stored(user, secret, now).await?;
        let mut limiter = self.0.limiter.lock().expect("limiter");
        match found.and_then(|a| view.current(&a, now)) {
            Some(account) => {
                limiter.succeed(&account_key);
                let mut verified = self.0.verified.lock().expect("verified");
                if verified.len() > 10_000 {
                    verified.clear();
                }
                verified.insert(digest, (account.clone(), view.version, now));
                Ok(account)
            }
            None => {
                limiter.fail(&source_key, now);
                limiter.fail(&account_key, now);
                tracing::warn!(user, source, "failed login");
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// The account whose stored hash `secret` matches, hashing off the runtime's threads.
    async fn verify_stored(
        &self,
        user: &str,
        secret: &str,
        now: Millis,
    ) -> Result<Option<Account>> {
        let mut conn = self.0.catalogue.reader().await?;
        let (account, hash) = if let Some(name) = user.strip_prefix(ROBOT_PREFIX) {
            match accounts::find_robot(&mut conn, name).await? {
                Some(r) if r.usable(now) => (
                    Account::Robot {
                        id: r.id,
                        name: r.name,
                    },
                    r.secret_hash,
                ),
                _ => return Ok(None),
            }
        } else {
            match accounts::find_user(&mut conn, user).await? {
                Some(u) => (
                    Account::User {
                        id: u.id,
                        name: u.name,
                        admin: u.admin,
                    },
                    u.password_hash,
                ),
                None => {
                    // As slow as a real check, so timing does not tell which names exist. The
                    // reader goes back first: checks may queue for their turn.
                    drop(conn);
                    self.check_password(secret, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into())
                        .await;
                    return Ok(None);
                }
            }
        };
        drop(conn);
        if !self.check_password(secret, hash).await {
            return Ok(None);
        }
        self.touch(&account, now).await;
        Ok(Some(account))
    }

    /// Checks `secret` against a stored argon2id hash on a blocking thread, at most
    /// `Inner::checks` at once.
    async fn check_password(&self, secret: &str, hash: String) -> bool {
        let Ok(_turn) = self.0.checks.acquire().await else {
            return false;
        };
        let secret = secret.to_string();
        tokio::task::spawn_blocking(move || password::verify(&secret, &hash))
            .await
            .unwrap_or(false)
    }

    /// Records a login's time, best effort (a failure to write it never refuses the login).
    async fn touch(&self, account: &Account, now: Millis) {
        let write = async {
            let mut tx = self.0.catalogue.begin().await?;
            tx.leaves_figures();
            match account {
                Account::User { id, .. } => accounts::touch_user(&mut tx, *id, now).await?,
                Account::Robot { id, .. } => accounts::touch_robot(&mut tx, *id, now).await?,
                Account::Anonymous => {}
            }
            commit(tx).await
        };
        if let Err(e) = write.await {
            tracing::warn!(error = %e, "recording a login's time failed");
        }
    }

    /// A token for `creds` granting, of `scopes`, what the account may do (the intersection;
    /// asking for more is not an error). With `offline`, a refresh token too.
    pub async fn issue(
        &self,
        creds: &Credentials,
        source: Option<String>,
        scopes: &[ResourceScope],
        offline: bool,
    ) -> Result<TokenReply> {
        let view = self.view().await?;
        let account = match creds {
            Credentials::None => Account::Anonymous,
            Credentials::Basic { user, secret } => {
                self.check_secret(&view, user, secret, source.as_deref())
                    .await?
            }
            Credentials::Bearer(token) => {
                let claims = self.verify_token(token, "refresh")?;
                account_of_claims(&view, &claims, self.now())?
            }
        };
        Ok(self.sign_for(&view, &account, scopes, offline))
    }

    /// A new access token from a refresh token (the OAuth2 `refresh_token` grant).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        scopes: &[ResourceScope],
    ) -> Result<TokenReply> {
        let view = self.view().await?;
        let claims = self.verify_token(refresh_token, "refresh")?;
        let account = account_of_claims(&view, &claims, self.now())?;
        let mut reply = self.sign_for(&view, &account, scopes, false);
        reply.refresh_token = Some(refresh_token.to_string());
        Ok(reply)
    }

    fn sign_for(
        &self,
        view: &View,
        account: &Account,
        scopes: &[ResourceScope],
        offline: bool,
    ) -> TokenReply {
        let granted = grant(view, account, scopes);
        let now = self.now() / 1000;
        let claims = |typ: &str, seconds: i64, access: Vec<ResourceScope>| Claims {
            iss: token::ISSUER.into(),
            sub: account.subject(),
            name: account.name().to_string(),
            aud: self.0.service.clone(),
            exp: now + seconds,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            typ: typ.into(),
            access,
        };
        let keys = self.0.keys.read().expect("keys");
        let scope = granted
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        let access = keys.sign(&claims("access", token::ACCESS_SECONDS, granted));
        let refresh = (offline && *account != Account::Anonymous)
            .then(|| keys.sign(&claims("refresh", token::REFRESH_SECONDS, Vec::new())));
        TokenReply {
            token: access.clone(),
            access_token: access,
            expires_in: token::ACCESS_SECONDS,
            issued_at: rfc3339(now),
            refresh_token: refresh,
            scope,
        }
    }

    /// Signs from now on with a new key; tokens signed before stay valid until they expire.
    /// Returns how many keys now verify.
    pub fn rotate_keys(&self, by: &Principal) -> Result<usize> {
        self.require_manager(by)?;
        let now = self.now() / 1000;
        let mut keys = self.0.keys.write().expect("keys");
        keys.rotate(now)?;
        tracing::info!(by = %by.name, keys = keys.len(), "token signing key rotated");
        Ok(keys.len())
    }

    // ------------------------------------------------------------------------------------
    // Accounts

    fn require_manager(&self, by: &Principal) -> Result<()> {
        if by.may(Permission::ManageAccounts, None) {
            Ok(())
        } else {
            Err(AuthError::Denied {
                who: by.name.clone(),
                what: "manage users, robots and roles",
            })
        }
    }

    async fn changed(&self) -> Result<()> {
        self.0.verified.lock().expect("verified").clear();
        self.load_view().await.map(|_| ())
    }

    /// Creates the first administrator when no user exists yet (start-up from configuration);
    /// returns whether it did.
    pub async fn bootstrap_admin(&self, name: &str, password: &str) -> Result<bool> {
        check_name(name)?;
        password::check_strength(password).map_err(AuthError::Invalid)?;
        let hash = hash_off_runtime(password).await;
        let mut tx = self.0.catalogue.begin().await?;
        if accounts::count_users(&mut tx).await? > 0 {
            return Ok(false);
        }
        accounts::create_user(&mut tx, name, &hash, true, "configuration", self.now()).await?;
        commit(tx).await?;
        self.changed().await?;
        Ok(true)
    }

    /// Adds a user. While no user exists, anyone who may manage the registry (on loopback,
    /// before access control, everyone) may add the first, which must be an administrator.
    pub async fn add_user(
        &self,
        by: &Principal,
        name: &str,
        password: &str,
        admin: bool,
    ) -> Result<UserInfo> {
        self.require_manager(by)?;
        check_name(name)?;
        password::check_strength(password).map_err(AuthError::Invalid)?;
        if !self.enabled().await? && !admin {
            return Err(AuthError::Invalid(
                "the first user must be an administrator (--admin): access control starts \
                 with it, and someone must be able to manage it"
                    .into(),
            ));
        }
        let hash = hash_off_runtime(password).await;
        let now = self.now();
        let mut tx = self.0.catalogue.begin().await?;
        accounts::create_user(&mut tx, name, &hash, admin, &by.name, now)
            .await?
            .ok_or_else(|| AuthError::Conflict(format!("user {name} exists already")))?;
        record(
            &mut tx,
            by,
            events::Action::UserAdd,
            name,
            admin.then_some("administrator"),
            now,
        )
        .await?;
        let user = accounts::find_user(&mut tx, name)
            .await?
            .expect("just added");
        commit(tx).await?;
        self.changed().await?;
        Ok(user_info(user))
    }

    pub async fn users(&self, by: &Principal) -> Result<Vec<UserInfo>> {
        self.require_manager(by)?;
        let mut conn = self.0.catalogue.reader().await?;
        Ok(accounts::list_users(&mut conn)
            .await?
            .into_iter()
            .map(user_info)
            .collect())
    }

    /// Removes a user and their roles. The last administrator cannot be removed.
    pub async fn remove_user(&self, by: &Principal, name: &str) -> Result<()> {
        self.require_manager(by)?;
        let now = self.now();
        let mut tx = self.0.catalogue.begin().await?;
        let user = accounts::find_user(&mut tx, name)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("user {name} does not exist")))?;
        if user.admin {
            let admins = accounts::list_users(&mut tx)
                .await?
                .iter()
                .filter(|u| u.admin)
                .count();
            if admins == 1 {
                return Err(AuthError::Conflict(format!(
                    "{name} is the last administrator; make another user an administrator first"
                )));
            }
        }
        accounts::delete_user(&mut tx, name).await?;
        record(&mut tx, by, events::Action::UserRemove, name, None, now).await?;
        commit(tx).await?;
        self.changed().await
    }

    /// Sets a password: an administrator for anyone, a user for themselves.
    pub async fn set_password(&self, by: &Principal, name: &str, password: &str) -> Result<()> {
        let own = by.kind == Kind::User && by.name == name;
        if !own {
            self.require_manager(by)?;
        }
        password::check_strength(password).map_err(AuthError::Invalid)?;
        let hash = hash_off_runtime(password).await;
        let now = self.now();
        let mut tx = self.0.catalogue.begin().await?;
        if !accounts::set_password(&mut tx, name, &hash).await? {
            return Err(AuthError::NotFound(format!("user {name} does not exist")));
        }
        record(&mut tx, by, events::Action::UserPassword, name, None, now).await?;
        commit(tx).await?;
        self.changed().await
    }

    /// Adds a robot with roles on patterns; returns it with its secret, shown this once.
    pub async fn add_robot(
        &self,
        by: &Principal,
        name: &str,
        description: Option<&str>,
        expires_at: Option<Millis>,
        roles: &[(String, Role)],
    ) -> Result<(RobotInfo, String)> {
        self.require_manager(by)?;
        check_name(name)?;
        for (pattern, _) in roles {
            RepoGlob::parse(pattern).map_err(|e| AuthError::Invalid(format!("pattern: {e}")))?;
        }
        let now = self.now();
        if expires_at.is_some_and(|t| t <= now) {
            return Err(AuthError::Invalid("the expiry is in the past".into()));
        }
        let secret = password::generate_secret();
        let hash = hash_off_runtime(&secret).await;
        let mut tx = self.0.catalogue.begin().await?;
        let id =
            accounts::create_robot(&mut tx, name, &hash, description, expires_at, &by.name, now)
                .await?
                .ok_or_else(|| AuthError::Conflict(format!("robot {name} exists already")))?;
        for (pattern, role) in roles {
            accounts::bind(
                &mut tx,
                &format!("robot:{id}"),
                pattern,
                *role,
                &by.name,
                now,
            )
            .await?;
        }
        record(
            &mut tx,
            by,
            events::Action::RobotAdd,
            name,
            description,
            now,
        )
        .await?;
        let robot = accounts::find_robot(&mut tx, name)
            .await?
            .expect("just added");
        commit(tx).await?;
        self.changed().await?;
        Ok((robot_info(robot), secret))
    }

    pub async fn robots(&self, by: &Principal) -> Result<Vec<RobotInfo>> {
        self.require_manager(by)?;
        let mut conn = self.0.catalogue.reader().await?;
        Ok(accounts::list_robots(&mut conn)
            .await?
            .into_iter()
            .map(robot_info)
            .collect())
    }

    /// Revokes a robot: its secret and every token it holds stop working at once.
    pub async fn revoke_robot(&self, by: &Principal, name: &str) -> Result<()> {
        self.require_manager(by)?;
        let now = self.now();
        let mut tx = self.0.catalogue.begin().await?;
        if accounts::find_robot(&mut tx, name).await?.is_none() {
            return Err(AuthError::NotFound(format!("robot {name} does not exist")));
        }
        if !accounts::revoke_robot(&mut tx, name, now).await? {
            return Err(AuthError::Conflict(format!(
                "robot {name} is revoked already"
            )));
        }
        record(&mut tx, by, events::Action::RobotRevoke, name, None, now).await?;
        commit(tx).await?;
        self.changed().await
    }

    /// Gives `subject` (`user:NAME`, `robot:NAME` or `anonymous`) `role` on `pattern`.
    pub async fn bind(
        &self,
        by: &Principal,
        subject: &str,
        pattern: &str,
        role: Role,
    ) -> Result<()> {
        self.require_manager(by)?;
        RepoGlob::parse(pattern).map_err(|e| AuthError::Invalid(format!("pattern: {e}")))?;
        let now = self.now();
        let mut tx = self.0.catalogue.begin().await?;
        let id = self.subject_id(&mut tx, subject).await?;
        if id == accounts::ANONYMOUS && role != Role::Read {
            return Err(AuthError::Invalid(
                "anonymous callers may only be given read (anonymous pull)".into(),
            ));
        }
        accounts::bind(&mut tx, &id, pattern, role, &by.name, now).await?;
        let what = format!("{role} on {pattern}");
        record(
            &mut tx,
            by,
            events::Action::RoleGrant,
            subject,
            Some(&what),
            now,
        )
        .await?;
        commit(tx).await?;
        self.changed().await
    }

    /// Removes the role `subject` had on `pattern`.
    pub async fn unbind(&self, by: &Principal, subject: &str, pattern: &str) -> Result<()> {
        self.require_manager(by)?;
        let now = self.now();
        let mut tx = self.0.catalogue.begin().await?;
        let id = self.subject_id(&mut tx, subject).await?;
        if !accounts::unbind(&mut tx, &id, pattern).await? {
            return Err(AuthError::NotFound(format!(
                "{subject} has no role on {pattern}"
            )));
        }
        record(
            &mut tx,
            by,
            events::Action::RoleRevoke,
            subject,
            Some(pattern),
            now,
        )
        .await?;
        commit(tx).await?;
        self.changed().await
    }

    /// Every binding, subjects named.
    pub async fn bindings(&self, by: &Principal) -> Result<Vec<BindingInfo>> {
        self.require_manager(by)?;
        let mut conn = self.0.catalogue.reader().await?;
        let users: HashMap<String, String> = accounts::list_users(&mut conn)
            .await?
            .into_iter()
            .map(|u| (format!("user:{}", u.id), format!("user:{}", u.name)))
            .collect();
        let robots: HashMap<String, String> = accounts::list_robots(&mut conn)
            .await?
            .into_iter()
            .map(|r| (format!("robot:{}", r.id), format!("robot:{}", r.name)))
            .collect();
        Ok(accounts::bindings(&mut conn)
            .await?
            .into_iter()
            .map(|b| BindingInfo {
                subject: users
                    .get(&b.subject)
                    .or_else(|| robots.get(&b.subject))
                    .cloned()
                    .unwrap_or(b.subject),
                pattern: b.pattern,
                role: b.role.to_string(),
                created_at: b.created_at,
                created_by: b.created_by,
            })
            .collect())
    }

    async fn subject_id(
        &self,
        conn: &mut dyn shipshape_meta::Conn,
        subject: &str,
    ) -> Result<String> {
        if subject == accounts::ANONYMOUS {
            return Ok(subject.into());
        }
        let unknown = || {
            AuthError::NotFound(format!(
                "{subject:?} names no account; use user:NAME, robot:NAME or anonymous"
            ))
        };
        match subject.split_once(':') {
            Some(("user", name)) => Ok(format!(
                "user:{}",
                accounts::find_user(conn, name)
                    .await?
                    .ok_or_else(unknown)?
                    .id
            )),
            Some(("robot", name)) => Ok(format!(
                "robot:{}",
                accounts::find_robot(conn, name)
                    .await?
                    .ok_or_else(unknown)?
                    .id
            )),
            _ => Err(unknown()),
        }
    }
}

/// The principal an account acts as, with grants from the view's roles.
fn principal_of(view: &Arc<View>, account: Account, source: Option<String>) -> Principal {
    if !view.enabled {
        return Principal::anonymous(source);
    }
    let (kind, id) = match &account {
        Account::Anonymous => (Kind::Anonymous, None),
        Account::User { id, .. } => (Kind::User, Some(*id)),
        Account::Robot { id, .. } => (Kind::Robot, Some(*id)),
    };
    let name = account.name().to_string();
    let view = view.clone();
    Principal {
        kind,
        id,
        name,
        source,
        grants: Grants::Decide(Arc::new(move |what, repo| view.may(&account, what, repo))),
    }
}

/// Who a request is: the principal, and the scopes of the bearer token it presented.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    /// `Some` when the request presented a bearer token: what the token allows on `/v2/`.
    pub scopes: Option<Vec<ResourceScope>>,
    /// Whether access control is on.
    pub enabled: bool,
}

impl Caller {
    /// Whether the request's token (if any) allows `action` on `repo`. A request without a
    /// token is judged by its principal's roles alone.
    pub fn token_allows(&self, repo: &str, action: &str) -> bool {
        match &self.scopes {
            None => true,
            Some(scopes) => scopes
                .iter()
                .any(|s| s.kind == "repository" && s.name == repo && s.allows(action)),
        }
    }

    /// Whether the request presented credentials of any kind.
    pub fn authenticated(&self) -> bool {
        self.principal.kind != Kind::Anonymous
    }
}

/// The account a verified token names, as it stands now.
fn account_of_claims(view: &View, claims: &Claims, now: Millis) -> Result<Account> {
    let gone = || {
        AuthError::BadToken(TokenError::Invalid(
            "its account no longer exists or was revoked".into(),
        ))
    };
    let account = match claims.sub.split_once(':') {
        None if claims.sub == accounts::ANONYMOUS => Account::Anonymous,
        Some(("user", id)) => Account::User {
            id: id.parse().map_err(|_| gone())?,
            name: claims.name.clone(),
            admin: false,
        },
        Some(("robot", id)) => Account::Robot {
            id: id.parse().map_err(|_| gone())?,
            name: claims.name.clone(),
        },
        _ => return Err(gone()),
    };
    view.current(&account, now).ok_or_else(gone)
}

/// Of the scopes asked for, what `account` may do: each repository's actions narrowed to the
/// permitted ones (dropped when none is), `registry:catalog:*` for any caller (the catalogue
/// lists only what the caller may read).
fn grant(view: &View, account: &Account, scopes: &[ResourceScope]) -> Vec<ResourceScope> {
    let mut out = Vec::new();
    for s in scopes {
        match s.kind.as_str() {
            "repository" => {
                // `delete` is granted to whoever may delete tags (write); deleting a manifest by
                // digest or a blob also needs the admin role, which the registry checks.
                let allowed: Vec<String> = [
                    ("pull", Permission::Pull),
                    ("push", Permission::Push),
                    ("delete", Permission::Push),
                ]
                .into_iter()
                .filter(|(a, p)| s.allows(a) && view.may(account, *p, Some(&s.name)))
                .map(|(a, _)| a.to_string())
                .collect();
                if !allowed.is_empty() {
                    out.push(ResourceScope {
                        kind: s.kind.clone(),
                        name: s.name.clone(),
                        actions: allowed,
                    });
                }
            }
            "registry" if s.name == "catalog" => out.push(ResourceScope {
                kind: "registry".into(),
                name: "catalog".into(),
                actions: vec!["*".into()],
            }),
            _ => {}
        }
    }
    out
}

fn user_info(u: accounts::User) -> UserInfo {
    UserInfo {
        name: u.name,
        admin: u.admin,
        created_at: u.created_at,
        created_by: u.created_by,
        last_login_at: u.last_login_at,
    }
}

fn robot_info(r: accounts::Robot) -> RobotInfo {
    RobotInfo {
        login: format!("{ROBOT_PREFIX}{}", r.name),
        name: r.name,
        description: r.description,
        created_at: r.created_at,
        created_by: r.created_by,
        expires_at: r.expires_at,
        revoked_at: r.revoked_at,
        last_used_at: r.last_used_at,
    }
}

/// Account names: lower-case letters, digits, `.`, `_`, `-`, 1 to 64 characters, starting
/// with a letter or digit (no `$`, `:` or `@`, which logins and subjects use as separators).
fn check_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "{name:?} is not a valid account name: use 1 to 64 lower-case letters, digits, \
             '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

async fn hash_off_runtime(secret: &str) -> String {
    let secret = secret.to_string();
    tokio::task::spawn_blocking(move || password::hash(&secret))
        .await
        .expect("hashing does not panic")
}

async fn record(
    tx: &mut dyn shipshape_meta::Conn,
    by: &Principal,
    action: events::Action,
    target: &str,
    reason: Option<&str>,
    now: Millis,
) -> Result<()> {
    events::record(
        tx,
        &events::NewEvent {
            target: Some(target),
            reason,
            ..events::NewEvent::new(by, action)
        },
        now,
    )
    .await?;
    Ok(())
}

/// Seconds since the epoch as RFC 3339 (UTC), for `issued_at`.
fn rfc3339(secs: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_at_is_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_256_000), "2026-12-03T00:00:00Z");
    }

    #[test]
    fn account_names_exclude_separators() {
        assert!(check_name("ci-bot.1").is_ok());
        for bad in ["", "Alice", "a$b", "a:b", "-x", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
