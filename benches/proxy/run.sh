#!/usr/bin/env bash
# Proxy benchmark of registry-gateway (issue 8): what the gateway costs against going to the
# registry directly and against nginx as a plain reverse proxy, side by side in one run.
#
# Starts on free loopback ports, in a temporary directory removed on exit:
#   * Debian's docker-registry (CNCF distribution 2.8), filesystem storage;
#   * nginx as a well-configured plain proxy_pass in front of it (no buffering, keepalive);
#   * registry-gateway (release build) in front of it, with generous limits;
#   * redis-server and a second registry-gateway coordinating through it (--coordination), for
#     the manifest pushes only: the cost of Redis coordination over the in-process default.
# Every scenario is measured three ways, direct / nginx / gateway, interleaved in rounds whose
# path order rotates, so that noise from a shared machine falls on all three alike:
#   1. a blob upload (monolithic POST + PUT, and chunked PATCHes + PUT) and its download;
#   2. manifest pushes of new tags into repositories holding 10 and 1,000 tags (p50, p99), and
#      into repositories of 10 tags through the Redis-coordinated gateway;
#   3. HEAD (ab -k) and GET (wrk) of a manifest at 64 connections (requests/s, p99);
#   4. the gateway's peak resident memory during the blob transfers.
# Prints a table of medians and ratios; --write-docs also writes it to docs/performance.md
# between the proxy-bench markers. Needs: cargo, docker-registry, nginx, wrk, ab, curl and
# coreutils (ab is in apache2-utils; scripts/install-deps.sh installs the Debian packages).
# Asserts nothing about speed, but fails when any request gets an unexpected answer.
set -euo pipefail
shopt -s inherit_errexit

usage() {
    cat <<'EOF'
usage: benches/proxy/run.sh [--quick] [--write-docs] [options]

  --quick            CI mode: 32 MiB blob, few pushes, 3 s wrk runs (well under 2 minutes)
  --write-docs       write the results to docs/performance.md (section "Proxy benchmark")
  --size SIZE        blob size, e.g. 1G, 256M (default 1G; quick 32M)
  --chunk SIZE       PATCH chunk size (default 64M; quick 8M)
  --blob-rounds N    rounds of blob upload/download (default 5; quick 2)
  --push-rounds N    rounds of manifest pushes (default 5; quick 2)
  --pushes N         new-tag pushes per path, tag count and round, a multiple of 10
                     (default 100; quick 20)
  --wrk-rounds N     rounds of the HEAD (ab) and GET (wrk) runs (default 3; quick 1)
  --duration SECS    length of one such run (default 10; quick 3)
  --connections N    connections of those runs (default 64)
  --nginx-buffer SIZE  nginx proxy_buffer_size (default 256k, near the gateway's own 400 KiB
                     read buffer; nginx's default 4k streams large blobs at a third of the speed)
  --no-build         use target/release/registry-gateway as built
  --keep             keep the temporary directory (logs, raw samples)
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
command_line="benches/proxy/run.sh${*:+ $*}"
# shellcheck source=benches/proxy/lib.sh
. "$here/lib.sh"

quick=0 write_docs=0 build=1 keep=0
size='' chunk='' blob_rounds='' push_rounds='' pushes='' wrk_rounds='' duration='' connections=64
nginx_buffer=256k
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --write-docs) write_docs=1 ;;
        --size) size=$2; shift ;;
        --chunk) chunk=$2; shift ;;
        --blob-rounds) blob_rounds=$2; shift ;;
        --push-rounds) push_rounds=$2; shift ;;
        --pushes) pushes=$2; shift ;;
        --wrk-rounds) wrk_rounds=$2; shift ;;
        --duration) duration=$2; shift ;;
        --connections) connections=$2; shift ;;
        --nginx-buffer) nginx_buffer=$2; shift ;;
        --no-build) build=0 ;;
        --keep) keep=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    : "${size:=32M}" "${chunk:=8M}" "${blob_rounds:=2}" "${push_rounds:=2}" "${pushes:=20}"
    : "${wrk_rounds:=1}" "${duration:=3}"
