//! The one table from every subsystem's error to what a client sees: an HTTP status, a
//! stable snake_case code and a human message, rendered as `{"error":{"code","message"}}`.
//! Each service has its own error enum with a stable `code()`; only this file decides the
//! status. Internal failures are logged with a reference and never leak their details to the
//! client (nor into a job's recorded error, which the member sees too).

use hyper::StatusCode;

use crate::auth::{AccountError, AuthError};
use crate::blobs::BlobError;
use crate::documents::DocumentError;
use crate::engine::DecodeError;
use crate::images::ImageError;
use crate::jobs::JobFailure;
use crate::retention::SweepError;
use crate::store::StoreError;
use crate::vault::VaultError;

/// An error on its way to a client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (throttled and busy answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in (POST /api/v1/auth/login) or send an API key as `Authorization: Bearer <key>`",
        )
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is larger than the limit of {} MiB",
                limit / (1 << 20)
            ),
        )
    }

    /// A failure that is our fault: logged in full, shown as a reference only.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        let reference = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(%reference, "{context}: {err}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("internal error (reference {reference}); the server log has details"),
        )
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code, "message": self.message}})
    }

    /// The same code and message with the status the table gives for `e`.
    fn with(status: StatusCode, code: &'static str, e: &impl std::fmt::Display) -> Self {
        Self::new(status, code, e.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

// ---------------------------------------------------------------------------------------
// The table: one `From` per subsystem error, each arm a status.
// ---------------------------------------------------------------------------------------

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            other => ApiError::internal("store", other),
        }
    }
}

