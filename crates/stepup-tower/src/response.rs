//! The response types shared by both middlewares: the inner service's answer, or a rejection
//! made on the spot.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;
use stepup_core::AuthRejection;

pin_project! {
    /// Response body of the stepup middlewares: the inner body, or a JSON rejection.
    pub struct ResponseBody<B> {
        #[pin]
        kind: BodyKind<B>,
    }
}

pin_project! {
    #[project = BodyKindProj]
    enum BodyKind<B> {
        Inner { #[pin] body: B },
        Rejection { body: Full<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    fn inner(body: B) -> Self {
        Self {
            kind: BodyKind::Inner { body },
        }
    }

    fn rejection(body: String) -> Self {
        Self {
            kind: BodyKind::Rejection {
                body: Full::new(Bytes::from(body)),
            },
        }
    }

    /// The inner service's body, for the middlewares of this crate.
    pub(crate) fn from_inner(body: B) -> Self {
        Self::inner(body)
    }

    /// A rejection made on the spot by a middleware of this crate.
    pub(crate) fn from_rejection(body: String) -> Self {
        Self::rejection(body)
    }
}

impl<B: Body<Data = Bytes>> Body for ResponseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project().kind.project() {
            BodyKindProj::Inner { body } => body.poll_frame(cx),
            BodyKindProj::Rejection { body } => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Inner { body } => body.is_end_stream(),
            BodyKind::Rejection { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Inner { body } => body.size_hint(),
            BodyKind::Rejection { body } => body.size_hint(),
        }
    }
}

/// The one `503` of every stepup layer, when its policy cannot answer (it fails closed).
pub(crate) fn temporarily_unavailable<B>() -> Response<ResponseBody<B>> {
    use http::header::{CACHE_CONTROL, CONTENT_TYPE};
    use http::{HeaderValue, StatusCode};
    use stepup_core::error_body::{UNAVAILABLE_CODE, UNAVAILABLE_DESCRIPTION, error_body};

    let body = error_body(UNAVAILABLE_CODE, UNAVAILABLE_DESCRIPTION);
    let mut response = Response::new(ResponseBody::rejection(body));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            BodyKind::Inner { .. } => "Inner",
            BodyKind::Rejection { .. } => "Rejection",
        };
        f.debug_tuple("ResponseBody").field(&kind).finish()
    }
}

pin_project! {
    /// Response future of the stepup middlewares.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: FutureKind<F>,
    }
}

pin_project! {
    #[project = FutureKindProj]
    enum FutureKind<F> {
        Inner { #[pin] future: F },
        Rejected { rejection: Option<AuthRejection> },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: FutureKind::Inner { future },
        }
    }

    pub(crate) fn rejected(rejection: AuthRejection) -> Self {
        Self {
            kind: FutureKind::Rejected {
                rejection: Some(rejection),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            FutureKindProj::Inner { future } => future
                .poll(cx)
                .map_ok(|response| response.map(ResponseBody::inner)),
            FutureKindProj::Rejected { rejection } => {
                let rejection = rejection
                    .take()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(rejection.to_response().map(ResponseBody::rejection)))
            }
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
