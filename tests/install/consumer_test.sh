#!/usr/bin/env bash
# The installed SDK from an outside project (ctest: install_consumer_test):
# installs the build tree into a temporary prefix, checks the installed
# headers, builds consumer/ against the prefix with find_package(mnemo), and
# runs it against a real mnemod from the build tree. Cleans up after itself.
#   consumer_test.sh BUILD_DIR [CMAKE [GENERATOR [CXX_COMPILER]]]
set -euo pipefail

build_dir=$(cd "$1" && pwd)
cmake=${2:-cmake}
generator=${3:-Ninja}
cxx=${4:-c++}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/mnemo-install-test.XXXXXX")
mnemod_pid=
cleanup() {
  if [[ -n $mnemod_pid ]]; then
    kill -KILL "$mnemod_pid" 2>/dev/null || true
    wait "$mnemod_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { echo "== $*"; }
# Runs a command with its output in $work/<log>; shows the log on failure.
logged() {
  local log=$1
  shift
  if ! "$@" >"$work/$log" 2>&1; then
    cat "$work/$log"
    echo "FAIL: $*"
    exit 1
  fi
}

prefix=$work/prefix
step "install $build_dir into $prefix"
logged install.log "$cmake" --install "$build_dir" --prefix "$prefix"
(cd "$prefix" && find . -type f | sort)

step "installed headers include only std, absl/ and mnemo/ headers"
bad=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$prefix/include" |
  grep -vE '#[[:space:]]*include[[:space:]]*"(absl|mnemo)/' || true)
if [[ -n $bad ]]; then
  echo "$bad"
  echo "FAIL: an installed header includes a header that is not installed"
  exit 1
fi
if [[ -n $(find "$prefix" -name '*.pb.h') ]]; then
  echo "FAIL: a generated protobuf header is installed"
  exit 1
fi

step "configure and build tests/install/consumer with CMAKE_PREFIX_PATH=$prefix"
logged configure.log "$cmake" -S "$here/consumer" -B "$work/consumer" -G "$generator" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix"
logged build.log "$cmake" --build "$work/consumer"

step "start $build_dir/bin/mnemod"
mkdir -p "$work/data"
"$build_dir/bin/mnemod" --listen 127.0.0.1:0 --port-file "$work/port" \
  --data-dir "$work/data" >"$work/mnemod.log" 2>&1 &
mnemod_pid=$!
for _ in $(seq 300); do
  [[ -s $work/port ]] && break
  if ! kill -0 "$mnemod_pid" 2>/dev/null; then
    cat "$work/mnemod.log"
    echo "FAIL: mnemod exited before listening"
    exit 1
  fi
  sleep 0.1
done
if [[ ! -s $work/port ]]; then
  cat "$work/mnemod.log"
  echo "FAIL: mnemod did not write its port in 30 s"
  exit 1
fi
target=127.0.0.1:$(cat "$work/port")

step "run the consumer against $target"
"$work/consumer/mnemo_consumer" "$target" || {
  cat "$work/mnemod.log"
  echo "FAIL: the consumer failed"
  exit 1
}

step "stop mnemod"
kill -TERM "$mnemod_pid"
rc=0
wait "$mnemod_pid" || rc=$?
mnemod_pid=
if [[ $rc -ne 0 ]]; then
  cat "$work/mnemod.log"
  echo "FAIL: mnemod exited with status $rc on SIGTERM"
  exit 1
fi
echo "PASS"
