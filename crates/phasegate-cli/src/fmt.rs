//! Numbers for people: sizes and durations as the reports show them. The
//! engine returns bytes and milliseconds; formatting them is the CLI's.

/// `12.3 MB`: decimal units, one decimal, whole bytes under a kilobyte.
pub(crate) fn bytes(b: i64) -> String {
    let scaled = [("GB", 1e9), ("MB", 1e6), ("kB", 1e3)].into_iter().find(|(_, unit)| b as f64 >= *unit);
    match scaled {
        Some((name, unit)) => format!("{:.1} {name}", b as f64 / unit),
        None => format!("{b} B"),
    }
}

/// How long a lock was held: `0.4 ms` under 10 ms, else whole milliseconds.
pub(crate) fn held(ms: f64) -> String {
    let decimals = usize::from(ms < 10.0);
    format!("{ms:.decimals$} ms")
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_and_holds() {
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::bytes(1_500), "1.5 kB");
        assert_eq!(super::bytes(9_500_000), "9.5 MB");
        assert_eq!(super::bytes(2_000_000_000), "2.0 GB");
        assert_eq!(super::held(0.42), "0.4 ms");
        assert_eq!(super::held(37.4), "37 ms");
    }
}
