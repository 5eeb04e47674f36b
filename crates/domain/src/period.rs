//! Billing periods.
//!
//! A subscription's periods are whole UTC dates `[start, end)` counted from
//! its billing anchor, a date fixed when it is created and kept for life,
//! plan changes included. Period `k` starts at anchor + `k` intervals,
//! clamped to the last day of a short month; because every start is computed
//! from the anchor (never from the previous period), a Jan 31 anchor gives
//! Feb 28 (or 29) and then Mar 31 again: periods never drift.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};

use crate::catalog::{BillingAlignment, BillingInterval};

/// `[start, end)` in whole UTC dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Period {
    /// Length in days.
    pub fn days(self) -> i64 {
        (self.end - self.start).num_days()
    }

    pub fn contains(self, date: NaiveDate) -> bool {
        self.start <= date && date < self.end
    }

    pub fn start_time(self) -> DateTime<Utc> {
        midnight(self.start)
    }

    pub fn end_time(self) -> DateTime<Utc> {
        midnight(self.end)
    }
}

/// 00:00 UTC of `date`.
pub fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}

/// The date a moment falls on, in UTC.
pub fn utc_date(time: DateTime<Utc>) -> NaiveDate {
    time.date_naive()
}

/// Months in one interval.
fn months(interval: BillingInterval) -> i64 {
    match interval {
        BillingInterval::Month => 1,
        BillingInterval::Year => 12,
    }
}

/// The date periods are counted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BillingAnchor(NaiveDate);

impl BillingAnchor {
    /// The anchor of a subscription whose first billed date (its start, or
    /// the end of its trial) is `first_billed_date`. ANNIVERSARY anchors on
    /// that date; CALENDAR on January 1st of its year, so that monthly periods
    /// are calendar months and yearly ones calendar years, whichever interval
    /// a later plan change picks.
    pub fn for_first_billed_date(alignment: BillingAlignment, first_billed_date: NaiveDate) -> Self {
        match alignment {
            BillingAlignment::Anniversary => BillingAnchor(first_billed_date),
            BillingAlignment::Calendar => {
                BillingAnchor(NaiveDate::from_ymd_opt(first_billed_date.year(), 1, 1).unwrap_or(first_billed_date))
            }
        }
    }

