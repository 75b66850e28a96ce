//! The Rust `oci-client` crate, unmodified, against a registry with access control on, over
//! plain HTTP: with `RegistryAuth::Basic` it follows the challenge to the token endpoint and
//! pushes and pulls with the bearer token it gets; a reader's push and an anonymous pull of a
//! repository anonymous callers may not read are refused. The bytes pulled are the bytes
//! pushed, and the registry serves the manifest the client pushed.

mod common;

use common::accounts::{ADMIN, PASSWORD, admin_post, team_registry};
use common::{OCI_MANIFEST, TestServer, client};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// A client of its own per caller: oci-client keeps the tokens it fetched per client.
fn oci() -> Client {
    // reqwest is built with rustls and no provider of its own (no second crypto stack beside
    // the ring the workspace uses); building a client needs a default provider, even for
    // plain HTTP. Installing twice in one process is refused, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    })
}

fn basic(user: &str, password: &str) -> RegistryAuth {
    RegistryAuth::Basic(user.to_string(), password.to_string())
}

/// A registry with access control on: `dev` writes team/**, `reader` reads it, and
/// anonymous callers may read public/** (and nothing else).
async fn registry() -> TestServer {
    let s = team_registry().await;
    admin_post(
        &s,
        "/api/v1/roles",
        json!({"subject": "anonymous", "pattern": "public/**", "role": "read"}),
    )
    .await;
    s
}

/// A config and one layer; distinct per `seed`.
fn content(seed: u64) -> (Config, ImageLayer) {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#);
    let layer = common::random_bytes(3000 + seed as usize, seed);
    (
        Config::new(config.into_bytes(), CONFIG_TYPE.to_string(), None),
        ImageLayer::new(layer, LAYER_TYPE.to_string(), None),
    )
}

fn reference(s: &TestServer, repo_tag: &str) -> Reference {
    format!("{}/{repo_tag}", s.host()).parse().unwrap()
}

