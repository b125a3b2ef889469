//! Pure conversions from `kennel_units::Resources` values to cgroup file values, shared by
//! the v1 and v2 writers.

/// The CFS period kennel uses: 100 ms.
pub(crate) const CPU_PERIOD_US: u64 = 100_000;

/// The CFS quota for `millis` thousandths of a core over [`CPU_PERIOD_US`]; the kernel's
/// minimum quota is 1 ms.
pub(crate) fn cpu_quota_us(millis: u32) -> u64 {
    (u64::from(millis) * 100).max(1000)
}

/// v2 `cpu.max`: `"QUOTA PERIOD"`, e.g. `"50000 100000"` for half a core.
pub(crate) fn cpu_max(millis: u32) -> String {
    format!("{} {}", cpu_quota_us(millis), CPU_PERIOD_US)
}

/// v1 `cpu.shares` for a v2-style weight (1..=10000, default 100 = 1024 shares).
pub(crate) fn cpu_shares(weight: u32) -> u64 {
    (u64::from(weight) * 1024 / 100).clamp(2, 262_144)
}

/// v2 `cpu.weight` / `io.weight`, clamped into 1..=10000.
pub(crate) fn weight(weight: u32) -> u32 {
    weight.clamp(1, 10_000)
}

/// v1 `blkio.weight`: 1..=10000 scaled linearly into 10..=1000.
pub(crate) fn blkio_weight(weight: u32) -> u64 {
    let w = u64::from(self::weight(weight));
    10 + (w - 1) * 990 / 9999
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(cpu_max(500), "50000 100000");
        assert_eq!(cpu_max(2000), "200000 100000");
        assert_eq!(cpu_quota_us(1), 1000);
        assert_eq!(cpu_shares(100), 1024);
        assert_eq!(cpu_shares(1), 10);
        assert_eq!(cpu_shares(10_000), 102_400);
        assert_eq!(cpu_shares(0), 2);
        assert_eq!(weight(0), 1);
        assert_eq!(weight(20_000), 10_000);
        assert_eq!(blkio_weight(1), 10);
        assert_eq!(blkio_weight(10_000), 1000);
        assert_eq!(blkio_weight(100), 19);
        assert_eq!(blkio_weight(5000), 504);
    }
}
