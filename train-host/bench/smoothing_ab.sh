#!/bin/sh
# Label smoothing A/B on the small CNN (BENCHMARKS.md, "Label smoothing"): the rotation table's
# recipe (width 1, 10 float + 1 QAT epochs, batch norm, LibTorch), at the default smoothing 0.1 and
# at none, for the seeds given (default 0 1 2). Each run's folder, log and model are made in the
# current folder as smooth-<smoothing>-s<seed>; running the script again resumes the unfinished
# ones (same backend: exactly) and skips the finished. Then prints each model's 6-bit FHE
# simulation accuracy (`eval`); each run's float accuracy is the last float epoch of its .out.
# Usage, from the folder to hold the runs (a LibTorch build; see README, "Training on PyTorch's
# kernels"):
#   DATA=../shared/data BIN=target/release/train-host train-host/bench/smoothing_ab.sh [SEED…]
set -u
BIN=${BIN:-target/release/train-host}
DATA=${DATA:-../shared/data}
[ $# -gt 0 ] || set -- 0 1 2
for seed in "$@"; do
  for sm in 0.1 0; do
    name=smooth-$sm-s$seed
    [ -f $name.cifhe ] && continue
    resume=; [ -d $name ] && resume=--resume
    $BIN train --arch small --width 1 --dataset cifar10 --float-epochs 10 --qat-epochs 1 --batch-norm \
      --seed $seed --smoothing $sm --backend libtorch --data "$DATA" --run-dir $name --out $name.cifhe $resume \
      >> $name.out 2>&1 || { echo "run $name failed: $name.out"; exit 1; }
  done
done
for seed in "$@"; do
  for sm in 0.1 0; do
    echo "seed $seed, smoothing $sm: $($BIN eval --model smooth-$sm-s$seed.cifhe --data "$DATA" | grep top-1)"
  done
done
