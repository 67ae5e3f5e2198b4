# stack-sync's image: built with Rust on Debian 12, run on the same Debian release (so glibc
# matches) as a non-root user. `docker compose up` uses it; scripts/test-container checks it.

FROM rust:1.95.0-slim-bookworm AS builder
WORKDIR /build
# The dependencies first, in a layer of their own: rebuilt only when the manifest or the lock
# file changes. Stub targets stand in for the sources, which come in the next layer.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches/common examples \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && for bench in throughput apply_strategies reconcile; do echo 'fn main() {}' > "benches/$bench.rs"; done \
    && cargo build --release --locked \
    && rm -rf src benches examples
COPY . .
# The stubs' build is newer than the copied sources; touching them makes cargo rebuild the crate.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin stack-sync

FROM debian:12.11-slim
# ca-certificates: reconcile calls Stack's API over HTTPS. Unpinned on purpose, so that rebuilds
# get the release's current certificates; the base image tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin stack-sync
COPY --from=builder /build/target/release/stack-sync /usr/local/bin/stack-sync
USER 10001
# The webhook port (server.port, PORT).
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["stack-sync", "healthcheck"]
ENTRYPOINT ["stack-sync"]
CMD ["serve"]
