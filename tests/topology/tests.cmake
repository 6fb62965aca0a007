kcqrs_test(expression_test
  SOURCES topology/expression_test.cc
          topology/template_test.cc
          topology/expression_property_test.cc
  LIBS kcqrs_topology)
