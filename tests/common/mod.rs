//! Integration-test harness: a real nginx with the built module, on 127.0.0.1.
//!
//! Every test starts its own nginx (master + one worker) in a fresh prefix under
//! `CARGO_TARGET_TMPDIR`, talks to it over plain TCP with a tiny HTTP/1.1 client, and stops it in
//! `Drop`, which also fails the test when the error log shows a worker crash
//! (`exited on signal`) or any `[alert]`, `[crit]` or `[emerg]` line.
//!
//! - [`nginx`]: the nginx process, its configuration (placeholders `{{PORT}}`, `{{UPSTREAM}}`,
//!   `{{PREFIX}}`, `{{KEYS}}`) and `nginx -t`;
//! - [`http`]: the HTTP/1.1 client and [`Response`];
//! - [`upstream`]: the echo upstream behind every harness nginx;
//! - [`provider`]: an identity provider's JWKS endpoint whose answers a test sets and counts;
//! - [`tokens`]: every token the tests send, and the secrets and keys behind them.
//!
//! Tests `use common::*`: everything public in `nginx`, `http` and `tokens` is re-exported here
//! (the echo upstream is reached through [`Nginx`] and [`Response`]).
//!
//! Environment overrides (so the same suite can run against another nginx, e.g. Debian's):
//! - `NGX_JWT_NGINX`: the nginx binary. Default: `$NGX_JWT_BUILD_DIR/nginx`, the nginx built by
//!   `build.rs` (`NGX_JWT_BUILD_DIR` is a compile-time variable of this package).
//! - `NGX_JWT_MODULE`: the module `.so`. Default: derived from the test executable,
//!   `target/<profile>/deps/<test>` → `target/<profile>/libngx_http_auth_jwt_module.so`; that
//!   default must be at least as new as every source file of the module, otherwise the harness
//!   fails (run `cargo build`).

#![allow(dead_code)]

pub mod http;
pub mod nginx;
pub mod provider;
pub mod tokens;
pub mod upstream;

// Each test binary uses its own part of the harness; what one leaves unused is no mistake.
#[allow(unused_imports)]
pub use {http::*, nginx::*, provider::*, serde_json::json, tokens::*};
