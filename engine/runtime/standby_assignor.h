// Which tasks an instance keeps standby copies of (Kafka Streams: the
// standby half of its HighAvailabilityTaskAssignor).
//
// librdkafka's assignors are fixed (kcqrs uses range, for co-partitioning),
// so kcqrs cannot place active tasks where the freshest copy is, as Kafka
// Streams' assignor does. Standbys are placed instead, by every instance
// alike from the same InstanceDirectory, without coordination: a task's
// standbys go to the `replicas` live instances that follow its active
// holder in the ring of instance ids. With replicas = instances - 1 every
// instance has a copy of every task it does not run, so whichever instance
// the group gives a dead instance's tasks to restores only what its copy
// missed; with fewer replicas, the new owner holds a copy only when the
// assignor happens to pick one of them.
#ifndef KCQRS_ENGINE_RUNTIME_STANDBY_ASSIGNOR_H_
#define KCQRS_ENGINE_RUNTIME_STANDBY_ASSIGNOR_H_

#include <set>
#include <string>
#include <vector>

#include "engine/serving/instance_directory.h"

namespace kcqrs::engine {

// The tasks (of `all_tasks`, "0_1") that instance `self` keeps standbys of,
// given the live `instances` and what each holds active. A task with no
// known holder (between owners) is placed as if held by the instance its
// id hashes to, which keeps a copy too (replicas + 1 copies, at most one
// per instance): every copy that answered for the dead holder goes on
// answering while the task moves. Never a task `self` holds active.
std::set<std::string> StandbyTasksFor(const std::string& self,
                                      const std::vector<InstanceInfo>& instances,
                                      const std::vector<std::string>& all_tasks, int replicas);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_STANDBY_ASSIGNOR_H_
