// The `kcqrs` command line: run, validate, describe, reset and version.
//
// Exit codes: 0 success; 1 runtime failure (Kafka, HTTP bind); 2 the
// configuration or the command line is wrong (nothing was started).
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "config/topology_lint.h"
#include "engine/graph/describe.h"
#include "engine/runtime/application_reset.h"
#include "engine/runtime/live_instances.h"
#include "kcqrs/engine.h"
#include "kcqrs/logging.h"
#include "kcqrs/version.h"

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

// Prints every config error, one per line, as file:line:col: message.
int ReportConfigErrors(const std::vector<kcqrs::config::ConfigError>& errors,
                       const kcqrs::Status& status) {
  if (errors.empty()) {
    std::fprintf(stderr, "error: %s\n", status.message().c_str());
  }
  for (const auto& e : errors) {
    std::fprintf(stderr, "%s\n", e.ToString().c_str());
  }
  std::fprintf(stderr, "%zu error(s); nothing was started\n",
               errors.empty() ? size_t{1} : errors.size());
  return kExitUsage;
}

// The topology compiler reports one error per line, already positioned.
int ReportTopologyErrors(const kcqrs::Status& status) {
  size_t n = 1;
  for (char c : status.message()) n += c == '\n';
  std::fprintf(stderr, "%s\n%zu error(s); nothing was started\n", status.message().c_str(), n);
  return kExitUsage;
}

// Loads `file` with the --set overrides and checks the topology; on error
// prints every problem and returns the exit code, else 0.
int LoadAndValidate(const std::string& file, const std::vector<std::string>& sets,
                    kcqrs::EngineOptions* out) {
  kcqrs::config::LoadOptions load;
  load.overrides = sets;
  std::vector<kcqrs::config::ConfigError> errors;
  auto options = kcqrs::config::LoadEngineOptionsFromFile(file, load, &errors);
  if (!options.ok()) return ReportConfigErrors(errors, options.status());
  kcqrs::Status s = kcqrs::Engine::Validate(*options);
  if (!s.ok()) return ReportTopologyErrors(s);
  *out = std::move(options).value();
  return 0;
}

int Validate(const std::string& file, const std::vector<std::string>& sets, bool strict) {
  kcqrs::EngineOptions parsed;
  if (int rc = LoadAndValidate(file, sets, &parsed); rc != 0) return rc;
  const kcqrs::EngineOptions* options = &parsed;
  // What is valid but probably a mistake; `run` logs the same lines.
  const auto warnings = kcqrs::config::LintTopology(options->topology);
  for (const auto& w : warnings) std::fprintf(stderr, "%s\n", w.ToString().c_str());
  if (strict && !warnings.empty()) {
    std::fprintf(stderr, "%zu warning(s), errors under --strict; nothing was started\n",
                 warnings.size());
    return kExitUsage;
  }
  std::string summary = std::to_string(options->topology.aggregates.size()) + " aggregate(s), " +
                        std::to_string(options->topology.projections.size()) + " projection(s), ";
  if (!options->topology.process_managers.empty()) {
    summary += std::to_string(options->topology.process_managers.size()) +
               " process manager(s), ";
  }
  summary += std::to_string(options->topology.processors.size()) + " processor(s)";
  std::printf("%s: OK (application %s: %s)\n", file.c_str(),
              options->application.id.c_str(), summary.c_str());
  return 0;
}

// Prints the topology's sub-topologies, nodes, topics and stores. There is no
// Kafka to ask, so partition counts are those the file declares.
int DescribeFile(const std::string& file, const std::string& format,
                 const std::vector<std::string>& sets) {
  auto parsed = kcqrs::engine::ParseDescribeFormat(format);
  if (!parsed) {
    std::fprintf(stderr, "--format: expected text, json or mermaid, found '%s'\n",
                 format.c_str());
    return kExitUsage;
  }
  kcqrs::EngineOptions options;
  if (int rc = LoadAndValidate(file, sets, &options); rc != 0) return rc;
  auto text = kcqrs::engine::DescribeOptions(options, *parsed);
  if (!text.ok()) return ReportTopologyErrors(text.status());
  std::fputs(text->c_str(), stdout);
  if (*parsed == kcqrs::engine::DescribeFormat::kJson) std::fputs("\n", stdout);
  return 0;
}

