#!/usr/bin/env bash
# Cloud TPU VM / pod-slice launcher for xmtf: create, install, train, logs, stop, delete.
#
#   launch/tpu.sh [flags] create|install|train|logs|collect|stop|delete|status|all [-- TRAIN_ARGS...]
#
# Every worker of a pod slice runs the same `python -m xmtf.train --multiprocess` (gcloud
# `--worker=all`); jax.distributed.initialize() finds the other hosts by itself on Cloud TPU.
#
# Configuration: environment variables, or the flag of the same name in lower case with dashes
# (PROJECT= or --project=):
#   PROJECT           Google Cloud project (required)
#   ZONE              default us-central2-b (where v4 slices live)
#   ACCELERATOR_TYPE  default v4-8; v4-64 for mt0-xl, v4-256 for mt0-xxl (N TensorCores = N/2 chips,
#                     N/8 hosts)
#   TPU_NAME          default xmtf-<accelerator type>
#   RUNTIME_VERSION   default tpu-ubuntu2204-base
#   BUCKET            gs:// bucket (name without gs://) for MODEL_DIR and the data
#   MODEL_DIR         default gs://BUCKET/xmtf/TPU_NAME
#   GIN_FILE          default gin/mt0_xxl.gin (relative to the repository)
#   XP3_DATA_ROOT     default gs://BUCKET/xP3 (released layout with manifest.json)
#   XP3_EVAL_DATA_ROOT default gs://BUCKET/xp3_eval
#   SPOT=1            spot capacity (preemptible; the trainer checkpoints on SIGTERM, rerun `train`
#                     to resume from MODEL_DIR)
#   QUEUED=1          request the slice through a queued resource (waits for capacity)
#   REPO_URL, REPO_REF  install by `git clone` on every worker; default: copy `git archive HEAD`
#                     of this checkout (committed files only) to every worker with scp
#   PIP_EXTRAS        extras installed with the project, default "beam" (gcsfs-free; tf.io reads gs://)
#   DRY_RUN=1 / --dry-run  print every command instead of running it
# Anything after `--` is appended to the train command (e.g. --gin.TRAIN_STEPS=1_007_000).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
# shellcheck source=launch/lib.sh
source "${SCRIPT_DIR}/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

COMMAND=""
TRAIN_ARGS=()
while (($#)); do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --spot) SPOT=1 ;;
    --queued) QUEUED=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; TRAIN_ARGS=("$@"); break ;;
    --*=*)
      name="${1%%=*}"
      name="${name#--}"
      name="${name^^}"
      name="${name//-/_}"
      case "${name}" in
        PROJECT | ZONE | ACCELERATOR_TYPE | TPU_NAME | RUNTIME_VERSION | BUCKET | MODEL_DIR | \
          GIN_FILE | XP3_DATA_ROOT | XP3_EVAL_DATA_ROOT | REPO_URL | REPO_REF | PIP_EXTRAS)
          printf -v "${name}" '%s' "${1#*=}" ;;
        *) die "unknown flag $1 (see --help)" ;;
      esac
      ;;
    create | install | train | logs | collect | stop | delete | status | all)
      [[ -z "${COMMAND}" ]] || die "two subcommands given: ${COMMAND} and $1"
      COMMAND="$1" ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
[[ -n "${COMMAND}" ]] || { usage; exit 2; }

ZONE="${ZONE:-us-central2-b}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-v4-8}"
TPU_NAME="${TPU_NAME:-xmtf-${ACCELERATOR_TYPE}}"
RUNTIME_VERSION="${RUNTIME_VERSION:-tpu-ubuntu2204-base}"
GIN_FILE="${GIN_FILE:-gin/mt0_xxl.gin}"
SPOT="${SPOT:-0}"
QUEUED="${QUEUED:-0}"
PIP_EXTRAS="${PIP_EXTRAS:-beam}"
REPO_REF="${REPO_REF:-main}"
if [[ -n "${BUCKET:-}" ]]; then
  BUCKET="${BUCKET#gs://}"
  MODEL_DIR="${MODEL_DIR:-gs://${BUCKET}/xmtf/${TPU_NAME}}"
  XP3_DATA_ROOT="${XP3_DATA_ROOT:-gs://${BUCKET}/xP3}"
  XP3_EVAL_DATA_ROOT="${XP3_EVAL_DATA_ROOT:-gs://${BUCKET}/xp3_eval}"
