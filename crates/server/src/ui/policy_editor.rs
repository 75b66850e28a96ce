//! The retention-policy editor (`/ui/policies/new`, `/ui/policies/{name}/edit`), its presets,
//! and the pattern tester (`/ui/policies/pattern-test`).
//!
//! The editor is a plain form over the document `shipshape policy apply -f FILE` takes, and
//! shows that document as TOML. The form only turns its fields into a `PolicySpec` (a line per
//! pattern, counts as numbers); whether the policy is valid is `PolicySpec::validate`'s answer,
//! given through `Retention::apply` on save (the service `PUT /api/v1/policies/{name}` calls,
//! which checks the permission and records the activity-log event) and before a preview of the
//! draft (`Retention::preview`, as `POST /api/v1/policies/preview`, shown with the saved
//! policy's preview table). Its messages are shown next to the fields they name, with the values
//! kept. Presets fill the form server-side (`?preset=gitlab`), each said with
//! `retention::sentence`, as the list says policies.
//!
//! The pattern tester lists the real repositories and tags that repository globs and a tag
//! pattern match, among those the caller may read: `Retention::matching`, which matches with the
//! evaluation's own `RepoPattern` and `Pattern`.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use shipshape_gc::retention::{
    DeleteSpec, KeepSpec, Matched, Pattern, PolicyError, PolicySpec, RepoPattern, RetentionError,
    TagScopeSpec, sentence,
};
use shipshape_meta::principal::Permission;

use super::{Ctx, Fields, Posted, bad_request, forbidden, policies};
use crate::api::model::policies::PreviewInfo;
use crate::api::policies as api_policies;
use crate::error::ApiError;

/// Refuses, as a page, a caller who may not manage policies (the API's PUT refuses the same).
fn require_manager(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.may(Permission::ManagePolicies, None) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "{} may not write retention policies (a registry-wide administrator may)",
            ctx.caller.principal.name
        )))
    }
}

/// A starting point for a policy.
struct Preset {
    key: &'static str,
    title: &'static str,
    /// The document, as a file would hold it.
    toml: &'static str,
}

const PRESETS: [Preset; 3] = [
    Preset {
        key: "gitlab",
        title: "Keep the 10 latest tags, delete the rest older than 30 days",
        toml: "name = \"keep-10-latest\"\nrepositories = [\"**\"]\n\n[keep]\nlatest_pushed = 10\n\n\
               [delete]\nolder_than = \"30d\"\n",
    },
    Preset {
        key: "untagged",
        title: "Delete untagged manifests after 7 days",
        toml: "name = \"untagged-7d\"\nrepositories = [\"**\"]\n\n[delete]\n\
               untagged_older_than = \"7d\"\n",
    },
    Preset {
        key: "releases",
        title: "Keep releases (v*), delete other tags older than 14 days",
        toml: "name = \"keep-releases\"\nrepositories = [\"**\"]\n\n[tags]\nexclude = [\"v*\"]\n\n\
               [delete]\nolder_than = \"14d\"\n",
    },
];

impl Preset {
    fn spec(&self) -> PolicySpec {
        PolicySpec::from_toml(self.toml).expect("presets are valid (tested below)")
    }

    fn find(key: &str) -> Result<&'static Preset, ApiError> {
        PRESETS
            .iter()
            .find(|p| p.key == key)
            .ok_or_else(|| bad_request(format!("there is no preset {key:?}")))
    }
}

/// The form's fields as typed: what the page shows again, whatever they hold.
#[derive(Clone, Debug, Default)]
struct Draft {
    name: String,
    description: String,
    repositories: String,
    include: String,
    exclude: String,
    protected: String,
    latest_pushed: String,
    latest_pulled: String,
    pushed_within: String,
    pulled_within: String,
    older_than: String,
    untagged_older_than: String,
    schedule: String,
}

impl Draft {
    fn from_spec(s: &PolicySpec) -> Draft {
        let text = |o: &Option<String>| o.clone().unwrap_or_default();
        let count = |o: Option<u32>| o.map(|n| n.to_string()).unwrap_or_default();
        Draft {
            name: s.name.clone(),
            description: text(&s.description),
            repositories: s.repositories.join("\n"),
            include: s.tags.include.join("\n"),
            exclude: s.tags.exclude.join("\n"),
            protected: s.tags.protected.join("\n"),
            latest_pushed: count(s.keep.latest_pushed),
            latest_pulled: count(s.keep.latest_pulled),
            pushed_within: text(&s.keep.pushed_within),
            pulled_within: text(&s.keep.pulled_within),
            older_than: text(&s.delete.older_than),
            untagged_older_than: text(&s.delete.untagged_older_than),
            schedule: text(&s.schedule),
        }
    }

