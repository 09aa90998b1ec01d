# Shared by the noop OS scripts: usage on -h/--help or stray arguments (ganeti-os-interface(7)).
noop_usage() {
  echo "usage: $1${2:+ $2}" >&2
  echo "genet's noop OS: does nothing, successfully (OS API ${OS_API_VERSION:-20})." >&2
}
noop_args() {
  script=$1; allowed=$2; shift 2
  case "${1:-}" in
    -h|--help) noop_usage "$script" "$allowed"; exit 0 ;;
  esac
  if [ $# -gt 0 ] && [ "$*" != "$allowed" ]; then
    noop_usage "$script" "$allowed"; exit 1
  fi
}