// Prints the application's live instances, their URLs and tasks, as its
// `<application.id>-instances` topic says (engine/runtime/live_instances.h).
int DescribeLive(const std::string& file, const std::string& format,
                 const std::vector<std::string>& sets) {
  if (format == "mermaid") {
    std::fprintf(stderr, "--live: expected --format text or json, found 'mermaid'\n");
    return kExitUsage;
  }
  kcqrs::EngineOptions options;
  if (int rc = LoadAndValidate(file, sets, &options); rc != 0) return rc;
  auto live = kcqrs::engine::ReadLiveInstances(options, std::chrono::seconds(15));
  if (!live.ok()) {
    std::fprintf(stderr, "error: %s\n", live.status().message().c_str());
    return live.status().IsInvalidArgument() ? kExitUsage : kExitRuntime;
  }
  std::fputs(
      kcqrs::engine::FormatLiveInstances(options.application.id, *live, format == "json").c_str(),
      stdout);
  return 0;
}

// `kcqrs reset`: see engine/runtime/application_reset.h. Prints the plan,
// then carries it out unless --dry-run.
int Reset(const std::string& file, const std::vector<std::string>& sets,
          const kcqrs::engine::ResetOptions& reset, bool dry_run) {
  kcqrs::EngineOptions options;
  if (int rc = LoadAndValidate(file, sets, &options); rc != 0) return rc;
  auto plan = kcqrs::engine::PlanReset(options, reset);
  if (!plan.ok()) {
    std::fprintf(stderr, "error: %s\nnothing was reset\n", plan.status().message().c_str());
    return plan.status().IsInvalidArgument() ? kExitUsage : kExitRuntime;
  }
  std::printf("application %s%s\n%s", options.application.id.c_str(),
              dry_run ? " (dry run: nothing changes)" : "",
              kcqrs::engine::FormatResetPlan(*plan, dry_run).c_str());
  if (dry_run) return 0;
  kcqrs::Status s = kcqrs::engine::ApplyReset(options, *plan, reset);
  if (!s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return kExitRuntime;
  }
  std::printf("done: the next `kcqrs run` reprocesses from the offsets above%s\n",
              reset.local_state_only ? "" : "; on every other machine of the application, "
                                            "run `kcqrs reset --local-state-only` too");
  return 0;
}

