// MapStore: one partition of a store as a sorted map, for tests that serve
// stores without RocksDB (HttpApi over a fake engine).
#ifndef KCQRS_TESTS_SUPPORT_MAP_STORE_H_
#define KCQRS_TESTS_SUPPORT_MAP_STORE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "kcqrs/key_value_store.h"

namespace kcqrs::testing {

class MapStore final : public ReadOnlyKeyValueStore {
 public:
  explicit MapStore(std::map<std::string, std::string> data) : data_(std::move(data)) {}
  const std::string& name() const override { return name_; }
  Result<std::optional<std::string>> Get(std::string_view key) const override {
    auto it = data_.find(std::string(key));
    if (it == data_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  std::unique_ptr<KeyValueIterator> Range(std::string_view from,
                                          std::string_view to) const override {
    auto begin = data_.lower_bound(std::string(from));
    auto end = to.empty() ? data_.end() : data_.lower_bound(std::string(to));
    return std::make_unique<Iterator>(begin, end);
  }
  std::unique_ptr<KeyValueIterator> Prefix(std::string_view prefix) const override {
    return Range(prefix, "");
  }
  uint64_t ApproximateNumEntries() const override { return data_.size(); }

 private:
  using It = std::map<std::string, std::string>::const_iterator;
  class Iterator final : public KeyValueIterator {
   public:
    Iterator(It it, It end) : it_(it), end_(end) {}
    bool Valid() const override { return it_ != end_; }
    void Next() override { ++it_; }
    std::string_view key() const override { return it_->first; }
    std::string_view value() const override { return it_->second; }
    Status status() const override { return Status::OK(); }

   private:
    It it_, end_;
  };
  std::string name_ = "map";
  std::map<std::string, std::string> data_;
};

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_SUPPORT_MAP_STORE_H_
