//! `otto-api`: the HTTP and WebSocket server. [`Application::build`] is the one way to start it,
//! used by the binary and by the tests alike. It knows no job runner and no scheduler: in
//! embedded mode the composition root (`bin/src/lib.rs`) runs them beside it through
//! [`Application::run_alongside`].

pub mod auth;
pub mod cors;
pub mod error;
mod extractors;
pub mod idempotency;
pub mod openapi;
mod openapi_extra;
pub mod pagination;
pub mod problem;
mod problem_fallback;
pub mod problem_kinds;
pub mod rate_limit;
pub mod realtime;
pub mod request_context;
pub mod route_list;
pub mod routes;
pub mod state;
mod uploads;
pub mod webhooks;

#[cfg(test)]
mod http_tests;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use otto_integrations::clerk::{ClerkClient, ClerkSettings};
use otto_runtime::context::StartError;
use otto_runtime::{AppContext, Config, metrics_recorder};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::jwt::TokenVerifier;
use crate::cors::OriginPatterns;
use crate::error::ApiError;
use crate::rate_limit::RateLimiter;
use crate::realtime::hub::Hub;
use crate::state::ApiState;

pub struct Application {
    port: u16,
    server: Server,
    ctx: AppContext,
    background: Vec<JoinHandle<()>>,
}

impl Application {
    /// Connects everything `config` names, binds `HOST:PORT` (port 0 picks a free one) and
    /// prepares the server; nothing is served until [`Application::run_until_stopped`].
    ///
    /// # Errors
    /// When the database is unreachable, migrations fail, or the address cannot be bound.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let ctx = AppContext::build(config, CancellationToken::new()).await?;
        Self::build_with_context(ctx)
    }

    /// As [`Application::build`], on an existing context.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub fn build_with_context(ctx: AppContext) -> Result<Self, StartError> {
        Self::build_with_routes(ctx, |_| {})
    }

    /// As [`Application::build_with_context`], with `extra` routes mounted beside Otto's (tests
    /// use it to exercise guards on routes of their own).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub fn build_with_routes(
        ctx: AppContext,
        extra: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    ) -> Result<Self, StartError> {
        let listener = TcpListener::bind(ctx.config.bind_address())?;
        let port = listener.local_addr()?.port();
        otto_runtime::startup::install_crypto_provider();
        let origins = OriginPatterns::new(&ctx.config.http.allowed_origins);
        let verifier = Arc::new(
            TokenVerifier::new(&ctx.config.auth, origins.clone())
                .map_err(|e| StartError::Config(e.to_string()))?,
        );
        let prefetch = verifier.clone();
        tokio::spawn(async move { prefetch.prefetch().await });
        let state = ApiState {
            ctx: ctx.clone(),
            metrics: metrics_recorder::install(),
            verifier,
            origins,
            rate_limiter: Arc::new(RateLimiter::new(
                ctx.redis
                    .clone()
                    .map(|pool| (pool, ctx.config.redis.prefix.clone())),
            )),
            hub: Arc::new(Hub::new(
                ctx.config.realtime.buffer_size,
                ctx.config.realtime.max_message_bytes,
            )),
            known_members: Arc::default(),
            clerk: ClerkSettings::from_config(&ctx.config)
                .map(ClerkClient::new)
                .transpose()
                .map_err(|e| StartError::Config(format!("Clerk client: {e}")))?,
            calendar: otto_service::calendar::CalendarSync::from_config(&ctx.config),
            assistant: otto_service::assistant::Assistant::from_config(&ctx.config),
            rag: otto_service::ask::rag_client(&ctx.config),
        };
        let router = state
            .hub
            .clone()
            .spawn_router(ctx.bus.clone(), ctx.shutdown.clone());
        let max_body = ctx.config.http.max_body_bytes;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(extractors::json_config(max_body))
                .app_data(extractors::payload_config(max_body))
                .app_data(extractors::path_config())
                .app_data(extractors::query_config())
                .wrap(problem_fallback::error_handlers())
                .wrap(from_fn(cors::cors))
                .wrap(from_fn(request_context::track_request))
                .configure(routes_config)
                .configure(extra.clone())
                .default_service(web::to(not_found))
        })
        // Small writes (WebSocket frames, short JSON answers) must not wait for Nagle's algorithm
        // and the peer's delayed ACK (~40 ms each).
        .on_connect(|connection, _| {
            if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
                let _ = tcp.set_nodelay(true);
            }
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(ctx.config.http.shutdown_grace.as_secs());
        if let Some(workers) = ctx.config.http.workers {
            server = server.workers(workers);
        }
        let server = server.run();
        let background = vec![ctx.spawn_outbox_relay(), router];
        Ok(Self {
            port,
            server,
            ctx,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn context(&self) -> &AppContext {
        &self.ctx
    }

    /// Background loops (the in-process worker and scheduler of embedded mode) that stop with
    /// the server: awaited after the shutdown token is cancelled.
    pub fn run_alongside(&mut self, tasks: impl IntoIterator<Item = JoinHandle<()>>) {
        self.background.extend(tasks);
    }

    /// Serves until the context's shutdown token is cancelled (SIGTERM/SIGINT in the binary),
    /// then drains requests and waits for the background loops to stop.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let shutdown = self.ctx.shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.stop(true).await;
        });
        let result = self.server.await;
        self.ctx.shutdown.cancel();
        for task in self.background {
            let _ = task.await;
        }
        result
    }
}

fn routes_config(cfg: &mut web::ServiceConfig) {
    routes::ops::configure(cfg);
    routes::companies::configure(cfg);
    routes::leads::configure(cfg);
    routes::timeline::configure(cfg);
    routes::appointments::configure(cfg);
    routes::calendar::configure(cfg);
    routes::assistant::configure(cfg);
    routes::documents::configure(cfg);
    routes::recordings::configure(cfg);
    routes::tasks::configure(cfg);
    routes::sms::configure(cfg);
    routes::calls::configure(cfg);
    routes::team::configure(cfg);
    routes::followups::configure(cfg);
    routes::messages::configure(cfg);
    routes::reports::configure(cfg);
    routes::dashboard::configure(cfg);
    webhooks::configure(cfg);
    realtime::configure(cfg);
    cfg.service(crate::route_list::resource("/v1/me").get(routes::me::me))
        .service(crate::route_list::resource("/v1/session").get(routes::me::session));
    for path in route_list::DOCUMENTATION {
        route_list::record(path);
    }
    cfg.service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi::ApiDoc::openapi()))
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header(("Location", "/docs/"))
                    .finish()
            }),
        );
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
