#!/usr/bin/env bash
# bench/rollback: how long slipway takes from a bad canary's first failing answer to all
# traffic back on the stable revision, with the builtin analysis provider.
#
# It builds slipway and runs `slipway demo --runs N --json`: a real server (platform local)
# with the demo app behind slipway's proxy under a steady load, a healthy v2 promoted, then N
# bad canaries (each failing 20% of its requests) rolled back by the builtin error-rate
# analysis. For each bad canary the load generator notes its first failing answer and its
# last answer of any kind (after which the proxy sent it nothing more); the difference is one
# figure. It prints min / median / max and a block for docs/benchmarks.md.
#
#   bench/rollback/run.sh            # 10 runs
#   RUNS=20 bench/rollback/run.sh
set -euo pipefail

runs=${RUNS:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$root" && go build -o "$tmp/slipway" ./cmd/slipway)
# Progress goes to stderr; the figures, as JSON, to result.json.
"$tmp/slipway" demo --runs "$runs" --json >"$tmp/result.json"

# The JSON is indented, one field a line: each run's "rollbackSeconds": N, then the summary
# object "rollbackSeconds": {"min": ..., "median": ..., "max": ..., "n": ...}.
per_run=$(sed -n 's/^ *"rollbackSeconds": \([0-9.e+-]*\),\{0,1\}$/\1/p' "$tmp/result.json")
field() { awk -v k="\"$1\":" '/"rollbackSeconds": \{/ {in_=1; next} in_ && $1 == k {gsub(/,/, "", $2); print $2; exit}' "$tmp/result.json"; }
fmt_s() { awk -v s="$1" 'BEGIN {printf "%.2f s", s}'; }
min=$(field min) median=$(field median) max=$(field max) n=$(field n)
stable_failures=$(sed -n 's/^ *"stableFailures": \([0-9]*\),$/\1/p' "$tmp/result.json")
ok=$(sed -n 's/^ *"ok": \(true\|false\)$/\1/p' "$tmp/result.json")
if [ "$ok" != true ] || [ -z "$n" ]; then
	echo "bench/rollback: the demo did not behave:" >&2
	cat "$tmp/result.json" >&2
	exit 1
fi

cpus=$(nproc)
model=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
echo
echo "Rollback time, first failing answer -> all traffic on stable ($n runs):"
echo "  min $(fmt_s "$min")   median $(fmt_s "$median")   max $(fmt_s "$max")"
echo "  each: $(for s in $per_run; do printf '%s ' "$(fmt_s "$s")"; done)"
echo "  requests failed for users of stable: $stable_failures"
echo
echo "For docs/benchmarks.md:"
cat <<MD
- command: \`RUNS=$runs bench/rollback/run.sh\` (\`slipway demo --runs $runs --json\`)
- machine: $cpus CPUs, $model; $(go version | awk '{print $3}')
- result: min $(fmt_s "$min"), median $(fmt_s "$median"), max $(fmt_s "$max") over $n bad canaries; $stable_failures failed requests for users of stable
MD
