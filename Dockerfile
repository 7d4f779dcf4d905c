# Build stage: compile a release binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY build.rs ./
COPY migrations ./migrations
COPY config ./config
COPY benches ./benches
RUN cargo build --release --locked --bin opsguard

# Runtime stage: small, non-root, with pg_dump/pg_restore for backups.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /app opsguard
WORKDIR /app
COPY --from=build /src/target/release/opsguard /usr/local/bin/opsguard
COPY config ./config
USER opsguard
ENV OPSGUARD_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["opsguard"]
CMD ["serve"]
