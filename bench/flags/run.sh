#!/usr/bin/env bash
# OFREP benchmark: wrk against slipway's OFREP server (bench/flags, package ofrep) serving
# testdata/flags.json (11 flags: static, targeted, fractional, disabled) and, when FLAGD names
# a flagd binary, against flagd's OFREP service on the same file in the same run. See
# docs/benchmarks.md, section "OFREP (bench/flags)".
#
#   bench/flags/run.sh                              # slipway alone: no flagd figure, no ratio
#   FLAGD=/tmp/flagd-bin/flagd RUNS=3 bench/flags/run.sh   # slipway and flagd side by side
#   TARGETS="single-static bulk" DURATION=30s bench/flags/run.sh
#
# How it measures. Each server runs pinned to one core (taskset -c SERVER_CPU,
# GOMAXPROCS=SERVER_PROCS), wrk on the other (taskset -c CLIENT_CPU, -t1 -c50 --latency,
# post.lua), over loopback. Both servers run for the whole run but only one is loaded at a
# time; for each target they take turns, run by run (slipway, flagd, slipway, ...), so a
# change in the machine's load falls on both. Every answer is checked with curl before it is
# measured, and a run with a non-2xx answer stops the benchmark.
#
# "Per core": around each wrk run the script reads the loaded server's CPU time (utime+stime
# of every thread, /proc/PID/stat, in clock ticks) and divides the requests wrk completed by
# the CPU seconds the server used: requests per CPU-second. Pinning bounds a server to one
# core, but on a shared machine it may get less than a whole core; CPU time counts what it
# actually used, whoever else ran. The "cores" column is CPU seconds / wall seconds. The
# per-core ratio is slipway's requests per CPU-second over flagd's; the req/s ratio is shown
# beside it. Each figure in the tables is the median over RUNS runs; every run is also
# printed on stderr.
#
# Getting flagd 0.16.1 (its module, github.com/open-feature/flagd/flagd, may not be on the Go
# module proxy, and it requires github.com/open-feature/flagd/core v0.15.6, which is in the
# same repository): build it from its public source release, tag flagd/v0.16.1 (commit
# fce10902c22e820a0e392514a6f4530479f77e51) of https://github.com/open-feature/flagd, the way
# its own flagd/build.Dockerfile does, as a Go workspace of ./core and ./flagd:
#
#   git clone --branch flagd/v0.16.1 --depth 1 https://github.com/open-feature/flagd /tmp/flagd-src
#   cd /tmp/flagd-src && go work init ./core ./flagd
#   CGO_ENABLED=0 go build -ldflags "-X main.version=v0.16.1 \
#     -X main.commit=fce10902c22e820a0e392514a6f4530479f77e51 -X main.date=2026-07-27T14:48:10Z" \
#     -o /tmp/flagd-bin/flagd ./flagd
#   /tmp/flagd-bin/flagd version     # flagd: v0.16.1 (fce10902...)
#
# (Where the proxy refuses core v0.15.6 or github.com/open-feature/open-feature-operator/api
# v0.2.47, serve core's go.mod from tag core/v0.15.6 through a file:// GOPROXY entry and
# `go work edit -replace` the operator api with its source at tag api/v0.2.47 of
# open-feature/open-feature-operator; docs/benchmarks.md has the exact commands.) No flagd
# code is kept in this repository.
#
# Knobs (environment): FLAGD (flagd binary; unset: slipway alone), CONNS, DURATION, RUNS,
# WARMUP (seconds per target and server), TARGETS, SERVER_CPU, CLIENT_CPU, SERVER_PROCS
# (GOMAXPROCS of both servers), PORT (slipway), FLAGD_PORT (flagd uses it and the next three:
# evaluation, management, sync, OFREP), OUT (markdown result file).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FLAGD=${FLAGD:-}
CONNS=${CONNS:-50}
DURATION=${DURATION:-15s}
RUNS=${RUNS:-2}
WARMUP=${WARMUP:-3}
TARGETS=${TARGETS:-single-static single-targeted single-fractional bulk}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SERVER_PROCS=${SERVER_PROCS:-1}
PORT=${PORT:-18090}
FLAGD_PORT=${FLAGD_PORT:-18091}
OUT=${OUT:-/tmp/slipway-ofrep-bench.md}
FILE=$ROOT/bench/flags/testdata/flags.json

if ! command -v wrk >/dev/null 2>&1; then
	echo "installing wrk" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
