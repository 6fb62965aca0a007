// StoreRegistry: which partitions of which stores this process hosts, for
// interactive queries.
//
// Stream threads register a task's committed-data readers when the task is
// running and withdraw them when it closes; the HTTP server and
// Engine::GetStore read through them. Readers see only committed state, so
// a query never shows what a transaction may still abort.
//
// Thread-safety: all methods may be called from any thread (a mutex guards
// the maps; readers themselves are safe for concurrent use).
#ifndef KCQRS_ENGINE_SERVING_STORE_REGISTRY_H_
#define KCQRS_ENGINE_SERVING_STORE_REGISTRY_H_

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kcqrs/key_value_store.h"

namespace kcqrs::engine {

class StoreRegistry {
 public:
  // `partitions`: each store's partition count (its changelog's).
  explicit StoreRegistry(std::map<std::string, int> partitions)
      : partitions_(std::move(partitions)) {}

  void Add(const std::string& store, int32_t partition,
           std::shared_ptr<const ReadOnlyKeyValueStore> reader);
  void Remove(const std::string& store, int32_t partition);

  // A view of the whole store over the partitions hosted here: Get goes to
  // the key's partition (murmur2, as kcqrs produces), Range and Prefix
  // merge the hosted partitions in key order. nullptr for an unknown store.
  std::shared_ptr<const ReadOnlyKeyValueStore> View(const std::string& store) const;
  // As View, and sets *missing to the partitions of the store that the view
  // does not see (restoring, or hosted by another instance), in order, as
  // of the same moment: a scan over the view sees exactly the others.
  std::shared_ptr<const ReadOnlyKeyValueStore> View(const std::string& store,
                                                    std::vector<int32_t>* missing) const;

  // As View(store, missing), over the partitions `only` of the store (a
  // holder answering another instance's scan for some partitions):
  // *missing is those of `only` not hosted here. Not cached.
  std::shared_ptr<const ReadOnlyKeyValueStore> ViewOf(const std::string& store,
                                                      const std::set<int32_t>& only,
                                                      std::vector<int32_t>* missing) const;

  // The partitions of `store` hosted here now, with their readers.
  std::map<int32_t, std::shared_ptr<const ReadOnlyKeyValueStore>> Hosted(
      const std::string& store) const;

  int partitions(const std::string& store) const;
  std::vector<std::string> stores() const;

  // What a hosted partition of a store has applied: the next offset of each
  // input topic of its task. Stream threads set it after every commit.
  void SetPosition(const std::string& store, int32_t partition, const std::string& topic,
                   int64_t next_offset);
  // topic -> partition -> next offset, over the hosted partitions.
  std::map<std::string, std::map<int32_t, int64_t>> Positions(const std::string& store) const;

 private:
  // View's work, with mu_ held.
  std::shared_ptr<const ReadOnlyKeyValueStore> ViewLocked(const std::string& store,
                                                          int partitions) const;

  mutable std::mutex mu_;
  const std::map<std::string, int> partitions_;
  std::map<std::string, std::map<int32_t, std::shared_ptr<const ReadOnlyKeyValueStore>>>
      readers_;
  std::map<std::string, std::map<std::string, std::map<int32_t, int64_t>>> positions_;
  // View() per store, rebuilt when its hosted partitions change: a lookup
  // then costs a lock and a shared_ptr copy.
  mutable std::map<std::string, std::shared_ptr<const ReadOnlyKeyValueStore>> views_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_SERVING_STORE_REGISTRY_H_
