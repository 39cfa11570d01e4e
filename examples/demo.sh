#!/usr/bin/env bash
# Starts fcd with its embedded defaults (containerd, registry, STS), pushes
# the echo example to the embedded registry, creates a function and invokes
# it cold and warm. fcd keeps running afterwards; `make stop` stops it.
#
# Environment: FCD_DATA_DIR (default /var/lib/fcd), FCD_LISTEN (default
# 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${FCD_DATA_DIR:-/var/lib/fcd}
LISTEN=${FCD_LISTEN:-127.0.0.1:8080}
FCD=bin/fcd
FCCTL="bin/fcctl --data-dir $DATA"
mkdir -p "$DATA"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ -f "$DATA/fcd.pid" ] && kill -0 "$(cat "$DATA/fcd.pid")" 2>/dev/null; then
  step "fcd already running (pid $(cat "$DATA/fcd.pid"))"
else
  step "starting fcd (data dir $DATA, API on $LISTEN, log $DATA/fcd.log)"
  rm -f "$DATA/credentials.json.ready"
  nohup "$FCD" --data-dir "$DATA" --listen "$LISTEN" >"$DATA/fcd.log" 2>&1 &
  echo $! >"$DATA/fcd.pid"
  # fcd rewrites credentials.json with its endpoint once it serves.
  for _ in $(seq 1 600); do
    if ! kill -0 "$(cat "$DATA/fcd.pid")" 2>/dev/null; then
      echo "fcd exited; its log:" >&2; cat "$DATA/fcd.log" >&2; exit 1
    fi
    if grep -q "\"endpoint\": \"$LISTEN\"" "$DATA/credentials.json" 2>/dev/null &&
       $FCCTL function list >/dev/null 2>&1; then
      break
    fi
    sleep 0.1
  done
  $FCCTL function list >/dev/null
fi

step "pushing the echo example to fcd's embedded registry"
go run ./examples/cmd/push-images -data-dir "$DATA" echo
REGISTRY=$(sed -n 's/.*"registry": "\(.*\)".*/\1/p' "$DATA/credentials.json")
ACCOUNT=1000000000000000

step "a role that may pull examples/*, and a function that assumes it"
$FCCTL role get demo-puller >/dev/null 2>&1 || $FCCTL role create demo-puller --repo 'examples/*'
$FCCTL function delete echo >/dev/null 2>&1 || true
$FCCTL function create echo --image "$REGISTRY/examples/echo:latest" \
  --role "acs:ram::$ACCOUNT:role/demo-puller" --memory 512 --concurrency 10

step "cold invocation (pulls the image, starts a container, probes port 9000)"
$FCCTL invoke echo -d '{"hello":"cold"}' -v
step "warm invocation (same instance)"
$FCCTL invoke echo -d '{"hello":"warm"}' -v

step "an anonymous HTTP trigger: the function's HTTP endpoint (none without one)"
$FCCTL trigger create echo http --auth anonymous
URL=$($FCCTL trigger get echo http -o json | sed -n 's/.*"urlIntranet": "\(.*\)".*/\1/p')

step "HTTP trigger: $URL/greet?name=fcd"
if command -v curl >/dev/null; then
  curl -s "$URL/greet?name=fcd" | head -c 120; echo " ..."
fi

step "image-pull billing"
$FCCTL billing --function echo --kind pull --limit 5

cat <<TXT

fcd is running (pid $(cat "$DATA/fcd.pid")), API at http://$LISTEN.
  web console:       http://$LISTEN/console/  (sign in with the key in $DATA/credentials.json)
  bin/fcctl --data-dir $DATA function list
  bin/fcctl --data-dir $DATA logs echo
  bin/fcctl --data-dir $DATA trigger list echo     # HTTP endpoint: $URL/
  make stop          # stops fcd and its instances
TXT