if [[ -n $FLAGD && ! -x $FLAGD ]]; then
	echo "FLAGD=$FLAGD is not an executable file" >&2
	exit 1
fi

WORK=$(mktemp -d /tmp/slipway-ofrep-bench.XXXXXX)
declare -A PID=()
cleanup() {
	local p
	for p in "${PID[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

CTX='{"context":{"targetingKey":"user-123","email":"ann@example.com","country":"CA","appVersion":"2.3.1","plan":"pro"}}'
declare -A PATHS=(
	[single-static]=/ofrep/v1/evaluate/flags/static-bool
	[single-targeted]=/ofrep/v1/evaluate/flags/ends-with
	[single-fractional]=/ofrep/v1/evaluate/flags/fractional-by-email
	[bulk]=/ofrep/v1/evaluate/flags
)
# What each answer must contain, as |-separated fragments (the two servers order the fields
# of a JSON object differently).
declare -A EXPECT=(
	[single-static]='"value":true|"variant":"on"|"reason":"STATIC"'
	[single-targeted]='"value":true|"variant":"on"|"reason":"TARGETING_MATCH"'
	[single-fractional]='"value":"g"|"variant":"green"|"reason":"TARGETING_MATCH"'
	[bulk]='"key":"version"|"value":"new"|"key":"fractional-by-email"|"value":"g"|"key":"plan"|"value":"pro"'
)

# wait_answer waits until url answers a POST of the context.
wait_answer() {
	for _ in $(seq 150); do
		curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d "$CTX" "$1" && return 0
		sleep 0.1
	done
	return 1
}

declare -A BASE=()
SERVERS=slipway
(cd "$ROOT" && "$GO" build -o "$WORK/flags" ./bench/flags)
GOMAXPROCS=$SERVER_PROCS taskset -c "$SERVER_CPU" "$WORK/flags" -file "$FILE" \
	-addr "127.0.0.1:$PORT" -life 60m >"$WORK/slipway.log" 2>&1 &
PID[slipway]=$!
BASE[slipway]=http://127.0.0.1:$PORT
wait_answer "${BASE[slipway]}${PATHS[single-static]}" || { cat "$WORK/slipway.log" >&2; exit 1; }

FLAGD_VERSION=
if [[ -n $FLAGD ]]; then
	FLAGD_VERSION=$("$FLAGD" version 2>&1 | sed -n 's/^flagd: //p' || true)
	# flagd's defaults otherwise: metrics on the management port, console logs at info level.
	GOMAXPROCS=$SERVER_PROCS taskset -c "$SERVER_CPU" "$FLAGD" start --uri "file:$FILE" \
		--port "$FLAGD_PORT" --management-port $((FLAGD_PORT + 1)) --sync-port $((FLAGD_PORT + 2)) \
		--ofrep-port $((FLAGD_PORT + 3)) >"$WORK/flagd.log" 2>&1 &
	PID[flagd]=$!
	BASE[flagd]=http://127.0.0.1:$((FLAGD_PORT + 3))
	wait_answer "${BASE[flagd]}${PATHS[single-static]}" || { cat "$WORK/flagd.log" >&2; exit 1; }
	SERVERS="slipway flagd"
fi

# Check every target answers what it should on every server before measuring it.
for s in $SERVERS; do
	for t in $TARGETS; do
		got=$(curl -sS -X POST -H 'Content-Type: application/json' -d "$CTX" "${BASE[$s]}${PATHS[$t]}")
		IFS='|' read -ra want <<<"${EXPECT[$t]}"
		for w in "${want[@]}"; do
			if [[ $got != *"$w"* ]]; then
				echo "$s $t: unexpected answer (no $w): $got" >&2
				exit 1
			fi
		done
	done
done

TICK=$(getconf CLK_TCK)
cputicks() { # pid → utime+stime of all its threads, in clock ticks
	local stat
	stat=$(<"/proc/$1/stat")
	awk '{print $12 + $13}' <<<"${stat##*) }"
}

# to_ms converts a wrk latency (e.g. 812.00us, 1.20ms, 1.01s) to milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
		printf "%.2f", n
	}'
}

