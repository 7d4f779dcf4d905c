# opsguard image: `docker build --build-arg OPSGUARD_COMMIT=$(git rev-parse --short HEAD) -t opsguard .`
# (.dockerignore keeps target/ and .git out of the build context, so the commit comes in as an
# argument; without it `opsguard --version` says "unknown").

# Build stage: compile a release binary (the first build takes several minutes).
FROM rust:1.95-bookworm AS build
ARG OPSGUARD_COMMIT=
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin opsguard

# Runtime stage: small, non-root, with pg_dump/pg_restore for backups.
# pg_dump must be at least the major version of every server it dumps: docker-compose.yml runs
# postgres:16, so the image ships postgresql-client-17 from Debian trixie (bookworm's client is
# 15 and cannot dump a 16 server). The binary is built on bookworm (glibc 2.36) and runs on
# trixie's newer glibc; it links nothing else dynamically (rustls, bundled zstd).
FROM debian:trixie-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates postgresql-client-17 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/opsguard --no-create-home \
        --shell /usr/sbin/nologin opsguard \
    && install -d -o opsguard -g opsguard -m 0750 /var/lib/opsguard /var/lib/opsguard/backups
COPY --from=build /src/target/release/opsguard /usr/local/bin/opsguard
# The defaults are compiled in: mount your own file at /etc/opsguard/opsguard.toml (or name it
# in OPSGUARD_CONFIG) to layer on top of them.
WORKDIR /var/lib/opsguard
# Backups (and audit checkpoints, under audit-checkpoints/) go to the data volume.
ENV OPSGUARD_LISTEN=0.0.0.0:8080 \
    OPSGUARD__BACKUPS__STORAGE=/var/lib/opsguard/backups
VOLUME ["/var/lib/opsguard"]
# Numeric, so Kubernetes runAsNonRoot can check it.
USER 10001:10001
EXPOSE 8080
# GET /healthz on OPSGUARD_LISTEN (0.0.0.0 is probed on 127.0.0.1); no shell, no database.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["opsguard", "healthcheck"]
ENTRYPOINT ["opsguard"]
CMD ["serve"]