else
    : "${size:=1G}" "${chunk:=64M}" "${blob_rounds:=5}" "${push_rounds:=5}" "${pushes:=100}"
    : "${wrk_rounds:=3}" "${duration:=10}"
fi
size_bytes=$(numfmt --from=iec "$size")
chunk_bytes=$(numfmt --from=iec "$chunk")
if [ $((pushes % 10)) -ne 0 ] || [ "$pushes" -lt 10 ]; then
    echo "--pushes must be a positive multiple of 10" >&2
    exit 2
fi

require_tools cargo docker-registry nginx redis-server wrk ab curl sha256sum split numfmt

# 1073741824 -> 1GiB, 33554432 -> 32MiB
iec() { numfmt --to=iec "$1" | sed -E 's/\.0([KMGT])/\1/; s/([KMGT])$/\1iB/'; }

# ---------------------------------------------------------------------------------------------
# Build and start everything.

gateway_bin=$(gateway_binary "$root" "$build")
started_at=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/var/tmp}/proxy-bench.XXXXXX")
cleanup() {
    local status=$?
    stop_spawned
    if [ "$keep" = 1 ]; then
        log "kept $work (logs: registry.log nginx/error.log gateway.log gateway-redis.log; raw samples: samples/)"
    elif [ "$status" -ne 0 ]; then
        # Keep the logs for a look at what failed, not the blob and the registry's storage.
        rm -rf "$work/data" "$work/storage"
        log "kept the logs in $work (registry.log nginx/error.log gateway.log)"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM


registry_port='' nginx_port='' gateway_port='' admin_port='' redis_port='' redis_gw_port='' redis_admin_port=''
free_port registry_port
free_port nginx_port
free_port gateway_port
free_port admin_port
free_port redis_port
free_port redis_gw_port
free_port redis_admin_port

mkdir -p "$work/data" "$work/samples"
start_registry "$registry_port" proxy-bench-secret
start_nginx "$nginx_port" "$registry_port" "$nginx_buffer"
start_gateway "$work/gateway.log" "$gateway_port" "$admin_port"
gateway_pid=$spawned

spawn "$work/redis.log" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$work"
start_gateway "$work/gateway-redis.log" "$redis_gw_port" "$redis_admin_port" \
    --coordination "redis://127.0.0.1:$redis_port/0"
redis_gw_pid=$spawned

wait_ready docker-registry "http://127.0.0.1:$registry_port/v2/" "$registry_pid"
wait_ready nginx "http://127.0.0.1:$nginx_port/v2/" "$nginx_pid"
wait_ready registry-gateway "http://127.0.0.1:$gateway_port/v2/" "$gateway_pid"
wait_ready "registry-gateway (Redis)" "http://127.0.0.1:$redis_admin_port/readyz" "$redis_gw_pid"

paths=(direct nginx gateway)
declare -A base=(
    [direct]="http://127.0.0.1:$registry_port"
    [nginx]="http://127.0.0.1:$nginx_port"
    [gateway]="http://127.0.0.1:$gateway_port"
    [redis]="http://127.0.0.1:$redis_gw_port"
)
direct=${base[direct]}
log "registry $direct, nginx ${base[nginx]}, gateway ${base[gateway]}; work dir $work"

# The paths in the order of round $1: rotated, so no path always runs first or last.
order() {
    local r=$1 i
    for i in 0 1 2; do echo "${paths[$(((r + i) % 3))]}"; done
}

# ---------------------------------------------------------------------------------------------
# HTTP helpers. Every request checks its status; any other is an error.

# Monolithic upload of a small file directly, for set-up.
put_blob() { # base repo file digest
    request 202 -X POST "$1/v2/$2/blobs/uploads/" >/dev/null
    local url
    url=$(with_query "$(location "$1")" "digest=$4")
    request 201 -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$3" "$url" >/dev/null
}

# The processes that relay a path's requests (none for direct).
relay_pids() { # path
    case "$1" in
        nginx) pgrep -P "$nginx_pid" 2>/dev/null || true ;;
        gateway) echo "$gateway_pid" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Scenario 1: blob upload (monolithic and chunked) and download.

