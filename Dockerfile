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
# The build runs on the builder's own architecture and cross-compiles a static musl binary for
# the target platform, as scripts/release.sh does: rustup's musl std with its bundled musl crt,
# and the platform's GNU gcc only as C compiler (ring) and linker. No emulation, any host.
FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim-bookworm AS build
ARG TARGETARCH
ARG TARGETVARIANT
ARG BUILDARCH
RUN set -eu; \
    case "$TARGETARCH/$TARGETVARIANT" in \
    amd64/*) rt=x86_64-unknown-linux-musl gnu=x86_64-linux-gnu pkg=gcc-x86-64-linux-gnu ;; \
    arm64/*) rt=aarch64-unknown-linux-musl gnu=aarch64-linux-gnu pkg=gcc-aarch64-linux-gnu ;; \
    arm/v7) rt=armv7-unknown-linux-musleabihf gnu=arm-linux-gnueabihf pkg=gcc-arm-linux-gnueabihf ;; \
    *) echo "unsupported platform $TARGETARCH/$TARGETVARIANT" >&2; exit 1 ;; \
    esac; \
    [ "$TARGETARCH" = "$BUILDARCH" ] && pkg=gcc; \
    apt-get update; \
    apt-get install -y --no-install-recommends "$pkg" libc6-dev ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    rustup target add "$rt"; \
    env=$(echo "$rt" | tr 'a-z-' 'A-Z_'); low=$(echo "$rt" | tr '-' '_'); \
    printf 'export CARGO_BUILD_TARGET=%s CARGO_TARGET_%s_LINKER=%s-gcc CC_%s=%s-gcc AR_%s=%s-ar\n' \
        "$rt" "$env" "$gnu" "$low" "$gnu" "$low" "$gnu" >/build-env
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    . /build-env \
    && cargo build --release --locked \
    && install -D -m 0755 "target/$CARGO_BUILD_TARGET/release/pypowerwall-server" /rootfs/usr/local/bin/pypowerwall-server
# The runtime file system. uid/gid 10001 owns only /auth (PW_AUTH_PATH, for cloud/control tokens)
# and /data (PW_HISTORY_DIR, the energy history: 1 MiB per gateway).
RUN install -D -m 0644 /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt \
    && printf 'root:x:0:0:root:/root:/sbin/nologin\npypowerwall:x:10001:10001:pypowerwall-server:/auth:/sbin/nologin\n' >/rootfs/etc/passwd \
    && printf 'root:x:0:\npypowerwall:x:10001:\n' >/rootfs/etc/group \
    && chmod 0644 /rootfs/etc/passwd /rootfs/etc/group \
    && install -d -m 0700 -o 10001 -g 10001 /rootfs/auth \
    && install -d -m 0700 -o 10001 -g 10001 /rootfs/data

FROM scratch
COPY --from=build /rootfs/ /
ENV PW_AUTH_PATH=/auth \
    PW_HISTORY_DIR=/data \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
EXPOSE 8675
VOLUME ["/auth", "/data"]
# `healthcheck` exits 0 when http://127.0.0.1:$PW_PORT/health answers 2xx: a gateway polled recently.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/pypowerwall-server", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/pypowerwall-server"]
LABEL org.opencontainers.image.title="pypowerwall-server" \
      org.opencontainers.image.description="Tesla Powerwall gateway server, drop-in for the pypowerwall proxy" \
      org.opencontainers.image.licenses="MIT"
