use std::net::IpAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, ResponseError, web};
use otto_runtime::rate_config::IpNet;

use super::{Budget, refuse_if_limited};
use crate::state::ApiState;

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let chain: Vec<IpAddr> = forwarded
        .split(',')
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    Some(
        chain
            .into_iter()
            .rev()
            .find(|ip| !trusted(*ip))
            .unwrap_or(peer),
    )
}

/// Middleware for public routes (webhooks, widget): a token bucket per client IP
/// (`RATE_LIMIT_PER_MINUTE`, `RATE_LIMIT_BURST`), skipped for `RATE_LIMIT_WHITELIST_IPS`.
pub async fn public_rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(state) = req.app_data::<web::Data<ApiState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let limits = &state.ctx.config.rate_limits;
    let Some(ip) = client_ip(req.request(), &limits.trusted_proxies) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if limits.whitelist.iter().any(|net| net.contains(ip)) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let budget = Budget {
        key: format!("ip:{ip}"),
        limit: limits.public,
        kind: "ip",
    };
    let route = req.match_pattern().unwrap_or_else(|| req.path().to_owned());
    match refuse_if_limited(state.rate_limiter.check(&[budget]).await, &route) {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(refusal) => Ok(req
            .into_response(refusal.error_response())
            .map_into_right_body()),
    }
}
