#!/usr/bin/env bash
# wrk against the demo as a user runs it: the release binary (`cargo build --release --example
# demo`), its own router and middleware (the Date and security headers, `authenticate()` with
# DPoP, the revocation check), HS256 tokens. The demo is pinned to one core and wrk to the other,
# so the server's own cost per request decides its throughput, as on a loaded host.
#
# Interleaved rounds (the order alternating) of
#   (a) GET /no-such-page without a token: the demo's JSON 404, through every layer;
#   (b) GET /api/me with a valid token: + the verified token, the revocation check, the handler;
#   (a2) the 404 with a header as large as (b)'s `Authorization` that is no token, so that
#        (b)/(a2) compares requests of one size;
# printing each round, the median of the per-round ratios (b)/(a) and (b)/(a2) (which a change
# of the shared machine's speed between rounds does not move) and the server's CPU time per
# request.
#
# Usage: benches/wrk_demo.sh [rounds (20)] [seconds per route and round (1)] [connections (32)]
# On SQLite in a temporary directory; with DATABASE_URL and REDIS_URL set, again on PostgreSQL
# (a fresh schema) + Redis (a fresh key prefix). Needs wrk, curl and taskset. Figures go to
# docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
seconds=${2:-1}
connections=${3:-32}
binary=target/release/examples/demo
port=3999
base="http://127.0.0.1:$port"
[ -x "$binary" ] || { echo "build it first: cargo build --release --example demo"; exit 1; }
for tool in wrk curl taskset; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (Debian: apt-get install wrk curl util-linux)"; exit 1; }
done
work=$(mktemp -d)
trap 'kill "${demo:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

# The demo's CPU time so far (user + system, clock ticks): what a route costs the server per
# request, beside its throughput.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$demo/stat"; }

rate() { # rate <path> [header line] → "requests/s requests cpu-ticks"
  local header=() before after
  [ -n "${2:-}" ] && header=(-H "$2")
  before=$(cpu_ticks)
  taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" "${header[@]}" "$base$1" >"$work/wrk"
  after=$(cpu_ticks)
  awk -v ticks=$((after - before)) '/requests in/ {n = $1} /Requests\/sec/ {r = $2} END {print r, n, ticks}' "$work/wrk"
}

measure() { # measure <label> <environment…>
  local label=$1
  shift
  env STEPUP_ADDR="127.0.0.1:$port" STEPUP_JWT_SECRET=a-benchmark-secret-of-at-least-32-bytes \
    STEPUP_DEV_PANEL=off RUST_LOG=warn "$@" taskset -c 0 "$binary" >"$work/demo.log" 2>&1 &
  demo=$!
  for _ in $(seq 100); do curl -sf -o /dev/null "$base/healthz" && break; sleep 0.1; done
  local email="wrk-$RANDOM@example.com" password="a benchmark password"
  curl -sf -o /dev/null -X POST -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" "$base/api/register"
  local token
  token=$(curl -sf -X POST -H 'content-type: application/json' \
    -d "{\"username\":\"$email\",\"password\":\"$password\"}" "$base/oauth/authorize" |
    sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  [ -n "$token" ] || { echo "no token"; cat "$work/demo.log"; exit 1; }
  local me
  me=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $token" "$base/api/me")
  [ "$me" = 200 ] || { echo "/api/me answered $me"; exit 1; }

  # (a2): a header as large as (b)'s that is no token, so (b)/(a2) compares requests of one size.
  local padding
  padding="x-padding: $(printf 'p%.0s' $(seq ${#token}))bearer"
  local paths=(/no-such-page /api/me /no-such-page)
  local headers=("" "authorization: Bearer $token" "$padding")

  echo "== the demo on $label: $connections connections, $rounds rounds x ${seconds}s per route"
  for k in 0 1 2; do rate "${paths[$k]}" "${headers[$k]}" >/dev/null; done
  : >"$work/rounds"
  local n k index line results
  for n in $(seq "$rounds"); do
    # Rotate the order, so no route always runs first or last in a round.
    results=("" "" "")
    for k in 0 1 2; do
      index=$(((n + k) % 3))
      results[$index]=$(rate "${paths[$index]}" "${headers[$index]}")
    done
    line="${results[0]} ${results[1]} ${results[2]}"
    echo "$n $line" | awk '{printf "round %2d: (a) 404 %7.0f/s  (b) /api/me %7.0f/s  (a2) sized 404 %7.0f/s  (b)/(a) %.3f  (b)/(a2) %.3f\n", $1, $2, $5, $8, $5 / $2, $5 / $8}'
    echo "$line" >>"$work/rounds"
  done
  # Columns: requests/s, requests, CPU ticks; for (a), (b), (a2).
  awk -v tick_us=$((1000000 / $(getconf CLK_TCK))) '
    function median(values, count,   i, j, t) {
      for (i = 2; i <= count; i++) for (j = i; j > 1 && values[j - 1] > values[j]; j--) {
        t = values[j]; values[j] = values[j - 1]; values[j - 1] = t
      }
      return (count % 2) ? values[(count + 1) / 2] : (values[count / 2] + values[count / 2 + 1]) / 2
    }
    { ab[NR] = $4 / $1; ab2[NR] = $4 / $7; ra += $1; rb += $4; ra2 += $7
      na += $2; ta += $3; nb += $5; tb += $6; na2 += $8; ta2 += $9 }
    END {
      printf "(b)/(a):  median of rounds %.3f (min %.3f, max %.3f); ratio of mean rates %.3f\n", median(ab, NR), ab[1], ab[NR], rb / ra
      printf "(b)/(a2): median of rounds %.3f; ratio of mean rates %.3f\n", median(ab2, NR), rb / ra2
      printf "mean rates: (a) %.0f/s (b) %.0f/s (a2) %.0f/s\n", ra / NR, rb / NR, ra2 / NR
      printf "server CPU per request: (a) %.2f µs (b) %.2f µs (a2) %.2f µs\n", ta * tick_us / na, tb * tick_us / nb, ta2 * tick_us / na2
    }' "$work/rounds"
  kill "$demo"
  wait "$demo" 2>/dev/null || true
}

measure SQLite STEPUP_DATABASE_URL="sqlite://$work/demo.db"
if [ -n "${DATABASE_URL:-}" ] && [ -n "${REDIS_URL:-}" ]; then
  suffix="wrk_$$_$RANDOM"
  measure "PostgreSQL + Redis" STEPUP_DATABASE_URL="$DATABASE_URL" STEPUP_DATABASE_SCHEMA="$suffix" \
    STEPUP_REDIS_URL="$REDIS_URL" STEPUP_REDIS_PREFIX="$suffix:"
  psql "$DATABASE_URL" -qc "DROP SCHEMA IF EXISTS $suffix CASCADE" >/dev/null 2>&1 || true
fi
