# syntax=docker/dockerfile:1
# pypowerwall-server in an empty (scratch) image: the static binary, CA certificates (for the
# Tesla cloud, later), a non-root user and an auth directory. About 3 MB.
#
#   docker build -t pypowerwall-server .
#   docker run -d --name pypowerwall -p 8675:8675 \
#       -e PW_HOST=192.168.91.1 -e PW_GW_PWD=ABCDEFGHIJ -v pypowerwall-auth:/auth pypowerwall-server
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 -t pypowerwall-server .
#
# Without a Docker engine, scripts/oci-image.sh assembles the same image (same files, user,
# ports, entrypoint and health check) from the release binaries; scripts/check-packaging.sh
# checks that the two agree.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-alpine AS build
# musl is Alpine's libc: the native build is a static musl binary (crt-static made explicit).
RUN apk add --no-cache musl-dev ca-certificates
WORKDIR /src
COPY . .
ENV RUSTFLAGS="-C target-feature=+crt-static"
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/pypowerwall-server /rootfs/usr/local/bin/pypowerwall-server
# The runtime file system. uid/gid 10001 owns only /auth (PW_AUTH_PATH, for cloud/control tokens).
RUN install -D -m 0644 /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt \
    && printf 'root:x:0:0:root:/root:/sbin/nologin\npypowerwall:x:10001:10001:pypowerwall-server:/auth:/sbin/nologin\n' >/rootfs/etc/passwd \
    && printf 'root:x:0:\npypowerwall:x:10001:\n' >/rootfs/etc/group \
    && chmod 0644 /rootfs/etc/passwd /rootfs/etc/group \
    && install -d -m 0700 -o 10001 -g 10001 /rootfs/auth \
    && /rootfs/usr/local/bin/pypowerwall-server --version

FROM scratch
COPY --from=build /rootfs/ /
ENV PW_AUTH_PATH=/auth \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
EXPOSE 8675
VOLUME ["/auth"]
# `healthcheck` exits 0 when http://127.0.0.1:$PW_PORT/health answers 2xx: a gateway polled recently.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/pypowerwall-server", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/pypowerwall-server"]
LABEL org.opencontainers.image.title="pypowerwall-server" \
      org.opencontainers.image.description="Tesla Powerwall gateway server, drop-in for the pypowerwall proxy" \
      org.opencontainers.image.licenses="MIT"
