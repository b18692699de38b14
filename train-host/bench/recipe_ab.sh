#!/bin/sh
# A/B of one `train` option on the small CNN (BENCHMARKS.md, "Label smoothing", "Learning-rate
# schedule"): the recipe of those tables (width 1, 10 float + 1 QAT epochs, batch norm, LibTorch),
# with `--OPTION VALUE` for each value given, for the seeds given (default 0 1 2). Each run's
# folder, log and model are made in the current folder as OPTION-VALUE-s<seed>; running the script
# again resumes the unfinished ones (same backend: exactly) and skips the finished. Then prints
# each model's 6-bit FHE simulation accuracy (`eval`) and the last float epoch's test accuracy
# (from its .out), and a markdown row per value of both, seed by seed, with their means.
# Usage, from the folder to hold the runs (a LibTorch build; see README, "Training on PyTorch's
# kernels"):
#   DATA=../shared/data BIN=target/release/train-host train-host/bench/recipe_ab.sh OPTION "VALUE…" [SEED…]
# e.g. `… recipe_ab.sh smoothing "0.1 0"`, `… recipe_ab.sh schedule "cosine one-cycle" 0 1 2`.
# EXTRA adds options to every run of the A/B (e.g. EXTRA="--lr 0.005"): run it in a folder of its
# own, as the runs' names do not say it.
# NET replaces the small CNN of width 1 (e.g. NET="--arch vgg11 --width 0.5"), EPOCHS the 10 float
# and 1 QAT epochs (EPOCHS="--float-epochs 10" to A/B `--qat-epochs`).
# FLOAT_FROM=PREFIX A/Bs a QAT setting without training the float phase again: each run starts as
# a copy of the finished run PREFIX-s<seed> (e.g. ../peak-8e-2/schedule-one-cycle, with EXTRA
# giving its float settings) and trains its QAT again (`--restart-qat`) with `--OPTION VALUE`.
set -u
[ $# -ge 2 ] || { echo "usage: $0 OPTION \"VALUE…\" [SEED…]"; exit 2; }
BIN=${BIN:-target/release/train-host}
DATA=${DATA:-../shared/data}
EXTRA=${EXTRA:-}
FLOAT_FROM=${FLOAT_FROM:-}
NET=${NET:---arch small --width 1}
EPOCHS=${EPOCHS:---float-epochs 10 --qat-epochs 1}
option=$1 values=$2
shift 2
[ $# -gt 0 ] || set -- 0 1 2
for seed in "$@"; do
  for v in $values; do
    name=$option-$v-s$seed
    [ -f $name.cifhe ] && continue
    resume=; [ -d $name ] && resume=--resume
    if [ -z "$resume" ] && [ -n "$FLOAT_FROM" ]; then
      cp -r $FLOAT_FROM-s$seed $name.tmp && mv $name.tmp $name || exit 1
      resume=--restart-qat
    fi
    $BIN train $NET --dataset cifar10 $EPOCHS --batch-norm \
      --seed $seed --$option $v --backend libtorch $EXTRA --data "$DATA" --run-dir $name --out $name.cifhe $resume \
      >> $name.out 2>&1 || { echo "run $name failed: $name.out"; exit 1; }
  done
done
# Per value: a markdown row of the last float epoch's test accuracy (from the run's log) and the
# 6-bit FHE simulation's (`eval`), seed by seed, and their means.
for v in $values; do
  floats= sims=
  for seed in "$@"; do
    name=$option-$v-s$seed
    f=$(awk -F'\t' '$1 == "float" { a = $5 } END { printf "%.2f", 100 * a }' $name/log.tsv)
    e=$($BIN eval --model $name.cifhe --data "$DATA" | grep top-1 | sed 's/.*accuracy *\([0-9.]*\)%.*/\1/')
    echo "seed $seed, $option $v: float $f%, 6-bit FHE simulation $e%"
    floats="$floats $f" sims="$sims $e"
  done
  echo "$floats|$sims" | awk -F'|' -v cell="${EXTRA:+$EXTRA }--$option $v" '
    function row(s,   n, a, i, t, out) {
      n = split(s, a, " "); for (i = 1; i <= n; i++) { t += a[i]; out = out (i > 1 ? ", " : "") a[i] "%" }
      return sprintf("%s | %.2f%%", out, t / n)
    }
    { printf "| `%s` | %s | %s |\n", cell, row($1), row($2) }'
done
