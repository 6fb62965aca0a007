#include "engine/serving/position_log.h"
#include "util/base64url.h"

#include "json/document.h"

#include <cstring>
#include <functional>
#include <utility>

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

OutcomeWindow::OutcomeWindow(size_t capacity) : capacity_(capacity) {
  if (capacity_ == 0) return;
  size_t n = 16;
  while (n < 2 * capacity_) n *= 2;
  index_.assign(n, kEmpty);
  mask_ = n - 1;
}

size_t OutcomeWindow::Probe(std::string_view id, size_t hash, bool* found) const {
  for (size_t pos = hash & mask_;; pos = (pos + 1) & mask_) {
    const uint32_t entry = index_[pos];
    if (entry == kEmpty) {
      *found = false;
      return pos;
    }
    const Slot& slot = ring_[entry - 1];
    if (slot.hash == hash && slot.id == id) {
      *found = true;
      return pos;
    }
  }
}

void OutcomeWindow::EraseAt(size_t pos) {
  index_[pos] = kEmpty;
  // Linear probing's deletion: an entry further on whose home position is
  // not cyclically within (pos, next] would no longer be reached past the
  // hole, so it moves into it, and the hole moves on.
  for (size_t next = (pos + 1) & mask_; index_[next] != kEmpty; next = (next + 1) & mask_) {
    const size_t home = ring_[index_[next] - 1].hash & mask_;
    const bool reachable = pos <= next ? (pos < home && home <= next) : (pos < home || home <= next);
    if (reachable) continue;
    index_[pos] = index_[next];
    index_[next] = kEmpty;
    pos = next;
  }
}

void OutcomeWindow::Put(std::string id, CommandOutcome outcome) {
  if (capacity_ == 0) return;
  const size_t hash = std::hash<std::string_view>{}(id);
  bool found = false;
  size_t pos = Probe(id, hash, &found);
  if (found) {
    ring_[index_[pos] - 1].outcome = std::move(outcome);
    return;
  }
  if (ring_.size() < capacity_) {
    ring_.emplace_back();
  } else {
    // Full: the oldest gives way. Its removal may shift entries, so the
    // new id's position is probed again.
    const Slot& oldest = ring_[next_];
    bool oldest_found = false;
    const size_t at = Probe(oldest.id, oldest.hash, &oldest_found);
    if (oldest_found) EraseAt(at);
    pos = Probe(id, hash, &found);
  }
  Slot& slot = ring_[next_];
  slot.id.assign(id);  // into the slot's own capacity
  slot.outcome = std::move(outcome);
  slot.hash = hash;
  index_[pos] = static_cast<uint32_t>(next_ + 1);
  next_ = next_ + 1 == capacity_ ? 0 : next_ + 1;
}

const CommandOutcome* OutcomeWindow::Find(std::string_view id) const {
  if (capacity_ == 0) return nullptr;
  bool found = false;
  const size_t pos = Probe(id, std::hash<std::string_view>{}(id), &found);
  return found ? &ring_[index_[pos] - 1].outcome : nullptr;
}

void PositionLog::Append(Entry entry) {
  std::vector<std::pair<std::string, CommandOutcome>> outcomes = std::move(entry.outcomes);
  entry.outcomes.clear();
  if (entry.local && listener_) listener_(entry);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Before the entry: a waiter woken by it finds the outcome.
    for (auto& [id, outcome] : outcomes) outcomes_.Put(std::move(id), std::move(outcome));
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
  const CommandOutcome* found = outcomes_.Find(command_id);
  if (found == nullptr) return std::nullopt;
  return *found;
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
