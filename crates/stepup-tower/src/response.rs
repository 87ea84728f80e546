//! The response types shared by the middlewares: the inner service's answer, or an answer made
//! on the spot (a rejection, over HTTP or as a gRPC status; a document).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;
use stepup_core::{AuthRejection, ResourceMetadataUrl};

pin_project! {
    /// Response body of the stepup middlewares: the inner body, or one made on the spot (a JSON
    /// rejection, the empty body of a gRPC status, a metadata document).
    pub struct ResponseBody<B> {
        #[pin]
        kind: BodyKind<B>,
    }
}

pin_project! {
    #[project = BodyKindProj]
    enum BodyKind<B> {
        Inner { #[pin] body: B },
        Own { body: Full<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    fn inner(body: B) -> Self {
        Self {
            kind: BodyKind::Inner { body },
        }
    }

    fn own(body: Bytes) -> Self {
        Self {
            kind: BodyKind::Own {
                body: Full::new(body),
            },
        }
    }

    fn rejection(body: String) -> Self {
        Self::own(Bytes::from(body))
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
            BodyKindProj::Own { body } => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Inner { body } => body.is_end_stream(),
            BodyKind::Own { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Inner { body } => body.size_hint(),
            BodyKind::Own { body } => body.size_hint(),
        }
    }
}

/// The one `503` of every stepup layer, when its policy cannot answer (it fails closed); for a
/// gRPC call, the status `UNAVAILABLE`.
pub(crate) fn temporarily_unavailable<B>(grpc: bool) -> Response<ResponseBody<B>> {
    use http::header::{CACHE_CONTROL, CONTENT_TYPE};
    use http::{HeaderValue, StatusCode};
    use stepup_core::error_body::{UNAVAILABLE_CODE, UNAVAILABLE_DESCRIPTION, error_body};
    use stepup_core::grpc::{GrpcCode, GrpcStatus};

    if grpc {
        return GrpcStatus::new(GrpcCode::Unavailable, UNAVAILABLE_DESCRIPTION)
            .with_reason(UNAVAILABLE_CODE.to_ascii_uppercase())
            .with_metadata("error", UNAVAILABLE_CODE)
            .to_response()
            .map(ResponseBody::rejection);
    }
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
            BodyKind::Own { .. } => "Own",
        };
        f.debug_tuple("ResponseBody").field(&kind).finish()
    }
}

pin_project! {
    /// Response future of the stepup middlewares.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: FutureKind<F>,
        resource_metadata: Option<ResourceMetadataUrl>,
    }
}

pin_project! {
    #[project = FutureKindProj]
    enum FutureKind<F> {
        Inner { #[pin] future: F },
        Rejected { rejection: Option<AuthRejection>, grpc: bool },
        Ready { response: Option<Response<Bytes>> },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: FutureKind::Inner { future },
            resource_metadata: None,
        }
    }

    /// A refusal, answered as a gRPC status when `grpc`, else over HTTP.
    pub(crate) fn rejected(rejection: AuthRejection, grpc: bool) -> Self {
        Self {
            kind: FutureKind::Rejected {
                rejection: Some(rejection),
                grpc,
            },
            resource_metadata: None,
        }
    }

    /// An answer made on the spot.
    pub(crate) fn ready(response: Response<Bytes>) -> Self {
        Self {
            kind: FutureKind::Ready {
                response: Some(response),
            },
            resource_metadata: None,
        }
    }

    /// Adds `resource_metadata="<url>"` to every Bearer challenge of the response, whoever
    /// made it.
    pub(crate) fn with_resource_metadata(mut self, url: Option<ResourceMetadataUrl>) -> Self {
        self.resource_metadata = url;
        self
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.kind.project() {
            FutureKindProj::Inner { future } => match future.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Ready(Ok(response)) => response.map(ResponseBody::inner),
            },
            FutureKindProj::Rejected { rejection, grpc } => {
                let rejection = rejection
                    .take()
                    .expect("ResponseFuture polled after completion");
                let response = if *grpc {
                    rejection.to_grpc_response()
                } else {
                    rejection.to_response()
                };
                response.map(ResponseBody::rejection)
            }
            FutureKindProj::Ready { response } => response
                .take()
                .expect("ResponseFuture polled after completion")
                .map(ResponseBody::own),
        };
        if let Some(url) = this.resource_metadata {
            url.add_to_headers(response.headers_mut());
        }
        Poll::Ready(Ok(response))
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
