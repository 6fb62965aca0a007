#include "config/config_loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <tuple>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "config/topology_reader.h"
#include "config/yaml_errors.h"

namespace kcqrs::config {
namespace {

// Reads typed values out of scalars, interpolating ${VAR:-default} first and
// reporting every problem with its place in the file.
class Reader {
 public:
  Reader(Diagnostics* diag, const LoadOptions& options)
      : diag_(diag), options_(options) {}

  std::optional<std::string> String(const YAML::Node& node,
                                    std::string_view where) {
    if (!diag_->ExpectScalar(node, where)) return std::nullopt;
    return Interpolate(node, where);
  }

  std::optional<int64_t> Int(const YAML::Node& node, std::string_view where,
                             int64_t min, int64_t max) {
    std::optional<std::string> s = String(node, where);
    if (!s) return std::nullopt;
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc() || end != s->data() + s->size()) {
      diag_->Error(node.Mark(), std::string(where) +
                                    ": expected an integer, found '" + *s + "'");
      return std::nullopt;
    }
    if (v < min || v > max) {
      diag_->Error(node.Mark(), std::string(where) + ": expected " +
                                    std::to_string(min) + " to " +
                                    std::to_string(max) + ", found " + *s);
      return std::nullopt;
    }
    return v;
  }

 private:
  std::optional<std::string> Lookup(const std::string& name) {
    if (options_.getenv) return options_.getenv(name);
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  }

  // ${VAR} must be set; ${VAR:-default} falls back when unset or empty, as
  // in the shell; $$ is a literal $.
  std::optional<std::string> Interpolate(const YAML::Node& node,
                                         std::string_view where) {
    const std::string& in = node.Scalar();
    if (in.find('$') == std::string::npos) return in;
    std::string out;
    for (size_t i = 0; i < in.size(); ++i) {
      if (in[i] != '$') {
        out += in[i];
        continue;
      }
      if (i + 1 < in.size() && in[i + 1] == '$') {
        out += '$';
        ++i;
        continue;
      }
      if (i + 1 >= in.size() || in[i + 1] != '{') {
        out += '$';
        continue;
      }
      size_t close = in.find('}', i + 2);
      if (close == std::string::npos) {
        diag_->Error(node.Mark(), std::string(where) + ": '${' without a closing '}' in '" + in + "'");
        return std::nullopt;
      }
      std::string expr = in.substr(i + 2, close - i - 2);
      std::string name = expr;
      std::optional<std::string> fallback;
      if (size_t sep = expr.find(":-"); sep != std::string::npos) {
        name = expr.substr(0, sep);
        fallback = expr.substr(sep + 2);
      }
      std::optional<std::string> value = Lookup(name);
      if (value && value->empty() && fallback) value.reset();
      if (!value) value = fallback;
      if (!value) {
        diag_->Error(node.Mark(),
                     std::string(where) + ": environment variable " + name +
                         " is not set (write ${" + name +
                         ":-default} to give a default)");
        return std::nullopt;
      }
      out += *value;
      i = close;
    }
    return out;
  }

