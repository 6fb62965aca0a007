# deploy/compose.yaml and deploy/k8s/ cannot run here (no Docker, no
# Kubernetes): they are read and cross-checked against the code instead
# (ports, probe and metrics paths against the routes the engine registers,
# state directories on volumes, the topology `kcqrs validate` accepts with
# each instance's own --set overrides). Debian's python3 with python3-yaml.
add_test(NAME deploy_manifests_test
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/deploy/check_deploy.py
                 ${KCQRS_SOURCE_ROOT} $<TARGET_FILE:kcqrs>)
# The check itself fails on copies of deploy/ broken one way at a time (a
# wrong probe path, port, shared state volume, ...).
add_test(NAME deploy_manifests_self_test
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/deploy/check_deploy.py
                 --self-test ${KCQRS_SOURCE_ROOT} $<TARGET_FILE:kcqrs>)
set_tests_properties(deploy_manifests_test deploy_manifests_self_test PROPERTIES
                     LABELS unit TIMEOUT 120)
