#!/usr/bin/env bash
# Rebuilds Strata's shipped models from packages alone: the data (Debian music packages, the lmms
# demo projects, synthetic pieces), training, evaluation, ONNX export, manifest and fixtures,
# then the period head, the change head and the attribution head.
# About 75 minutes on this project's 2-core machine (CPU only), seeded and reproducible.
#   models/run.sh            from anywhere; writes into models/
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${STRATA_TRAIN_VENV:-$here/.cache/venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  # PyPI's default torch wheel carries CUDA libraries (several GB); it trains on the CPU too.
  "$venv/bin/pip" install -q -r "$here/requirements.txt"
fi
# lmms renders its demo projects headless; without it they are left out (and the manifest says so).
if ! command -v lmms >/dev/null && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lmms || true
fi
cd "$here"
"$venv/bin/python" -m strata_models.train --out "$here" --encoder-steps 1500 --tower-epochs 4 "$@"
# The period head learns from the candidates Strata's own layer search weighs, so it needs the
# CLI (5 to 10 minutes more, and 2.6 GB of temporary pieces; see README.md, "The period head").
(cd "$here/.." && cargo build --release -p strata --bin strata && cargo xtask fetch-ort)
"$venv/bin/python" -m strata_models.period_head --strata "$here/../target/release/strata"
# The change head learns from the change detector's novelty, which its Python replica computes
# (10 minutes on 2 cores; see README.md, "The change head").
"$venv/bin/python" "$here/tools/change_head.py" --out "$here"
# The attribution head learns which layer each of the engine's changes belongs to, so it comes
# after the change head and needs the CLI (about 25 minutes more on 2 cores, and 4 GB of
# temporary pieces; see README.md, "The attribution head").
exec "$venv/bin/python" "$here/tools/attribution_head.py" --strata "$here/../target/release/strata" --out "$here"
