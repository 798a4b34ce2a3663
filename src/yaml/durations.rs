//! Values of configuration files that are not YAML types: durations ("90s", "1h30m",
//! "7d"), times of day ("09:30") and daily hours ("09:00-12:00, 13:00-17:00").

/// Parses "09:00-17:00", "09:00-12:00, 13:00-17:00" or "closed" into minute ranges.
pub fn parse_hours(s: &str) -> Result<Vec<(u16, u16)>, String> {
    let t = s.trim().to_lowercase();
    if t.is_empty() || t == "closed" || t == "off" || t == "-" {
        return Ok(Vec::new());
    }
    let mut out: Vec<(u16, u16)> = Vec::new();
    for range in t.split(',') {
        let (a, b) = range
            .split_once('-')
            .ok_or_else(|| format!("`{}` is not a time range", range.trim()))?;
        let start = parse_time(a.trim())?;
        let end = parse_time(b.trim())?;
        if start >= end {
            return Err(format!("`{}` ends before it starts", range.trim()));
        }
        if let Some(&(_, prev_end)) = out.last() {
            if start < prev_end {
                return Err(format!("`{}` overlaps the range before it", range.trim()));
            }
        }
        out.push((start, end));
    }
    Ok(out)
}

/// Parses "HH:MM" (00:00 to 24:00) into minutes since midnight.
pub fn parse_time(s: &str) -> Result<u16, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not a time like 09:30"))?;
    let h: u16 = h
        .parse()
        .map_err(|_| format!("`{s}` is not a time like 09:30"))?;
    let m: u16 = m
        .parse()
        .map_err(|_| format!("`{s}` is not a time like 09:30"))?;
    if h > 24 || m > 59 || (h == 24 && m > 0) {
        return Err(format!("`{s}` is not a time of day (00:00 to 24:00)"));
    }
    Ok(h * 60 + m)
}

/// Parses durations such as "90s", "15m", "1h30m", "7d" into seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("an empty duration".to_string());
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut any = false;
    for ch in t.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(format!(
                    "`{t}` is not a duration like 90s, 15m, 1h30m or 7d"
                ))
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{t}` is not a duration like 90s, 15m, 1h30m or 7d"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(format!("`{t}` needs a unit: s, m, h, d or w (e.g. 60m)"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_parse_or_explain() {
        assert_eq!(parse_hours("09:00-17:00"), Ok(vec![(540, 1020)]));
        assert_eq!(
            parse_hours("09:00-12:00, 13:00-17:30"),
            Ok(vec![(540, 720), (780, 1050)])
        );
        assert_eq!(parse_hours("closed"), Ok(vec![]));
        assert!(parse_hours("17:00-09:00").is_err());
        assert!(parse_hours("25:00-26:00").is_err());
        assert!(parse_hours("09:00-12:00, 11:00-13:00").is_err());
        assert!(parse_hours("nine to five").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
