#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo use, when any is missing:
# docker-registry (CNCF distribution 2.8), skopeo, umoci, nginx, apache2-utils (htpasswd),
# openssl, wrk, redis-server, podman and buildah (daemonless clients, pushing like users do),
# docker.io (the Docker engine and CLI: the tests start a dockerd of their own, push and pull
# with `docker`, and build and run the container image) and ca-certificates (the CA bundle the
# image carries). Needs root (or sudo); on a machine without either it says what to install.
set -euo pipefail

packages=(docker-registry skopeo umoci nginx-light apache2-utils openssl wrk curl redis-server podman buildah docker.io ca-certificates)
commands=(docker-registry skopeo umoci nginx htpasswd openssl wrk curl redis-server podman buildah dockerd update-ca-certificates)

missing=()
for i in "${!commands[@]}"; do
    command -v "${commands[$i]}" >/dev/null 2>&1 || [ -x "/usr/sbin/${commands[$i]}" ] || missing+=("${packages[$i]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "error: missing ${missing[*]}; install them with: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages just installed start a system registry, nginx, Redis or Docker engine; the tests
# start their own, on free ports and in temporary directories. Services that were there before
# are left alone.
services=()
for package in "${missing[@]}"; do
    case $package in
        docker-registry) services+=(docker-registry) ;;
        nginx-light) services+=(nginx) ;;
        redis-server) services+=(redis-server) ;;
        docker.io) services+=(docker.socket docker containerd) ;;
    esac
done
if [ ${#services[@]} -gt 0 ]; then
    "${sudo[@]}" systemctl disable --now "${services[@]}" >/dev/null 2>&1 || true
fi
