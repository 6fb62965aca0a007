# `make package`: a Debian package of the kcqrs binary (CPack's DEB
# generator), for machines that run kcqrs without building it.
#
# It holds the `runtime` component of cmake/install.cmake: /usr/bin/kcqrs
# (stripped) and the example topologies under /usr/share/kcqrs/examples. Its
# Depends come from dpkg-shlibdeps, i.e. from the shared libraries the
# binary really links (librdkafka, RocksDB, yaml-cpp, prometheus-cpp,
# OpenSSL, ...), at the versions of the Debian it was built on, so it
# installs with apt on that release. Headers and libkcqrs.a for embedders
# stay with `cmake --install` (docs/embedding.md).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME kcqrs)
set(CPACK_PACKAGE_VENDOR "kcqrs")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "CQRS on Apache Kafka: commands in, events out, read models over HTTP, exactly once")
set(CPACK_PACKAGE_INSTALL_DIRECTORY kcqrs)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_DEBIAN_PACKAGE_NAME kcqrs)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "kcqrs developers <kcqrs@localhost>")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "A stateful stream-processing engine for CQRS on Apache Kafka.\n\
Run `kcqrs run topology.yaml`: command handlers decide against aggregate\n\
state, projections fold events into RocksDB read models served over HTTP,\n\
Kafka transactions keep it exactly once. Examples in /usr/share/kcqrs/examples.")
# gzip: xz takes minutes on a binary of this size, for a few MB less.
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
include(CPack)
