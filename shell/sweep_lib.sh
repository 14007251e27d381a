#!/usr/bin/env bash
# Shared machinery of the family sweep scripts: options, the job list, parallel execution, summary.
#
# A family script sets FAMILY, WIDTHS, DEPTHS, TASKS (modularities, ";"-separated) and optionally
# QUICK_WIDTHS/QUICK_TASKS/EXTRA_OPTIONS, then calls `sweep_main "$@"`. Training options (lr, batch size,
# epochs) come from shell/published_options.tsv (the published runs) for each family/task/depth/width, with a
# fallback for combinations the published study did not run.
#
# Options of every family script:
#   --jobs N              parallel jobs (default: number of cores)
#   --quick               one width, two seeds, short step grids: ends in minutes
#   --seeds "0 1 2 5"     seeds (default: the published 0 1 2 5)
#   --batch_seeds         one job per configuration that trains all its seeds as members of one batch
#                         (sculpt --seeds; same run folders as one job per seed, fewer processes)
#   --depths "2"          hidden-layer counts to run (default: the family's)
#   --widths "24"         hidden widths to run (default: the family's)
#   --result_path DIR     default ./results/<family>/
#   --visualization_path DIR  default ./visualizations/<family>/
#   --backend local|ray   run on a local process pool (default) or on Ray (pip install -r requirements-ray.txt)
#   --ray_address ADDR    with --backend ray: an existing Ray cluster (default: a local Ray)
#   --list                print the job commands and exit
# Finished runs are skipped (sculpt reuses every finished stage). Every run logs to
# <result_path>/logs/<run name>.log (starting with its command line); failed runs are listed in a table,
# reported by the summary, never dropped, and make the script exit non-zero.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
OPTIONS_TSV="$SCRIPT_DIR/published_options.tsv"
PYTHON="${PYTHON:-python3}"
# Jobs run side by side, one per core: one torch thread each avoids oversubscribing the cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# A family script may override any of these before calling sweep_main.
UNIT_STEPS_FULL="${UNIT_STEPS_FULL:-5 10 15 20 25 30 35 40 45 50 55 60 65 70}"
EDGE_STEPS_FULL="${EDGE_STEPS_FULL:-2.5 2.0 1.5 1.0 0.5}"
UNIT_STEPS_QUICK="${UNIT_STEPS_QUICK:-50 60 70}"
EDGE_STEPS_QUICK="${EDGE_STEPS_QUICK:-2.5}"
ACC_THRESHOLD="${ACC_THRESHOLD:-100.0}"

published_options() {  # family modularity depth width -> "lr batch epochs" (empty when not published)
    awk -F'\t' -v f="$1" -v m="$2" -v d="$3" -v w="$4" \
        '!/^#/ && $1 == f && $2 == m && $3 == d && $4 == w { print $5, $6, $7; exit }' "$OPTIONS_TSV"
}

nearest_options() {  # same family and task, any depth/width: the closest published combination
    awk -F'\t' -v f="$1" -v m="$2" -v d="$3" -v w="$4" '
        !/^#/ && $1 == f && $2 == m {
            cost = ($3 > d ? $3 - d : d - $3) * 1000 + ($4 > w ? $4 - w : w - $4)
            if (best == "" || cost < best) { best = cost; line = $5 " " $6 " " $7 }
        }
        END { print line }' "$OPTIONS_TSV"
}

arch_for() {  # inputs outputs depth width -> "in w w ... out"
    local inputs=$1 outputs=$2 depth=$3 width=$4 arch=$1
    for ((i = 0; i < depth; i++)); do arch="$arch $width"; done
    echo "$arch $outputs"
}

