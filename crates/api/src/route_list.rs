//! Every route the application registers goes through [`resource`], which records its path, so
//! a test can hold the registered routes against `/openapi.json` in both directions: a route
//! cannot be added without being documented, nor documented without being served.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use actix_web::{Resource, web};

/// The documentation's own routes: the Swagger UI, its redirect and the document itself.
pub const DOCUMENTATION: [&str; 3] = ["/docs", "/docs/{_:.*}", "/openapi.json"];

fn registry() -> &'static Mutex<BTreeSet<String>> {
    static REGISTERED: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
    REGISTERED.get_or_init(Mutex::default)
}

/// `web::resource(path)`, recorded.
pub fn resource(path: impl Into<String>) -> Resource {
    let path = path.into();
    record(&path);
    web::resource(path)
}

/// Records a path registered some other way (the documentation UI's own routes).
pub fn record(path: &str) {
    if let Ok(mut paths) = registry().lock() {
        paths.insert(path.to_owned());
    }
}

/// The paths registered so far in this process (every worker's `App` registers the same ones).
pub fn registered() -> Vec<String> {
    registry()
        .lock()
        .map(|paths| paths.iter().cloned().collect())
        .unwrap_or_default()
}