  Diagnostics* diag_;
  const LoadOptions& options_;
};

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 200) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// "path.to.key=value" applied onto the document. The value is parsed with
// its lines numbered from `*first_line` on (past the file's), so that an
// error found in it later names the override rather than a place in the
// file; *first_line moves past it.
void ApplyOverride(YAML::Node root, const std::string& spec, Diagnostics* diag,
                   int* first_line) {
  const std::string source = "--set " + spec;
  size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) {
    diag->ErrorAt(source, "expected path.to.key=value");
    return;
  }
  std::vector<std::string> path;
  std::stringstream keys(spec.substr(0, eq));
  for (std::string part; std::getline(keys, part, '.');) path.push_back(part);
  YAML::Node value;
  const std::string text = spec.substr(eq + 1);
  const std::string before(static_cast<size_t>(*first_line), '\n');
  try {
    value = YAML::Load(before + text);
    // Nothing after '=' is the empty string (with the override's place).
    if (value.IsNull()) value = YAML::Load(before + "''");
  } catch (const YAML::Exception& e) {
    diag->ErrorAt(source, "the value is not valid YAML: " + e.msg);
    return;
  }
  *first_line = diag->AddOverride(
      *first_line, 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n')), source);
  // Walk down, creating maps as needed; yaml-cpp nodes are references, so
  // assigning to the last one changes the document.
  YAML::Node node = root;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    if (path[i].empty()) {
      diag->ErrorAt(source, "empty key in path");
      return;
    }
    YAML::Node child = node[path[i]];
    if (child && !child.IsMap() && !child.IsNull()) {
      diag->ErrorAt(source, "'" + path[i] + "' is " +
                                std::string(KindName(child)) +
                                ", so it has no key '" + path[i + 1] + "'");
      return;
    }
    if (!child || child.IsNull()) node[path[i]] = YAML::Node(YAML::NodeType::Map);
    node.reset(node[path[i]]);
  }
  node[path.back()] = value;
}

void ReadRocksDb(const YAML::Node& n, Reader& r, Diagnostics& d, RocksDbOptions* out) {
  if (!d.ExpectMap(n, "application.rocksdb")) return;
  d.CheckKeys(n, "application.rocksdb",
              {"block_cache_bytes", "memtable_bytes", "write_buffer_bytes",
               "max_unflushed_writes", "compression"});
  struct Size {
    const char* key;
    int64_t min;
    int64_t* field;
  };
  // A block cache or memtable budget below 1 MiB would thrash, not save.
  for (const Size& s : {Size{"block_cache_bytes", int64_t{1} << 20, &out->block_cache_bytes},
                        Size{"memtable_bytes", int64_t{1} << 20, &out->memtable_bytes},
                        Size{"write_buffer_bytes", int64_t{64} << 10, &out->write_buffer_bytes},
                        Size{"max_unflushed_writes", 0, &out->max_unflushed_writes}}) {
    if (!n[s.key]) continue;
    if (auto v = r.Int(n[s.key], std::string("application.rocksdb.") + s.key, s.min,
                       int64_t{1} << 40)) {
      *s.field = *v;
    }
  }
  if (n["compression"]) {
    if (auto c = r.String(n["compression"], "application.rocksdb.compression")) {
      using C = RocksDbOptions::Compression;
      static const std::map<std::string, C> kNames = {
          {"none", C::kNone}, {"snappy", C::kSnappy}, {"lz4", C::kLz4}, {"zstd", C::kZstd}};
      auto it = kNames.find(*c);
      if (it == kNames.end()) {
        d.Error(n["compression"].Mark(),
                "application.rocksdb.compression: expected none, snappy, lz4 or zstd, found '" +
                    *c + "'");
      } else {
        out->compression = it->second;
      }
    }
  }
}

