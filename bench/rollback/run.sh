#!/usr/bin/env bash
# bench/rollback: how long slipway takes from a bad canary's first failing answer to all
# traffic back on the stable revision, with the builtin analysis provider.
#
# It builds slipway and runs `slipway demo --runs N --json` once per analysis: a real server
# (platform local) with the demo app behind slipway's proxy under a steady load, a healthy v2
# promoted, then N bad canaries (each failing 20% of its requests) rolled back by the builtin
# error-rate analysis. For each bad canary the load generator notes its first failing answer
# and its last answer of any kind (after which the proxy sent it nothing more); the
# difference is one figure. It prints min / median / p90 / max per analysis, the machine and
# its load average, and a block for docs/benchmarks.md.
#
#   bench/rollback/run.sh                                   # 10 runs each, 10% canary, 200 req/s
#   RUNS=20 WEIGHT=20 RATE=250 bench/rollback/run.sh
#   ANALYSES=sequential bench/rollback/run.sh               # only one analysis
#
# Knobs: RUNS (bad canaries per analysis, 10), RATE (requests/s, 200), WEIGHT (the canary's
# first weight in percent, 10), ANALYSES ("sequential threshold": the sequential test of
# canary against stable, then the fixed 2s window under 5%, for comparison in the same run).
set -euo pipefail

runs=${RUNS:-10}
rate=${RATE:-200}
weight=${WEIGHT:-10}
analyses=${ANALYSES:-sequential threshold}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$root" && go build -o "$tmp/slipway" ./cmd/slipway)

fmt_s() { awk -v s="$1" 'BEGIN {printf "%.2f s", s}'; }
# quantile Q reads numbers, one a line, and prints the Q-quantile, interpolating between
# the two nearest ranks (so the median of an even count is the mean of the middle two).
quantile() { sort -g | awk -v q="$1" '{v[NR] = $1} END {if (NR == 0) exit 1; h = (NR - 1) * q + 1; i = int(h); f = h - i; print (i < NR) ? v[i] + f * (v[i + 1] - v[i]) : v[NR]}'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

cpus=$(nproc)
model=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
load_before=$(load)
report=""
for analysis in $analyses; do
	out="$tmp/result-$analysis.json"
	echo "bench/rollback: $analysis analysis, $runs bad canaries at $weight% of $rate requests/s (load average $(load))" >&2
	# Progress goes to stderr; the figures, as JSON, to the result file.
	"$tmp/slipway" demo --runs "$runs" --rate "$rate" --weight "$weight" --analysis "$analysis" --json >"$out"
	ok=$(sed -n 's/^ *"ok": \(true\|false\)$/\1/p' "$out")
	# The JSON is indented, one field a line: each run's "rollbackSeconds": N.
	per_run=$(sed -n 's/^ *"rollbackSeconds": \([0-9.e+-]*\),\{0,1\}$/\1/p' "$out")
	if [ "$ok" != true ] || [ -z "$per_run" ]; then
		echo "bench/rollback: the demo did not behave ($analysis):" >&2
		cat "$out" >&2
		exit 1
	fi
	n=$(echo "$per_run" | wc -l)
	min=$(echo "$per_run" | quantile 0) median=$(echo "$per_run" | quantile 0.5)
	p90=$(echo "$per_run" | quantile 0.9) max=$(echo "$per_run" | quantile 1)
	stable_failures=$(sed -n 's/^ *"stableFailures": \([0-9]*\),$/\1/p' "$out")
	line="| $analysis | $n | $(fmt_s "$min") | $(fmt_s "$median") | $(fmt_s "$p90") | $(fmt_s "$max") | $stable_failures | $(for s in $per_run; do printf '%.2f ' "$s"; done)|"
	report="$report$line"$'\n'
done
load_after=$(load)

echo
echo "Rollback time, first failing answer -> all traffic on stable; canary at $weight% of $rate requests/s:"
echo
cat <<MD
- command: \`RUNS=$runs RATE=$rate WEIGHT=$weight ANALYSES="$analyses" bench/rollback/run.sh\` (\`slipway demo --runs $runs --rate $rate --weight $weight --analysis A --json\` per analysis)
- machine: \`nproc\` $cpus, $model; $(go version | awk '{print $3}'); load average (1, 5, 15 min) $load_before before, $load_after after
- date: $(date -u '+%Y-%m-%d %H:%M UTC')

  | analysis | n | min | median | p90 | max | failed for stable | each (s) |
  |---|---|---|---|---|---|---|---|
$(printf '%s' "$report" | sed 's/^/  /')
MD
