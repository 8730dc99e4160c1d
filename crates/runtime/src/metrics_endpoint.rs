//! `/metrics` for the processes without an HTTP server (`otto-worker`, `otto-scheduler`):
//! with `METRICS_PORT` set they answer Prometheus scrapes on it (any path), so the job metrics
//! of distributed mode are scraped where they are counted. A minimal HTTP/1.1 responder: one
//! request per connection, the text format, then close.

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves the recorder's metrics on `port` until `shutdown`.
///
/// # Errors
/// When the recorder cannot be installed or the port bound.
pub async fn serve(port: u16, shutdown: CancellationToken) -> Result<SocketAddr, std::io::Error> {
    let handle = crate::metrics_recorder::install()
        .ok_or_else(|| std::io::Error::other("metrics recorder unavailable"))?;
    let listener = TcpListener::bind(("0.0.0.0", port)).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        tokio::spawn(answer(stream, handle.clone()));
                    }
                }
            }
        }
    });
    tracing::info!(%address, "metrics endpoint listening");
    Ok(address)
}

async fn answer(mut stream: tokio::net::TcpStream, handle: PrometheusHandle) {
    let mut request = [0u8; 2048];
    // The request itself does not matter: every path answers the metrics.
    let _ = stream.read(&mut request).await;
    let body = handle.render();
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}
