//! `ngx_http_auth_jwt_module`: JWT authentication for nginx, a hardened drop-in replacement for
//! TeslaGov's ngx-http-auth-jwt-module.
//!
//! The JWT logic lives in the `jwt-core` crate; this crate is the nginx glue: directives and
//! merge (`conf`, `glue`), the checks (`handler`), the identity headers across the request's
//! lifecycle (`headers`), the per-request verdict shared by everything (`outcome`) and the
//! variables (`variables`).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod conf;
mod glue;
mod handler;
mod headers;
mod ngx_util;
mod outcome;
mod variables;
