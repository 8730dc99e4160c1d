//! The mock's training jobs: accepted at once, `training/status: completed` called back after
//! the mock's completion delay, for as many calls as Otto sent.

use actix_web::{HttpRequest, HttpResponse, web};
use otto_integrations::uwc::TrainingRequest;
use serde_json::json;

use super::Mock;

pub(super) async fn submit(
    mock: web::Data<Mock>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let request: TrainingRequest = match mock.parse(&req, &body) {
        Ok(request) => request,
        Err(refusal) => return *refusal,
    };
    let job_id = format!("train_{}", uuid::Uuid::new_v4().simple());
    let mock = mock.get_ref().clone();
    let job = job_id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(mock.settings.complete_after).await;
        if let Some(url) = request.callback_url.filter(|_| mock.settings.callbacks) {
            let body = json!({
                "event": "training/status", "job_id": job, "company_id": request.company_id,
                "status": "completed", "calls_used": request.call_ids.len(),
            });
            mock.post_callback(&url, &body).await;
        }
    });
    HttpResponse::Accepted().json(json!({ "job_id": job_id, "status": "queued" }))
}
