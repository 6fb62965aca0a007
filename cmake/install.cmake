# `cmake --install`: what an embedder (and a package) needs, and nothing of
# the build tree (docs/embedding.md).
#
#   bin/kcqrs                            the binary
#   include/kcqrs/...                    the public API, standard library only
#   lib/libkcqrs.a                       every kcqrs module, Lua and libmpdec
#   lib/cmake/kcqrs/kcqrsConfig.cmake    find_package(kcqrs): kcqrs::kcqrs
#   lib/pkgconfig/kcqrs.pc               pkg-config --cflags --libs kcqrs
#
# Why one archive: the modules are a layered set of static libraries
# (engine/CMakeLists.txt) with their own order and two vendored C libraries
# built in the build tree (third_party/lua, third_party/mpdecimal). An
# embedder should not have to know that order (`-lkcqrs_engine` alone left
# 406 undefined references), so, as RocksDB ships one librocksdb.a, the
# modules are merged into one libkcqrs.a; the linker resolves references
# between members of one archive in any order. What it still needs from the
# system (librdkafka, RocksDB, yaml-cpp, prometheus-cpp, spdlog, fmt,
# threads) comes with the imported target and with kcqrs.pc.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Every kcqrs library the engine and the YAML loader link, found by walking
# their link interfaces, so a new module is merged without a list to keep.
# Third-party targets (not named kcqrs_*) are not ours to merge.
function(kcqrs_collect_static_libraries out)
  set(seen "")
  set(queue ${ARGN})
  set(archives "")
  while(queue)
    list(POP_FRONT queue target)
    if(target IN_LIST seen OR NOT TARGET ${target})
      continue()
    endif()
    list(APPEND seen ${target})
    get_target_property(type ${target} TYPE)
    get_target_property(imported ${target} IMPORTED)
    if(type STREQUAL "STATIC_LIBRARY")
      list(APPEND archives "$<TARGET_FILE:${target}>")
    endif()
    set(links "")
    foreach(property INTERFACE_LINK_LIBRARIES LINK_LIBRARIES)
      if(imported AND property STREQUAL "LINK_LIBRARIES")
        continue()
      endif()
      get_target_property(value ${target} ${property})
      if(value)
        list(APPEND links ${value})
      endif()
    endforeach()
    foreach(link IN LISTS links)
      string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" link "${link}")
      if(link MATCHES "^kcqrs_" AND NOT link STREQUAL "kcqrs_tsan_c11")
        list(APPEND queue ${link})
      endif()
    endforeach()
  endwhile()
  set(${out} ${archives} PARENT_SCOPE)
  set(${out}_TARGETS ${seen} PARENT_SCOPE)
endfunction()

kcqrs_collect_static_libraries(_kcqrs_archives kcqrs_engine kcqrs_config)

# GNU ar's MRI script merges archives member by member (file(GENERATE)
# resolves the target file names at generate time).
set(_kcqrs_merged ${CMAKE_ARCHIVE_OUTPUT_DIRECTORY}/libkcqrs.a)
set(_kcqrs_mri "CREATE ${_kcqrs_merged}\n")
foreach(archive IN LISTS _kcqrs_archives)
  string(APPEND _kcqrs_mri "ADDLIB ${archive}\n")
