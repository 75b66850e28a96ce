//! Accounts, for registry-wide administrators: users (`/ui/users`) with the role bindings, and
//! robots (`/ui/robots`). Every handler calls the access-control service the `/api/v1`
//! accounts endpoints call (`Auth::users`, `add_user`, `set_password`, `remove_user`, `bind`,
//! `unbind`, `robots`, `add_robot`, `revoke_robot`), which refuses a caller who may not manage accounts; the pages
//! refuse such a caller first, with the same 403. A new robot's secret is shown once, on the
//! answer to the form that created it (pages are never cached), and kept only as a hash.

use axum::extract::{Path, Query};
use axum::response::Response;
use maud::{Markup, html};
use shipshape_meta::accounts::Role;
use shipshape_meta::principal::Permission;

use super::layout::{when, when_or_never};
use super::{Ctx, Posted, bad_request, forbidden};
use crate::api::model::accounts::{BindingInfo, RobotInfo, UserInfo};
use crate::error::ApiError;
use crate::http::auth_error;

/// Refuses, as a page, a caller who may not manage accounts.
fn require_admin(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.may(Permission::ManageAccounts, None) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "{} may not manage users and robots (a registry-wide administrator may)",
            ctx.caller.principal.name
        )))
    }
}

fn role(text: &str) -> Result<Role, ApiError> {
    text.parse::<Role>().map_err(bad_request)
}

fn role_select(id: &str) -> Markup {
    html! {
        select #(id) name="role" {
            option value="read" { "read (pull)" }
            option value="write" { "write (push, delete and restore tags)" }
            option value="admin" { "admin (everything on those repositories)" }
        }
    }
}

/// `/ui/users`: users, role bindings, and the forms that add them.
/// What a form on the users page just did, said at the top of the page it leads back to.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Done {
    password_set: Option<String>,
    removed: Option<String>,
}

