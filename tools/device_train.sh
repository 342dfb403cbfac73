#!/usr/bin/env bash
# Three trainings side by side on one accelerator (Keras's JAX backend), from the packed pairs of
# tools/pack_pairs.py: the data variants that a CPU cannot train far enough.
#
#   pair_ft       the shipped generator fine-tuned on --reference pair (lr 1e-4)
#   pair_scratch  the original recipe from random weights on --reference pair (lr 3e-4)
#   mix_ft        the shipped generator fine-tuned on both references of every pair (pair and
#                 whole-bracket), half the epochs (twice the patches)
# Each run spreads the original's learning-rate decay of 4 epochs over its own epochs.
#
# Every epoch's generator is kept; each run stops after TRAIN_SECONDS (a kill never damages a file).
# Packs the generators, histories and logs into OUT (default $OUT) as tar files of at most 7 generators.
#   PAIRS=.devdata/pairs INIT=.devdata/shipped.weights.h5 OUT=/tmp/out bash tools/device_train.sh
set -u
PAIRS=${PAIRS:-.devdata/pairs}
INIT=${INIT:-.devdata/shipped.weights.h5}
WORK=${WORK:-/tmp/mefgan_work}
TRAIN_SECONDS=${TRAIN_SECONDS:-380}
EPOCHS=${EPOCHS:-12}
PATCH_ARGS=${PATCH_ARGS:-}
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
mkdir -p "$WORK" "$OUT"
stamp() { echo "[$(date +%T)] $*"; }

stamp "patches"
python3 -m mefgan_tf.cli patches --brackets "$PAIRS/train" --reference pair --out "$WORK/pair.h5" -y --quiet $PATCH_ARGS &
python3 -m mefgan_tf.cli patches --brackets "$PAIRS/train" --reference pair --sice "$PAIRS/train" --out "$WORK/mix.h5" -y --quiet $PATCH_ARGS &
python3 -m mefgan_tf.cli patches --brackets "$PAIRS/val" --reference pair --out "$WORK/val.h5" -y --quiet $PATCH_ARGS &
wait
ls -la "$WORK"

# The original's decay over 4 epochs (0.7 per epoch of updates), spread over the epochs of each run.
for epochs in "$EPOCHS" $(( (EPOCHS + 1) / 2 )); do
  printf '{"lr_decay_rate": %s}\n' "$(python3 -c "print(0.7 ** (4 / $epochs))")" > "$WORK/decay$epochs.json"
done
run() {  # name, then the trainer's arguments
  local name=$1; shift
  timeout -s TERM "$TRAIN_SECONDS" python3 -m mefgan_tf.cli train --backend jax --out "$WORK/$name" \
    --random-flips --seed 0 --quiet --set keep_checkpoints=100 "$@" > "$WORK/$name.log" 2>&1
  stamp "$name ended ($?)"
}
stamp "training for ${TRAIN_SECONDS}s"
half=$(( (EPOCHS + 1) / 2 ))
run pair_ft --data "$WORK/pair.h5" --config "$WORK/decay$EPOCHS.json" --init-generator "$INIT" --learning-rate 1e-4 --epochs "$EPOCHS" &
run pair_scratch --data "$WORK/pair.h5" --config "$WORK/decay$EPOCHS.json" --epochs "$EPOCHS" &
run mix_ft --data "$WORK/mix.h5" --config "$WORK/decay$half.json" --init-generator "$INIT" --learning-rate 1e-4 --epochs "$half" &
wait

stamp "packing"
for name in pair_ft pair_scratch mix_ft; do
  grep '"val_content"' "$WORK/$name.log" | tail -n 20
  tail -n 3 "$WORK/$name.log"
  (cd "$WORK/$name" 2>/dev/null && ls generator-epoch*.weights.h5 2>/dev/null | split -l 7 - "$WORK/$name.part.")
  i=0
  for part in "$WORK/$name".part.*; do
    [ -e "$part" ] || continue
    i=$((i + 1))
    tar -cf "$OUT/$name-$i.tar" -C "$WORK/$name" $(cat "$part")
  done
done
tar -cf "$OUT/logs.tar" -C "$WORK" $(cd "$WORK" && ls -d *.log */history.json */logs 2>/dev/null)
ls -la "$OUT"
