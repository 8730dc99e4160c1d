//! `otto-api demo` (development only): the whole product in this process with the mock UWC
//! beside it, and a realistic day driven through the real paths: a demo company (`org_demo`,
//! its CallRail and Twilio mappings, three reps), a dozen signed CallRail calls that the pipeline
//! transcribes, analyses and turns into follow-ups and tasks, appointments, tasks and inbound
//! texts. Everything is keyed (provider ids, `external_id`, `unique_key`), so a second run adds
//! nothing. Prints a token and commands to try, then serves until Ctrl-C.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{Duration as Days, Utc};
use otto_api::auth::dev_token;
use otto_api::webhooks::signature::sign;
use otto_domain::{Role, TenantId, UserId};
use otto_runtime::telemetry::Service;
use otto_runtime::{AppContext, Config, startup};
use serde_json::{Value, json};

use crate::mock_uwc::{MockSettings, serve as serve_mock_uwc};

pub const TENANT: &str = "org_demo";
const CALLRAIL_COMPANY: &str = "CRDEMO";
const NUMBER: &str = "+15557654321";
const CALLRAIL_SECRET: &str = "demo-callrail-secret";
const TWILIO_TOKEN: &str = "demo-twilio-token";
const UWC_KEY: &str = "demo-uwc-key";
const UWC_SECRET: &str = "demo-uwc-secret";
const CALLERS: [&str; 12] = [
    "Dana Scully",
    "Fox Mulder",
    "Walter Skinner",
    "Monica Reyes",
    "John Doggett",
    "Alex Krycek",
    "Jeffrey Spender",
    "Marita Covarrubias",
    "Melvin Frohike",
    "John Byers",
    "Richard Langly",
    "Samantha Mulder",
];

type DemoError = Box<dyn std::error::Error>;

fn free_port() -> Result<u16, std::io::Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The process's configuration with the demo's providers: the mock UWC, and known secrets so
/// the demo can sign its deliveries.
fn demo_config(mock_port: u16) -> Result<Config, DemoError> {
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    let port = vars
        .get("PORT")
        .cloned()
        .unwrap_or_else(|| "8000".to_owned());
    for (key, value) in [
        ("UWC_BASE_URL", format!("http://127.0.0.1:{mock_port}")),
        ("UWC_API_KEY", UWC_KEY.to_owned()),
        ("UWC_HMAC_SECRET", UWC_SECRET.to_owned()),
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN.to_owned()),
        ("CALLRAIL_WEBHOOK_SECRET", CALLRAIL_SECRET.to_owned()),
        ("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}")),
    ] {
        vars.insert(key.to_owned(), value);
    }
    Ok(Config::from_map(&vars)?)
}

/// Runs the demo; returns when the process is asked to stop.
///
/// # Errors
/// Outside development, or when the app cannot start or a step fails.
pub async fn run() -> Result<(), DemoError> {
    let mock_port = free_port()?;
    let config = demo_config(mock_port)?;
    if config.environment.is_deployed() {
        return Err(
            "otto-api demo runs in development only (ENVIRONMENT is staging or production)".into(),
        );
    }
    let mock = MockSettings {
        api_key: UWC_KEY.to_owned(),
        hmac_secret: UWC_SECRET.to_owned(),
        complete_after: Duration::from_secs(2),
        respond_after: Duration::ZERO,
        callbacks: true,
    };
    // The mock's server is not `Send`: it runs on a thread of its own.
    std::thread::spawn(move || {
        if let Err(err) = actix_web::rt::System::new().block_on(serve_mock_uwc(mock_port, mock)) {
            eprintln!("otto-api demo: the mock UWC stopped: {err}");
        }
    });
    let shutdown = startup::init(Service::Api, &config);
    let ctx = AppContext::build(config, shutdown).await?;
    let app = crate::api(ctx)?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let ctx = app.context().clone();
    let server = tokio::spawn(app.run_until_stopped());
    let token = seed(&ctx, &base).await?;
    println!("otto-api demo: {TENANT} is ready at {base} (Ctrl-C stops it)");
    println!("export TOKEN={token}");
    println!("curl -s {base}/v1/calls -H \"Authorization: Bearer $TOKEN\"");
    println!("curl -s {base}/v1/dashboard/metrics -H \"Authorization: Bearer $TOKEN\"");
    println!("curl -s {base}/v1/appointments -H \"Authorization: Bearer $TOKEN\"");
    println!("open {base}/docs");
    server.await??;
    Ok(())
}

fn mint(ctx: &AppContext, user: &str, role: Role) -> Result<String, DemoError> {
    Ok(dev_token::mint(
        &ctx.config,
        &TenantId::try_from(TENANT)?,
        &UserId::try_from(user)?,
        role,
        Duration::from_secs(12 * 3600),
    )?)
}