pub(crate) async fn users(ctx: Ctx, Query(done): Query<Done>) -> Response {
    let result = async {
        require_admin(&ctx)?;
        let p = &ctx.caller.principal;
        let users: Vec<UserInfo> = ctx
            .app
            .auth()
            .users(p)
            .await
            .map_err(auth_error)?
            .into_iter()
            .map(Into::into)
            .collect();
        let roles: Vec<BindingInfo> = ctx
            .app
            .auth()
            .bindings(p)
            .await
            .map_err(auth_error)?
            .into_iter()
            .map(Into::into)
            .collect();
        let body = html! {
            h1 { "Users" }
            (tabs("users"))
            @if let Some(name) = &done.password_set {
                p.ok role="status" data-testid="users-done" { "The password of " strong { (name) } " is set." }
            }
            @if let Some(name) = &done.removed {
                p.ok role="status" data-testid="users-done" { "User " strong { (name) } " is removed." }
            }
            table data-testid="users" {
                thead { tr {
                    th scope="col" { "User" } th scope="col" { "Administrator" }
                    th scope="col" { "Added" } th scope="col" { "Last login" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for u in &users {
                        tr data-testid={ "row-user-" (u.name) } {
                            td { strong { (u.name) } }
                            td { @if u.admin { "yes" } @else { "no" } }
                            td { (when(&u.created_at)) " by " (u.created_by) }
                            td { (when_or_never(u.last_login_at.as_deref())) }
                            td {
                                form.inline method="post" action={ "/ui/users/" (u.name) "/password" } {
                                    (ctx.csrf_field())
                                    label.visually-hidden for={ "password-" (u.name) } { "New password for " (u.name) }
                                    input id={ "password-" (u.name) } type="password" name="password"
                                        required autocomplete="new-password" placeholder="new password";
                                    button type="submit" data-testid={ "btn-password-" (u.name) } { "Set password" }
                                }
                                " "
                                form.inline method="post" action={ "/ui/users/" (u.name) "/remove" } {
                                    (ctx.csrf_field())
                                    label {
                                        input type="checkbox" name="confirm" value="yes" required
                                            data-testid={ "confirm-remove-" (u.name) };
                                        " sure"
                                    }
                                    button type="submit" data-testid={ "btn-remove-" (u.name) } { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Add a user" }
            form.login method="post" action="/ui/users" {
                (ctx.csrf_field())
                label for="new-user" { "User name" }
                input #new-user type="text" name="name" required autocomplete="off";
                label for="new-password" { "Password" }
                input #new-password type="password" name="password" required autocomplete="new-password";
                label { input type="checkbox" name="admin" value="true"; " Administrator (may do anything, accounts included)" }
                button.primary type="submit" data-testid="btn-add-user" { "Add user" }
            }
            h2 { "Roles" }
            p.note { "A role applies to the repositories its pattern matches: " code { "*" }
                " stays within a path segment, " code { "**" } " crosses them." }
            @if roles.is_empty() {
                p.note data-testid="no-roles" { "No role is given yet." }
            } @else {
                table data-testid="roles" {
                    thead { tr {
                        th scope="col" { "Who" } th scope="col" { "Repositories" } th scope="col" { "Role" }
                        th scope="col" { "Given" } th scope="col" { "Actions" }
                    } }
                    tbody {
                        @for r in &roles {
                            tr data-testid={ "row-role-" (r.subject) "-" (r.pattern) } {
                                td { (r.subject) } td { code { (r.pattern) } } td { (r.role) }
                                td { (when(&r.created_at)) " by " (r.created_by) }
                                td {
                                    form.inline method="post" action="/ui/roles/remove" {
                                        (ctx.csrf_field())
                                        input type="hidden" name="subject" value=(r.subject);
                                        input type="hidden" name="pattern" value=(r.pattern);
                                        button type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Give a role" }
            form.login method="post" action="/ui/roles" {
                (ctx.csrf_field())
                label for="role-subject" { "Who (" code { "user:NAME" } ", " code { "robot:NAME" } " or " code { "anonymous" } ")" }
                input #role-subject type="text" name="subject" required autocomplete="off";
                label for="role-pattern" { "Repositories (pattern)" }
                input #role-pattern type="text" name="pattern" required placeholder="team/**" autocomplete="off";
                label for="role-role" { "Role" }
                (role_select("role-role"))
                button.primary type="submit" data-testid="btn-grant" { "Give role" }
            }
        };
        Ok(ctx.page("Users", body))
    }
    .await;
    ctx.finish(result)
}

fn tabs(current: &str) -> Markup {
    html! {
        nav.tabs aria-label="Accounts" {
            @for (key, label) in [("users", "Users and roles"), ("robots", "Robots")] {
                @if key == current { strong aria-current="page" { (label) } }
                @else { a href={ "/ui/" (key) } { (label) } }
                " "
            }
        }
    }
}

/// `POST /ui/users`.
pub(crate) async fn add_user(Posted { ctx, form }: Posted) -> Response {
    let result = async {
        require_admin(&ctx)?;
        let name = form.get("name").unwrap_or_default().trim();
        let password = form.get("password").unwrap_or_default();
        let admin = form.get("admin") == Some("true");
        ctx.app
            .auth()
            .add_user(&ctx.caller.principal, name, password, admin)
            .await
            .map_err(auth_error)?;
        Ok(ctx.redirect("/ui/users"))
    }
    .await;
    ctx.finish(result)
}

/// `POST /ui/users/{name}/password`.
pub(crate) async fn set_password(Path(name): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let result = async {
        require_admin(&ctx)?;
        ctx.app
            .auth()
            .set_password(
                &ctx.caller.principal,
                &name,
                form.get("password").unwrap_or_default(),
            )
            .await
            .map_err(auth_error)?;
        Ok(ctx.redirect(&format!(
            "/ui/users?password_set={}",
            form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
        )))
    }
    .await;
    ctx.finish(result)
}

/// `POST /ui/users/{name}/remove`: only with its confirmation ticked (the browser asks for it;
/// a form posted without it removes nothing).
pub(crate) async fn remove_user(Path(name): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let result = async {
        require_admin(&ctx)?;
        if form.get("confirm") != Some("yes") {
            return Err(bad_request(format!("tick \"sure\" to remove user {name}")));
        }
        ctx.app
            .auth()
            .remove_user(&ctx.caller.principal, &name)
            .await
            .map_err(auth_error)?;
        Ok(ctx.redirect(&format!(
            "/ui/users?removed={}",
            form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
        )))
    }
    .await;
    ctx.finish(result)
}

/// `POST /ui/roles`.
pub(crate) async fn grant(Posted { ctx, form }: Posted) -> Response {
    let result = async {
        require_admin(&ctx)?;
        let r = role(form.get("role").unwrap_or_default())?;
        ctx.app
            .auth()
            .bind(
                &ctx.caller.principal,
                form.get("subject").unwrap_or_default().trim(),
                form.get("pattern").unwrap_or_default().trim(),
                r,
            )
            .await
            .map_err(auth_error)?;
        Ok(ctx.redirect("/ui/users"))
    }
    .await;
    ctx.finish(result)
}

/// `POST /ui/roles/remove`.
pub(crate) async fn ungrant(Posted { ctx, form }: Posted) -> Response {
    let result = async {
        require_admin(&ctx)?;
        ctx.app
            .auth()
            .unbind(
                &ctx.caller.principal,
                form.get("subject").unwrap_or_default(),
                form.get("pattern").unwrap_or_default(),
            )
            .await
            .map_err(auth_error)?;
        Ok(ctx.redirect("/ui/users"))
    }
    .await;
    ctx.finish(result)
}

/// `/ui/robots`.
pub(crate) async fn robots(ctx: Ctx) -> Response {
    let result = async {
        require_admin(&ctx)?;
        let now = ctx.registry.now();
        let robots: Vec<RobotInfo> = ctx
            .app
            .auth()
            .robots(&ctx.caller.principal)
            .await
            .map_err(auth_error)?
            .into_iter()
            .map(|r| RobotInfo::at(r, now))
            .collect();
        let body = html! {
            h1 { "Robots" }
            (tabs("robots"))
            p.note { "Robots are accounts for CI and other programs: they log in as "
                code { "robot$NAME" } " with a secret shown once, when the robot is added." }
            @if robots.is_empty() {
                p.note data-testid="no-robots" { "No robot yet." }
            } @else {
                table data-testid="robots" {
                    thead { tr {
                        th scope="col" { "Robot" } th scope="col" { "State" } th scope="col" { "Description" }
                        th scope="col" { "Added" } th scope="col" { "Expires" } th scope="col" { "Last used" }
                        th scope="col" { "Actions" }
                    } }
                    tbody {
                        @for r in &robots {
                            tr data-testid={ "row-robot-" (r.name) } {
                                td { code { (r.login) } }
                                td data-testid="robot-state" { (r.state) }
                                td { (r.description.clone().unwrap_or_default()) }
                                td { (when(&r.created_at)) " by " (r.created_by) }
                                td { @match &r.expires_at { Some(t) => { (when(t)) }, None => { span.note { "never" } } } }
                                td { (when_or_never(r.last_used_at.as_deref())) }
                                td {
                                    @if r.state != "revoked" {
                                        form.inline method="post" action={ "/ui/robots/" (r.name) "/revoke" } {
                                            (ctx.csrf_field())
                                            button.danger type="submit" data-testid={ "revoke-" (r.name) } { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Add a robot" }
            form.login method="post" action="/ui/robots" {
                (ctx.csrf_field())
                label for="robot-name" { "Name" }
                input #robot-name type="text" name="name" required autocomplete="off";
                label for="robot-description" { "Description" }
                input #robot-description type="text" name="description" autocomplete="off";
                label for="robot-expires" { "Expires after (e.g. 90d; empty: never)" }
                input #robot-expires type="text" name="expires_in" autocomplete="off";
                label for="robot-pattern" { "Role on repositories (pattern; empty: no role yet)" }
                input #robot-pattern type="text" name="pattern" placeholder="team/**" autocomplete="off";
                label for="robot-role" { "Role" }
                (role_select("robot-role"))
                button.primary type="submit" data-testid="btn-add-robot" { "Add robot" }
            }
        };
        Ok(ctx.page("Robots", body))
    }
    .await;
    ctx.finish(result)
}

/// `POST /ui/robots`: adds a robot and shows its secret, this once.
pub(crate) async fn add_robot(Posted { ctx, form }: Posted) -> Response {
    let result = async {
        require_admin(&ctx)?;
        let now = ctx.registry.now();
        let expires_at = match form.get("expires_in").map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                let ms = crate::api::handlers::duration_ms(text).ok_or_else(|| {
                    bad_request(format!(
                        "expires after: {text:?} is not a duration of at most 100 years (use \
                         e.g. 90d, 12h)"
                    ))
                })?;
                Some(now + ms)
            }
        };
        let roles = match form.get("pattern").map(str::trim) {
            None | Some("") => Vec::new(),
            Some(p) => vec![(p.to_string(), role(form.get("role").unwrap_or_default())?)],
        };
        let description = form
            .get("description")
            .map(str::trim)
            .filter(|d| !d.is_empty());
        let (robot, secret) = ctx
            .app
            .auth()
            .add_robot(
                &ctx.caller.principal,
                form.get("name").unwrap_or_default().trim(),
                description,
                expires_at,
                &roles,
            )
            .await
            .map_err(auth_error)?;
        let robot = RobotInfo::at(robot, now);
        let body = html! {
            h1 { "Robot " code { (robot.login) } " added" }
            p.ok role="status" { "Copy its secret now: it is shown only this once (the registry keeps only a hash)." }
            p { "Login: " code data-testid="robot-login" { (robot.login) } }
            p { "Secret: " code data-testid="robot-secret" { (secret) } }
            @if let Some((pattern, r)) = roles.first() {
                p { "Role " strong { (r) } " on " code { (pattern) } "." }
            }
            p { a href="/ui/robots" { "Back to the robots" } }
        };
        Ok(ctx.page("Robot added", body))
    }
    .await;
    ctx.finish(result)
}

/// `POST /ui/robots/{name}/revoke`.
pub(crate) async fn revoke_robot(Path(name): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, .. } = posted;
    let result = async {
        require_admin(&ctx)?;
        ctx.app
            .auth()
            .revoke_robot(&ctx.caller.principal, &name)
            .await
            .map_err(auth_error)?;
        Ok(ctx.redirect("/ui/robots"))
    }
    .await;
    ctx.finish(result)
}
