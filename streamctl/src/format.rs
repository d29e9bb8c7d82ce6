//! Turning the API's JSON into text for people: aligned tables, counts with separators, byte sizes,
//! times and ages. Every function here is pure (the current time is passed in) so it can be tested.

use std::fmt::Write as _;

use serde_json::Value;

/// How a column's cells line up: numbers to the right so their digits line up, text to the left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table printed with every column as wide as its widest cell, two spaces between columns.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Self { columns: columns.to_vec(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "one cell per column");
        self.rows.push(cells);
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.columns.iter().map(|(h, _)| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths
    }

    /// The header line and every row, each ending in a newline.
    pub fn render(&self) -> String {
        let widths = self.widths();
        let mut out = line(&self.columns, &widths, self.columns.iter().map(|(h, _)| *h));
        for row in &self.rows {
            out.push_str(&line(&self.columns, &widths, row.iter().map(String::as_str)));
        }
        out
    }
}

/// One table line; no line ends in spaces.
fn line<'a>(columns: &[(&str, Align)], widths: &[usize], cells: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push_str("  ");
        }
        let pad = widths[i].saturating_sub(cell.chars().count());
        match columns[i].1 {
            Align::Right => {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(cell);
            }
            Align::Left => {
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
    }
    // The last column's padding, or the separator before an empty last cell, would trail the line.
    out.truncate(out.trim_end_matches(' ').len());
    out.push('\n');
    out
}

/// A table whose rows arrive over time (`consume --follow`, `produce` from stdin): each batch is
/// printed as it comes. Column widths only grow, so rows stay aligned unless a cell outgrows them.
#[derive(Debug)]
pub struct StreamTable {
    columns: Vec<(&'static str, Align)>,
    widths: Option<Vec<usize>>,
}

impl StreamTable {
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Self { columns: columns.to_vec(), widths: None }
    }

    /// The text for `rows`, with the header before the first batch.
    pub fn batch(&mut self, rows: &[Vec<String>]) -> String {
        if rows.is_empty() {
            return String::new();
        }
        let mut table = Table::new(&self.columns);
        for row in rows {
            table.row(row.clone());
        }
        let mut widths = table.widths();
        let mut out = String::new();
        match &self.widths {
            None => out.push_str(&line(&self.columns, &widths, self.columns.iter().map(|(h, _)| *h))),
            Some(old) => widths.iter_mut().zip(old).for_each(|(w, o)| *w = (*w).max(*o)),
        }
        for row in rows {
            out.push_str(&line(&self.columns, &widths, row.iter().map(String::as_str)));
        }
        self.widths = Some(widths);
        out
    }
}

/// Label/value lines (`cluster info`), labels padded to one width.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let _ = writeln!(out, "{k:<width$}  {v}");
    }
    out
}

/// 1234567 → "1,234,567": message counts and lags are read, not copied.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Byte sizes in binary units with one decimal: "0 B", "999 B", "1.5 KiB", "12.0 MiB".
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n.unsigned_abs() < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value.abs() < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

/// A duration in seconds for people: "42s", "3m 05s", "2h 03m", "4d 05h".
pub fn duration_secs(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m, s) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// How long ago `ms` was, seen at `now_ms`: "1.2s ago", or "in 0.8s" for a time still ahead
/// (lease expiries). Tenths of a second matter here: leases last a few seconds.
pub fn relative(ms: i64, now_ms: i64) -> String {
    let delta = now_ms - ms;
    let text = |d: i64| if d < 60_000 { format!("{:.1}s", d as f64 / 1000.0) } else { duration_secs(d / 1000) };
    if delta >= 0 { format!("{} ago", text(delta)) } else { format!("in {}", text(-delta)) }
}