endforeach()
string(APPEND _kcqrs_mri "SAVE\nEND\n")
file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/kcqrs_merge.mri CONTENT "${_kcqrs_mri}")
# Every library is position-independent (-fPIC), so that an embedder can
# link libkcqrs.a into a shared library of its own. Set per library rather
# than with CMAKE_POSITION_INDEPENDENT_CODE, which would also add -fPIE to
# every executable: Debian's GCC builds them as PIE already, and the changed
# command line would only cost every test a recompile.
set(_kcqrs_archive_deps "")
foreach(target IN LISTS _kcqrs_archives_TARGETS)
  get_target_property(imported ${target} IMPORTED)
  get_target_property(type ${target} TYPE)
  if(NOT imported AND type STREQUAL "STATIC_LIBRARY")
    list(APPEND _kcqrs_archive_deps ${target})
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  endif()
endforeach()
add_custom_command(
  OUTPUT ${_kcqrs_merged}
  COMMAND ${CMAKE_COMMAND} -E rm -f ${_kcqrs_merged}
  COMMAND sh -c "\"$0\" -M < \"$1\"" ${CMAKE_AR} ${CMAKE_BINARY_DIR}/kcqrs_merge.mri
  DEPENDS ${_kcqrs_archive_deps} ${CMAKE_BINARY_DIR}/kcqrs_merge.mri
  COMMENT "Merging the kcqrs libraries into libkcqrs.a"
  VERBATIM)
add_custom_target(kcqrs_merged_library ALL DEPENDS ${_kcqrs_merged})

# What the library needs from the system, for kcqrsConfig.cmake and kcqrs.pc.
# A package built with the sanitizers (KCQRS_SANITIZE) needs them at link
# time too.
set(KCQRS_INSTALL_LINK_OPTIONS "")
if(KCQRS_SANITIZE)
  set(KCQRS_INSTALL_LINK_OPTIONS "-fsanitize=address,undefined")
elseif(KCQRS_TSAN)
  set(KCQRS_INSTALL_LINK_OPTIONS "-fsanitize=thread")
endif()

# Two components: `runtime` (the binary and the example topologies, what
# the Debian package of `make package` holds: cmake/package.cmake) and
# `development` (headers, library, CMake and pkg-config files). A plain
# `cmake --install` installs both.
install(FILES ${_kcqrs_merged} DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/kcqrs
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development
        FILES_MATCHING PATTERN "*.h")
install(TARGETS kcqrs RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
foreach(_kcqrs_example orders bank shop)
  install(FILES ${CMAKE_SOURCE_DIR}/examples/${_kcqrs_example}/topology.yaml
          DESTINATION ${CMAKE_INSTALL_DATADIR}/kcqrs/examples/${_kcqrs_example}
          COMPONENT runtime)
endforeach()

set(_kcqrs_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/kcqrs)
configure_package_config_file(
  ${CMAKE_SOURCE_DIR}/cmake/kcqrsConfig.cmake.in
  ${CMAKE_BINARY_DIR}/kcqrsConfig.cmake
  INSTALL_DESTINATION ${_kcqrs_cmake_dir}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
write_basic_package_version_file(
  ${CMAKE_BINARY_DIR}/kcqrsConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/kcqrsConfig.cmake
              ${CMAKE_BINARY_DIR}/kcqrsConfigVersion.cmake
        DESTINATION ${_kcqrs_cmake_dir} COMPONENT development)

# kcqrs.pc: ${pcfiledir}-relative, so the installed tree can be moved.
# The libraries of the system packages go into Libs themselves, not into
# Requires: `pkg-config --static` would add their Libs.private (librdkafka's
# -lsasl2, -lssl, ...), which only a static librdkafka needs, and kcqrs
# links the shared one. kcqrs's headers need none of their Cflags.
pkg_check_modules(KCQRS_PC_DEPS REQUIRED QUIET
                  rdkafka rocksdb yaml-cpp prometheus-cpp-core spdlog fmt libssl libcrypto)
list(REMOVE_DUPLICATES KCQRS_PC_DEPS_LDFLAGS)
list(JOIN KCQRS_PC_DEPS_LDFLAGS " " _kcqrs_pc_dep_libs)
set(KCQRS_PC_LIBS_EXTRA "${_kcqrs_pc_dep_libs} -pthread -ldl -lm ${KCQRS_INSTALL_LINK_OPTIONS}")
file(RELATIVE_PATH KCQRS_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" KCQRS_PC_TO_PREFIX "${KCQRS_PC_TO_PREFIX}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/kcqrs.pc.in ${CMAKE_BINARY_DIR}/kcqrs.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/kcqrs.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT development)
