// CommandOutcome: what a command handler decided for one command, and the
// recorder the engine's own tasks offer for it.
//
// The aggregate's store keeps only each command's id and a pointer to its
// outcome (the version it made, or the rejection code): enough to skip a
// retry. The whole outcome (events, or rejection with reason) goes to the
// recorder, which the runtime hands to the PositionLog when the commit that
// decided it lands, for the `POST /commands?wait=true` that asks for it.
#ifndef KCQRS_ENGINE_PROCESSORS_COMMAND_OUTCOME_H_
#define KCQRS_ENGINE_PROCESSORS_COMMAND_OUTCOME_H_

#include <cstdint>
#include <string>

namespace kcqrs::engine {

struct CommandOutcome {
  bool rejected = false;
  std::string code;     // rejected: the code
  std::string reason;   // rejected: the reason
  std::string events;   // accepted: the events, as a JSON array
  int64_t version = 0;  // accepted: the aggregate version after its events
};

// Offered by the ProcessorContext of the engine's own tasks (a processor
// finds it with dynamic_cast; a context without it records nothing). What a
// record records is dropped with its other effects when the record fails.
class OutcomeRecorder {
 public:
  virtual ~OutcomeRecorder() = default;
  virtual void RecordOutcome(std::string command_id, CommandOutcome outcome) = 0;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_COMMAND_OUTCOME_H_
