//! The web UI under `/ui`: server-rendered HTML (maud) over the same registry, collector and
//! access-control services the management API calls, with the API's model types as what the
//! pages show. No page holds business logic or SQL: a handler reads its query or form, asks
//! one service, and renders the answer.
//!
//! Who acts: the account a session logged in as (`session.rs`), judged by the same roles as
//! every API call; the services refuse what the role does not allow whatever the page showed.
//! Every POST carries the session's CSRF token (`Posted` checks it before any handler runs).
//! With access control off the UI works without a login, as the API does.

mod accounts;
mod activity;
mod chart;
mod deletion;
mod gc;
mod layout;
mod manifests;
mod overview;
mod policies;
mod policy_editor;
mod repos;
mod services;
mod session;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use shipshape_auth::{Caller, Credentials};
use shipshape_meta::principal::Permission;

use crate::error::ApiError;
use crate::http::AppState;
use services::PageServices;
use session::Session;

/// The UI's routes, and `/` sending browsers to it.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui", get(overview::page))
        .route("/ui/", get(overview::page))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/static/style.css", get(layout::stylesheet))
        .route("/ui/static/icon.svg", get(layout::icon))
        .route("/ui/static/follow.js", get(layout::follow_script))
        .route("/ui/repositories", get(repos::list))
        .route(
            "/ui/repositories/{*rest}",
            get(repos::get_dispatch).post(repos::post_dispatch),
        )
        .route("/ui/repos/{*rest}", get(repos::short_address))
        .route("/ui/deleted", get(deletion::recently_deleted))
        .route("/ui/batches/{id}/restore", post(deletion::undo_batch))
        .route("/ui/gc", get(gc::page))
        .route("/ui/gc/preview", post(gc::preview))
        .route("/ui/gc/runs", post(gc::start))
        .route("/ui/gc/runs/{id}", get(gc::run))
        .route("/ui/gc/runs/{id}/cancel", post(gc::cancel))
        .route("/ui/policies", get(policies::list))
        .route(
            "/ui/policies/new",
            get(policy_editor::new_form).post(policy_editor::new_submit),
        )
        .route(
            "/ui/policies/{name}/edit",
            get(policy_editor::edit_form).post(policy_editor::edit_submit),
        )
        .route(
            "/ui/policies/pattern-test",
            get(policy_editor::pattern_test),
        )
        .route("/ui/policies/{name}/preview", post(policies::preview))
        .route("/ui/policies/{name}/run", post(policies::run_now))
        .route("/ui/policy-runs/{id}", get(policies::run_page))
        .route("/ui/activity", get(activity::page))
        .route("/ui/activity.csv", get(activity::csv))
        .route("/ui/activity.json", get(activity::json))
        .route("/ui/users", get(accounts::users).post(accounts::add_user))
        .route("/ui/users/{name}/password", post(accounts::set_password))
        .route("/ui/users/{name}/remove", post(accounts::remove_user))
        .route("/ui/roles", post(accounts::grant))
        .route("/ui/roles/remove", post(accounts::ungrant))
        .route(
            "/ui/robots",
            get(accounts::robots).post(accounts::add_robot),
        )
        .route("/ui/robots/{name}/revoke", post(accounts::revoke_robot))
        .route("/ui/{*rest}", get(not_found).post(not_found_post))
}

/// What every page knows about its request: the services, who acts, and the session whose
/// CSRF token its forms carry.
pub(crate) struct Ctx {
    pub app: PageServices,
    /// The registry as this page sees it: with the last storage figures taken when current
    /// ones would keep it waiting (`Registry::for_pages`).
    pub registry: crate::registry::Registry,
    pub caller: Caller,
    pub session: Session,
    /// The session is new: its cookie goes with the answer.
    set_cookie: bool,
    /// The path and query asked for (where a login goes back to).
    pub here: String,
}

impl Ctx {
    /// Whether the caller may do `what` on `repo` (`None`: registry-wide). Pages use it only
    /// to leave out controls; the services decide.
    pub fn may(&self, what: Permission, repo: Option<&str>) -> bool {
        self.caller.principal.may(what, repo)
    }

    /// The name shown as logged in, when someone is.
    pub fn user(&self) -> Option<&str> {
        self.caller
            .authenticated()
            .then_some(self.caller.principal.name.as_str())
    }

    /// A 200 page.
    pub fn page(&self, title: &str, body: Markup) -> Response {
        self.respond(StatusCode::OK, title, body)
    }

    /// A 200 page that follows a run in progress: its parts marked `data-live` are updated every
    /// `seconds` while the run runs, and the page loads again once it has ended (`layout::FOLLOW`;
    /// without scripts, the page reloads itself).
    pub fn page_refreshing(&self, title: &str, body: Markup, seconds: u32) -> Response {
        let html = layout::page(self, title, body, Some(seconds));
        let mut resp = axum::response::Html(html.into_string()).into_response();
        self.with_cookie(&mut resp);
        resp
    }

    fn respond(&self, status: StatusCode, title: &str, body: Markup) -> Response {
        let html = layout::page(self, title, body, None);
        let mut resp = (status, axum::response::Html(html.into_string())).into_response();
        self.with_cookie(&mut resp);
        resp
    }