impl From<crate::jobs::EnqueueError> for ApiError {
    fn from(e: crate::jobs::EnqueueError) -> Self {
        use crate::jobs::EnqueueError as E;
        let code = e.code();
        match e {
            E::InsufficientCredits { .. } => ApiError::with(StatusCode::PAYMENT_REQUIRED, code, &e),
            E::QueueFull { .. } => ApiError {
                retry_after: Some(30),
                ..ApiError::with(StatusCode::TOO_MANY_REQUESTS, code, &e)
            },
            E::NoAccount => ApiError::not_found("member"),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::billing::BillingError> for ApiError {
    fn from(e: crate::billing::BillingError) -> Self {
        use crate::billing::BillingError as B;
        let code = e.code();
        match e {
            B::InsufficientCredits { .. } => ApiError::with(StatusCode::PAYMENT_REQUIRED, code, &e),
            B::Invalid(_) => ApiError::with(StatusCode::BAD_REQUEST, code, &e),
            B::NotFound(what) => ApiError::not_found(what),
            B::Store(e) => e.into(),
        }
    }
}

impl From<crate::admin::AdminError> for ApiError {
    fn from(e: crate::admin::AdminError) -> Self {
        use crate::admin::AdminError as A;
        let code = e.code();
        match e {
            A::Invalid(_) => ApiError::with(StatusCode::BAD_REQUEST, code, &e),
            A::NotFound(what) => ApiError::not_found(what),
            A::Billing(e) => e.into(),
            A::Image(e) => e.into(),
            A::Mail(e) => e.into(),
            A::Store(e) => e.into(),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "blob_missing",
                "the stored file for this resource is missing",
            ),
            BlobError::Integrity(_) => {
                tracing::error!("blob integrity check failed: {e}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "blob_integrity",
                    "the stored file failed its integrity check (damaged or tampered); restore it from a backup",
                )
            }
            other => ApiError::internal("blobs", other),
        }
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Store(e) => e.into(),
            VaultError::Blob(e) => e.into(),
            other => ApiError::internal("vault", other),
        }
    }
}

impl From<DecodeError> for ApiError {
    /// An upload that cannot be accepted as an image.
    fn from(e: DecodeError) -> Self {
        let status = match e {
            DecodeError::Empty => StatusCode::BAD_REQUEST,
            DecodeError::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            DecodeError::TooManyPixels { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            DecodeError::Truncated | DecodeError::Corrupt(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::with(status, e.code(), &e)
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::NotFound(what) => ApiError::not_found(what),
            ImageError::Busy { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::with(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e)
            },
            ImageError::ModelsNotReady => {
                ApiError::with(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e)
            }
            ImageError::Decode(e) => e.into(),
            ImageError::Vault(e) => e.into(),
            ImageError::Store(e) => e.into(),
            ImageError::Enqueue(e) => e.into(),
            ImageError::StorageFull { .. } => ApiError {
                retry_after: Some(3600),
                ..ApiError::with(StatusCode::TOO_MANY_REQUESTS, e.code(), &e)
            },
            ImageError::Blob(e) => e.into(),
            ImageError::Internal { context, message } => ApiError::internal(context, message),
        }
    }
}

impl From<DocumentError> for ApiError {
    fn from(e: DocumentError) -> Self {
        use DocumentError as D;
        let code = e.code();
        match e {
            D::NotFound(what) => ApiError::not_found(what),
            D::StaleRevision(_) | D::NothingToUndo | D::NothingToRedo => {
                ApiError::with(StatusCode::CONFLICT, code, &e)
            }
            D::InvalidOp(_) | D::InvalidRevision => {
                ApiError::with(StatusCode::BAD_REQUEST, code, &e)
            }
            D::ModelsNotReady(_) => ApiError::with(StatusCode::SERVICE_UNAVAILABLE, code, &e),
            D::NothingToSplit(_)
            | D::Split(_)
            | D::UnreadableUpload(_)
            | D::UnreadableImport { .. }
            | D::EmptyDocument => ApiError::with(StatusCode::UNPROCESSABLE_ENTITY, code, &e),
            D::UnsupportedImport => ApiError::with(StatusCode::UNSUPPORTED_MEDIA_TYPE, code, &e),
            D::CanvasTooLarge { .. } => ApiError::with(StatusCode::PAYLOAD_TOO_LARGE, code, &e),
            D::Image(e) => e.into(),
            D::Vault(e) => e.into(),
            D::Store(e) => e.into(),
            D::Enqueue(e) => e.into(),
            D::Blob(e) => e.into(),
            D::Internal { context, message } => ApiError::internal(context, message),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let code = e.code();
        match e {
            AuthError::InvalidCredentials => ApiError::with(StatusCode::UNAUTHORIZED, code, &e),
            AuthError::RateLimited { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::with(StatusCode::TOO_MANY_REQUESTS, code, &e)
            },
            AuthError::WrongPassword
            | AuthError::Suspended
            | AuthError::RegistrationClosed
            | AuthError::InviteRequired => ApiError::with(StatusCode::FORBIDDEN, code, &e),
            AuthError::AgeRequired(_) => ApiError::with(StatusCode::UNPROCESSABLE_ENTITY, code, &e),
            AuthError::InvalidToken => ApiError::with(StatusCode::BAD_REQUEST, code, &e),
            AuthError::Account(e) => e.into(),
            AuthError::Mail(e) => ApiError::internal("mail", e),
            AuthError::InvalidPassword(_) => ApiError::with(StatusCode::BAD_REQUEST, code, &e),
            AuthError::InvalidName(_) => ApiError::with(StatusCode::BAD_REQUEST, code, &e),
            AuthError::NotFound(what) => ApiError::not_found(what),
            AuthError::Store(e) => e.into(),
            AuthError::Internal { context, message } => ApiError::internal(context, message),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        let code = e.code();
        match e {
            AccountError::Invalid(_) => ApiError::with(StatusCode::BAD_REQUEST, code, &e),
            AccountError::Conflict(_) => ApiError::with(StatusCode::CONFLICT, code, &e),
            AccountError::Store(e) => e.into(),
            AccountError::Blob(e) => e.into(),
            AccountError::Internal(m) => ApiError::internal("accounts", m),
        }
    }
}

impl From<crate::mail::MailError> for ApiError {
    fn from(e: crate::mail::MailError) -> Self {
        match e {
            crate::mail::MailError::Store(e) => e.into(),
            other => ApiError::internal("mail", other),
        }
    }
}

impl From<crate::privacy::PrivacyError> for ApiError {
    fn from(e: crate::privacy::PrivacyError) -> Self {
        use crate::privacy::PrivacyError as P;
        let code = e.code();
        match e {
            P::Invalid(_) => ApiError::with(StatusCode::BAD_REQUEST, code, &e),
            P::NotFound(what) => ApiError::not_found(what),
            P::Store(e) => e.into(),
            P::Mail(e) => e.into(),
            P::Vault(e) => e.into(),
            P::Enqueue(e) => e.into(),
            P::Page(m) => ApiError::internal("privacy page", m),
        }
    }
}

impl From<SweepError> for ApiError {
    fn from(e: SweepError) -> Self {
        match e {
            SweepError::Image(e) => e.into(),
            SweepError::Document(e) => e.into(),
            SweepError::Store(e) => e.into(),
            SweepError::Mail(e) => e.into(),
            SweepError::Keys(e) => ApiError::internal("sweep", e),
            SweepError::Task(m) => ApiError::internal("sweep", m),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal("blocking task", e)
    }
}

// A job's recorded error is what its owner sees: the same code and message as the API
// would give, so internal details stay in the log there too.

impl From<ImageError> for JobFailure {
    fn from(e: ImageError) -> Self {
        let api = ApiError::from(e);
        JobFailure::abort(api.code, api.message)
    }
}

impl From<DocumentError> for JobFailure {
    fn from(e: DocumentError) -> Self {
        let api = ApiError::from(e);
        JobFailure::abort(api.code, api.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_map_to_their_statuses() {
        let cases = [
            (DecodeError::Empty, 400, "empty_upload"),
            (DecodeError::Unsupported, 415, "unsupported_media_type"),
            (DecodeError::Truncated, 422, "truncated_image"),
            (
                DecodeError::TooManyPixels {
                    width: 100_000,
                    height: 100_000,
                    max_pixels: 64_000_000,
                    max_side: 30_000,
                },
                413,
                "image_too_large",
            ),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.status.as_u16(), api.code), (status, code));
        }
    }

    #[test]
    fn internal_errors_hide_their_details() {
        let api = ApiError::from(DocumentError::internal("export", "disk path /secret"));
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!api.message.contains("/secret"), "{}", api.message);
        let job = JobFailure::from(DocumentError::internal("export", "disk path /secret"));
        assert!(matches!(job, JobFailure::Abort { message, .. } if !message.contains("/secret")));
        let api = ApiError::from(DocumentError::StaleRevision(7));
        assert_eq!((api.status.as_u16(), api.code), (409, "stale_revision"));
    }
}
