#!/usr/bin/env bash
# Proxy benchmark: wrk against a direct connection to the backend, nginx, HAProxy and slipway's
# proxy (served by Proxy.Serve, and as "slipway-nethttp" by an http.Server with
# Proxy.ServeHTTP, as before Serve existed), each doing the same 90/10 weighted split over
# the same two backend listeners, all on 127.0.0.1 and all on this machine's cores (wrk
# included). Each target is run RUNS times, interleaved (the order reversed every other run),
# with the proxy's CPU time per request in each run (user+system of its whole process tree,
# from /proc). The report gives each target's median and best over the runs, and slipway
# against nginx run by run. See docs/benchmarks.md, section "Proxy".
#
#   bench/proxy/run.sh                      # defaults: wrk -t2 -c64 -d15s --latency, 5 runs
#   DURATION=30s CONNS=128 bench/proxy/run.sh
#   TARGETS="direct slipway" PROFILE=/tmp/slipway.cpu bench/proxy/run.sh
#
# Knobs (environment): THREADS, CONNS, DURATION, RUNS, WARMUP (seconds per target before the
# first run, 0 for none), RUN_WARMUP (seconds of unmeasured load right before each run, 0 for
# none), TARGETS, BACKEND_PROCS and SLIPWAY_PROCS (GOMAXPROCS), NGINX_WORKERS,
# HAPROXY_THREADS, PROFILE (CPU profile file for slipway's runner, written at the end), OUT
# (markdown result file), BASE_PORT (ports BASE_PORT+1..BASE_PORT+6 are used).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NPROC=$(nproc)
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
DURATION=${DURATION:-15s}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-3}
RUN_WARMUP=${RUN_WARMUP:-2} # seconds of unmeasured load on a target right before each of its runs
TARGETS=${TARGETS:-direct nginx haproxy slipway slipway-nethttp}
BACKEND_PROCS=${BACKEND_PROCS:-$NPROC}
SLIPWAY_PROCS=${SLIPWAY_PROCS:-$NPROC}
NGINX_WORKERS=${NGINX_WORKERS:-$NPROC}
HAPROXY_THREADS=${HAPROXY_THREADS:-$NPROC}
PROFILE=${PROFILE:-}
OUT=${OUT:-/tmp/slipway-proxy-bench.md}
BASE_PORT=${BASE_PORT:-18080}
LIFE=${LIFE:-20m} # every server exits by itself after this long, whatever happens here

PORT_A=$((BASE_PORT + 1)) PORT_B=$((BASE_PORT + 2))
PORT_NGINX=$((BASE_PORT + 3)) PORT_HAPROXY=$((BASE_PORT + 4)) PORT_SLIPWAY=$((BASE_PORT + 5))
PORT_SLIPWAY_NH=$((BASE_PORT + 6))

# --- tools -------------------------------------------------------------------------------
missing=()
for tool in wrk nginx haproxy; do
	command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
	echo "installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx haproxy >/dev/null
fi
export PATH=$PATH:/usr/sbin:/sbin
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

WORK=$(mktemp -d /tmp/slipway-proxy-bench.XXXXXX)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A TPID # target -> pid of its process tree's root (the timeout wrapper)

# start NAME CMD...: runs CMD in the background (bounded by LIFE), logging to WORK/NAME.log.
start() {
	local name=$1
	shift
	timeout --signal=TERM --kill-after=5s "$LIFE" "$@" >"$WORK/$name.log" 2>&1 &
	PIDS+=($!)
	TPID[$name]=$!
}

