#!/usr/bin/env bash
# Resumes the zoo's unfinished long runs, JOBS at a time (default: the number of cores), one
# thread each, in the catalogue's priority order (`genmodels zoo pending`); when one ends, the
# next starts. Each run logs to zoo/NAME/train.log.
#
#   zoo/train.sh &                # at the start of a session, in the background
#   kill -TERM <its pid>          # before committing: every run saves its exact step and stops
#
# `genmodels train --resume` continues a run exactly from its last checkpoint (weights,
# optimiser, data position, metrics) and starts one that has none from its config.toml.
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-$(nproc)}"
BIN="${GENMODELS_BIN:-target/release/genmodels}"
if [ ! -x "$BIN" ]; then
  cargo build --release || exit 1
fi
export GENMODELS_DATA="${GENMODELS_DATA:-$(cd .. && pwd)/shared/data}"
export GENMODELS_ZOO="$(pwd)/zoo"

children=()
stop() {
  echo "zoo/train.sh: stopping ${#children[@]} run(s); each saves its last checkpoint"
  for pid in "${children[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  wait
  exit 130
}
trap stop TERM INT HUP

mapfile -t queue < <("$BIN" zoo pending)
echo "zoo/train.sh: ${#queue[@]} unfinished run(s), $JOBS at a time: ${queue[*]}"
for name in "${queue[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  echo "zoo/train.sh: $(date -u +%FT%TZ) starting $name"
  RAYON_NUM_THREADS=1 "$BIN" train --resume --out "zoo/$name" >>"zoo/$name/train.log" 2>&1 &
  children+=("$!")
done
wait
