# state/: checkpoints, the KeyValueStore contract over every store
# implementation, TaskState transactions, and RocksDB durability. RocksDB is
# linked directly only so that tests can damage databases on purpose.
kcqrs_test(state_test
  SOURCES state/checkpoint_test.cc
          state/key_value_store_contract_test.cc
          state/task_state_test.cc
          state/rocksdb_task_storage_test.cc
          state/value_cache_test.cc
          state/write_buffer_test.cc
  LIBS kcqrs_state ${KCQRS_ROCKSDB_TARGET})

# The process that rocksdb_task_storage_test.cc kills with SIGKILL mid-task.
add_executable(state_crash_child state/crash_child_main.cc)
target_link_libraries(state_crash_child PRIVATE kcqrs_state)
target_include_directories(state_crash_child PRIVATE ${KCQRS_SOURCE_ROOT})
add_dependencies(state_test state_crash_child)
target_compile_definitions(state_test PRIVATE
  KCQRS_STATE_CRASH_CHILD="$<TARGET_FILE:state_crash_child>")
