#!/usr/bin/env bash
# Exemplar family: input-separable (4 2 4), separable + reused (6 3 3 3), non-modular (4 1 4), reused
# (4 1 2 16); widths 24/36/48, 1-3 hidden layers, seeds 0 1 2 5. Usage: shell/exemplar.sh [--quick] [--jobs N]
FAMILY=exemplar
TASKS="4 2 4; 6 3 3 3; 4 1 4; 4 1 2 16"
WIDTHS="24 36 48"
DEPTHS="1 2 3"
source "$(dirname "${BASH_SOURCE[0]}")/sweep_lib.sh"
sweep_main "$@"
