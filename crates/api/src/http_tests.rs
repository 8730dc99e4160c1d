//! The request pipeline (context middleware, problem fallback, extractor configuration) on a
//! JSON route, as the application wires it: oversized, malformed and mistyped bodies.

use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, test, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{extractors, problem_fallback, request_context};

#[derive(Deserialize)]
struct NewThing {
    name: String,
}

async fn create(body: web::Json<NewThing>) -> HttpResponse {
    HttpResponse::Created().json(json!({ "name": body.name }))
}

async fn call(request: test::TestRequest) -> (u16, String, Value) {
    let app = test::init_service(
        App::new()
            .app_data(extractors::json_config(64))
            .app_data(extractors::path_config())
            .wrap(problem_fallback::error_handlers())
            .wrap(from_fn(request_context::track_request))
            .route("/things", web::post().to(create))
            .route(
                "/things/{id}",
                web::get().to(|id: web::Path<u32>| async move { id.to_string() }),
            ),
    )
    .await;
    let response = test::call_service(&app, request.to_request()).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value =
        serde_json::from_slice(&test::read_body(response).await).unwrap_or(Value::Null);
    (status, content_type, body)
}

#[actix_web::test]
async fn oversized_body_is_413_problem() {
    let request = test::TestRequest::post()
        .uri("/things")
        .insert_header(("X-Request-Id", "big-1"))
        .set_json(json!({ "name": "x".repeat(200) }));
    let (status, content_type, body) = call(request).await;
    assert_eq!(
        (status, content_type.as_str()),
        (413, "application/problem+json")
    );
    assert_eq!(body["type"], "/problems/payload-too-large");
    assert_eq!(body["trace_id"], "big-1");
    assert_eq!(body["instance"], "/things");
}

#[actix_web::test]
async fn missing_field_is_422_naming_it() {
    let request = test::TestRequest::post()
        .uri("/things")
        .set_json(json!({ "nom": "x" }));
    let (status, content_type, body) = call(request).await;
    assert_eq!(
        (status, content_type.as_str()),
        (422, "application/problem+json")
    );
    assert_eq!(
        body["errors"],
        json!([{ "field": "name", "message": "missing field `name`" }])
    );
    assert!(body["trace_id"].as_str().is_some_and(|t| !t.is_empty()));
}

#[actix_web::test]
async fn malformed_json_is_422_and_wrong_content_type_is_415() {
    let request = test::TestRequest::post()
        .uri("/things")
        .insert_header(("content-type", "application/json"))
        .set_payload("{not json");
    let (status, _, body) = call(request).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "body");

    let request = test::TestRequest::post()
        .uri("/things")
        .insert_header(("content-type", "text/plain"))
        .set_payload("x");
    let (status, content_type, body) = call(request).await;
    assert_eq!(
        (status, content_type.as_str()),
        (415, "application/problem+json")
    );
    assert_eq!(body["type"], "/problems/unsupported-media-type");
}

#[actix_web::test]
async fn bad_path_parameter_is_422() {
    let (status, _, body) = call(test::TestRequest::get().uri("/things/not-a-number")).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "path");
}
