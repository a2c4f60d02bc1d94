//! `PageProblem`: the one place a failed page becomes the client's answer — an HTML error
//! page with a status and a short message, as the monolith renders it.
//!
//! An error the API answered keeps its status and message (the monolith's page shows the same
//! failure the same way); an API that could not be reached is a 502 page, logged with the
//! detail the client never sees.

use axum::http::{Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};

use super::backend::BackendError;
use super::layout::error_page;

/// A failed page: its status and the message shown.
#[derive(Debug)]
pub(crate) struct PageProblem {
    status: StatusCode,
    message: String,
}

impl PageProblem {
    /// A failure with this status and message.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> PageProblem {
        PageProblem {
            status,
            message: message.into(),
        }
    }

    /// 404 with the page's own wording.
    pub(crate) fn not_found(message: impl Into<String>) -> PageProblem {
        PageProblem::new(StatusCode::NOT_FOUND, message)
    }

    /// The API's 404 as the page's own `message`; any other failure as it is.
    pub(crate) fn missing(err: BackendError, message: impl Into<String>) -> PageProblem {
        if err.is_not_found() {
            PageProblem::not_found(message)
        } else {
            err.into()
        }
    }
}

impl From<BackendError> for PageProblem {
    fn from(err: BackendError) -> PageProblem {
        match err {
            BackendError::Answered { status, message } => PageProblem::new(status, message),
            BackendError::Unavailable { .. } => {
                tracing::error!(error = %err, "a page's data is unavailable");
                PageProblem::new(
                    StatusCode::BAD_GATEWAY,
                    "The shop cannot show this page right now; please try again in a moment.",
                )
            }
        }
    }
}

impl IntoResponse for PageProblem {
    fn into_response(self) -> Response {
        (self.status, Html(error_page(self.status, &self.message))).into_response()
    }
}

/// The fallback for paths no page matches (the monolith's HTML 404).
pub(crate) async fn not_found(uri: Uri) -> Response {
    PageProblem::not_found(format!("no page at {}", uri.path())).into_response()
}

/// The fallback for a page asked with a method it does not take (axum adds `Allow`).
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    PageProblem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
    .into_response()
}
