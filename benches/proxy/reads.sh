#!/usr/bin/env bash
# Read-path benchmark of registry-gateway (issue 14): what a pull costs through the gateway
# against going to the registry directly, through nginx, and through the same gateway with its
# read relay turned off (--no-read-relay: every request through hyper, as before the relay).
#
# Starts on free loopback ports, in a temporary directory removed on exit: Debian's
# docker-registry (filesystem storage), nginx (proxy_pass, no buffering, keepalive), and two
# registry-gateway processes (release build): "gateway" (default settings) and "hyper"
# (--no-read-relay). Every scenario runs on the four paths, interleaved in rounds whose path
# order rotates so that noise from a shared machine falls on all of them alike:
#   1. a blob upload (monolithic POST + PUT) through each path, then its download (MB/s and
#      the relay's CPU seconds per GB), checked byte for byte by digest;
#   2. GET of a manifest (wrk) and HEAD of a blob (ab -i -k) at 16 connections (requests/s
#      and relay CPU per request);
#   3. the gateway's peak resident memory during the blob transfers;
#   4. small requests as the issue that set the target measured them: GET of a 1 KiB blob with
#      keep-alive at 8 connections (wrk -t1 -c8 per path), the relay's CPU per request from
#      /proc (the threads of the gateway process and of nginx's workers, from their schedstat),
#      the four paths side by side at the same time in every round.
# Prints a table of medians of per-round ratios; --write-docs also writes it into
# docs/performance.md between the read-bench markers. Needs cargo, docker-registry, nginx,
# wrk, ab, curl and coreutils (scripts/install-deps.sh installs the Debian packages). Asserts
# nothing about speed, but fails when any request gets an unexpected answer.
set -euo pipefail
shopt -s inherit_errexit

usage() {
    cat <<'EOF'
usage: benches/proxy/reads.sh [--quick] [--write-docs] [options]

  --quick            CI mode: 32 MiB blob, 1 round, 2 s runs
  --write-docs       write the results to docs/performance.md (section "Read path")
  --size SIZE        blob size (default 512M; quick 32M)
  --rounds N         rounds of every scenario (default 5; quick 1)
  --duration SECS    length of one wrk/ab run (default 8; quick 2)
  --connections N    connections of those runs (default 16)
  --small-only       run only scenario 4 (1 KiB blob GET, 8 connections)
  --no-build         use target/release/registry-gateway as built
  --keep             keep the temporary directory

GATEWAY_BIN=<path> in the environment runs that binary (say one built at an earlier commit)
instead of building target/release/registry-gateway.
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
command_line="${GATEWAY_BIN:+GATEWAY_BIN=$GATEWAY_BIN }benches/proxy/reads.sh${*:+ $*}"
# shellcheck source=benches/proxy/lib.sh
. "$here/lib.sh"

quick=0 write_docs=0 build=1 keep=0 small_only=0 size='' rounds='' duration='' connections=16
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --write-docs) write_docs=1 ;;
        --size) size=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        --duration) duration=$2; shift ;;
        --connections) connections=$2; shift ;;
        --small-only) small_only=1 ;;
        --no-build) build=0 ;;
        --keep) keep=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    : "${size:=32M}" "${rounds:=1}" "${duration:=2}"
else
    : "${size:=512M}" "${rounds:=5}" "${duration:=8}"
fi
size_bytes=$(numfmt --from=iec "$size")
[ "$small_only" = 0 ] || [ "$write_docs" = 0 ] || die "--write-docs writes the whole table: not with --small-only"

require_tools cargo docker-registry nginx wrk ab curl sha256sum numfmt


