#!/usr/bin/env bash
# OFREP benchmark: wrk against slipway's OFREP server (bench/flags, package ofrep) serving
# testdata/flags.json (11 flags: static, targeted, fractional, disabled), measured as flagd's
# figures were: the server pinned to one core (taskset -c 0, GOMAXPROCS=1) and wrk on the
# other (taskset -c 1), over loopback, 50 connections. See docs/benchmarks.md, section
# "OFREP (bench/flags)".
#
#   bench/flags/run.sh                        # defaults: wrk -t1 -c50 -d15s --latency, 2 runs
#   DURATION=30s RUNS=3 bench/flags/run.sh
#   TARGETS="single-static bulk" bench/flags/run.sh
#
# Knobs (environment): CONNS, DURATION, RUNS (the best req/s is kept), WARMUP (seconds per
# target), TARGETS, SERVER_CPU, CLIENT_CPU, SERVER_PROCS (GOMAXPROCS), PORT, OUT (markdown
# result file).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CONNS=${CONNS:-50}
DURATION=${DURATION:-15s}
RUNS=${RUNS:-2}
WARMUP=${WARMUP:-3}
TARGETS=${TARGETS:-single-static single-targeted single-fractional bulk}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SERVER_PROCS=${SERVER_PROCS:-1}
PORT=${PORT:-18090}
OUT=${OUT:-/tmp/slipway-ofrep-bench.md}

if ! command -v wrk >/dev/null 2>&1; then
	echo "installing wrk" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

WORK=$(mktemp -d /tmp/slipway-ofrep-bench.XXXXXX)
SERVER_PID=
cleanup() {
	if [[ -n $SERVER_PID ]]; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && "$GO" build -o "$WORK/flags" ./bench/flags)
GOMAXPROCS=$SERVER_PROCS taskset -c "$SERVER_CPU" "$WORK/flags" -file "$ROOT/bench/flags/testdata/flags.json" \
	-addr "127.0.0.1:$PORT" -life 30m >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
	grep -q listening "$WORK/server.log" && break
	sleep 0.1
done
grep -q listening "$WORK/server.log" || { cat "$WORK/server.log" >&2; exit 1; }
BASE=http://127.0.0.1:$PORT

CTX='{"context":{"targetingKey":"user-123","email":"ann@example.com","country":"CA","appVersion":"2.3.1","plan":"pro"}}'
declare -A PATHS=(
	[single-static]=/ofrep/v1/evaluate/flags/static-bool
	[single-targeted]=/ofrep/v1/evaluate/flags/ends-with
	[single-fractional]=/ofrep/v1/evaluate/flags/fractional-by-email
	[bulk]=/ofrep/v1/evaluate/flags
)
# flagd 0.16.1, same machine shape, one core (reference figures).
declare -A FLAGD=([single-static]=6500 [single-targeted]=6500 [single-fractional]=5000 [bulk]=2500)
declare -A EXPECT=(
	[single-static]='"value":true,"variant":"on","reason":"STATIC"'
	[single-targeted]='"value":true,"variant":"on","reason":"TARGETING_MATCH"'
	[single-fractional]='"reason":"TARGETING_MATCH"'
	[bulk]='"key":"version","value":"new"'
)

# Check every target answers what it should before measuring it.
for t in $TARGETS; do
	got=$(curl -sS -X POST -H 'Content-Type: application/json' -d "$CTX" "$BASE${PATHS[$t]}")
	if [[ $got != *"${EXPECT[$t]}"* ]]; then
		echo "$t: unexpected answer: $got" >&2
		exit 1
	fi
done

# to_ms converts a wrk latency (e.g. 812.00us, 1.20ms, 1.01s) to milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
		printf "%.2f", n
	}'
}

measure() { # target duration → "rps p50 p99"
	BODY=$CTX taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$2" --latency -s "$ROOT/bench/flags/post.lua" \
		"$BASE${PATHS[$1]}" >"$WORK/wrk.out"
	if grep -q "Non-2xx" "$WORK/wrk.out"; then
		cat "$WORK/wrk.out" >&2
		echo "$1: non-2xx answers" >&2
		exit 1
	fi
	local rps p50 p99
	rps=$(awk '/^Requests\/sec/ {printf "%d", $2}' "$WORK/wrk.out")
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$WORK/wrk.out")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")")
	echo "$rps $p50 $p99"
}

{
	echo "| target | req/s | p50 | p99 | flagd req/s (1 core) | ratio |"
	echo "|---|---|---|---|---|---|"
} >"$OUT"
for t in $TARGETS; do
	((WARMUP > 0)) && measure "$t" "${WARMUP}s" >/dev/null
	best=0 bp50= bp99=
	for _ in $(seq "$RUNS"); do
		read -r rps p50 p99 < <(measure "$t" "$DURATION")
		echo "$t: $rps req/s, p50 $p50 ms, p99 $p99 ms" >&2
		if ((rps > best)); then best=$rps bp50=$p50 bp99=$p99; fi
	done
	ratio=$(awk -v a="$best" -v b="${FLAGD[$t]}" 'BEGIN {printf "%.1fx", a / b}')
	echo "| $t | $best | $bp50 ms | $bp99 ms | ${FLAGD[$t]} | $ratio |" >>"$OUT"
done
cat "$OUT"