# cpu_ticks PID: user+system clock ticks used so far by PID and its descendants (3 levels:
# timeout, then nginx's master and workers).
cpu_ticks() {
	local pids=$1 level=$1 total=0 p s
	for _ in 1 2 3; do
		level=$(for p in $level; do pgrep -P "$p" || true; done)
		pids="$pids $level"
	done
	for p in $pids; do
		s=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
		total=$((total + ${s% *} + ${s#* }))
	done
	echo "$total"
}
TICK=$(getconf CLK_TCK)

# wait_port PORT: until something answers HTTP on 127.0.0.1:PORT (10 s at most).
wait_port() {
	local i
	for i in $(seq 100); do
		curl -fsS -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing answers on 127.0.0.1:$1; logs:" >&2
	tail -n 20 "$WORK"/*.log >&2
	exit 1
}

# --- build and start ---------------------------------------------------------------------
(cd "$ROOT" && "$GO" build -o "$WORK/backend" ./bench/proxy/backend && "$GO" build -o "$WORK/slipway" ./bench/proxy/slipway)

start backend "$WORK/backend" -a "$PORT_A" -b "$PORT_B" -gomaxprocs "$BACKEND_PROCS" -for "$LIFE"
wait_port "$PORT_A"
wait_port "$PORT_B"

# The proxies do the same work: a 90/10 weighted split, keep-alive to the client and to the
# backends, the client's Host passed on and X-Forwarded-For/-Host/-Proto added (slipway
# always adds them), no access log.
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
daemon off;
master_process on;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    upstream app {
        server 127.0.0.1:$PORT_A weight=9;
        server 127.0.0.1:$PORT_B weight=1;
        keepalive 256;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$PORT_NGINX;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF

cat >"$WORK/haproxy.cfg" <<EOF
global
    nbthread $HAPROXY_THREADS
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout http-keep-alive 120s
frontend fe
    bind 127.0.0.1:$PORT_HAPROXY
    option forwardfor
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-request set-header X-Forwarded-Proto http
    default_backend app
backend app
    balance roundrobin
    http-reuse always
    server a 127.0.0.1:$PORT_A weight 90
    server b 127.0.0.1:$PORT_B weight 10
EOF

url_of() {
	case $1 in
	direct) echo "http://127.0.0.1:$PORT_A/" ;;
	nginx) echo "http://127.0.0.1:$PORT_NGINX/" ;;
	haproxy) echo "http://127.0.0.1:$PORT_HAPROXY/" ;;
	slipway) echo "http://127.0.0.1:$PORT_SLIPWAY/" ;;
	slipway-nethttp) echo "http://127.0.0.1:$PORT_SLIPWAY_NH/" ;;
	esac
}

for t in $TARGETS; do
	case $t in
	direct) ;;
	nginx)
		start nginx nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
		wait_port "$PORT_NGINX"
		;;
	haproxy)
		start haproxy haproxy -db -f "$WORK/haproxy.cfg"
		wait_port "$PORT_HAPROXY"
		;;
	slipway)
		args=(-listen "127.0.0.1:$PORT_SLIPWAY" -a "127.0.0.1:$PORT_A" -b "127.0.0.1:$PORT_B" -gomaxprocs "$SLIPWAY_PROCS" -for "$LIFE")
		[[ -n $PROFILE ]] && args+=(-cpuprofile "$PROFILE")
		start slipway "$WORK/slipway" "${args[@]}"
		wait_port "$PORT_SLIPWAY"
		;;
	slipway-nethttp)
		start slipway-nethttp "$WORK/slipway" -nethttp -listen "127.0.0.1:$PORT_SLIPWAY_NH" -a "127.0.0.1:$PORT_A" -b "127.0.0.1:$PORT_B" \
			-gomaxprocs "$SLIPWAY_PROCS" -for "$LIFE"
		wait_port "$PORT_SLIPWAY_NH"
		;;
	*)
		echo "unknown target $t (want direct, nginx, haproxy, slipway, slipway-nethttp)" >&2
		exit 2
		;;
	esac
done

# Every proxy must split 90/10: count the bodies of 200 requests ('a' is revision a).
for t in $TARGETS; do
	[[ $t == direct ]] && continue
	a=0
	for _ in $(seq 200); do
		[[ $(curl -fsS "$(url_of "$t")") == a* ]] && a=$((a + 1))
	done
	echo "split check: $t sent $a of 200 requests to revision a (want about 180)"
	if ((a < 160 || a > 196)); then
		echo "$t does not split 90/10" >&2
		exit 1
	fi
done

# --- measure -----------------------------------------------------------------------------
# ms VALUE: wrk's latency (e.g. 850.00us, 1.09ms, 1.20s) in milliseconds.
ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
		printf "%.2f", n
	}'
}

WRK="wrk -t$THREADS -c$CONNS -d$DURATION --latency"
echo
echo "command: $WRK <url>   ($RUNS runs per target, targets interleaved, order reversed every other run)"
echo "machine: $NPROC cores, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1), kernel $(uname -r)"
echo "GOMAXPROCS: backend $BACKEND_PROCS, slipway $SLIPWAY_PROCS; nginx worker_processes $NGINX_WORKERS; haproxy nbthread $HAPROXY_THREADS"

if ((WARMUP > 0)); then
	for t in $TARGETS; do wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "$(url_of "$t")" >/dev/null; done
fi
# Every run of every target: run target req/s p50(ms) p99(ms) errors cpu(µs/req).
RESULTS=$WORK/runs.tsv
: >"$RESULTS"
for run in $(seq "$RUNS"); do
	order=$TARGETS
	((run % 2 == 0)) && order=$(tr ' ' '\n' <<<"$TARGETS" | tac | tr '\n' ' ')
	for t in $order; do
		# A short unmeasured run first, so that what the previous target left behind (the
		# backend's connections and goroutines, caches) weighs on neither.
		((RUN_WARMUP > 0)) && wrk -t"$THREADS" -c"$CONNS" -d"${RUN_WARMUP}s" "$(url_of "$t")" >/dev/null
		c0=0
		[[ -n ${TPID[$t]:-} ]] && c0=$(cpu_ticks "${TPID[$t]}")
		out=$($WRK "$(url_of "$t")")
		cpu=-
		if [[ -n ${TPID[$t]:-} ]]; then
			c1=$(cpu_ticks "${TPID[$t]}")
			cpu=$(awk -v c=$((c1 - c0)) -v hz="$TICK" -v n="$(awk '/requests in/ {print $1}' <<<"$out")" 'BEGIN {printf "%.1f", c / hz * 1e6 / n}')
		fi
		echo "$out" >"$WORK/wrk-$t-$run.txt"
		rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
		p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
		p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
		errs=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
		printf "run %d %-15s %10s req/s  p50 %8s  p99 %8s  errors %s  proxy CPU %s us/req\n" "$run" "$t" "$rps" "$p50" "$p99" "$errs" "$cpu"
		printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$run" "$t" "$rps" "$(ms "$p50")" "$(ms "$p99")" "$errs" "$cpu" >>"$RESULTS"
	done
done

# --- report ------------------------------------------------------------------------------
# The table gives each target's median over the runs (req/s, p50, p99 and CPU each on their
# own; errors summed), and its best req/s. Below it, slipway against nginx run by run: the
# two ran back to back in each run, so the ratio of the pair cancels most of the machine's
# drift between runs.
report() {
	awk -F'\t' -v targets="$TARGETS" -v runs="$RUNS" '
	function median(list,    a, n, i, j, t) {
		n = split(list, a, " ")
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		if (n == 0) return "-"
		return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	{
		rps[$2] = rps[$2] " " $3; p50[$2] = p50[$2] " " $4; p99[$2] = p99[$2] " " $5
		errs[$2] += $6; if ($7 != "-") cpu[$2] = cpu[$2] " " $7
		if ($3 + 0 > best[$2] + 0) best[$2] = $3
		R[$1, $2] = $3; P[$1, $2] = $5
	}
	END {
		nt = split(targets, ts, " ")
		direct = ("direct" in rps) ? median(rps["direct"]) : ""
		print "| target | req/s (median) | req/s (best) | vs direct | p50 (ms) | p99 (ms) | errors | proxy CPU (µs/req) |"
		print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		for (i = 1; i <= nt; i++) {
			t = ts[i]; m = median(rps[t])
			rel = direct != "" ? sprintf("%.2fx", m / direct) : "-"
			c = (t in cpu) ? sprintf("%.1f", median(cpu[t])) : "-"
			printf "| %s | %.0f | %.0f | %s | %.2f | %.2f | %d | %s |\n", t, m, best[t], rel, median(p50[t]), median(p99[t]), errs[t], c
		}
		if (!("slipway" in rps) || !("nginx" in rps)) exit
		print ""
		print "slipway against nginx, run by run (req/s, p99):"
		print ""
		print "| run | nginx | slipway | req/s slipway / nginx | p99 no worse |"
		print "| --- | --- | --- | ---: | --- |"
		wins = 0; p99ok = 0; ratios = ""
		for (r = 1; r <= runs; r++) {
			q = R[r, "slipway"] / R[r, "nginx"]; ratios = ratios " " q
			if (q >= 1) wins++
			ok = P[r, "slipway"] <= P[r, "nginx"]; if (ok) p99ok++
			printf "| %d | %.0f, %.2f ms | %.0f, %.2f ms | %.3fx | %s |\n", r, R[r, "nginx"], P[r, "nginx"], R[r, "slipway"], P[r, "slipway"], q, ok ? "yes" : "no"
		}
		print ""
		printf "slipway / nginx: median %.2fx; slipway served at least as many req/s in %d of %d runs, with a p99 no worse in %d of %d.\n", median(ratios), wins, runs, p99ok, runs
	}' "$RESULTS"
}
{
	echo "Command: \`$WRK http://127.0.0.1:PORT/\`, $RUNS runs per target (interleaved)."
	echo "Machine: $NPROC cores ($(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)), Linux $(uname -r);"
	echo "GOMAXPROCS backend $BACKEND_PROCS, slipway $SLIPWAY_PROCS; nginx worker_processes $NGINX_WORKERS; HAProxy nbthread $HAPROXY_THREADS."
	echo
	report
} >"$OUT"
echo
cat "$OUT"
echo "(markdown written to $OUT)"
