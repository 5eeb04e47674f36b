//! Model-based, at the RPC level: random sequences of requests (cancel at
//! the period end, cancel now, reactivate, plan changes up and down, time
//! passing with the worker's renewals, scheduled changes and expiries)
//! against a real server, each answer compared with a small reference model
//! of a subscription's life: accepted or refused (and the reason), state,
//! plan, scheduled change, period end, expiry, and what the business is
//! entitled to. Proptest shrinks a failing sequence to a short one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_proto::v1 as pb;
use billing_tests::{
    Backend, TestApp, attach_card, buy_offering, get_subscription, provision_business, reason, spawn_manual_app,
    timestamp,
};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const START: &str = "2026-03-10T09:00:00Z";
/// The two monthly plans of the package family: Plus is the cheaper.
const PRO: &str = "pro-monthly";
const PLUS: &str = "plus-monthly";

#[derive(Clone, Debug)]
enum Command {
    CancelAtPeriodEnd,
    CancelNow,
    Reactivate,
    ChangeTo(&'static str),
    Wait { hours: i64 },
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::CancelAtPeriodEnd),
        Just(Command::CancelNow),
        Just(Command::Reactivate),
        Just(Command::ChangeTo(PRO)),
        Just(Command::ChangeTo(PLUS)),
        (1_i64..1_500).prop_map(|hours| Command::Wait { hours }),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Running,
    Canceled { until: DateTime<Utc> },
    Ended { at: DateTime<Utc> },
}

/// What the subscription should be.
#[derive(Debug)]
struct Model {
    life: Life,
    plan: &'static str,
    /// A downgrade waiting for the period end.
    scheduled: Option<&'static str>,
    /// The 10th of a month, midnight UTC.
    period_end: DateTime<Utc>,
}

impl Model {
    fn next_month(end: DateTime<Utc>) -> DateTime<Utc> {
        let (year, month) = if end.month() == 12 {
            (end.year() + 1, 1)
        } else {
            (end.year(), end.month() + 1)
        };
        Utc.with_ymd_and_hms(year, month, 10, 0, 0, 0).unwrap()
    }

    /// Time passes to `now`: renewals (a scheduled change first) while
    /// running, expiry when due.
    fn pass(&mut self, now: DateTime<Utc>) {
        loop {
            match self.life {
                Life::Running if self.period_end <= now => {
                    self.period_end = Self::next_month(self.period_end);
                    if let Some(plan) = self.scheduled.take() {
                        self.plan = plan;
                    }
                }
                Life::Canceled { until } if until <= now => self.life = Life::Ended { at: until },
                _ => return,
            }
        }
    }

    /// The answer expected for `command` at `now` (a refusal's reason, or
    /// `None` for OK), applying it to the model when accepted.
    fn apply(&mut self, command: &Command, now: DateTime<Utc>) -> Option<&'static str> {
        match (command, self.life) {
            (Command::Wait { .. }, _) => None,
            (_, Life::Ended { .. }) => Some("SUBSCRIPTION_NOT_ACTIVE"),
            (Command::CancelAtPeriodEnd, Life::Running) => {
                self.life = Life::Canceled { until: self.period_end };
                self.scheduled = None;
                None
            }
            (Command::CancelAtPeriodEnd, Life::Canceled { .. }) => None,
            (Command::CancelNow, _) => {
                self.life = Life::Ended { at: now };
                self.scheduled = None;
                None
            }
            (Command::Reactivate, Life::Running) => None,
            (Command::Reactivate, Life::Canceled { .. }) => {
                self.life = Life::Running;
                None
            }
            (Command::ChangeTo(_), Life::Canceled { .. }) => Some("SUBSCRIPTION_NOT_ACTIVE"),
            (Command::ChangeTo(target), Life::Running) if *target == self.plan => {
                if self.scheduled.take().is_some() {
                    None
                } else {
                    Some("SAME_PLAN")
                }
            }
            (Command::ChangeTo(target), Life::Running) if *target == PRO => {
                // An upgrade applies now (its proration is charged and paid).
                self.plan = PRO;
                self.scheduled = None;
                None
            }
            (Command::ChangeTo(target), Life::Running) => {
                self.scheduled = Some(target);
                None
            }
        }
    }
}