gateway_bin=$(gateway_binary "$root" "$build")
started_at=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/var/tmp}/read-bench.XXXXXX")
cleanup() {
    local status=$?
    stop_spawned
    if [ "$keep" = 1 ] || [ "$status" -ne 0 ]; then
        rm -rf "$work/storage" "$work/blob"
        log "kept the logs in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM


registry_port='' nginx_port='' gateway_port='' admin_port='' hyper_port='' hyper_admin_port=''
for v in registry_port nginx_port gateway_port admin_port hyper_port hyper_admin_port; do free_port "$v"; done
mkdir -p "$work/samples"
start_registry "$registry_port" read-bench-secret
start_nginx "$nginx_port" "$registry_port" 256k
start_gateway "$work/gateway.log" "$gateway_port" "$admin_port"
gateway_pid=$spawned
start_gateway "$work/hyper.log" "$hyper_port" "$hyper_admin_port" --no-read-relay
hyper_pid=$spawned

wait_ready docker-registry "http://127.0.0.1:$registry_port/v2/" "$registry_pid"
wait_ready nginx "http://127.0.0.1:$nginx_port/v2/" "$nginx_pid"
wait_ready registry-gateway "http://127.0.0.1:$gateway_port/v2/" "$gateway_pid"
wait_ready "registry-gateway --no-read-relay" "http://127.0.0.1:$hyper_port/v2/" "$hyper_pid"

paths=(direct nginx gateway hyper)
declare -A base=(
    [direct]="http://127.0.0.1:$registry_port"
    [nginx]="http://127.0.0.1:$nginx_port"
    [gateway]="http://127.0.0.1:$gateway_port"
    [hyper]="http://127.0.0.1:$hyper_port"
)
direct=${base[direct]}
log "registry $direct, nginx ${base[nginx]}, gateway ${base[gateway]}, gateway --no-read-relay ${base[hyper]}"

order() { # round
    local i
    for i in 0 1 2 3; do echo "${paths[$((($1 + i) % 4))]}"; done
}

relay_pids() { # path
    case "$1" in
        nginx) pgrep -P "$nginx_pid" 2>/dev/null || true ;;
        gateway) echo "$gateway_pid" ;;
        hyper) echo "$hyper_pid" ;;
    esac
}


# ---------------------------------------------------------------------------------------------
# Scenario 1: blob upload and download.

# Samples of a run of small requests: requests/s, and the relay's CPU µs per request.
small_samples() { # what path rps requests relay-ticks
    sample "$1.rps.$2" "$3"
    sample "$1.cpu.$2" "$(awk -v c="$5" -v hz="$clk_tck" -v n="$4" 'BEGIN { printf "%.1f", c / hz / n * 1e6 }')"
    log "  $1 $2: $3 req/s"
}

if [ "$small_only" = 0 ]; then

log "generating a $size random blob"
blob="$work/blob"
head -c "$size_bytes" /dev/urandom >"$blob"
blob_digest="sha256:$(sha256sum "$blob" | cut -d' ' -f1)"
for pid in "$gateway_pid" "$hyper_pid"; do echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true; done

upload() { # path
    local b=${base[$1]} t1 t2 url
    t1=$(request 202 -X POST "$b/v2/bench/blob-$1/blobs/uploads/")
    url=$(with_query "$(location "$b")" "digest=$blob_digest")
    t2=$(request 201 -X PUT -H 'Content-Type: application/octet-stream' -T "$blob" "$url")
    add "$t1" "$t2"
}
download() { # path
    local out status time got digest
    out=$(curl -s -o "$work/got" -w '%{http_code} %{time_total} %{size_download}' \
        "${base[$1]}/v2/bench/blob-$1/blobs/$blob_digest") || true
    read -r status time got <<<"$out"
    [ "$status" = 200 ] || die "download through $1: status $status"
    [ "$got" = "$size_bytes" ] || die "download through $1: $got bytes, expected $size_bytes"
    echo "$time"
}
# A download to /dev/null is timed; one more per round goes to a file and is checked.
download_null() { # path
    local out status time got
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total} %{size_download}' \
        "${base[$1]}/v2/bench/blob-$1/blobs/$blob_digest") || true
    read -r status time got <<<"$out"
    [ "$status" = 200 ] || die "download through $1: status $status"
    [ "$got" = "$size_bytes" ] || die "download through $1: $got bytes, expected $size_bytes"
    echo "$time"
}

log "scenario 1: $rounds rounds of upload and download of $size"
for round in $(seq 1 "$rounds"); do
    for op in upload download_null; do
        for path in $(order "$round"); do timed_transfer "$op" "$path" "$round"; done
    done
    for path in "${paths[@]}"; do
        download "$path" >/dev/null
        got="sha256:$(sha256sum "$work/got" | cut -d' ' -f1)"
        [ "$got" = "$blob_digest" ] || die "download through $path returned other bytes"
    done
