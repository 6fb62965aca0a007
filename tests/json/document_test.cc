// kcqrs::Json (json/document.h) against nlohmann's default std::map-based
// json: the same operations give the same documents, text and order.
#include "json/document.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace kcqrs {
namespace {

using Reference = nlohmann::json;  // std::map objects

std::string Key(std::mt19937& rng) {
  // Few enough keys that operations hit existing ones, with shared
  // prefixes and a key that sorts before and after the others.
  static const std::vector<std::string> keys = {"", "a", "aa", "ab", "b", "type", "typ",
                                                "z", "\xc3\xa9", "orderId", "quantity"};
  return keys[rng() % keys.size()];
}

TEST(JsonDocumentTest, RandomObjectOperationsMatchStdMapObjects) {
  std::mt19937 rng(20261201);
  for (int round = 0; round < 200; ++round) {
    Json ours = Json::object();
    Reference theirs = Reference::object();
    for (int op = 0; op < 60; ++op) {
      const std::string key = Key(rng);
      const int value = static_cast<int>(rng() % 100);
      switch (rng() % 6) {
        case 0:
          ours[key] = value;
          theirs[key] = value;
          break;
        case 1:
          ours.emplace(key, value);
          theirs.emplace(key, value);
          break;
        case 2:
          EXPECT_EQ(ours.erase(key), theirs.erase(key)) << key;
          break;
        case 3:
          EXPECT_EQ(ours.contains(key), theirs.contains(key)) << key;
          EXPECT_EQ(ours.count(key), theirs.count(key)) << key;
          break;
        case 4:
          if (theirs.contains(key)) {
            EXPECT_EQ(ours.at(key).dump(), theirs.at(key).dump()) << key;
          } else {
            EXPECT_THROW(ours.at(key), Json::out_of_range) << key;
          }
          break;
        case 5: {  // a nested object, then a member of it
          const std::string inner = Key(rng);
          if (!ours[key].is_object()) ours[key] = Json::object();
          if (!theirs[key].is_object()) theirs[key] = Reference::object();
          ours[key][inner] = Json::array({value, "x"});
          theirs[key][inner] = Reference::array({value, "x"});
          break;
        }
      }
      ASSERT_EQ(ours.dump(), theirs.dump()) << "round " << round << ", operation " << op;
      ASSERT_EQ(ours.size(), theirs.size());
    }
  }
}

TEST(JsonDocumentTest, ParsesToTheSameDocumentWithKeysInOrderAndTheLastDuplicateWinning) {
  const std::string text =
      R"({"z":1,"a":{"y":[1,{"q":2,"b":3}],"c":null},"m":"x","a2":true,"z":2,"":0})";
  const Json ours = Json::parse(text);
  const Reference theirs = Reference::parse(text);
  EXPECT_EQ(ours.dump(), theirs.dump());
  EXPECT_EQ(ours.dump(), R"({"":0,"a":{"c":null,"y":[1,{"b":3,"q":2}]},"a2":true,"m":"x","z":2})");
  EXPECT_EQ(ours.dump(2), theirs.dump(2));
}

TEST(JsonDocumentTest, ComparesAsStdMapObjectsDo) {
  std::mt19937 rng(7);
  std::vector<std::string> texts;
  for (int i = 0; i < 60; ++i) {
    Reference d = Reference::object();
    const int members = static_cast<int>(rng() % 4);
    for (int m = 0; m < members; ++m) d[Key(rng)] = static_cast<int>(rng() % 3);
    texts.push_back(d.dump());
  }
  for (const std::string& a : texts) {
    for (const std::string& b : texts) {
      EXPECT_EQ(Json::parse(a) == Json::parse(b), Reference::parse(a) == Reference::parse(b))
          << a << " vs " << b;
      EXPECT_EQ(Json::parse(a) < Json::parse(b), Reference::parse(a) < Reference::parse(b))
          << a << " vs " << b;
    }
  }
}

TEST(JsonDocumentTest, AppendUnsortedThenSortMembersKeepsTheLastOfEachKey) {
  Json doc = Json::object();
  auto& members = *doc.get_ptr<Json::object_t*>();
  members.AppendUnsorted("b", 1);
  members.AppendUnsorted("a", 2);
  members.AppendUnsorted("b", 3);
  members.AppendUnsorted("c", 4);
  members.AppendUnsorted("a", 5);
  members.SortMembers();
  EXPECT_EQ(doc.dump(), R"({"a":5,"b":3,"c":4})");
}

TEST(JsonDocumentTest, SortsManyMembersGivenInReverseOrder) {
  // The builders' path for large objects: past the insertion sort's size,
  // and as many members as a 1 MiB record can hold.
  Json doc = Json::object();
  auto& members = *doc.get_ptr<Json::object_t*>();
  constexpr int kMembers = 100'000;
  for (int i = kMembers - 1; i >= 0; --i) members.AppendUnsorted("k" + std::to_string(i), i);
  members.AppendUnsorted("k5", -5);  // a duplicate, last: it wins
  members.SortMembers();
  ASSERT_EQ(doc.size(), static_cast<size_t>(kMembers));
  EXPECT_EQ(doc.at("k5"), -5);
  EXPECT_EQ(doc.at("k99999"), 99999);
  std::string previous;
  for (const auto& [key, value] : doc.items()) {
    ASSERT_LT(previous, key);
    previous = key;
  }
}

TEST(JsonDocumentTest, MembersOfNestedObjectsSurviveInsertionsIntoTheParent) {
  Json doc = Json::object();
  doc["m"]["x"] = 1;
  Json& x = doc["m"]["x"];
  for (int i = 0; i < 100; ++i) doc["k" + std::to_string(i)] = i;  // moves doc's members
  x = 2;  // still the member of the nested object
  EXPECT_EQ(doc["m"]["x"], 2);
}

TEST(JsonDocumentTest, CopiesAndFreesEveryKindOfValue) {
  // Under ASan, a value freed twice, with the wrong allocator or not at all
  // fails the test.
  Json doc = Json::object();
  doc["string"] = "a string that does not fit the small-string buffer";
  doc["binary"] = Json::binary({1, 2, 3}, 7);
  doc["array"] = Json::array({1, "two", Json::object({{"three", 3.5}}), Json::array()});
  doc["object"] = Json::object({{"z", nullptr}, {"a", true}, {"m", -4}});
  doc["empty"] = Json::object();
  Json copy = doc;
  EXPECT_EQ(copy, doc);
  copy["object"]["a"] = false;
  EXPECT_NE(copy, doc);
  EXPECT_EQ(copy.dump(),
            R"({"array":[1,"two",{"three":3.5},[]],"binary":{"bytes":[1,2,3],"subtype":7},)"
            R"("empty":{},"object":{"a":false,"m":-4,"z":null},)"
            R"("string":"a string that does not fit the small-string buffer"})");
}

TEST(JsonDocumentTest, FreesDeeplyNestedDocumentsWithoutRecursion) {
  // A recursive destructor would need a stack frame per level: 200,000
  // levels overflow the main thread's stack (and ASan's checks it).
  for (bool objects : {false, true}) {
    Json doc = nullptr;
    for (int i = 0; i < 200'000; ++i) {
      Json outer = objects ? Json::object() : Json::array();
      if (objects) {
        outer["k"] = std::move(doc);
        outer["s"] = "a string that does not fit the small-string buffer";
      } else {
        outer.push_back(std::move(doc));
        outer.push_back(1);
      }
      doc = std::move(outer);
    }
    doc = nullptr;  // frees the 200,000 levels
    EXPECT_TRUE(doc.is_null());
  }
}

}  // namespace
}  // namespace kcqrs
