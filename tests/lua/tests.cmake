kcqrs_test(lua_runtime_test SOURCES lua/runtime_test.cc LIBS kcqrs_lua)
# Differential test of the budgeted pattern matcher against Lua's own
# lstrlib.c (the same source kcqrs_lua links, third_party/lua).
kcqrs_test(lua_pattern_test SOURCES lua/pattern_test.cc LIBS kcqrs_lua kcqrs_lua_vm)