    /// An anchor as stored.
    pub fn from_date(date: NaiveDate) -> Self {
        BillingAnchor(date)
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// The start of period `index` (negative = before the anchor).
    pub fn period_start(self, interval: BillingInterval, index: i64) -> NaiveDate {
        add_months_clamped(self.0, index * months(interval))
    }

    /// The period of `interval` that contains `date`.
    pub fn period_containing(self, interval: BillingInterval, date: NaiveDate) -> Period {
        let month_distance = (i64::from(date.year()) - i64::from(self.0.year())) * 12 + i64::from(date.month0())
            - i64::from(self.0.month0());
        let mut index = month_distance.div_euclid(months(interval));
        // The estimate is off by at most one in either direction (day of month).
        while self.period_start(interval, index) > date {
            index -= 1;
        }
        while self.period_start(interval, index + 1) <= date {
            index += 1;
        }
        Period {
            start: self.period_start(interval, index),
            end: self.period_start(interval, index + 1),
        }
    }
}

/// `date` plus `months` months, with the day clamped to the target month's
/// length. Always computed from the original date, so clamping never
/// accumulates.
fn add_months_clamped(date: NaiveDate, months: i64) -> NaiveDate {
    let total = i64::from(date.year()) * 12 + i64::from(date.month0()) + months;
    let year = i32::try_from(total.div_euclid(12)).unwrap_or(i32::MAX);
    let month = u32::try_from(total.rem_euclid(12)).unwrap_or(0) + 1;
    let day = date.day().min(days_in_month(year, month));
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or(date)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(next_year, next_month, 1)
        .and_then(|first_of_next| first_of_next.pred_opt())
        .map_or(28, |last| last.day())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_31st_anchor_clamps_and_returns_to_its_day() {
        let anchor = BillingAnchor::from_date(date(2027, 1, 31));
        let starts: Vec<NaiveDate> = (0..13)
            .map(|k| anchor.period_start(BillingInterval::Month, k))
            .collect();
        assert_eq!(
            starts,
            [
                date(2027, 1, 31),
                date(2027, 2, 28),
                date(2027, 3, 31),
                date(2027, 4, 30),
                date(2027, 5, 31),
                date(2027, 6, 30),
                date(2027, 7, 31),
                date(2027, 8, 31),
                date(2027, 9, 30),
                date(2027, 10, 31),
                date(2027, 11, 30),
                date(2027, 12, 31),
                date(2028, 1, 31),
            ]
        );
        // Leap year.
        let leap = BillingAnchor::from_date(date(2028, 1, 31));
        assert_eq!(leap.period_start(BillingInterval::Month, 1), date(2028, 2, 29));
    }

    #[test]
    fn a_feb_29_anchor_renews_yearly_on_feb_28_then_29_again() {
        let anchor = BillingAnchor::from_date(date(2028, 2, 29));
        assert_eq!(anchor.period_start(BillingInterval::Year, 1), date(2029, 2, 28));
        assert_eq!(anchor.period_start(BillingInterval::Year, 4), date(2032, 2, 29));
    }

    #[test]
    fn calendar_alignment_anchors_on_january_first() {
        let anchor = BillingAnchor::for_first_billed_date(BillingAlignment::Calendar, date(2026, 3, 15));
        assert_eq!(anchor.date(), date(2026, 1, 1));
        assert_eq!(
            anchor.period_containing(BillingInterval::Month, date(2026, 3, 15)),
            Period {
                start: date(2026, 3, 1),
                end: date(2026, 4, 1)
            }
        );
        assert_eq!(
            anchor.period_containing(BillingInterval::Year, date(2026, 3, 15)),
            Period {
                start: date(2026, 1, 1),
                end: date(2027, 1, 1)
            }
        );
        let anniversary = BillingAnchor::for_first_billed_date(BillingAlignment::Anniversary, date(2026, 3, 15));
        assert_eq!(anniversary.date(), date(2026, 3, 15));
    }

    #[test]
    fn the_period_containing_a_date_uses_the_same_anchor_for_either_interval() {
        // Monthly ⇄ yearly changes keep the anchor: Jan 15 anchor, change on Mar 20.
        let anchor = BillingAnchor::from_date(date(2026, 1, 15));
        let cases = [
            (
                BillingInterval::Month,
                date(2026, 3, 20),
                date(2026, 3, 15),
                date(2026, 4, 15),
            ),
            (
                BillingInterval::Month,
                date(2026, 3, 15),
                date(2026, 3, 15),
                date(2026, 4, 15),
            ),
            (
                BillingInterval::Month,
                date(2026, 3, 14),
                date(2026, 2, 15),
                date(2026, 3, 15),
            ),
            (
                BillingInterval::Year,
                date(2026, 3, 20),
                date(2026, 1, 15),
                date(2027, 1, 15),
            ),
            (
                BillingInterval::Year,
                date(2027, 1, 14),
                date(2026, 1, 15),
                date(2027, 1, 15),
            ),
            (
                BillingInterval::Month,
                date(2025, 12, 20),
                date(2025, 12, 15),
                date(2026, 1, 15),
            ),
        ];
        for (interval, on, start, end) in cases {
            assert_eq!(
                anchor.period_containing(interval, on),
                Period { start, end },
                "{interval:?} {on}"
            );
        }
    }

    #[test]
    fn periods_have_their_day_counts() {
        let period = Period {
            start: date(2028, 2, 1),
            end: date(2028, 3, 1),
        };
        assert_eq!(period.days(), 29);
        assert_eq!(period.start_time().to_rfc3339(), "2028-02-01T00:00:00+00:00");
        assert!(period.contains(date(2028, 2, 29)));
        assert!(!period.contains(date(2028, 3, 1)));
    }

    fn any_date() -> impl Strategy<Value = NaiveDate> {
        (1990_i32..2200, 1_u32..=12, 1_u32..=31)
            .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d.min(days_in_month(y, m))).unwrap())
    }

    fn any_interval() -> impl Strategy<Value = BillingInterval> {
        prop_oneof![Just(BillingInterval::Month), Just(BillingInterval::Year)]
    }

    proptest! {
        #[test]
        fn periods_tile_time_without_gap_or_overlap(anchor in any_date(), interval in any_interval(), from in -30_i64..30, count in 1_i64..60) {
            let anchor = BillingAnchor::from_date(anchor);
            for index in from..from + count {
                let start = anchor.period_start(interval, index);
                let next = anchor.period_start(interval, index + 1);
                prop_assert!(start < next, "period {index} is empty or reversed");
                // The period containing any day of [start, next) is exactly that one.
                let period = anchor.period_containing(interval, start);
                prop_assert_eq!(period, Period { start, end: next });
                let last_day = next.pred_opt().unwrap();
                prop_assert_eq!(anchor.period_containing(interval, last_day), Period { start, end: next });
            }
        }

        #[test]
        fn month_end_anchors_return_to_their_day(anchor in any_date(), index in -40_i64..400) {
            let anchor = BillingAnchor::from_date(anchor);
            let start = anchor.period_start(BillingInterval::Month, index);
            let expected_day = anchor.date().day().min(days_in_month(start.year(), start.month()));
            prop_assert_eq!(start.day(), expected_day);
        }

        #[test]
        fn every_date_is_in_the_period_containing_it(anchor in any_date(), date in any_date(), interval in any_interval()) {
            let period = BillingAnchor::from_date(anchor).period_containing(interval, date);
            prop_assert!(period.contains(date));
            prop_assert!(period.days() >= 28 && period.days() <= 366);
        }
    }
}
