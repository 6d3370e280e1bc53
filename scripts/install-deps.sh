#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo use, when any is missing:
# docker-registry (CNCF distribution 2.8), skopeo, umoci, nginx, apache2-utils (htpasswd),
# openssl, wrk, redis-server, podman and buildah (daemonless clients, pushing like users do). Needs root (or sudo); on a machine without either it says what to install.
set -euo pipefail

packages=(docker-registry skopeo umoci nginx-light apache2-utils openssl wrk curl redis-server podman buildah)
commands=(docker-registry skopeo umoci nginx htpasswd openssl wrk curl redis-server podman buildah)

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
# The package starts a system registry and nginx; the tests start their own on free ports.
"${sudo[@]}" systemctl disable --now docker-registry nginx redis-server >/dev/null 2>&1 || true
