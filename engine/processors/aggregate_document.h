// AggregateDocument: one aggregate as its store holds it,
//   {"commands": [outcome, ...], "state": <state>, "version": <n>}
// read and rewritten by the command handler for every command.
//
// The outcomes are the dedup index: {"id": ..., "v": <version it made>} or
// {"id": ..., "rejected": "<code>"} (earlier stores kept whole outcomes,
// {"events": [...], "id": ..., "rejected": {...}}, read alike). They can
// outweigh the state, yet the command handler only looks for a command id
// among them and appends one. So when the stored text is canonical (as
// DumpJson writes it, which is how kcqrs stores it), the outcomes stay text:
// their ids are found by a scan, and Serialize copies them back verbatim
// around the new outcome and the re-serialized state. Only the state is
// parsed. Stored text of any other form is parsed whole and handled as a
// document, as the command handler always did. Either way Serialize writes
// the same bytes as parsing the whole document, changing it and dumping it
// again would (tests/engine/aggregate_document_test.cc checks both against
// each other).
//
// Thread-safety: a value; none.
#ifndef KCQRS_ENGINE_PROCESSORS_AGGREGATE_DOCUMENT_H_
#define KCQRS_ENGINE_PROCESSORS_AGGREGATE_DOCUMENT_H_

#include "json/document.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kcqrs::engine {

class AggregateDocument {
 public:
  // A new aggregate: {"commands": [], "state": null, "version": 0}.
  AggregateDocument();

  // The stored text; nullopt when it is not a JSON object.
  static std::optional<AggregateDocument> FromStored(std::string stored);

  // The state (null before the first event); may be replaced or changed.
  kcqrs::Json& state();
  // The "version" field, 0 when absent.
  int64_t version() const;
  void set_version(int64_t version);

  // Whether one of the kept outcomes has "id" == command_id.
  bool HasOutcome(std::string_view command_id) const;
  // Appends `outcome` to the commands and keeps only the last `keep`.
  void AppendOutcome(const kcqrs::Json& outcome, size_t keep);

  // Drops the oldest outcomes until Serialize() is at most `max_bytes` long,
  // or none is left; returns how many it dropped. The state and version are
  // never touched, so the result may still be longer when they alone are.
  size_t DropOldestOutcomesToFit(size_t max_bytes);

  // How many outcomes are kept.
  size_t outcome_count() const;

  // The document as text, to store.
  std::string Serialize() const;

  // True when the outcomes are kept as text (the stored text was canonical).
  bool spliced() const { return !whole_.has_value(); }

 private:
  // An outcome: a slice of stored_, or text of its own (appended ones).
  struct Outcome {
    size_t begin = 0;  // of the text in stored_, unless owned
    size_t size = 0;
    size_t id_begin = 0;  // of the id in stored_, unless owned
    size_t id_size = 0;
    bool has_id = false;
    bool is_owned = false;
    std::string owned;     // the text of an appended outcome
    std::string owned_id;  // and its id
  };
  std::string_view Text(const Outcome& o) const;
  std::string_view Id(const Outcome& o) const;

  // Scans canonical text; false when `stored_` is not in that form.
  bool Splice();
  // One outcome of the forms kcqrs writes, at *i in `t` (o->begin): true
  // and *i past it, or false with *i unchanged.
  static bool SpliceFlatOutcome(std::string_view t, size_t* i, Outcome* o);

  // Spliced form.
  std::string stored_;
  std::vector<Outcome> outcomes_;
  kcqrs::Json state_;
  int64_t version_ = 0;

  // Otherwise: the whole document.
  std::optional<kcqrs::Json> whole_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_AGGREGATE_DOCUMENT_H_
