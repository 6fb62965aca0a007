// OutcomeRecorder: where a command handler tells what it decided for one
// command (engine/codec/command_outcome.h), offered by the engine's own tasks.
//
// The aggregate's store keeps only each command's id and a pointer to its
// outcome (the version it made, or the rejection code): enough to skip a
// retry. The whole outcome (events, or rejection with reason) goes to the
// recorder, which the runtime hands to the PositionLog when the commit that
// decided it lands, for the `POST /commands?wait=true` that asks for it.
#ifndef KCQRS_ENGINE_PROCESSORS_COMMAND_OUTCOME_H_
#define KCQRS_ENGINE_PROCESSORS_COMMAND_OUTCOME_H_

#include <string>

#include "engine/codec/command_outcome.h"

namespace kcqrs::engine {

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
