#!/usr/bin/env bash
# Builds xP3 / xP3mt / xP3x-style files from raw Hugging Face datasets and promptsource templates
# with Apache Beam (`python -m xp3_tasks.build`), on Dataflow or locally.
#
#   launch/build_xp3.sh [--dry-run] [--runner=dataflow|direct] [flags] [-- MORE_BUILD_FLAGS...]
#
# Configuration: environment variables, or the flag of the same name in lower case with dashes:
#   COLLECTION        xp3 (default), xp3mt or xp3x
#   DATASETS          comma-separated Hugging Face names of xp3_tasks/data/datasets.yaml, or all
#                     (default)
#   RAW_DATA_DIR      raw datasets, <dataset>/<config>/<split> in a hub layout (parquet or jsonl)
#   TEMPLATES_DIR     a promptsource templates/ folder (tr13 for xp3, xp3mt's for xp3mt, ...)
#   OUTPUT_DIR        where <lang>/*.jsonl, merged files, build_report.json, manifest.json go
#   SEED              default 0: the same seed gives byte-identical files
#   SELECTION         as_released (default), shortest or random (see README)
#   RUNNER            dataflow (default) or direct (local, this machine's cores)
#   dataflow only:
#   PROJECT, REGION (default us-central1), BUCKET (temp/staging under gs://BUCKET/dataflow; also
#   the default RAW_DATA_DIR gs://BUCKET/hf and OUTPUT_DIR gs://BUCKET/<collection>),
#   TEMP_LOCATION, STAGING_LOCATION, JOB_NAME (default xmtf-build-<collection>),
#   MAX_NUM_WORKERS (default 64), MACHINE_TYPE (default n2-highmem-8: a unit holds one split)
#   direct only:
#   NUM_WORKERS       local worker processes (default 1)
#   PYTHON            the interpreter with the project installed (default python)
#   DRY_RUN=1 / --dry-run  print the command instead of running it
#
# Dataflow workers install the package from --setup_file (setup.py: seqio, tensorflow-text, ...);
# `python -m benchmarks.worker_install` checks that install (benchmarks/results/worker_install.md).
# Training then reads the output: XP3_DATA_ROOT=OUTPUT_DIR (XP3MT_/XP3X_ for those collections).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
# shellcheck source=launch/lib.sh
source "${SCRIPT_DIR}/lib.sh"

FLAGS=(COLLECTION DATASETS RAW_DATA_DIR TEMPLATES_DIR OUTPUT_DIR SEED SELECTION RUNNER PROJECT
  REGION BUCKET TEMP_LOCATION STAGING_LOCATION JOB_NAME MAX_NUM_WORKERS MACHINE_TYPE NUM_WORKERS)
EXTRA=()
for ((i = 1; i <= $#; i++)); do
  arg="${!i}"
  case "${arg}" in
    --dry-run) DRY_RUN=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    --) EXTRA=("${@:i+1}"); break ;;
    *) set_flag "${arg}" "${FLAGS[@]}" ;;
  esac
done

COLLECTION="${COLLECTION:-xp3}"
RUNNER="${RUNNER:-dataflow}"
if [[ -n "${BUCKET:-}" ]]; then
  BUCKET="${BUCKET#gs://}"
  RAW_DATA_DIR="${RAW_DATA_DIR:-gs://${BUCKET}/hf}"
  OUTPUT_DIR="${OUTPUT_DIR:-gs://${BUCKET}/${COLLECTION}}"
  TEMP_LOCATION="${TEMP_LOCATION:-gs://${BUCKET}/dataflow/tmp}"
  STAGING_LOCATION="${STAGING_LOCATION:-gs://${BUCKET}/dataflow/staging}"
fi
require RAW_DATA_DIR TEMPLATES_DIR OUTPUT_DIR

BEAM=()
case "${RUNNER}" in
  dataflow)
    require PROJECT TEMP_LOCATION STAGING_LOCATION
    for name in RAW_DATA_DIR TEMPLATES_DIR OUTPUT_DIR; do
      [[ "${!name}" == gs://* ]] || die "${name}=${!name}: Dataflow workers read and write gs:// only"
    done
    BEAM=(--runner=DataflowRunner "--project=${PROJECT}" "--region=${REGION:-us-central1}"
      "--temp_location=${TEMP_LOCATION}" "--staging_location=${STAGING_LOCATION}"
      "--setup_file=${REPO_ROOT}/setup.py" "--job_name=${JOB_NAME:-xmtf-build-${COLLECTION}}"
      "--max_num_workers=${MAX_NUM_WORKERS:-64}" "--machine_type=${MACHINE_TYPE:-n2-highmem-8}"
      --experiments=use_runner_v2)
    ;;
  direct)
    BEAM=(--runner=DirectRunner "--direct_num_workers=${NUM_WORKERS:-1}")
    if ((${NUM_WORKERS:-1} > 1)); then
      BEAM+=(--direct_running_mode=multi_processing)
    fi
    ;;
  *) die "RUNNER=${RUNNER}: expected dataflow or direct" ;;
esac

COMMAND=("${PYTHON:-python}" -m xp3_tasks.build "--collection=${COLLECTION}"
  "--datasets=${DATASETS:-all}" "--raw_data_dir=${RAW_DATA_DIR}"
  "--templates_dir=${TEMPLATES_DIR}" "--output_dir=${OUTPUT_DIR}" "--seed=${SEED:-0}"
  "--selection=${SELECTION:-as_released}" "${BEAM[@]}" "${EXTRA[@]}")
cd "${REPO_ROOT}"
run "${COMMAND[@]}"
