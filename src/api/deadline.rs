//! A deadline on the whole request body. `RequestBodyTimeoutLayer` cuts a body
//! that stalls, but a client sending a byte every few seconds never stalls: it
//! held its request until the 30 s request timeout, whose answer is a 503,
//! the server's fault. With this deadline it gets 408, the client's.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

/// A request body must have arrived whole this long after its headers,
/// leaving the handler time before the request timeout.
pub const BODY_DEADLINE: Duration = Duration::from_secs(20);

/// The body was still arriving at [`BODY_DEADLINE`].
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", BODY_DEADLINE.as_secs())]
pub struct BodyDeadline;

/// `inner`, failing with [`BodyDeadline`] once `deadline` passes.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        // Polled first so the timer wakes the task even while no byte comes.
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyDeadline))));
        }
        Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: puts the deadline on every request that has a body (a GET
/// without one costs no timer).
pub async fn limit_body_time(request: Request) -> Request {
    if request.body().is_end_stream() {
        return request;
    }
    request.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(BODY_DEADLINE)),
        })
    })
}
