//! Proleptic Gregorian calendar arithmetic: days since the Unix epoch from a date and back,
//! month lengths and leap years, without a date library on the hot path.

pub(super) const NANOS_PER_SEC: i64 = 1_000_000_000;
pub(super) const SECS_PER_DAY: i64 = 86_400;

/// The calendar year that `ns` falls in, at the given offset from UTC.
pub(super) fn year_of(ns: i64, offset_secs: i32) -> i64 {
    let secs = ns.div_euclid(NANOS_PER_SEC) + i64::from(offset_secs);
    civil_from_days(secs.div_euclid(SECS_PER_DAY)).0
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub(super) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(super) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};
    use proptest::prelude::*;

    #[test]
    fn known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(year_of(1_704_067_199_000_000_000, 0), 2023);
        assert_eq!(year_of(1_704_067_199_000_000_000, 3600), 2024);
    }

    proptest! {
        #[test]
        fn matches_chrono(days in -100_000i64..200_000) {
            let date = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                + chrono::TimeDelta::days(days);
            let civil = (i64::from(date.year()), date.month(), date.day());
            prop_assert_eq!(civil_from_days(days), civil);
            prop_assert_eq!(days_from_civil(civil.0, civil.1, civil.2), days);
        }
    }
}
