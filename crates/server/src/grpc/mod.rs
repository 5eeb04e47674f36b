//! gRPC services: thin adapters that convert, call the app, and map errors.

pub mod catalog;
pub mod checkout;
pub mod event;
pub mod invoice;
pub mod operations;
pub mod payment_method;
pub mod status;
pub mod subscription;
pub mod test_clock;

use billing_app::{AppError, Outcome, RequestContext};
use billing_domain::Reason;
use billing_domain::access::Caller;
use prost::Message;
use tonic::{Request, Response, Status};

/// The caller the gate authenticated for this request.
pub(crate) fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| status::refused(Reason::AuthTokenMissing, "the request was not authenticated"))
}

/// The idempotency context of a mutating request: the caller's subject (keys
/// are scoped to it), its key and a digest of the whole request, so a retry
/// can be told from a different request.
pub(crate) fn context<M: Message>(caller: &Caller, request_id: &str, request: &M) -> RequestContext {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(request.encode_to_vec());
    RequestContext {
        caller: caller.subject().to_owned(),
        request_id: request_id.to_owned(),
        request_hash: hex::encode(digest),
    }
}

/// How a mutating use case stores its first response: the reply's bytes.
pub(crate) type Encode<T> = Box<dyn Fn(&T) -> Vec<u8> + Send + Sync>;

/// Runs a mutating use case under its request's idempotency key and answers
/// with `build`'s reply: built now (and stored, through the `Encode` handed
/// to `run`, for retries with the same key), or decoded from the response
/// an earlier run stored. Every mutating handler answers through here, so
/// its reply is built and stored by the same function.
pub(crate) async fn idempotent<T, R, Fut>(
    build: fn(T) -> R,
    run: impl FnOnce(Encode<T>) -> Fut,
) -> Result<Response<R>, Status>
where
    T: Clone + 'static,
    R: Message + Default + 'static,
    Fut: Future<Output = Result<Outcome<T>, AppError>>,
{
    let encode: Encode<T> = Box::new(move |value: &T| build(value.clone()).encode_to_vec());
    match run(encode).await.map_err(status::to_status)? {
        Outcome::Done(value) => Ok(Response::new(build(value))),
        Outcome::Replayed(bytes) => R::decode(bytes.as_slice())
            .map(Response::new)
            .map_err(|error| Status::internal(format!("a stored response could not be decoded: {error}"))),
    }
}
