// AggregateDocument must write exactly what the command handler wrote when
// it parsed the whole stored document, changed it and dumped it: the store
// values (and so the changelogs) are a format that other systems compare.
#include "engine/processors/aggregate_document.h"

#include "engine/codec/json_codec.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

// The command handler's way before AggregateDocument (with the codec, which
// keeps decimals as their text).
struct Reference {
  json doc;

  static std::optional<Reference> FromStored(const std::string& stored) {
    json j = ParseJson(stored);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    j["commands"];
    return Reference{std::move(j)};
  }
  json& state() { return doc["state"]; }
  int64_t version() const { return doc.value("version", int64_t{0}); }
  void set_version(int64_t v) { doc["version"] = v; }
  bool HasOutcome(const std::string& id) const {
    for (const json& c : doc.at("commands")) {
      if (!c.is_object()) continue;
      auto it = c.find("id");
      if (it != c.end() && it->is_string() && *it == id) return true;
    }
    return false;
  }
  void AppendOutcome(const json& outcome, size_t keep) {
    json& commands = doc["commands"];
    commands.push_back(outcome);
    if (commands.size() > keep) {
      commands.erase(commands.begin(),
                     commands.begin() + static_cast<std::ptrdiff_t>(commands.size() - keep));
    }
  }
};

json Outcome(const std::string& id, int n) {
  json events = json::array();
  for (int i = 0; i < n; ++i) {
    events.push_back({{"type", "QuantityAdjusted"}, {"orderId", "o-000042"},
                      {"product", "p-598"}, {"delta", -2 + i}, {"quantity", 3.5 * i}});
  }
  if (n == 0) return {{"id", id}, {"rejected", {{"code", "invalid"}, {"reason", "no \"way\""}}}};
  return {{"id", id}, {"events", events}};
}

// The outcomes kcqrs writes today, {"id":...,"v":N} and
// {"id":...,"rejected":"code"}, which AggregateDocument reads on a fast
// path; with the edges that path must leave to the general one (a zero,
// negative or huge version, a code with an escape or beyond ASCII, a key
// more).
json FlatOutcome(const std::string& id, int variant) {
  switch (variant) {
    case 0: return {{"id", id}, {"v", 7}};
    case 1: return {{"id", id}, {"rejected", "invalid"}};
    case 2: return {{"id", id}, {"v", 0}};
    case 3: return {{"id", id}, {"v", -3}};
    case 4: return {{"id", id}, {"v", 1234567890123456789LL}};
    case 5: return {{"id", id}, {"rejected", "in\"valid"}};
    case 6: return {{"id", id}, {"rejected", "caf\xc3\xa9"}};
    case 7: return {{"id", id}, {"v", 2}, {"w", 1}};
    default: return {{"id", id}, {"rejected", ""}};
  }
}

TEST(AggregateDocumentTest, ANewAggregateIsEmpty) {
  AggregateDocument doc;
  EXPECT_TRUE(doc.state().is_null());
  EXPECT_EQ(doc.version(), 0);
  EXPECT_FALSE(doc.HasOutcome("c-1"));
  EXPECT_EQ(doc.Serialize(), R"({"commands":[],"state":null,"version":0})");
  doc.state() = {{"status", "CREATED"}};
  doc.set_version(1);
  doc.AppendOutcome(Outcome("c-1", 1), 100);
  EXPECT_TRUE(doc.HasOutcome("c-1"));
  json expected = {{"version", 1}, {"state", {{"status", "CREATED"}}},
                   {"commands", json::array({Outcome("c-1", 1)})}};
  EXPECT_EQ(doc.Serialize(), expected.dump());
}

TEST(AggregateDocumentTest, StoredTextThatIsNoObjectIsRefused) {
  EXPECT_FALSE(AggregateDocument::FromStored("not json").has_value());
  EXPECT_FALSE(AggregateDocument::FromStored("[1,2]").has_value());
  EXPECT_FALSE(AggregateDocument::FromStored("").has_value());
}

TEST(AggregateDocumentTest, CanonicalTextIsSplicedOtherTextIsParsed) {
  json doc = {{"version", 3},
              {"state", {{"product", "p-1"}, {"quantity", 4}}},
              {"commands", json::array({Outcome("c-1", 1), Outcome("c-2", 0), 7, "x"})}};
  auto spliced = AggregateDocument::FromStored(doc.dump());
  ASSERT_TRUE(spliced.has_value());
  EXPECT_TRUE(spliced->spliced());
  EXPECT_TRUE(spliced->HasOutcome("c-2"));
  EXPECT_FALSE(spliced->HasOutcome("c-3"));
  EXPECT_EQ(spliced->version(), 3);
  EXPECT_EQ(spliced->state(), doc["state"]);

  // The forms kcqrs writes today, spliced too.
  json flat = {{"version", 2},
               {"state", {{"product", "p-1"}}},
               {"commands", json::array({FlatOutcome("c-1", 0), FlatOutcome("c-2", 1),
                                         FlatOutcome("c-\xc3\xa9", 0), FlatOutcome("c-4", 7)})}};
  auto read = AggregateDocument::FromStored(flat.dump());
  ASSERT_TRUE(read.has_value());
  EXPECT_TRUE(read->spliced());
  EXPECT_EQ(read->outcome_count(), 4u);
  for (const char* id : {"c-1", "c-2", "c-\xc3\xa9", "c-4"}) EXPECT_TRUE(read->HasOutcome(id)) << id;
  EXPECT_FALSE(read->HasOutcome("c-"));
  EXPECT_EQ(read->Serialize(), flat.dump());

  for (const std::string& other : std::vector<std::string>{
           doc.dump(2), R"({"commands":[],"extra":1,"state":null,"version":0})",
        R"({"state":null,"version":0})", R"({"commands":[{"id":"c\"1"}],"state":null,"version":0})",
        R"({"commands":[],"state":null,"version":1.0})", R"({"version":2,"state":{},"commands":[]})"}) {
    auto parsed = AggregateDocument::FromStored(other);
    ASSERT_TRUE(parsed.has_value()) << other;
    EXPECT_FALSE(parsed->spliced()) << other;
  }
}

