kcqrs_test(lua_runtime_test SOURCES lua/runtime_test.cc LIBS kcqrs_lua)
# Differential test of the budgeted pattern matcher against Lua's own.
kcqrs_test(lua_pattern_test SOURCES lua/pattern_test.cc LIBS kcqrs_lua PkgConfig::LUA)
