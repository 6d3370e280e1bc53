# Shared by the proxy benchmarks (run.sh, reads.sh, tags.sh): logging, tool checks, free ports, the
# registry's, nginx's and the gateways' configuration and processes, HTTP helpers that check every status, CPU and memory readings, and
# statistics. Sourced, not run; the caller sets `work` (its temporary directory) first.

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Exits with a hint when a tool is missing; sets nginx_bin (nginx is in /usr/sbin on Debian).
require_tools() { # tool...
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
            echo "error: $tool is missing (scripts/install-deps.sh installs the Debian packages)" >&2
            exit 1
        }
    done
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
}

# Background processes: `spawn` starts one with its output in a log and sets `spawned` to its
# pid; `stop_spawned` (for the caller's exit trap) stops them all and waits for them.
pids=()
spawn() { # log command...
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    spawned=$!
    pids+=("$spawned")
}
stop_spawned() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# docker-registry on port $1 with its storage in $work/storage; sets registry_pid.
start_registry() { # port secret
    mkdir -p "$work/storage"
    write_registry_config "$work/registry.yml" "$1" "$work/storage" "$2"
    spawn "$work/registry.log" docker-registry serve "$work/registry.yml"
    registry_pid=$spawned
}

# nginx on port $1 in front of the registry on port $2; sets nginx_pid.
start_nginx() { # port registry-port buffer-size
    mkdir -p "$work/nginx"
    write_nginx_config "$work/nginx" "$1" "$2" "$3"
    spawn "$work/nginx/stderr.log" "$nginx_bin" -c "$work/nginx/nginx.conf" -p "$work/nginx"
    nginx_pid=$spawned
}

# A gateway (binary $gateway_bin) on ports $2 and $3 in front of the registry on
# $registry_port, with limits that no benchmark reaches; its output in $1, its pid in
# `spawned`. Further arguments go to `serve`.
start_gateway() { # log port admin-port [serve-argument...]
    local log=$1 port=$2 admin=$3
    shift 3
    [ -f "$work/gateway.yml" ] || printf 'max_image_size: 4GB\ntag_count_limit: 100000\n' >"$work/gateway.yml"
    spawn "$log" "$gateway_bin" serve --config "$work/gateway.yml" \
        --upstream "http://127.0.0.1:$registry_port" \
        --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" "$@"
}

# The release binary of the gateway, built first when $2 is 1; $GATEWAY_BIN, when set, names
# another binary (say one built at an earlier commit) and nothing is built.
gateway_binary() { # root build
    if [ -n "${GATEWAY_BIN:-}" ]; then
        [ -x "$GATEWAY_BIN" ] || die "GATEWAY_BIN=$GATEWAY_BIN is not an executable"
        echo "$GATEWAY_BIN"
        return
    fi
    if [ "$2" = 1 ]; then
        log "building the gateway (cargo build --release -p gateway-bin)"
        (cd "$1" && cargo build --release -p gateway-bin --quiet)
    fi
    [ -x "$1/target/release/registry-gateway" ] || die "$1/target/release/registry-gateway not built"
    echo "$1/target/release/registry-gateway"
}

# Sets variable $1 to a loopback port below the ephemeral range that nothing listens on and no
# other variable was given.
used_ports=' '
free_port() { # variable
    local port
    while :; do
        port=$((20000 + RANDOM % 12000))
        case "$used_ports" in *" $port "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            used_ports="$used_ports$port "
            printf -v "$1" '%s' "$port"
            return
        fi
    done
}

wait_ready() { # name url pid
    local i
    for i in $(seq 1 100); do
        if curl -fs -o /dev/null --max-time 1 "$2"; then return 0; fi
        kill -0 "$3" 2>/dev/null || die "$1 exited at start (see $work)"
        sleep 0.1
    done
    die "$1 did not answer $2 within 10 s"
}

# docker-registry's configuration: filesystem storage, in-memory blob descriptor cache, no
# access log, no upload purging.
write_registry_config() { # file port storage-dir secret
    cat >"$1" <<CONF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $3
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$2
  secret: $4
CONF
}

# nginx as the fair peer: streaming both ways, keepalive to the registry, no access log (the
# gateway writes none for plain requests either), workers = cores, and a read buffer of the
# given size (with proxy_buffering off nginx relays through one proxy_buffer_size buffer).
write_nginx_config() { # dir listen-port registry-port buffer-size
    local user=''
    [ "$(id -u)" = 0 ] && user='user root;'
    cat >"$1/nginx.conf" <<CONF
$user
daemon off;
worker_processes auto;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    keepalive_requests 1000000;
    upstream registry {
        server 127.0.0.1:$3;
        keepalive 128;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$2;
        client_max_body_size 0;
        chunked_transfer_encoding on;
        location / {
            proxy_pass http://registry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_buffer_size $4;
            proxy_buffers 4 $4;
            proxy_busy_buffers_size $4;
            proxy_read_timeout 900s;
            proxy_send_timeout 900s;
        }
    }
}
CONF
}

