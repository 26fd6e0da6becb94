# The production image of widget-sessions.
#
#   docker build -t widget-sessions .                         (--build-arg FEATURES=otel: trace export)
#   docker run -e DATABASE_URL=… -e WIDGET_SESSIONS_SECRET_KEY=… -e TRANSAK_ENVIRONMENT=production \
#              -e TRANSAK_API_KEY=… -e TRANSAK_API_SECRET=… -e TRANSAK_REFERRER_DOMAIN=… \
#              -e WIDGET_SESSIONS_PUBLIC_URL=https://sessions.example.com -p 8080:8080 widget-sessions
#
# The build stage runs exactly `scripts/build-release.sh`, which CI runs too. The runtime
# stage is a slim Debian with the one binary, run as a non-root user. TLS uses rustls with
# bundled roots, so the image needs no OpenSSL and no CA bundle.

FROM rust:1.95.0-slim-bookworm AS build
# Extra cargo features, e.g. --build-arg FEATURES=otel for OpenTelemetry trace export.
ARG FEATURES=""
WORKDIR /src
COPY . .
RUN WIDGET_SESSIONS_FEATURES="$FEATURES" bash scripts/build-release.sh

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin widget-sessions
COPY --from=build /src/target/release/widget-sessions /usr/local/bin/widget-sessions
USER 10001
ENV WIDGET_SESSIONS_LISTEN=0.0.0.0:8080 \
    WIDGET_SESSIONS_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/widget-sessions"]
CMD ["serve"]
