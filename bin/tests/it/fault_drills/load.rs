//! Steady load for a drill: one loop delivering signed CallRail calls (each with a recording, so
//! the worker transcribes it) and one loop reading leads, each request timed and its answer kept.

use std::time::{Duration, Instant};

use otto_api::webhooks::signature::sign;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::cluster::{CALLRAIL_SECRET, DrillResult};

const PACE: Duration = Duration::from_millis(20);
/// A bound on each loop, whatever happens to the drill.
const MAX_REQUESTS: usize = 3_000;
pub const CALLRAIL_COMPANY: &str = "CRDRILL";

/// One request: when it left, when its answer came, and the status (`None`: no answer at all,
/// e.g. connection refused while the API restarts).
#[derive(Debug, Clone)]
pub struct Answer {
    pub sent: Instant,
    pub answered: Instant,
    pub status: Option<u16>,
    pub body: String,
}

impl Answer {
    pub fn processed(&self) -> bool {
        self.status == Some(200) && self.body.contains(r#""status":"processed""#)
    }

    fn overlaps(&self, from: Instant, to: Instant) -> bool {
        self.sent <= to && self.answered >= from
    }
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub call: String,
    pub answer: Answer,
}

pub struct Load {
    stop: CancellationToken,
    deliveries: JoinHandle<Vec<Delivery>>,
    reads: JoinHandle<Vec<Answer>>,
}

pub struct Sample {
    pub deliveries: Vec<Delivery>,
    pub reads: Vec<Answer>,
}

pub fn client() -> DrillResult<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?)
}

pub fn callrail_body(call: &str) -> String {
    serde_json::json!({"company_id": CALLRAIL_COMPANY, "call": {"id": call},
        "customer_phone_number": "(555) 201-3344", "customer_name": "Drill Caller",
        "direction": "inbound", "answered": true, "duration": "60",
        "recording": format!("https://recordings.example/{call}.mp3"),
        "start_time": "2026-11-22T10:00:00Z"})
    .to_string()
}

/// Delivers `call` once, as CallRail would.
pub async fn deliver(client: &reqwest::Client, base: &str, call: &str) -> Answer {
    let body = callrail_body(call);
    let request = client
        .post(format!("{base}/webhooks/callrail/call-complete"))
        .header("content-type", "application/json")
        .header(
            "Signature",
            sign::callrail(CALLRAIL_SECRET, body.as_bytes()),
        )
        .body(body);
    answer_of(request).await
}

async fn answer_of(request: reqwest::RequestBuilder) -> Answer {
    let sent = Instant::now();
    let (status, body) = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (Some(status), response.text().await.unwrap_or_default())
        }
        Err(_) => (None, String::new()),
    };
    Answer {
        sent,
        answered: Instant::now(),
        status,
        body,
    }
}

impl Load {
    /// Starts both loops against the API at `base`; call ids are `{run}-{n}`.
    pub fn start(base: String, token: String, run: &str) -> DrillResult<Self> {
        let stop = CancellationToken::new();
        let client = client()?;
        let deliveries = {
            let (stop, client, base, run) =
                (stop.clone(), client.clone(), base.clone(), run.to_owned());
            tokio::spawn(async move {
                let mut done = Vec::new();
                for n in 0..MAX_REQUESTS {
                    if stop.is_cancelled() {
                        break;
                    }
                    let call = format!("{run}-{n}");
                    let answer = deliver(&client, &base, &call).await;
                    done.push(Delivery { call, answer });
                    tokio::time::sleep(PACE).await;
                }
                done
            })
        };
        let reads = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut done = Vec::new();
                for _ in 0..MAX_REQUESTS {
                    if stop.is_cancelled() {
                        break;
                    }
                    let request = client
                        .get(format!("{base}/v1/leads?limit=20"))
                        .bearer_auth(&token);
                    done.push(answer_of(request).await);
                    tokio::time::sleep(PACE).await;
                }
                done
            })
        };
        Ok(Self {
            stop,
            deliveries,
            reads,
        })
    }

    pub async fn finish(self) -> DrillResult<Sample> {
        self.stop.cancel();
        Ok(Sample {
            deliveries: self.deliveries.await?,
            reads: self.reads.await?,
        })
    }
}

impl Sample {
    fn answers(&self) -> impl Iterator<Item = &Answer> {
        self.deliveries
            .iter()
            .map(|d| &d.answer)
            .chain(self.reads.iter())
    }

    /// Every answer that breaks the rule: outside `[from, to]` nothing but 2xx; inside it,
    /// nothing worse than a 503 problem or no answer.
    pub fn errors_outside(&self, from: Instant, to: Instant) -> Vec<String> {
        self.answers()
            .filter(|a| {
                let status = a.status.unwrap_or(0);
                if a.overlaps(from, to) {
                    status >= 500 && status != 503
                } else {
                    !(200..300).contains(&status)
                }
            })
            .map(|a| format!("{:?}: {}", a.status, a.body))
            .collect()
    }

    /// Deliveries the API did not confirm (refused, or answered with an error).
    pub fn refused(&self) -> Vec<&Delivery> {
        self.deliveries
            .iter()
            .filter(|d| !d.answer.processed())
            .collect()
    }

    pub fn accepted(&self) -> usize {
        self.deliveries.len() - self.refused().len()
    }
}
