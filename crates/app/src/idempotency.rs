//! Idempotent requests, by Stripe's rules: the same `request_id` with the
//! same request returns the first outcome, errors included; with a different
//! request it is `IDEMPOTENCY_KEY_REUSED`. The key is claimed inside the
//! request's own transaction and its outcome stored there too, so an effect
//! and its record are kept together or not at all. A request rejected by
//! validation stores nothing.

use billing_domain::{DomainError, FieldViolation, Reason, Refusal};
use billing_storage::{Claim, IdempotencyKey, Store, StoredOutcome, Tx};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::AppError;

/// Longest accepted `request_id`.
pub const MAX_REQUEST_ID_LEN: usize = 255;
/// How long a duplicate waits for the first request with its key to finish
/// before answering `IDEMPOTENCY_KEY_IN_USE`.
pub const KEY_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The longest a first attempt can still be running after it committed
/// (its charge: provider timeouts, retries and their waits), on the service
/// clock. Past it, a repeat gets the answer as committed instead of
/// `IDEMPOTENCY_KEY_IN_USE`.
pub const FIRST_ATTEMPT_LIMIT: chrono::Duration = chrono::Duration::minutes(2);

/// Who sent a mutating request, and with which key.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    /// The authenticated caller; keys are scoped per caller.
    pub caller: String,
    /// The idempotency key; empty = none (the request is not deduplicated).
    pub request_id: String,
    /// A digest of the request body, to tell a retry from a different request.
    pub request_hash: String,
}

/// What a mutating use case returns.
#[derive(Debug)]
pub enum Outcome<T> {
    /// It ran now.
    Done(T),
    /// An earlier request with the same key ran; this is its encoded response.
    Replayed(Vec<u8>),
}

impl<T> Outcome<T> {
    /// The same outcome with its value (not a replayed response) mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Done(value) => Outcome::Done(f(value)),
            Outcome::Replayed(bytes) => Outcome::Replayed(bytes),
        }
    }

    /// The value, when it ran now.
    pub fn done(&self) -> Option<&T> {
        match self {
            Outcome::Done(value) => Some(value),
            Outcome::Replayed(_) => None,
        }
    }
}

/// Runs `change` in one transaction under the request's key: the first
/// time it runs and its outcome is stored with it; a repeat gets that
/// outcome. Every mutating use case that needs nothing between its change
/// and its answer goes through here.
pub(crate) async fn run<T>(
    store: &Store,
    context: &RequestContext,
    operation: &str,
    now: DateTime<Utc>,
    encode: impl FnOnce(&T) -> Vec<u8>,
    change: impl AsyncFnOnce(&Tx) -> Result<T, AppError>,
) -> Result<Outcome<T>, AppError> {
    let (tx, key) = match start(store, context, operation, now).await? {
        Start::Replay(response) => return Ok(Outcome::Replayed(response)),
        Start::Run(tx, key) => (tx, key),
    };
    let result = change(&tx).await;
    finish(store, tx, key, result, encode, now).await
}

/// Where a request goes after its key was looked at.
pub(crate) enum Start {
    Run(Tx, Option<IdempotencyKey>),
    Replay(Vec<u8>),
}

#[derive(Serialize, Deserialize)]
struct StoredError {
    reason: String,
    message: String,
    violations: Vec<StoredViolation>,
}

#[derive(Serialize, Deserialize)]
struct StoredViolation {
    field: String,
    reason: String,
    description: String,
}

/// Opens the request's transaction and claims its key.
pub(crate) async fn start(
    store: &Store,
    context: &RequestContext,
    operation: &str,
    now: DateTime<Utc>,
) -> Result<Start, AppError> {
    if context.request_id.len() > MAX_REQUEST_ID_LEN {
        return Err(DomainError::field(
            "request_id",
            Reason::FieldInvalid,
            format!("must be at most {MAX_REQUEST_ID_LEN} characters"),
        )
        .into());
    }
    let tx = store.begin().await?;
    if context.request_id.is_empty() {
        return Ok(Start::Run(tx, None));
    }
    let key = IdempotencyKey {
        caller: context.caller.clone(),
        request_id: context.request_id.clone(),
        operation: operation.to_owned(),
        request_hash: context.request_hash.clone(),
    };
    match tx.idempotency().claim(&key, now, KEY_WAIT).await? {
        Claim::Claimed => Ok(Start::Run(tx, Some(key))),
        Claim::InUse => Err(key_in_use(&key.request_id)),
        Claim::Existing(outcome) => {
            if outcome.operation != key.operation || outcome.request_hash != key.request_hash {
                return Err(DomainError::field(
                    "request_id",
                    Reason::IdempotencyKeyReused,
                    format!(
                        "request_id {:?} was used for a different request ({}); use a new key",
                        key.request_id, outcome.operation
                    ),
                )
                .into());
            }
            if outcome.response.is_none() && outcome.error.is_none() {
                // The first request committed its effect and is collecting
                // money outside any transaction. Past the longest it can
                // run, it died: its answer as committed is the outcome (the
                // job settles the charge). Until then, wait for it.
                if let Some(provisional) = outcome.provisional_response
                    && now - outcome.create_time >= FIRST_ATTEMPT_LIMIT
                {
                    return Ok(Start::Replay(provisional));
                }
                drop(tx);
                return wait_for_outcome(store, &key).await;
            }
            replay(outcome)
        }
    }
}