done
rm -f "$work/got"
gateway_hwm=$(rss_kib "$gateway_pid" VmHWM)
hyper_hwm=$(rss_kib "$hyper_pid" VmHWM)
log "  peak RSS: gateway $gateway_hwm KiB, --no-read-relay $hyper_hwm KiB"

# ---------------------------------------------------------------------------------------------
# Scenario 2: GET manifest (wrk) and HEAD blob (ab) at $connections connections.

manifest_type=application/vnd.oci.image.manifest.v1+json
config='{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
printf '%s' "$config" >"$work/config.json"
config_digest="sha256:$(sha256sum "$work/config.json" | cut -d' ' -f1)"
request 202 -X POST "$direct/v2/bench/small/blobs/uploads/" >/dev/null
request 201 -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$work/config.json" \
    "$(with_query "$(location "$direct")" "digest=$config_digest")" >/dev/null
request 201 -X POST "$direct/v2/bench/small/blobs/uploads/?mount=$blob_digest&from=bench/blob-direct" >/dev/null
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
    "$manifest_type" "$config_digest" "${#config}" "$blob_digest" "$size_bytes" >"$work/manifest.json"
manifest_digest="sha256:$(sha256sum "$work/manifest.json" | cut -d' ' -f1)"
request 201 -X PUT -H "Content-Type: $manifest_type" --data-binary "@$work/manifest.json" \
    "$direct/v2/bench/small/manifests/latest" >/dev/null
manifest_url() { echo "${base[$1]}/v2/bench/small/manifests/latest"; }
blob_url() { echo "${base[$1]}/v2/bench/small/blobs/$blob_digest"; }
for path in "${paths[@]}"; do
    got=$(curl -fsS -H "Accept: $manifest_type" "$(manifest_url "$path")" | sha256sum | cut -d' ' -f1)
    [ "sha256:$got" = "$manifest_digest" ] || die "GET manifest through $path returned other bytes"
    curl -fsSI "$(blob_url "$path")" | tr -d '\r' | grep -qi "^content-length: $size_bytes$" ||
        die "HEAD blob through $path: wrong Content-Length"
done
cat >"$work/GET.lua" <<EOF
wrk.method = "GET"
wrk.headers["Accept"] = "$manifest_type"
EOF
run_wrk() { # path
    local out rps n c0 c1 relay=()
    mapfile -t relay < <(relay_pids "$1")
    c0=$(cpu_ticks "${relay[@]}")
    out=$(wrk -t2 -c"$connections" -d"${duration}s" -s "$work/GET.lua" "$(manifest_url "$1")" 2>&1) ||
        die "wrk failed: $out"
    c1=$(cpu_ticks "${relay[@]}")
    ! grep -Eq 'Non-2xx or 3xx responses:|Socket errors:' <<<"$out" || die "wrk GET through $1: $out"
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    n=$(awk '/ requests in / { print $1 }' <<<"$out")
    [ -n "$rps" ] && [ "${n:-0}" -gt 0 ] || die "cannot read wrk output: $out"
    small_samples get "$1" "$rps" "$n" $((c1 - c0))
}
# wrk 4.1 cannot send HEAD (wg/wrk#198): ApacheBench with keep-alive.
run_ab() { # path
    local out rps n failed non2xx c0 c1 relay=()
    mapfile -t relay < <(relay_pids "$1")
    c0=$(cpu_ticks "${relay[@]}")
    out=$(ab -q -i -k -c "$connections" -t "$duration" -n 100000000 "$(blob_url "$1")" 2>&1) ||
        die "ab failed: $out"
    c1=$(cpu_ticks "${relay[@]}")
    failed=$(awk '/^Failed requests:/ { print $3 }' <<<"$out")
    non2xx=$(awk '/^Non-2xx responses:/ { print $3 }' <<<"$out")
    [ "${failed:-x}" = 0 ] && [ -z "$non2xx" ] || die "ab HEAD through $1: failed ${failed:-?}, non-2xx ${non2xx:-0}"
    rps=$(awk '/^Requests per second:/ { print $4 }' <<<"$out")
    n=$(awk '/^Complete requests:/ { print $3 }' <<<"$out")
    [ -n "$rps" ] && [ "${n:-0}" -gt 0 ] || die "cannot read ab output: $out"
    small_samples head "$1" "$rps" "$n" $((c1 - c0))
}
log "scenario 2: $rounds rounds of ${duration} s at $connections connections: GET manifest (wrk), HEAD blob (ab -k)"
for round in $(seq 1 "$rounds"); do
    for path in $(order "$round"); do run_wrk "$path"; done
    for path in $(order "$round"); do run_ab "$path"; done
