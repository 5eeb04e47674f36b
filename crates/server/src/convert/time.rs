use billing_domain::{DomainError, Reason};
use chrono::{DateTime, Utc};

pub fn timestamp_to_proto(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        // Always in 0..1e9, so it fits.
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A timestamp a client sent; `field` names it in the error.
pub fn timestamp_from_proto(field: &str, timestamp: prost_types::Timestamp) -> Result<DateTime<Utc>, DomainError> {
    let nanos = u32::try_from(timestamp.nanos).ok();
    nanos
        .and_then(|nanos| DateTime::from_timestamp(timestamp.seconds, nanos))
        .ok_or_else(|| DomainError::field(field, Reason::FieldInvalid, "is not a valid timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_bad_ones_are_named() {
        let time = DateTime::from_timestamp(1_767_225_600, 123_000_000).unwrap();
        assert_eq!(timestamp_from_proto("t", timestamp_to_proto(time)).unwrap(), time);
        let bad = prost_types::Timestamp { seconds: 0, nanos: -1 };
        assert_eq!(
            timestamp_from_proto("coupon.redeem_by", bad).unwrap_err().violations()[0].field,
            "coupon.redeem_by"
        );
    }
}
