kcqrs_test(lua_runtime_test SOURCES lua/runtime_test.cc LIBS kcqrs_lua)
