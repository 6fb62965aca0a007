# engine/http: the HTTP server, exercised over loopback.
kcqrs_test(http_server_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/server_test.cc
  LIBS kcqrs_http Boost::headers nlohmann_json::nlohmann_json)
