//! The routes `utoipa::path` cannot describe (one handler behind many paths, a WebSocket
//! upgrade), added to the OpenAPI document from the same tables that register them.

use utoipa::Modify;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::{Required, ResponseBuilder};

/// Every webhook path (`webhooks::documented`) and the real-time routes.
pub struct UnannotatedRoutes;

impl Modify for UnannotatedRoutes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, provider) in crate::webhooks::documented() {
            let operation = with_path_parameters(
                OperationBuilder::new()
                    .tag("webhooks")
                    .summary(Some(format!("{provider} delivery (signed; processed once)")))
                    .response("200", ResponseBuilder::new().description(
                        "`{status, provider}`: processed, duplicate_ignored or ignored_unknown_tenant (TwiML for Twilio voice and SMS)",
                    ))
                    .response("401", ResponseBuilder::new().description("Signature refused, stale or not configured"))
                    .response("404", ResponseBuilder::new().description("Unknown event or kind"))
                    .response("422", ResponseBuilder::new().description("Malformed delivery"))
                    .response("423", ResponseBuilder::new().description("The company is in lockdown")),
                &path,
            );
            openapi
                .paths
                .add_path_operation(&path, vec![HttpMethod::Post], operation.build());
        }
        let websocket = OperationBuilder::new()
            .tag("realtime")
            .summary(Some(
                "WebSocket upgrade (token as bearer or `access_token`)",
            ))
            .response(
                "101",
                ResponseBuilder::new().description("Switching to the WebSocket protocol"),
            )
            .response(
                "401",
                ResponseBuilder::new().description("No valid token; refused before the upgrade"),
            );
        openapi
            .paths
            .add_path_operation("/ws", vec![HttpMethod::Get], websocket.build());
        let emit = OperationBuilder::new()
            .tag("realtime")
            .summary(Some("Publish a test event (development only, `X-Dev-Key`)"))
            .response("202", ResponseBuilder::new().description("Published"))
            .response(
                "403",
                ResponseBuilder::new().description("Wrong `X-Dev-Key`"),
            )
            .response(
                "404",
                ResponseBuilder::new().description("Production, or no `DEV_EMIT_KEY`"),
            );
        openapi
            .paths
            .add_path_operation("/ws/test-emit", vec![HttpMethod::Get], emit.build());
    }
}

/// Declares each `{name}` of `path` as a required path parameter.
fn with_path_parameters(mut operation: OperationBuilder, path: &str) -> OperationBuilder {
    for segment in path.split('{').skip(1) {
        if let Some((name, _)) = segment.split_once('}') {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::String),
                    )),
            );
        }
    }
    operation
}
