# The engine on the real broker (the "kafka" CTest fixture starts it).
kcqrs_test(orders_engine_integration_test SOURCES integration/orders_engine_test.cc
           LIBS kcqrs_engine kcqrs_config kcqrs_kafka nlohmann_json::nlohmann_json INTEGRATION)
target_compile_definitions(orders_engine_integration_test PRIVATE
  KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")

kcqrs_test(kill9_integration_test SOURCES integration/kill9_test.cc
           LIBS kcqrs_engine kcqrs_config kcqrs_kafka nlohmann_json::nlohmann_json INTEGRATION)
target_compile_definitions(kill9_integration_test PRIVATE
  KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}" KCQRS_BINARY="$<TARGET_FILE:kcqrs>")
add_dependencies(kill9_integration_test kcqrs)

kcqrs_test(resilience_integration_test SOURCES integration/resilience_test.cc
           LIBS kcqrs_engine kcqrs_config kcqrs_kafka nlohmann_json::nlohmann_json INTEGRATION)
target_compile_definitions(resilience_integration_test PRIVATE
  KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")

kcqrs_test(http_api_integration_test SOURCES integration/http_api_test.cc
           LIBS kcqrs_engine kcqrs_config kcqrs_kafka nlohmann_json::nlohmann_json INTEGRATION)
target_compile_definitions(http_api_integration_test PRIVATE
  KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")

kcqrs_test(fault_injection_integration_test SOURCES integration/fault_injection_test.cc
           LIBS kcqrs_engine kcqrs_config kcqrs_kafka nlohmann_json::nlohmann_json INTEGRATION)
target_compile_definitions(fault_injection_integration_test PRIVATE
  KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")
