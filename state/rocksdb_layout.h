// How a task's state is laid out inside its RocksDB database. Private to
// state/ (and its tests, which damage databases on purpose); the layout is
// an on-disk format, so a change needs a new kFormatValue.
#ifndef KCQRS_STATE_ROCKSDB_LAYOUT_H_
#define KCQRS_STATE_ROCKSDB_LAYOUT_H_

#include <string>
#include <string_view>

namespace kcqrs::state::rocksdb_layout {

// The private column family holding the format marker and the checkpoint.
inline constexpr std::string_view kMetaColumnFamily = "kcqrs.meta";
// Written when the database is created; its absence means the directory was
// not made by kcqrs (or its creation was cut short), i.e. Corruption.
inline constexpr std::string_view kFormatKey = "format";
inline constexpr std::string_view kFormatValue = "kcqrs-task-state-1";
// The EncodeCheckpoint()ed checkpoint.
inline constexpr std::string_view kCheckpointKey = "checkpoint";

// Stores get a prefix so that no store name can collide with RocksDB's
// "default" column family or with the meta column family.
inline std::string StoreColumnFamily(std::string_view store) {
  return "store." + std::string(store);
}

}  // namespace kcqrs::state::rocksdb_layout

#endif  // KCQRS_STATE_ROCKSDB_LAYOUT_H_