    fn from_form(f: &Fields) -> Draft {
        let get = |k: &str| f.get(k).unwrap_or_default().to_string();
        Draft {
            name: get("name"),
            description: get("description"),
            repositories: get("repositories"),
            include: get("include"),
            exclude: get("exclude"),
            protected: get("protected"),
            latest_pushed: get("latest_pushed"),
            latest_pulled: get("latest_pulled"),
            pushed_within: get("pushed_within"),
            pulled_within: get("pulled_within"),
            older_than: get("older_than"),
            untagged_older_than: get("untagged_older_than"),
            schedule: get("schedule"),
        }
    }

    /// The document the fields make (a pattern a line; empty fields left out), and the count
    /// fields that hold no whole number. Everything else is for `PolicySpec::validate` to judge.
    fn spec(&self) -> (PolicySpec, Vec<PolicyError>) {
        let lines = |t: &str| -> Vec<String> {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        };
        let text = |t: &str| Some(t.trim().to_string()).filter(|t| !t.is_empty());
        let mut problems = Vec::new();
        let mut count = |field: &str, t: &str| -> Option<u32> {
            let t = t.trim();
            if t.is_empty() {
                return None;
            }
            t.parse()
                .map_err(|_| {
                    problems.push(PolicyError::Field {
                        field: field.into(),
                        message: format!("{t:?} is not a whole number"),
                    })
                })
                .ok()
        };
        let latest_pushed = count("keep.latest_pushed", &self.latest_pushed);
        let latest_pulled = count("keep.latest_pulled", &self.latest_pulled);
        let spec = PolicySpec {
            name: self.name.trim().to_string(),
            description: text(&self.description),
            repositories: lines(&self.repositories),
            schedule: text(&self.schedule),
            tags: TagScopeSpec {
                include: lines(&self.include),
                exclude: lines(&self.exclude),
                protected: lines(&self.protected),
            },
            keep: KeepSpec {
                latest_pushed,
                latest_pulled,
                pushed_within: text(&self.pushed_within),
                pulled_within: text(&self.pulled_within),
            },
            delete: DeleteSpec {
                older_than: text(&self.older_than),
                untagged_older_than: text(&self.untagged_older_than),
            },
        };
        (spec, problems)
    }
}

/// The document's fields and the form control of each.
const CONTROLS: [(&str, &str); 13] = [
    ("name", "name"),
    ("description", "description"),
    ("repositories", "repositories"),
    ("tags.include", "include"),
    ("tags.exclude", "exclude"),
    ("tags.protected", "protected"),
    ("keep.latest_pushed", "latest_pushed"),
    ("keep.latest_pulled", "latest_pulled"),
    ("keep.pushed_within", "pushed_within"),
    ("keep.pulled_within", "pulled_within"),
    ("delete.older_than", "older_than"),
    ("delete.untagged_older_than", "untagged_older_than"),
    ("schedule", "schedule"),
];

/// The control a parser's problem names (`tags.exclude[1]` is `exclude`); `None`: the
/// document as a whole.
fn control_of(e: &PolicyError) -> Option<&'static str> {
    let PolicyError::Field { field, .. } = e else {
        return None;
    };
    let head = field.split('[').next().unwrap_or(field);
    CONTROLS.iter().find(|(f, _)| *f == head).map(|(_, c)| *c)
}

/// Problems as the parser words them together: one as itself, several numbered.
fn said(problems: &[PolicyError]) -> String {
    match problems {
        [one] => one.to_string(),
        many => PolicyError::Several(many.to_vec()).to_string(),
    }
}

/// What the editor page shows.
struct Editor<'a> {
    draft: &'a Draft,
    /// The policy being edited; `None`: a new one.
    editing: Option<&'a str>,
    /// Why the last submission was refused.
    problems: &'a [PolicyError],
    /// Whether the refused submission was a preview (else a save).
    previewing: bool,
    preview: Option<&'a PreviewInfo>,
}

enum Kind {
    Text,
    Lines,
    Count,
}

