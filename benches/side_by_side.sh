#!/usr/bin/env bash
# The training benchmark beside the official code on this machine: `stylescope bench --train`
# and the official StyleGAN2Loss step (../shared/bench/official_train_timing.py, which imports
# the official NVlabs/stylegan3 code from $STYLEGAN3_SRC), alternated run by run so that both see
# the same host, then s/kimg for each and the ratio, one line per round.
#
# usage: STYLEGAN3_SRC=path/to/stylegan3 benches/side_by_side.sh [--cfg CFG] [--rounds N] [--avx2]
#   PYTHON      a Python with torch, numpy, scipy, packaging, requests (default: python3)
#   STYLESCOPE  the binary to time (default: stylescope on PATH)
#   --avx2      hold both sides to AVX2 code (torch: ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA /
#               MKL_ENABLE_INSTRUCTIONS; ours: STYLESCOPE_SIMD=avx2): what an AVX2-only CPU runs
# Always 64², --cbase 8192 --cmax 256 --batch 8, 2 threads: the issue's benchmark.
set -euo pipefail
cfg=stylegan3-t rounds=2 avx2=0
while [ $# -gt 0 ]; do
    case "$1" in
        --cfg) cfg="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --avx2) avx2=1; shift ;;
        *) echo "error: unknown argument '$1' (see the usage at the top of $0)" >&2; exit 2 ;;
    esac
done
here="$(cd "$(dirname "$0")" && pwd)"
script="${OFFICIAL_TIMING:-$here/../../shared/bench/official_train_timing.py}"
python="${PYTHON:-python3}"
ours="${STYLESCOPE:-stylescope}"
[ -n "${STYLEGAN3_SRC:-}" ] && [ -d "$STYLEGAN3_SRC/training" ] || { echo "error: STYLEGAN3_SRC must name a checkout of NVlabs/stylegan3 (it has no training/ folder: '${STYLEGAN3_SRC:-}')" >&2; exit 2; }
[ -f "$script" ] || { echo "error: $script: the official timing script is missing (set OFFICIAL_TIMING)" >&2; exit 2; }
"$python" -c 'import torch' 2>/dev/null || { echo "error: $python cannot import torch (pip install torch numpy scipy packaging requests)" >&2; exit 2; }
command -v "$ours" > /dev/null || { echo "error: $ours: not found (set STYLESCOPE)" >&2; exit 2; }
official_env=() ours_env=()
if [ "$avx2" = 1 ]; then
    official_env=(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2)
    ours_env=(STYLESCOPE_SIMD=avx2)
fi
args=(--cfg "$cfg" --res 64 --cbase 8192 --cmax 256 --batch 8)
echo "cfg $cfg, 64², cbase 8192, cmax 256, batch 8$([ "$avx2" = 1 ] && echo ', AVX2 code on both sides')"
for round in $(seq "$rounds"); do
    official=$(env "${official_env[@]}" "$python" "$script" "${args[@]}" --threads 2 | tail -n 1)
    mine=$(env "${ours_env[@]}" "$ours" bench --train "${args[@]}" --iters 3 --warmup 1 --json | tail -n 1)
    "$python" - "$round" "$official" "$mine" <<'EOF'
import json, sys
round_, official, ours = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
o, s = official["s_per_kimg"], ours["seconds_per_kimg"]
print(f"round {round_}: official {o:,.0f} s/kimg (torch {official['torch']}), StyleScope {s:,.0f} s/kimg: StyleScope {o / s:.2f}x as fast")
EOF
done
