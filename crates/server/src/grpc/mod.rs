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

use billing_app::{Outcome, RequestContext};
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

/// The reply for an outcome: built now, or decoded from the first response.
pub(crate) fn respond<T, R: Message + Default>(
    outcome: Outcome<T>,
    build: impl FnOnce(T) -> R,
) -> Result<Response<R>, Status> {
    match outcome {
        Outcome::Done(value) => Ok(Response::new(build(value))),
        Outcome::Replayed(bytes) => R::decode(bytes.as_slice())
            .map(Response::new)
            .map_err(|error| Status::internal(format!("a stored response could not be decoded: {error}"))),
    }
}
