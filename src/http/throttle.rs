//! Wrong webhook secrets per source address: past `limit` in a minute the address is
//! answered 429 without its secret being compared, until its minute is over — the right
//! secret included, since it is not looked at. IPv6 addresses count per /64 (one host
//! holds a whole /64). The table holds at most `capacity` addresses: when it is full,
//! finished minutes are dropped first, then the eighth whose minutes started earliest, so
//! memory stays bounded whatever the number of addresses.
//!
//! Behind a reverse proxy every request comes from the proxy: list it in
//! `[http] trusted_proxies`, and the address the proxy appended to `X-Forwarded-For` (the
//! rightmost one that is not itself a trusted proxy) is counted instead.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The table's size when none is given.
pub const DEFAULT_CAPACITY: usize = 10_000;
const WINDOW: Duration = Duration::from_secs(60);

pub struct Throttle {
    limit: u32,
    capacity: usize,
    trusted: Vec<IpAddr>,
    table: Mutex<HashMap<IpAddr, Minute>>,
}

#[derive(Clone, Copy)]
struct Minute {
    started: Instant,
    failures: u32,
}

impl Throttle {
    /// `limit` 0 turns it off.
    pub fn new(limit: u32, capacity: usize, trusted: Vec<IpAddr>) -> Self {
        Throttle {
            limit,
            capacity: capacity.max(1),
            trusted,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// The address a request is counted under: the peer, or, when the peer is a trusted
    /// proxy, the rightmost untrusted address of `X-Forwarded-For`.
    pub fn source(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> IpAddr {
        let peer = peer.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        if !self.trusted.contains(&peer.to_canonical()) {
            return key(peer);
        }
        let forwarded = forwarded_for
            .into_iter()
            .flat_map(|v| v.rsplit(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .find(|a| !self.trusted.contains(&a.to_canonical()));
        key(forwarded.unwrap_or(peer))
    }

    /// True when `source` has used up its wrong secrets for this minute.
    pub fn blocked(&self, source: IpAddr, now: Instant) -> bool {
        if self.limit == 0 {
            return false;
        }
        let table = self.table.lock().expect("throttle lock");
        table
            .get(&source)
            .is_some_and(|m| now.duration_since(m.started) < WINDOW && m.failures >= self.limit)
    }

    /// Count a wrong secret from `source`.
    pub fn failed(&self, source: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let mut table = self.table.lock().expect("throttle lock");
        if !table.contains_key(&source) && table.len() >= self.capacity {
            table.retain(|_, m| now.duration_since(m.started) < WINDOW);
            if table.len() >= self.capacity {
                // Drop the oldest eighth at once, so a flood of new addresses costs one
                // scan per capacity/8 of them, not one each.
                let mut starts: Vec<Instant> = table.values().map(|m| m.started).collect();
                let cut = (starts.len() / 8).max(1);
                let (_, nth, _) = starts.select_nth_unstable(cut - 1);
                let cutoff = *nth;
                table.retain(|_, m| m.started > cutoff);
            }
        }
        let minute = table.entry(source).or_insert(Minute {
            started: now,
            failures: 0,
        });
        if now.duration_since(minute.started) >= WINDOW {
            *minute = Minute {
                started: now,
                failures: 0,
            };
        }
        minute.failures = minute.failures.saturating_add(1);
    }

    /// Addresses in the table (for tests and metrics).
    pub fn len(&self) -> usize {
        self.table.lock().expect("throttle lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// IPv4 as is (an IPv4-mapped IPv6 address as its IPv4), IPv6 by its /64.
fn key(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_twenty_first_failure_in_a_minute_blocks_that_address_alone() {
        let t = Throttle::new(20, 100, vec![]);
        let (now, a, b) = (Instant::now(), ip("192.0.2.1"), ip("192.0.2.2"));
        for _ in 0..20 {
            assert!(!t.blocked(a, now));
            t.failed(a, now);
        }
        assert!(t.blocked(a, now));
        assert!(!t.blocked(b, now));
        assert!(!t.blocked(a, now + WINDOW), "the minute is over");
        t.failed(a, now + WINDOW);
        assert!(!t.blocked(a, now + WINDOW));
    }

    #[test]
    fn the_table_stays_bounded_and_ipv6_counts_per_64() {
        let t = Throttle::new(20, 50, vec![]);
        let now = Instant::now();
        for i in 0..10_000u32 {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.failed(addr, now + Duration::from_millis(u64::from(i)));
        }
        assert!(t.len() <= 50, "{}", t.len());
        // The newest addresses are the ones kept, and still counted.
        let newest = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + 9_999));
        for _ in 0..19 {
            t.failed(newest, now + Duration::from_secs(10));
        }
        assert!(t.blocked(newest, now + Duration::from_secs(10)));
        let t = Throttle::new(20, 50, vec![]);
        let (x, y) = (ip("2001:db8::1"), ip("2001:db8::ffff:2"));
        assert_eq!(t.source(Some(x), None), t.source(Some(y), None));
        assert_eq!(
            t.source(Some(ip("::ffff:192.0.2.7")), None),
            ip("192.0.2.7")
        );
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let t = Throttle::new(20, 50, vec![ip("127.0.0.1")]);
        let xff = Some("198.51.100.1, 203.0.113.5");
        assert_eq!(t.source(Some(ip("127.0.0.1")), xff), ip("203.0.113.5"));
        assert_eq!(t.source(Some(ip("192.0.2.9")), xff), ip("192.0.2.9"));
        assert_eq!(t.source(Some(ip("127.0.0.1")), None), ip("127.0.0.1"));
        assert_eq!(
            t.source(Some(ip("127.0.0.1")), Some("garbage, 127.0.0.1")),
            ip("127.0.0.1")
        );
    }
}