void ReadApplication(const YAML::Node& n, Reader& r, Diagnostics& d,
                     ApplicationOptions* out) {
  if (!d.ExpectMap(n, "application")) return;
  d.CheckKeys(n, "application",
              {"id", "guarantee", "commit_interval_ms", "state_dir", "threads",
               "state_cleanup_delay_ms", "standby_replicas", "cache_max_bytes", "rocksdb",
               "expected_version_field"});
  if (!n["id"]) {
    d.Error(n.Mark(), "application: the key 'id' is required (it names the "
                      "consumer group, transactional ids and changelog topics)");
  } else if (auto id = r.String(n["id"], "application.id")) {
    if (!ValidName(*id)) {
      d.Error(n["id"].Mark(), "application.id: expected letters, digits, '.', "
                              "'_' or '-' (it becomes part of topic names), "
                              "found '" + *id + "'");
    } else {
      out->id = *id;
    }
  }
  if (n["guarantee"]) {
    if (auto g = r.String(n["guarantee"], "application.guarantee")) {
      if (*g == "exactly_once") {
        out->guarantee = Guarantee::kExactlyOnce;
      } else if (*g == "at_least_once") {
        out->guarantee = Guarantee::kAtLeastOnce;
      } else {
        d.Error(n["guarantee"].Mark(),
                "application.guarantee: expected exactly_once or "
                "at_least_once, found '" + *g + "'");
      }
    }
  }
  if (n["commit_interval_ms"]) {
    if (auto v = r.Int(n["commit_interval_ms"], "application.commit_interval_ms",
                       1, 3'600'000)) {
      out->commit_interval_ms = *v;
    }
  }
  if (n["state_dir"]) {
    if (auto v = r.String(n["state_dir"], "application.state_dir")) {
      out->state_dir = *v;
    }
  }
  if (n["threads"]) {
    if (auto v = r.Int(n["threads"], "application.threads", 1, 64)) {
      out->threads = static_cast<int>(*v);
    }
  }
  if (n["state_cleanup_delay_ms"]) {
    if (auto v = r.Int(n["state_cleanup_delay_ms"], "application.state_cleanup_delay_ms", 0,
                       int64_t{7} * 24 * 3'600'000)) {
      out->state_cleanup_delay_ms = *v;
    }
  }
  if (n["standby_replicas"]) {
    if (auto v = r.Int(n["standby_replicas"], "application.standby_replicas", 0, 16)) {
      out->standby_replicas = static_cast<int>(*v);
    }
  }
  if (n["cache_max_bytes"]) {
    if (auto v = r.Int(n["cache_max_bytes"], "application.cache_max_bytes", 0,
                       int64_t{1} << 40)) {
      out->cache_max_bytes = *v;
    }
  }
  if (n["rocksdb"]) ReadRocksDb(n["rocksdb"], r, d, &out->rocksdb);
  if (n["expected_version_field"]) {
    if (auto v = r.String(n["expected_version_field"], "application.expected_version_field")) {
      if (v->empty()) {
        d.Error(n["expected_version_field"].Mark(),
                "application.expected_version_field: expected a command field name, found ''");
      } else {
        out->expected_version_field = *v;
      }
    }
  }
  if (out->state_dir.empty() && !out->id.empty()) {
    out->state_dir = "/tmp/kcqrs/" + out->id;
  }
}

void ReadKafka(const YAML::Node& n, Reader& r, Diagnostics& d,
               KafkaOptions* out) {
  if (!d.ExpectMap(n, "kafka")) return;
  d.CheckKeys(n, "kafka",
              {"bootstrap_servers", "embedded_brokers", "embedded_port", "properties"});
  const YAML::Node bs = n["bootstrap_servers"];
  const size_t before = d.errors().size();
  if (!bs) {
    d.Error(n.Mark(), "kafka: the key 'bootstrap_servers' is required (a list "
                      "of host:port, or 'embedded' to try kcqrs out)");
  } else if (bs.IsSequence()) {
    for (size_t i = 0; i < bs.size(); ++i) {
      std::string where = "kafka.bootstrap_servers[" + std::to_string(i) + "]";
      if (auto s = r.String(bs[i], where)) {
        if (s->find(':') == std::string::npos) {
          d.Error(bs[i].Mark(), where + ": expected host:port, found '" + *s + "'");
        } else {
          out->bootstrap_servers.push_back(*s);
        }
      }
    }
  } else if (auto s = r.String(bs, "kafka.bootstrap_servers")) {
    if (*s == "embedded") {
      out->embedded = true;
    } else {
      // A comma-separated string, as librdkafka takes it.
      std::stringstream in(*s);
      for (std::string part; std::getline(in, part, ',');) {
        if (part.find(':') == std::string::npos) {
          d.Error(bs.Mark(), "kafka.bootstrap_servers: expected host:port, "
                             "a list of them, or 'embedded', found '" + *s + "'");
          break;
        }
        out->bootstrap_servers.push_back(part);
      }
    }
  }
  if (bs && !out->embedded && out->bootstrap_servers.empty() && d.errors().size() == before) {
    // `kcqrs run` would have nowhere to connect; say so here, where the
    // file (or a --set) says it, for validate and run alike.
    d.Error(bs.Mark(), "kafka.bootstrap_servers: expected host:port, a list of them, or "
                       "'embedded', found nothing");
  }
  if (n["embedded_brokers"]) {
    if (auto v = r.Int(n["embedded_brokers"], "kafka.embedded_brokers", 1, 9)) {
      out->embedded_brokers = static_cast<int>(*v);
    }
  }
  if (n["embedded_port"]) {
    if (auto v = r.Int(n["embedded_port"], "kafka.embedded_port", 0, 65535)) {
      out->embedded_port = static_cast<int>(*v);
    }
  }
  if (const YAML::Node props = n["properties"]) {
    if (d.ExpectMap(props, "kafka.properties")) {
      for (const auto& kv : props) {
        std::string key = kv.first.Scalar();
        if (key == "bootstrap.servers" || key == "transactional.id" ||
            key == "group.id") {
          d.Error(kv.first.Mark(),
                  "kafka.properties: '" + key + "' is set by kcqrs (from "
                  "kafka.bootstrap_servers and application.id); remove it");
          continue;
        }
        if (auto v = r.String(kv.second, "kafka.properties." + key)) {
          out->properties[key] = *v;
        }
      }
    }
  }
}

