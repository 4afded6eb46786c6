#!/bin/bash
# Fuzzes every harness for SECONDS each (default 300): `bash fuzz/run.sh [SECONDS] [TARGET...]`.
# Needs the nightly toolchain and cargo-fuzz (installed here if missing) and ONNX Runtime
# (`cargo xtask fetch-ort`, for the models harness). New inputs go to fuzz/target/corpus/<target>
# (the committed seeds in fuzz/corpus/<target> are only read); a crash is written to
# fuzz/artifacts/<target>/ and stops that target with a non-zero status.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-300}; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(audio_file models view_state)
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
ort=$(ls ../target/ort/cpu/libonnxruntime.so.* 2>/dev/null | head -1 || true)
[ -n "$ort" ] && export STRATA_ORT_DYLIB="$(cd "$(dirname "$ort")" && pwd)/$(basename "$ort")"
status=0
for t in "${targets[@]}"; do
  mkdir -p "target/corpus/$t"
  echo "== $t: $seconds s"
  cargo +nightly fuzz run -O "$t" "target/corpus/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=20 -max_len=65536 -print_final_stats=1 2>&1 \
    | grep -E "^(#[0-9]+ *DONE|stat::|==|SUMMARY|Done|INFO: seed|.*(panicked|ERROR|crash|deadly))" || status=1
done
exit $status
