kcqrs_test(kcqrs_cli_test SOURCES app/kcqrs_cli_test.cc LIBS kcqrs_kafka)
target_compile_definitions(kcqrs_cli_test PRIVATE
  KCQRS_BINARY="$<TARGET_FILE:kcqrs>"
  KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")
add_dependencies(kcqrs_cli_test kcqrs)
# `kcqrs describe --format json` is parsed as JSON.
target_link_libraries(kcqrs_cli_test PRIVATE nlohmann_json::nlohmann_json)

# The web page at GET / rendered by Debian's headless Chromium (scripts/setup
# installs it; the test fails, never skips, without it) against fake data
# endpoints. KCQRS_UI_SCREENSHOT=1 also writes docs/ui.png (=PATH: there).
kcqrs_test(ui_page_test SOURCES app/ui_page_test.cc
           LIBS kcqrs_engine kcqrs_http kcqrs_config nlohmann_json::nlohmann_json)
target_compile_definitions(ui_page_test PRIVATE
  KCQRS_CHROMIUM="/usr/bin/chromium"
  KCQRS_DOCS_DIR="${KCQRS_SOURCE_ROOT}/docs"
  KCQRS_SOURCE_DIR="${KCQRS_SOURCE_ROOT}")
