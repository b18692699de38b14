#!/bin/sh
# Markdown rows comparing two training runs epoch by epoch, from their log.tsv files: the epoch
# (float epochs by number, the others by phase: "QAT n", "head n"), then each run's test accuracy
# and minutes. For the epochs the second run has done so far.
#   train-host/bench/compare_logs.sh models/vgg11-cifar10.log.tsv /work/runs/vgg11-bf16/log.tsv
set -eu
awk -F'\t' '
  FNR == 1 { file++; next }
  { epoch = ($1 == "float" ? $2 : ($1 == "qat" ? "QAT" : $1) " " $2) }
  file == 1 { first[epoch] = sprintf("%.2f%%, %.0f", 100 * $5, $6 / 60); next }
  { printf "| %s | %s | %.2f%%, %.0f |\n", epoch, first[epoch], 100 * $5, $6 / 60 }
' "$1" "$2"