    fn with_cookie(&self, resp: &mut Response) {
        if self.set_cookie
            && let Ok(v) = HeaderValue::from_str(&session::cookie(&self.session.id, self.app.tls()))
        {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }

    /// A redirect (303: the browser follows with a GET, so a reload does not post again).
    pub fn redirect(&self, to: &str) -> Response {
        let mut resp = Redirect::to(to).into_response();
        self.with_cookie(&mut resp);
        resp
    }

    /// An error as a page: the status and message the API would answer, in words.
    pub fn error(&self, e: ApiError) -> Response {
        let status = e.status;
        let message = e
            .errors
            .first()
            .map(|(_, m, _)| m.clone())
            .unwrap_or_default();
        let title = match status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::GONE => "Gone",
            s if s.is_client_error() => "Cannot do that",
            _ => "Something went wrong",
        };
        let body = html! {
            h1 { (title) }
            p.error role="alert" data-testid="error-message" { (message) }
            p { "Status " (status.as_u16()) ". " a href="/ui" { "Back to the overview" } }
        };
        // The API's answer carries what the storage-failure report reads; keep its parts.
        let (mut parts, _) = e.into_response().into_parts();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        let mut resp = Response::from_parts(
            parts,
            axum::body::Body::from(layout::page(self, title, body, None).into_string()),
        );
        self.with_cookie(&mut resp);
        resp
    }

    /// A page from a handler's result.
    pub fn finish(&self, result: Result<Response, ApiError>) -> Response {
        result.unwrap_or_else(|e| self.error(e))
    }

    /// The hidden field every form carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.session.csrf); }
    }
}

/// Refuses with 403 and a message, as a page.
pub(crate) fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "DENIED", message)
}

pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
}

fn source(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

impl Ctx {
    /// Resolves the session and who acts. `login_page`: the login form itself, which must not
    /// send a visitor to the login form.
    async fn resolve(parts: &mut Parts, login_page: bool) -> Result<Ctx, Response> {
        let app = parts
            .extensions
            .get::<AppState>()
            .cloned()
            .expect("the UI router adds the state");
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/ui".into());
        let (mut session, mut set_cookie) = match session::id_from(&parts.headers) {
            Some(id) => {
                // The catalogue knows the sessions of logged-in users, whichever node saw the
                // login; one it does not know (logged out, idle, its account gone) is a
                // visitor's.
                let account = app
                    .auth
                    .session(&id)
                    .await
                    .map_err(|e| crate::http::auth_error(e).into_response())?;
                (Session::new(id, account), false)
            }
            None => (Session::fresh(None), true),
        };
        let src = source(parts);
        let caller = match &session.account {
            Some(account) => match app.auth.session_caller(account, src.clone()).await {
                Ok(c) => c,
                Err(_) => {
                    // The account was removed or revoked a moment ago: a visitor's session.
                    session = Session::fresh(None);
                    set_cookie = true;
                    anonymous(&app, src).await?
                }
            },
            None => anonymous(&app, src).await?,
        };
        let ctx = Ctx {
            registry: app.registry.for_pages(),
            app: PageServices::new(app),
            caller,
            session,
            set_cookie,
            here,
        };
        if ctx.caller.enabled && !ctx.caller.authenticated() && !login_page {
            let next = form_urlencoded::byte_serialize(ctx.here.as_bytes()).collect::<String>();
            let to = if parts.method == Method::GET {
                format!("/ui/login?next={next}")
            } else {
                "/ui/login".to_string()
            };
            return Err(ctx.redirect(&to));
        }
        Ok(ctx)
    }
}

/// The caller a visitor without a login is: the anonymous principal, as the API sees a
/// request without credentials.
async fn anonymous(app: &AppState, src: Option<String>) -> Result<Caller, Response> {
    app.auth
        .caller(&Credentials::None, src)
        .await
        .map_err(|e| crate::http::auth_error(e).into_response())
}

/// Adds the state to the request's extensions, where `Ctx` finds it (the UI's extractors run
/// on `Parts`, which carry no state of their own).
async fn with_state(
    axum::extract::State(app): axum::extract::State<AppState>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    req.extensions_mut().insert(app);
    next.run(req).await
}

/// The UI's routes with the layer that gives its extractors the state, and the headers every
/// answer carries: no framing by another site (a hidden delete button under a decoy is how
/// clickjacking works), nothing loaded from elsewhere, and pages holding a session's CSRF token
/// kept out of caches.
pub fn routes(state: AppState) -> Router<AppState> {
    use tower_http::set_header::SetResponseHeaderLayer;
    router()
        .layer(axum::middleware::from_fn_with_state(state, with_state))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; \
                 form-action 'self'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ctx::resolve(parts, false).await
    }
}

