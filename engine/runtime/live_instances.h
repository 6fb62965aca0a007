// The live instances of an application as its `<application.id>-instances`
// topic tells them, read once from outside the application: what `kcqrs
// describe --live` prints (engine/runtime/instance_metadata.h says how the
// instances publish themselves). It keeps engine/kafka out of app/.
//
// Thread-safety: free functions without shared state.
#ifndef KCQRS_ENGINE_RUNTIME_LIVE_INSTANCES_H_
#define KCQRS_ENGINE_RUNTIME_LIVE_INSTANCES_H_

#include <chrono>
#include <string>
#include <vector>

#include "engine/serving/instance_directory.h"
#include "kcqrs/options.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

// Reads the topic from its start to its end (within `timeout`) and returns
// the instances whose last record is a heartbeat younger than three
// heartbeats (by the record's timestamp), ordered by id. A cleanly stopped
// instance left a tombstone and is not listed. Errors: InvalidArgument for
// `kafka.bootstrap_servers: embedded` (that Kafka lives inside the `kcqrs
// run` process), NotFound when the topic does not exist (the application
// never ran against this cluster), Unavailable / TimedOut when Kafka does
// not answer.
Result<std::vector<InstanceInfo>> ReadLiveInstances(const EngineOptions& options,
                                                    std::chrono::milliseconds timeout);

// For people: one block per instance with its URL and tasks; or, with
// `json`, {"application":..,"instances":[{"id","url","active_tasks",
// "standby_tasks","updated_ms"}]}.
std::string FormatLiveInstances(const std::string& application_id,
                                const std::vector<InstanceInfo>& instances, bool json);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_LIVE_INSTANCES_H_
