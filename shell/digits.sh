#!/usr/bin/env bash
# Two-digit image tasks (docs/digits.md): the bundled 8x8 digits `128 2 20` (one-hot left + right digit) and
# `128 2 3 3` (3 bits of left XOR right, digits 0-7); with --mnist_path DIR also the published MNIST versions
# `1568 2 20` and `1568 2 3 3` from the IDX files in DIR (hours per run on 2 CPU cores: use --quick first).
# Width 256, 1-4 hidden layers (2-4 for XOR: one hidden layer reaches only ~91.5% bit accuracy there, below
# the threshold), seeds 0 1 2 5; lr 0.002, batch 64, 10 epochs; a pruning step is accepted at >= 95% test
# accuracy (digit tasks do not reach 100%); units 10 25 50 x edges 5 2.5 (quick: 25 x 5).
# Usage: shell/digits.sh [--mnist_path DIR] [--quick] [--jobs N] [--seeds "0 1"] [--depths "2 4"] ...
# Every other option is the family scripts' (shell/sweep_lib.sh). Edges only (no unit pruning; needs
# sculpt's --unit_pruning_gradient None):
#   UNIT_STEPS_FULL=None UNIT_STEPS_QUICK=None shell/digits.sh --result_path ./results/digits_edges/
set -euo pipefail

MNIST_PATH=""
ARGS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --mnist_path) MNIST_PATH="$2"; shift 2 ;;
        *) ARGS+=("$1"); shift ;;
    esac
done

WIDTHS="256"
DEFAULT_OPTIONS="${DEFAULT_OPTIONS:-0.002 64 10}"  # lr batch epochs (no digit rows in published_options.tsv)
ACC_THRESHOLD="${ACC_THRESHOLD:-95}"
UNIT_STEPS_FULL="${UNIT_STEPS_FULL:-10 25 50}"
EDGE_STEPS_FULL="${EDGE_STEPS_FULL:-5 2.5}"
UNIT_STEPS_QUICK="${UNIT_STEPS_QUICK:-25}"
EDGE_STEPS_QUICK="${EDGE_STEPS_QUICK:-5}"
DATASET_PATH="./datasets/"  # not read by the digit tasks
source "$(dirname "${BASH_SOURCE[0]}")/sweep_lib.sh"

status=0
sweep() {  # family task modularity depths [extra options]; one call of sweep_main per task
    FAMILY="$1" TASK="$2" TASKS="$3" DEPTHS="$4" EXTRA_OPTIONS="${5:-}"
    LOG_TAG="$2-${3// /-}"  # own log folder per call (sweep_lib's LOG_TAG, where supported)
    sweep_main "${ARGS[@]+"${ARGS[@]}"}" || status=$?
}

sweep digits digits "128 2 20" "1 2 3 4"
sweep digits digits "128 2 3 3" "2 3 4"
if [[ -n "$MNIST_PATH" ]]; then
    sweep mnist mnist "1568 2 20" "1 2 3 4" "--mnist_path $MNIST_PATH"
    sweep mnist mnist "1568 2 3 3" "2 3 4" "--mnist_path $MNIST_PATH"
fi
exit "$status"
