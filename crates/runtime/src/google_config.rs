//! Google Calendar settings (SPEC section 15): where Google's OAuth and Calendar endpoints are
//! (configurable so tests point them at a local server), the OAuth client, and the URLs Google
//! calls back. Sync is on when the client id, the client secret and `ENCRYPTION_KEY` are set.

use crate::config::{Secret, base_url_or};

#[derive(Debug, Clone)]
pub struct GoogleConfig {
    /// `GOOGLE_OAUTH_URL` (`https://accounts.google.com/o/oauth2/v2/auth`): the consent page.
    pub oauth_url: String,
    /// `GOOGLE_TOKEN_URL` (`https://oauth2.googleapis.com/token`): code exchange and refresh.
    pub token_url: String,
    /// `GOOGLE_CALENDAR_API_URL` (`https://www.googleapis.com/calendar/v3`).
    pub calendar_api_url: String,
    /// `GOOGLE_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `GOOGLE_CLIENT_SECRET`.
    pub client_secret: Option<Secret>,
    /// `GOOGLE_REDIRECT_URL` (`{PUBLIC_BASE_URL}/v1/calendar/google/callback`).
    pub redirect_url: Option<String>,
    /// Where Google sends push notifications: `{PUBLIC_BASE_URL}/v1/calendar/google/push`.
    pub push_url: Option<String>,
    /// `GOOGLE_CALENDAR_ID` (`primary`): the calendar Otto syncs with.
    pub calendar_id: String,
}

impl GoogleConfig {
    pub(crate) fn from_lookup(
        get: &impl Fn(&str) -> Option<String>,
        public_base_url: Option<&str>,
    ) -> Self {
        let public = public_base_url.map(|b| b.trim_end_matches('/').to_owned());
        let non_empty = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Self {
            oauth_url: base_url_or(
                get,
                "GOOGLE_OAUTH_URL",
                "https://accounts.google.com/o/oauth2/v2/auth",
            ),
            token_url: base_url_or(
                get,
                "GOOGLE_TOKEN_URL",
                "https://oauth2.googleapis.com/token",
            ),
            calendar_api_url: base_url_or(
                get,
                "GOOGLE_CALENDAR_API_URL",
                "https://www.googleapis.com/calendar/v3",
            ),
            client_id: non_empty("GOOGLE_CLIENT_ID"),
            client_secret: non_empty("GOOGLE_CLIENT_SECRET").map(Secret::new),
            redirect_url: non_empty("GOOGLE_REDIRECT_URL").or_else(|| {
                public
                    .as_ref()
                    .map(|b| format!("{b}/v1/calendar/google/callback"))
            }),
            push_url: public.map(|b| format!("{b}/v1/calendar/google/push")),
            calendar_id: non_empty("GOOGLE_CALENDAR_ID").unwrap_or_else(|| "primary".to_owned()),
        }
    }
}
