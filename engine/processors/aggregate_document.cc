#include "engine/processors/aggregate_document.h"

#include <charconv>
#include <cstring>
#include <system_error>
#include <utility>

#include "engine/codec/json_codec.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

// Matches `literal` at *i and moves past it.
bool Expect(std::string_view t, size_t* i, std::string_view literal) {
  if (t.compare(*i, literal.size(), literal) != 0) return false;
  *i += literal.size();
  return true;
}

// As Expect, for a literal whose length the compiler knows: the compare
// is then a few instructions inline rather than a call to memcmp.
template <size_t N>
bool ExpectLiteral(std::string_view t, size_t* i, const char (&literal)[N]) {
  constexpr size_t kSize = N - 1;
  if (t.size() - *i < kSize || std::memcmp(t.data() + *i, literal, kSize) != 0) return false;
  *i += kSize;
  return true;
}

// Moves *i past the content and closing quote of a string made of
// printable ASCII without escapes, which canonical text writes as it is;
// false for anything else (the general path decides).
bool SkipPlainAscii(std::string_view t, size_t* i) {
  for (size_t j = *i; j < t.size(); ++j) {
    const unsigned char c = static_cast<unsigned char>(t[j]);
    if (c == '"') {
      *i = j + 1;
      return true;
    }
    if (c < 0x20 || c >= 0x80 || c == '\\') return false;
  }
  return false;
}

}  // namespace

AggregateDocument::AggregateDocument() = default;

