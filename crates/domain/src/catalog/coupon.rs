//! Coupons: discounts buyers redeem by code.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::prices::MoneyDraft;
use crate::error::{DomainError, Reason, Violations};
use crate::ids::CouponId;
use crate::money::Money;
use crate::text::Code;

/// 100% in basis points.
pub const MAX_PERCENT_OFF_BPS: i32 = 10_000;
/// Longest REPEATING coupon, in billing periods.
pub const MAX_DURATION_PERIODS: i32 = 120;

/// How much a coupon takes off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discount {
    /// Basis points of the subtotal: 2000 = 20%.
    PercentOff(u16),
    /// A fixed amount, in the coupon's currency.
    AmountOff(Money),
}

/// The duration a client named, before its period count is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CouponDurationKind {
    Once,
    Repeating,
    Forever,
}

/// How long a coupon keeps discounting a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CouponDuration {
    Once,
    Repeating { periods: u16 },
    Forever,
}

impl CouponDuration {
    pub fn kind(self) -> CouponDurationKind {
        match self {
            CouponDuration::Once => CouponDurationKind::Once,
            CouponDuration::Repeating { .. } => CouponDurationKind::Repeating,
            CouponDuration::Forever => CouponDurationKind::Forever,
        }
    }
}

/// A coupon as a client sent it. `None` stands for an unset or unspecified field.
#[derive(Clone, Debug, Default)]
pub struct CouponDraft {
    pub code: String,
    pub percent_off: Option<i32>,
    pub amount_off: Option<MoneyDraft>,
    pub duration: Option<CouponDurationKind>,
    pub duration_periods: i32,
    pub max_redemptions: i32,
    pub redeem_by: Option<DateTime<Utc>>,
    pub applies_to_offering_codes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coupon {
    pub id: CouponId,
    pub code: Code,
    pub discount: Discount,
    pub duration: CouponDuration,
    /// `None` = unlimited.
    pub max_redemptions: Option<u32>,
    pub times_redeemed: u32,
    pub redeem_by: Option<DateTime<Utc>>,
    /// Empty = every offering.
    pub applies_to_offering_codes: Vec<Code>,
    pub create_time: DateTime<Utc>,
}

impl Coupon {
    /// Builds a coupon; `existing_offerings` must hold the codes it applies to.
    pub fn create(
        draft: &CouponDraft,
        existing_offerings: &HashSet<Code>,
        id: CouponId,
        now: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        let mut violations = Violations::new();
        let code = violations.check("code", Code::parse(&draft.code));
        let discount = parse_discount(draft, &mut violations);
        let duration = parse_duration(draft, &mut violations);
        let max_redemptions = match u32::try_from(draft.max_redemptions) {
            Ok(0) => None,
            Ok(limit) => Some(limit),
            Err(_) => {
                violations.push(
                    "max_redemptions",
                    Reason::CouponInvalid,
                    "must not be negative (0 = unlimited)",
                );
                None
            }
        };
        if let Some(redeem_by) = draft.redeem_by
            && redeem_by <= now
        {
            violations.push("redeem_by", Reason::CouponInvalid, "must be in the future");
        }
        let mut applies_to: Vec<Code> = Vec::new();
        for (index, text) in draft.applies_to_offering_codes.iter().enumerate() {
            let path = format!("applies_to_offering_codes[{index}]");
            let Some(offering_code) = violations.check(&path, Code::parse(text)) else {
                continue;
            };
            if !existing_offerings.contains(&offering_code) {
                violations.push(
                    path,
                    Reason::CouponInvalid,
                    format!("no offering has code {offering_code}"),
                );
            } else if applies_to.contains(&offering_code) {
                violations.push(path, Reason::FieldInvalid, format!("{offering_code} is listed twice"));
            } else {
                applies_to.push(offering_code);
            }
        }
        let (Some(code), Some(discount), Some(duration)) = (code, discount, duration) else {
            return Err(violations.into_error());
        };
        violations.into_result()?;
        Ok(Coupon {
            id,
            code,
            discount,
            duration,
            max_redemptions,
            times_redeemed: 0,
            redeem_by: draft.redeem_by,
            applies_to_offering_codes: applies_to,
            create_time: now,
        })
    }
}

fn parse_discount(draft: &CouponDraft, violations: &mut Violations) -> Option<Discount> {
    match (draft.percent_off, &draft.amount_off) {
        (Some(_), Some(_)) | (None, None) => {
            violations.push(
                "discount",
                Reason::CouponInvalid,
                "set exactly one of percent_off and amount_off",
            );
            None
        }
        (Some(percent_off), None) => match u16::try_from(percent_off) {
            Ok(bps) if (1..=MAX_PERCENT_OFF_BPS).contains(&percent_off) => Some(Discount::PercentOff(bps)),
            _ => {
                violations.push(
                    "percent_off",
                    Reason::CouponInvalid,
                    format!("must be 1–{MAX_PERCENT_OFF_BPS} basis points (2000 = 20%)"),
                );
                None
            }
        },
        (None, Some(amount_off)) => {
            let money = violations.check("amount_off", amount_off.parse_non_negative())?;
            if money.is_zero() {
                violations.push(
                    "amount_off.amount_minor",
                    Reason::CouponInvalid,
                    "must be greater than zero",
                );
                return None;
            }
            Some(Discount::AmountOff(money))
        }
    }
}

fn parse_duration(draft: &CouponDraft, violations: &mut Violations) -> Option<CouponDuration> {
    let Some(kind) = draft.duration else {
        violations.push("duration", Reason::CouponInvalid, "must be ONCE, REPEATING or FOREVER");
        return None;
    };
    if kind != CouponDurationKind::Repeating {
        if draft.duration_periods != 0 {
            violations.push(
                "duration_periods",
                Reason::CouponInvalid,
                "is only for REPEATING coupons",
            );
            return None;
        }
        return Some(if kind == CouponDurationKind::Once {
            CouponDuration::Once
        } else {
            CouponDuration::Forever
        });
    }
    match u16::try_from(draft.duration_periods) {
        Ok(periods) if (1..=MAX_DURATION_PERIODS).contains(&draft.duration_periods) => {
            Some(CouponDuration::Repeating { periods })
        }
        _ => {
            violations.push(
                "duration_periods",
                Reason::CouponInvalid,
                format!("a REPEATING coupon lasts 1–{MAX_DURATION_PERIODS} periods"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
    }

    fn offerings() -> HashSet<Code> {
        [Code::parse("pro-monthly").unwrap()].into_iter().collect()
    }

    fn valid_draft() -> CouponDraft {
        CouponDraft {
            code: "WELCOME20".into(),
            percent_off: Some(2000),
            duration: Some(CouponDurationKind::Repeating),
            duration_periods: 3,
            max_redemptions: 100,
            redeem_by: Some(now() + chrono::Duration::days(30)),
            applies_to_offering_codes: vec!["pro-monthly".into()],
            ..CouponDraft::default()
        }
    }

    fn create(draft: &CouponDraft) -> Result<Coupon, DomainError> {
        Coupon::create(draft, &offerings(), CouponId::from_uuid(Uuid::nil()), now())
    }

    #[test]
    fn a_valid_percent_coupon() {
        let coupon = create(&valid_draft()).unwrap();
        assert_eq!(coupon.discount, Discount::PercentOff(2000));
        assert_eq!(coupon.duration, CouponDuration::Repeating { periods: 3 });
        assert_eq!(coupon.max_redemptions, Some(100));
        assert_eq!(coupon.times_redeemed, 0);
    }

    #[test]
    fn a_valid_amount_coupon_forever_and_unlimited() {
        let draft = CouponDraft {
            percent_off: None,
            amount_off: Some(MoneyDraft::new("JPY", 500)),
            duration: Some(CouponDurationKind::Forever),
            duration_periods: 0,
            max_redemptions: 0,
            redeem_by: None,
            applies_to_offering_codes: vec![],
            ..valid_draft()
        };
        let coupon = create(&draft).unwrap();
        assert!(matches!(coupon.discount, Discount::AmountOff(money) if money.amount_minor() == 500));
        assert_eq!(coupon.max_redemptions, None);
    }

    #[test]
    fn each_bad_field_gets_its_path_and_reason() {
        type Edit = fn(&mut CouponDraft);
        let cases: &[(&str, Edit, &str, Reason)] = &[
            ("empty code", |d| d.code.clear(), "code", Reason::CodeInvalid),
            (
                "no discount",
                |d| d.percent_off = None,
                "discount",
                Reason::CouponInvalid,
            ),
            (
                "both discounts",
                |d| d.amount_off = Some(MoneyDraft::new("USD", 1)),
                "discount",
                Reason::CouponInvalid,
            ),
            (
                "zero percent",
                |d| d.percent_off = Some(0),
                "percent_off",
                Reason::CouponInvalid,
            ),
            (
                "over 100%",
                |d| d.percent_off = Some(10_001),
                "percent_off",
                Reason::CouponInvalid,
            ),
            (
                "zero amount",
                |d| {
                    d.percent_off = None;
                    d.amount_off = Some(MoneyDraft::new("USD", 0));
                },
                "amount_off.amount_minor",
                Reason::CouponInvalid,
            ),
            (
                "unknown amount currency",
                |d| {
                    d.percent_off = None;
                    d.amount_off = Some(MoneyDraft::new("QQQ", 5));
                },
                "amount_off.currency_code",
                Reason::CurrencyUnknown,
            ),
            ("no duration", |d| d.duration = None, "duration", Reason::CouponInvalid),
            (
                "repeating zero periods",
                |d| d.duration_periods = 0,
                "duration_periods",
                Reason::CouponInvalid,
            ),
            (
                "periods on once",
                |d| d.duration = Some(CouponDurationKind::Once),
                "duration_periods",
                Reason::CouponInvalid,
            ),
            (
                "negative redemptions",
                |d| d.max_redemptions = -1,
                "max_redemptions",
                Reason::CouponInvalid,
            ),
            (
                "deadline passed",
                |d| d.redeem_by = Some(now()),
                "redeem_by",
                Reason::CouponInvalid,
            ),
            (
                "unknown offering",
                |d| d.applies_to_offering_codes = vec!["ghost".into()],
                "applies_to_offering_codes[0]",
                Reason::CouponInvalid,
            ),
        ];
        for (name, edit, field, reason) in cases {
            let mut draft = valid_draft();
            edit(&mut draft);
            let error = create(&draft).unwrap_err();
            let got: Vec<_> = error
                .violations()
                .iter()
                .map(|v| (v.field.as_str(), v.reason))
                .collect();
            assert_eq!(got, [(*field, *reason)], "case: {name}");
        }
    }
}
