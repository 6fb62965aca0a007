# engine/kafka's tests. Included from tests/CMakeLists.txt.
kcqrs_test(kafka_error_test
  SOURCES kafka/kafka_error_test.cc
  LIBS kcqrs_kafka)
kcqrs_test(kafka_client_test
  SOURCES kafka/kafka_client_test.cc
  LIBS kcqrs_kafka)
kcqrs_test(kafka_transactions_integration_test
  SOURCES kafka/kafka_transactions_integration_test.cc
  LIBS kcqrs_kafka
  INTEGRATION)