fi
require PROJECT
[[ "${ACCELERATOR_TYPE}" =~ ^v[0-9]+[a-z]*-([0-9]+)$ ]] ||
  die "ACCELERATOR_TYPE=${ACCELERATOR_TYPE}: expected e.g. v4-64"
NUM_CORES="${BASH_REMATCH[1]}"
NUM_WORKERS=$((NUM_CORES >= 8 ? NUM_CORES / 8 : 1))  # v4: 4 chips (8 TensorCores) per host

REMOTE_DIR="xmtf"          # on each worker, relative to the home directory
REMOTE_VENV="xmtf-venv"
REMOTE_LOG="xmtf-train.log"
REMOTE_PID="xmtf-train.pid"
GCLOUD_TPU=(gcloud compute tpus tpu-vm)
WHERE=(--project="${PROJECT}" --zone="${ZONE}")

# on_workers WORKER COMMAND: runs COMMAND over ssh on one worker index or `all`.
on_workers() {
  run "${GCLOUD_TPU[@]}" ssh "${TPU_NAME}" "${WHERE[@]}" --worker="$1" --command="$2"
}

cmd_create() {
  local spot=()
  [[ "${SPOT}" == "1" ]] && spot=(--spot)
  if [[ "${QUEUED}" == "1" ]]; then
    run gcloud compute tpus queued-resources create "${TPU_NAME}-qr" --node-id="${TPU_NAME}" \
      "${WHERE[@]}" --accelerator-type="${ACCELERATOR_TYPE}" \
      --runtime-version="${RUNTIME_VERSION}" "${spot[@]}"
    wait_for_queued_resource
  else
    run "${GCLOUD_TPU[@]}" create "${TPU_NAME}" "${WHERE[@]}" \
      --accelerator-type="${ACCELERATOR_TYPE}" --version="${RUNTIME_VERSION}" "${spot[@]}"
  fi
}

wait_for_queued_resource() {
  local describe=(gcloud compute tpus queued-resources describe "${TPU_NAME}-qr" "${WHERE[@]}"
    --format='value(state.state)')
  if [[ "${DRY_RUN}" == "1" ]]; then
    print_cmd "${describe[@]}"
    echo "# (repeated every 60 s until ACTIVE)"
    return
  fi
  local state=""
  while [[ "${state}" != "ACTIVE" ]]; do
    state="$("${describe[@]}")"
    echo "queued resource ${TPU_NAME}-qr: ${state}" >&2
    case "${state}" in
      FAILED | SUSPENDED) die "queued resource ${TPU_NAME}-qr is ${state}" ;;
      ACTIVE) ;;
      *) sleep 60 ;;
    esac
  done
}