log "generating a $(iec "$size_bytes") random blob"
blob="$work/data/blob"
head -c "$size_bytes" /dev/urandom >"$blob"
blob_digest="sha256:$(sha256sum "$blob" | cut -d' ' -f1)"
(cd "$work/data" && split -b "$chunk_bytes" -d -a 4 blob chunk.)
chunks=("$work"/data/chunk.*)

# Reset the peak RSS counters, so the peak measured is the one during the transfers.
for pid in "$gateway_pid" $(relay_pids nginx); do
    echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
done
gateway_rss_before=$(rss_kib "$gateway_pid" VmRSS)

upload_monolithic() { # path
    local b=${base[$1]} t1 t2 url
    t1=$(request 202 -X POST "$b/v2/bench/blob-$1/blobs/uploads/")
    url=$(with_query "$(location "$b")" "digest=$blob_digest")
    t2=$(request 201 -X PUT -H 'Content-Type: application/octet-stream' -T "$blob" "$url")
    add "$t1" "$t2"
}
upload_chunked() { # path
    local b=${base[$1]} total offset=0 len t url chunk
    total=$(request 202 -X POST "$b/v2/bench/blob-$1/blobs/uploads/")
    url=$(location "$b")
    for chunk in "${chunks[@]}"; do
        len=$(stat -c %s "$chunk")
        t=$(request 202 -X PATCH -H 'Content-Type: application/octet-stream' \
            -H "Content-Range: $offset-$((offset + len - 1))" -T "$chunk" "$url")
        total=$(add "$total" "$t")
        offset=$((offset + len))
        url=$(location "$b")
    done
    t=$(request 201 -X PUT -H 'Content-Type: application/octet-stream' -H 'Content-Length: 0' \
        "$(with_query "$url" "digest=$blob_digest")")
    add "$total" "$t"
}
download() { # path
    local out status time got
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total} %{size_download}' \
        "${base[$1]}/v2/bench/blob-$1/blobs/$blob_digest") || true
    read -r status time got <<<"$out"
    [ "$status" = 200 ] || die "blob download through $1: status $status"
    [ "$got" = "$size_bytes" ] || die "blob download through $1: $got bytes, expected $size_bytes"
    echo "$time"
}

log "scenario 1: blob of $(iec "$size_bytes"), $blob_rounds rounds (monolithic, chunked by $(iec "$chunk_bytes"), download)"
for round in $(seq 1 "$blob_rounds"); do
    for op in upload_monolithic upload_chunked download; do
        for path in $(order "$round"); do timed_transfer "$op" "$path" "$round"; done
    done
done
gateway_hwm=$(rss_kib "$gateway_pid" VmHWM)
nginx_hwm=0
for pid in $(relay_pids nginx); do
    h=$(rss_kib "$pid" VmHWM)
    [ "${h:-0}" -gt "$nginx_hwm" ] && nginx_hwm=$h
done
log "  gateway peak RSS ${gateway_hwm} KiB (RSS before: ${gateway_rss_before} KiB); nginx worker peak ${nginx_hwm} KiB"

# ---------------------------------------------------------------------------------------------
# Scenario 2: manifest pushes of new tags into repositories holding 10 and 1,000 tags.

# A small image: one config blob and one layer, pushed directly.
printf '%s' "$(head -c 2048 /dev/urandom | base64 -w0)" >"$work/data/layer"
layer_digest="sha256:$(sha256sum "$work/data/layer" | cut -d' ' -f1)"
layer_size=$(stat -c %s "$work/data/layer")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$layer_digest" >"$work/data/config"
config_digest="sha256:$(sha256sum "$work/data/config" | cut -d' ' -f1)"
config_size=$(stat -c %s "$work/data/config")
manifest_type=application/vnd.oci.image.manifest.v1+json
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
    "$manifest_type" "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$work/data/manifest"
