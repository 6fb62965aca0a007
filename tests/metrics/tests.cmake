# engine/metrics: the registry, its exposition, and promtool's verdict on it.
# The promtool test fails (does not skip) when promtool is missing: it comes
# with Debian's prometheus package, which scripts/setup installs.
kcqrs_test(metrics_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/metrics_test.cc
  LIBS kcqrs_metrics)
