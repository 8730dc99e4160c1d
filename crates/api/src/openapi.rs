//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::OpenApi;

use crate::problem::{FieldError, Problem};
use crate::routes::ops;

#[derive(OpenApi)]
#[openapi(
    info(title = "Otto API", description = "Sales-call intelligence backend for home-services companies."),
    paths(ops::health, ops::ready, ops::worker_heartbeat, ops::metrics),
    components(schemas(Problem, FieldError)),
    tags((name = "ops", description = "Operational endpoints"))
)]
pub struct ApiDoc;
