#include "engine/runtime/application_reset.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <system_error>

#include "engine/graph/compiled_topology.h"
#include "engine/kafka/admin.h"
#include "engine/kafka/consumer.h"
#include "engine/runtime/client_configs.h"
#include "engine/runtime/state_directory.h"

namespace kcqrs::engine {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::chrono::milliseconds Left(Clock::time_point deadline) {
  return std::max(std::chrono::milliseconds(1),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

Result<std::string> Bootstrap(const EngineOptions& options) {
  if (options.kafka.embedded) {
    return Status::InvalidArgument(
        "kafka.bootstrap_servers is 'embedded': that Kafka lives inside the `kcqrs run` "
        "process and keeps nothing between runs, so there is nothing to reset but the "
        "state directory (--local-state-only); to reset an application on a real cluster "
        "give --set kafka.bootstrap_servers=host:port");
  }
  if (options.kafka.bootstrap_servers.empty()) {
    return Status::InvalidArgument("kafka.bootstrap_servers is empty: give host:port of your "
                                   "brokers");
  }
  std::string out;
  for (const std::string& b : options.kafka.bootstrap_servers) {
    out += (out.empty() ? "" : ",") + b;
  }
  return out;
}

// A task directory is named "<sub-topology>_<partition>"
// (engine/runtime/state_directory.h); nothing else under the state
// directory is the application's state.
bool IsTaskDirectory(const fs::directory_entry& e) {
  const std::string name = e.path().filename().string();
  const size_t sep = name.find('_');
  auto digits = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  return e.is_directory() && sep != std::string::npos &&
         digits(std::string_view(name).substr(0, sep)) &&
         digits(std::string_view(name).substr(sep + 1));
}

std::vector<std::string> TaskDirectories(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (IsTaskDirectory(e)) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Partition(const std::string& topic, int32_t p) {
  return topic + "-" + std::to_string(p);
}

}  // namespace

Result<int64_t> ParseDateTime(std::string_view text) {
  const auto bad = [&] {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a date and time: expected "
                                   "YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM|-HH:MM] (no zone: UTC)");
  };
  size_t i = 0;
  auto number = [&](size_t digits, int* out) {
    if (i + digits > text.size()) return false;
    int v = 0;
    for (size_t k = 0; k < digits; ++k) {
      const char c = text[i + k];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    i += digits;
    *out = v;
    return true;
  };
  auto expect = [&](char c) {
    if (i >= text.size() || text[i] != c) return false;
    ++i;
    return true;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millis = 0;
  if (!number(4, &year) || !expect('-') || !number(2, &month) || !expect('-') ||
      !number(2, &day) || !(expect('T') || expect(' ')) || !number(2, &hour) || !expect(':') ||
      !number(2, &minute) || !expect(':') || !number(2, &second)) {
    return bad();
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    const size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    const std::string_view frac = text.substr(start, i - start);
    if (frac.empty() || frac.size() > 9) return bad();
    for (size_t k = 0; k < 3; ++k) millis = millis * 10 + (k < frac.size() ? frac[k] - '0' : 0);
  }
  int64_t offset_minutes = 0;
  if (i < text.size()) {
    if (text[i] == 'Z') {
      ++i;
    } else if (text[i] == '+' || text[i] == '-') {
      const int sign = text[i] == '-' ? -1 : 1;
      ++i;
      int oh = 0, om = 0;
      if (!number(2, &oh) || !expect(':') || !number(2, &om) || oh > 23 || om > 59) return bad();
      offset_minutes = sign * (oh * 60 + om);
    }
  }
  if (i != text.size() || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 ||
      second > 60) {
    return bad();
  }
  // Days from the civil date (Howard Hinnant's algorithm), so that no
  // process time zone is involved.
  static constexpr int kDaysIn[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > kDaysIn[month - 1] || (month == 2 && day == 29 && !leap)) return bad();
  const int y = year - (month <= 2);
  const int era = y / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = int64_t{era} * 146097 + doe - 719468;
  const int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  return seconds * 1000 + millis;
}

Result<ResetPlan> PlanReset(const EngineOptions& options, const ResetOptions& reset) {
  ResetPlan plan;
  plan.group = options.application.id;
  plan.state_dir = options.application.state_dir;
  plan.state_entries = TaskDirectories(plan.state_dir);
  if (reset.local_state_only) return plan;

  auto bootstrap = Bootstrap(options);
  if (!bootstrap.ok()) return bootstrap.status();
  auto topology = CompiledTopology::Compile(options);
  if (!topology.ok()) return topology.status();
  const CompiledTopology& t = **topology;
  const auto deadline = Clock::now() + reset.timeout;

  auto admin = kafka::Admin::Create(AdminConfig(options, *bootstrap).properties);
  if (!admin.ok()) return admin.status();
  auto group = (*admin)->DescribeGroup(plan.group, Left(deadline));
  if (!group.ok()) return group.status().WithContext("at " + *bootstrap);
  if (!group->members.empty()) {
    std::string who;
    for (const std::string& m : group->members) who += (who.empty() ? "" : ", ") + m;
    return Status::FailedPrecondition(
        "consumer group " + plan.group + " is " + group->state + " with " +
        std::to_string(group->members.size()) + " member(s) (" + who +
        "): stop every instance first. An instance stopped by kill -9 stays a member "
        "until its session.timeout.ms passes (10 s unless kafka.properties sets it)");
  }
  auto listed = (*admin)->ListTopics(Left(deadline));
  if (!listed.ok()) return listed.status().WithContext("listing the topics at " + *bootstrap);
  std::map<std::string, int> existing;
  for (const auto& info : *listed) existing[info.name] = info.partitions;

  // Internal topics: changelogs and repartition topics.
  std::set<std::string> internal;
  for (const SubTopology& st : t.subtopologies()) {
    for (const std::string& store : st.stores) internal.insert(t.ChangelogTopic(store));
  }
  for (const auto& p : t.projections()) {
    if (!p.repartition_topic.empty()) internal.insert(p.repartition_topic);
  }
  for (const auto& pm : t.process_managers()) internal.insert(pm.repartition_topic);
  for (const std::string& topic : internal) {
    (existing.count(topic) ? plan.delete_topics : plan.absent_topics).push_back(topic);
  }

  // What the application writes, but for command topics: a process
  // manager's commands sit among the clients' and are input like them
  // (the rerun sends them again with the same ids, and the aggregate's
  // deduplication keeps one).
  std::set<std::string> written;
  for (const SubTopology& st : t.subtopologies()) {
    for (const Node& n : st.nodes) written.insert(n.sinks.begin(), n.sinks.end());
  }
  for (const auto& a : t.aggregates()) {
    for (const std::string& topic : a.spec.command_topics) written.erase(topic);
  }

  std::vector<kafka::TopicPartitionOffset> partitions;
  std::vector<kafka::TopicPartitionOffset> inputs;  // partitions moved to the target
  for (const std::string& topic : t.SourceTopics()) {
    if (internal.count(topic)) continue;
    auto it = existing.find(topic);
    if (it == existing.end()) {
      plan.absent_topics.push_back(topic);
      continue;
    }
    for (int p = 0; p < it->second; ++p) {
      partitions.push_back({topic, p, kafka::kOffsetInvalid});
      ResetPlan::OffsetChange change;
      change.topic = topic;
      change.partition = p;
      change.intermediate = written.count(topic) > 0;
      plan.offsets.push_back(change);
    }
  }
  std::sort(plan.absent_topics.begin(), plan.absent_topics.end());
  if (partitions.empty()) return plan;

  kafka::Properties props =
      MetadataConsumerConfig(options, *bootstrap, options.application.id + "-reset").properties;
  // A group id for reading the committed offsets; never subscribing, this
  // consumer does not join the group.
  props["group.id"] = plan.group;
  auto consumer = kafka::Consumer::Create(props);
  if (!consumer.ok()) return consumer.status();
  auto committed = (*consumer)->Committed(partitions, Left(deadline));
  if (!committed.ok()) return committed.status();
  std::vector<kafka::TopicPartitionOffset> by_time;
  for (size_t i = 0; i < plan.offsets.size(); ++i) {
    ResetPlan::OffsetChange& c = plan.offsets[i];
    c.from = (*committed)[i].offset;
    auto marks = (*consumer)->QueryWatermarks(c.topic, c.partition, Left(deadline));
    if (!marks.ok()) return marks.status();
    const auto [low, high] = *marks;
    if (c.intermediate) {
      c.to = high;
      continue;
    }
    switch (reset.target) {
      case ResetOptions::Target::kEarliest: c.to = low; break;
      case ResetOptions::Target::kLatest: c.to = high; break;
      case ResetOptions::Target::kOffset: c.to = std::clamp(reset.offset, low, high); break;
      case ResetOptions::Target::kTimestamp:
        by_time.push_back({c.topic, c.partition, reset.timestamp_ms});
        break;
    }
  }
  if (!by_time.empty()) {
    auto found = (*consumer)->OffsetsForTimes(by_time, Left(deadline));
    if (!found.ok()) return found.status();
    std::map<std::pair<std::string, int32_t>, int64_t> at;
    for (const auto& o : *found) at[{o.topic, o.partition}] = o.offset;
    for (ResetPlan::OffsetChange& c : plan.offsets) {
      if (!c.intermediate) c.to = at[{c.topic, c.partition}];
    }
  }
  return plan;
}

Status ApplyReset(const EngineOptions& options, const ResetPlan& plan, const ResetOptions& reset) {
  // The local state first under its lock: a kcqrs still running here is
  // refused before anything in Kafka changes.
  std::unique_ptr<StateDirectoryLock> lock;
  std::error_code ec;
  StateDirectory dir(plan.state_dir);
  if (!plan.state_dir.empty() && fs::is_directory(plan.state_dir, ec)) {
    auto locked = dir.Lock();
    if (!locked.ok()) return locked.status();
    lock = std::move(locked).value();
  }
  if (!reset.local_state_only) {
    auto bootstrap = Bootstrap(options);
    if (!bootstrap.ok()) return bootstrap.status();
    const auto deadline = Clock::now() + reset.timeout;
    auto admin = kafka::Admin::Create(AdminConfig(options, *bootstrap).properties);
    if (!admin.ok()) return admin.status();
    std::vector<kafka::TopicPartitionOffset> offsets;
    for (const auto& c : plan.offsets) offsets.push_back({c.topic, c.partition, c.to});
    KCQRS_RETURN_IF_ERROR((*admin)->AlterGroupOffsets(plan.group, offsets, Left(deadline)));
    KCQRS_RETURN_IF_ERROR((*admin)->DeleteTopics(plan.delete_topics, Left(deadline)));
  }
  for (const std::string& entry : plan.state_entries) {
    const fs::path path = fs::path(plan.state_dir) / entry;
    fs::remove_all(path, ec);
    if (ec) return Status::IoError("removing " + path.string() + ": " + ec.message());
  }
  return Status::OK();
}

std::string FormatResetPlan(const ResetPlan& plan, bool dry_run) {
  const std::string will = dry_run ? "would " : "";
  std::string out;
  if (!plan.group.empty() && !plan.offsets.empty()) {
    out += "offsets of consumer group " + plan.group + " (" + will + "set):\n";
    for (const auto& c : plan.offsets) {
      out += "  " + Partition(c.topic, c.partition) + ": " +
             (c.from == kafka::kOffsetInvalid ? std::string("none") : std::to_string(c.from)) +
             " -> " + std::to_string(c.to) +
             (c.intermediate ? "  (written by the application: to its end)" : "") + "\n";
    }
  }
  if (!plan.delete_topics.empty()) {
    out += "internal topics (" + will + "delete):\n";
    for (const auto& topic : plan.delete_topics) out += "  " + topic + "\n";
  }
  if (!plan.absent_topics.empty()) {
    out += "topics not found (nothing to do):\n";
    for (const auto& topic : plan.absent_topics) out += "  " + topic + "\n";
  }
  out += "local state " + plan.state_dir + ": " + will + "remove " +
         std::to_string(plan.state_entries.size()) + " task director" +
         (plan.state_entries.size() == 1 ? "y" : "ies");
  for (size_t i = 0; i < plan.state_entries.size(); ++i) {
    out += (i == 0 ? ": " : ", ") + plan.state_entries[i];
  }
  out += "\n";
  return out;
}

}  // namespace kcqrs::engine
