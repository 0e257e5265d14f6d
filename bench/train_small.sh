#!/usr/bin/env bash
# Train the small shipped models on the built-in shapes data (64x64, CPU, no downloads).
#
#   bench/train_small.sh [deconvnet-small|fcn8s-small|decouplednet-small|transfernet-small ...]
#   SEED=1 bench/train_small.sh deconvnet-small   # another seed: runs/deconvnet-small-seed1, nothing exported
#
# Each model is ONE `keras-deconv train` command (below, plus -o and --export); it writes its run directory
# runs/<name>/ (checkpoints, CSV logs, run.json) and copies the inference weights to
# zoo/weights/<name>.<tag>.weights.h5. The wall time goes to runs/<name>.wall.
# Then `python bench/make_cards.py` evaluates them and writes zoo/cards/<name>.json,
# and `python bench/claims.py` prints the "claims in miniature" table.
# With seed runs, `python bench/make_cards.py --ship best-val <name>` ships the seed with the best val
# mIoU instead of seed 0 (copies its export into zoo/weights/; the card records the choice, and later
# make_cards runs copy that seed's weights back over what this script exported).
# Status: see the README section "Our own small models" (which of these were trained and shipped,
# with the numbers bench/make_cards.py printed).
set -euo pipefail
cd "$(dirname "$0")/.."
KD="nice -n 10 keras-deconv"  # on PATH: activate the venv first
# Two runs may share the 2-core machine at one thread each: TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1.

declare -A COMMANDS=(
  [deconvnet-small]="$KD train deconvnet --config width=0.25 --config fc_units=256 --hparam optimizer=adam --hparam lr=0.003 --hparam schedule=cosine --hparam train_stream=1 --hparam pretrain_steps=0 --hparam stage1_steps=0 --hparam stage2_steps=7500 --hparam stage2_whole_images=1.0 --hparam background_loss_weight=0.2 --hparam scaffold_fade=0.75 --hparam scaffold_order=fine-first --hparam warmup=0.2"
  [fcn8s-small]="$KD train fcn8s --config width=0.125 --config fc_units=128 --hparam optimizer=adam --hparam lr=0.003 --hparam schedule=cosine --hparam train_stream=1 --hparam train_steps=4000 --hparam background_loss_weight=0.2 --no-jit"
  [decouplednet-small]="$KD train decouplednet --hparam pretrain_steps=6000 --hparam optimizer=adam --hparam lr=0.003 --hparam classification_lr=0.001 --hparam classification_steps=10000 --hparam segmentation_steps=3000 --hparam background_loss_weight=0.2 --no-jit"
  [transfernet-small]="$KD train transfernet --hparam pretrain_steps=6000 --hparam encoder_lr=0.001 --hparam encoder_steps=10000 --hparam attention_steps=3000 --hparam segmentation_steps=16000 --hparam background_loss_weight=0.2 --no-jit"
)

names=("$@")
[ ${#names[@]} -eq 0 ] && names=(deconvnet-small fcn8s-small decouplednet-small transfernet-small)
for name in "${names[@]}"; do
  start=$(date +%s)
  if [ "${SEED:-0}" = 0 ]; then  # seed 0: exports its weights into the zoo (make_cards.py may ship another seed, above)
    out="runs/$name"; extra=(--export "zoo/weights/$name")
  else  # another seed of the same command, its own run directory; nothing copied into the zoo
    out="runs/$name-seed$SEED"; extra=(--seed "$SEED")
  fi
  echo "+ ${COMMANDS[$name]} -o $out ${extra[*]}" >&2
  ${COMMANDS[$name]} -o "$out" "${extra[@]}"
  echo "$(( $(date +%s) - start )) s wall, $(date -u +%FT%TZ)" > "$out.wall"
done
