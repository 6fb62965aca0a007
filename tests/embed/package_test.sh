#!/bin/bash
# `make package` gives a Debian package that installs and runs: builds it
# with CPack from this build tree, checks its control data (name, version,
# dpkg-shlibdeps' Depends, all of them satisfiable here: `dpkg --no-act`
# installs nothing but refuses unmet dependencies) and its files, then
# unpacks it and runs the packaged binary: `kcqrs version`, and `kcqrs
# validate` of the packaged orders example.
#
# Usage: package_test.sh BUILD_DIR WORK_DIR
set -euo pipefail
build=$1 work=$2

rm -rf "$work"
mkdir -p "$work"
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out") \
  >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; echo "FAIL: cpack"; exit 1; }
debs=("$work"/out/kcqrs_*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || { ls -R "$work/out"; echo "FAIL: no one kcqrs_*.deb"; exit 1; }
deb=${debs[0]}

field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == kcqrs ]] || { echo "FAIL: Package is '$(field Package)'"; exit 1; }
version=$(field Version)
[[ -n $version ]] || { echo "FAIL: no Version"; exit 1; }
depends=$(field Depends)
# RocksDB is its shared library's package, or, when the binary holds its
# static archive (KCQRS_STATIC_ROCKSDB, on in `make build`), the packages of
# the compression libraries the archive links.
if grep -q '^KCQRS_STATIC_ROCKSDB:BOOL=ON' "$build/CMakeCache.txt"; then
  rocksdb=(libsnappy liblz4 libzstd)
  if grep -q librocksdb <<<"$depends"; then
    echo "FAIL: RocksDB is linked statically, yet Depends names it: $depends"; exit 1
  fi
else
  rocksdb=(librocksdb)
fi
for lib in librdkafka "${rocksdb[@]}" libyaml-cpp libssl; do
  grep -q "$lib" <<<"$depends" || { echo "FAIL: Depends lacks $lib: $depends"; exit 1; }
done
# Installable here: every dependency is met (nothing is installed).
dpkg --no-act --force-not-root --admindir=/var/lib/dpkg -i "$deb" >"$work/dpkg.log" 2>&1 ||
  { cat "$work/dpkg.log"; echo "FAIL: dpkg refuses the package"; exit 1; }

contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/kcqrs ./usr/share/kcqrs/examples/orders/topology.yaml; do
  grep -q " $f\$" <<<"$contents" || { echo "FAIL: the package lacks $f"; echo "$contents"; exit 1; }
done
if grep -q "include/kcqrs\|libkcqrs.a" <<<"$contents"; then
  echo "FAIL: development files in the runtime package"; exit 1
fi

root=$work/root
dpkg-deb -x "$deb" "$root"
out=$("$root/usr/bin/kcqrs" version)
[[ $out == "kcqrs $version" ]] || { echo "FAIL: kcqrs version says '$out', the package $version"; exit 1; }
out=$("$root/usr/bin/kcqrs" validate "$root/usr/share/kcqrs/examples/orders/topology.yaml")
grep -q ": OK (application orders" <<<"$out" || { echo "FAIL: kcqrs validate: $out"; exit 1; }
echo "package_test: $(basename "$deb") ($(du -h "$deb" | cut -f1)), Depends: $depends"
rm -rf "$root"