manifest_digest="sha256:$(sha256sum "$work/data/manifest" | cut -d' ' -f1)"
put_blob "$direct" bench/src "$work/data/config" "$config_digest"
put_blob "$direct" bench/src "$work/data/layer" "$layer_digest"


# Pushes go in batches of 10 new tags. 10 tags: each batch into a fresh repository holding 10,
# so it never holds more than 19. 1,000 tags: a repository is used for as many rounds as keep
# its growth within 10% (one round in the full run), so it holds 1,000 to 1,100.
batches=$((pushes / 10))
repos10=$((push_rounds * batches))
rounds_per_repo=$((100 / pushes))
[ "$rounds_per_repo" -ge 1 ] || rounds_per_repo=1
repos1000=$(((push_rounds + rounds_per_repo - 1) / rounds_per_repo))
repo_for() { # tags path round batch
    case "$1" in
        10) echo "bench/t10-$2-$((($3 - 1) * batches + $4))" ;;
        1000) echo "bench/t1000-$2-$((($3 - 1) / rounds_per_repo + 1))" ;;
    esac
}
log "scenario 2: pre-populating, per path, $repos10 repositories of 10 tags and $repos1000 of 1000 tags, directly"
populate() { # path
    mount_blobs "bench/t10-$1-[1-$repos10]"
    push_manifests '' "$direct/v2/bench/t10-$1-[1-$repos10]/manifests/pre[1-10]"
    mount_blobs "bench/t1000-$1-[1-$repos1000]"
    push_manifests '' "$direct/v2/bench/t1000-$1-[1-$repos1000]/manifests/pre[1-1000]"
}
populating=()
for path in "${paths[@]}"; do
    populate "$path" &
    populating+=($!)
done
# The Redis-coordinated gateway: repositories of 10 tags only.
(mount_blobs "bench/t10-redis-[1-$repos10]" &&
    push_manifests '' "$direct/v2/bench/t10-redis-[1-$repos10]/manifests/pre[1-10]") &
populating+=($!)
for pid in "${populating[@]}"; do wait "$pid" || die "pre-populating failed"; done

log "scenario 2: $push_rounds rounds of $pushes new-tag pushes per path and tag count, each batch of 10 after one direct tag listing of its repository"
for round in $(seq 1 "$push_rounds"); do
    # The Redis-coordinated gateway goes right before or right after the in-process one.
    if [ $((round % 2)) = 1 ]; then round_paths="redis $(order "$round")"; else round_paths="$(order "$round") redis"; fi
    for path in $round_paths; do
        for tags in 10 1000; do
            [ "$path" = redis ] && [ "$tags" = 1000 ] && continue
            for batch in $(seq 1 "$batches"); do
                repo=$(repo_for "$tags" "$path" "$round" "$batch")
                # The upstream's own tag listing of the same repository, for comparison.
                glob_requests "list$tags" 200 "$direct/v2/$repo/tags/list"
                push_manifests "push$tags.$path" "${base[$path]}/v2/$repo/manifests/r$round-b$batch-[1-10]"
            done
        done
    done
    log "  round $round done"
done

# ---------------------------------------------------------------------------------------------
# Scenario 3: HEAD and GET of a manifest at high concurrency.

mount_blobs bench/small
push_manifests '' "$direct/v2/bench/small/manifests/latest"
manifest_url() { echo "${base[$1]}/v2/bench/small/manifests/latest"; }
for path in "${paths[@]}"; do
    got=$(curl -fsS -H "Accept: $manifest_type" "$(manifest_url "$path")" | sha256sum | cut -d' ' -f1)
    [ "sha256:$got" = "$manifest_digest" ] || die "GET manifest through $path returned other bytes"
    curl -fsSI -H "Accept: $manifest_type" "$(manifest_url "$path")" | tr -d '\r' |
        grep -qi "^docker-content-digest: $manifest_digest" || die "HEAD manifest through $path: no digest"