/// Unix milliseconds as UTC, to the millisecond: "2026-01-02T03:04:05.678Z".
pub fn timestamp(ms: i64) -> String {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Parses a time given as Unix milliseconds or as a date and time in Kafka's
/// kafka-consumer-groups --to-datetime form: `YYYY-MM-DDTHH:mm:SS.sss`, where the time, seconds and
/// fraction may be left off and a zone (`Z`, `+HH:MM`, `-HH:MM`) may follow. Without a zone the
/// time is UTC: agents and their logs run in UTC, and a CLI guessing the caller's zone would give
/// different offsets on different machines for the same command.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().map_err(|e| format!("'{text}': {e}"));
    }
    let bad = || {
        format!(
            "'{text}' is neither Unix milliseconds nor a time like 2026-01-31T14:30:00.000 (UTC unless a zone such as Z or +02:00 follows)"
        )
    };
    let (body, zone_ms) = split_zone(t).ok_or_else(bad)?;
    let (date, time) = body.split_once(['T', ' ']).unwrap_or((body, ""));
    let mut ymd = date.splitn(3, '-');
    let (y, mo, d) = (field(&mut ymd, 4).ok_or_else(bad)?, field(&mut ymd, 2).ok_or_else(bad)?, field(&mut ymd, 2).ok_or_else(bad)?);
    if !(1..=12).contains(&mo) || !(1..=days_in_month(y, mo)).contains(&d) {
        return Err(bad());
    }
    let mut ms_of_day = 0;
    if !time.is_empty() {
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let mut parts = hms.splitn(3, ':');
        let h = field(&mut parts, 2).ok_or_else(bad)?;
        let mi = field(&mut parts, 2).ok_or_else(bad)?;
        let s = match parts.next() {
            None => 0,
            Some(s) if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) => s.parse::<i64>().map_err(|_| bad())?,
            Some(_) => return Err(bad()),
        };
        if h > 23 || mi > 59 || s > 59 || (!frac.is_empty() && (frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()))) {
            return Err(bad());
        }
        // ".5" is half a second: pad the fraction to milliseconds.
        let milli = if frac.is_empty() { 0 } else { format!("{frac:0<3}").parse::<i64>().map_err(|_| bad())? };
        ms_of_day = ((h * 60 + mi) * 60 + s) * 1000 + milli;
    }
    Ok(days_from_civil(y, mo, d) * 86_400_000 + ms_of_day - zone_ms)
}

/// Splits a trailing zone off a date-time: ("2026-01-02T03:04", offset in ms east of UTC).
fn split_zone(t: &str) -> Option<(&str, i64)> {
    if let Some(body) = t.strip_suffix(['Z', 'z']) {
        return Some((body, 0));
    }
    // A zone offset is "+HH:MM" or "-HH:MM" after the time; the date's own dashes come before any 'T'.
    let Some(time_start) = t.find(['T', ' ']) else { return Some((t, 0)) };
    let Some(sign_at) = t[time_start..].rfind(['+', '-']).map(|i| i + time_start) else { return Some((t, 0)) };
    let (h, m) = t[sign_at + 1..].split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    let offset = (h * 60 + m) * 60_000;
    Some((&t[..sign_at], if &t[sign_at..=sign_at] == "-" { -offset } else { offset }))
}

