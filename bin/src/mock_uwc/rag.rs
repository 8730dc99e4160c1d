//! The mock's RAG: `rag/documents` fetches the document through the URL Otto gave (so a broken
//! signed URL fails indexing, as with the real service) and calls back `rag/indexed`;
//! `rag/query` answers deterministically from the company's indexed documents, citing them,
//! best match first (the words of the question found in each).

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use otto_integrations::uwc::{IndexRequest, RagQuery};
use serde_json::json;

use super::{Mock, lock};

const SNIPPET_CHARS: usize = 160;

struct Indexed {
    document_id: String,
    title: String,
    text: String,
}

/// Indexed documents by company.
#[derive(Default)]
pub(super) struct Library(HashMap<String, Vec<Indexed>>);

pub(super) async fn index(
    mock: web::Data<Mock>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let request: IndexRequest = match mock.parse(&req, &body) {
        Ok(request) => request,
        Err(refusal) => return *refusal,
    };
    let job_id = format!("rag_{}", request.document_id);
    tokio::spawn(mock.get_ref().clone().index_later(job_id.clone(), request));
    HttpResponse::Accepted().json(json!({ "job_id": job_id, "status": "queued" }))
}

impl Mock {
    async fn index_later(self, job_id: String, request: IndexRequest) {
        let fetched = match self.http.get(&request.content_url).send().await {
            Ok(response) if response.status().is_success() => response.bytes().await.ok(),
            Ok(response) => {
                eprintln!(
                    "mock UWC: {} answered {}",
                    request.content_url,
                    response.status()
                );
                None
            }
            Err(err) => {
                eprintln!("mock UWC: cannot fetch {}: {err}", request.content_url);
                None
            }
        };
        let status = if let Some(bytes) = fetched {
            lock(&self.library)
                .0
                .entry(request.company_id.clone())
                .or_default()
                .push(Indexed {
                    document_id: request.document_id.clone(),
                    title: request.title.clone(),
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                });
            "indexed"
        } else {
            "failed"
        };
        if let Some(url) = request.callback_url.filter(|_| self.settings.callbacks) {
            let body = json!({
                "event": "rag/indexed", "job_id": job_id, "company_id": request.company_id,
                "document_id": request.document_id, "status": status,
            });
            self.post_callback(&url, &body).await;
        }
    }
}

pub(super) async fn query(
    mock: web::Data<Mock>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let request: RagQuery = match mock.parse(&req, &body) {
        Ok(request) => request,
        Err(refusal) => return *refusal,
    };
    let words: Vec<String> = request
        .question
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 3)
        .map(str::to_owned)
        .collect();
    let library = lock(&mock.library);
    let mut ranked: Vec<(usize, &Indexed)> = library
        .0
        .get(&request.company_id)
        .map(|docs| {
            docs.iter()
                .map(|doc| {
                    let text = doc.text.to_lowercase();
                    (
                        words.iter().filter(|w| text.contains(w.as_str())).count(),
                        doc,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ranked.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
    let top_k = request.top_k.unwrap_or(5) as usize;
    let sources: Vec<_> = ranked
        .iter()
        .take(top_k)
        .map(|(_, doc)| json!({ "document_id": doc.document_id, "snippet": snippet(&doc.text) }))
        .collect();
    let answer = match ranked.first() {
        Some((_, best)) => format!("From \"{}\": {}", best.title, snippet(&best.text)),
        None => "Nothing in your documents answers that yet.".to_owned(),
    };
    let prompt_tokens = request.question.split_whitespace().count() as u64 * 4;
    HttpResponse::Ok().json(json!({
        "answer": answer, "sources": sources,
        "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": 40 },
    }))
}

fn snippet(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(SNIPPET_CHARS)
        .collect()
}
