#!/usr/bin/env bash
# Builds the registry-gateway container image without pulling any image: the binary is built
# on this machine, laid out with the libraries it links to by scripts/image-rootfs.sh, and put
# into the final stage of the Containerfile (FROM scratch), which is built alone.
#
#   scripts/build-image.sh [--tag NAME] [--binary PATH]
#
#   --tag NAME      the image's name (default registry-gateway:latest)
#   --binary PATH   a registry-gateway binary built already (the end-to-end tests pass the
#                   debug build cargo made for them); by default
#                   `cargo build --locked --release -p gateway-bin` builds one
#
# It talks to the Docker engine the docker client is pointed at (DOCKER_HOST). The image it
# builds holds the same files as one built with `docker build -f Containerfile .`, with the
# glibc of this machine instead of the Rust image's (both Debian bookworm in CI).
set -euo pipefail

tag=registry-gateway:latest
binary=
while [ $# -gt 0 ]; do
    case $1 in
        --tag) tag=$2; shift 2 ;;
        --binary) binary=$(realpath "$2"); shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."

if [ -z "$binary" ]; then
    cargo build --locked --release -p gateway-bin
    binary=target/release/registry-gateway
fi

context=$(mktemp -d "${TMPDIR:-/tmp}/registry-gateway-image.XXXXXX")
trap 'rm -rf "$context"' EXIT
scripts/image-rootfs.sh "$binary" "$context/rootfs"

# The Containerfile's last stage, copying the tree from the context instead of the build stage.
awk '/^FROM /{ stage = "" } { stage = stage $0 "\n" } END { printf "%s", stage }' Containerfile \
    | sed 's|^COPY --from=build /rootfs/ /$|COPY rootfs/ /|' >"$context/Containerfile"
if ! grep -qx 'FROM scratch' "$context/Containerfile" || ! grep -qx 'COPY rootfs/ /' "$context/Containerfile"; then
    echo "error: the Containerfile's last stage is no longer 'FROM scratch' + 'COPY --from=build /rootfs/ /'" >&2
    exit 1
fi

# BuildKit where the client has it: the buildx plugin, or built in before Docker 23 (Debian
# bookworm's docker.io is 20.10); the legacy builder otherwise (slower: a container per
# instruction). Without a syntax directive, neither pulls anything for FROM scratch.
if [ -z "${DOCKER_BUILDKIT:-}" ]; then
    client=$(docker version --format '{{.Client.Version}}' 2>/dev/null || true)
    if docker buildx version >/dev/null 2>&1; then
        export DOCKER_BUILDKIT=1
    elif [[ ${client%%.*} =~ ^[0-9]+$ ]] && [ "${client%%.*}" -lt 23 ]; then
        export DOCKER_BUILDKIT=1
    else
        export DOCKER_BUILDKIT=0
    fi
fi
docker build --quiet -f "$context/Containerfile" -t "$tag" "$context"