fn field(e: &Editor, id: &'static str, label: &str, kind: Kind, value: &str, hint: &str) -> Markup {
    let errors: Vec<String> = e
        .problems
        .iter()
        .filter(|p| control_of(p) == Some(id))
        .map(ToString::to_string)
        .collect();
    let mut described = Vec::new();
    if !hint.is_empty() {
        described.push(format!("hint-{id}"));
    }
    if !errors.is_empty() {
        described.push(format!("error-{id}"));
    }
    let described = (!described.is_empty()).then(|| described.join(" "));
    let invalid = (!errors.is_empty()).then_some("true");
    let readonly = id == "name" && e.editing.is_some();
    html! {
        label for=(id) { (label) }
        @match kind {
            Kind::Lines => {
                textarea #(id) name=(id) rows="3" aria-describedby=[described.as_deref()]
                    aria-invalid=[invalid] { (value) }
            }
            Kind::Count => {
                input #(id) type="number" min="1" step="1" name=(id) value=(value)
                    aria-describedby=[described.as_deref()] aria-invalid=[invalid];
            }
            Kind::Text => {
                input #(id) type="text" name=(id) value=(value) readonly[readonly]
                    aria-describedby=[described.as_deref()] aria-invalid=[invalid];
            }
        }
        @if !hint.is_empty() { p.hint.note id={ "hint-" (id) } { (hint) } }
        @if !errors.is_empty() {
            p.field-error id={ "error-" (id) } data-testid={ "error-" (id) } { (errors.join("; ")) }
        }
    }
}

fn editor_body(ctx: &Ctx, e: &Editor) -> Markup {
    let d = e.draft;
    let (spec, _) = d.spec();
    let words = spec.validate().ok().map(|p| sentence(&p));
    let (action, title) = match e.editing {
        Some(name) => (
            format!("/ui/policies/{name}/edit"),
            format!("Edit policy {name}"),
        ),
        None => ("/ui/policies/new".to_string(), "New policy".to_string()),
    };
    let first_include = spec.tags.include.first().cloned().unwrap_or_default();
    html! {
        h1 { (title) }
        @if !e.problems.is_empty() {
            div.error role="alert" data-testid="editor-error" {
                @if e.previewing { "Nothing to preview: " } @else { "Not saved: " }
                (said(e.problems))
            }
        }
        h2 { "Start from a preset" }
        ul.presets data-testid="presets" {
            @for p in &PRESETS {
                li {
                    a href={ (action) "?preset=" (p.key) } data-testid={ "preset-" (p.key) } { (p.title) }
                    br;
                    span.note { (sentence(&p.spec().validate().expect("presets are valid"))) }
                }
            }
        }
        p.note { "A preset fills the form below" @if e.editing.is_some() { " (the name stays)" } "; nothing is saved until you save." }
        form.editor method="post" action=(action) {
            (ctx.csrf_field())
            fieldset {
                legend { "Policy" }
                (field(e, "name", "Name", Kind::Text, &d.name,
                    "Lower-case letters, digits, '.', '_' and '-'; at most 63."))
                (field(e, "description", "Description", Kind::Text, &d.description, ""))
            }
            fieldset {
                legend { "Repositories it covers" }
                (field(e, "repositories", "Repository patterns", Kind::Lines, &d.repositories,
                    "One a line: * stays within a path segment, ** crosses them (team-a/**, */nightly, ** for every repository)."))
            }
            fieldset {
                legend { "Tags" }
                (field(e, "include", "Tags it may delete", Kind::Lines, &d.include,
                    "One pattern a line, a glob (ci-*) or regex:… matching the whole tag; empty: every tag."))
                (field(e, "exclude", "Tags it never considers", Kind::Lines, &d.exclude, "One pattern a line."))
                (field(e, "protected", "Protected tags", Kind::Lines, &d.protected,
                    "One pattern a line; no policy covering the repository and no user deletes them."))
            }
            fieldset {
                legend { "Keep, although old enough to delete" }
                (field(e, "latest_pushed", "The most recently pushed tags (how many)", Kind::Count, &d.latest_pushed, ""))
                (field(e, "latest_pulled", "The most recently pulled tags (how many)", Kind::Count, &d.latest_pulled, ""))
                (field(e, "pushed_within", "Tags pushed within", Kind::Text, &d.pushed_within, "A duration: 7d, 12h, 90m."))
                (field(e, "pulled_within", "Tags pulled within", Kind::Text, &d.pulled_within, "A duration."))
            }
            fieldset {
                legend { "Delete" }
                (field(e, "older_than", "Tags older than", Kind::Text, &d.older_than,
                    "A duration (30d); 0s: any age; empty: no tag is deleted."))
                (field(e, "untagged_older_than", "Untagged manifests older than", Kind::Text,
                    &d.untagged_older_than, "A duration; empty: untagged manifests are kept."))
            }
            fieldset {
                legend { "Schedule" }
                (field(e, "schedule", "Runs by itself", Kind::Text, &d.schedule,
                    "every 6h, or daily at 03:00 (UTC); empty: only when run by hand."))
            }
            button.primary type="submit" name="action" value="save" data-testid="btn-save-policy" { "Save policy" }
            " "
            button type="submit" name="action" value="preview" data-testid="btn-preview-draft" { "Preview" }
            " "
            span.note { "Preview shows what this draft would delete now; nothing is saved or deleted." }
        }
        h2 { "The document" }
        @if let Some(words) = &words {
            p data-testid="draft-sentence" { (words) }
        }
        p.note { "The same policy as a file, for " code { "shipshape policy apply -f FILE" } ":" }
        pre.document data-testid="policy-toml" { (spec.to_toml()) }
        @if let Some(p) = e.preview {
            h2 data-testid="draft-preview" { "Preview of this draft" }
            p.note { "Nothing was saved or changed: every tag and untagged manifest in its scope (that you may read), with what this draft would decide now." }
            (policies::decisions(p))
        }
        h2 { "Which tags do patterns match?" }
        (tester_form(&d.repositories, &first_include))
    }
}

