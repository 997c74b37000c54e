//! Rows to bytes: PostgreSQL's binary COPY format (for loading) and CSV (for
//! `pm generate --out`). Both write straight into a byte buffer per table.

use super::rng::Uuid;
use super::rows::{Day, FieldWriter, Row, Table, Ts};

/// 2000-01-01, PostgreSQL's epoch, in Unix microseconds and days.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i32 = 10_957;

/// The signature, flags and header extension that open a binary COPY stream.
pub const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The end-of-data marker.
pub const BINARY_TRAILER: &[u8] = &(-1i16).to_be_bytes();

/// Appends rows in binary COPY format to a buffer.
pub struct Binary<'a>(pub &'a mut Vec<u8>);

impl Binary<'_> {
    pub fn row<R: Row>(buf: &mut Vec<u8>, r: &R) {
        buf.extend_from_slice(&(R::TABLE.columns().len() as i16).to_be_bytes());
        r.write(&mut Binary(buf));
    }

    fn field(&mut self, bytes: &[u8]) {
        self.0
            .extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.0.extend_from_slice(bytes);
    }
}

impl FieldWriter for Binary<'_> {
    fn uuid(&mut self, v: &Uuid) {
        self.field(&v.0)
    }
    fn text(&mut self, v: &str) {
        self.field(v.as_bytes())
    }
    fn int(&mut self, v: i32) {
        self.field(&v.to_be_bytes())
    }
    fn bigint(&mut self, v: i64) {
        self.field(&v.to_be_bytes())
    }
    fn boolean(&mut self, v: bool) {
        self.field(&[v as u8])
    }
    fn timestamp(&mut self, v: Ts) {
        self.field(&(v - PG_EPOCH_MICROS).to_be_bytes())
    }
    fn date(&mut self, v: Day) {
        self.field(&(v - PG_EPOCH_DAYS).to_be_bytes())
    }
    fn null(&mut self) {
        self.0.extend_from_slice(&(-1i32).to_be_bytes())
    }
}

/// Appends rows as CSV lines (NULL is an empty unquoted field, as in
/// PostgreSQL's CSV format).
pub struct Csv<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Csv<'_> {
    pub fn header(buf: &mut Vec<u8>, table: Table) {
        buf.extend_from_slice(table.columns().join(",").as_bytes());
        buf.push(b'\n');
    }

    pub fn row<R: Row>(buf: &mut Vec<u8>, r: &R) {
        r.write(&mut Csv {
            out: buf,
            first: true,
        });
        buf.push(b'\n');
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }
}

impl FieldWriter for Csv<'_> {
    fn uuid(&mut self, v: &Uuid) {
        self.sep();
        use std::io::Write;
        let _ = write!(self.out, "{v}");
    }
    fn text(&mut self, v: &str) {
        self.sep();
        if v.is_empty() || v.contains([',', '"', '\n', '\r']) {
            self.out.push(b'"');
            self.out
                .extend_from_slice(v.replace('"', "\"\"").as_bytes());
            self.out.push(b'"');
        } else {
            self.out.extend_from_slice(v.as_bytes());
        }
    }
    fn int(&mut self, v: i32) {
        self.sep();
        self.out.extend_from_slice(v.to_string().as_bytes());
    }
    fn bigint(&mut self, v: i64) {
        self.sep();
        self.out.extend_from_slice(v.to_string().as_bytes());
    }
    fn boolean(&mut self, v: bool) {
        self.sep();
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
    }
    fn timestamp(&mut self, v: Ts) {
        self.sep();
        self.out.extend_from_slice(format_timestamp(v).as_bytes());
    }
    fn date(&mut self, v: Day) {
        self.sep();
        self.out.extend_from_slice(format_day(v).as_bytes());
    }
    fn null(&mut self) {
        self.sep();
    }
}

/// `2025-03-01`.
pub fn format_day(day: Day) -> String {
    use chrono::Datelike;
    chrono::NaiveDate::from_num_days_from_ce_opt(day + 719_163)
        .map(|d| format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()))
        .unwrap_or_default()
}

/// `2025-03-01 14:05:09.123456+00` (written by hand: chrono's `format`
/// parses its pattern on every call, which made `--out` slower than a load).
pub fn format_timestamp(ts: Ts) -> String {
    let micros = ts.rem_euclid(86_400_000_000);
    let day = ts.div_euclid(86_400_000_000) as Day;
    let s = micros / 1_000_000;
    format!(
        "{} {:02}:{:02}:{:02}.{:06}+00",
        format_day(day),
        s / 3600,
        s / 60 % 60,
        s % 60,
        micros % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::PartnerCommission;

    #[test]
    fn dates_and_timestamps_are_written_as_postgresql_reads_them() {
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(format_day(PG_EPOCH_DAYS), "2000-01-01");
        assert_eq!(
            format_timestamp(PG_EPOCH_MICROS + 1_500_000),
            "2000-01-01 00:00:01.500000+00"
        );
    }

    #[test]
    fn a_row_in_both_formats() {
        let r = PartnerCommission {
            partner_id: "google_ads",
            spend_date: PG_EPOCH_DAYS + 1,
            amount_cents: 1234,
            currency: "USD",
            loaded_at: PG_EPOCH_MICROS,
        };
        let mut csv = Vec::new();
        Csv::header(&mut csv, Table::PartnerCommissions);
        Csv::row(&mut csv, &r);
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "partner_id,spend_date,amount_cents,currency,_loaded_at\n\
             google_ads,2000-01-02,1234,USD,2000-01-01 00:00:00.000000+00\n"
        );
        let mut bin = Vec::new();
        Binary::row(&mut bin, &r);
        // 5 fields; the date is day 1 after PostgreSQL's epoch; the timestamp is 0.
        assert_eq!(&bin[..2], &5i16.to_be_bytes());
        let date_at = 2 + 4 + 10;
        assert_eq!(&bin[date_at..date_at + 8], &[0, 0, 0, 4, 0, 0, 0, 1]);
        assert_eq!(&bin[bin.len() - 8..], &0i64.to_be_bytes());
    }
}
