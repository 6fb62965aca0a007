#!/usr/bin/env bash
# Point lookups over HTTP on a store with KEYS orders while commands flow:
# requests/s and latency percentiles from wrk, RUNS times, medians reported.
#
#   bench/http/run.sh                 # 1M keys, 3 runs of 30 s
#   KEYS=100000 RUNS=1 DURATION=10s bench/http/run.sh
#   SETS="http.threads=1" bench/http/run.sh   # topology overrides (--set), space-separated
#   KCQRS_BIN=/tmp/old/kcqrs bench/http/run.sh  # another build, for a before/after
#
# Needs: make build (build/bin/kcqrs), scripts/setup (kcat, wrk, java, mvn).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
KEYS=${KEYS:-1000000}
RUNS=${RUNS:-3}
DURATION=${DURATION:-30s}
CONNECTIONS=${CONNECTIONS:-32}
COMMAND_RATE=${COMMAND_RATE:-1000}   # commands/s flowing during the lookups
PORT=${PORT:-18090}
SETS=${SETS:-}
bin=${KCQRS_BIN:-$root/build/bin/kcqrs}
[ -x "$bin" ] || { echo "$bin is missing: run make build" >&2; exit 1; }
for tool in kcat wrk; do
  command -v $tool >/dev/null || { echo "$tool is missing: run scripts/setup" >&2; exit 1; }
done

work=$(mktemp -d /tmp/kcqrs-bench-http.XXXXXX)
kafka_dir=$work/kafka
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$root/scripts/kafka" stop --dir "$kafka_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== broker"
bootstrap=$("$root/scripts/kafka" start --dir "$kafka_dir" 2>/dev/null | tail -1)
echo "bootstrap $bootstrap"

echo "== kcqrs (orders example)"
"$bin" --log-level warn run "$root/examples/orders/topology.yaml" \
  --set application.id=bench-http --set "application.state_dir=$work/state" \
  --set "kafka.bootstrap_servers=$bootstrap" --set "http.listen=127.0.0.1:$PORT" \
  $(for s in $SETS; do printf -- '--set %s ' "$s"; done) \
  > "$work/kcqrs.log" 2>&1 &
kcqrs_pid=$!
pids+=($kcqrs_pid)
alive() { kill -0 "$kcqrs_pid" 2>/dev/null || { echo "kcqrs stopped:" >&2; cat "$work/kcqrs.log" >&2; exit 1; }; }
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do alive; sleep 0.5; done

echo "== preload $KEYS orders"
start=$(date +%s.%N)
awk -v n="$KEYS" 'BEGIN { for (i = 0; i < n; i++)
  printf "o-%d|{\"type\":\"CreateOrder\",\"orderId\":\"o-%d\",\"product\":\"p-%d\",\"quantity\":%d,\"commandId\":\"c-%d\"}\n", i, i, i % 100, 1 + i % 9, i }' \
  | kcat -P -b "$bootstrap" -t orders.commands -K '|' -X partitioner=murmur2_random \
      -X linger.ms=20 -X batch.num.messages=10000
last=$((KEYS - 1))
until curl -sf "http://127.0.0.1:$PORT/stores/orders/keys/o-$last" >/dev/null; do alive; sleep 1; done
# Every partition drained, not just the last key's.
until [ "$(curl -sf "http://127.0.0.1:$PORT/stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(v for p in d["lag"].values() for v in p.values()))')" = 0 ]; do sleep 1; done
end=$(date +%s.%N)
echo "preloaded in $(python3 -c "print(round($end - $start, 1))") s"

echo "== commands flowing at $COMMAND_RATE/s during the lookups"
(
  i=0
  while :; do
    awk -v s="$i" -v n="$COMMAND_RATE" -v keys="$KEYS" 'BEGIN { srand(s); for (j = 0; j < n; j++) {
      k = int(rand() * keys); printf "o-%d|{\"type\":\"CancelOrder\",\"orderId\":\"o-%d\",\"commandId\":\"x-%d-%d\"}\n", k, k, s, j } }' \
      | kcat -P -b "$bootstrap" -t orders.commands -K '|' -X partitioner=murmur2_random 2>/dev/null
    i=$((i + 1))
    sleep 1
  done
) &
pids+=($!)

results=()
for run in $(seq 1 "$RUNS"); do
  out=$(KEYS=$KEYS wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency \
        -s "$root/bench/http/lookup.lua" "http://127.0.0.1:$PORT")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  echo "run $run: $rps req/s, p50 $p50, p99 $p99, non-2xx ${non2xx:-0}"
  results+=("$rps")
done
median=$(printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median: $median req/s over $RUNS run(s) of $DURATION, $CONNECTIONS connections, $KEYS keys"
grep -iE "error|fail" "$work/kcqrs.log" | head -5 || true