async fn call_api(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> Result<Value, DemoError> {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {answer}").into());
    }
    Ok(answer)
}

/// The day: company, reps, calls, appointments, tasks, texts. Returns the owner's token.
async fn seed(ctx: &AppContext, base: &str) -> Result<String, DemoError> {
    let http = reqwest::Client::new();
    let owner = mint(ctx, "user_demo_owner", Role::Leadership)?;
    call_api(
        &http,
        reqwest::Method::PATCH,
        &format!("{base}/v1/companies/{TENANT}"),
        &owner,
        Some(
            json!({"name": "Demo Heating & Air", "time_zone": "America/Chicago",
            "callrail_company_id": CALLRAIL_COMPANY, "twilio_numbers": [NUMBER]}),
        ),
    )
    .await?;
    let mut reps = Vec::new();
    for n in 1..=3 {
        let rep = mint(ctx, &format!("user_demo_rep_{n}"), Role::Rep)?;
        let me = call_api(
            &http,
            reqwest::Method::GET,
            &format!("{base}/v1/me"),
            &rep,
            None,
        )
        .await?;
        reps.push(me["rep_id"].clone());
    }
    let now = Utc::now();
    for (n, name) in CALLERS.iter().enumerate() {
        let answered = n % 4 != 3;
        let body = json!({"company_id": CALLRAIL_COMPANY, "call": {"id": format!("demo-call-{n}")},
            "customer_phone_number": format!("+1555010{n:04}"), "customer_name": name,
            "direction": "inbound", "answered": answered, "duration": 45 + 11 * n,
            "recording": answered.then(|| format!("https://recordings.example.com/demo-{n}.mp3")),
            "start_time": (now - Days::hours(n as i64 + 1)).to_rfc3339()})
        .to_string();
        let response = http
            .post(format!("{base}/webhooks/callrail/call-complete"))
            .header("content-type", "application/json")
            .header(
                "Signature",
                sign::callrail(CALLRAIL_SECRET, body.as_bytes()),
            )
            .body(body)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!("call {n}: {}", response.status()).into());
        }
    }
    let leads = call_api(
        &http,
        reqwest::Method::GET,
        &format!("{base}/v1/leads?limit=50"),
        &owner,
        None,
    )
    .await?;
    let lead_ids: HashMap<String, Value> = leads["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|l| Some((l["phone"].as_str()?.to_owned(), l["id"].clone())))
                .collect()
        })
        .unwrap_or_default();
    let tomorrow = (now + Days::days(1)).date_naive();
    for n in 0..4usize {
        let Some(lead) = lead_ids.get(&format!("+1555010{n:04}")) else {
            continue;
        };
        call_api(&http, reqwest::Method::POST, &format!("{base}/v1/appointments"), &owner,
            Some(json!({"lead_id": lead, "rep_id": reps[n % reps.len()],
                "starts_at": format!("{tomorrow}T{:02}:00", 9 + n), "ends_at": format!("{tomorrow}T{:02}:00", 10 + n),
                "title": "In-home estimate", "address": format!("{} Elm Street, Springfield", 10 + n),
                "external_id": format!("demo-appt-{n}")}))).await?;
    }
    for (n, title) in [
        "Send the financing options to Fox Mulder",
        "Order a replacement blower motor",
        "Call the warranty company",
    ]
    .iter()
    .enumerate()
    {
        call_api(&http, reqwest::Method::POST, &format!("{base}/v1/tasks"), &owner,
            Some(json!({"title": title, "due_at": (now + Days::days(1)).to_rfc3339(), "unique_key": format!("demo-task-{n}")}))).await?;
    }
    for (n, text) in [
        "Can you come Tuesday morning instead?",
        "Thanks! See you tomorrow.",
    ]
    .iter()
    .enumerate()
    {
        let form = vec![
            ("MessageSid".to_owned(), format!("SMdemo{n}")),
            ("From".to_owned(), format!("+1555010{n:04}")),
            ("To".to_owned(), NUMBER.to_owned()),
            ("Body".to_owned(), (*text).to_owned()),
        ];
        // Twilio signs the public URL it called.
        let public = ctx
            .config
            .http
            .public_base_url
            .clone()
            .unwrap_or_else(|| base.to_owned());
        let signature = sign::twilio(
            TWILIO_TOKEN,
            &format!("{public}/webhooks/twilio/sms"),
            &form,
        );
        http.post(format!("{base}/webhooks/twilio/sms"))
            .header("X-Twilio-Signature", signature)
            .form(&form)
            .send()
            .await?;
    }
    Ok(owner)
}
