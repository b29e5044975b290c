//! The harness itself (docs/DEVELOPING.md: Tests): a crashed worker must fail the test that
//! caused it.

mod common;
use common::*;

#[test]
fn worker_crash_fails_the_test() {
    let n = Nginx::start(&server("location / { return 204; }"));
    assert_eq!(n.get("/", &[]).status, 204);
    let master = n.master_pid();
    let children =
        std::fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap();
    let worker: i32 = children
        .split_whitespace()
        .next()
        .expect("a worker")
        .parse()
        .unwrap();
    // SAFETY: signals a worker of the nginx this test started.
    unsafe {
        libc::kill(worker, libc::SIGSEGV);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !n.error_log().contains("exited on signal") {
        assert!(
            std::time::Instant::now() < deadline,
            "no crash logged:\n{}",
            n.error_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let prefix = n.prefix.clone();
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(n)));
    assert!(
        dropped.is_err(),
        "Drop must fail the test after a worker crash"
    );
    // Drop keeps a failed test's prefix for inspection; this failure was the point.
    let _ = std::fs::remove_dir_all(prefix);
}

#[test]
fn clean_run_passes() {
    let n = Nginx::start(&server("location / { return 204; }"));
    assert_eq!(n.get("/", &[]).status, 204);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(n)));
    assert!(dropped.is_ok());
}
