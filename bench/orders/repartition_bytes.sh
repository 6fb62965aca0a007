#!/usr/bin/env bash
# What the orders topology's repartition topic carries, against the events it
# re-keys (issue 11: "send downstream only what downstream reads").
#
#   bench/orders/repartition_bytes.sh            # 10,000 orders, 5 commands each
#   ORDERS=100000 bench/orders/repartition_bytes.sh
#
# Runs bench/orders/topology.yaml on a broker of its own: each order is
# created, adjusted three times and cancelled. Then it counts the records and
# value bytes of the events topic and of product_totals' repartition topic
# (which carried each folded event whole before the repartition sent only
# the fields the view's rules read), and checks one view.
# Needs: make build (build/bin/kcqrs), scripts/setup (kcat, java, mvn).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ORDERS=${ORDERS:-10000}
PORT=${PORT:-18091}
bin=$root/build/bin/kcqrs
[ -x "$bin" ] || { echo "build/bin/kcqrs is missing: run make build" >&2; exit 1; }
command -v kcat >/dev/null || { echo "kcat is missing: run scripts/setup" >&2; exit 1; }

work=$(mktemp -d /tmp/kcqrs-bench-repartition.XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  "$root/scripts/kafka" stop --dir "$work/kafka" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bootstrap=$("$root/scripts/kafka" start --dir "$work/kafka" 2>/dev/null | tail -1)
"$bin" --log-level warn run "$root/bench/orders/topology.yaml" \
  --set "kafka.bootstrap_servers=$bootstrap" --set "application.state_dir=$work/state" \
  --set "http.listen=127.0.0.1:$PORT" > "$work/kcqrs.log" 2>&1 &
pid=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/kcqrs.log" >&2; exit 1; }
  sleep 0.5
done

awk -v n="$ORDERS" 'BEGIN { for (s = 0; s < 5; s++) for (i = 0; i < n; i++) {
  id = sprintf("o-%06d", i)
  if (s == 0) printf "%s|{\"type\":\"CreateOrder\",\"orderId\":\"%s\",\"product\":\"p-%03d\",\"quantity\":%d,\"commandId\":\"c-%d-%d\"}\n", id, id, i % 1000, 1 + i % 9, i, s
  else if (s < 4) printf "%s|{\"type\":\"AdjustQuantity\",\"orderId\":\"%s\",\"delta\":%d,\"commandId\":\"c-%d-%d\"}\n", id, id, 1 + (i + s) % 3, i, s
  else printf "%s|{\"type\":\"CancelOrder\",\"orderId\":\"%s\",\"commandId\":\"c-%d-%d\"}\n", id, id, i, s } }' \
  | kcat -P -b "$bootstrap" -t bench.orders.commands -K '|' -X partitioner=murmur2_random -X linger.ms=20
lag() {
  curl -sf "http://127.0.0.1:$PORT/stats" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(v for p in d["lag"].values() for v in p.values()))'
}
sleep 2
until [ "$(lag)" = 0 ]; do sleep 1; done

for topic in bench.orders.events bench-orders-product_totals-repartition; do
  kcat -C -b "$bootstrap" -t "$topic" -e -q -f '%S\n' -X isolation.level=read_committed |
    awk -v t="$topic" '{ n++; s += $1 } END { printf "%s: %d records, %d value bytes, %.1f a record\n", t, n, s, s / n }'
done
echo "a repartitioned record: $(kcat -C -b "$bootstrap" -t bench-orders-product_totals-repartition -e -q -c 1 -f '%s')"
# Every order was cancelled: each product's totals are back to zero.
view=$(curl -sf "http://127.0.0.1:$PORT/stores/product_totals/keys/p-007")
echo "product_totals p-007: $view"
[ "$view" = '{"orders":0,"product":"p-007","quantity":0}' ] || { echo "unexpected view" >&2; exit 1; }
