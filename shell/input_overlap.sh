#!/usr/bin/env bash
# Input overlap 0..4: 8 2 k, 7 3 2 k, 6 3 2 k, 5 3 2 k, 4 1 2 2 k with k in 2 4 8 12 16; widths 24/36/48,
# 1-3 hidden layers. Usage: shell/input_overlap.sh [--quick] [--jobs N]
FAMILY=input_overlap_exp
TASKS=""
for k in 2 4 8 12 16; do TASKS="${TASKS}8 2 $k; 7 3 2 $k; 6 3 2 $k; 5 3 2 $k; 4 1 2 2 $k; "; done
TASKS="${TASKS%; }"
QUICK_TASKS="8 2 2; 6 3 2 2; 4 1 2 2 2"
WIDTHS="24 36 48"
DEPTHS="1 2 3"
source "$(dirname "${BASH_SOURCE[0]}")/sweep_lib.sh"
sweep_main "$@"
