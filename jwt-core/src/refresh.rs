//! When keys fetched over HTTP are fetched again: the rules of `auth_jwt_key_request`'s cache,
//! apart from the shared memory that holds the state they read (in the nginx glue).

/// An unknown `kid` refetches a source at most this often.
pub const REFETCH_COOLDOWN_MS: u64 = 30_000;
/// After a failed fetch the next waits this long, doubled per further failure up to
/// `RETRY_MAX_MS`.
pub const RETRY_MS: u64 = 5_000;
pub const RETRY_MAX_MS: u64 = 60_000;
/// A fetch not finished after this long is taken as lost and may be started again: the last
/// resort, when the death of its worker went unseen (its pid reused).
pub const LEASE_MS: u64 = 120_000;

/// A slot's state as one request reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub generation: u64,
    pub fetched_at: u64,
    pub epoch: u64,
    pub attempted_at: u64,
    pub failures: u64,
    pub in_flight: u64,
    /// The process running the fetch under way has died (its fetch will never end).
    pub owner_gone: bool,
    pub refetched_at: u64,
}

/// How long fetched keys serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timing {
    /// `auth_jwt_key_cache`: keys are used this long after their fetch.
    pub cache_ms: u64,
    /// While fetching fails, expired keys are still used this long past `cache_ms`.
    pub stale_ms: u64,
}

/// What a request does about one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The keys serve; `refresh`: start a fetch in the background (nobody waits for it).
    Ready { stale: bool, refresh: bool },
    /// No keys serve: start a fetch and wait for it.
    Fetch,
    /// No keys serve and a fetch is under way: wait for it.
    Wait,
    /// No keys serve and none may be fetched yet (a failure is recent).
    Unavailable,
}

impl Snapshot {
    fn in_flight(&self, now: u64) -> bool {
        self.in_flight != 0 && !self.owner_gone && now.saturating_sub(self.in_flight) < LEASE_MS
    }

    /// No fetch is under way and the last failure, if any, is old enough to try again.
    pub fn may_fetch(&self, now: u64) -> bool {
        if self.in_flight(now) {
            return false;
        }
        if self.failures == 0 {
            return true;
        }
        let shift = self.failures.saturating_sub(1).min(4);
        let wait = (RETRY_MS << shift).min(RETRY_MAX_MS);
        now.saturating_sub(self.attempted_at) >= wait
    }

    /// Whether an unknown `kid` may fetch the source again: once per cooldown, and not
    /// sooner than a failure's back-off allows any fetch.
    pub fn may_refetch(&self, now: u64) -> bool {
        let cooled =
            self.refetched_at == 0 || now.saturating_sub(self.refetched_at) >= REFETCH_COOLDOWN_MS;
        cooled && self.may_fetch(now)
    }

    /// Whether a fetch is under way that a request may wait for.
    pub fn fetching(&self, now: u64) -> bool {
        self.in_flight(now)
    }
}

/// What a request does about a source in state `s` at `now` (milliseconds), the zone being at
/// `epoch`; `waiting_since`: when the request started waiting for keys, if it did (keys
/// fetched since then serve it, whatever the cache time: with `auth_jwt_key_cache 0` it
/// would otherwise wait for ever).
///
/// Fresh keys (younger than the cache time) serve, and are refreshed in the background from
/// three quarters of it, or after a reload: a busy server never sees them expire. Expired keys
/// serve only while fetching fails, up to the stale time; otherwise the request waits for a
/// fetch (`auth_jwt_key_cache 0`: every request, sharing the fetch under way).
pub fn decide(
    s: &Snapshot,
    now: u64,
    epoch: u64,
    timing: Timing,
    waiting_since: Option<u64>,
) -> Need {
    if waiting_since.is_some_and(|since| s.fetched_at != 0 && s.fetched_at >= since) {
        return Need::Ready {
            stale: false,
            refresh: false,
        };
    }
    let may_fetch = s.may_fetch(now);
    let without_keys = || {
        if s.in_flight(now) {
            Need::Wait
        } else if may_fetch {
            Need::Fetch
        } else {
            Need::Unavailable
        }
    };
    if s.fetched_at == 0 {
        return without_keys();
    }
    let age = now.saturating_sub(s.fetched_at);
    if age <= timing.cache_ms {
        // With no cache time there is nothing to refresh ahead of: every request fetches.
        let due = timing.cache_ms > 0 && age >= timing.cache_ms - timing.cache_ms / 4;
        let ahead = due || s.epoch != epoch;
        return Need::Ready {
            stale: false,
            refresh: ahead && may_fetch,
        };
    }
    let failing = s.failures > 0 && s.attempted_at >= s.fetched_at;
    if failing && age <= timing.cache_ms.saturating_add(timing.stale_ms) {
        return Need::Ready {
            stale: true,
            refresh: may_fetch,
        };
    }
    without_keys()
}