done
fi

# ---------------------------------------------------------------------------------------------
# Scenario 4: GET of a 1 KiB blob, keep-alive, 8 connections (wrk -t2 -c8).

small_connections=8
printf 'small blob %.0s' $(seq 1 100) | head -c 1024 >"$work/small.bin"
small_digest="sha256:$(sha256sum "$work/small.bin" | cut -d' ' -f1)"
request 202 -X POST "$direct/v2/bench/tiny/blobs/uploads/" >/dev/null
request 201 -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$work/small.bin" \
    "$(with_query "$(location "$direct")" "digest=$small_digest")" >/dev/null
small_url() { echo "${base[$1]}/v2/bench/tiny/blobs/$small_digest"; }
for path in "${paths[@]}"; do
    got=$(curl -fsS "$(small_url "$path")" | sha256sum | cut -d' ' -f1)
    [ "sha256:$got" = "$small_digest" ] || die "GET 1 KiB blob through $path returned other bytes"
done
# The four paths run at the same time, one wrk each: on a shared machine whose load changes
# from one second to the next, CPU per request is only comparable when measured over the
# same seconds (one after the other, the per-round ratios of gateway / nginx spread 0.90-1.22).
run_small_together() {
    local path out rps n relay=() wrk_pids=()
    declare -A c0
    for path in "${paths[@]}"; do
        mapfile -t relay < <(relay_pids "$path")
        c0[$path]=$(cpu_ns "${relay[@]}")
    done
    for path in "${paths[@]}"; do
        wrk -t1 -c"$small_connections" -d"${duration}s" "$(small_url "$path")" >"$work/small.$path" 2>&1 &
        wrk_pids+=($!)
    done
    wait "${wrk_pids[@]}" || die "wrk failed: $(cat "$work"/small.*)"
    for path in "${paths[@]}"; do
        mapfile -t relay < <(relay_pids "$path")
        out=$(cat "$work/small.$path")
        ! grep -Eq 'Non-2xx or 3xx responses:|Socket errors:' <<<"$out" || die "wrk GET 1 KiB through $path: $out"
        rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
        n=$(awk '/ requests in / { print $1 }' <<<"$out")
        [ -n "$rps" ] && [ "${n:-0}" -gt 0 ] || die "cannot read wrk output: $out"
        sample "small.rps.$path" "$rps"
        sample "small.cpu.$path" "$(awk -v c=$(($(cpu_ns "${relay[@]}") - c0[$path])) -v n="$n" 'BEGIN { printf "%.1f", c / 1e3 / n }')"
        log "  small $path: $rps req/s"
    done
}
log "scenario 4: $rounds rounds of ${duration} s, the four paths at once, $small_connections connections each: GET 1 KiB blob (wrk)"
for round in $(seq 1 "$rounds"); do run_small_together; done

for pid in "$gateway_pid" "$hyper_pid"; do kill -0 "$pid" 2>/dev/null || die "a gateway exited (see $work)"; done
if [ "$small_only" = 0 ]; then
    relayed=$(curl -fsS "http://127.0.0.1:$admin_port/metrics" | awk '/^registry_gateway_read_relay_body_bytes_total\{how="splice"\}/ { print $2 }')
    [ "${relayed:-0}" != 0 ] || die "the gateway spliced nothing: is the read relay on?"
fi
elapsed=$(($(date +%s) - started_at))

# ---------------------------------------------------------------------------------------------
# Results.