done
cat >"$work/GET.lua" <<EOF
wrk.method = "GET"
wrk.headers["Accept"] = "$manifest_type"
EOF
# Latency in ms from wrk's "12.34us" / "1.23ms" / "1.02s".
to_ms() {
    awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}
# Records requests/s, p99 (ms) and the relay's CPU per request (µs).
small_samples() { # method path rps p99 requests cpu-ticks registry-ticks
    sample "small.$1.rps.$2" "$3"
    sample "small.$1.p99.$2" "$4"
    sample "small.$1.cpu.$2" "$(awk -v c="$6" -v hz="$clk_tck" -v n="$5" 'BEGIN { printf "%.1f", c / hz / n * 1e6 }')"
    sample "small.registry-cpu" "$(awk -v c="$7" -v hz="$clk_tck" -v n="$5" 'BEGIN { printf "%.1f", c / hz / n * 1e6 }')"
    log "  $1 $2: $3 req/s, p99 $4 ms"
}
run_wrk() { # path
    local out rps p99 bad n c0 c1 r0 r1 relay=()
    mapfile -t relay < <(relay_pids "$1")
    c0=$(cpu_ticks "${relay[@]}") r0=$(cpu_ticks "$registry_pid")
    out=$(wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$work/GET.lua" "$(manifest_url "$1")" 2>&1) ||
        die "wrk failed: $out"
    c1=$(cpu_ticks "${relay[@]}") r1=$(cpu_ticks "$registry_pid")
    bad=$(awk '/Non-2xx or 3xx responses:/ { print } /Socket errors:/ { print }' <<<"$out")
    [ -z "$bad" ] || die "wrk GET through $1: $bad"
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    n=$(awk '/ requests in / { print $1 }' <<<"$out")
    if [ -z "$rps" ] || [ -z "$p99" ] || [ "${n:-0}" -eq 0 ]; then die "cannot read wrk output: $out"; fi
    small_samples GET "$1" "$rps" "$(to_ms "$p99")" "$n" $((c1 - c0)) $((r1 - r0))
}
# wrk 4.1 cannot send HEAD (it waits for the body the Content-Length announces, wg/wrk#198),
# so HEAD runs with ApacheBench (apache2-utils): keep-alive, same concurrency and duration.
run_ab() { # path
    local out rps p99 failed non2xx n c0 c1 r0 r1 relay=()
    mapfile -t relay < <(relay_pids "$1")
    c0=$(cpu_ticks "${relay[@]}") r0=$(cpu_ticks "$registry_pid")
    out=$(ab -q -i -k -c "$connections" -t "$duration" -n 100000000 -e "$work/ab.csv" \
        -H "Accept: $manifest_type" "$(manifest_url "$1")" 2>&1) || die "ab failed: $out"
    c1=$(cpu_ticks "${relay[@]}") r1=$(cpu_ticks "$registry_pid")
    failed=$(awk '/^Failed requests:/ { print $3 }' <<<"$out")
    non2xx=$(awk '/^Non-2xx responses:/ { print $3 }' <<<"$out")
    if [ "${failed:-x}" != 0 ] || [ -n "$non2xx" ]; then
        die "ab HEAD through $1: failed ${failed:-?}, non-2xx ${non2xx:-0}"
    fi
    rps=$(awk '/^Requests per second:/ { print $4 }' <<<"$out")
    p99=$(awk -F, '$1 == "99" { print $2 }' "$work/ab.csv")
    n=$(awk '/^Complete requests:/ { print $3 }' <<<"$out")
    if [ -z "$rps" ] || [ -z "$p99" ] || [ "${n:-0}" -eq 0 ]; then die "cannot read ab output: $out"; fi
    small_samples HEAD "$1" "$rps" "$p99" "$n" $((c1 - c0)) $((r1 - r0))
}
log "scenario 3: $wrk_rounds rounds of ${duration} s at $connections connections: HEAD (ab -k) and GET (wrk -t2) of a manifest"
for round in $(seq 1 "$wrk_rounds"); do
    for path in $(order "$round"); do run_ab "$path"; done
    for path in $(order "$round"); do run_wrk "$path"; done
done
gateway_hwm_end=$(rss_kib "$gateway_pid" VmHWM)

# The gateway must have refused nothing.
kill -0 "$gateway_pid" 2>/dev/null || die "the gateway exited (see $work/gateway.log)"
kill -0 "$redis_gw_pid" 2>/dev/null || die "the Redis-coordinated gateway exited (see $work/gateway-redis.log)"
if grep -Eq 'verdict="?denied' "$work/gateway.log" "$work/gateway-redis.log"; then
    die "the gateway refused requests (see $work/gateway.log, $work/gateway-redis.log)"
fi

elapsed=$(($(date +%s) - started_at))

# ---------------------------------------------------------------------------------------------
# Results.

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "nan" || b == "nan") print "-"; else printf "%.2f", a / b }'; }
paired_median() { # file-a file-b: the median ratio alone
    paste "$1" "$2" | awk '$2 > 0 { print $1 / $2 }' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
met() { if [ "$1" = 1 ]; then echo met; else echo '**missed**'; fi; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "nan" && a >= b) ? 1 : 0 }'; }

