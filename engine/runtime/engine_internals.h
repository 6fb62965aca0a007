// EngineInternals: what a running Engine shows of itself to the engine's
// own layers and tests, beyond the public include/kcqrs/engine.h: its
// EngineView (the position log, the instance directory). Not part of the
// embeddable API.
//
// Thread-safety: as EngineView's methods.
#ifndef KCQRS_ENGINE_RUNTIME_ENGINE_INTERNALS_H_
#define KCQRS_ENGINE_RUNTIME_ENGINE_INTERNALS_H_

#include "engine/serving/engine_view.h"
#include "kcqrs/engine.h"

namespace kcqrs::engine {

struct EngineInternals {
  // Lives as long as `engine`.
  static EngineView* View(Engine& engine);
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_ENGINE_INTERNALS_H_
