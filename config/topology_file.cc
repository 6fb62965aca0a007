// include/kcqrs/topology_file.h: the public face of config_loader.h. The
// public types mirror config::ConfigError and config::LoadOptions so that
// config/ can change its internals without breaking embedders.
#include "kcqrs/topology_file.h"

#include <utility>

#include "config/config_loader.h"

namespace kcqrs {
namespace {

config::LoadOptions ToLoadOptions(const TopologyFileOptions& options) {
  config::LoadOptions load;
  load.overrides = options.overrides;
  load.getenv = options.getenv;
  return load;
}

void CopyErrors(std::vector<config::ConfigError>& from, std::vector<TopologyFileError>* to) {
  if (to == nullptr) return;
  to->clear();
  for (auto& e : from) {
    to->push_back(TopologyFileError{std::move(e.source), e.line, e.column, std::move(e.message)});
  }
}

}  // namespace

std::string TopologyFileError::ToString() const {
  return config::ConfigError{source, line, column, message}.ToString();
}

Result<EngineOptions> LoadTopologyFile(const std::string& path,
                                       const TopologyFileOptions& options,
                                       std::vector<TopologyFileError>* errors) {
  std::vector<config::ConfigError> found;
  auto result = config::LoadEngineOptionsFromFile(path, ToLoadOptions(options), &found);
  CopyErrors(found, errors);
  return result;
}

Result<EngineOptions> LoadTopologyString(const std::string& yaml, const std::string& source,
                                         const TopologyFileOptions& options,
                                         std::vector<TopologyFileError>* errors) {
  std::vector<config::ConfigError> found;
  auto result =
      config::LoadEngineOptionsFromString(yaml, source, ToLoadOptions(options), &found);
  CopyErrors(found, errors);
  return result;
}

}  // namespace kcqrs