table="$work/table.md"
{
    echo "| scenario | metric | direct | nginx | gateway | nginx / direct | gateway / direct | gateway / nginx | target (gateway) |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
} >"$table"
line() { printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$@" >>"$table"; }
S="$work/samples"
# A metric measured once per round on every path: medians, and per-round paired ratios.
round_row() { # scenario metric sample target(throughput|rate|p99|cpu)
    local d n g verdict='' gd gn
    d=$(median "$S/$3.direct") n=$(median "$S/$3.nginx") g=$(median "$S/$3.gateway")
    gd=$(paired_median "$S/$3.gateway" "$S/$3.direct") gn=$(paired_median "$S/$3.gateway" "$S/$3.nginx")
    case "$4" in
        throughput) verdict="≥ 0.95× direct: $(met "$(ge "$gd" 0.95)"); ≥ nginx: $(met "$(ge "$gn" 1)")" ;;
        rate) verdict="≥ 0.9× direct: $(met "$(ge "$gd" 0.9)")" ;;
        p99) verdict="≤ nginx: $(met "$(ge 1 "$gn")")" ;;
    esac
    line "$1" "$2" "$(fmt "$d")" "$(fmt "$n")" "$(fmt "$g")" "$(paired "$S/$3.nginx" "$S/$3.direct")" \
        "$(paired "$S/$3.gateway" "$S/$3.direct")" "$(paired "$S/$3.gateway" "$S/$3.nginx")" "$verdict"
}
# The relay's CPU: no direct value.
cpu_row() { # scenario metric sample
    local n g
    n=$(median "$S/$3.nginx") g=$(median "$S/$3.gateway")
    line "$1" "$2" "-" "$(fmt "$n")" "$(fmt "$g")" "-" "-" "$(paired "$S/$3.gateway" "$S/$3.nginx")" ""
}
# Latency percentiles over all pushes.
push_row() { # scenario tags percentile
    local d n g verdict
    d=$(percentile "$S/push$2.direct" "$3") n=$(percentile "$S/push$2.nginx" "$3") g=$(percentile "$S/push$2.gateway" "$3")
    verdict="gateway − direct $(awk -v a="$g" -v b="$d" 'BEGIN { printf "%+.2f ms", a - b }')"
    if [ "$2" = 10 ] && [ "$3" = 50 ]; then
        verdict="$verdict, < 2 ms: $(met "$(awk -v a="$g" -v b="$d" 'BEGIN { print (a - b < 2) ? 1 : 0 }')")"
    fi
    line "$1" "ms, p$3" "$(fmt "$d")" "$(fmt "$n")" "$(fmt "$g")" "$(ratio "$n" "$d")" "$(ratio "$g" "$d")" "$(ratio "$g" "$n")" "$verdict"
}

