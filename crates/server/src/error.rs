//! The one place where a domain error becomes an HTTP status and an OCI error body.
//! Internal causes are logged here, once, and never sent to the client; a full or read-only
//! storage is answered for what it is (507, 503) and logged with its path by
//! `storage::report_storage_failures`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::registry::RegistryError;
use crate::storage::{StorageFailure, StorageKind, StoragePart};

/// An OCI error response: `{"errors":[{"code","message","detail"}]}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<(&'static str, String, serde_json::Value)>,
    pub headers: Vec<(header::HeaderName, String)>,
    /// The storage failure this answers, logged and counted on the way out.
    pub storage: Option<StorageFailure>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            errors: vec![(code, message.into(), serde_json::Value::Null)],
            headers: Vec::new(),
            storage: None,
        }
    }

    pub fn name_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "NAME_INVALID", message)
    }

    pub fn not_found_endpoint() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "no such endpoint of the distribution API",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "method not allowed on this endpoint",
        )
    }

    /// The same error as the distribution API answers it where the spec defines fewer
    /// statuses than the management API: a delete refused because something still uses the
    /// target is `405 UNSUPPORTED` (the spec lists 202, 400, 404 and 405 for deletes), with
    /// the message naming what holds it.
    pub fn for_distribution(mut self) -> Self {
        if let Some(first) = self.errors.first_mut()
            && matches!(first.0, "BLOB_IN_USE" | "MANIFEST_IN_USE")
        {
            first.0 = "UNSUPPORTED";
            self.status = StatusCode::METHOD_NOT_ALLOWED;
        }
        self
    }

    fn with_detail(mut self, detail: serde_json::Value) -> Self {
        if let Some(first) = self.errors.first_mut() {
            first.2 = detail;
        }
        self
    }

    fn with_header(mut self, name: header::HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// `Range: 0-<last>` as Docker clients parse it; `0-0` for an empty session.
pub fn upload_range(received: u64) -> String {
    format!("0-{}", received.saturating_sub(1))
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as E;
        let failure = match &e {
            E::Meta(m) => of_catalogue(m),
            E::Store(s) => of_store(s),
            _ => None,
        };
        if let Some(failure) = failure {
            return ApiError::storage(failure);
        }
        let msg = e.to_string();
        match e {
            E::NameUnknown(_) => ApiError::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", msg),
            E::BlobUnknown(d) | E::BlobLost(d) => {
                ApiError::new(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", msg)
                    .with_detail(json!({ "digest": d }))
            }
            E::TagUnknown { .. } => ApiError::new(StatusCode::NOT_FOUND, "TAG_UNKNOWN", msg),
            E::TagsUnknown { tags, .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "TAG_UNKNOWN", msg)
                    .with_detail(json!({ "tags": tags }))
            }
            E::DigestAmbiguous { matches, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_AMBIGUOUS", msg)
                    .with_detail(json!({ "matches": matches }))
            }
            E::BatchUnknown(_) => ApiError::new(StatusCode::NOT_FOUND, "BATCH_UNKNOWN", msg),
            E::AlreadyRestored(_) => ApiError::new(StatusCode::CONFLICT, "ALREADY_RESTORED", msg),
            E::NeverThere { .. } => ApiError::new(StatusCode::BAD_REQUEST, "NOT_RESTORABLE", msg),
            E::RepositoryDeleted { .. } => ApiError::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", msg),
            E::RestoreConflict { tags } => ApiError::new(StatusCode::CONFLICT, "TAG_IN_USE", msg)
                .with_detail(json!({
                    "tags": tags.iter().map(|(t, d)| json!({"tag": t, "current": d})).collect::<Vec<_>>()
                })),
            E::ManifestUnknown(_) => ApiError::new(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", msg),
            E::UploadUnknown => ApiError::new(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", msg),
            E::DigestInvalid(_) | E::DigestMismatch { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", msg)
            }
            E::ManifestInvalid(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", msg)
            }
            E::ManifestBlobUnknown(missing) => ApiError {
                status: StatusCode::BAD_REQUEST,
                errors: missing
                    .into_iter()
                    .map(|d| {
                        (
                            "MANIFEST_BLOB_UNKNOWN",
                            format!(
                                "blob or manifest {d} is not in this repository; push it first"
                            ),
                            json!(d),
                        )
                    })
                    .collect(),
                headers: Vec::new(),
                storage: None,
            },
            E::ManifestTooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", msg)
            }
            E::RangeInvalid {
                repo,
                upload,
                received,
            } => ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                msg,
            )
            .with_header(
                header::LOCATION,
                format!("/v2/{repo}/blobs/uploads/{upload}"),
            )
            .with_header(header::RANGE, upload_range(received))
            .with_header(
                header::HeaderName::from_static("docker-upload-uuid"),
                upload.to_string(),
            ),
            E::SizeInvalid(_) => ApiError::new(StatusCode::BAD_REQUEST, "SIZE_INVALID", msg),
            E::BlobInUse { .. } => ApiError::new(StatusCode::CONFLICT, "BLOB_IN_USE", msg),
            E::ManifestInUse { .. } => ApiError::new(StatusCode::CONFLICT, "MANIFEST_IN_USE", msg),
            E::ConfirmationRequired(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "CONFIRMATION_REQUIRED", msg)
            }
            E::NothingToRestore { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "NOTHING_TO_RESTORE", msg)
            }
            E::ManifestPurged(_) => ApiError::new(StatusCode::GONE, "MANIFEST_UNKNOWN", msg),
            E::TagInUse { .. } => ApiError::new(StatusCode::CONFLICT, "TAG_IN_USE", msg),
            E::InvalidFilter(_) => ApiError::new(StatusCode::BAD_REQUEST, "INVALID_FILTER", msg),
            E::PlanChanged(_) => ApiError::new(StatusCode::CONFLICT, "PLAN_CHANGED", msg),
            E::Protected {
                tag,
                policy,
                pattern,
            } => ApiError::new(StatusCode::FORBIDDEN, "DENIED", msg).with_detail(json!({
                "protected": { "tag": tag, "policy": policy, "pattern": pattern }
            })),
            E::Denied { .. } => ApiError::new(StatusCode::FORBIDDEN, "DENIED", msg),
            E::DeletionDisabled => {
                ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", msg)
            }
            E::Body(_) => ApiError::new(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", msg),
            E::Meta(m) => of_meta(&m),
            E::Store(_) => ApiError::internal(&msg),
        }
    }
}