/// The first request's answer, as a replay.
fn replay(outcome: StoredOutcome) -> Result<Start, AppError> {
    if let Some(response) = outcome.response {
        return Ok(Start::Replay(response));
    }
    match outcome.error {
        Some(error) => Err(decode_error(&error)),
        None => Err(AppError::fault("no outcome to replay")),
    }
}

/// Polls (holding no transaction) until the key's outcome is recorded, for
/// at most [`KEY_WAIT`]; then the key is in use.
async fn wait_for_outcome(store: &Store, key: &IdempotencyKey) -> Result<Start, AppError> {
    let deadline = tokio::time::Instant::now() + KEY_WAIT;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if let Some(outcome) = store.idempotency().find(&key.caller, &key.request_id).await?
            && (outcome.response.is_some() || outcome.error.is_some())
        {
            return replay(outcome);
        }
    }
    Err(key_in_use(&key.request_id))
}

fn key_in_use(request_id: &str) -> AppError {
    DomainError::new(
        Reason::IdempotencyKeyInUse,
        format!("a request with request_id {request_id:?} is still running; retry shortly"),
    )
    .into()
}

/// Commits a success with its encoded response, or records a rule's refusal
/// (in a transaction of its own, since the effect's transaction is rolled
/// back).
pub(crate) async fn finish<T>(
    store: &Store,
    tx: Tx,
    key: Option<IdempotencyKey>,
    result: Result<T, AppError>,
    encode: impl FnOnce(&T) -> Vec<u8>,
    now: DateTime<Utc>,
) -> Result<Outcome<T>, AppError> {
    match result {
        Ok(value) => {
            if let Some(key) = &key {
                tx.idempotency().complete(key, Some(encode(&value)), None).await?;
            }
            tx.commit().await?;
            Ok(Outcome::Done(value))
        }
        Err(error) => {
            drop(tx);
            if let Some(key) = &key
                && error.is_final()
            {
                let record = store.begin().await?;
                if record.idempotency().claim(key, now, KEY_WAIT).await? == Claim::Claimed {
                    record
                        .idempotency()
                        .complete(key, None, Some(encode_error(&error)))
                        .await?;
                    record.commit().await?;
                }
            }
            Err(error)
        }
    }
}

pub(crate) fn encode_error(error: &AppError) -> String {
    let stored = StoredError {
        reason: error.reason().as_str().to_owned(),
        message: error.client_message(),
        violations: error
            .violations()
            .iter()
            .map(|violation| StoredViolation {
                field: violation.field.clone(),
                reason: violation.reason.as_str().to_owned(),
                description: violation.description.clone(),
            })
            .collect(),
    };
    serde_json::to_string(&stored).unwrap_or_default()
}

fn decode_error(text: &str) -> AppError {
    let Ok(stored) = serde_json::from_str::<StoredError>(text) else {
        return AppError::fault("a stored outcome could not be read");
    };
    let reason = Reason::from_text(&stored.reason).unwrap_or(Reason::Internal);
    let violations: Vec<FieldViolation> = stored
        .violations
        .into_iter()
        .map(|violation| {
            FieldViolation::new(
                violation.field,
                Reason::from_text(&violation.reason).unwrap_or(reason),
                violation.description,
            )
        })
        .collect();
    let error = DomainError::from_violations(violations).unwrap_or_else(|| DomainError::new(reason, stored.message));
    if reason == Reason::PaymentDeclined {
        // The provider's refusal, as it was answered the first time.
        return AppError::Refused(Refusal::restored(error.reason(), error.message()));
    }
    error.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_errors_decode_to_the_same_error() {
        let state = DomainError::new(Reason::AlreadySubscribed, "already");
        let AppError::Rule(decoded) = decode_error(&encode_error(&state.clone().into())) else {
            panic!("not a rule's refusal");
        };
        assert_eq!(decoded, state);
        let field = DomainError::field("currency_code", Reason::PriceNotFoundForCurrency, "no EUR");
        let AppError::Rule(decoded) = decode_error(&encode_error(&field.clone().into())) else {
            panic!("not a rule's refusal");
        };
        assert_eq!(decoded, field);
        let declined = Refusal::declined("card_declined", "Your card was declined.", "nothing was bought");
        let AppError::Refused(decoded) = decode_error(&encode_error(&declined.clone().into())) else {
            panic!("not the provider's refusal");
        };
        assert_eq!(decoded.message(), declined.message());
        assert_eq!(decoded.reason(), Reason::PaymentDeclined);
    }
}