measure() { # server target duration → "rps p50 p99 cores req-per-cpu-second"
	local s=$1 t=$2 c0 c1 w0 w1
	c0=$(cputicks "${PID[$s]}")
	w0=$(date +%s.%N)
	BODY=$CTX taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$3" --latency -s "$ROOT/bench/flags/post.lua" \
		"${BASE[$s]}${PATHS[$t]}" >"$WORK/wrk.out"
	w1=$(date +%s.%N)
	c1=$(cputicks "${PID[$s]}")
	if grep -q "Non-2xx" "$WORK/wrk.out"; then
		cat "$WORK/wrk.out" >&2
		echo "$s $t: non-2xx answers" >&2
		exit 1
	fi
	local rps reqs p50 p99
	rps=$(awk '/^Requests\/sec/ {printf "%d", $2}' "$WORK/wrk.out")
	reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$WORK/wrk.out")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")")
	awk -v rps="$rps" -v p50="$p50" -v p99="$p99" -v reqs="$reqs" -v ticks=$((c1 - c0)) \
		-v tick="$TICK" -v wall="$(awk -v a="$w0" -v b="$w1" 'BEGIN {print b - a}')" 'BEGIN {
		cpu = ticks / tick
		printf "%d %s %s %.2f %d\n", rps, p50, p99, cpu / wall, (cpu > 0 ? reqs / cpu : 0)
	}'
}

median() { # numbers → their median
	tr ' ' '\n' <<<"$*" | sort -g | awk '{v[NR] = $1} END {
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
	}'
}

fmt() { awk -v v="$1" -v d="${2:-0}" 'BEGIN {printf "%.*f", d, v}'; }

{
	echo "- command: \`${FLAGD:+FLAGD=$FLAGD }RUNS=$RUNS DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS bench/flags/run.sh\`"
	echo "- machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $("$GO" version | awk '{print $3, $4}'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
	echo "- flagd: ${FLAGD_VERSION:-not run (FLAGD unset)}"
	echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "| target | server | req/s | p50 | p99 | cores used | req per CPU-second |"
	echo "|---|---|---|---|---|---|---|"
} >"$OUT"
RATIOS=()
for t in $TARGETS; do
	if ((WARMUP > 0)); then
		for s in $SERVERS; do measure "$s" "$t" "${WARMUP}s" >/dev/null; done
	fi
	declare -A R=() P50=() P99=() CORES=() PERCPU=()
	for i in $(seq "$RUNS"); do
		for s in $SERVERS; do
			read -r rps p50 p99 cores percpu < <(measure "$s" "$t" "$DURATION")
			echo "run $i $t $s: $rps req/s, p50 $p50 ms, p99 $p99 ms, $cores cores, $percpu req/CPU-s" >&2
			R[$s]+=" $rps" P50[$s]+=" $p50" P99[$s]+=" $p99" CORES[$s]+=" $cores" PERCPU[$s]+=" $percpu"
		done
	done
	declare -A MR=() MP=()
	for s in $SERVERS; do
		MR[$s]=$(median ${R[$s]})
		MP[$s]=$(median ${PERCPU[$s]})
		echo "| $t | $s | $(fmt "${MR[$s]}") | $(fmt "$(median ${P50[$s]})" 2) ms | $(fmt "$(median ${P99[$s]})" 2) ms | $(fmt "$(median ${CORES[$s]})" 2) | $(fmt "${MP[$s]}") |" >>"$OUT"
	done
	if [[ -n $FLAGD ]]; then
		RATIOS+=("| $t | $(awk -v a="${MR[slipway]}" -v b="${MR[flagd]}" 'BEGIN {printf "%.2fx", a / b}') | $(awk -v a="${MP[slipway]}" -v b="${MP[flagd]}" 'BEGIN {printf "%.2fx", a / b}') | $(awk -v a="${MP[slipway]}" -v b="${MP[flagd]}" 'BEGIN {print (a >= 5 * b ? "yes" : "no")}') |")
	fi
	unset R P50 P99 CORES PERCPU MR MP
done
{
	echo
	if [[ -n $FLAGD ]]; then
		echo "slipway / flagd (medians of $RUNS runs; per core = requests per CPU-second of the server):"
		echo
		echo "| target | req/s ratio | per-core ratio | at least 5x per core |"
		echo "|---|---|---|---|"
		printf '%s\n' "${RATIOS[@]}"
	else
		echo "No side-by-side figure: FLAGD is not set, so flagd did not run and no ratio is produced."
		echo "Run with FLAGD=/path/to/flagd (0.16.1; see the header of bench/flags/run.sh) to compare."
	fi
	echo
	echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$OUT"
cat "$OUT"
