//! `shipshape manifest ls|rm`: the manifests of a repository (tagged, children of indexes,
//! referrers, untagged), and deleting one by digest with every tag pointing at it.

use reqwest::Method;
use shipshape_server::api::model::{ManifestDeletion, ManifestInfo, ManifestList, OverrideQuery};

use super::client::decode;
use super::output::{self, Format, Table};
use super::{Remote, RemoteArgs, Result};

/// `shipshape manifest …`
#[derive(clap::Args, Debug)]
pub struct ManifestArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: ManifestCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ManifestCommand {
    /// List the live manifests of a repository with their kind, tags and size
    Ls {
        /// Repository name
        repository: String,
    },
    /// Delete manifests by digest, each with every tag pointing at it; they stay restorable
    /// for the restore window (`shipshape restorable`)
    Rm {
        /// Repository name
        repository: String,
        /// Digests, or unique prefixes of them as tables print them (`sha256:0123456789ab`)
        #[arg(required = true)]
        digests: Vec<String>,
        /// Delete tags a policy protects too (an admin action, logged as such)
        #[arg(long)]
        override_protection: bool,
    },
}

pub async fn run(args: ManifestArgs) -> Result<()> {
    let remote = args.remote.remote()?;
    let format = args.remote.output;
    match args.command {
        ManifestCommand::Ls { repository } => {
            let v = remote
                .get(&Remote::repo_path(&repository, "manifests"))
                .await?;
            if format == Format::Json {
                output::print_json(&v);
                return Ok(());
            }
            let list: ManifestList = decode(&v)?;
            let mut t = Table::new(&[
                "DIGEST",
                "KIND",
                "TAGS",
                "MANIFEST SIZE",
                "CREATED",
                "LAST PULLED",
                "WHY KEPT",
            ]);
            for m in &list.manifests {
                t.row(vec![
                    output::digest(m.digest.as_str()),
                    m.kind.clone(),
                    if m.tags.is_empty() {
                        "-".into()
                    } else {
                        m.tags.join(",")
                    },
                    output::size(m.size),
                    output::time(m.created_at.as_str()),
                    output::time(m.last_pulled_at.as_deref()),
                    why_kept(&m.why_kept),
                ]);
            }
            t.print();
            Ok(())
        }
        ManifestCommand::Rm {
            repository,
            digests,
            override_protection,
        } => {
            // Every digest is resolved first, so a typo changes nothing; two names of one
            // manifest (a prefix and the whole digest, say) delete it once.
            let mut found: Vec<ManifestInfo> = Vec::new();
            for d in &digests {
                let m: ManifestInfo = remote
                    .get_json(&Remote::repo_path(&repository, &format!("manifests/{d}")))
                    .await?;
                if found.iter().all(|f| f.digest != m.digest) {
                    found.push(m);
                }
            }
            let listed: Vec<String> = found
                .iter()
                .map(|m| {
                    format!(
                        "{repository}@{} (tags: {})",
                        m.digest,
                        if m.tags.is_empty() {
                            "none".into()
                        } else {
                            m.tags.join(", ")
                        }
                    )
                })
                .collect();
            output::confirm_listing(
                args.remote.yes,
                &format!("delete {} manifest(s) of {repository}", found.len()),
                &listed,
            )?;
            let mut done = Vec::new();
            for m in &found {
                let digest = &m.digest;
                let req = remote
                    .request(
                        Method::DELETE,
                        &Remote::repo_path(&repository, &format!("manifests/{digest}")),
                    )
                    .query(&OverrideQuery {
                        override_protection,
                    });
                let v = remote.send(req).await?;
                if format == Format::Table {
                    let deleted: ManifestDeletion = decode(&v)?;
                    let tags = &deleted.tags;
                    println!(
                        "deleted {repository}@{digest}{}",
                        if tags.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " and its {} {}",
                                if tags.len() == 1 { "tag" } else { "tags" },
                                tags.join(", ")
                            )
                        }
                    );
                    super::tag::print_freed(&deleted.freed, false);
                    println!("undo with: shipshape undo {}", deleted.batch);
                }
                done.push(v);
            }
            if format == Format::Json {
                output::print_json(&serde_json::Value::Array(done));
            }
            Ok(())
        }
    }
}

/// The API's reason a manifest is still stored, in a few words.
fn why_kept(w: &shipshape_server::api::model::WhyKept) -> String {
    let of = || w.of.as_deref().map(output::digest).unwrap_or_default();
    let until = || output::time(w.until.as_deref());
    match w.reason.as_str() {
        "tagged" => format!("tagged {}", w.tags.join(",")),
        "child" => format!("listed by {}", of()),
        "referrer" => format!("referrer of {}", of()),
        "settings" => "untagged; kept by the settings".into(),
        "held_for_restore" => format!("held for restore until {}", until()),
        "in_grace" => format!("in grace until {}", until()),
        "collectable" => "collectable now".into(),
        other => other.to_string(),
    }
}
