//! A stateful fake of Google's token endpoint and Calendar API v3 (the parts Otto uses), on a
//! wiremock server: events with sync tokens (changes since a token, deleted events as
//! `cancelled`, 410 for a token it was told to forget), paging, `privateExtendedProperty`
//! lookups, push channels; and the faults the tests need (an insert stored but answered 500,
//! slow lists whose arrivals are recorded).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const REFRESH_TOKEN: &str = "1//fake-refresh";
pub const ACCESS_TOKEN: &str = "ya29.fake";
const PAGE_SIZE: usize = 2;

#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub body: Value,
    /// The change counter when it last changed.
    pub changed: u64,
}

#[derive(Debug, Clone)]
pub struct WatchedChannel {
    pub id: String,
    pub token: String,
    pub address: String,
}

#[derive(Default)]
pub struct State {
    pub events: BTreeMap<String, StoredEvent>,
    pub changes: u64,
    pub next_id: u64,
    pub inserts: u32,
    pub patches: u32,
    pub refresh_tokens_seen: Vec<String>,
    pub channels: Vec<WatchedChannel>,
    pub stopped: Vec<String>,
    /// Sync tokens below this are answered 410.
    pub tokens_valid_from: u64,
    /// The next insert is stored, then answered 500.
    pub lose_next_insert_answer: bool,
    /// Every sync list is answered this late (wiremock delays asynchronously, so lists that
    /// overlap arrive less than this apart).
    pub list_delay: Duration,
    pub list_arrivals: Vec<Instant>,
    pub full_lists: u32,
}

#[derive(Clone)]
pub struct FakeGoogle {
    pub server: Arc<MockServer>,
    state: Arc<Mutex<State>>,
}

