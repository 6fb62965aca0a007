kcqrs_test(kcqrs_cli_test SOURCES app/kcqrs_cli_test.cc LIBS kcqrs_kafka)
target_compile_definitions(kcqrs_cli_test PRIVATE
  KCQRS_BINARY="$<TARGET_FILE:kcqrs>"
  KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")
add_dependencies(kcqrs_cli_test kcqrs)
