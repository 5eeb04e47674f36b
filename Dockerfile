# billingd: built with the pinned toolchain, run as non-root on a distroless
# base (no shell, no package manager). The chart runs it with a read-only root
# filesystem; it writes nothing outside /tmp (and, with SQLite, its data dir).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p billing-server --bin billingd \
    && install -D -m 0755 target/release/billingd /out/billingd

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/billingd /usr/local/bin/billingd
USER 65532:65532
EXPOSE 50051 8080
# Addresses, auth and logging come from the configuration (the chart's
# ConfigMap); environment variables set here would silently override it.
ENTRYPOINT ["/usr/local/bin/billingd"]
CMD ["serve"]
