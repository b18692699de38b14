#!/bin/sh
# A/B of one `train` option on the small CNN (BENCHMARKS.md, "Label smoothing", "Learning-rate
# schedule"): the recipe of those tables (width 1, 10 float + 1 QAT epochs, batch norm, LibTorch),
# with `--OPTION VALUE` for each value given, for the seeds given (default 0 1 2). Each run's
# folder, log and model are made in the current folder as OPTION-VALUE-s<seed>; running the script
# again resumes the unfinished ones (same backend: exactly) and skips the finished. Then prints
# each model's 6-bit FHE simulation accuracy (`eval`); each run's float accuracy is the last float
# epoch of its .out.
# Usage, from the folder to hold the runs (a LibTorch build; see README, "Training on PyTorch's
# kernels"):
#   DATA=../shared/data BIN=target/release/train-host train-host/bench/recipe_ab.sh OPTION "VALUE…" [SEED…]
# e.g. `… recipe_ab.sh smoothing "0.1 0"`, `… recipe_ab.sh schedule "cosine one-cycle" 0 1 2`.
# EXTRA adds options to every run of the A/B (e.g. EXTRA="--lr 0.005"): run it in a folder of its
# own, as the runs' names do not say it.
set -u
[ $# -ge 2 ] || { echo "usage: $0 OPTION \"VALUE…\" [SEED…]"; exit 2; }
BIN=${BIN:-target/release/train-host}
DATA=${DATA:-../shared/data}
EXTRA=${EXTRA:-}
option=$1 values=$2
shift 2
[ $# -gt 0 ] || set -- 0 1 2
for seed in "$@"; do
  for v in $values; do
    name=$option-$v-s$seed
    [ -f $name.cifhe ] && continue
    resume=; [ -d $name ] && resume=--resume
    $BIN train --arch small --width 1 --dataset cifar10 --float-epochs 10 --qat-epochs 1 --batch-norm \
      --seed $seed --$option $v --backend libtorch $EXTRA --data "$DATA" --run-dir $name --out $name.cifhe $resume \
      >> $name.out 2>&1 || { echo "run $name failed: $name.out"; exit 1; }
  done
done
for seed in "$@"; do
  for v in $values; do
    echo "seed $seed, $option $v: $($BIN eval --model $option-$v-s$seed.cifhe --data "$DATA" | grep top-1)"
  done
done
