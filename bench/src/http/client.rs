//! The lean client: the distribution API's push and pull flows over one HTTP/1.1 connection
//! pool, with blobs already in memory, so a timing measures the server and little else.

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Body, Method, StatusCode};

use super::images::{Blob, Image, MANIFEST_TYPE};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// How blobs go up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upload {
    /// POST a session, then one PUT with the whole body and the digest.
    Monolithic,
    /// POST a session, PATCH chunks of this many bytes, then PUT with the digest.
    Chunked(usize),
}

#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

fn fail(what: &str, status: StatusCode, body: &str) -> Error {
    format!(
        "{what}: HTTP {status}: {}",
        body.chars().take(300).collect::<String>()
    )
    .into()
}

async fn expect(
    resp: reqwest::Response,
    want: StatusCode,
    what: &str,
) -> Result<reqwest::Response> {
    if resp.status() == want {
        Ok(resp)
    } else {
        let status = resp.status();
        Err(fail(what, status, &resp.text().await.unwrap_or_default()))
    }
}

impl Client {
    /// A client of the registry at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Client {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("an HTTP client");
        Client {
            http,
            base: base.to_string(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The absolute URL of a `Location` (Distribution sends absolute ones, Shipshape paths).
    fn location(&self, resp: &reqwest::Response) -> Result<String> {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or("upload answer without Location")?;
        Ok(if loc.starts_with("http") {
            loc.to_string()
        } else {
            self.url(loc)
        })
    }

    async fn start_upload(&self, repo: &str) -> Result<String> {
        let resp = self
            .http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .header(CONTENT_LENGTH, "0")
            .send()
            .await?;
        let resp = expect(resp, StatusCode::ACCEPTED, "start upload").await?;
        self.location(&resp)
    }

    /// Uploads one blob the given way; the server verifies the digest.
    pub async fn push_blob(&self, repo: &str, blob: &Blob, how: Upload) -> Result<()> {
        let mut loc = self.start_upload(repo).await?;
        let mut last: Bytes = blob.data.clone();
        if let Upload::Chunked(size) = how {
            let len = blob.data.len();
            let mut at = 0;
            // The last chunk travels with the PUT, as the spec allows and clients do.
            while len - at > size {
                let chunk = blob.data.slice(at..at + size);
                let resp = self
                    .http
                    .patch(&loc)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, format!("{}-{}", at, at + size - 1))
                    .header(CONTENT_LENGTH, size.to_string())
                    .body(Body::from(chunk))
                    .send()
                    .await?;
                let resp = expect(resp, StatusCode::ACCEPTED, "patch chunk").await?;
                loc = self.location(&resp)?;
                at += size;
            }
            last = blob.data.slice(at..);
            let sep = if loc.contains('?') { '&' } else { '?' };
            let mut put = self
                .http
                .put(format!("{loc}{sep}digest={}", blob.digest))
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, last.len().to_string());
            if !last.is_empty() {
                put = put.header(CONTENT_RANGE, format!("{}-{}", at, len - 1));
            }
            let resp = put.body(Body::from(last)).send().await?;
            expect(resp, StatusCode::CREATED, "finish chunked upload").await?;
            return Ok(());
        }
        let sep = if loc.contains('?') { '&' } else { '?' };
        let resp = self
            .http
            .put(format!("{loc}{sep}digest={}", blob.digest))
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, last.len().to_string())
            .body(Body::from(std::mem::take(&mut last)))
            .send()
            .await?;
        expect(resp, StatusCode::CREATED, "monolithic upload").await?;
        Ok(())
    }

    /// Whether the repository already has the blob (HEAD), as clients ask before uploading.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        let resp = self
            .http
            .head(self.url(&format!("/v2/{repo}/blobs/{digest}")))
            .send()
            .await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(fail("blob HEAD", s, "")),
        }
    }

    pub async fn put_manifest(&self, repo: &str, tag: &str, image: &Image) -> Result<()> {
        let resp = self
            .http
            .put(self.url(&format!("/v2/{repo}/manifests/{tag}")))
            .header(CONTENT_TYPE, MANIFEST_TYPE)
            .body(image.manifest.data.clone())
            .send()
            .await?;
        expect(resp, StatusCode::CREATED, "manifest PUT").await?;
        Ok(())
    }

    /// Pushes an image: blobs one after another, then the manifest by tag. With
    /// `skip_existing`, a HEAD first and only missing blobs go up. Returns the bytes uploaded.
    pub async fn push_image(
        &self,
        repo: &str,
        tag: &str,
        image: &Image,
        how: Upload,
        skip_existing: bool,
    ) -> Result<u64> {
        let mut sent = 0;
        for blob in image.blobs() {
            if skip_existing && self.blob_exists(repo, &blob.digest).await? {
                continue;
            }
            self.push_blob(repo, blob, how).await?;
            sent += blob.len();
        }
        self.put_manifest(repo, tag, image).await?;
        Ok(sent)
    }

    /// Reads a blob to the end and drops the bytes; returns how many arrived. The digest is
    /// not recomputed (the client would compete with the server for the CPU); the length is
    /// checked by the caller.
    pub async fn pull_blob(&self, repo: &str, digest: &str) -> Result<u64> {
        let mut resp = self.get_blob(repo, digest).await?;
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await? {
            n += chunk.len() as u64;
        }
        Ok(n)
    }

    /// A blob GET answered 200, its body not yet read.
    async fn get_blob(&self, repo: &str, digest: &str) -> Result<reqwest::Response> {
        let resp = self
            .http
            .get(self.url(&format!("/v2/{repo}/blobs/{digest}")))
            .send()
            .await?;
        if resp.status() != StatusCode::OK {
            return Err(fail("blob GET", resp.status(), ""));
        }
        Ok(resp)
    }

    /// Pulls an image by tag and checks every blob's bytes against its digest (not timed: the
    /// end-of-run check that what the registries stored is what was pushed). Returns the blobs
    /// checked.
    pub async fn verify_image(&self, repo: &str, tag: &str) -> Result<usize> {
        use sha2::{Digest as _, Sha256};
        let blobs = self.blob_descriptors(repo, tag).await?;
        for (digest, _) in &blobs {
            let mut resp = self.get_blob(repo, digest).await?;
            let mut hash = Sha256::new();
            while let Some(chunk) = resp.chunk().await? {
                hash.update(&chunk);
            }
            let got = format!("sha256:{}", hex::encode(hash.finalize()));
            if got != *digest {
                return Err(format!("{repo}:{tag}: blob {digest} came back as {got}").into());
            }
        }
        Ok(blobs.len())
    }

    /// The image's config and layers, as (digest, size), from its manifest.
    async fn blob_descriptors(&self, repo: &str, tag: &str) -> Result<Vec<(String, u64)>> {
        let manifest: serde_json::Value =
            serde_json::from_slice(&self.get_manifest(repo, tag).await?)?;
        let layers = manifest["layers"]
            .as_array()
            .ok_or("manifest without layers")?;
        std::iter::once(&manifest["config"])
            .chain(layers)
            .map(|d| {
                let digest = d["digest"].as_str().ok_or("descriptor without digest")?;
                let size = d["size"].as_u64().ok_or("descriptor without size")?;
                Ok((digest.to_string(), size))
            })
            .collect()
    }

    /// The manifest by tag, as pulled: its bytes, with the OCI Accept type.
    pub async fn get_manifest(&self, repo: &str, tag: &str) -> Result<Bytes> {
        let resp = self
            .http
            .request(
                Method::GET,
                self.url(&format!("/v2/{repo}/manifests/{tag}")),
            )
            .header(ACCEPT, MANIFEST_TYPE)
            .send()
            .await?;
        let resp = expect(resp, StatusCode::OK, "manifest GET").await?;
        Ok(resp.bytes().await?)
    }

    /// Pulls an image by tag: the manifest, then config and layers one after another.
    /// Returns the blob bytes received; a short blob is an error.
    pub async fn pull_image(&self, repo: &str, tag: &str) -> Result<u64> {
        let mut total = 0;
        for (digest, size) in self.blob_descriptors(repo, tag).await? {
            let got = self.pull_blob(repo, &digest).await?;
            if got != size {
                return Err(format!("{digest}: {got} bytes of {size}").into());
            }
            total += got;
        }
        Ok(total)
    }
}
