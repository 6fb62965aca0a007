// KeyValueStore: the state a processor reads and writes, and the read-only
// view the query side reads.
//
// Keys and values are bytes (std::string_view); kcqrs stores JSON documents
// as UTF-8 text, ordered by the bytes of the key. Implementations: RocksDB
// (default) and memory, both in state/; the contract is the same for both
// and tested by one typed test.
//
// Thread-safety: a KeyValueStore handed to a processor belongs to one stream
// thread and must only be used from it. A ReadOnlyKeyValueStore obtained for
// queries is safe for concurrent use from many threads (each implementation
// says how).
#ifndef KCQRS_KEY_VALUE_STORE_H_
#define KCQRS_KEY_VALUE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "kcqrs/status.h"

namespace kcqrs {

// Walks key/value pairs in key order. key() and value() stay valid until the
// next call to Next() or the iterator's destruction.
class KeyValueIterator {
 public:
  virtual ~KeyValueIterator() = default;
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // Non-OK when iteration stopped because of an error rather than the end.
  virtual Status status() const = 0;
};

class ReadOnlyKeyValueStore {
 public:
  virtual ~ReadOnlyKeyValueStore() = default;

  virtual const std::string& name() const = 0;

  // The value, or an empty optional when the key is absent.
  virtual Result<std::optional<std::string>> Get(std::string_view key) const = 0;

  // Keys k with from <= k < to, in byte order. An empty `to` means no upper
  // bound; an empty `from` starts at the first key.
  virtual std::unique_ptr<KeyValueIterator> Range(std::string_view from,
                                                  std::string_view to) const = 0;

  // Keys that start with `prefix`, in byte order.
  virtual std::unique_ptr<KeyValueIterator> Prefix(std::string_view prefix) const = 0;

  // An estimate (RocksDB's estimate-num-keys for RocksDB stores).
  virtual uint64_t ApproximateNumEntries() const = 0;
};

class KeyValueStore : public ReadOnlyKeyValueStore {
 public:
  virtual Status Put(std::string_view key, std::string_view value) = 0;
  virtual Status Delete(std::string_view key) = 0;
};

}  // namespace kcqrs

#endif  // KCQRS_KEY_VALUE_STORE_H_