int Run(const std::string& file, const std::vector<std::string>& sets) {
  kcqrs::config::LoadOptions load;
  load.overrides = sets;
  std::vector<kcqrs::config::ConfigError> errors;
  auto options = kcqrs::config::LoadEngineOptionsFromFile(file, load, &errors);
  if (!options.ok()) return ReportConfigErrors(errors, options.status());

  // Block the stop signals before any thread starts, so that every thread
  // inherits the mask and only sigwait() below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  spdlog::info("kcqrs {} starting application {} from {}", kcqrs::kVersion,
               options->application.id, file);
  for (const auto& w : kcqrs::config::LintTopology(options->topology)) {
    spdlog::warn("{}", w.ToString());
  }
  auto engine = kcqrs::Engine::Open(*options);
  if (!engine.ok()) {
    if (engine.status().IsInvalidArgument()) return ReportTopologyErrors(engine.status());
    spdlog::error("cannot start: {}", engine.status().ToString());
    return kExitRuntime;
  }
  if ((*engine)->http_address().empty()) {
    spdlog::info("running without an HTTP server (http.enabled: false)");
  } else {
    spdlog::info("serving: curl http://{}/healthz", (*engine)->http_address());
  }

  // Wait for a stop signal, or for the engine to fail on its own.
  const timespec tick{0, 200'000'000};
  for (;;) {
    int sig = sigtimedwait(&stop_signals, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    kcqrs::Status health = (*engine)->health();
    if (!health.ok()) {
      spdlog::error("the engine stopped: {}", health.ToString());
      (*engine)->Stop();
      return kExitRuntime;
    }
  }
  (*engine)->Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kcqrs: CQRS on Apache Kafka. Commands in, events out, read "
               "models served over HTTP, exactly once.",
               "kcqrs"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error (default: info)");
  // One JSON object per line for log shippers (Loki, Elasticsearch, Cloud
  // Logging), which otherwise split multi-line messages and guess levels.
  std::string log_format = "text";
  app.add_option("--log-format", log_format,
                 "text, or json: one object per line with ts, level, logger, thread, msg "
                 "(default: text; env KCQRS_LOG_FORMAT)")
      ->envname("KCQRS_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}));

  auto* version = app.add_subcommand("version", "Print the kcqrs version");
  // `kcqrs --version` too, as most command lines answer it: the same line as
  // `kcqrs version`, and no subcommand needed.
  app.set_version_flag("--version", "kcqrs " + std::string(kcqrs::kVersion),
                       "Print the kcqrs version (as `kcqrs version` does)");

  std::string run_file;
  std::vector<std::string> run_sets;
  auto* run = app.add_subcommand("run", "Run the application a topology file describes");
  run->add_option("file", run_file, "The topology YAML file")->required();
  run->add_option("--set", run_sets,
                  "Override a value in the file: --set http.listen=0.0.0.0:8080 "
                  "(repeatable)");

  std::string validate_file;
  std::vector<std::string> validate_sets;
  auto* validate = app.add_subcommand(
      "validate", "Check a topology file and print every error with file:line:col");
  validate->add_option("file", validate_file, "The topology YAML file")->required();
  validate->add_option("--set", validate_sets, "Override a value in the file");
  bool validate_strict = false;
  validate->add_flag("--strict", validate_strict,
                     "Treat warnings (an event type emitted and never handled, or handled "
                     "and never emitted) as errors: exit code 2");

  std::string describe_file;
  std::string describe_format = "text";
  std::vector<std::string> describe_sets;
  auto* describe = app.add_subcommand(
      "describe", "Print the topology: sub-topologies, processors, topics and stores");
  describe->add_option("file", describe_file, "The topology YAML file")->required();
  describe->add_option("--format", describe_format,
                       "text (like Kafka Streams' TopologyDescription), json (as GET "
                       "/topology serves it) or mermaid (a graph for Markdown)")
      ->check(CLI::IsMember({"text", "json", "mermaid"}));
  describe->add_option("--set", describe_sets, "Override a value in the file");
  bool describe_live = false;
  describe->add_flag("--live", describe_live,
                     "Instead: the application's live instances, their advertised URLs "
                     "and active and standby tasks, as Kafka says (text or json)");

  std::string reset_file;
  std::vector<std::string> reset_sets;
  auto* reset = app.add_subcommand(
      "reset", "Reset the application to reprocess its input (as Kafka Streams' "
               "application reset tool): input offsets, internal topics, local state");
  reset->add_option("file", reset_file, "The topology YAML file")->required();
  reset->add_option("--set", reset_sets, "Override a value in the file");
  bool reset_dry_run = false;
  reset->add_flag("--dry-run", reset_dry_run, "Print what would be done, and do nothing");
  bool reset_earliest = false;
  bool reset_latest = false;
  std::string reset_datetime;
  int64_t reset_offset = -1;
  auto* to_earliest =
      reset->add_flag("--to-earliest", reset_earliest, "Input topics from their start (default)");
  auto* to_latest = reset->add_flag("--to-latest", reset_latest,
                                    "Input topics from their end: skip what is there");
  auto* to_datetime = reset->add_option(
      "--to-datetime", reset_datetime,
      "Input topics from the first record at or after this time: "
      "YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM] (no zone: UTC)");
  auto* to_offset = reset->add_option("--to-offset", reset_offset,
                                      "Input topics from this offset in every partition "
                                      "(clamped to what each holds)")
                        ->check(CLI::NonNegativeNumber);
  to_earliest->excludes(to_latest, to_datetime, to_offset);
  to_latest->excludes(to_datetime, to_offset);
  to_datetime->excludes(to_offset);
  bool reset_local = false;
  reset->add_flag("--local-state-only", reset_local,
                  "Only remove this machine's state directory (on the other machines of an "
                  "application reset from one of them)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    std::fprintf(stderr, "--log-level: expected trace, debug, info, warn, error "
                         "or off, found '%s'\n", log_level.c_str());
    return kExitUsage;
  }
  spdlog::set_level(level);
  if (log_format == "json") kcqrs::SetLogFormat(kcqrs::LogFormat::kJson);

  if (*version) {
    std::printf("kcqrs %s\n", std::string(kcqrs::kVersion).c_str());
    return 0;
  }
  if (*validate) return Validate(validate_file, validate_sets, validate_strict);
  if (*describe && describe_live) return DescribeLive(describe_file, describe_format, describe_sets);
  if (*describe) return DescribeFile(describe_file, describe_format, describe_sets);
  if (*run) return Run(run_file, run_sets);
  if (*reset) {
    kcqrs::engine::ResetOptions r;
    r.local_state_only = reset_local;
    if (reset_latest) r.target = kcqrs::engine::ResetOptions::Target::kLatest;
    if (reset_offset >= 0) {
      r.target = kcqrs::engine::ResetOptions::Target::kOffset;
      r.offset = reset_offset;
    }
    if (!reset_datetime.empty()) {
      auto ms = kcqrs::engine::ParseDateTime(reset_datetime);
      if (!ms.ok()) {
        std::fprintf(stderr, "--to-datetime: %s\n", ms.status().message().c_str());
        return kExitUsage;
      }
      r.target = kcqrs::engine::ResetOptions::Target::kTimestamp;
      r.timestamp_ms = *ms;
    }
    return Reset(reset_file, reset_sets, r, reset_dry_run);
  }
  return kExitUsage;
}
