#!/usr/bin/env bash
# Install the dotMage server with Docker Compose, in ./dotmage:
#   curl -fsSL <release page>/install.sh | bash
# Writes dotmage/docker-compose.yml (kept if it exists), pulls and starts the
# server on port 9470, waits until it is healthy, and prints the bootstrap
# secret from its first start's log. Safe to run again: the compose file and
# the data volume stay as they are.
#
# Settings (environment variables):
#   DOTMAGE_DIR    folder to install into (default: dotmage)
#   DOTMAGE_IMAGE  server image (default: dotmage/server:latest)
#   DOTMAGE_PORT   host port (default: 9470)
#   DOTMAGE_WAIT   seconds to wait for the server to be healthy (default: 120)
set -euo pipefail

dir=${DOTMAGE_DIR:-dotmage}
image=${DOTMAGE_IMAGE:-dotmage/server:latest}
port=${DOTMAGE_PORT:-9470}
wait_seconds=${DOTMAGE_WAIT:-120}

say() { printf '%s\n' "$*"; }
fail() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

find_compose() {
    if ! command -v docker >/dev/null 2>&1; then
        fail "docker is not installed. Install Docker Engine (see Docker's install guide for your OS), then run this again."
    fi
    if docker compose version >/dev/null 2>&1; then
        compose=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then
        compose=(docker-compose)
    else
        fail "docker compose is missing. Install the Docker Compose plugin (package docker-compose-plugin), then run this again."
    fi
}

write_compose_file() {
    if [ -f docker-compose.yml ]; then
        say "Keeping the existing $dir/docker-compose.yml."
        return
    fi
    cat >docker-compose.yml <<YAML
services:
  server:
    image: $image
    restart: unless-stopped
    environment:
      DOTMAGE_DB_URL: "sqlite:////data/dotmage.db"
      DOTMAGE_TOKEN_TTL: "24h"
    volumes:
      - dotmage-data:/data
    ports:
      - "$port:8000"
volumes:
  dotmage-data:
YAML
    say "Wrote $dir/docker-compose.yml."
}

wait_until_healthy() {
    local container status waited=0
    container=$("${compose[@]}" ps -q server)
    [ -n "$container" ] || fail "the server container did not start: ${compose[*]} logs server"
    while [ "$waited" -lt "$wait_seconds" ]; do
        status=$(docker inspect --format '{{.State.Health.Status}}' "$container")
        case "$status" in
            healthy) return ;;
            unhealthy) fail "the server reports unhealthy: see ${compose[*]} logs server" ;;
        esac
        sleep 1
        waited=$((waited + 1))
    done
    fail "the server was not healthy after ${wait_seconds}s: see ${compose[*]} logs server"
}

show_bootstrap_secret() {
    local secret
    secret=$("${compose[@]}" logs --no-color server 2>&1 \
        | grep -o 'dmage_boot_[A-Za-z0-9_-]*' | head -n 1 || true)
    if [ -z "$secret" ]; then
        say "No bootstrap secret in this server's log: it was shown when the server"
        say "first started on this data (or DOTMAGE_BOOTSTRAP_SECRET sets it)."
        return
    fi
    say ""
    say "  Bootstrap secret: $secret"
    say ""
    say "  WARNING: save it now, in your password manager. You need it to create"
    say "  the account and to add every new device, and it is not shown again"
    say "  once this container's log is gone."
}

main() {
    find_compose
    mkdir -p "$dir"
    cd "$dir"
    write_compose_file
    "${compose[@]}" pull
    "${compose[@]}" up -d
    say "Waiting for the server to be healthy..."
    wait_until_healthy
    show_bootstrap_secret
    say ""
    say "dotMage server is running on port $port. On your machine:"
    say "  dmage auth --server http://<this host>:$port"
}

main "$@"
