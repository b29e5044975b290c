//! `ngx_http_auth_jwt_module`: JWT authentication for nginx, a hardened drop-in replacement for
//! TeslaGov's ngx-http-auth-jwt-module.
//!
//! The JWT logic lives in the `jwt-core` crate; this crate is the nginx glue:
//! - `module`: the module's definition and configuration callbacks;
//! - `directives`: the directive table and its setters; `conf`: each level's settings, their
//!   merge, and what verification is compiled from;
//! - `access`: the access check; `verdict`: the one verification per request shared by the
//!   check and the variables; `token`: where the token is found;
//! - `key_request`: keys fetched over HTTP at request time, kept in `key_zone`, the shared
//!   memory every worker reads;
//! - `revocation`: the revocation list in shared memory, its state file and its API;
//! - `headers`: the identity headers across the request's lifecycle; `variables`: `$jwt_*`;
//! - `ngx`: safe wrappers over the nginx operations the rest uses.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod access;
mod conf;
mod directives;
mod headers;
mod key_request;
mod key_zone;
mod module;
mod ngx;
mod revocation;
mod token;
mod variables;
mod verdict;
