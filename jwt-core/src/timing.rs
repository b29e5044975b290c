//! Where a worker's time goes, for `scripts/bench.sh`: how long the access handler and the
//! signature checks took, by the clock the micro-benchmark reads.
//!
//! perf's sampling slowed what it sampled by 11-15% on this project's VMs, so the benchmark
//! times these two spans from inside instead. Only a build with the `timing` feature keeps the
//! clock reads; without it `measure` is the call alone.

/// A span the benchmark reads.
#[derive(Clone, Copy)]
pub enum Span {
    /// The module's access handler, from entry to return.
    Handler = 0,
    /// One signature check in the crypto library.
    Signature = 1,
}

/// Calls and nanoseconds spent, per span, in this thread.
#[derive(Clone, Copy, Default)]
pub struct Total {
    pub calls: u64,
    pub nanos: u64,
}

#[cfg(feature = "timing")]
mod clock {
    use super::{Span, Total};
    use std::cell::Cell;
    use std::time::Instant;

    thread_local! {
        static TOTALS: Cell<[Total; 2]> = const { Cell::new([Total { calls: 0, nanos: 0 }; 2]) };
    }

    pub fn measure<T>(span: Span, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        TOTALS.with(|t| {
            let mut all = t.get();
            if let Some(total) = all.get_mut(span as usize) {
                total.calls += 1;
                total.nanos = total.nanos.saturating_add(nanos);
            }
            t.set(all);
        });
        out
    }

    pub fn totals() -> Option<[Total; 2]> {
        Some(TOTALS.with(Cell::get))
    }
}

#[cfg(not(feature = "timing"))]
mod clock {
    use super::{Span, Total};

    #[inline(always)]
    pub fn measure<T>(_: Span, f: impl FnOnce() -> T) -> T {
        f()
    }

    pub fn totals() -> Option<[Total; 2]> {
        None
    }
}

/// Runs `f`, adding its time to `span` in a timing build.
pub use clock::measure;
/// This thread's totals, indexed by `Span`; `None` unless built with `timing`.
pub use clock::totals;

#[cfg(all(test, feature = "timing"))]
mod tests {
    use super::*;

    #[test]
    fn spans_add_up_apart() {
        let before = totals().unwrap();
        measure(Span::Signature, || {
            std::thread::sleep(std::time::Duration::from_millis(2))
        });
        let after = totals().unwrap();
        assert_eq!(after[1].calls, before[1].calls + 1);
        assert!(after[1].nanos - before[1].nanos >= 2_000_000);
        assert_eq!(after[0].calls, before[0].calls);
    }
}