/// Whether a followed list (`auth_jwt_revocation_request`) is due to be fetched again: never
/// fetched, fetched `interval_ms` ago or more, or under an earlier configuration. Nobody waits
/// for it; `Snapshot::may_fetch` still applies (one fetch at a time, back-off after failures).
pub fn follow_due(s: &Snapshot, now: u64, epoch: u64, interval_ms: u64) -> bool {
    s.fetched_at == 0 || now.saturating_sub(s.fetched_at) >= interval_ms || s.epoch != epoch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_followed_list_is_due_after_its_interval_or_a_reload() {
        let s = Snapshot {
            fetched_at: 10_000,
            epoch: 3,
            ..Snapshot::default()
        };
        assert!(!follow_due(&s, 14_999, 3, 5_000));
        assert!(follow_due(&s, 15_000, 3, 5_000));
        assert!(follow_due(&s, 11_000, 4, 5_000));
        assert!(follow_due(&Snapshot::default(), 1, 0, 5_000));
    }

    const T: Timing = Timing {
        cache_ms: 60_000,
        stale_ms: 3_600_000,
    };

    fn fetched(at: u64) -> Snapshot {
        Snapshot {
            generation: 1,
            fetched_at: at,
            attempted_at: at,
            ..Snapshot::default()
        }
    }

    #[test]
    fn cold_source_fetches_and_a_fetch_under_way_is_waited_for() {
        let cold = Snapshot::default();
        assert_eq!(decide(&cold, 1000, 0, T, None), Need::Fetch);
        let fetching = Snapshot {
            in_flight: 1000,
            ..cold
        };
        assert_eq!(decide(&fetching, 1001, 0, T, None), Need::Wait);
        // A fetch whose worker died is lost: at once when the death is seen, else after the
        // lease.
        let orphan = Snapshot {
            owner_gone: true,
            ..fetching
        };
        assert_eq!(decide(&orphan, 1001, 0, T, None), Need::Fetch);
        assert_eq!(decide(&fetching, 1000 + LEASE_MS, 0, T, None), Need::Fetch);
    }

    #[test]
    fn fresh_keys_serve_and_are_refreshed_ahead() {
        let s = fetched(1);
        let ready = |refresh| Need::Ready {
            stale: false,
            refresh,
        };
        assert_eq!(decide(&s, 30_000, 0, T, None), ready(false));
        assert_eq!(decide(&s, 46_000, 0, T, None), ready(true));
        // After a reload (a new epoch), at once.
        assert_eq!(decide(&s, 2, 1, T, None), ready(true));
        // Not while a fetch is under way.
        let busy = Snapshot {
            in_flight: 45_000,
            ..s
        };
        assert_eq!(decide(&busy, 46_000, 0, T, None), ready(false));
    }

    #[test]
    fn expired_keys_wait_for_a_fetch_unless_fetching_fails() {
        let s = fetched(1);
        assert_eq!(decide(&s, 61_002, 0, T, None), Need::Fetch);
        let failing = Snapshot {
            failures: 1,
            attempted_at: 61_003,
            ..s
        };
        let stale = |refresh| Need::Ready {
            stale: true,
            refresh,
        };
        assert_eq!(decide(&failing, 62_000, 0, T, None), stale(false));
        assert_eq!(decide(&failing, 66_003, 0, T, None), stale(true));
        assert_eq!(
            decide(&failing, 3_661_002, 0, T, None),
            Need::Fetch,
            "past stale"
        );
        let no_stale = Timing { stale_ms: 0, ..T };
        assert_eq!(
            decide(&failing, 62_000, 0, no_stale, None),
            Need::Unavailable
        );
    }

    #[test]
    fn cache_zero_waits_every_time_but_shares_the_fetch() {
        let zero = Timing { cache_ms: 0, ..T };
        let s = fetched(1000);
        assert_eq!(decide(&s, 1001, 0, zero, None), Need::Fetch);
        // A request that waited for a fetch takes what it brought.
        assert_eq!(
            decide(&s, 1001, 0, zero, Some(999)),
            Need::Ready {
                stale: false,
                refresh: false
            }
        );
        assert_eq!(
            decide(&s, 1001, 0, zero, Some(1000)),
            decide(&s, 1001, 0, zero, Some(999))
        );
        assert_eq!(decide(&s, 1002, 0, zero, Some(1001)), Need::Fetch);
        let busy = Snapshot {
            in_flight: 1001,
            ..s
        };
        assert_eq!(decide(&busy, 1002, 0, zero, None), Need::Wait);
        // Keys of this very millisecond serve, and start no refresh of their own.
        assert_eq!(
            decide(&s, 1000, 0, zero, None),
            Need::Ready {
                stale: false,
                refresh: false
            }
        );
    }

    #[test]
    fn failures_back_off_doubling_up_to_a_minute() {
        let after = |failures: u64, at: u64| Snapshot {
            failures,
            attempted_at: at,
            ..Snapshot::default()
        };
        assert!(!after(1, 0).may_fetch(RETRY_MS - 1));
        assert!(after(1, 0).may_fetch(RETRY_MS));
        assert!(!after(2, 0).may_fetch(2 * RETRY_MS - 1));
        assert!(after(2, 0).may_fetch(2 * RETRY_MS));
        assert!(after(9, 0).may_fetch(RETRY_MAX_MS));
        assert_eq!(decide(&after(1, 0), 100, 0, T, None), Need::Unavailable);
    }

    #[test]
    fn unknown_kids_refetch_once_per_cooldown() {
        let s = fetched(1);
        assert!(s.may_refetch(2));
        let refetched = Snapshot {
            refetched_at: 2,
            ..s
        };
        assert!(!refetched.may_refetch(REFETCH_COOLDOWN_MS));
        assert!(refetched.may_refetch(REFETCH_COOLDOWN_MS + 2));
        let failed = Snapshot {
            failures: 1,
            attempted_at: 10,
            ..s
        };
        assert!(
            !failed.may_refetch(11),
            "a failure's back-off holds refetches too"
        );
    }
}
