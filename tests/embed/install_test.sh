#!/bin/bash
# `cmake --install` gives an embedder all it needs: installs the build into
# a fresh prefix, then builds examples/embedded against that prefix alone,
# with find_package(kcqrs), with pkg-config, and against the whole engine
# made into one shared library (which needs position-independent archives),
# runs the three programs, and checks what they print.
#
# Usage: install_test.sh BUILD_DIR SOURCE_DIR WORK_DIR CXX_COMPILER C_COMPILER
set -euo pipefail
build=$1 src=$2 work=$3 cxx=$4 cc=$5
example=$src/examples/embedded
prefix=$work/prefix

rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"

for f in bin/kcqrs include/kcqrs/engine.h include/kcqrs/topology_file.h \
         include/kcqrs/testing/topology_test_driver.h lib/libkcqrs.a \
         lib/cmake/kcqrs/kcqrsConfig.cmake lib/cmake/kcqrs/kcqrsConfigVersion.cmake \
         lib/pkgconfig/kcqrs.pc; do
  [[ -e $prefix/$f ]] || { echo "FAIL: cmake --install left out $f"; exit 1; }
done
# The public headers are the API only: nothing of the build tree.
if grep -rl "$src\|$build" "$prefix/include" "$prefix/lib/cmake" "$prefix/lib/pkgconfig"; then
  echo "FAIL: installed files name the source or build tree"; exit 1
fi
# Output is captured before grep: with pipefail, grep -q exiting at its
# first match can SIGPIPE the writer and fail the pipe at random.
version=$("$prefix/bin/kcqrs" version)
grep -q '^kcqrs ' <<<"$version" || { echo "FAIL: kcqrs version: $version"; exit 1; }

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi

expected='page.welcomes: welcome, ada
page.welcomes: welcome, bob
page.visits: ada visited 1 times
page.visits: bob visited 1 times
page.visits: ada visited 2 times
store visits: ada=2'

check() {  # check NAME BINARY
  local out
  out=$("$2" "$example/topology.yaml" --test-driver)
  if [[ $out != "$expected" ]]; then
    printf 'FAIL: %s printed\n%s\nexpected\n%s\n' "$1" "$out" "$expected"
    exit 1
  fi
  echo "ok: $1"
}

# 1. find_package(kcqrs), from the installed prefix only.
cmake -S "$example" -B "$work/cmake-build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
  "${launcher[@]}" >"$work/cmake-configure.log"
cmake --build "$work/cmake-build" >"$work/cmake-build.log" \
  || { cat "$work/cmake-build.log"; exit 1; }
check "find_package(kcqrs) build" "$work/cmake-build/kcqrs_embedded"

# 2. pkg-config, through the example's own Makefile.
mkdir -p "$work/pkg-config-build"
PKG_CONFIG_PATH=$prefix/lib/pkgconfig make -s -C "$work/pkg-config-build" \
  -f "$example/Makefile" VPATH="$example" CXX="$cxx" >"$work/pkg-config-build.log" 2>&1 \
  || { cat "$work/pkg-config-build.log"; exit 1; }
check "pkg-config build" "$work/pkg-config-build/kcqrs_embedded"

# 3. Position-independent code: every kcqrs module, Lua and libmpdec,
# whole, linked into a shared library (a link error names any member
# compiled without -fPIC); then the installed libkcqrs.a, the same
# archives merged, whole into another.
shopt -s nullglob
modules=("$build"/lib/libkcqrs_*.a)
(( ${#modules[@]} > 10 )) || { echo "FAIL: expected the module archives in $build/lib"; exit 1; }
"$cxx" -shared -o "$work/libmodules.so" -Wl,--whole-archive "${modules[@]}" \
  -Wl,--no-whole-archive >"$work/shared.log" 2>&1 \
  || { grep -m5 -i "fPIC\|relocation" "$work/shared.log"; echo "FAIL: not position-independent"; exit 1; }
echo "ok: every kcqrs module links into a shared library"

# 4. The whole engine as one shared library: the installed libkcqrs.a,
# whole, into libkcqrs.so with what it needs from the system (kcqrs.pc's
# Libs, less -lkcqrs), and the example linked to that .so, not the archive.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
system_libs=()
for f in $(pkg-config --libs kcqrs); do
  [[ $f == -lkcqrs || $f == -L* ]] || system_libs+=("$f")
done
mkdir -p "$work/shared"
"$cxx" -shared -o "$work/shared/libkcqrs.so" -Wl,--whole-archive "$prefix/lib/libkcqrs.a" \
  -Wl,--no-whole-archive "${system_libs[@]}" -Wl,--no-undefined >"$work/shared.log" 2>&1 \
  || { head -20 "$work/shared.log"; echo "FAIL: libkcqrs.a does not make a shared library"; exit 1; }
# shellcheck disable=SC2046  # the flags are words
"$cxx" $(pkg-config --cflags kcqrs) -o "$work/shared/kcqrs_embedded" "$example/main.cc" \
  -L"$work/shared" -lkcqrs -Wl,-rpath,"$work/shared" "${system_libs[@]}" \
  >"$work/shared-example.log" 2>&1 \
  || { head -20 "$work/shared-example.log"; echo "FAIL: the example does not link to libkcqrs.so"; exit 1; }
loaded=$(ldd "$work/shared/kcqrs_embedded")
grep -qF "libkcqrs.so => $work/shared/libkcqrs.so" <<<"$loaded" \
  || { echo "$loaded"; echo "FAIL: the example does not load libkcqrs.so"; exit 1; }
check "libkcqrs.so build" "$work/shared/kcqrs_embedded"

# What was installed is large in a sanitizer build; keep the logs only.
rm -rf "$prefix" "$work/cmake-build" "$work/pkg-config-build" "$work/libmodules.so" "$work/shared"
