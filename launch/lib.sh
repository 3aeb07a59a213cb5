# shellcheck shell=bash
# Shared helpers of the launch scripts: configuration checks, the dry-run switch and quoting.
# Sourced, not executed: callers set `set -euo pipefail` themselves.

# DRY_RUN=1 prints every command (one line, shell-quoted) instead of running it.
DRY_RUN="${DRY_RUN:-0}"

die() {
  echo "error: $*" >&2
  exit 2
}

# quote ARG: ARG as a shell word (unchanged when it needs no quoting; for --flag=VALUE only the
# value is quoted, which keeps printed gcloud commands readable).
quote() {
  local arg="$1"
  if [[ "${arg}" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
    printf '%s' "${arg}"
  elif [[ "${arg}" =~ ^(--[A-Za-z0-9_-]+=)(.*)$ ]]; then
    printf "%s'%s'" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]//\'/\'\\\'\'}"
  else
    printf "'%s'" "${arg//\'/\'\\\'\'}"
  fi
}

# print_cmd CMD...: the command as one line a user can copy.
print_cmd() {
  local out="" arg
  for arg in "$@"; do
    out+="$(quote "${arg}") "
  done
  printf '%s\n' "${out% }"
}

# run CMD...: runs the command, or prints it under DRY_RUN=1.
run() {
  if [[ "${DRY_RUN}" == "1" ]]; then
    print_cmd "$@"
  else
    echo "+ $(print_cmd "$@")" >&2
    "$@"
  fi
}

# require NAME...: each variable must be set and non-empty.
require() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || die "${name} is not set (environment variable or --$(flag_of "${name}"))"
  done
}

# flag_of VAR: the command-line flag that sets VAR (ACCELERATOR_TYPE -> accelerator-type).
flag_of() {
  local lower="${1,,}"
  printf '%s' "${lower//_/-}"
}

# safe_value NAME: the variable must be usable inside a remote double-quoted command line.
safe_value() {
  local name="$1"
  local value="${!name:-}"
  if [[ "${value}" =~ [[:space:]\"\'\$\`\\] ]]; then
    die "${name}=${value}: spaces, quotes, \$, backquotes and backslashes are not allowed"
  fi
}

# set_flag ARG NAME...: for ARG `--some-name=VALUE`, sets variable SOME_NAME to VALUE when it is
# one of the NAMEs; anything else is an error naming the flag.
set_flag() {
  local arg="$1" name
  shift
  [[ "${arg}" == --*=* ]] || die "unknown argument ${arg} (see --help)"
  name="${arg%%=*}"
  name="${name#--}"
  name="${name^^}"
  name="${name//-/_}"
  [[ " $* " == *" ${name} "* ]] || die "unknown flag ${arg%%=*} (see --help)"
  printf -v "${name}" '%s' "${arg#*=}"
}