fn editor_page(ctx: &Ctx, e: &Editor, status: StatusCode) -> Response {
    let title = match e.editing {
        Some(name) => format!("Edit policy {name}"),
        None => "New policy".to_string(),
    };
    ctx.respond(status, &title, editor_body(ctx, e))
}

/// `?preset=KEY` on the editor.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct PresetQuery {
    preset: Option<String>,
}

/// `GET /ui/policies/new[?preset=KEY]`.
pub(crate) async fn new_form(ctx: Ctx, Query(q): Query<PresetQuery>) -> Response {
    let result = (|| -> Result<Response, ApiError> {
        require_manager(&ctx)?;
        let draft = match q.preset.as_deref() {
            Some(key) => Draft::from_spec(&Preset::find(key)?.spec()),
            None => Draft::default(),
        };
        Ok(show(&ctx, &draft, None))
    })();
    ctx.finish(result)
}

fn show(ctx: &Ctx, draft: &Draft, editing: Option<&str>) -> Response {
    let e = Editor {
        draft,
        editing,
        problems: &[],
        previewing: false,
        preview: None,
    };
    editor_page(ctx, &e, StatusCode::OK)
}

/// `GET /ui/policies/{name}/edit[?preset=KEY]`: the applied document in the form (a preset
/// replaces it but for the name).
pub(crate) async fn edit_form(
    Path(name): Path<String>,
    ctx: Ctx,
    Query(q): Query<PresetQuery>,
) -> Response {
    let result = async {
        require_manager(&ctx)?;
        let mut spec = match q.preset.as_deref() {
            Some(key) => Preset::find(key)?.spec(),
            None => applied(&ctx, &name).await?,
        };
        spec.name = name.clone();
        Ok(show(&ctx, &Draft::from_spec(&spec), Some(&name)))
    }
    .await;
    ctx.finish(result)
}

/// The applied document of a policy, as written (also one that no longer validates, so it can
/// be mended here).
async fn applied(ctx: &Ctx, name: &str) -> Result<PolicySpec, ApiError> {
    let stored = ctx
        .app
        .retention()
        .list()
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| RetentionError::NotFound(name.into()))?;
    Ok(PolicySpec::from_json(&stored.document).map_err(RetentionError::Invalid)?)
}

/// `POST /ui/policies/new`: save (`action=save`) or preview (`action=preview`) the draft.
pub(crate) async fn new_submit(Posted { ctx, form }: Posted) -> Response {
    let result = submit(&ctx, &form, None).await;
    ctx.finish(result)
}

