kcqrs_test(config_loader_test SOURCES config/config_loader_test.cc LIBS kcqrs_config)
# Warnings about event types emitted and never handled, or the reverse.
kcqrs_test(topology_lint_test SOURCES config/topology_lint_test.cc LIBS kcqrs_config)
target_compile_definitions(topology_lint_test PRIVATE KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")
# process_managers: and processors' timers, read key for key.
kcqrs_test(process_managers_test SOURCES config/process_managers_test.cc LIBS kcqrs_config)
target_compile_definitions(process_managers_test PRIVATE KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")
