kcqrs_test(json_document_test
  SOURCES json/document_test.cc
  LIBS kcqrs_json)
