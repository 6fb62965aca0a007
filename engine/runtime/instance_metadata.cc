#include "engine/runtime/instance_metadata.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "engine/codec/json_codec.h"
#include "engine/kafka/consumer.h"
#include "engine/kafka/producer.h"

namespace kcqrs::engine {
namespace {

using Json = kcqrs::Json;
constexpr int kFormatVersion = 1;

int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::vector<std::string>> StringArray(const Json& doc, const char* key) {
  std::vector<std::string> out;
  auto it = doc.find(key);
  if (it == doc.end()) return out;
  if (!it->is_array()) return Status::InvalidArgument(std::string("\"") + key + "\": expected an array");
  for (const Json& v : *it) {
    if (!v.is_string()) {
      return Status::InvalidArgument(std::string("\"") + key + "\": expected strings, found " +
                                     v.dump());
    }
    out.push_back(v.get<std::string>());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The document, or InvalidArgument when it is not a JSON object of a
// version this build reads.
Result<Json> ParseVersioned(std::string_view text) {
  Json doc = ParseJson(text);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::InvalidArgument("not a JSON object");
  }
  auto v = doc.find("v");
  if (v == doc.end() || !v->is_number_integer() || v->get<int64_t>() != kFormatVersion) {
    return Status::InvalidArgument("expected format version \"v\":1, found " +
                                   (v == doc.end() ? std::string("none") : v->dump()));
  }
  return doc;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

bool IsOffsetTriple(const Json& a, size_t size) {
  if (!a.is_array() || a.size() != size) return false;
  for (size_t i = 0; i < 3; ++i) {
    if (!a[i].is_number_integer()) return false;
  }
  return true;
}

}  // namespace

std::string InstancesTopic(const std::string& application_id) {
  return application_id + "-instances";
}
std::string CommitsTopic(const std::string& application_id) {
  return application_id + "-commits";
}

std::string AdvertisedUrl(const std::string& advertised_url, const std::string& bound_address,
                          const std::string& hostname) {
  if (!advertised_url.empty()) return advertised_url;
  const size_t colon = bound_address.rfind(':');
  const std::string host = colon == std::string::npos ? bound_address : bound_address.substr(0, colon);
  if ((host == "0.0.0.0" || host == "[::]") && !hostname.empty()) {
    return "http://" + hostname + bound_address.substr(colon);
  }
  return "http://" + bound_address;
}

std::string AdvertisedUrl(const std::string& advertised_url, const std::string& bound_address) {
  char name[256] = {};
  const std::string hostname = gethostname(name, sizeof name - 1) == 0 ? name : "";
  return AdvertisedUrl(advertised_url, bound_address, hostname);
}

std::string EncodeInstanceInfo(const InstanceInfo& info) {
  Json doc = Json::object();
  doc["v"] = kFormatVersion;
  doc["id"] = info.id;
  doc["url"] = info.url;
  doc["active"] = info.active_tasks;
  doc["standby"] = info.standby_tasks;
  doc["updated_ms"] = info.updated_ms;
  return DumpJson(doc);
}

Result<InstanceInfo> DecodeInstanceInfo(std::string_view json) {
  auto doc = ParseVersioned(json);
  if (!doc.ok()) return doc.status();
  InstanceInfo info;
  auto id = doc->find("id");
  if (id == doc->end() || !id->is_string() || id->get<std::string>().empty()) {
    return Status::InvalidArgument("\"id\": expected a non-empty string");
  }
  info.id = id->get<std::string>();
  auto url = doc->find("url");
  if (url == doc->end() || !url->is_string()) {
    return Status::InvalidArgument("\"url\": expected a string");
  }
  info.url = url->get<std::string>();
  auto active = StringArray(*doc, "active");
  if (!active.ok()) return active.status();
  info.active_tasks = std::move(active).value();
  auto standby = StringArray(*doc, "standby");
  if (!standby.ok()) return standby.status();
  info.standby_tasks = std::move(standby).value();
  auto updated = doc->find("updated_ms");
  if (updated == doc->end() || !updated->is_number_integer()) {
    return Status::InvalidArgument("\"updated_ms\": expected an integer");
  }
  info.updated_ms = updated->get<int64_t>();
  return info;
}

std::string EncodeCommit(const PositionLog::Entry& entry) {
  std::map<std::string, int> index;
  Json topics = Json::array();
  auto topic_index = [&](const std::string& t) {
    auto [it, inserted] = index.emplace(t, static_cast<int>(index.size()));
    if (inserted) topics.push_back(t);
    return it->second;
  };
  Json consumed = Json::array();
  for (const auto& [tp, next] : entry.consumed_next) {
    consumed.push_back({topic_index(tp.first), tp.second, next});
  }
  Json produced = Json::array();
  for (const auto& [tp, last] : entry.produced_last) {
    produced.push_back({topic_index(tp.first), tp.second, last});
  }
  Json dead = Json::array();
  for (const auto& [tp, records] : entry.dead_letters) {
    for (const auto& [offset, reason] : records) {
      dead.push_back({topic_index(tp.first), tp.second, offset, reason});
    }
  }
  Json doc = Json::object();
  doc["v"] = kFormatVersion;
  doc["t"] = std::move(topics);
  if (!consumed.empty()) doc["c"] = std::move(consumed);
  if (!produced.empty()) doc["p"] = std::move(produced);
  if (!dead.empty()) doc["d"] = std::move(dead);
  return DumpJson(doc);
}

Result<PositionLog::Entry> DecodeCommit(std::string_view json) {
  auto doc = ParseVersioned(json);
  if (!doc.ok()) return doc.status();
  auto topics = StringArray(*doc, "t");
  if (!topics.ok()) return topics.status();
  // StringArray sorts; the indexes refer to the order as written.
  std::vector<std::string> names;
  for (const Json& t : (*doc)["t"]) names.push_back(t.get<std::string>());
  auto topic_at = [&](const Json& i) -> const std::string* {
    if (!i.is_number_integer()) return nullptr;
    const int64_t n = i.get<int64_t>();
    if (n < 0 || n >= static_cast<int64_t>(names.size())) return nullptr;
    return &names[static_cast<size_t>(n)];
  };
  PositionLog::Entry entry;
  entry.local = false;
  for (const char* key : {"c", "p", "d"}) {
    auto it = doc->find(key);
    if (it == doc->end()) continue;
    if (!it->is_array()) return Status::InvalidArgument(std::string("\"") + key + "\": expected an array");
    const bool dead = key[0] == 'd';
    for (const Json& a : *it) {
      const std::string* topic = IsOffsetTriple(a, dead ? 4 : 3) ? topic_at(a[0]) : nullptr;
      if (topic == nullptr || (dead && !a[3].is_string())) {
        return Status::InvalidArgument(std::string("\"") + key +
                                       "\": expected [topic index, partition, offset" +
                                       (dead ? ", reason]" : "]") + ", found " + a.dump());
      }
      PositionLog::TopicPartition tp{*topic, a[1].get<int32_t>()};
      const int64_t offset = a[2].get<int64_t>();
      if (key[0] == 'c') {
        entry.consumed_next[tp] = offset;
      } else if (key[0] == 'p') {
        entry.produced_last[tp] = offset;
      } else {
        entry.dead_letters[tp][offset] = a[3].get<std::string>();
      }
    }
  }
  return entry;
}

// ---------------------------------------------------------------------------
// InstanceTable

InstanceTable::InstanceTable(std::string self_id, Clock clock, std::chrono::milliseconds live_for)
    : self_id_(std::move(self_id)), clock_(std::move(clock)), live_for_(live_for) {
  self_.id = self_id_;
  self_.self = true;
}

void InstanceTable::SetSelf(InstanceInfo info) {
  info.id = self_id_;
  info.self = true;
  std::lock_guard<std::mutex> l(mu_);
  self_ = std::move(info);
}

InstanceInfo InstanceTable::self() const {
  std::lock_guard<std::mutex> l(mu_);
  return self_;
}

void InstanceTable::Heard(InstanceInfo info, std::chrono::steady_clock::time_point heard_at) {
  if (info.id == self_id_) return;
  info.self = false;
  std::lock_guard<std::mutex> l(mu_);
  Seen& seen = others_[info.id];
  // Records arrive in order from one partition; a backlog read at start may
  // carry an older time than what was already heard.
  seen.at = std::max(seen.at, heard_at);
  seen.info = std::move(info);
}

void InstanceTable::Remove(const std::string& id) {
  std::lock_guard<std::mutex> l(mu_);
  others_.erase(id);
}

std::vector<InstanceInfo> InstanceTable::LiveLocked() const {
  const auto now = clock_();
  std::vector<InstanceInfo> out;
  out.push_back(self_);
  for (const auto& [id, seen] : others_) {
    if (now - seen.at < live_for_) out.push_back(seen.info);
  }
  std::sort(out.begin(), out.end(),
            [](const InstanceInfo& a, const InstanceInfo& b) { return a.id < b.id; });
  return out;
}

std::vector<InstanceInfo> InstanceTable::Instances() const {
  std::lock_guard<std::mutex> l(mu_);
  return LiveLocked();
}

std::optional<InstanceInfo> InstanceTable::ActiveHolder(const std::string& task) const {
  std::lock_guard<std::mutex> l(mu_);
  std::optional<InstanceInfo> best;
  for (InstanceInfo& info : LiveLocked()) {
    if (!std::binary_search(info.active_tasks.begin(), info.active_tasks.end(), task)) continue;
    // Two claimants during a rebalance: the one that said so last has it.
    if (!best || info.updated_ms > best->updated_ms) best = std::move(info);
  }
  return best;
}

std::vector<InstanceInfo> InstanceTable::StandbyHolders(const std::string& task) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<InstanceInfo> out;
  for (InstanceInfo& info : LiveLocked()) {
    if (std::binary_search(info.standby_tasks.begin(), info.standby_tasks.end(), task)) {
      out.push_back(std::move(info));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// InstanceMetadata

struct InstanceMetadata::Clients {
  std::unique_ptr<kafka::Producer> producer;  // the publisher thread's
  std::unique_ptr<kafka::Consumer> consumer;  // the reader thread's
};

Result<std::unique_ptr<InstanceMetadata>> InstanceMetadata::Start(InstanceMetadataConfig config) {
  auto clients = std::make_unique<Clients>();
  auto producer = kafka::Producer::Create(config.producer_properties);
  if (!producer.ok()) return producer.status().WithContext("instance metadata producer");
  clients->producer = std::move(producer).value();
  auto consumer = kafka::Consumer::Create(config.consumer_properties);
  if (!consumer.ok()) return consumer.status().WithContext("instance metadata consumer");
  clients->consumer = std::move(consumer).value();
  const std::string app = config.application_id;
  KCQRS_RETURN_IF_ERROR(clients->consumer->Assign({
      {.topic = InstancesTopic(app), .partition = 0, .offset = kafka::kOffsetBeginning},
      {.topic = CommitsTopic(app), .partition = 0, .offset = kafka::kOffsetEnd},
  }));
  std::unique_ptr<InstanceMetadata> m(new InstanceMetadata(std::move(config), std::move(clients)));
  m->publisher_ = std::thread([p = m.get()] { p->PublishLoop(); });
  m->reader_ = std::thread([p = m.get()] { p->ReadLoop(); });
  return m;
}

InstanceMetadata::InstanceMetadata(InstanceMetadataConfig config, std::unique_ptr<Clients> clients)
    : config_(std::move(config)), table_(config_.instance_id), clients_(std::move(clients)) {
  InstanceInfo self;
  self.url = config_.url;
  table_.SetSelf(std::move(self));
}

InstanceMetadata::~InstanceMetadata() { Stop(); }

void InstanceMetadata::PublishCommit(const PositionLog::Entry& entry) {
  PositionLog::Entry slim;
  slim.consumed_next = entry.consumed_next;
  slim.dead_letters = entry.dead_letters;
  for (const auto& [tp, last] : entry.produced_last) {
    if (!config_.unfollowed_topics.count(tp.first)) slim.produced_last.emplace(tp, last);
  }
  if (slim.consumed_next.empty() && slim.produced_last.empty() && slim.dead_letters.empty()) {
    return;
  }
  std::string encoded = EncodeCommit(slim);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    commits_.push_back(std::move(encoded));
  }
  cv_.notify_all();
}

void InstanceMetadata::Stop() {
  std::lock_guard<std::mutex> stop(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (publisher_.joinable()) publisher_.join();
  reading_ = false;
  if (reader_.joinable()) reader_.join();
  if (clients_->consumer) (void)clients_->consumer->Close();
}

void InstanceMetadata::PublishLoop() {
  kafka::Producer& producer = *clients_->producer;
  const std::string instances = InstancesTopic(config_.application_id);
  const std::string commits = CommitsTopic(config_.application_id);
  Status last_error;  // logged once until a send succeeds again
  auto send = [&](kafka::OutgoingRecord record) {
    Status s = producer.Send(record);
    if (!s.ok() && s.ToString() != last_error.ToString()) {
      spdlog::warn("instance metadata: sending to {}: {}", record.topic, s.ToString());
    }
    last_error = s;
    return s.ok();
  };
  HeldTasks published;
  bool ever = false;
  auto next_heartbeat = std::chrono::steady_clock::now();
  for (bool stopping = false; !stopping;) {
    std::deque<std::string> batch;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, config_.poll_interval, [this] { return stopping_ || !commits_.empty(); });
      batch.swap(commits_);
      stopping = stopping_;
    }
    for (std::string& value : batch) {
      send({.topic = commits, .partition = 0, .key = config_.instance_id,
            .value = std::move(value)});
    }
    HeldTasks held = config_.held ? config_.held() : HeldTasks{};
    std::sort(held.active.begin(), held.active.end());
    std::sort(held.standby.begin(), held.standby.end());
    const auto now = std::chrono::steady_clock::now();
    const bool changed = !ever || held.active != published.active ||
                         held.standby != published.standby;
    if (!stopping && (changed || now >= next_heartbeat)) {
      InstanceInfo info;
      info.id = config_.instance_id;
      info.url = config_.url;
      info.active_tasks = held.active;
      info.standby_tasks = held.standby;
      info.updated_ms = WallNowMs();
      if (send({.topic = instances, .partition = 0, .key = config_.instance_id,
                .value = EncodeInstanceInfo(info), .timestamp_ms = info.updated_ms})) {
        ++published_infos_;
        if (changed) {
          spdlog::info("instance {} holds active [{}] standby [{}]", config_.instance_id,
                       Join(held.active), Join(held.standby));
        }
      }
      table_.SetSelf(std::move(info));
      published = std::move(held);
      ever = true;
      next_heartbeat = now + config_.heartbeat;
    }
    producer.Poll(std::chrono::milliseconds(0));
  }
  // A clean stop: the others stop offering this instance at once instead of
  // after the liveness timeout.
  send({.topic = instances, .partition = 0, .key = config_.instance_id, .value = std::nullopt});
  Status flushed = producer.Flush(std::chrono::seconds(5));
  if (!flushed.ok()) {
    spdlog::warn("instance metadata: the tombstone of instance {} was not delivered: {}",
                 config_.instance_id, flushed.ToString());
  }
}

void InstanceMetadata::ReadLoop() {
  kafka::Consumer& consumer = *clients_->consumer;
  const std::string instances = InstancesTopic(config_.application_id);
  // Records written before this instance started are judged by their
  // timestamp (a crashed instance's last heartbeat must not look fresh);
  // records after that by when they arrive, so that a clock skewed between
  // machines does not hide a live instance.
  int64_t backlog_end = 0;
  auto marks = consumer.QueryWatermarks(instances, 0, std::chrono::seconds(5));
  if (marks.ok()) {
    backlog_end = marks->second;
  } else {
    spdlog::warn("instance metadata: reading the end of {}: {}", instances,
                 marks.status().ToString());
  }
  std::string last_error;
  while (reading_.load()) {
    auto polled = consumer.Poll(std::chrono::milliseconds(200));
    if (!polled.ok()) {
      if (polled.status().ToString() != last_error) {
        last_error = polled.status().ToString();
        spdlog::warn("instance metadata: reading: {}", last_error);
      }
      if (polled.status().IsFenced()) return;
      continue;
    }
    if (!polled->has_value()) continue;
    const kafka::ConsumedRecord& r = **polled;
    if (!r.key || r.key->empty()) continue;
    if (r.topic == instances) {
      if (!r.value) {
        table_.Remove(*r.key);
        continue;
      }
      auto info = DecodeInstanceInfo(*r.value);
      if (!info.ok() || info->id != *r.key) {
        spdlog::warn("instance metadata: skipping {}-{}@{}: {}", r.topic, r.partition, r.offset,
                     info.ok() ? "the key is not the instance id" : info.status().message());
        continue;
      }
      auto heard_at = std::chrono::steady_clock::now();
      if (r.offset < backlog_end && r.timestamp_ms >= 0) {
        const int64_t age_ms = std::max<int64_t>(0, WallNowMs() - r.timestamp_ms);
        heard_at -= std::chrono::milliseconds(age_ms);
      }
      table_.Heard(std::move(info).value(), heard_at);
    } else if (*r.key != config_.instance_id && r.value && config_.positions != nullptr) {
      auto entry = DecodeCommit(*r.value);
      if (!entry.ok()) {
        spdlog::warn("instance metadata: skipping {}-{}@{}: {}", r.topic, r.partition, r.offset,
                     entry.status().message());
        continue;
      }
      config_.positions->Append(std::move(entry).value());
      ++remote_commits_;
    }
  }
}

}  // namespace kcqrs::engine