sweep_main() {
    local jobs quick=0 seeds="0 1 2 5" batch_seeds=0 list=0 backend=local ray_address=""
    # GNU nproc obeys OMP_NUM_THREADS, which is exported as 1 above: ask without it
    jobs="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 2)"
    RESULT_PATH="./results/$FAMILY/"
    VIS_PATH="./visualizations/$FAMILY/"
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --jobs) jobs="$2"; shift 2 ;;
            --quick) quick=1; shift ;;
            --seeds) seeds="$2"; shift 2 ;;
            --batch_seeds) batch_seeds=1; shift ;;
            --depths) DEPTHS="$2"; shift 2 ;;
            --widths) WIDTHS="$2"; QUICK_WIDTHS="$2"; shift 2 ;;
            --result_path) RESULT_PATH="$2"; shift 2 ;;
            --visualization_path) VIS_PATH="$2"; shift 2 ;;
            --backend) backend="$2"; shift 2 ;;
            --ray_address) ray_address="$2"; shift 2 ;;
            --list) list=1; shift ;;
            -h|--help) sed -n '2,28p' "$SCRIPT_DIR/sweep_lib.sh"; return 0 ;;
            *) echo "error: unknown option $1 (see --help)" >&2; return 2 ;;
        esac
    done
    local widths="$WIDTHS" tasks="$TASKS" unit_steps="$UNIT_STEPS_FULL" edge_steps="$EDGE_STEPS_FULL"
    if [[ $quick == 1 ]]; then
        widths="${QUICK_WIDTHS:-${WIDTHS%% *}}"
        tasks="${QUICK_TASKS:-$TASKS}"
        [[ "$seeds" == "0 1 2 5" ]] && seeds="0 1"
        unit_steps="$UNIT_STEPS_QUICK"
        edge_steps="$EDGE_STEPS_QUICK"
    fi
    local job_file
    job_file="$(mktemp)"
    IFS=';' read -r -a task_list <<< "$tasks"
    for modularity in "${task_list[@]}"; do
        modularity="$(echo "$modularity" | xargs)"
        read -r -a parts <<< "$modularity"
        local inputs="${parts[0]}" outputs="${parts[${#parts[@]}-1]}"
        for depth in $DEPTHS; do
            for width in $widths; do
                local opts
                opts="$(published_options "$FAMILY" "$modularity" "$depth" "$width")"
                [[ -z "$opts" ]] && opts="$(nearest_options "$FAMILY" "$modularity" "$depth" "$width")"
                [[ -z "$opts" ]] && opts="${DEFAULT_OPTIONS:-0.05 8 30}"
                read -r lr batch epochs <<< "$opts"
                local seed_groups=()
                if [[ $batch_seeds == 1 ]]; then seed_groups=("--seeds $seeds")
                else for seed in $seeds; do seed_groups+=("--seed $seed"); done; fi
                for seed_option in "${seed_groups[@]}"; do
                    echo "$PYTHON main.py --experiment sculpt --task ${TASK:-boolean}" \
                        "--dataset_path ${DATASET_PATH:-./datasets/$FAMILY/} --result_path $RESULT_PATH" \
                        "--visualization_path $VIS_PATH --modularity $modularity" \
                        "--arch $(arch_for "$inputs" "$outputs" "$depth" "$width") --lr $lr" \
                        "--batch_size $batch --epochs $epochs $seed_option --prune_acc_threshold $ACC_THRESHOLD" \
                        "--unit_pruning_gradient $unit_steps --pruning_gradient $edge_steps" \
                        "--feature_step_size $((depth + 1)) --clusterability_step_size $((depth + 1))" \
                        "${EXTRA_OPTIONS:-} --quiet" >> "$job_file"
                done
            done
        done
    done
    if [[ $list == 1 ]]; then cat "$job_file"; rm -f "$job_file"; return 0; fi
    local log_dir failures=0
    # LOG_TAG: a script that calls sweep_main more than once gives each call its own log folder
    log_dir="$RESULT_PATH/logs${LOG_TAG:+/$LOG_TAG}"
    echo "$FAMILY: $(wc -l < "$job_file") runs on $backend (logs in $log_dir)"
    cd "$REPO_DIR"
    # One runner for both backends (run/study/sweep.py): progress bar, one log per run, failure table.
    "$PYTHON" main.py --experiment sweep --jobs_file "$job_file" --jobs "$jobs" --backend "$backend" \
        ${ray_address:+--ray_address "$ray_address"} --log_dir "$log_dir" || failures=1
    rm -f "$job_file"
    "$PYTHON" main.py --experiment summarize --result_path "$RESULT_PATH" --visualization_path "$VIS_PATH"
    return $failures
}
