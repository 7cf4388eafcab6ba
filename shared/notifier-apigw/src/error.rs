//! From `PostToConnection` and `DeleteConnection` SDK errors to [`NotifyError`].

use aws_sdk_apigatewaymanagement::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewaymanagement::operation::delete_connection::DeleteConnectionError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use rnd_domain::ports::NotifyError;

/// Error codes that mean "slow down" besides `LimitExceededException`.
const THROTTLING_CODES: [&str; 4] = [
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "LimitExceededException",
];

/// What a failed `PostToConnection` means for the caller:
///
/// | failure | becomes |
/// |---|---|
/// | `GoneException`, HTTP 410 | `Gone` |
/// | `LimitExceededException`, throttling codes, HTTP 429 | `Throttled` |
/// | HTTP 5xx, timeout, dispatch (connection) failure, unreadable response | `Unavailable` |
/// | anything else: 413 `PayloadTooLargeException`, 403 `ForbiddenException`, other 4xx, a request that cannot be built | `Rejected` |
pub(crate) fn classify(err: SdkError<PostToConnectionError>) -> NotifyError {
    by_kind(err, |service| match service {
        PostToConnectionError::GoneException(_) => Some(Named::Gone),
        PostToConnectionError::LimitExceededException(_) => Some(Named::Throttled),
        PostToConnectionError::PayloadTooLargeException(_)
        | PostToConnectionError::ForbiddenException(_) => Some(Named::Rejected),
        _ => None,
    })
}

/// What a failed `DeleteConnection` means, as for a post: `GoneException` (410) is `Gone`
/// (already closed), throttling is `Throttled`, 5xx and transport failures are `Unavailable`,
/// the rest `Rejected`.
pub(crate) fn classify_delete(err: SdkError<DeleteConnectionError>) -> NotifyError {
    by_kind(err, |service| match service {
        DeleteConnectionError::GoneException(_) => Some(Named::Gone),
        DeleteConnectionError::LimitExceededException(_) => Some(Named::Throttled),
        DeleteConnectionError::ForbiddenException(_) => Some(Named::Rejected),
        _ => None,
    })
}

/// What an operation's modelled error says, where the model names it.
enum Named {
    Gone,
    Throttled,
    Rejected,
}

/// Classifies `err`: a modelled error `named` knows by its name, any other service error by
/// its code and status, transport failures as `Unavailable`.
fn by_kind<E>(err: SdkError<E>, named: impl FnOnce(&E) -> Option<Named>) -> NotifyError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    match &err {
        SdkError::ServiceError(service) => match named(service.err()) {
            Some(Named::Gone) => NotifyError::Gone,
            Some(Named::Throttled) => NotifyError::Throttled,
            Some(Named::Rejected) => NotifyError::Rejected(err.into()),
            None => {
                let code = service.err().code().map(str::to_owned);
                by_status(code.as_deref(), status, err)
            }
        },
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            NotifyError::Unavailable(err.into())
        }
        _ => by_status(None, status, err),
    }
}

/// An error the model does not name, classified by its code and HTTP status.
fn by_status<E: std::error::Error + Send + Sync + 'static>(
    code: Option<&str>,
    status: Option<u16>,
    err: SdkError<E>,
) -> NotifyError {
    match (code, status) {
        (_, Some(410)) => NotifyError::Gone,
        (Some(code), _) if THROTTLING_CODES.contains(&code) => NotifyError::Throttled,
        (_, Some(429)) => NotifyError::Throttled,
        (_, Some(500..=599)) => NotifyError::Unavailable(err.into()),
        _ => NotifyError::Rejected(err.into()),
    }
}
