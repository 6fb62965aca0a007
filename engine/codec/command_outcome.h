// CommandOutcome: what a command handler decided for one command, its
// events or its rejection. The command handler makes it (engine/processors),
// the PositionLog keeps the recent ones for POST /commands?wait=true
// (engine/serving).
#ifndef KCQRS_ENGINE_CODEC_COMMAND_OUTCOME_H_
#define KCQRS_ENGINE_CODEC_COMMAND_OUTCOME_H_

#include <cstdint>
#include <string>

namespace kcqrs::engine {

struct CommandOutcome {
  bool rejected = false;
  std::string code;     // rejected: the code
  std::string reason;   // rejected: the reason
  std::string events;   // accepted: the events, as a JSON array
  // Accepted: the aggregate version after its events; rejected: the
  // version it was decided against (a conflict's current version).
  int64_t version = 0;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_CODEC_COMMAND_OUTCOME_H_
