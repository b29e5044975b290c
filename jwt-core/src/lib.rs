//! JWT verification core for the nginx `auth_jwt` module.
//!
//! Everything here runs inside nginx worker processes, where a panic takes the
//! worker down with all its connections: the crate is written so that no input
//! (token, key file, header value) can make it panic.

#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod alg;
mod b64url;
mod cache;
mod der;
mod error;
mod header;
mod json;
mod keys;
pub mod refresh;
pub mod revocation;
mod source;
mod text;
mod verify;

pub use alg::{decode_secret, Algorithm, Family, SecretEncoding};
pub use cache::{entry_cost, TokenCache};
pub use error::{Error, KeyError, Reason};
pub use keys::{KeySet, Loaded};
pub use source::{
    cookie_pairs, cookie_values, find_cookie, find_query_arg, has_blank, loose_name_eq,
    query_pairs, query_values, strip_bearer, without_query_args, Source, SourceKind,
};
pub use text::{percent_encode_component, quote_param, safe_url};
pub use verify::{
    header_safe, json_for_header, names_unknown_kid, render, verify, Claims, Jwt, Policy,
    MAX_TOKEN_LEN,
};
