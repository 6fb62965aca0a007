# deploy/: the Grafana dashboard and the Prometheus alerting rules operators
# import. promtool comes with Debian's prometheus package (scripts/setup);
# the tests fail, not skip, when it is missing.
set(KCQRS_DEPLOY_DIR ${KCQRS_SOURCE_ROOT}/deploy)

# The rules load (syntax, PromQL, templates) and lint clean.
add_test(NAME alerts_promtool_check
         COMMAND promtool check rules ${KCQRS_DEPLOY_DIR}/prometheus/alerts.yml)
# Every alert fires when it should and stays silent when it should not.
add_test(NAME alerts_promtool_test
         COMMAND promtool test rules ${KCQRS_DEPLOY_DIR}/prometheus/alerts_test.yml
         WORKING_DIRECTORY ${KCQRS_DEPLOY_DIR}/prometheus)
set_tests_properties(alerts_promtool_check alerts_promtool_test PROPERTIES LABELS unit TIMEOUT 60)

# The dashboard names only metrics of docs/metrics.md, and docs/metrics.md
# lists exactly the metrics engine/metrics registers, with their types and
# labels; every panel expression parses as PromQL (promtool).
add_test(NAME dashboard_metrics_test
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/check_dashboard.py
                 ${KCQRS_SOURCE_ROOT} promtool)
set_tests_properties(dashboard_metrics_test PROPERTIES LABELS unit TIMEOUT 60)

# What promtool does not check: every alert has a severity, a summary, a
# description and a runbook hint, names documented metrics only, is tested
# both firing and silent, and is described in deploy/README.md.
add_test(NAME alerts_complete_test
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/check_alerts.py ${KCQRS_SOURCE_ROOT})
set_tests_properties(alerts_complete_test PROPERTIES LABELS unit TIMEOUT 60)