blob_h="blob $(iec "$size_bytes")"
round_row "$blob_h upload, monolithic POST + PUT" "MB/s" upload_monolithic throughput
round_row "$blob_h upload, chunked PATCH $(iec "$chunk_bytes") + PUT" "MB/s" upload_chunked throughput
round_row "$blob_h download, GET" "MB/s" download throughput
cpu_row "$blob_h upload, monolithic" "relay CPU s per GB" upload_monolithic.cpu
cpu_row "$blob_h download" "relay CPU s per GB" download.cpu
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
line "peak RSS during the blob transfers" "MiB" "-" "$(mib "$nginx_hwm") (worker)" "$(mib "$gateway_hwm")" "-" "-" \
    "$(ratio "$gateway_hwm" "$nginx_hwm")" "< 64 MiB: $(met "$(awk -v k="$gateway_hwm" 'BEGIN { print (k < 65536) ? 1 : 0 }')")"
push_row "manifest push, new tag, repository of 10 tags" 10 50
push_row "manifest push, new tag, repository of 10 tags" 10 99
# The Redis-coordinated gateway against the in-process one, same repositories of 10 tags.
redis_row() { # percentile
    local d g r verdict
    d=$(percentile "$S/push10.direct" "$1") g=$(percentile "$S/push10.gateway" "$1") r=$(percentile "$S/push10.redis" "$1")
    verdict="Redis − in-process $(awk -v a="$r" -v b="$g" 'BEGIN { printf "%+.2f ms", a - b }')"
    if [ "$1" = 50 ]; then
        verdict="$verdict, ≤ 0.5 ms: $(met "$(awk -v a="$r" -v b="$g" 'BEGIN { print (a - b <= 0.5) ? 1 : 0 }')")"
    fi
    line "manifest push, new tag, repository of 10 tags, gateway with Redis coordination" "ms, p$1" "$(fmt "$d")" "-" "$(fmt "$r")" "-" "$(ratio "$r" "$d")" "-" "$verdict"
}
redis_row 50
redis_row 99
push_row "manifest push, new tag, repository of 1,000 tags" 1000 50
push_row "manifest push, new tag, repository of 1,000 tags" 1000 99
list10=$(percentile "$S/list10" 50) list1000=$(percentile "$S/list1000" 50)
growth=$(awk -v a="$(percentile "$S/push1000.gateway" 50)" -v b="$(percentile "$S/push1000.direct" 50)" \
    -v c="$(percentile "$S/push10.gateway" 50)" -v d="$(percentile "$S/push10.direct" 50)" 'BEGIN { printf "%.2f", (a - b) - (c - d) }')
list_growth=$(awk -v a="$list1000" -v b="$list10" 'BEGIN { printf "%.2f", a - b }')
line "upstream tag listing (GET tags/list, direct), 10 → 1,000 tags" "ms, p50" "$(fmt "$list10") → $(fmt "$list1000")" "" "" "" "" "" \
    "overhead growth 10 → 1,000 tags: $(awk -v g="$growth" 'BEGIN { printf "%+.2f", g }') ms, listing growth $(awk -v g="$list_growth" 'BEGIN { printf "%+.2f", g }') ms: $(met "$(ge "$list_growth" "$growth")")"