// Random aggregates, canonical or not, through random command handling:
// the same bytes as the reference every time.
TEST(AggregateDocumentTest, WritesWhatParsingAndDumpingWrote) {
  std::mt19937 rng(5);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  auto id = [&] {
    static const char* kIds[] = {"c-1", "c-2", "c-3", "c-4", "", "c-\"5", "c-\xc3\xa9"};
    return std::string(kIds[pick(7)]);
  };
  int spliced = 0;
  for (int round = 0; round < 3000; ++round) {
    json stored = json::object();
    stored["version"] = pick(5) == 0 ? json(-pick(3)) : json(pick(1000));
    stored["state"] = pick(3) == 0 ? json(nullptr)
                                   : json{{"q", pick(9)}, {"s", "CREATED"}, {"f", 0.5 * pick(5)}};
    json commands = json::array();
    for (int i = pick(6); i > 0; --i) {
      const int kind = pick(8);
      commands.push_back(kind == 0   ? json(i)
                         : kind < 4 ? Outcome(id(), pick(3))
                                    : FlatOutcome(id(), pick(3) == 0 ? pick(9) : pick(2)));
    }
    stored["commands"] = commands;
    if (pick(10) == 0) stored["extra"] = "kept";
    if (pick(10) == 0) stored.erase("version");
    const std::string text = pick(8) == 0 ? stored.dump(1) : stored.dump();

    auto doc = AggregateDocument::FromStored(text);
    auto ref = Reference::FromStored(text);
    ASSERT_TRUE(doc.has_value() && ref.has_value());
    spliced += doc->spliced() ? 1 : 0;
    const std::string command_id = id();
    ASSERT_EQ(doc->HasOutcome(command_id), ref->HasOutcome(command_id)) << text;
    ASSERT_EQ(doc->version(), ref->version()) << text;
    ASSERT_EQ(DumpJson(doc->state()), DumpJson(ref->state())) << text;
    if (pick(2) == 0) {
      json next = {{"q", pick(9)}, {"s", pick(2) == 0 ? "CANCELLED" : "caf\xc3\xa9"}};
      doc->state() = next;
      ref->state() = next;
    }
    if (pick(2) == 0) {
      doc->set_version(doc->version() + 1);
      ref->set_version(ref->version() + 1);
    }
    for (int i = pick(3); i > 0; --i) {
      const json outcome =
          pick(2) == 0 ? Outcome(command_id, pick(3)) : FlatOutcome(command_id, pick(9));
      const size_t keep = static_cast<size_t>(1 + pick(6));
      doc->AppendOutcome(outcome, keep);
      ref->AppendOutcome(outcome, keep);
      ASSERT_EQ(doc->HasOutcome(command_id), ref->HasOutcome(command_id));
    }
    ASSERT_EQ(doc->Serialize(), DumpJson(ref->doc)) << text;
  }
  EXPECT_GT(spliced, 1000) << "most generated aggregates should be canonical";
}

}  // namespace
}  // namespace kcqrs::engine

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

// The command handler keeps a stored aggregate within the record size limit
// by dropping its oldest outcomes: the longest tail of outcomes that fits,
// the same bytes whether the outcomes were kept as text or parsed.
TEST(AggregateDocumentDropTest, DropsTheOldestOutcomesUntilItFits) {
  json doc = {{"version", 9}, {"state", {{"n", 9}}}, {"commands", json::array()}};
  for (int i = 0; i < 9; ++i) {
    doc["commands"].push_back({{"events", json::array({{{"type", "E"}, {"i", i}}})},
                               {"id", "c-" + std::to_string(i)}});
  }
  const std::string canonical = doc.dump();
  const std::string other = doc.dump(1);  // parsed whole
  for (size_t max : {canonical.size() + 10, canonical.size(), canonical.size() - 1,
                     size_t{200}, size_t{60}, size_t{10}}) {
    auto spliced = AggregateDocument::FromStored(canonical);
    auto whole = AggregateDocument::FromStored(other);
    ASSERT_TRUE(spliced && whole);
    ASSERT_TRUE(spliced->spliced());
    ASSERT_FALSE(whole->spliced());
    const size_t dropped = spliced->DropOldestOutcomesToFit(max);
    EXPECT_EQ(whole->DropOldestOutcomesToFit(max), dropped) << max;
    const std::string text = spliced->Serialize();
    EXPECT_EQ(whole->Serialize(), text) << max;
    EXPECT_EQ(spliced->outcome_count(), 9 - dropped);
    // Fits, unless no outcome is left; and no more was dropped than needed.
    if (spliced->outcome_count() > 0) {
      EXPECT_LE(text.size(), max);
    }
    if (dropped > 0) {
      json longer = json::parse(canonical);
      longer["commands"].erase(longer["commands"].begin(),
                               longer["commands"].begin() + static_cast<long>(dropped - 1));
      EXPECT_GT(longer.dump().size(), max) << max;
    }
    // The newest outcome is the last to go.
    EXPECT_EQ(spliced->HasOutcome("c-8"), spliced->outcome_count() > 0);
    EXPECT_EQ(json::parse(text)["state"], doc["state"]);
  }
}

}  // namespace
}  // namespace kcqrs::engine
