#!/usr/bin/env bash
# Caches the xP3 SeqIO tasks (preprocessed, tokenized TFRecords) with Apache Beam, on Dataflow or
# locally, so training reads the cache instead of re-parsing JSON lines (seqio cache_tasks_main,
# through `python -m xmtf.cache_tasks`, which carries the XP3_* settings to the Beam workers).
#
#   launch/cache_tasks.sh [--dry-run] [--runner=dataflow|direct] [flags] [-- MORE_SEQIO_FLAGS...]
#
# Configuration: environment variables, or the flag of the same name in lower case with dashes:
#   RUNNER            dataflow (default) or direct (local, this machine's cores)
#   TASKS             comma-separated regexes of tasks to cache (default 'xp3_.*': the training
#                     tasks of the `xp3` mixture)
#   EXCLUDED_TASKS    comma-separated regexes to skip (default 'xp3_merged_.*': the per-language
#                     merged files hold the same examples as the per-prompt tasks)
#   CACHE_DIR         output cache directory (default gs://BUCKET/xp3_cache; required for direct)
#   XP3_DATA_ROOT     xP3 copy the tasks read (exported to the workers; default gs://BUCKET/xP3)
#   XP3_VOCAB_PATH    optional vocabulary override (exported to the workers)
#   dataflow only:
#   PROJECT, REGION (default us-central1), BUCKET (temp/staging under gs://BUCKET/dataflow),
#   TEMP_LOCATION, STAGING_LOCATION, JOB_NAME (default xmtf-cache-xp3), MAX_NUM_WORKERS
#   (default 64), MACHINE_TYPE (default n2-standard-8)
#   direct only:
#   NUM_WORKERS       local worker processes (default 1)
#   MIN_SHARDS        output shards per task and split (seqio default 64; fewer for small tasks)
#   PYTHON            the interpreter with the project installed (default python)
#   DRY_RUN=1 / --dry-run  print the command instead of running it
#
# Training then reads the cache: --gin.USE_CACHED_TASKS=True --seqio_additional_cache_dirs=CACHE_DIR
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
# shellcheck source=launch/lib.sh
source "${SCRIPT_DIR}/lib.sh"

EXTRA=()
while (($#)); do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    --*=*)
      name="${1%%=*}"
      name="${name#--}"
      name="${name^^}"
      name="${name//-/_}"
      case "${name}" in
        RUNNER | TASKS | EXCLUDED_TASKS | CACHE_DIR | XP3_DATA_ROOT | XP3_VOCAB_PATH | PROJECT | \
          REGION | BUCKET | TEMP_LOCATION | STAGING_LOCATION | JOB_NAME | MAX_NUM_WORKERS | \
          MACHINE_TYPE | NUM_WORKERS | MIN_SHARDS)
          printf -v "${name}" '%s' "${1#*=}" ;;
        *) die "unknown flag $1 (see --help)" ;;
      esac
      ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

RUNNER="${RUNNER:-dataflow}"
TASKS="${TASKS:-xp3_.*}"
EXCLUDED_TASKS="${EXCLUDED_TASKS-xp3_merged_.*}"
if [[ -n "${BUCKET:-}" ]]; then
  BUCKET="${BUCKET#gs://}"
  CACHE_DIR="${CACHE_DIR:-gs://${BUCKET}/xp3_cache}"
  XP3_DATA_ROOT="${XP3_DATA_ROOT:-gs://${BUCKET}/xP3}"
  TEMP_LOCATION="${TEMP_LOCATION:-gs://${BUCKET}/dataflow/tmp}"
  STAGING_LOCATION="${STAGING_LOCATION:-gs://${BUCKET}/dataflow/staging}"
fi
require CACHE_DIR
[[ -n "${XP3_DATA_ROOT:-}" ]] && export XP3_DATA_ROOT
[[ -n "${XP3_VOCAB_PATH:-}" ]] && export XP3_VOCAB_PATH

case "${RUNNER}" in
  dataflow)
    require PROJECT TEMP_LOCATION STAGING_LOCATION
    [[ "${CACHE_DIR}" == gs://* ]] || die "CACHE_DIR=${CACHE_DIR}: Dataflow workers write to gs:// only"
    [[ "${XP3_DATA_ROOT:-}" == gs://* ]] ||
      die "XP3_DATA_ROOT=${XP3_DATA_ROOT:-<unset>}: Dataflow workers read gs:// only (set BUCKET or XP3_DATA_ROOT)"
    OPTIONS="--runner=DataflowRunner,--project=${PROJECT},--region=${REGION:-us-central1}"
    OPTIONS+=",--temp_location=${TEMP_LOCATION},--staging_location=${STAGING_LOCATION}"
    OPTIONS+=",--setup_file=${REPO_ROOT}/setup.py,--job_name=${JOB_NAME:-xmtf-cache-xp3}"
    OPTIONS+=",--max_num_workers=${MAX_NUM_WORKERS:-64},--machine_type=${MACHINE_TYPE:-n2-standard-8}"
    OPTIONS+=",--experiments=use_runner_v2"
    ;;
  direct)
    OPTIONS="--runner=DirectRunner,--direct_num_workers=${NUM_WORKERS:-1}"
    if ((${NUM_WORKERS:-1} > 1)); then
      OPTIONS+=",--direct_running_mode=multi_processing"
    fi
    ;;
  *) die "RUNNER=${RUNNER}: expected dataflow or direct" ;;
esac

COMMAND=("${PYTHON:-python}" -m xmtf.cache_tasks --module_import=xp3_tasks "--tasks=${TASKS}"
  "--output_cache_dir=${CACHE_DIR}" "--pipeline_options=${OPTIONS}")
[[ -n "${EXCLUDED_TASKS}" ]] && COMMAND+=("--excluded_tasks=${EXCLUDED_TASKS}")
[[ -n "${MIN_SHARDS:-}" ]] && COMMAND+=("--min_shards=${MIN_SHARDS}")
COMMAND+=(--alsologtostderr "${EXTRA[@]}")

if [[ "${DRY_RUN}" == "1" ]]; then
  # The settings the workers receive, then the command.
  for name in XP3_DATA_ROOT XP3_VOCAB_PATH; do
    [[ -n "${!name:-}" ]] && print_cmd export "${name}=${!name}"
  done
fi
cd "${REPO_ROOT}"
run "${COMMAND[@]}"
