#!/usr/bin/env bash
# Increasing reuse, non-separable: 4 1 2 k, k in 2 4 8 12 16; widths 24/36/48, 1-3 hidden layers.
# Usage: shell/increasing_reuse.sh [--quick] [--jobs N]
FAMILY=increasing_reuse_non_separable
TASKS="4 1 2 2; 4 1 2 4; 4 1 2 8; 4 1 2 12; 4 1 2 16"
QUICK_TASKS="4 1 2 2; 4 1 2 8"
WIDTHS="24 36 48"
DEPTHS="1 2 3"
source "$(dirname "${BASH_SOURCE[0]}")/sweep_lib.sh"
sweep_main "$@"
