#!/usr/bin/env bash
# TLS benchmark of registry-gateway: what serving TLS on the proxy port (--tls-cert) costs a
# pull, against the same gateway serving plain HTTP with its read relay (the default) and
# without it (--no-read-relay: hyper, which is what serves every request over TLS).
#
# Starts on free loopback ports, in a temporary directory removed on exit: Debian's
# docker-registry and three registry-gateway processes (release build): "relay" (plain,
# default), "hyper" (plain, --no-read-relay) and "tls" (--tls-cert, an ECDSA P-256 certificate
# of a CA made here with openssl). In rounds whose path order rotates:
#   1. a blob download with curl: MB/s and the gateway's CPU seconds per GB (over TLS with
#      HTTP/1.1 and with HTTP/2);
#   2. sequential HEADs of the blob with curl: on one kept connection, and on a new connection
#      each (a TLS handshake each, resumed or not): the gateway's CPU microseconds per request.
# Prints medians and their ranges. curl runs on the same machine and decrypts too, so MB/s
# over TLS is bounded by the client as much as by the gateway; the CPU figures are the
# gateway's own. Needs cargo, docker-registry, openssl, curl and coreutils. Asserts nothing
# about speed, but fails when any request gets an unexpected answer.
set -euo pipefail
shopt -s inherit_errexit

usage() {
    cat <<'EOF'
usage: benches/proxy/tls.sh [--quick] [options]

  --quick          a short run: 32 MiB blob, 1 round, 200 HEADs
  --size SIZE      blob size (default 512M)
  --rounds N       rounds of every scenario (default 3)
  --heads N        HEADs per run (default 1000)
  --no-build       use target/release/registry-gateway as built
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=benches/proxy/lib.sh
. "$here/lib.sh"

build=1 size='' rounds='' heads=''
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) size=32M rounds=1 heads=200 ;;
        --size) size=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        --heads) heads=$2; shift ;;
        --no-build) build=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
: "${size:=512M}" "${rounds:=3}" "${heads:=1000}"
size_bytes=$(numfmt --from=iec "$size")
require_tools cargo docker-registry openssl curl sha256sum numfmt
gateway_bin=$(gateway_binary "$root" "$build")

work=$(mktemp -d "${TMPDIR:-/var/tmp}/tls-bench.XXXXXX")
trap 'stop_spawned; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/samples"

log "making a CA and a certificate for 127.0.0.1"
(
    cd "$work"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -keyout ca.key \
        -out ca.crt -days 2 -subj /CN=tls-bench-ca -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out tls.key
    openssl req -new -key tls.key -subj /CN=127.0.0.1 -out tls.csr
    printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' >ext.cnf
    openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -set_serial 1 -days 2 -extfile ext.cnf -out tls.crt
) >"$work/openssl.log" 2>&1 || die "openssl failed (see $work/openssl.log)"

registry_port='' relay_port='' relay_admin='' hyper_port='' hyper_admin='' tls_port='' tls_admin=''
for v in registry_port relay_port relay_admin hyper_port hyper_admin tls_port tls_admin; do free_port "$v"; done
start_registry "$registry_port" tls-bench-secret
start_gateway "$work/relay.log" "$relay_port" "$relay_admin"
relay_pid=$spawned
start_gateway "$work/hyper.log" "$hyper_port" "$hyper_admin" --no-read-relay
hyper_pid=$spawned
start_gateway "$work/tls.log" "$tls_port" "$tls_admin" --tls-cert "$work/tls.crt" --tls-key "$work/tls.key"
tls_pid=$spawned
wait_ready docker-registry "http://127.0.0.1:$registry_port/v2/" "$registry_pid"
wait_ready "gateway (relay)" "http://127.0.0.1:$relay_port/v2/" "$relay_pid"
wait_ready "gateway (hyper)" "http://127.0.0.1:$hyper_port/v2/" "$hyper_pid"
wait_ready "gateway (tls)" "http://127.0.0.1:$tls_admin/healthz" "$tls_pid"

log "uploading a $size blob"
head -c "$size_bytes" /dev/urandom >"$work/blob"
digest="sha256:$(sha256sum "$work/blob" | cut -d' ' -f1)"
registry="http://127.0.0.1:$registry_port"
request 202 -X POST "$registry/v2/bench/blobs/uploads/" >/dev/null
request 201 -X PUT -H 'Content-Type: application/octet-stream' -T "$work/blob" \
    "$(with_query "$(location "$registry")" "digest=$digest")" >/dev/null
