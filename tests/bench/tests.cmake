# The benchmark harness's model of the workloads (bench/tools/workloads.cc),
# checked on its own and against the engine. Built from source here because
# `make test` builds without bench/.
add_library(kbench_workloads_for_tests STATIC ${KCQRS_SOURCE_ROOT}/bench/tools/workloads.cc)
target_include_directories(kbench_workloads_for_tests PUBLIC ${KCQRS_SOURCE_ROOT}/bench/tools)
target_link_libraries(kbench_workloads_for_tests PUBLIC nlohmann_json::nlohmann_json)
kcqrs_test(kbench_workloads_test SOURCES ${KCQRS_SOURCE_ROOT}/bench/tools/workloads_test.cc
           LIBS kbench_workloads_for_tests)
kcqrs_test(orders_contract_test SOURCES bench/orders_contract_test.cc
           LIBS kbench_workloads_for_tests kcqrs_engine kcqrs_config)
target_compile_definitions(orders_contract_test PRIVATE KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")
