kcqrs_test(orders_rules_test SOURCES engine/orders_rules_test.cc
           LIBS kcqrs_engine kcqrs_config nlohmann_json::nlohmann_json)
target_compile_definitions(orders_rules_test PRIVATE KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")
kcqrs_test(compiled_topology_test SOURCES engine/compiled_topology_test.cc
           LIBS kcqrs_engine kcqrs_config kcqrs_topology nlohmann_json::nlohmann_json)
target_include_directories(compiled_topology_test PRIVATE ${KCQRS_SOURCE_ROOT})
kcqrs_test(partitioner_test SOURCES engine/partitioner_test.cc)
kcqrs_test(custom_processor_test SOURCES engine/custom_processor_test.cc
           LIBS kcqrs_engine kcqrs_config)
kcqrs_test(processor_forward_test SOURCES engine/processor_forward_test.cc
           LIBS kcqrs_engine kcqrs_config)
target_include_directories(processor_forward_test PRIVATE ${KCQRS_SOURCE_ROOT})
kcqrs_test(describe_test SOURCES engine/describe_test.cc
           LIBS kcqrs_engine kcqrs_config nlohmann_json::nlohmann_json)
target_compile_definitions(describe_test PRIVATE KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")
kcqrs_test(transform_test SOURCES engine/transform_test.cc
           LIBS kcqrs_engine kcqrs_config nlohmann_json::nlohmann_json)
kcqrs_test(json_codec_test SOURCES engine/json_codec_test.cc
           LIBS kcqrs_engine nlohmann_json::nlohmann_json)
kcqrs_test(aggregate_document_test SOURCES engine/aggregate_document_test.cc
           LIBS kcqrs_engine nlohmann_json::nlohmann_json)
kcqrs_test(update_rules_test SOURCES engine/update_rules_test.cc
           LIBS kcqrs_engine nlohmann_json::nlohmann_json)
kcqrs_test(hardening_test SOURCES engine/hardening_test.cc
           LIBS kcqrs_engine kcqrs_config)
kcqrs_test(state_directory_test SOURCES engine/state_directory_test.cc LIBS kcqrs_engine)
kcqrs_test(application_reset_test SOURCES engine/application_reset_test.cc LIBS kcqrs_engine)
kcqrs_test(stream_thread_test SOURCES engine/stream_thread_test.cc
           LIBS kcqrs_engine kcqrs_config nlohmann_json::nlohmann_json)
target_compile_definitions(stream_thread_test PRIVATE KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")
target_include_directories(stream_thread_test PRIVATE ${KCQRS_SOURCE_ROOT})
kcqrs_test(client_configs_test SOURCES engine/client_configs_test.cc LIBS kcqrs_engine)
kcqrs_test(command_handler_test SOURCES engine/command_handler_test.cc
           LIBS kcqrs_engine kcqrs_config nlohmann_json::nlohmann_json)
kcqrs_test(instance_metadata_test SOURCES engine/instance_metadata_test.cc
           LIBS kcqrs_engine)
kcqrs_test(standby_assignor_test SOURCES engine/standby_assignor_test.cc LIBS kcqrs_engine)
kcqrs_test(dead_letter_log_test SOURCES engine/dead_letter_log_test.cc LIBS kcqrs_engine)
# The shop example's aggregates and its `checkout` process manager (issue 13).
kcqrs_test(shop_rules_test SOURCES engine/shop_rules_test.cc
           LIBS kcqrs_engine kcqrs_config nlohmann_json::nlohmann_json)
target_compile_definitions(shop_rules_test PRIVATE KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")
kcqrs_test(process_manager_test SOURCES engine/process_manager_test.cc
           LIBS kcqrs_engine kcqrs_config nlohmann_json::nlohmann_json)
# What a keyed projection's repartition topic carries of each event (issue 11).
kcqrs_test(repartition_test SOURCES engine/repartition_test.cc
           LIBS kcqrs_engine kcqrs_config nlohmann_json::nlohmann_json)
kcqrs_test(headers_read_test SOURCES engine/headers_read_test.cc
           LIBS kcqrs_engine kcqrs_config)
target_include_directories(headers_read_test PRIVATE ${KCQRS_SOURCE_ROOT})
