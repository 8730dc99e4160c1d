//! Clerk's Backend API (SPEC section 13): the one change Otto makes in Clerk, a member's
//! organization role (`PATCH /organizations/{organization_id}/memberships/{user_id}` with
//! `{"role"}`, authenticated by `Authorization: Bearer CLERK_SECRET_KEY`). Clerk owns roles: Otto
//! records a change only after Clerk accepted it. 429 and 5xx answers and transport errors are
//! retried (`crate::retry`); other answers are returned at once.

use std::time::Duration;

use otto_runtime::Config;
use otto_runtime::config::Secret;
use reqwest::Method;
use serde_json::json;

use crate::retry::{Endpoint, RetryPolicy, from_failure, send_for_text};

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RETRIES: u32 = 2;
const RETRY_BASE: Duration = Duration::from_millis(300);

#[derive(Debug, Clone)]
pub struct ClerkSettings {
    pub api_url: String,
    pub secret_key: Secret,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl ClerkSettings {
    /// `None` without `CLERK_SECRET_KEY`.
    pub fn from_config(config: &Config) -> Option<Self> {
        let clerk = &config.integrations.clerk;
        Some(Self {
            api_url: clerk.api_url.clone(),
            secret_key: clerk.secret_key.clone()?,
            timeout: TIMEOUT,
            retry: RetryPolicy {
                max_retries: MAX_RETRIES,
                base: RETRY_BASE,
            },
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClerkError {
    #[error("Clerk answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("Clerk could not be reached: {0}")]
    Transport(#[from] reqwest::Error),
}

from_failure!(ClerkError);

impl ClerkError {
    /// Clerk does not know the organization or the membership.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Status { status: 404, .. })
    }
}

#[derive(Clone)]
pub struct ClerkClient {
    http: reqwest::Client,
    settings: ClerkSettings,
}

impl ClerkClient {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(settings: ClerkSettings) -> Result<Self, ClerkError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        Ok(Self { http, settings })
    }

    /// Sets `user_id`'s role in organization `organization_id` (a Clerk role key such as
    /// `org:csr`).
    ///
    /// # Errors
    /// See [`ClerkError`].
    pub async fn update_membership_role(
        &self,
        organization_id: &str,
        user_id: &str,
        role: &str,
    ) -> Result<(), ClerkError> {
        let url = format!(
            "{}/organizations/{organization_id}/memberships/{user_id}",
            self.settings.api_url.trim_end_matches('/')
        );
        let body = json!({ "role": role });
        let endpoint = Endpoint {
            provider: "clerk",
            name: "update_membership",
            method: &Method::PATCH,
        };
        send_for_text(endpoint, self.settings.retry, || {
            self.http
                .patch(&url)
                .bearer_auth(self.settings.secret_key.expose())
                .json(&body)
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn client(server: &MockServer) -> Result<ClerkClient, ClerkError> {
        ClerkClient::new(ClerkSettings {
            api_url: format!("{}/v1", server.uri()),
            secret_key: Secret::new("sk_test_otto"),
            timeout: Duration::from_secs(2),
            retry: RetryPolicy {
                max_retries: 2,
                base: Duration::from_millis(1),
            },
        })
    }

    #[tokio::test]
    async fn a_role_change_is_the_documented_membership_update()
    -> Result<(), Box<dyn std::error::Error>> {
        let server = MockServer::start().await;
        Mock::given(method("PATCH"))
            .and(path("/v1/organizations/org_1/memberships/user_2"))
            .and(header("authorization", "Bearer sk_test_otto"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({"role": "org:csr"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "object": "organization_membership", "id": "orgmem_1", "role": "org:csr"
            })))
            .expect(1)
            .mount(&server)
            .await;
        client(&server)?
            .update_membership_role("org_1", "user_2", "org:csr")
            .await?;
        Ok(())
    }

    #[tokio::test]
    async fn server_errors_are_retried_and_client_errors_are_not()
    -> Result<(), Box<dyn std::error::Error>> {
        let server = MockServer::start().await;
        Mock::given(path("/v1/organizations/org_1/memberships/user_busy"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(2)
            .expect(2)
            .mount(&server)
            .await;
        Mock::given(path("/v1/organizations/org_1/memberships/user_busy"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/v1/organizations/org_1/memberships/user_gone"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"errors": []})))
            .expect(1)
            .mount(&server)
            .await;
        let clerk = client(&server)?;
        clerk
            .update_membership_role("org_1", "user_busy", "org:manager")
            .await?;
        let gone = clerk
            .update_membership_role("org_1", "user_gone", "org:manager")
            .await;
        assert!(gone.is_err_and(|err| err.is_not_found()), "404: no retry");
        Ok(())
    }
}
