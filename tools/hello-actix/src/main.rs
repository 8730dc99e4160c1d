//! Reference server for benchmarks: `hello-actix PORT` answers `GET /` with a small JSON body,
//! with no middleware, so `/health` of otto-api can be compared with what actix-web does alone.

use actix_web::{App, HttpResponse, HttpServer, web};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8081);
    HttpServer::new(|| {
        App::new().route(
            "/",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(r#"{"status":"ok"}"#)
            }),
        )
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
