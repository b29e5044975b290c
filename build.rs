//! Exposes the nginx this module is built against to the integration tests.
use std::env;

fn main() {
    // nginx-sys (links = "nginx") publishes its build directory as DEP_NGINX_BUILD_DIR.
    if let Ok(dir) = env::var("DEP_NGINX_BUILD_DIR") {
        println!("cargo::rustc-env=NGX_JWT_BUILD_DIR={dir}");
    }
    if let Ok(version) = env::var("DEP_NGINX_VERSION") {
        println!("cargo::rustc-env=NGX_JWT_NGINX_VERSION={version}");
    }
    println!("cargo::rerun-if-env-changed=DEP_NGINX_BUILD_DIR");
}