/// `POST /ui/policies/{name}/edit`: the same for an applied policy (the name stays).
pub(crate) async fn edit_submit(
    Path(name): Path<String>,
    Posted { ctx, form }: Posted,
) -> Response {
    let result = submit(&ctx, &form, Some(&name)).await;
    ctx.finish(result)
}

async fn submit(ctx: &Ctx, form: &Fields, editing: Option<&str>) -> Result<Response, ApiError> {
    require_manager(ctx)?;
    let mut draft = Draft::from_form(form);
    if let Some(name) = editing {
        draft.name = name.to_string();
    }
    let previewing = form.get("action") == Some("preview");
    let (spec, mut problems) = draft.spec();
    let mut preview = None;
    if !problems.is_empty() {
        // The form's own problems, then the parser's on the rest.
        if let Err(e) = spec.validate() {
            problems.extend(e.problems().iter().cloned());
        }
    } else if previewing {
        match spec.validate() {
            Ok(policy) => {
                let p = ctx
                    .app
                    .retention()
                    .preview(&policy, &ctx.caller.principal)
                    .await?;
                preview = Some(api_policies::preview_info(p));
            }
            Err(e) => problems = e.problems().to_vec(),
        }
    } else if editing.is_none() && exists(ctx, &spec.name).await? {
        problems.push(PolicyError::Field {
            field: "name".into(),
            message: format!(
                "a policy named {:?} is applied already: edit it from the list, or choose another name",
                spec.name
            ),
        });
    } else {
        match ctx
            .app
            .retention()
            .apply(&spec, &ctx.caller.principal)
            .await
        {
            Ok((stored, created)) => {
                let done = if created { "created" } else { "updated" };
                let name =
                    form_urlencoded::byte_serialize(stored.name.as_bytes()).collect::<String>();
                return Ok(ctx.redirect(&format!("/ui/policies?{done}={name}")));
            }
            Err(RetentionError::Invalid(e)) => problems = e.problems().to_vec(),
            Err(e) => return Err(e.into()),
        }
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let e = Editor {
        draft: &draft,
        editing,
        problems: &problems,
        previewing,
        preview: preview.as_ref(),
    };
    Ok(editor_page(ctx, &e, status))
}

async fn exists(ctx: &Ctx, name: &str) -> Result<bool, ApiError> {
    Ok(ctx
        .app
        .retention()
        .list()
        .await?
        .iter()
        .any(|p| p.name == name))
}

/// At most this many repositories, and this many tags in all, are listed by the tester.
const LISTED: usize = 200;

fn tester_form(repositories: &str, tag: &str) -> Markup {
    html! {
        form.editor method="get" action="/ui/policies/pattern-test" role="search" {
            fieldset {
                legend { "Patterns to test" }
                label for="test-repositories" { "Repository patterns" }
                textarea #test-repositories name="repositories" rows="2" aria-describedby="hint-test-repositories" { (repositories) }
                p.hint.note id="hint-test-repositories" { "One a line, as in a policy's repositories." }
                label for="test-tag" { "Tag pattern" }
                input #test-tag type="text" name="tag" value=(tag) aria-describedby="hint-test-tag";
                p.hint.note id="hint-test-tag" { "A glob (v*) or regex:…, as in a policy's tags; empty: every tag." }
            }
            button type="submit" data-testid="btn-test-patterns" { "List what they match" }
        }
    }
}

/// `?repositories=…&tag=…` of the tester.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct TestQuery {
    repositories: Option<String>,
    tag: Option<String>,
}

/// `GET /ui/policies/pattern-test?repositories=…&tag=…`: the repositories the caller may read
/// that the globs match, with their tags the tag pattern matches.
pub(crate) async fn pattern_test(ctx: Ctx, Query(q): Query<TestQuery>) -> Response {
    let result = async {
        let repositories = q.repositories.unwrap_or_default();
        let tag = q.tag.unwrap_or_default();
        let lines: Vec<&str> = repositories
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let mut problems = Vec::new();
        let globs: Vec<RepoPattern> = lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                RepoPattern::parse(&format!("repositories[{i}]"), l)
                    .map_err(|e| problems.push(e))
                    .ok()
            })
            .collect();
        let tag = tag.trim();
        let pattern = (!tag.is_empty())
            .then(|| Pattern::parse("tag", tag).map_err(|e| problems.push(e)).ok())
            .flatten();
        let matched = if lines.is_empty() || !problems.is_empty() {
            None
        } else {
            Some(
                ctx.app
                    .retention()
                    .matching(&globs, pattern.as_ref(), &ctx.caller.principal)
                    .await?,
            )
        };
        let body = html! {
            h1 { "Test patterns" }
            p.note { "Lists the repositories (that you may read) and their tags that the patterns match now, matched as a policy matches them." }
            @if !problems.is_empty() {
                p.error role="alert" data-testid="pattern-error" { (said(&problems)) }
            }
            (tester_form(&repositories, tag))
            @if let Some(m) = &matched { (matches(m, tag)) }
            p { a href="/ui/policies" { "Policies" } }
        };
        let status = if problems.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        Ok::<_, ApiError>(ctx.respond(status, "Test patterns", body))
    }
    .await;
    ctx.finish(result)
}

