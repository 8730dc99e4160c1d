use super::*;
use serde_json::json;
use wiremock::matchers::{body_json, body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const EVENTS: &str = "/calendar/v3/calendars/primary/events";

fn client(server: &MockServer) -> Result<GoogleClient, GoogleError> {
    GoogleClient::new(GoogleSettings {
        oauth_url: format!("{}/o/oauth2/v2/auth", server.uri()),
        token_url: format!("{}/token", server.uri()),
        calendar_api_url: format!("{}/calendar/v3", server.uri()),
        client_id: "client-1.apps.googleusercontent.com".to_owned(),
        client_secret: Secret::new("shh"),
        redirect_url: "https://otto.example.com/v1/calendar/google/callback".to_owned(),
        timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            max_retries: 2,
            base: Duration::from_millis(1),
        },
    })
}

#[tokio::test]
async fn the_consent_url_asks_for_offline_access_to_events() -> TestResult {
    let server = MockServer::start().await;
    let url = reqwest::Url::parse(&client(&server)?.authorization_url("st-1")?)?;
    assert_eq!(url.path(), "/o/oauth2/v2/auth");
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let expected: HashMap<String, String> = [
        ("client_id", "client-1.apps.googleusercontent.com"),
        (
            "redirect_uri",
            "https://otto.example.com/v1/calendar/google/callback",
        ),
        ("response_type", "code"),
        ("scope", SCOPE),
        ("access_type", "offline"),
        ("include_granted_scopes", "true"),
        ("prompt", "consent"),
        ("state", "st-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(query, expected);
    Ok(())
}

#[tokio::test]
async fn code_exchange_and_refresh_are_the_documented_form_posts() -> TestResult {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "client_id=client-1.apps.googleusercontent.com&client_secret=shh&code=4%2Fcode\
             &redirect_uri=https%3A%2F%2Fotto.example.com%2Fv1%2Fcalendar%2Fgoogle%2Fcallback\
             &grant_type=authorization_code",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ya29.a", "expires_in": 3599, "refresh_token": "1//r",
            "scope": SCOPE, "token_type": "Bearer"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string(
            "client_id=client-1.apps.googleusercontent.com&client_secret=shh\
             &refresh_token=1%2F%2Frevoked&grant_type=refresh_token",
        ))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let google = client(&server)?;
    let tokens = google.exchange_code("4/code").await?;
    assert_eq!(
        (
            tokens.access_token.as_str(),
            tokens.refresh_token.as_deref()
        ),
        ("ya29.a", Some("1//r"))
    );
    assert!(matches!(
        google.refresh("1//revoked").await,
        Err(GoogleError::InvalidGrant(_))
    ));
    Ok(())
}

#[tokio::test]
async fn lists_are_full_or_incremental_and_gone_means_resync() -> TestResult {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(EVENTS))
        .and(header("authorization", "Bearer ya29.a"))
        .and(query_param("timeMin", "2026-10-30T00:00:00Z"))
        .and(query_param("pageToken", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "kind": "calendar#events",
            "items": [{"id": "ev1", "status": "confirmed",
                "start": {"dateTime": "2026-12-01T09:00:00-06:00", "timeZone": "America/Chicago"},
                "end": {"dateTime": "2026-12-01T10:00:00-06:00"},
                "extendedProperties": {"private": {"otto_id": "a-1"}}}],
            "nextSyncToken": "sync-1"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(EVENTS))
        .and(query_param("syncToken", "stale"))
        .respond_with(ResponseTemplate::new(410).set_body_json(json!({"error": {
            "code": 410, "message": "Sync token is no longer valid, a full sync is required.",
            "errors": [{"domain": "calendar", "reason": "fullSyncRequired"}]}})))
        .expect(1)
        .mount(&server)
        .await;
    let google = client(&server)?;
    let time_min = DateTime::parse_from_rfc3339("2026-10-30T00:00:00Z")?.to_utc();
    let page = google
        .list_events(
            "ya29.a",
            "primary",
            &ListFrom::Full { time_min },
            Some("p2"),
        )
        .await?;
    assert_eq!(page.next_sync_token.as_deref(), Some("sync-1"));
    assert_eq!(page.items[0].otto_id(), Some("a-1"));
    let start = page.items[0]
        .start
        .as_ref()
        .and_then(|s| s.date_time)
        .ok_or("start")?;
    assert_eq!(start.to_utc().to_rfc3339(), "2026-12-01T15:00:00+00:00");
    let gone = google
        .list_events(
            "ya29.a",
            "primary",
            &ListFrom::Changes {
                sync_token: "stale",
            },
            None,
        )
        .await;
    assert!(matches!(gone, Err(GoogleError::Gone)), "{gone:?}");
    Ok(())
}

fn event_body() -> Event {
    let mut private = HashMap::new();
    private.insert(OTTO_ID.to_owned(), "a-1".to_owned());
    Event {
        summary: Some("AC repair".to_owned()),
        extended_properties: Some(ExtendedProperties { private }),
        ..Event::default()
    }
}

#[tokio::test]
async fn an_insert_whose_answer_is_lost_is_found_not_repeated() -> TestResult {
    let server = MockServer::start().await;
    // The first lookup finds nothing; the insert is stored but answered 500; the second lookup
    // finds it, and the retry patches it instead of inserting again.
    Mock::given(method("GET"))
        .and(path(EVENTS))
        .and(query_param("privateExtendedProperty", "otto_id=a-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": []})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(EVENTS))
        .and(body_json(json!({"summary": "AC repair",
            "extendedProperties": {"private": {"otto_id": "a-1"}}})))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(EVENTS))
        .and(query_param("privateExtendedProperty", "otto_id=a-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [
            {"id": "ev9", "status": "confirmed", "extendedProperties": {"private": {"otto_id": "a-1"}}}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{EVENTS}/ev9")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "ev9"})))
        .expect(1)
        .mount(&server)
        .await;
    let event = client(&server)?
        .ensure_event("ya29.a", "primary", "a-1", &event_body())
        .await?;
    assert_eq!(event.id.as_deref(), Some("ev9"));
    Ok(())
}

#[tokio::test]
async fn rate_limits_are_retried_and_other_refusals_are_not() -> TestResult {
    let server = MockServer::start().await;
    let limited = json!({"error": {"code": 403, "message": "Rate Limit Exceeded",
        "errors": [{"domain": "usageLimits", "reason": "rateLimitExceeded"}]}});
    Mock::given(method("PATCH"))
        .and(path(format!("{EVENTS}/ev1")))
        .respond_with(ResponseTemplate::new(403).set_body_json(limited))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{EVENTS}/ev1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "ev1"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{EVENTS}/ev2")))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"error": {"code": 403,
            "errors": [{"domain": "calendar", "reason": "forbiddenForNonOrganizer"}]}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{EVENTS}/gone")))
        .respond_with(ResponseTemplate::new(410))
        .expect(1)
        .mount(&server)
        .await;
    let google = client(&server)?;
    google
        .patch_event("ya29.a", "primary", "ev1", &event_body())
        .await?;
    let refused = google
        .patch_event("ya29.a", "primary", "ev2", &event_body())
        .await;
    assert!(refused.is_err_and(|e| !e.is_transient()));
    google.delete_event("ya29.a", "primary", "gone").await?;
    Ok(())
}

#[tokio::test]
async fn a_watch_opens_a_web_hook_channel_and_stop_closes_it() -> TestResult {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{EVENTS}/watch")))
        .and(header("authorization", "Bearer ya29.a"))
        .and(body_json(json!({"id": "ch-1", "type": "web_hook",
            "address": "https://otto.example.com/v1/calendar/google/push", "token": "tok"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "kind": "api#channel", "id": "ch-1", "resourceId": "res-1",
            "resourceUri": "https://www.googleapis.com/calendar/v3/calendars/primary/events",
            "token": "tok", "expiration": "1798761600000"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/calendar/v3/channels/stop"))
        .and(body_json(json!({"id": "ch-1", "resourceId": "res-1"})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let google = client(&server)?;
    let channel = google
        .watch(
            "ya29.a",
            "primary",
            "ch-1",
            "tok",
            "https://otto.example.com/v1/calendar/google/push",
        )
        .await?;
    assert_eq!(channel.resource_id, "res-1");
    assert_eq!(
        channel.expires_at.map(|t| t.to_rfc3339()),
        Some("2027-01-01T00:00:00+00:00".to_owned())
    );
    google.stop_channel("ya29.a", "ch-1", "res-1").await?;
    Ok(())
}
