#!/usr/bin/env bash
# The paper's recipe on GPUs with a distributed RL engine (verl or OpenRLHF on Ray), triad as the
# task source and the reward:
#   A. one specialist per meta-ability: REINFORCE++ with a curriculum (level 1, then level 2 from
#      level 1's checkpoint), rewards 3 / -0.5 / -1 / -3 from triad;
#   B. merge in parameter space with `triad-train merge`, weights deduction 1.0, induction 0.2,
#      abduction 0.1, normalised as mergekit's `linear` does (0.769 / 0.154 / 0.077);
#   C. domain RL with GRPO from the merged model on the user's domain data (the paper: MATH).
# The paper's hyper-parameters are the defaults below (lr 5e-7, 4 rollouts per prompt,
# temperature 0.7, KL low_var_kl 0.001, entropy 0.001, clip 0.2, batch 32, 512-token prompts).
#
# usage: ENGINE=verl|openrlhf BASE=Qwen/Qwen2.5-7B-Instruct OUT=runs/paper \
#        DOMAIN_TRAIN=math/train.parquet DOMAIN_TEST=math/test.parquet integrations/recipes/paper.sh
# Needs: triad and triad-train built (cargo build --release), and the engine installed with its
#        GPU stack (verl >= 0.8, or OpenRLHF >= 0.11 with vLLM and Ray). Stage C's data must carry
#        the engine's own prompt/label columns and a data_source its default scorer knows (verl:
#        e.g. `lighteval/MATH`); triad does not score math.
# The keys used here were read from verl 0.9.1's and OpenRLHF 0.11.2's own configuration and CLI;
# verl <= 0.7 takes the custom reward at the top level (`custom_reward_function.*`): set
# VERL_REWARD_KEY=custom_reward_function for those.
set -euo pipefail
cd "$(dirname "$0")/../.."
ENGINE=${ENGINE:-verl}
BASE=${BASE:-Qwen/Qwen2.5-7B-Instruct}
OUT=${OUT:-runs/paper}
GPUS=${GPUS:-8}
NODES=${NODES:-1}
LR=${LR:-5e-7}
ROLLOUTS=${ROLLOUTS:-4}
TEMPERATURE=${TEMPERATURE:-0.7}
BATCH=${BATCH:-32}
ITEMS=${ITEMS:-2000}          # train items per family and level (the paper: 200 for 7B, 2000 for 32B)
EPOCHS=${EPOCHS:-1}
MAX_RESPONSE=${MAX_RESPONSE:-8192}
VERL_REWARD_KEY=${VERL_REWARD_KEY:-reward.custom_reward_function}
TRIAD_URL=${TRIAD_URL:-http://127.0.0.1:8000}
T=target/release
mkdir -p "$OUT"

# Tasks: chat style (the engine applies the model's own chat template), levels 1-2 per family.
$T/triad generate --out "$OUT/data" --levels 1-2 --train "$ITEMS" --test 200 --seed 42 --quiet
$T/triad verify "$OUT/data" --quiet

# One RL run of MODEL on FAMILY level LEVEL into DIR (a Hugging Face model directory at the end).
stage_verl() {
  local model=$1 family=$2 level=$3 dir=$4 estimator=$5 train=$6 test=$7
  # triad scores its own families; the domain stage keeps verl's default scorer for its data.
  local reward=("$VERL_REWARD_KEY.path=integrations/python/triad_reward.py" "$VERL_REWARD_KEY.name=compute_score")
  [ "$family" = domain ] && reward=()
  python3 -m verl.trainer.main_ppo \
    algorithm.adv_estimator="$estimator" \
    data.train_files="$train" data.val_files="$test" data.prompt_key=prompt \
    data.train_batch_size="$BATCH" data.max_prompt_length=512 data.max_response_length="$MAX_RESPONSE" \
    actor_rollout_ref.model.path="$model" \
    actor_rollout_ref.actor.optim.lr="$LR" actor_rollout_ref.actor.ppo_mini_batch_size="$BATCH" \
    actor_rollout_ref.actor.use_kl_loss=True actor_rollout_ref.actor.kl_loss_coef=0.001 \
    actor_rollout_ref.actor.kl_loss_type=low_var_kl actor_rollout_ref.actor.entropy_coeff=0.001 \
    actor_rollout_ref.actor.clip_ratio=0.2 \
    actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.n="$ROLLOUTS" \
    actor_rollout_ref.rollout.temperature="$TEMPERATURE" \
    "${reward[@]}" \
    trainer.n_gpus_per_node="$GPUS" trainer.nnodes="$NODES" trainer.total_epochs="$EPOCHS" \
    trainer.default_local_dir="$dir/ckpt" trainer.project_name=triad trainer.experiment_name="$family-$level" \
    trainer.save_freq=-1 trainer.test_freq=-1 trainer.logger=console
  # verl saves sharded FSDP state: turn the last step into a Hugging Face directory.
  local step
  step=$(cat "$dir/ckpt/latest_checkpointed_iteration.txt")
  python3 -m verl.model_merger merge --backend fsdp \
    --local_dir "$dir/ckpt/global_step_$step/actor" --target_dir "$dir/hf"
}

stage_openrlhf() {
  local model=$1 family=$2 level=$3 dir=$4 estimator=$5 train=$6 test=$7
  # OpenRLHF names REINFORCE++ `reinforce` and GRPO `group_norm`.
  local est=reinforce reward=$TRIAD_URL/get_reward
  [ "$estimator" = grpo ] && est=group_norm
  # The domain stage needs a reward server for its own data (the paper: math_equal on MATH).
  [ "$family" = domain ] && reward=${DOMAIN_REWARD_URL:?set DOMAIN_REWARD_URL for OpenRLHF domain RL}
  python3 -m openrlhf.cli.train_ppo_ray \
    --actor.model_name_or_path "$model" --actor.num_nodes "$NODES" --actor.num_gpus_per_node "$GPUS" \
    --algo.advantage.estimator "$est" --rollout.n_samples_per_prompt "$ROLLOUTS" \
    --rollout.temperature "$TEMPERATURE" --rollout.batch_size "$BATCH" --train.batch_size "$BATCH" \
    --rollout.max_new_tokens "$MAX_RESPONSE" --data.max_len $((512 + MAX_RESPONSE)) \
    --actor.adam.lr "$LR" --algo.kl.use_loss --algo.kl.estimator k3 --algo.kl.init_coef 0.001 \
    --actor.entropy_coef 0.001 --actor.eps_clip 0.2 --train.max_epochs 1 --train.num_episodes "$EPOCHS" \
    --data.prompt_dataset "$train" --data.input_key prompt --data.apply_chat_template \
    --data.label_key label --reward.remote_url "$reward" \
    --ckpt.output_dir "$dir/hf" --ckpt.save_hf
}

stage() {
  "stage_$ENGINE" "$@"
}

if [ "$ENGINE" = openrlhf ]; then
  $T/triad serve --host 127.0.0.1 --port "${TRIAD_URL##*:}" &
  SERVER=$!
  trap 'kill $SERVER' EXIT
fi

# A. Specialists, curriculum level 1 then 2, REINFORCE++.
for family in deduction induction abduction; do
  model=$BASE
  for level in 1 2; do
    dir="$OUT/$family/level-$level"
    stage "$model" "$family" "$level" "$dir" reinforce_plus_plus \
      "$OUT/data/$family/level-$level/train-00000-of-00001.parquet" \
      "$OUT/data/$family/level-$level/test-00000-of-00001.parquet"
    model="$dir/hf"
  done
done

# B. Merge: deduction 1.0, induction 0.2, abduction 0.1, normalised (mergekit linear).
$T/triad-train merge --inputs "$OUT/deduction/level-2/hf,$OUT/induction/level-2/hf,$OUT/abduction/level-2/hf" \
  --weights 1.0,0.2,0.1 --normalize --out "$OUT/merged"

# C. Domain RL with GRPO, from the merged model and, for the paper's comparison, from the base.
if [ -n "${DOMAIN_TRAIN:-}" ]; then
  stage "$OUT/merged" domain 0 "$OUT/domain-from-merged" grpo "$DOMAIN_TRAIN" "${DOMAIN_TEST:-$DOMAIN_TRAIN}"
  stage "$BASE" domain 0 "$OUT/domain-from-base" grpo "$DOMAIN_TRAIN" "${DOMAIN_TEST:-$DOMAIN_TRAIN}"
fi
echo "specialists: $OUT/*/level-2/hf; merged: $OUT/merged; domain: $OUT/domain-from-*/hf"