# request EXPECTED_STATUS curl-args... ; prints "time_total"; leaves headers in $work/headers.
request() {
    local expected=$1 out status time hdr="$work/headers"
    shift
    out=$(curl -s -o /dev/null -D "$hdr" -H 'Expect:' -w '%{http_code} %{time_total}' "$@") || true
    status=${out%% *} time=${out#* }
    [ "$status" = "$expected" ] || die "expected $expected, got $status: curl $* ($(tr -d '\r' <"$hdr" 2>/dev/null | head -1))"
    echo "$time"
}
# The upload URL from the Location of the last answer, absolute.
location() { # base
    local loc
    loc=$(tr -d '\r' <"$work/headers" | awk 'tolower($1) == "location:" { print $2 }' | tail -1)
    [ -n "$loc" ] || die "no Location header"
    case "$loc" in /*) loc="$1$loc" ;; esac
    echo "$loc"
}
with_query() { # url key=value
    case "$1" in *\?*) echo "$1&$2" ;; *) echo "$1?$2" ;; esac
}
# Sums decimal seconds.
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a + b }'; }
mbps() { awk -v s="$1" -v t="$2" 'BEGIN { printf "%.1f", s / t / 1e6 }'; }

sample() { echo "$2" >>"$work/samples/$1"; } # name value

# CPU time (clock ticks) used so far by processes.
# Runs transfer function $1 through path $2 (it prints the seconds that moving $size_bytes
# took) and records MB/s as sample "$1.$2" and the relay's CPU seconds per GB (the processes
# the caller's `relay_pids` names for the path) as sample "$1.cpu.$2".
timed_transfer() { # op path round
    local relay=() c0 c1 seconds v
    mapfile -t relay < <(relay_pids "$2")
    c0=$(cpu_ticks "${relay[@]}")
    seconds=$("$1" "$2")
    c1=$(cpu_ticks "${relay[@]}")
    v=$(mbps "$size_bytes" "$seconds")
    sample "$1.$2" "$v"
    sample "$1.cpu.$2" "$(awk -v c=$((c1 - c0)) -v hz="$clk_tck" -v s="$size_bytes" 'BEGIN { printf "%.3f", c / hz / (s / 1e9) }')"
    log "  round $3 $1 $2: $v MB/s"
}

clk_tck=$(getconf CLK_TCK)
cpu_ticks() { # pid...
    local pid total=0 t
    for pid in "$@"; do
        t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}
# CPU time (nanoseconds) used so far by the threads of processes, from their schedstat: the
# precision that small requests need (a clock tick of /proc/<pid>/stat is ~10 µs per request
# at 1,000 requests). Threads that ended are not counted: for a relay whose threads live as
# long as it does (the gateway's runtime threads, nginx's single-threaded workers) it is the
# same figure.
cpu_ns() { # pid...
    local pid
    for pid in "$@"; do cat "/proc/$pid/task/"*/schedstat 2>/dev/null; done | awk '{ t += $1 } END { printf "%.0f\n", t }'
}
rss_kib() { # pid field
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

median() { # file
    sort -g "$1" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
fmt() { awk -v v="$1" 'BEGIN { if (v == "nan" || v == "") print "-"; else if (v >= 100) printf "%.0f", v; else if (v >= 10) printf "%.1f", v; else printf "%.2f", v }'; }
# Median of the per-round ratios a_i / b_i (same round, so shared noise cancels), with their
# range: "0.97 (0.93-1.02)".
paired() { # file-a file-b
    paste "$1" "$2" | awk '$2 > 0 { print $1 / $2 }' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "-"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        if (NR == 1) printf "%.2f", m; else printf "%.2f (%.2f-%.2f)", m, v[1], v[NR] }'
}

# Sample statistics over a file of numbers: median, or nearest-rank percentile.
percentile() { # file p(0-100)
    sort -g "$1" | awk -v p="$2" '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        i = int(p / 100 * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'
}

# Runs curl on a URL glob (one connection, reused), writing "status time_total" per request
# to stderr; checks every status and appends the times (ms) to sample $1.
glob_requests() { # sample expected curl-args...
    local name=$1 expected=$2 out
    shift 2
    out=$(curl -s -H 'Expect:' -w '%{stderr}%{http_code} %{time_total}\n' "$@" 2>&1 >/dev/null) || true
    [ -n "$out" ] || die "no answer: curl $*"
    if awk -v e="$expected" '$1 != e { bad = 1 } END { exit !bad }' <<<"$out"; then
        die "unexpected status ($(awk -v e="$expected" '$1 != e { print $1 }' <<<"$out" | sort | uniq -c | tr '\n' ' ')): curl $*"
    fi
    [ -z "$name" ] || awk '{ printf "%.3f\n", $2 * 1000 }' <<<"$out" >>"$work/samples/$name"
}
# Manifest pushes of the small image a script set up: $work/data/manifest of type
# $manifest_type, its blobs $config_digest and $layer_digest in bench/src at $direct.
push_manifests() { # sample url-glob
    glob_requests "$1" 201 -X PUT -H "Content-Type: $manifest_type" --data-binary "@$work/data/manifest" "$2"
}
mount_blobs() { # repo-glob
    local digest
    for digest in "$config_digest" "$layer_digest"; do
        glob_requests '' 201 -X POST "$direct/v2/$1/blobs/uploads/?mount=$digest&from=bench/src"
    done
}