# The remote install: Python 3.11 (the TPU image has 3.10), a venv, the project and jax[tpu].
install_script() {
  local extras=""
  [[ -n "${PIP_EXTRAS}" ]] && extras="[${PIP_EXTRAS}]"
  local jax_spec
  jax_spec="$(sed -n 's/^ *"\(jax>=[^"]*\)",$/\1/p' "${REPO_ROOT}/setup.py" | head -n 1)"
  jax_spec="${jax_spec/jax/jax[tpu]}"
  [[ -n "${jax_spec}" ]] || jax_spec="jax[tpu]"
  printf '%s' "set -euo pipefail; sudo apt-get update -qq && sudo apt-get install -y -qq python3.11 python3.11-venv; " \
    "python3.11 -m venv ~/${REMOTE_VENV}; . ~/${REMOTE_VENV}/bin/activate; " \
    "pip install -q -U pip; pip install -q -e ~/${REMOTE_DIR}'${extras}' '${jax_spec}'; " \
    "python -c 'import jax; print(jax.process_index(), jax.local_device_count(), jax.device_count())'"
}

cmd_install() {
  if [[ -n "${REPO_URL:-}" ]]; then
    safe_value REPO_URL
    safe_value REPO_REF
    on_workers all "rm -rf ~/${REMOTE_DIR} && git clone --depth 1 --branch ${REPO_REF} ${REPO_URL} ~/${REMOTE_DIR}"
  else
    local tarball="${TMPDIR:-/tmp}/xmtf-${TPU_NAME}.tar.gz"
    run git -C "${REPO_ROOT}" archive --format=tar.gz --output="${tarball}" HEAD
    run "${GCLOUD_TPU[@]}" scp "${tarball}" "${TPU_NAME}:xmtf.tar.gz" "${WHERE[@]}" --worker=all
    on_workers all "rm -rf ~/${REMOTE_DIR} && mkdir -p ~/${REMOTE_DIR} && tar -xzf ~/xmtf.tar.gz -C ~/${REMOTE_DIR}"
  fi
  on_workers all "$(install_script)"
}

check_train_config() {
  require BUCKET MODEL_DIR
  local name
  for name in MODEL_DIR GIN_FILE XP3_DATA_ROOT XP3_EVAL_DATA_ROOT; do
    safe_value "${name}"
  done
  [[ "${MODEL_DIR}" == gs://* ]] || die "MODEL_DIR=${MODEL_DIR}: must be a gs:// path (every host writes there)"
}

# The train command every worker runs (one process per host, all hosts at once). Call
# check_train_config first (a `die` inside a command substitution would not stop the script).
train_command() {
  local extra="" arg
  for arg in "${TRAIN_ARGS[@]}"; do
    extra+=" $(quote "${arg}")"
  done
  printf '%s' "env TF_CPP_MIN_LOG_LEVEL=2 python -m xmtf.train --gin_file=${GIN_FILE} --multiprocess " \
    "--gin.MODEL_DIR=\"'${MODEL_DIR}'\" --gin.XP3_DATA_ROOT=\"'${XP3_DATA_ROOT}'\" " \
    "--gin.XP3_EVAL_DATA_ROOT=\"'${XP3_EVAL_DATA_ROOT}'\"${extra}"
}

IN_VENV="cd ~/${REMOTE_DIR} && . ~/${REMOTE_VENV}/bin/activate"

# Detached on every worker (survives the ssh session), output in ~/xmtf-train.log; nohup and env
# exec the trainer, so the recorded pid is the trainer's own and `stop` signals it directly.
cmd_train() {
  check_train_config
  on_workers all "${IN_VENV} && { nohup $(train_command) > ~/${REMOTE_LOG} 2>&1 < /dev/null & echo \$! > ~/${REMOTE_PID}; }"
}

# Attached on every worker: returns when training ends (used by `all`).
train_foreground() {
  check_train_config
  on_workers all "${IN_VENV} && $(train_command) 2>&1 | tee ~/${REMOTE_LOG}"
}

cmd_logs() {
  on_workers 0 "tail -n +1 -F ~/${REMOTE_LOG}"
}

# Copies every worker's log to logs/TPU_NAME/worker_<i>.log.
cmd_collect() {
  local dir="${REPO_ROOT}/logs/${TPU_NAME}" worker
  run mkdir -p "${dir}"
  for ((worker = 0; worker < NUM_WORKERS; worker++)); do
    run "${GCLOUD_TPU[@]}" scp "${TPU_NAME}:${REMOTE_LOG}" "${dir}/worker_${worker}.log" \
      "${WHERE[@]}" --worker="${worker}"
  done
}

# SIGTERM: the trainer finishes its step, checkpoints to MODEL_DIR and exits 0.
cmd_stop() {
  on_workers all "if [ -f ~/${REMOTE_PID} ]; then kill -TERM \$(cat ~/${REMOTE_PID}) 2>/dev/null || true; fi"
}

cmd_delete() {
  if [[ "${QUEUED}" == "1" ]]; then
    run gcloud compute tpus queued-resources delete "${TPU_NAME}-qr" "${WHERE[@]}" --force --quiet
  else
    run "${GCLOUD_TPU[@]}" delete "${TPU_NAME}" "${WHERE[@]}" --quiet
  fi
}

cmd_status() {
  run "${GCLOUD_TPU[@]}" describe "${TPU_NAME}" "${WHERE[@]}" --format='value(state,health)'
  on_workers all "if [ -f ~/${REMOTE_PID} ] && kill -0 \$(cat ~/${REMOTE_PID}) 2>/dev/null; then echo training; else echo idle; fi"
}

cmd_all() {
  check_train_config
  cmd_create
  if [[ "${DRY_RUN}" != "1" ]]; then
    trap 'cmd_collect || true; cmd_delete' EXIT
  fi
  cmd_install
  train_foreground
  if [[ "${DRY_RUN}" == "1" ]]; then
    cmd_collect
    cmd_delete
  fi
}

echo "# ${COMMAND}: ${TPU_NAME} (${ACCELERATOR_TYPE}, ${NUM_WORKERS} workers) in ${PROJECT}/${ZONE}" >&2
"cmd_${COMMAND}"
