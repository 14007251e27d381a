#!/usr/bin/env bash
# Upstream/downstream associations under regularisation (Lange, Rolnick & Kording 2022):
# train MLPs on the bundled digits (--task digits_10way, 64-64-64-10, Adam lr 1e-3, CE, batch 100,
# 30 epochs, no weight decay unless swept), then --experiment associations on each (all eight
# associations, Newman-Q, their comparison), then --experiment associations_summary: Q against dropout,
# L1 and L2 strength per association (associations_summary.png under --result_path).
# Usage: shell/associations_sweep.sh [--result_path DIR] [--seeds "0 1 2"] [--dropouts "0 0.2 0.5"]
#        [--l1s "1e-5 1e-4"] [--l2s "1e-4 1e-3"] [--epochs N] [--quick]   (--quick: 1 seed, dropout only)
# Runs one job at a time under nice; finished runs are reused (delete a run's folder to redo it).
# TASK_OPTIONS="--task ... --arch ..." (environment) trains on another task (shell/mnist_associations.sh).
set -euo pipefail

RESULT_PATH="./results/associations/"
SEEDS="0 1 2"
DROPOUTS="0 0.2 0.5"
L1S="1e-5 1e-4 1e-3"
L2S="1e-4 1e-3 1e-2"
EPOCHS=30
while [[ $# -gt 0 ]]; do
    case "$1" in
        --result_path) RESULT_PATH="$2"; shift 2 ;;
        --seeds) SEEDS="$2"; shift 2 ;;
        --dropouts) DROPOUTS="$2"; shift 2 ;;
        --l1s) L1S="$2"; shift 2 ;;
        --l2s) L2S="$2"; shift 2 ;;
        --epochs) EPOCHS="$2"; shift 2 ;;
        --quick) SEEDS="0"; L1S=""; L2S=""; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

# The task and arch (TASK_OPTIONS from the environment replaces them, e.g. shell/mnist_associations.sh).
read -r -a TASK <<< "${TASK_OPTIONS:---task digits_10way --arch 64 64 64 10}"
COMMON=("${TASK[@]}" --loss CE --optimizer adam --lr 0.001 --batch_size 100
        --epochs "$EPOCHS" --result_path "$RESULT_PATH" --quiet)

one() {  # seed, then training options (--dropout P | --l1 S | --weight_decay S)
    local seed="$1"; shift
    local out
    out=$(nice python3 main.py --experiment train "${COMMON[@]}" --seed "$seed" "$@" | tail -1)
    local dense="${out##*-> }"
    dense="${dense%%  (reused*}"  # a reused run's line ends in a note
    if [[ ! -f "$dense/associations/comparison.json" ]]; then
        nice python3 main.py --experiment associations "${COMMON[@]}" --seed "$seed" "$@" \
            --checkpoint "$dense/model.pt" --out "$dense/associations"
    fi
}

for seed in $SEEDS; do
    for p in $DROPOUTS; do one "$seed" --weight_decay 0 --dropout "$p"; done
    for s in $L1S; do one "$seed" --weight_decay 0 --dropout 0 --l1 "$s"; done
    for s in $L2S; do one "$seed" --weight_decay "$s" --dropout 0; done
done
python3 main.py --experiment associations_summary --result_path "$RESULT_PATH"