/// The next part of a date or time, if it is exactly `digits` decimal digits.
fn field(parts: &mut std::str::SplitN<'_, char>, digits: usize) -> Option<i64> {
    let part = parts.next()?;
    (part.len() == digits && part.bytes().all(|b| b.is_ascii_digit())).then(|| part.parse().ok()).flatten()
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A JSON field as table text: strings bare, numbers as written, null or missing as "-".
pub fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A JSON integer field, if it is one.
pub fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// A JSON integer field through `f`, or "-" when absent or null.
pub fn int_with(v: &Value, key: &str, f: fn(i64) -> String) -> String {
    int(v, key).map_or_else(|| "-".to_string(), f)
}

/// A JSON array field, empty when absent.
pub fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Record keys and values shown in one table cell: control characters escaped so a newline in a
/// value cannot break the table, binary (base64) data marked as such, null shown as Kafka's tools do.
pub fn payload(data: &Value, encoding: &Value) -> String {
    let Some(s) = data.as_str() else { return "null".to_string() };
    let escaped: String = s.chars().flat_map(char::escape_debug).collect();
    // escape_debug also escapes quotes, which are common in JSON values and harmless in a table.
    let escaped = escaped.replace("\\\"", "\"").replace("\\'", "'");
    if encoding.as_str() == Some("base64") { format!("base64:{escaped}") } else { escaped }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_leave_no_trailing_spaces() {
        let mut t = Table::new(&[("NAME", Align::Left), ("MESSAGES", Align::Right), ("NOTE", Align::Left)]);
        t.row(vec!["a".into(), count(1_234_567), "x".into()]);
        t.row(vec!["longer-name".into(), count(5), "".into()]);
        assert_eq!(t.render(), "NAME          MESSAGES  NOTE\na            1,234,567  x\nlonger-name          5\n");
    }

    #[test]
    fn stream_tables_print_the_header_once_and_keep_widths() {
        let mut t = StreamTable::new(&[("OFFSET", Align::Right), ("VALUE", Align::Left)]);
        assert_eq!(t.batch(&[]), "", "nothing to print, not even a header");
        assert_eq!(t.batch(&[vec!["0".into(), "a".into()]]), "OFFSET  VALUE\n     0  a\n");
        assert_eq!(t.batch(&[vec!["1".into(), "b".into()]]), "     1  b\n");
        assert_eq!(t.batch(&[vec!["12345678".into(), "c".into()]]), "12345678  c\n", "a wider cell widens its column");
    }

    #[test]
    fn fields_pad_labels() {
        assert_eq!(fields(&[("ID", "7".into()), ("VERSION", "0.1.0".into())]), "ID       7\nVERSION  0.1.0\n");
    }

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(123_456_789), "123,456,789");
        assert_eq!(count(-1_000), "-1,000");
        assert_eq!(count(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn durations_and_relative_times() {
        assert_eq!(duration_secs(42), "42s");
        assert_eq!(duration_secs(185), "3m 05s");
        assert_eq!(duration_secs(7_380), "2h 03m");
        assert_eq!(duration_secs(363_600), "4d 05h");
        assert_eq!(relative(1_000, 2_200), "1.2s ago");
        assert_eq!(relative(3_000, 2_200), "in 0.8s");
        assert_eq!(relative(0, 3_600_000), "1h 00m ago");
    }

    #[test]
    fn timestamps_are_utc_to_the_millisecond() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29T00:00:00.000Z", "a leap day");
        assert_eq!(timestamp(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn times_parse_as_milliseconds_or_dates() {
        assert_eq!(parse_time("1700000000123"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("2023-11-14T22:13:20.123"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("2023-11-14T22:13:20.123Z"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("2023-11-15T00:13:20.123+02:00"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("2023-11-14T20:13:20.123-02:00"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("2023-11-14 22:13:20.5"), Ok(1_700_000_000_500));
        assert_eq!(parse_time("2023-11-14T22:13"), Ok(1_699_999_980_000));
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        assert_eq!(parse_time("2000-02-29"), Ok(951_782_400_000));
        for bad in ["", "yesterday", "2023-13-01", "2023-02-29", "2023-11-14T25:00", "2023-11-14T22:13:20.1234", "2023-1-14", "-5"] {
            assert!(parse_time(bad).is_err(), "{bad:?} should not parse");
        }
        for ms in [0, 1_700_000_000_123, 951_782_400_000, 4_102_444_800_000] {
            assert_eq!(parse_time(&timestamp(ms)), Ok(ms), "timestamp() output parses back");
        }
    }

    #[test]
    fn json_fields_become_cells() {
        let v = json!({"s": "x", "n": 5, "z": null, "b": true, "a": [1, 2]});
        assert_eq!(text(&v, "s"), "x");
        assert_eq!(text(&v, "n"), "5");
        assert_eq!(text(&v, "z"), "-");
        assert_eq!(text(&v, "missing"), "-");
        assert_eq!(text(&v, "b"), "true");
        assert_eq!(int(&v, "n"), Some(5));
        assert_eq!(int_with(&v, "z", count), "-");
        assert_eq!(list(&v, "a").len(), 2);
        assert!(list(&v, "s").is_empty());
    }

    #[test]
    fn payloads_stay_on_one_line() {
        assert_eq!(payload(&json!("{\"id\":1}"), &json!("utf8")), "{\"id\":1}");
        assert_eq!(payload(&json!("a\nb\tc"), &json!("utf8")), "a\\nb\\tc");
        assert_eq!(payload(&json!("AAE="), &json!("base64")), "base64:AAE=");
        assert_eq!(payload(&Value::Null, &Value::Null), "null");
    }
}
