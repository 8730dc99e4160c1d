# Multi-stage build: compile the three binaries, ship them on a slim base.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin otto-api --bin otto-worker --bin otto-scheduler

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 otto
COPY --from=build /src/target/release/otto-api /src/target/release/otto-worker /src/target/release/otto-scheduler /usr/local/bin/
USER otto
ENV HOST=0.0.0.0 PORT=8000
EXPOSE 8000
CMD ["otto-api"]
