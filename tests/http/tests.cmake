# engine/http: the HTTP server, exercised over loopback.
kcqrs_test(http_server_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/server_test.cc
  LIBS kcqrs_http Boost::headers nlohmann_json::nlohmann_json)

# HttpApi's answers over a fake engine and the embedded mock cluster.
kcqrs_test(http_api_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_api_test.cc
  LIBS kcqrs_engine kcqrs_http kcqrs_kafka kcqrs_config kcqrs_metrics nlohmann_json::nlohmann_json)

# PositionLog: read-your-writes across hops made here and elsewhere.
kcqrs_test(position_log_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/position_log_test.cc
  LIBS kcqrs_serving)

# http::Client against the server (and raw sockets) on loopback.
kcqrs_test(http_client_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/client_test.cc
  LIBS kcqrs_http)

# Any instance answers any query: three HttpApi instances on loopback over
# fake engines and one fake InstanceDirectory.
kcqrs_test(http_routing_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/routing_test.cc
  LIBS kcqrs_engine kcqrs_http kcqrs_kafka kcqrs_config kcqrs_metrics nlohmann_json::nlohmann_json)

# HTTPS and mTLS with certificates made for the run (openssl), checked with
# the real curl binary and with http::Client.
kcqrs_test(http_tls_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tls_test.cc
  LIBS kcqrs_http)