round_row "HEAD manifest, ab -k -c$connections" "requests/s" small.HEAD.rps rate
round_row "HEAD manifest, ab -k -c$connections" "p99 ms" small.HEAD.p99 p99
round_row "GET manifest, wrk -t2 -c$connections" "requests/s" small.GET.rps rate
round_row "GET manifest, wrk -t2 -c$connections" "p99 ms" small.GET.p99 p99
cpu_row "HEAD manifest" "relay CPU µs per request" small.HEAD.cpu
cpu_row "GET manifest" "relay CPU µs per request" small.GET.cpu

notes="$work/notes.md"
{
    echo "Ratios of round-based rows are medians of per-round ratios (same round, so shared noise cancels), with their range over rounds; push rows compare percentiles over all pushes."
    echo "Blob throughput counts the whole upload (POST, PATCHes, PUT) or download; MB = 10^6 bytes. Relay CPU is the user + system time of the gateway process or the nginx workers."
    echo "The registry itself used $(fmt "$(median "$S/small.registry-cpu")") µs of CPU per manifest request (median over the runs)."
    echo "Gateway peak RSS at the end of the run (after the concurrent runs too): $(mib "$gateway_hwm_end") MiB."
    echo "Samples: blob $blob_rounds rounds; $((push_rounds * pushes)) manifest pushes per path and tag count; HEAD and GET $wrk_rounds rounds of ${duration} s at $connections connections; nginx proxy_buffer_size $nginx_buffer."
} >"$notes"

echo
echo "Proxy benchmark ($(nproc) cores, ${elapsed} s without the build):"
echo
cat "$table"
echo
sed 's/^/* /' "$notes"

if [ "$write_docs" = 1 ]; then
    doc="$root/docs/performance.md"
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ -n "$(git -C "$root" status --porcelain --untracked-files=no -- crates 2>/dev/null)" ]; then rev="$rev (crates modified)"; fi
    section="$work/section.md"
    {
        echo "<!-- proxy-bench:start -->"
        echo "## Proxy benchmark"
        echo
        echo "Generated by \`benches/proxy/run.sh\` (regenerate with the command below; it rewrites only"
        echo "this section). The same registry (Debian's docker-registry, filesystem storage, in-memory"
        echo "blob descriptor cache) is reached three ways, interleaved in rounds whose order rotates:"
        echo "directly, through nginx (\`proxy_pass\`, \`proxy_request_buffering off\`, \`proxy_buffering"
        echo "off\`, \`proxy_buffer_size $nginx_buffer\`, keepalive upstream, HTTP/1.1), and through the gateway"
        echo "(release build, limits 4 GiB and 100,000 tags), all on loopback."
        echo
        echo "* Machine: $(nproc) cores, $cpu, $mem memory, $(uname -sr)"
        echo "* Software: $(docker-registry --version 2>&1 | awk '{ print $2, $3 }'), $("$nginx_bin" -v 2>&1 | sed 's/.*: //'), $(wrk --version 2>&1 | head -1 | awk '{ print "wrk", $2 }'), $(curl --version | head -1 | awk '{ print "curl", $2 }')"
        echo "* Command: \`$command_line\` (gateway at $rev)"
        echo "* Date: $(date -u +%Y-%m-%d\ %H:%M\ UTC), ${elapsed} s without the build"
        echo
        cat "$table"
        echo
        sed 's/^/* /' "$notes"
        echo "<!-- proxy-bench:end -->"
    } >"$section"
    mkdir -p "$(dirname "$doc")"
    if [ ! -f "$doc" ]; then
        { echo "# Performance"; echo; cat "$section"; } >"$doc"
    elif grep -q '<!-- proxy-bench:start -->' "$doc"; then
        awk -v section="$section" '
            /<!-- proxy-bench:start -->/ { while ((getline line < section) > 0) print line; skip = 1; next }
            /<!-- proxy-bench:end -->/ { skip = 0; next }
            !skip { print }' "$doc" >"$work/doc.md"
        cat "$work/doc.md" >"$doc"
    else
        { echo; cat "$section"; } >>"$doc"
    fi
    log "wrote $doc"
fi