void ReadHttpTls(const YAML::Node& n, Reader& r, Diagnostics& d, HttpTlsOptions* out) {
  if (!d.ExpectMap(n, "http.tls")) return;
  d.CheckKeys(n, "http.tls", {"cert_file", "key_file", "ca_file", "client_auth"});
  auto file = [&](const char* key, std::string* to) {
    if (!n[key]) return;
    const std::string where = std::string("http.tls.") + key;
    if (auto v = r.String(n[key], where)) {
      if (v->empty()) {
        d.Error(n[key].Mark(), where + ": expected the path of a PEM file, found ''");
      } else {
        *to = *v;
      }
    }
  };
  file("cert_file", &out->cert_file);
  file("key_file", &out->key_file);
  file("ca_file", &out->ca_file);
  std::string client_auth = "none";
  if (n["client_auth"]) {
    if (auto v = r.String(n["client_auth"], "http.tls.client_auth")) {
      client_auth = *v;
      if (*v == "none") {
        out->client_auth = HttpTlsOptions::ClientAuth::kNone;
      } else if (*v == "optional") {
        out->client_auth = HttpTlsOptions::ClientAuth::kOptional;
      } else if (*v == "required") {
        out->client_auth = HttpTlsOptions::ClientAuth::kRequired;
      } else {
        d.Error(n["client_auth"].Mark(),
                "http.tls.client_auth: expected none, optional or required, found '" + *v + "'");
      }
    }
  }
  if (!n["cert_file"] || !n["key_file"]) {
    d.Error(n.Mark(), std::string("http.tls: ") +
                          (n["cert_file"] ? "key_file" : "cert_file") +
                          " is missing; HTTPS needs both the certificate (cert_file) and its "
                          "private key (key_file)");
  }
  if (out->client_auth != HttpTlsOptions::ClientAuth::kNone && !n["ca_file"]) {
    d.Error(n["client_auth"].Mark(),
            "http.tls.client_auth: " + client_auth +
                " needs ca_file, the CA that client certificates must chain to");
  }
}

