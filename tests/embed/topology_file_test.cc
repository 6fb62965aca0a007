// include/kcqrs/topology_file.h: the YAML loader an embedder calls, with
// the same errors (file:line:col) as `kcqrs validate`.
#include "kcqrs/topology_file.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace kcqrs {
namespace {

TEST(TopologyFileTest, LoadsAStringIntoEngineOptions) {
  TopologyFileOptions options;
  options.getenv = [](const std::string& name) -> std::optional<std::string> {
    if (name == "BOOTSTRAP") return "broker:9092";
    return std::nullopt;
  };
  options.overrides = {"application.id=renamed"};
  auto loaded = LoadTopologyString(R"(application:
  id: audit
kafka:
  bootstrap_servers: ${BOOTSTRAP}
)",
                                   "audit.yaml", options);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->application.id, "renamed");
  ASSERT_EQ(loaded->kafka.bootstrap_servers.size(), 1u);
  EXPECT_EQ(loaded->kafka.bootstrap_servers[0], "broker:9092");
}

TEST(TopologyFileTest, ErrorsSayFileLineAndColumn) {
  std::vector<TopologyFileError> errors;
  auto loaded = LoadTopologyString(
      "application:\n  id: audit\n  idd: typo\nkafka:\n  bootstrap_servers: embedded\n",
      "audit.yaml", {}, &errors);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), Status::Code::kInvalidArgument);
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].source, "audit.yaml");
  EXPECT_EQ(errors[0].line, 3);
  EXPECT_EQ(errors[0].column, 3);
  EXPECT_EQ(errors[0].ToString().rfind("audit.yaml:3:3: ", 0), 0u) << errors[0].ToString();
  EXPECT_NE(loaded.status().message().find("audit.yaml:3:3: "), std::string::npos)
      << loaded.status().message();
}

TEST(TopologyFileTest, LoadsAFileAndNamesAMissingOne) {
  std::string path = ::testing::TempDir() + "topology_file_test.yaml";
  {
    std::ofstream out(path);
    out << "application:\n  id: from-file\nkafka:\n  bootstrap_servers: embedded\n";
  }
  auto loaded = LoadTopologyFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->application.id, "from-file");
  std::remove(path.c_str());

  auto missing = LoadTopologyFile(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(path), std::string::npos)
      << missing.status().message();
}

}  // namespace
}  // namespace kcqrs

namespace kcqrs {
namespace {

// http.enabled (issue 14): an embedder may run without the HTTP server.
TEST(TopologyFileTest, HttpEnabledIsTrueOrFalse) {
  constexpr char kBase[] = "application:\n  id: a\nkafka:\n  bootstrap_servers: embedded\n";
  auto defaults = LoadTopologyString(kBase, "a.yaml");
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_TRUE(defaults->http.enabled);
  auto off = LoadTopologyString(std::string(kBase) + "http:\n  enabled: false\n", "a.yaml");
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_FALSE(off->http.enabled);
  auto bad = LoadTopologyString(std::string(kBase) + "http:\n  enabled: maybe\n", "a.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(
                "a.yaml:6:12: http.enabled: expected true or false, found 'maybe'"),
            std::string::npos)
      << bad.status().message();
}

}  // namespace
}  // namespace kcqrs
