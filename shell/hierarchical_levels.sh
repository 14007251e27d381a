#!/usr/bin/env bash
# Increasing hierarchical levels: 8 2 1 2 k, k in 2 4 8 12 16; widths 36/48/60 (the published widths of this
# family), 1-4 hidden layers. Usage: shell/hierarchical_levels.sh [--quick] [--jobs N]
FAMILY=increasing_hierarchical_levels
TASKS="8 2 1 2 2; 8 2 1 2 4; 8 2 1 2 8; 8 2 1 2 12; 8 2 1 2 16"
QUICK_TASKS="8 2 1 2 2; 8 2 1 2 8"
WIDTHS="36 48 60"
DEPTHS="1 2 3 4"
source "$(dirname "${BASH_SOURCE[0]}")/sweep_lib.sh"
sweep_main "$@"