// The outcomes kcqrs writes, {"id":"c-1","v":3} and
// {"id":"c-2","rejected":"invalid"}, read without the general scanner:
// reading them was a twentieth of the process's instructions on the broker
// (7,400 an aggregate of ten outcomes). Anything else, an escape, a byte
// beyond ASCII, another key, leaves it to the general path from `o->begin`.
bool AggregateDocument::SpliceFlatOutcome(std::string_view t, size_t* i, Outcome* o) {
  size_t j = *i;
  if (!ExpectLiteral(t, &j, R"({"id":")")) return false;
  const size_t id_begin = j;
  if (!SkipPlainAscii(t, &j)) return false;
  o->id_begin = id_begin;
  o->id_size = j - 1 - id_begin;
  if (ExpectLiteral(t, &j, R"(,"v":)")) {
    // A positive integer as DumpJson writes it: no sign, no leading zero.
    if (j >= t.size() || t[j] < '1' || t[j] > '9') return false;
    const size_t digits = j;
    while (j < t.size() && t[j] >= '0' && t[j] <= '9') ++j;
    if (j - digits > 18) return false;
  } else if (ExpectLiteral(t, &j, R"(,"rejected":")")) {
    if (!SkipPlainAscii(t, &j)) return false;
  } else {
    return false;
  }
  if (!ExpectLiteral(t, &j, "}")) return false;
  o->has_id = true;
  o->size = j - o->begin;
  *i = j;
  return true;
}

std::optional<AggregateDocument> AggregateDocument::FromStored(std::string stored) {
  AggregateDocument doc;
  doc.stored_ = std::move(stored);
  if (doc.Splice()) return doc;
  doc.outcomes_.clear();
  doc.state_ = nullptr;
  doc.version_ = 0;
  json whole = ParseJson(doc.stored_);
  if (whole.is_discarded() || !whole.is_object()) return std::nullopt;
  whole["commands"];  // as the command handler always did: present from here on
  doc.whole_ = std::move(whole);
  doc.stored_.clear();
  return doc;
}

bool AggregateDocument::Splice() {
  const std::string_view t = stored_;
  size_t i = 0;
  if (!Expect(t, &i, R"({"commands":[)")) return false;
  outcomes_.reserve(16);
  if (i < t.size() && t[i] == ']') {
    ++i;
  } else {
    while (true) {
      Outcome o;
      o.begin = i;
      if (SpliceFlatOutcome(t, &i, &o)) {
        // Read.
      } else if (i < t.size() && t[i] == '{') {
        // An object: canonical, and its top-level "id" noted.
        ++i;
        if (i < t.size() && t[i] == '}') {
          ++i;
        } else {
          std::string_view previous;
          bool first = true;
          while (true) {
            std::string_view key;
            if (!SkipCanonicalPlainString(t, &i, &key)) return false;
            if (!first && !(previous < key)) return false;  // out of order, or repeated
            previous = key;
            first = false;
            if (!Expect(t, &i, ":")) return false;
            if (key == "id" && i < t.size() && t[i] == '"') {
              // An id with escapes would need decoding: parse instead.
              std::string_view id;
              if (!SkipCanonicalPlainString(t, &i, &id)) return false;
              o.has_id = true;
              o.id_begin = static_cast<size_t>(id.data() - t.data());
              o.id_size = id.size();
            } else if (!SkipCanonical(t, &i)) {
              return false;
            }
            if (i >= t.size()) return false;
            if (t[i] == '}') {
              ++i;
              break;
            }
            if (t[i] != ',') return false;
            ++i;
          }
        }
      } else if (!SkipCanonical(t, &i)) {
        return false;
      }
      o.size = i - o.begin;
      outcomes_.push_back(std::move(o));
      if (i >= t.size()) return false;
      if (t[i] == ']') {
        ++i;
        break;
      }
      if (t[i] != ',') return false;
      ++i;
    }
  }
  if (!Expect(t, &i, R"(,"state":)")) return false;
  const size_t state_begin = i;
  if (!SkipCanonical(t, &i)) return false;
  state_ = ParseJson(t.substr(state_begin, i - state_begin));
  if (state_.is_discarded()) return false;
  if (!Expect(t, &i, R"(,"version":)")) return false;
  const size_t version_begin = i;
  if (!SkipCanonical(t, &i)) return false;
  const char* end = t.data() + i;
  auto [ptr, ec] = std::from_chars(t.data() + version_begin, end, version_);
  if (ec != std::errc() || ptr != end) return false;  // not an integer
  return Expect(t, &i, "}") && i == t.size();
}

std::string_view AggregateDocument::Text(const Outcome& o) const {
  return o.is_owned ? std::string_view(o.owned) : std::string_view(stored_).substr(o.begin, o.size);
}

std::string_view AggregateDocument::Id(const Outcome& o) const {
  return o.is_owned ? std::string_view(o.owned_id)
                    : std::string_view(stored_).substr(o.id_begin, o.id_size);
}

json& AggregateDocument::state() { return whole_ ? (*whole_)["state"] : state_; }

int64_t AggregateDocument::version() const {
  return whole_ ? whole_->value("version", int64_t{0}) : version_;
}

void AggregateDocument::set_version(int64_t version) {
  if (whole_) {
    (*whole_)["version"] = version;
  } else {
    version_ = version;
  }
}

bool AggregateDocument::HasOutcome(std::string_view command_id) const {
  if (whole_) {
    for (const json& c : whole_->at("commands")) {
      if (!c.is_object()) continue;
      auto it = c.find("id");
      if (it != c.end() && it->is_string() && it->get_ref<const std::string&>() == command_id) {
        return true;
      }
    }
    return false;
  }
  for (const Outcome& o : outcomes_) {
    if (o.has_id && Id(o) == command_id) return true;
  }
  return false;
}

void AggregateDocument::AppendOutcome(const json& outcome, size_t keep) {
  if (whole_) {
    json& commands = (*whole_)["commands"];
    commands.push_back(outcome);
    if (commands.size() > keep) {
      commands.erase(commands.begin(),
                     commands.begin() + static_cast<std::ptrdiff_t>(commands.size() - keep));
    }
    return;
  }
  Outcome o;
  o.is_owned = true;
  o.owned = DumpJson(outcome);
  if (outcome.is_object()) {
    auto it = outcome.find("id");
    if (it != outcome.end() && it->is_string()) {
      o.has_id = true;
      o.owned_id = it->get<std::string>();
    }
  }
  outcomes_.push_back(std::move(o));
  if (outcomes_.size() > keep) {
    outcomes_.erase(outcomes_.begin(),
                    outcomes_.begin() + static_cast<std::ptrdiff_t>(outcomes_.size() - keep));
  }
}

size_t AggregateDocument::outcome_count() const {
  if (!whole_) return outcomes_.size();
  const json& commands = whole_->at("commands");
  return commands.is_array() ? commands.size() : 0;
}

size_t AggregateDocument::DropOldestOutcomesToFit(size_t max_bytes) {
  if (whole_) {
    // Stored text of another form: rare (it is canonical from its first
    // write by kcqrs on), so measure by writing it out.
    json& commands = (*whole_)["commands"];
    if (!commands.is_array()) return 0;
    size_t dropped = 0;
    while (!commands.empty() && DumpJson(*whole_).size() > max_bytes) {
      commands.erase(commands.begin());
      ++dropped;
    }
    return dropped;
  }
  // The outcomes are text: the size falls by each one's length and its comma.
  size_t size = Serialize().size();
  size_t dropped = 0;
  while (dropped < outcomes_.size() && size > max_bytes) {
    size -= Text(outcomes_[dropped]).size() + (dropped + 1 < outcomes_.size() ? 1 : 0);
    ++dropped;
  }
  outcomes_.erase(outcomes_.begin(), outcomes_.begin() + static_cast<std::ptrdiff_t>(dropped));
  return dropped;
}

std::string AggregateDocument::Serialize() const {
  if (whole_) return DumpJson(*whole_);
  std::string out;
  out.reserve(stored_.size() + 256);
  out.append(R"({"commands":[)");
  for (size_t k = 0; k < outcomes_.size(); ++k) {
    if (k > 0) out.push_back(',');
    out.append(Text(outcomes_[k]));
  }
  out.append(R"(],"state":)");
  AppendJson(state_, &out);
  out.append(R"(,"version":)");
  char buf[24];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), version_);
  (void)ec;
  out.append(buf, ptr);
  out.push_back('}');
  return out;
}

}  // namespace kcqrs::engine