fn matches(m: &[Matched], tag: &str) -> Markup {
    let tags: usize = m.iter().map(|r| r.tags.len()).sum();
    let total: usize = m.iter().map(|r| r.tags_total).sum();
    // How many of each listed repository's tags are shown, LISTED in all.
    let mut budget = LISTED;
    let shown: Vec<usize> = m
        .iter()
        .take(LISTED)
        .map(|r| {
            let n = r.tags.len().min(budget);
            budget -= n;
            n
        })
        .collect();
    let unlisted_repos = m.len().saturating_sub(LISTED);
    let unlisted_tags = tags.saturating_sub(LISTED);
    html! {
        h2 { "What they match" }
        p role="status" data-testid="pattern-summary" {
            (m.len()) " " (if m.len() == 1 { "repository" } else { "repositories" }) " match"
            @if m.len() == 1 { "es" }
            "; "
            @if tag.is_empty() { (total) " tags in them." }
            @else { (tags) " of their " (total) " tags match " code { (tag) } "." }
        }
        @if !m.is_empty() {
            table data-testid="pattern-matches" {
                thead { tr {
                    th scope="col" { "Repository" } th.num scope="col" { "Tags matching" } th scope="col" { "Tags" }
                } }
                tbody {
                    @for (r, &shown) in m.iter().zip(&shown) {
                        tr data-testid={ "match-" (r.repository) } {
                            td { a href={ "/ui/repositories/" (r.repository) } { (r.repository) } }
                            td.num { (r.tags.len()) " of " (r.tags_total) }
                            td data-testid={ "match-tags-" (r.repository) } {
                                @for t in &r.tags[..shown] { code { (t) } " " }
                                @if shown < r.tags.len() { span.note { "and " (r.tags.len() - shown) " more" } }
                            }
                        }
                    }
                }
            }
            @if unlisted_repos > 0 || unlisted_tags > 0 {
                p.note data-testid="pattern-more" {
                    "Only the first " (LISTED) " repositories and " (LISTED) " tags are listed: "
                    (unlisted_repos) " more repositories and " (unlisted_tags) " more tags match."
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_said_in_one_sentence() {
        let said: Vec<String> = PRESETS
            .iter()
            .map(|p| sentence(&p.spec().validate().unwrap()))
            .collect();
        assert_eq!(
            said,
            [
                "In every repository, keep the 10 most recently pushed tags; delete other tags \
                 older than 30 days; keep untagged manifests.",
                "In every repository, delete untagged manifests after 7 days.",
                "In every repository, keep tags matching v*; delete other tags older than 14 \
                 days; keep untagged manifests.",
            ]
        );
    }

    #[test]
    fn the_form_makes_the_document_and_leaves_judging_it_to_the_parser() {
        let spec = PRESETS[0].spec();
        let draft = Draft::from_spec(&spec);
        assert_eq!(draft.spec(), (spec, vec![]));
        let draft = Draft {
            name: " p ".into(),
            repositories: "team/**\n\n  */nightly \n".into(),
            latest_pushed: "ten".into(),
            older_than: "3 fortnights".into(),
            ..Draft::default()
        };
        let (spec, problems) = draft.spec();
        assert_eq!(spec.repositories, ["team/**", "*/nightly"]);
        assert_eq!(spec.name, "p");
        assert_eq!(problems.len(), 1);
        assert_eq!(control_of(&problems[0]), Some("latest_pushed"));
        let parsed = spec.validate().unwrap_err();
        assert_eq!(control_of(&parsed.problems()[0]), Some("older_than"));
        assert_eq!(control_of(&PolicyError::DeletesNothing), None);
    }
}
