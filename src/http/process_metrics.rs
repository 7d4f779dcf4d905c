//! The standard process metrics (`process_resident_memory_bytes`, `process_cpu_seconds_total`,
//! `process_open_fds`, `process_max_fds`, `process_start_time_seconds`, …), read from
//! `/proc/self` at each scrape, with the names Prometheus' own client libraries use. Not on
//! Linux: nothing.

use super::metric_catalog::{Family, Kind, family, write_family};

/// `/proc` counts CPU time and start time in clock ticks of `USER_HZ`, which Linux fixes at
/// 100 for every user-space interface.
const TICKS_PER_SEC: f64 = 100.0;

#[rustfmt::skip]
const FAMILIES: &[Family] = &[
    family("process_resident_memory_bytes", Kind::Gauge, "Resident memory size in bytes."),
    family("process_virtual_memory_bytes", Kind::Gauge, "Virtual memory size in bytes."),
    family("process_cpu_seconds_total", Kind::Counter, "Total user and system CPU time spent in seconds."),
    family("process_open_fds", Kind::Gauge, "Number of open file descriptors."),
    family("process_max_fds", Kind::Gauge, "Maximum number of open file descriptors."),
    family("process_start_time_seconds", Kind::Gauge, "Start time of the process since unix epoch in seconds."),
    family("process_threads", Kind::Gauge, "Number of OS threads in the process."),
];

/// The process families, as text; empty where `/proc/self` cannot be read.
pub fn render() -> String {
    let mut out = String::new();
    let Some(values) = read() else {
        return out;
    };
    for (family, value) in FAMILIES.iter().zip(values) {
        write_family(&mut out, family, &[(Vec::new(), value)]);
    }
    out
}

/// The values in the order of `FAMILIES`.
fn read() -> Option<[f64; 7]> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |key: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        let n: f64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
        Some(n * 1024.0)
    };
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name is in parentheses and may hold spaces: fields count from after it,
    // where field 3 (state) is index 0.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    let cpu = (field(14)? + field(15)?) / TICKS_PER_SEC;
    let threads = field(20)?;
    let boot: f64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let start = boot + field(22)? / TICKS_PER_SEC;
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .unwrap_or(f64::INFINITY);
    Some([
        kib("VmRSS:")?,
        kib("VmSize:")?,
        cpu,
        open,
        max,
        start,
        threads,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_is_read_from_proc() {
        let [rss, _, _, open, max, start, threads] = read().expect("/proc/self");
        assert!(rss > 1_000_000.0, "rss {rss}");
        assert!(open >= 3.0 && open <= max, "fds {open} of {max}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0,
            "start {start}"
        );
        assert!(threads >= 1.0);
    }
}
