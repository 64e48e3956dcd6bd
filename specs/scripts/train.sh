#!/usr/bin/env bash
# Startup script for the training box: mount-ready checkpoints, then fine-tune.
set -euo pipefail

CHECKPOINTS=/mnt/checkpoints
mkdir -p "$CHECKPOINTS"

python3 -m pip install --quiet "torch==2.3.*" "transformers==4.41.*" "trl==0.8.*" wandb

cd "$HOME"
git clone --depth 1 https://github.com/huggingface/trl.git
torchrun --nproc_per_node=8 trl/examples/scripts/sft.py \
  --model_name_or_path meta-llama/Meta-Llama-3-8B \
  --dataset_name timdettmers/openassistant-guanaco \
  --output_dir "$CHECKPOINTS/${RUN_NAME:-run}" \
  --bf16 --per_device_train_batch_size 4 --gradient_accumulation_steps 4 \
  --report_to wandb