fn json_answer(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

impl FakeGoogle {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let fake = Self {
            server: Arc::new(server),
            state: Arc::default(),
        };
        Mock::given(any())
            .respond_with(fake.clone())
            .mount(&fake.server)
            .await;
        fake
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration pointing Otto at this fake.
    pub fn config(&self) -> Vec<(&'static str, String)> {
        let uri = self.server.uri();
        vec![
            ("GOOGLE_OAUTH_URL", format!("{uri}/o/oauth2/v2/auth")),
            ("GOOGLE_TOKEN_URL", format!("{uri}/token")),
            ("GOOGLE_CALENDAR_API_URL", format!("{uri}/calendar/v3")),
            (
                "GOOGLE_CLIENT_ID",
                "client-1.apps.googleusercontent.com".to_owned(),
            ),
            ("GOOGLE_CLIENT_SECRET", "fake-secret".to_owned()),
            ("PUBLIC_BASE_URL", "https://otto.example.com".to_owned()),
        ]
    }

    /// The owner edits an event in Google.
    pub fn owner_moves(&self, event_id: &str, start: DateTime<Utc>, end: DateTime<Utc>) {
        let mut state = self.state();
        state.changes += 1;
        let changed = state.changes;
        if let Some(event) = state.events.get_mut(event_id) {
            event.body["start"] = json!({"dateTime": start.to_rfc3339()});
            event.body["end"] = json!({"dateTime": end.to_rfc3339()});
            event.changed = changed;
        }
    }

    /// The owner deletes an event in Google.
    pub fn owner_cancels(&self, event_id: &str) {
        let mut state = self.state();
        state.changes += 1;
        let changed = state.changes;
        if let Some(event) = state.events.get_mut(event_id) {
            event.body["status"] = json!("cancelled");
            event.changed = changed;
        }
    }

    /// An event created in Google by the owner, mirroring no appointment.
    pub fn owner_creates(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
        let mut state = self.state();
        let id = next_id(&mut state);
        let body = json!({"id": id, "status": "confirmed", "summary": "Dentist",
            "start": {"dateTime": start.to_rfc3339()}, "end": {"dateTime": end.to_rfc3339()}});
        store(&mut state, &id, body);
        id
    }

    /// Live events carrying `otto_id`.
    pub fn events_of(&self, otto_id: &str) -> Vec<Value> {
        self.state()
            .events
            .values()
            .filter(|e| e.body["status"] != "cancelled")
            .filter(|e| e.body["extendedProperties"]["private"]["otto_id"] == otto_id)
            .map(|e| e.body.clone())
            .collect()
    }

    fn list(&self, request: &Request) -> ResponseTemplate {
        let query: BTreeMap<String, String> = request.url.query_pairs().into_owned().collect();
        if let Some(property) = query.get("privateExtendedProperty") {
            let otto_id = property.trim_start_matches("otto_id=");
            return json_answer(200, json!({"items": self.events_of(otto_id)}));
        }
        let mut state = self.state();
        state.list_arrivals.push(Instant::now());
        let delay = state.list_delay;
        let since = match query.get("syncToken") {
            Some(token) => {
                let since: u64 = token.trim_start_matches("st-").parse().unwrap_or(0);
                if since < state.tokens_valid_from {
                    return json_answer(
                        410,
                        json!({"error": {"code": 410,
                        "message": "Sync token is no longer valid, a full sync is required.",
                        "errors": [{"domain": "calendar", "reason": "fullSyncRequired"}]}}),
                    );
                }
                Some(since)
            }
            None => {
                state.full_lists += 1;
                None
            }
        };
        let matching: Vec<Value> = state
            .events
            .values()
            .filter(|e| match since {
                Some(since) => e.changed > since,
                None => e.body["status"] != "cancelled",
            })
            .map(|e| e.body.clone())
            .collect();
        let offset: usize = query
            .get("pageToken")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let page: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(PAGE_SIZE)
            .cloned()
            .collect();
        if offset + PAGE_SIZE < matching.len() {
            json_answer(
                200,
                json!({"items": page, "nextPageToken": (offset + PAGE_SIZE).to_string()}),
            )
            .set_delay(delay)
        } else {
            json_answer(
                200,
                json!({"items": page, "nextSyncToken": format!("st-{}", state.changes)}),
            )
            .set_delay(delay)
        }
    }
}

fn next_id(state: &mut State) -> String {
    state.next_id += 1;
    format!("ev{}", state.next_id)
}

fn store(state: &mut State, id: &str, body: Value) {
    state.changes += 1;
    let changed = state.changes;
    state
        .events
        .insert(id.to_owned(), StoredEvent { body, changed });
}

fn form(request: &Request) -> BTreeMap<String, String> {
    let body = String::from_utf8_lossy(&request.body);
    reqwest::Url::parse(&format!("http://form/?{body}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

impl Respond for FakeGoogle {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path().to_owned();
        let method = request.method.as_str().to_owned();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let events = "/calendar/v3/calendars/primary/events";
        match (method.as_str(), path.as_str()) {
            ("POST", "/token") => {
                let form = form(request);
                let mut answer = json!({"access_token": ACCESS_TOKEN, "expires_in": 3599,
                    "token_type": "Bearer"});
                match form.get("grant_type").map(String::as_str) {
                    Some("authorization_code") => answer["refresh_token"] = json!(REFRESH_TOKEN),
                    Some("refresh_token") => {
                        let token = form.get("refresh_token").cloned().unwrap_or_default();
                        self.state().refresh_tokens_seen.push(token.clone());
                        if token != REFRESH_TOKEN {
                            return json_answer(400, json!({"error": "invalid_grant"}));
                        }
                    }
                    _ => return json_answer(400, json!({"error": "unsupported_grant_type"})),
                }
                json_answer(200, answer)
            }
            ("GET", p) if p == events => self.list(request),
            ("POST", p) if p == events => {
                let mut state = self.state();
                state.inserts += 1;
                let id = next_id(&mut state);
                let mut event = body;
                event["id"] = json!(id);
                event["status"] = json!("confirmed");
                store(&mut state, &id, event.clone());
                if std::mem::take(&mut state.lose_next_insert_answer) {
                    return ResponseTemplate::new(500);
                }
                json_answer(200, event)
            }
            ("POST", p) if p == format!("{events}/watch") => {
                self.state().channels.push(WatchedChannel {
                    id: body["id"].as_str().unwrap_or_default().to_owned(),
                    token: body["token"].as_str().unwrap_or_default().to_owned(),
                    address: body["address"].as_str().unwrap_or_default().to_owned(),
                });
                let expires = (Utc::now() + chrono::Duration::days(7)).timestamp_millis();
                json_answer(
                    200,
                    json!({"kind": "api#channel", "id": body["id"],
                    "resourceId": "res-1", "expiration": expires.to_string()}),
                )
            }
            ("POST", "/calendar/v3/channels/stop") => {
                self.state()
                    .stopped
                    .push(body["id"].as_str().unwrap_or_default().to_owned());
                ResponseTemplate::new(204)
            }
            (verb, p) if p.starts_with(&format!("{events}/")) => {
                let id = p.trim_start_matches(&format!("{events}/")).to_owned();
                let mut state = self.state();
                let Some(mut event) = state.events.get(&id).map(|e| e.body.clone()) else {
                    return json_answer(
                        404,
                        json!({"error": {"code": 404, "errors": [{"reason": "notFound"}]}}),
                    );
                };
                match verb {
                    "PATCH" => {
                        state.patches += 1;
                        if let (Value::Object(target), Value::Object(changes)) = (&mut event, body)
                        {
                            target.extend(changes);
                        }
                    }
                    "DELETE" => event["status"] = json!("cancelled"),
                    _ => return ResponseTemplate::new(405),
                }
                store(&mut state, &id, event.clone());
                if verb == "DELETE" {
                    ResponseTemplate::new(204)
                } else {
                    json_answer(200, event)
                }
            }
            _ => ResponseTemplate::new(404),
        }
    }
}