void ReadHttp(const YAML::Node& n, Reader& r, Diagnostics& d, HttpOptions* out) {
  if (!d.ExpectMap(n, "http")) return;
  d.CheckKeys(n, "http", {"enabled", "listen", "threads", "command_token", "query_token", "tls",
                          "advertised_url"});
  if (n["tls"]) ReadHttpTls(n["tls"], r, d, &out->tls);
  if (n["query_token"]) {
    if (auto v = r.String(n["query_token"], "http.query_token")) out->query_token = *v;
  }
  if (n["enabled"]) {
    if (auto v = r.String(n["enabled"], "http.enabled")) {
      if (*v == "true" || *v == "false") {
        out->enabled = *v == "true";
      } else {
        d.Error(n["enabled"].Mark(), "http.enabled: expected true or false, found '" + *v + "'");
      }
    }
  }
  if (n["advertised_url"]) {
    if (auto v = r.String(n["advertised_url"], "http.advertised_url")) {
      std::string url = *v;
      while (!url.empty() && url.back() == '/') url.pop_back();
      const size_t scheme = url.find("://");
      const std::string prefix = scheme == std::string::npos ? "" : url.substr(0, scheme);
      const std::string rest = scheme == std::string::npos ? "" : url.substr(scheme + 3);
      if ((prefix != "http" && prefix != "https") || rest.empty() ||
          rest.find_first_of("/?# ") != std::string::npos) {
        d.Error(n["advertised_url"].Mark(),
                "http.advertised_url: expected http://host:port (how other instances reach "
                "this one, no path), found '" + *v + "'");
      } else if (n["tls"] && prefix == "http") {
        d.Error(n["advertised_url"].Mark(),
                "http.advertised_url: http.tls is set, so other instances reach this one over "
                "https://, found '" + *v + "'");
      } else {
        out->advertised_url = url;
      }
    }
  }
  if (n["command_token"]) {
    if (auto v = r.String(n["command_token"], "http.command_token")) out->command_token = *v;
  }
  if (n["listen"]) {
    if (auto v = r.String(n["listen"], "http.listen")) {
      size_t colon = v->rfind(':');
      int port = -1;
      if (colon != std::string::npos) {
        std::string_view digits = std::string_view(*v).substr(colon + 1);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
        if (ec != std::errc() || end != digits.data() + digits.size()) port = -1;
      }
      if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
        d.Error(n["listen"].Mark(),
                "http.listen: expected host:port (e.g. 127.0.0.1:8080), found '" +
                    *v + "'");
      } else {
        out->listen = *v;
      }
    }
  }
  if (n["threads"]) {
    if (auto v = r.Int(n["threads"], "http.threads", 1, 64)) {
      out->threads = static_cast<int>(*v);
    }
  }
}

void ReadLimits(const YAML::Node& n, Reader& r, Diagnostics& d, LimitsOptions* out) {
  if (!d.ExpectMap(n, "limits")) return;
  d.CheckKeys(n, "limits", {"max_json_depth", "max_document_bytes"});
  if (n["max_json_depth"]) {
    if (auto v = r.Int(n["max_json_depth"], "limits.max_json_depth", 1, 1000)) {
      out->max_json_depth = static_cast<int>(*v);
    }
  }
  if (n["max_document_bytes"]) {
    if (auto v = r.Int(n["max_document_bytes"], "limits.max_document_bytes", 1024,
                       100 * 1024 * 1024)) {
      out->max_document_bytes = *v;
    }
  }
}

void ReadTopics(const YAML::Node& n, Reader& r, Diagnostics& d,
                std::map<std::string, int>* out) {
  if (!d.ExpectMap(n, "topics")) return;
  for (const auto& kv : n) {
    const std::string name = kv.first.Scalar();
    const std::string where = "topics." + name;
    if (!ValidName(name)) {
      d.Error(kv.first.Mark(), "topics: '" + name + "' is not a valid topic "
                               "name (letters, digits, '.', '_', '-')");
      continue;
    }
    if (!d.ExpectMap(kv.second, where)) continue;
    d.CheckKeys(kv.second, where, {"partitions"});
    int partitions = 1;
    if (kv.second["partitions"]) {
      auto v = r.Int(kv.second["partitions"], where + ".partitions", 1, 10000);
      if (!v) continue;
      partitions = static_cast<int>(*v);
    }
    (*out)[name] = partitions;
  }
}

