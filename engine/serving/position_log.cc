#include "engine/serving/position_log.h"
#include "util/base64url.h"

#include "json/document.h"

#include <cstring>

namespace kcqrs::engine {

std::string EncodePositionToken(const RecordPosition& position) {
  return util::Base64UrlEncode(
      kcqrs::Json{{"t", position.topic}, {"p", position.partition}, {"o", position.offset}}
          .dump());
}

std::optional<RecordPosition> DecodePositionToken(std::string_view token) {
  if (token.empty() || token.size() > 2048) return std::nullopt;
  auto raw = util::Base64UrlDecode(token);
  if (!raw) return std::nullopt;
  auto j = kcqrs::Json::parse(*raw, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto t = j.find("t");
  auto p = j.find("p");
  auto o = j.find("o");
  if (t == j.end() || p == j.end() || o == j.end() || !t->is_string() ||
      !p->is_number_integer() || !o->is_number_integer()) {
    return std::nullopt;
  }
  RecordPosition r{t->get<std::string>(), p->get<int32_t>(), o->get<int64_t>()};
  if (r.partition < 0 || r.offset < 0) return std::nullopt;
  return r;
}

void PositionLog::Append(Entry entry) {
  std::vector<std::pair<std::string, CommandOutcome>> outcomes = std::move(entry.outcomes);
  entry.outcomes.clear();
  if (entry.local && listener_) listener_(entry);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Before the entry: a waiter woken by it finds the outcome.
    for (auto& [id, outcome] : outcomes) {
      auto [it, inserted] = outcomes_.insert_or_assign(std::move(id), std::move(outcome));
      if (inserted) outcome_order_.push_back(it->first);
    }
    while (outcome_order_.size() > outcome_capacity_) {
      outcomes_.erase(outcome_order_.front());
      outcome_order_.pop_front();
    }
    entries_.push_back(std::move(entry));
    while (entries_.size() > capacity_) {
      for (const auto& [tp, next] : entries_.front().consumed_next) trimmed_.insert(tp);
      entries_.pop_front();
    }
    ++version_;
  }
  cv_.notify_all();
}

PositionLog::Answer PositionLog::Applied(const RecordPosition& position,
                                         const std::set<std::string>& store_sources,
                                         const std::set<std::string>& path_topics) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RecordPosition> frontier = {position};
  std::set<RecordPosition> seen;
  while (!frontier.empty()) {
    RecordPosition r = std::move(frontier.back());
    frontier.pop_back();
    if (!seen.insert(r).second) continue;
    const TopicPartition tp{r.topic, r.partition};
    // The first commit that consumed past the record: it holds the record's
    // effects and what it produced.
    const Entry* covering = nullptr;
    bool any_entry_for_tp = false;
    // The queried store's own input counts only what this process applied.
    const bool last_hop = store_sources.count(r.topic) != 0;
    for (const Entry& e : entries_) {
      if (last_hop && !e.local) continue;
      auto it = e.consumed_next.find(tp);
      if (it == e.consumed_next.end()) continue;
      if (!any_entry_for_tp && it->second > r.offset && trimmed_.count(tp)) {
        // The oldest remembered commit of this partition is already past the
        // record: the commit that really covered it may have been dropped.
        return Answer::kTooOld;
      }
      any_entry_for_tp = true;
      if (it->second > r.offset) {
        covering = &e;
        break;
      }
    }
    if (covering == nullptr) return Answer::kPending;
    if (last_hop) continue;  // the store's task is past it
    for (const auto& [out, last] : covering->produced_last) {
      if (path_topics.count(out.first)) {
        frontier.push_back(RecordPosition{out.first, out.second, last});
      }
    }
  }
  return Answer::kApplied;
}

std::optional<std::string> PositionLog::DeadLetterReason(const RecordPosition& position) const {
  std::lock_guard<std::mutex> lock(mu_);
  const TopicPartition tp{position.topic, position.partition};
  for (auto e = entries_.rbegin(); e != entries_.rend(); ++e) {
    auto d = e->dead_letters.find(tp);
    if (d == e->dead_letters.end()) continue;
    auto r = d->second.find(position.offset);
    if (r != d->second.end()) return r->second;
  }
  return std::nullopt;
}

std::optional<CommandOutcome> PositionLog::DecidedOutcome(std::string_view command_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = outcomes_.find(std::string(command_id));
  if (it == outcomes_.end()) return std::nullopt;
  return it->second;
}

uint64_t PositionLog::version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return version_;
}

void PositionLog::WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return version_ != seen; });
}

}  // namespace kcqrs::engine