async fn send(app: &TestApp, subscription_id: &str, serial: usize, command: &Command) -> Result<(), tonic::Status> {
    let mut client = app.subscriptions();
    let request_id = format!("model-{serial}");
    match command {
        Command::CancelAtPeriodEnd | Command::CancelNow => client
            .cancel(pb::CancelRequest {
                request_id,
                subscription_id: subscription_id.into(),
                timing: if matches!(command, Command::CancelNow) {
                    pb::CancelTiming::Immediate
                } else {
                    pb::CancelTiming::Unspecified
                }
                .into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Command::Reactivate => client
            .reactivate(pb::ReactivateRequest {
                request_id,
                subscription_id: subscription_id.into(),
                etag: String::new(),
            })
            .await
            .map(drop),
        Command::ChangeTo(offering) => client
            .change_plan(pb::ChangePlanRequest {
                request_id,
                subscription_id: subscription_id.into(),
                offering_code: (*offering).into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Command::Wait { .. } => Ok(()),
    }
}

async fn website(app: &TestApp) -> pb::CheckEntitlementResponse {
    app.subscriptions()
        .check_entitlement(pb::CheckEntitlementRequest {
            business_id: "biz-1".into(),
            product_code: "website".into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn agrees_with_the_model(backend: Backend, commands: Vec<Command>) -> Result<(), TestCaseError> {
    let app = spawn_manual_app(backend, START).await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let bought = buy_offering(&app, "biz-1", PRO).await.unwrap().subscription.unwrap();
    let mut now: DateTime<Utc> = START.parse().unwrap();
    let mut model = Model {
        life: Life::Running,
        plan: PRO,
        scheduled: None,
        period_end: Utc.with_ymd_and_hms(2026, 4, 10, 0, 0, 0).unwrap(),
    };
    let mut version: i64 = bought.etag.parse().unwrap();
    for (serial, command) in commands.iter().enumerate() {
        if let Command::Wait { hours } = command {
            now += Duration::hours(*hours);
            app.test_clock()
                .advance_clock(pb::AdvanceClockRequest {
                    to_time: Some(timestamp(&now.to_rfc3339())),
                })
                .await
                .unwrap();
            model.pass(now);
        }
        let answer = send(&app, &bought.id, serial, command).await;
        let expected = model.apply(command, now);
        let answered = answer.as_ref().err().map(reason);
        prop_assert_eq!(
            answered.as_deref(),
            expected,
            "{:?} with {:?}: {:?}",
            command,
            model,
            answer
        );

        let subscription = get_subscription(&app, &bought.id).await;
        let seen: i64 = subscription.etag.parse().unwrap();
        prop_assert!(seen >= version, "the version never goes back");
        version = seen;
        let state = subscription.state();
        match model.life {
            Life::Running => {
                prop_assert_eq!(state, pb::SubscriptionState::Purchased);
                prop_assert_eq!(subscription.expiration_time, None);
                prop_assert!(subscription.auto_renew);
            }
            Life::Canceled { until } => {
                prop_assert_eq!(state, pb::SubscriptionState::Canceled);
                prop_assert_eq!(subscription.expiration_time, Some(timestamp(&until.to_rfc3339())));
            }
            Life::Ended { at } => {
                prop_assert_eq!(state, pb::SubscriptionState::Expired);
                prop_assert_eq!(subscription.expiration_time, Some(timestamp(&at.to_rfc3339())));
            }
        }
        let ended = matches!(model.life, Life::Ended { .. });
        prop_assert_eq!(subscription.active, !ended);
        prop_assert_eq!(subscription.payment_status(), pb::PaymentStatus::Ok);
        let entitlement = website(&app).await;
        prop_assert!(entitlement.entitled, "a package always grants the website");
        if ended {
            prop_assert_eq!(entitlement.offering_code, "free", "the free package is back");
        } else {
            prop_assert_eq!(&subscription.offering_code, model.plan);
            prop_assert_eq!(
                subscription
                    .pending_change
                    .as_ref()
                    .map(|change| change.offering_code.as_str()),
                model.scheduled
            );
            prop_assert_eq!(
                subscription.current_period_end_time,
                Some(timestamp(&model.period_end.to_rfc3339()))
            );
            prop_assert_eq!(&entitlement.offering_code, model.plan);
        }
    }
    Ok(())
}

fn run(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cases = std::env::var("MODEL_TEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(12);
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(command(), 1..24), |commands| {
        runtime.block_on(agrees_with_the_model(backend, commands))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn sqlite_subscriptions_agree_with_their_model() {
    run(Backend::Sqlite);
}

#[test]
fn postgres_subscriptions_agree_with_their_model() {
    run(Backend::Postgres);
}
