//! Safe wrappers over the nginx operations the module uses, each around one raw operation:
//! callers get slices, `Option`s and `Result`s. Nothing here knows this module's directives
//! or its index among nginx's modules.

pub mod conf;
pub mod guard;
pub mod headers;
pub mod phases;
pub mod pool;
pub mod process;
pub mod request;
pub mod response;
pub mod shm;
pub mod string;
pub mod subrequest;
pub mod timer;