rm -f "$work/blob"

# Paths: name, the gateway's pid, curl arguments reaching the blob.
blob_path="/v2/bench/blobs/$digest"
declare -A pid_of=([relay]=$relay_pid [hyper]=$hyper_pid [tls-h1]=$tls_pid [tls-h2]=$tls_pid)
declare -A curl_of=(
    [relay]="http://127.0.0.1:$relay_port$blob_path"
    [hyper]="http://127.0.0.1:$hyper_port$blob_path"
    [tls-h1]="--cacert $work/ca.crt --http1.1 https://127.0.0.1:$tls_port$blob_path"
    [tls-h2]="--cacert $work/ca.crt --http2 https://127.0.0.1:$tls_port$blob_path"
)
paths=(relay hyper tls-h1 tls-h2)

download() { # path round
    local c0 c1 out
    c0=$(cpu_ticks "${pid_of[$1]}")
    # shellcheck disable=SC2086
    out=$(curl -sS -f -o /dev/null -w '%{http_code} %{time_total}' ${curl_of[$1]})
    c1=$(cpu_ticks "${pid_of[$1]}")
    [ "${out%% *}" = 200 ] || die "download through $1: $out"
    sample "download.$1" "$(mbps "$size_bytes" "${out#* }")"
    sample "download.cpu.$1" "$(awk -v c=$((c1 - c0)) -v hz="$clk_tck" -v s="$size_bytes" 'BEGIN { printf "%.3f", c / hz / (s / 1e9) }')"
}

# $heads HEADs through path $1, on one connection (kept) or a new one each (new: with
# `Connection: close`; new-full: without TLS session resumption either).
heads() { # path how
    local args=() urls=() c0 c1 i codes
    # shellcheck disable=SC2206
    local target=(${curl_of[$1]})
    local url=${target[-1]}
    unset 'target[-1]'
    case "$2" in
        new) args=(-H 'Connection: close') ;;
        new-full) args=(-H 'Connection: close' --no-sessionid) ;;
    esac
    for i in $(seq "$heads"); do urls+=(-o /dev/null "$url"); done
    c0=$(cpu_ticks "${pid_of[$1]}")
    codes=$(curl -sS -I -w '%{http_code}\n' "${target[@]}" "${args[@]}" "${urls[@]}" | sort -u)
    c1=$(cpu_ticks "${pid_of[$1]}")
    [ "$codes" = 200 ] || die "HEADs through $1 ($2): $codes"
    sample "head.$2.$1" "$(awk -v c=$((c1 - c0)) -v hz="$clk_tck" -v n="$heads" 'BEGIN { printf "%.1f", c / hz / n * 1e6 }')"
}

for round in $(seq "$rounds"); do
    for i in 0 1 2 3; do
        path=${paths[$(((round + i) % 4))]}
        download "$path" "$round"
        heads "$path" kept
        case "$path" in relay | tls-h2) ;; *) heads "$path" new ;; esac
        [ "$path" = tls-h1 ] && heads "$path" new-full
    done
    log "round $round of $rounds done"
done

range() { # file
    local low high
    [ "$(wc -l <"$1")" -gt 1 ] || return 0
    low=$(sort -g "$1" | head -1) high=$(sort -g "$1" | tail -1)
    echo " ($(fmt "$low")-$(fmt "$high"))"
}
cell() { # sample
    local file="$work/samples/$1"
    [ -s "$file" ] || { echo "-"; return; }
    echo "$(fmt "$(median "$file")")$(range "$file")"
}
echo
echo "TLS benchmark: $size blob, $rounds rounds, $heads HEADs per run; $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo))"
echo
echo "| path | download MB/s | gateway CPU s per GB | HEAD, kept connection: gateway CPU µs | HEAD, new connection each | HEAD, new connection, no TLS resumption |"
echo "| --- | --- | --- | --- | --- | --- |"
for path in "${paths[@]}"; do
    echo "| $path | $(cell "download.$path") | $(cell "download.cpu.$path") | $(cell "head.kept.$path") | $(cell "head.new.$path") | $(cell "head.new-full.$path") |"
done
