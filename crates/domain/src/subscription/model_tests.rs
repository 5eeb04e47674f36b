//! Model-based: random sequences of commands (cancel at the end of the
//! period, cancel now, reactivate, time passing with the job's renewals and
//! expiries) against a small reference model of the subscription's life,
//! comparing every answer: accepted or refused, state, period, expiration,
//! access, version.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::tests::{at, bought, monthly};
use super::*;

#[derive(Clone, Debug)]
enum Command {
    CancelAtPeriodEnd,
    CancelNow,
    Reactivate,
    Wait { hours: i64 },
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::CancelAtPeriodEnd),
        Just(Command::CancelNow),
        Just(Command::Reactivate),
        (0_i64..2_000).prop_map(|hours| Command::Wait { hours }),
    ]
}

/// What the subscription should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Running,
    Canceled { until: DateTime<Utc> },
    Ended { at: DateTime<Utc> },
}

#[derive(Debug)]
struct Model {
    life: Life,
    /// End of the current period: the 10th of a month, midnight UTC.
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

    /// Time passes to `now`: renewals while running, expiry when due.
    fn pass(&mut self, now: DateTime<Utc>) {
        loop {
            match self.life {
                Life::Running if self.period_end <= now => self.period_end = Self::next_month(self.period_end),
                Life::Canceled { until } if until <= now => self.life = Life::Ended { at: until },
                _ => return,
            }
        }
    }
}

/// The job: renew and expire until nothing more is due at `now`.
fn run_jobs(mut subscription: Subscription, now: DateTime<Utc>) -> Subscription {
    loop {
        let expired = expire(&subscription, now);
        let renewed = renew(&expired.subscription, None, now).unwrap();
        if !expired.changed() && !renewed.changed() {
            return subscription;
        }
        assert!(renewed.subscription.version > subscription.version);
        subscription = renewed.subscription;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_state_machine_agrees_with_its_model(commands in proptest::collection::vec(command(), 1..40)) {
        let mut now = at(2026, 3, 10, 9);
        let mut subscription = bought(&monthly("pro", 3000), now);
        let mut model = Model {
            life: Life::Running,
            period_end: Utc.with_ymd_and_hms(2026, 4, 10, 0, 0, 0).unwrap(),
        };
        for command in commands {
            let before = subscription.version;
            let answer = match command {
                Command::CancelAtPeriodEnd => cancel(&subscription, CancelTiming::EndOfPeriod, "", now).map(Some),
                Command::CancelNow => cancel(&subscription, CancelTiming::Immediate, "", now).map(Some),
                Command::Reactivate => reactivate(&subscription, now).map(Some),
                Command::Wait { hours } => {
                    now += Duration::hours(hours);
                    subscription = run_jobs(subscription, now);
                    model.pass(now);
                    Ok(None)
                }
            };
            let expected_ok = match (&command, model.life) {
                (Command::Wait { .. }, _) => true,
                (_, Life::Ended { .. }) => false,
                (Command::Reactivate, Life::Canceled { until }) => until > now,
                _ => true,
            };
            prop_assert_eq!(answer.is_ok(), expected_ok, "{:?} in {:?}: {:?}", command, model.life, answer);
            if let Ok(Some(transition)) = answer {
                if transition.changed() {
                    prop_assert!(transition.subscription.version > before);
                } else {
                    prop_assert_eq!(transition.subscription.version, before);
                }
                subscription = transition.subscription;
                model.life = match (&command, model.life) {
                    (Command::CancelAtPeriodEnd, Life::Running) => Life::Canceled { until: model.period_end },
                    (Command::CancelNow, _) => Life::Ended { at: now },
                    (Command::Reactivate, Life::Canceled { .. }) => Life::Running,
                    (_, life) => life,
                };
            }
            match model.life {
                Life::Running => {
                    prop_assert_eq!(subscription.state, SubscriptionState::Purchased);
                    prop_assert_eq!(subscription.expiration_time, None);
                    prop_assert!(subscription.auto_renew);
                }
                Life::Canceled { until } => {
                    prop_assert_eq!(subscription.state, SubscriptionState::Canceled);
                    prop_assert_eq!(subscription.expiration_time, Some(until));
                    prop_assert!(!subscription.auto_renew);
                }
                Life::Ended { at } => {
                    prop_assert_eq!(subscription.state, SubscriptionState::Expired);
                    prop_assert_eq!(subscription.expiration_time, Some(at));
                }
            }
            prop_assert_eq!(subscription.is_active(), !matches!(model.life, Life::Ended { .. }));
            if !matches!(model.life, Life::Ended { .. }) {
                prop_assert_eq!(subscription.current_period.end_time(), model.period_end);
            }
        }
    }
}