/// A catalogue error as an answer: a storage failure (507, 503), text the catalogue cannot
/// hold (400: bad input, nothing written), or an internal error.
pub(crate) fn of_meta(e: &shipshape_meta::MetaError) -> ApiError {
    if let Some(failure) = of_catalogue(e) {
        return ApiError::storage(failure);
    }
    match e {
        shipshape_meta::MetaError::Unavailable(cause) => {
            tracing::error!(error = %cause, "the catalogue database is unavailable");
            let mut api = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the registry's catalogue database did not answer; retry shortly (the registry \
                 log has the details)",
            );
            api.headers.push((header::RETRY_AFTER, "5".to_string()));
            api
        }
        shipshape_meta::MetaError::Unstorable(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "a text value holds a character the catalogue cannot store (a NUL character); \
             nothing was written",
        ),
        _ => ApiError::internal(e),
    }
}

/// The storage failure a catalogue error is, if any.
fn of_catalogue(e: &shipshape_meta::MetaError) -> Option<StorageFailure> {
    use shipshape_meta::MetaError as M;
    let kind = match e {
        M::Full(_) => StorageKind::Full,
        M::ReadOnly(_) => StorageKind::ReadOnly,
        _ => return None,
    };
    Some(StorageFailure {
        kind,
        part: StoragePart::Catalogue,
        cause: e.to_string(),
    })
}

/// The storage failure a blob store error is, if any.
fn of_store(e: &shipshape_store::StoreError) -> Option<StorageFailure> {
    use shipshape_store::StoreError as S;
    let kind = match e {
        S::Full { .. } => StorageKind::Full,
        S::ReadOnly { .. } => StorageKind::ReadOnly,
        _ => return None,
    };
    Some(StorageFailure {
        kind,
        part: StoragePart::Store,
        cause: e.to_string(),
    })
}

impl ApiError {
    /// A full (507 `STORAGE_FULL`) or read-only (503 `STORAGE_READ_ONLY`) storage. The
    /// distribution spec has no code for either; clients show the message, which says what
    /// happened and that nothing of the request was kept (a failed write is rolled back, and
    /// an upload session keeps what it had before the request).
    pub(crate) fn storage(failure: StorageFailure) -> Self {
        let (status, code, message) = match failure.kind {
            StorageKind::Full => (
                StatusCode::INSUFFICIENT_STORAGE,
                "STORAGE_FULL",
                "the registry's storage is full: nothing of this request was kept (an upload \
                 session keeps what it had before it); retry once space has been freed",
            ),
            StorageKind::ReadOnly => (
                StatusCode::SERVICE_UNAVAILABLE,
                "STORAGE_READ_ONLY",
                "the registry's storage is read-only: pulls are served, but nothing can be \
                 stored or deleted until it is writable again; nothing of this request was kept",
            ),
        };
        let mut e = ApiError::new(status, code, message);
        e.storage = Some(failure);
        e
    }

    /// A failure of the catalogue or the store: logged here with its cause, answered with a
    /// message that says where to look and nothing of the database.
    pub(crate) fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "internal server error; the registry log has the details",
        )
    }
}

impl From<shipshape_gc::GcError> for ApiError {
    fn from(e: shipshape_gc::GcError) -> Self {
        let failure = match &e {
            shipshape_gc::GcError::Meta(m) => return of_meta(m),
            shipshape_gc::GcError::Store(s) => of_store(s),
            _ => None,
        };
        if let Some(failure) = failure {
            return ApiError::storage(failure);
        }
        match e {
            shipshape_gc::GcError::Denied { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "DENIED", e.to_string())
            }
            _ => ApiError::internal(&e),
        }
    }
}

impl From<shipshape_gc::retention::RetentionError> for ApiError {
    fn from(e: shipshape_gc::retention::RetentionError) -> Self {
        use shipshape_gc::retention::RetentionError as E;
        let msg = e.to_string();
        match e {
            E::Invalid(_) => ApiError::new(StatusCode::BAD_REQUEST, "POLICY_INVALID", msg),
            E::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "POLICY_UNKNOWN", msg),
            E::RunNotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "POLICY_RUN_UNKNOWN", msg),
            E::RunActive { .. } => ApiError::new(StatusCode::CONFLICT, "POLICY_RUN_ACTIVE", msg),
            E::DeletionDisabled => {
                ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", msg)
            }
            E::Denied { .. } => ApiError::new(StatusCode::FORBIDDEN, "DENIED", msg),
            E::Meta(cause) => of_meta(&cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "errors": self.errors.iter().map(|(code, message, detail)| {
                if detail.is_null() {
                    json!({ "code": code, "message": message })
                } else {
                    json!({ "code": code, "message": message, "detail": detail })
                }
            }).collect::<Vec<_>>()
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(failure) = self.storage {
            resp.extensions_mut().insert(failure);
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}
