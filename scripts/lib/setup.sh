# nll: shared set-up for scripts/demo and scripts/test (sourced, not run). SPDX-License-Identifier: MIT
#
# 1. Checks cheaply (files and commands on PATH, no package manager calls) that the tools and
#    libraries nll needs are there; on Debian/Ubuntu installs what is missing with apt-get when run
#    as root, otherwise prints the exact `sudo apt-get install ...` line and exits 1.
# 2. Configures and builds nll with CMake.
#
# Environment:
#   CXX             the C++ compiler (default: g++, or whatever CMake finds)
#   NLL_BUILD_DIR   the build directory (default: build/ in the source tree)
#   NLL_BUILD_TYPE  CMAKE_BUILD_TYPE (default: Release)
#   NLL_CMAKE_ARGS  extra arguments for the CMake configure step, e.g. "-DNLL_NATIVE=OFF"
#   NLL_JOBS        parallel build jobs (default: the number of cores)
#   NLL_SKIP_DEPS=1 skip the dependency check (dependencies installed some other way)

nll_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
nll_build_dir="${NLL_BUILD_DIR:-$nll_root/build}"
nll_build_type="${NLL_BUILD_TYPE:-Release}"
nll_jobs="${NLL_JOBS:-$(nproc 2>/dev/null || echo 2)}"

nll_say() { printf 'nll: %s\n' "$*" >&2; }

nll_missing_required=()
nll_missing_optional=()

# nll_any_file PATH... : true when one of the paths exists.
nll_any_file() {
  local path
  for path in "$@"; do [[ -e "$path" ]] && return 0; done
  return 1
}

# nll_need KIND PACKAGE PRESENT_COMMAND... : records PACKAGE as missing (KIND: required/optional)
# unless the command succeeds.
nll_need() {
  local kind="$1" package="$2"
  shift 2
  "$@" && return 0
  if [[ "$kind" == required ]]; then nll_missing_required+=("$package"); else nll_missing_optional+=("$package"); fi
}

nll_cmake_recent() {
  command -v cmake >/dev/null || return 1
  local version
  version="$(cmake --version | sed -n 's/^cmake version \([0-9]*\.[0-9]*\).*/\1/p')"
  [[ "$(printf '%s\n3.25\n' "$version" | sort -V | head -n1)" == 3.25 ]]
}

# The Debian package that provides the compiler command $1 (g++, g++-12, clang++, clang++-14, ...).
nll_compiler_package() {
  local name
  name="$(basename "$1")"
  case "$name" in
  g++ | c++) echo g++ ;;
  g++-*) echo "g++-${name#g++-}" ;;
  clang++) echo clang ;;
  clang++-*) echo "clang-${name#clang++-}" ;;
  *) echo "" ;;
  esac
}

# nll_check_dependencies [benchmark]: with "benchmark", Google Benchmark is wanted (optional).
nll_check_dependencies() {
  nll_missing_required=()
  nll_missing_optional=()
  if [[ "${NLL_SKIP_DEPS:-0}" == 1 ]]; then return 0; fi
  local compiler="${CXX:-g++}"
  nll_need required cmake nll_cmake_recent
  nll_need optional ninja-build command -v ninja >/dev/null
  if ! command -v "$compiler" >/dev/null; then
    local package
    package="$(nll_compiler_package "$compiler")"
    if [[ -z "$package" ]]; then
      nll_say "the compiler CXX=$compiler is not on PATH, and I do not know which package provides it"
      exit 1
    fi
    nll_missing_required+=("$package")
  fi
  nll_need required libeigen3-dev nll_any_file /usr/include/eigen3/Eigen/Core /usr/local/include/eigen3/Eigen/Core
  nll_need required catch2 nll_any_file /usr/include/catch2/catch.hpp /usr/include/catch2/catch_all.hpp \
    /usr/local/include/catch2/catch.hpp /usr/local/include/catch2/catch_all.hpp
  if [[ "${1:-}" == benchmark ]]; then
    nll_need optional libbenchmark-dev nll_any_file /usr/include/benchmark/benchmark.h \
      /usr/local/include/benchmark/benchmark.h
  fi
}

# nll_install_missing: installs nll_missing_required and nll_missing_optional (root + apt-get), or
# explains how and exits 1 when something required is missing.
nll_install_missing() {
  local all=("${nll_missing_required[@]}" "${nll_missing_optional[@]}")
  ((${#all[@]} == 0)) && return 0
  if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
    nll_say "installing ${all[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${all[@]}" >/dev/null
    return 0
  fi
  if ((${#nll_missing_required[@]} == 0)); then
    nll_say "optional: ${nll_missing_optional[*]} (install with: sudo apt-get install -y ${nll_missing_optional[*]})"
    return 0
  fi
  nll_say "missing: ${all[*]}"
  if command -v apt-get >/dev/null; then
    nll_say "install them with:"
    printf '  sudo apt-get install -y %s\n' "${all[*]}" >&2
  else
    nll_say "install these (names as in Debian; cmake >= 3.25, Eigen >= 3.4, Catch2 2.13 or 3) and retry,"
    nll_say "or set NLL_SKIP_DEPS=1 if they are installed where this check does not look"
  fi
  exit 1
}

nll_setup_dependencies() {
  nll_check_dependencies "$@"
  nll_install_missing
}

# nll_configure: configure nll into $nll_build_dir (Release unless NLL_BUILD_TYPE says otherwise).
nll_configure() {
  local args=(-S "$nll_root" -B "$nll_build_dir" -DCMAKE_BUILD_TYPE="$nll_build_type")
  local cache="$nll_build_dir/CMakeCache.txt"
  if [[ -f "$cache" ]]; then
    # A different CXX than the one this build dir was configured with needs a fresh configure.
    if [[ -n "${CXX:-}" ]]; then
      local cached wanted
      cached="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$cache")"
      wanted="$(command -v "$CXX" || true)"
      if [[ -n "$wanted" && -n "$cached" && "$(readlink -f "$wanted")" != "$(readlink -f "$cached")" ]]; then
        nll_say "$nll_build_dir was configured with $cached; reconfiguring from scratch for CXX=$CXX"
        args+=(--fresh)
        command -v ninja >/dev/null && args+=(-G Ninja)
      fi
    fi
  elif command -v ninja >/dev/null; then
    args+=(-G Ninja)
  fi
  local extra=()
  read -r -a extra <<<"${NLL_CMAKE_ARGS:-}"
  cmake "${args[@]}" "${extra[@]}"
}

# nll_build [TARGET...]: build the given targets (default: all).
nll_build() {
  local targets=()
  local target
  for target in "$@"; do targets+=(--target "$target"); done
  cmake --build "$nll_build_dir" -j "$nll_jobs" "${targets[@]}"
}

# The compiler the build dir uses, for messages ("g++ (Debian 12.2.0-14) 12.2.0").
nll_compiler_description() {
  local cxx
  cxx="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$nll_build_dir/CMakeCache.txt" 2>/dev/null)"
  [[ -n "$cxx" ]] && "$cxx" --version 2>/dev/null | head -n1
}