Result<EngineOptions> Finish(Diagnostics& diag, EngineOptions options,
                             std::vector<ConfigError>* errors) {
  // Sections are read in a fixed order; users read errors in file order.
  std::vector<ConfigError> sorted = diag.errors();
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const ConfigError& a, const ConfigError& b) {
                     return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                   });
  if (errors != nullptr) *errors = sorted;
  if (diag.empty()) return options;
  std::string msg;
  for (const ConfigError& e : sorted) {
    if (!msg.empty()) msg += "\n";
    msg += e.ToString();
  }
  return Status::InvalidArgument(std::move(msg));
}

}  // namespace

Result<EngineOptions> LoadEngineOptionsFromString(
    const std::string& yaml, const std::string& source,
    const LoadOptions& options, std::vector<ConfigError>* errors) {
  Diagnostics diag(source);
  EngineOptions out;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    diag.Error(e.mark, "not valid YAML: " + e.msg);
    return Finish(diag, std::move(out), errors);
  } catch (const YAML::Exception& e) {
    diag.ErrorAt(source, "not valid YAML: " + e.msg);
    return Finish(diag, std::move(out), errors);
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!diag.ExpectMap(root, "the top level")) {
    return Finish(diag, std::move(out), errors);
  }
  int override_line = 1 + static_cast<int>(std::count(yaml.begin(), yaml.end(), '\n'));
  for (const std::string& spec : options.overrides) {
    ApplyOverride(root, spec, &diag, &override_line);
  }

  Reader reader(&diag, options);
  diag.CheckKeys(root, "the top level",
                 {"application", "kafka", "http", "limits", "topics", "errors", "aggregates",
                  "projections", "processors", "transforms", "process_managers", "stores"});
  if (!root["application"]) {
    diag.Error(root.Mark(), "the top level: the section 'application' is required");
  } else {
    ReadApplication(root["application"], reader, diag, &out.application);
  }
  if (!root["kafka"]) {
    diag.Error(root.Mark(), "the top level: the section 'kafka' is required");
  } else {
    ReadKafka(root["kafka"], reader, diag, &out.kafka);
  }
  if (root["http"]) ReadHttp(root["http"], reader, diag, &out.http);
  if (root["limits"]) ReadLimits(root["limits"], reader, diag, &out.limits);
  if (root["topics"]) ReadTopics(root["topics"], reader, diag, &out.topics);

  TopologyReader topology(
      &diag,
      [&reader](const YAML::Node& n, std::string_view where) {
        return reader.String(n, where);
      },
      yaml);
  TopologySpec& spec = out.topology;
  if (root["errors"]) topology.ReadErrors(root["errors"], &spec);
  if (root["aggregates"]) topology.ReadAggregates(root["aggregates"], &spec);
  if (root["projections"]) topology.ReadProjections(root["projections"], &spec);
  if (root["processors"]) topology.ReadProcessors(root["processors"], &spec);
  if (root["transforms"]) topology.ReadTransforms(root["transforms"], &spec);
  if (root["process_managers"]) {
    topology.ReadProcessManagers(root["process_managers"], &spec);
  }
  if (root["stores"]) topology.ReadStores(root["stores"], &spec);
  if (spec.errors.dead_letter_topic.empty() && !out.application.id.empty()) {
    spec.errors.dead_letter_topic = out.application.id + "-dlq";
  }
  return Finish(diag, std::move(out), errors);
}

Result<EngineOptions> LoadEngineOptionsFromFile(
    const std::string& path, const LoadOptions& options,
    std::vector<ConfigError>* errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errors != nullptr) {
      *errors = {ConfigError{path, 0, 0, "cannot open the file"}};
    }
    return Status::NotFound(path + ": cannot open the file");
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return LoadEngineOptionsFromString(buf.str(), path, options, errors);
}

}  // namespace kcqrs::config
