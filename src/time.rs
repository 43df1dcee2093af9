//! Capture timestamps: every time in mailsift comes from packet headers, never the wall clock.

use serde::{Serialize, Serializer};
use std::fmt;

/// A point in capture time, in nanoseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Builds a timestamp from whole seconds and a nanosecond fraction.
    pub fn from_parts(secs: i64, nanos: u32) -> Self {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(nanos as i64),
        )
    }

    /// Builds a timestamp from microseconds since the epoch.
    pub fn from_micros(micros: i64) -> Self {
        Timestamp(micros.saturating_mul(1_000))
    }

    /// Whole seconds since the epoch (floor).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// Microseconds since the epoch (floor).
    pub fn micros(self) -> i64 {
        self.0.div_euclid(1_000)
    }

    /// Nanoseconds elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn nanos_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0).max(0) as u64
    }

    /// Seconds elapsed from `earlier` to `self` as a float, for human output.
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        self.nanos_since(earlier) as f64 / 1e9
    }

    /// This time plus a number of seconds.
    pub fn plus_secs(self, secs: u64) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add((secs as i64).saturating_mul(1_000_000_000)),
        )
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's civil_from_days algorithm, restated.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with microseconds, e.g. `2024-05-01T12:00:00.123456Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.micros();
        let secs = micros.div_euclid(1_000_000);
        let frac = micros.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            y,
            m,
            d,
            sod / 3600,
            (sod / 60) % 60,
            sod % 60,
            frac
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_with_micros() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            Timestamp::from_parts(1_700_000_000, 123_456_789).to_string(),
            "2023-11-14T22:13:20.123456Z"
        );
        // A leap day and the end of a year.
        assert_eq!(
            Timestamp::from_parts(951_782_400, 0).to_string(),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_parts(1_704_067_199, 999_999_000).to_string(),
            "2023-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn before_epoch_is_still_well_formed() {
        assert_eq!(
            Timestamp::from_parts(-1, 500_000_000).to_string(),
            "1969-12-31T23:59:59.500000Z"
        );
    }
}
