# Embedding kcqrs (docs/embedding.md, issue 14): the public API an embedder
# calls, and the installed package it builds against.
kcqrs_test(topology_file_test SOURCES embed/topology_file_test.cc LIBS kcqrs_config)
kcqrs_test(embedding_test SOURCES embed/embedding_test.cc
           LIBS kcqrs_engine kcqrs_config spdlog::spdlog nlohmann_json::nlohmann_json)

# `cmake --install` into a fresh prefix, then examples/embedded built against
# it alone (find_package, pkg-config, a shared library) and run. Not under
# ThreadSanitizer or the fuzz build: their libraries need runtime shims
# (kcqrs_tsan_c11) and link flags an installed package does not carry.
if(NOT KCQRS_TSAN AND NOT KCQRS_FUZZ)
  add_test(NAME install_test
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/embed/install_test.sh
                   ${CMAKE_BINARY_DIR} ${KCQRS_SOURCE_ROOT} ${CMAKE_BINARY_DIR}/install-test
                   ${CMAKE_CXX_COMPILER} ${CMAKE_C_COMPILER})
  # Both this and package_test install from the build tree (cpack runs an
  # install too, and each writes the tree's install_manifest.txt): one at
  # a time under ctest -j.
  set_tests_properties(install_test PROPERTIES LABELS unit TIMEOUT 600
                       RESOURCE_LOCK build_tree_install)
endif()

# `make package`: the Debian package built by CPack from this tree, its
# control data and files, and the packaged binary run (version, validate).
if(NOT KCQRS_TSAN AND NOT KCQRS_FUZZ)
  add_test(NAME package_test
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/embed/package_test.sh
                   ${CMAKE_BINARY_DIR} ${CMAKE_BINARY_DIR}/package-test)
  set_tests_properties(package_test PROPERTIES LABELS unit TIMEOUT 600
                       RESOURCE_LOCK build_tree_install)
endif()
