#!/bin/sh
# Markdown rows comparing two training runs' float epochs, from their log.tsv files: epoch, then
# each run's test accuracy and minutes. For the epochs the second run has done so far.
#   train-host/bench/compare_logs.sh models/vgg11-cifar10.log.tsv /work/runs/vgg11-bf16/log.tsv
set -eu
awk -F'\t' '
  FNR == 1 { file++; next }
  $1 != "float" { next }
  file == 1 { first[$2] = sprintf("%.2f%%, %.0f", 100 * $5, $6 / 60); next }
  { printf "| %s | %s | %.2f%%, %.0f |\n", $2, first[$2], 100 * $5, $6 / 60 }
' "$1" "$2"