/// The manifest the registry serves to the administrator for `repo:tag`: its digest
/// (`Docker-Content-Digest`, checked against the body) and the body; `None` when missing.
async fn served(s: &TestServer, repo: &str, tag: &str) -> Option<(String, Value)> {
    let resp = client()
        .get(s.url(&format!("/v2/{repo}/manifests/{tag}")))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    if resp.status() == StatusCode::NOT_FOUND {
        return None;
    }
    assert_eq!(resp.status(), StatusCode::OK, "GET {repo}:{tag}");
    let digest = common::header(&resp, "docker-content-digest")
        .expect("Docker-Content-Digest")
        .to_string();
    let body = resp.bytes().await.unwrap();
    assert_eq!(common::sha256(&body), digest);
    Some((digest, serde_json::from_slice(&body).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_client_pushes_and_pulls_with_basic_credentials_through_the_token_flow() {
    let s = registry().await;
    let (config, layer) = content(1);
    let app = reference(&s, "team/app:v1");

    // The writer pushes a config and one layer.
    let pushed = oci()
        .push(
            &app,
            std::slice::from_ref(&layer),
            config.clone(),
            &basic("dev", PASSWORD),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("dev's push: {e:?}"));
    assert!(
        pushed.manifest_url.contains("/v2/team/app/manifests/"),
        "{}",
        pushed.manifest_url
    );
    let (digest, manifest) = served(&s, "team/app", "v1").await.expect("the pushed tag");
    assert_eq!(
        manifest["config"]["digest"],
        common::sha256(&config.data),
        "{manifest}"
    );
    assert_eq!(
        manifest["layers"][0]["digest"],
        common::sha256(&layer.data),
        "{manifest}"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], LAYER_TYPE);

    // The reader pulls the same bytes.
    let pulled = oci()
        .pull(&app, &basic("reader", PASSWORD), vec![LAYER_TYPE])
        .await
        .unwrap_or_else(|e| panic!("reader's pull: {e:?}"));
    assert_eq!(pulled.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(pulled.config.data, config.data);
    assert_eq!(pulled.config.media_type, CONFIG_TYPE);
    assert_eq!(pulled.layers.len(), 1);
    assert_eq!(pulled.layers[0].data, layer.data);
    assert_eq!(pulled.layers[0].media_type, LAYER_TYPE);

    // The reader may not push, whether a new repository under team/ or a new tag of team/app.
    let (config2, layer2) = content(2);
    for target in ["team/app:v2", "team/new:v1"] {
        let e = oci()
            .push(
                &reference(&s, target),
                std::slice::from_ref(&layer2),
                config2.clone(),
                &basic("reader", PASSWORD),
                None,
            )
            .await
            .err()
            .unwrap_or_else(|| panic!("the reader pushed {target}"));
        let (repo, tag) = target.split_once(':').unwrap();
        // Its token holds pull only (oci-client asks for pull,push; the registry grants what
        // the roles allow), so the upload is refused: 403 DENIED.
        let uploads = format!("/v2/{repo}/blobs/uploads/");
        assert!(
            matches!(&e, OciDistributionError::ServerError { code: 403, url, message }
                if url.ends_with(&uploads) && message.contains("DENIED")),
            "{target}: {e:?}"
        );
        assert_eq!(served(&s, repo, tag).await, None, "{target}");
    }

    // A wrong password gets no token from the token endpoint. oci-client then goes on without
    // one (it drops a failed token request), and the registry refuses the anonymous GET.
    let wrong = basic("reader", "wrong-password");
    let e = oci()
        .auth(&app, &wrong, RegistryOperation::Pull)
        .await
        .expect_err("no token for a wrong password");
    assert!(
        matches!(&e, OciDistributionError::AuthenticationFailure(body) if body.contains("UNAUTHORIZED")),
        "{e:?}"
    );
    let e = oci()
        .pull(&app, &wrong, vec![LAYER_TYPE])
        .await
        .err()
        .expect("a wrong password pulls nothing");
    assert!(
        matches!(e, OciDistributionError::UnauthorizedError { .. }),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_oci_client_pulls_only_what_anonymous_callers_may_read() {
    let s = registry().await;
    let (config, layer) = content(3);
    for target in ["team/app:v1", "public/app:v1"] {
        oci()
            .push(
                &reference(&s, target),
                std::slice::from_ref(&layer),
                config.clone(),
                &basic(ADMIN.0, ADMIN.1),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("admin's push of {target}: {e:?}"));
    }

    // public/** is readable anonymously: the pull works without credentials.
    let pulled = oci()
        .pull(
            &reference(&s, "public/app:v1"),
            &RegistryAuth::Anonymous,
            vec![LAYER_TYPE],
        )
        .await
        .unwrap_or_else(|e| panic!("anonymous pull of public/app: {e:?}"));
    assert_eq!(pulled.layers[0].data, layer.data);

    // team/app is not: the manifest is refused, and so is a blob by digest.
    let team = reference(&s, "team/app:v1");
    let e = oci()
        .pull(&team, &RegistryAuth::Anonymous, vec![LAYER_TYPE])
        .await
        .err()
        .expect("an anonymous pull of team/app must be refused");
    assert!(
        matches!(&e, OciDistributionError::UnauthorizedError { url }
            if url.ends_with("/v2/team/app/manifests/v1")),
        "{e:?}"
    );
    let c = oci();
    let e = c
        .pull_manifest_raw(&team, &RegistryAuth::Anonymous, &[OCI_MANIFEST])
        .await
        .expect_err("the manifest is refused");
    assert!(
        matches!(e, OciDistributionError::UnauthorizedError { .. }),
        "{e:?}"
    );
    let exists = c
        .blob_exists(&team, &common::sha256(&layer.data))
        .await
        .expect_err("the blob's existence is not told");
    assert!(
        matches!(&exists, OciDistributionError::RequestError(r)
            if r.status() == Some(StatusCode::UNAUTHORIZED)),
        "{exists:?}"
    );
}
