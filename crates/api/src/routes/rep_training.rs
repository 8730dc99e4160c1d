//! One rep and its UWC voice/style model (SPEC section 14): `GET /v1/reps/{id}` with the
//! training status, and `POST /v1/reps/{id}/training` (leadership) to train it from the rep's
//! analysed calls. The rules live in `otto_service::training`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use otto_db::entities::sales_rep;
use otto_service::training::{self, TrainingError};
use uuid::Uuid;

use super::begin;
use super::team::Rep;
use crate::auth::{AnyRole, Authorized, Leadership};
use crate::error::ApiError;
use crate::state::ApiState;

#[utoipa::path(get, path = "/v1/reps/{id}", tag = "team", security(("bearer" = [])),
    responses((status = 200, body = Rep, description = "The rep, with its training status"),
        (status = 404, body = crate::problem::Problem, description = "Not a rep of the company")))]
pub async fn get_rep(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    id: web::Path<Uuid>,
) -> Result<web::Json<Rep>, ApiError> {
    let utx = begin(&state, &caller).await?;
    let rep = utx.scope().find_by_id::<sales_rep::Entity, _>(*id).await?;
    utx.finish_read().await?;
    Ok(web::Json(Rep::from(rep.ok_or(ApiError::NotFound)?)))
}

#[utoipa::path(post, path = "/v1/reps/{id}/training", tag = "team", security(("bearer" = [])),
    responses((status = 202, body = Rep, description = "Queued: the rep's analysed calls go to UWC; `training_status` follows"),
        (status = 404, body = crate::problem::Problem, description = "Not a rep of the company"),
        (status = 503, body = crate::problem::Problem, description = "UWC training is off (ENABLE_UWC_TRAINING) or not configured")))]
pub async fn train_rep(
    state: web::Data<ApiState>,
    caller: Authorized<Leadership>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let enabled = state.ctx.config.integrations.uwc.enabled().training;
    let utx = begin(&state, &caller).await?;
    let rep = training::request(&utx, *id, enabled)
        .await
        .map_err(|err| match err {
            TrainingError::NotFound => ApiError::NotFound,
            TrainingError::Service(err) => err.into(),
            other => ApiError::Unavailable(other.into()),
        })?;
    utx.commit(&state.ctx).await?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED).json(Rep::from(rep)))
}