s="$work/samples"
row() { # label unit key
    local d n g h
    d=$(median "$s/$3.direct") n=$(median "$s/$3.nginx") g=$(median "$s/$3.gateway") h=$(median "$s/$3.hyper")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$(fmt "$d")" "$(fmt "$n")" \
        "$(fmt "$g")" "$(fmt "$h")" "$(paired "$s/$3.gateway" "$s/$3.direct")" \
        "$(paired "$s/$3.nginx" "$s/$3.direct")" "$(paired "$s/$3.gateway" "$s/$3.hyper")"
}
cpu_row() { # label unit key
    local n g h
    n=$(median "$s/$3.nginx") g=$(median "$s/$3.gateway") h=$(median "$s/$3.hyper")
    printf '| %s | %s | - | %s | %s | %s | - | - | %s |\n' "$1" "$2" "$(fmt "$n")" "$(fmt "$g")" \
        "$(fmt "$h")" "$(paired "$s/$3.gateway" "$s/$3.hyper")"
}
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo | sed -E 's/ +[0-9]+-Core Processor//')
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
commit=$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(cd "$root" && git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit + changes"; fi
{
    echo "* Machine: $(nproc) cores, $cpu_model, $mem memory, Linux $(uname -r)"
    echo "* Software: $(docker-registry --version 2>/dev/null | head -1 | sed 's/^docker-registry //'), $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //'), wrk $(dpkg-query -W -f '${Version}' wrk 2>/dev/null || echo '?'), ab $(dpkg-query -W -f '${Version}' apache2-utils 2>/dev/null || echo '?')"
    echo "* Command: \`$command_line\` (gateway at $commit)"
    echo "* Date: $(date -u '+%Y-%m-%d %H:%M') UTC, ${elapsed} s without the build"
    echo
    echo "| scenario | unit | direct | nginx | gateway | gateway, --no-read-relay | gateway / direct | nginx / direct | gateway / --no-read-relay |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    if [ "$small_only" = 0 ]; then
        row "blob $size download, GET" "MB/s" download_null
        cpu_row "blob $size download" "relay CPU s per GB" download_null.cpu
        row "blob $size upload, POST + PUT" "MB/s" upload
        cpu_row "blob $size upload" "relay CPU s per GB" upload.cpu
        row "GET manifest, wrk -t2 -c$connections" "requests/s" get.rps
        cpu_row "GET manifest" "relay CPU µs per request" get.cpu
        row "HEAD blob, ab -k -c$connections" "requests/s" head.rps
        cpu_row "HEAD blob" "relay CPU µs per request" head.cpu
    fi
    row "GET 1 KiB blob, wrk -t1 -c$small_connections, paths at once" "requests/s" small.rps
    cpu_row "GET 1 KiB blob" "relay CPU µs per request" small.cpu
    if [ "$small_only" = 0 ]; then
        echo "| peak RSS during the blob transfers | MiB | - | - | $(awk -v k="$gateway_hwm" 'BEGIN { printf "%.1f", k / 1024 }') | $(awk -v k="$hyper_hwm" 'BEGIN { printf "%.1f", k / 1024 }') | - | - | - |"
    fi
    echo
    echo "* GET 1 KiB blob, relay CPU per request, gateway / nginx: $(paired "$s/small.cpu.gateway" "$s/small.cpu.nginx") (median of per-round ratios, range; target of issue 22: at most 1.00)."
    echo "* Ratios are medians of per-round ratios (same round, so shared noise cancels) with their range; $rounds rounds, path order rotating. Relay CPU is the user + system time of the gateway process or the nginx workers (for the 1 KiB GET, their threads' on-CPU time from schedstat, to the nanosecond)."
} >"$work/table.md"
cat "$work/table.md"

if [ "$write_docs" = 1 ]; then
    doc="$root/docs/performance.md"
    grep -q '<!-- read-bench:start -->' "$doc" || die "$doc has no read-bench markers"
    awk -v table="$work/table.md" '
        /<!-- read-bench:start -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
        /<!-- read-bench:end -->/ { skip = 0 }
        !skip { print }' "$doc" >"$doc.new"
    mv "$doc.new" "$doc"
    log "wrote the table into $doc"
fi