/// A form field list as a browser sends it (a name may repeat: selected checkboxes).
#[derive(Debug, Default)]
pub(crate) struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn parse(bytes: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(bytes).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A posted form whose CSRF token matched the session's: the only way a UI handler gets a
/// POST body, so no form can skip the check.
pub(crate) struct Posted {
    pub ctx: Ctx,
    pub form: Fields,
}

/// Forms are small; a larger body is refused.
const FORM_LIMIT: usize = 256 * 1024;

async fn posted(req: Request, login_page: bool) -> Result<Posted, Response> {
    let (mut parts, body) = req.into_parts();
    let ctx = Ctx::resolve(&mut parts, login_page).await?;
    let bytes = match axum::body::to_bytes(body, FORM_LIMIT).await {
        Ok(b) => b,
        Err(_) => return Err(ctx.error(bad_request("the form is too large"))),
    };
    let form = Fields::parse(&bytes);
    let ok = form
        .get("csrf")
        .is_some_and(|t| session::same_token(t, &ctx.session.csrf));
    if !ok {
        return Err(ctx.error(forbidden(
            "this form's security token is missing or out of date (the session may have \
             ended); reload the page and try again",
        )));
    }
    Ok(Posted { ctx, form })
}

impl<S: Send + Sync> FromRequest<S> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        posted(req, false).await
    }
}

/// The login form's POST: the same check, but a visitor not logged in is expected here.
pub(crate) struct LoginPost(Posted);

impl<S: Send + Sync> FromRequest<S> for LoginPost {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        posted(req, true).await.map(LoginPost)
    }
}

/// The login page's own extractor: no redirect to itself.
pub(crate) struct LoginCtx(Ctx);

impl<S: Send + Sync> FromRequestParts<S> for LoginCtx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ctx::resolve(parts, true).await.map(LoginCtx)
    }
}

/// Where a login goes back to: only a path of this UI, never another site.
fn next_of(raw: Option<&str>) -> String {
    match raw {
        Some(p) if p.starts_with("/ui") && !p.starts_with("//") && !p.contains('\\') => {
            p.to_string()
        }
        _ => "/ui".to_string(),
    }
}

fn login_body(ctx: &Ctx, next: &str, failed: Option<&str>) -> Markup {
    html! {
        h1 { "Log in" }
        @if !ctx.caller.enabled {
            p.note { "Access control is off (no user exists): every page works without a login." }
        }
        @if let Some(msg) = failed {
            p.error role="alert" data-testid="error-message" { (msg) }
        }
        form.login method="post" action="/ui/login" {
            (ctx.csrf_field())
            input type="hidden" name="next" value=(next);
            label for="username" { "User name" }
            input #username type="text" name="username" autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            button type="submit" data-testid="btn-login" { "Log in" }
        }
        p.note { "Robots log in as " code { "robot$NAME" } " with their secret." }
    }
}

async fn login_form(
    LoginCtx(ctx): LoginCtx,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if ctx.user().is_some() {
        return ctx.redirect(&next_of(q.get("next").map(String::as_str)));
    }
    let next = next_of(q.get("next").map(String::as_str));
    ctx.page("Log in", login_body(&ctx, &next, None))
}

async fn login(LoginPost(Posted { ctx, form }): LoginPost) -> Response {
    let next = next_of(form.get("next"));
    let user = form.get("username").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    match ctx
        .app
        .auth()
        .login(user, password, ctx.caller.principal.source.clone())
        .await
    {
        Ok(account) => {
            // A new session for the login: the id the visitor had before is worth nothing now.
            let fresh = Session::fresh(Some(account.clone()));
            if let Err(e) = ctx.app.auth().start_session(&fresh.id, &account).await {
                return crate::http::auth_error(e).into_response();
            }
            let mut resp = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&session::cookie(&fresh.id, ctx.app.tls())) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => {
            let api = crate::http::auth_error(e);
            let message = api
                .errors
                .first()
                .map(|(_, m, _)| m.clone())
                .unwrap_or_default();
            let mut resp = ctx.respond(
                api.status,
                "Log in",
                login_body(&ctx, &next, Some(&message)),
            );
            for (name, value) in api.headers {
                if name != header::WWW_AUTHENTICATE
                    && let Ok(v) = HeaderValue::from_str(&value)
                {
                    resp.headers_mut().insert(name, v);
                }
            }
            resp
        }
    }
}

async fn logout(Posted { ctx, .. }: Posted) -> Response {
    if let Err(e) = ctx.app.auth().end_session(&ctx.session.id).await {
        return crate::http::auth_error(e).into_response();
    }
    let mut resp = Redirect::to("/ui/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::cookie("", ctx.app.tls())) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

async fn not_found(ctx: Ctx) -> Response {
    let path = ctx.here.clone();
    ctx.error(ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("{path} is no page of the web UI"),
    ))
}

async fn not_found_post(Posted { ctx, .. }: Posted) -> Response {
    not_found(ctx).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_login_goes_back_only_to_a_page_of_the_ui() {
        assert_eq!(super::next_of(Some("/ui/gc?x=1")), "/ui/gc?x=1");
        for elsewhere in [
            None,
            Some("https://evil.example/ui"),
            Some("//evil.example/ui"),
            Some("/api/v1/users"),
            Some("/ui\\evil"),
        ] {
            assert_eq!(super::next_of(elsewhere), "/ui", "{elsewhere:?}");
        }
    }
}
