#!/bin/bash
# Trains the same short run twice in the current folder: once straight through (run folder A),
# once interrupted by Ctrl-C (SIGINT) in its first float epoch and again in its QAT epoch, and
# resumed each time (B); then compares the two compiled models and logs. BENCHMARKS.md,
# "Interrupted and resumed runs". Usage, from an empty folder:
#   DATA=../shared/data BIN=target/release/train-host train-host/bench/resume_exact.sh [--backend libtorch]
set -u
BIN=${BIN:-target/release/train-host}
ARGS="train --arch tiny --width 2.5 --dataset cifar10 --data ${DATA:-../shared/data} --float-epochs 2 --qat-epochs 1 --batch-norm --seed 0 $*"
rm -rf A B A.cifhe B.cifhe
$BIN $ARGS --run-dir A --out A.cifhe > A.out 2>&1 || { echo "the uninterrupted run failed: A.out"; exit 1; }
# Runs `$BIN $ARGS` with the options after the first two, and sends it SIGINT once its output (in
# file $1) shows $2 (without a terminal, training reports every tenth of an epoch).
interrupt_at() {
  local out=$1 mark=$2
  shift 2
  $BIN $ARGS "$@" > "$out" 2>&1 &
  local pid=$!
  until grep -q "$mark" "$out"; do
    kill -0 $pid 2> /dev/null || { echo "the run ended before \"$mark\": $out"; exit 1; }
    sleep 0.05
  done
  kill -INT $pid
  wait $pid
  grep "interrupted in" "$out"
}
interrupt_at B1.out "float epoch 1/2: 160/" --run-dir B --out B.cifhe
interrupt_at B2.out "qat epoch 1/1: 120/" --run-dir B --out B.cifhe --resume
$BIN $ARGS --run-dir B --out B.cifhe --resume > B3.out 2>&1 || { echo "the last resume failed: B3.out"; exit 1; }
if cmp -s A.cifhe B.cifhe; then echo "models: identical"; else echo "models: different"; fi
# Phase, epoch, loss, training and test accuracy (not the seconds).
if diff <(cut -f1-5 A/log.tsv) <(cut -f1-5 B/log.tsv); then echo "logs: identical"; else echo "logs: different"; fi
