//! `shipshape manifest ls|rm`: the manifests of a repository (tagged, children of indexes,
//! referrers, untagged), and deleting one by digest with every tag pointing at it.

use reqwest::Method;

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
            let mut t = Table::new(&[
                "DIGEST",
                "KIND",
                "TAGS",
                "MANIFEST SIZE",
                "CREATED",
                "LAST PULLED",
            ]);
            for m in v["manifests"].as_array().into_iter().flatten() {
                let tags: Vec<String> = m["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(output::text)
                    .collect();
                t.row(vec![
                    output::digest(&m["digest"]),
                    output::text(&m["kind"]),
                    if tags.is_empty() {
                        "-".into()
                    } else {
                        tags.join(",")
                    },
                    output::size_of(&m["size"]),
                    output::time(&m["created_at"]),
                    output::time(&m["last_pulled_at"]),
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
            let mut found: Vec<serde_json::Value> = Vec::new();
            for d in &digests {
                let m = remote
                    .get(&Remote::repo_path(&repository, &format!("manifests/{d}")))
                    .await?;
                if found.iter().all(|f| f["digest"] != m["digest"]) {
                    found.push(m);
                }
            }
            let listed: Vec<String> = found
                .iter()
                .map(|m| {
                    let tags: Vec<String> = m["tags"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(output::text)
                        .collect();
                    format!(
                        "{repository}@{} (tags: {})",
                        output::text(&m["digest"]),
                        if tags.is_empty() {
                            "none".into()
                        } else {
                            tags.join(", ")
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
                let digest = output::text(&m["digest"]);
                let mut req = remote.request(
                    Method::DELETE,
                    &Remote::repo_path(&repository, &format!("manifests/{digest}")),
                );
                if override_protection {
                    req = req.query(&[("override_protection", "true")]);
                }
                let v = remote.send(req).await?;
                if format == Format::Table {
                    let tags: Vec<String> = v["tags"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(output::text)
                        .collect();
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
                    super::tag::print_freed(&v, false);
                    if let Some(batch) = v["batch"].as_i64() {
                        println!("undo with: shipshape undo {batch}");
                    }
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
