#include "engine/runtime/standby_assignor.h"

#include <algorithm>
#include <map>

#include "engine/codec/partitioner.h"

namespace kcqrs::engine {

std::set<std::string> StandbyTasksFor(const std::string& self,
                                      const std::vector<InstanceInfo>& instances,
                                      const std::vector<std::string>& all_tasks, int replicas) {
  std::vector<std::string> ring;
  std::map<std::string, std::string> holder;  // task -> instance id
  for (const InstanceInfo& i : instances) {
    ring.push_back(i.id);
    for (const std::string& t : i.active_tasks) holder.emplace(t, i.id);
  }
  std::sort(ring.begin(), ring.end());
  ring.erase(std::unique(ring.begin(), ring.end()), ring.end());
  std::set<std::string> out;
  const size_t n = ring.size();
  if (n == 0 || replicas <= 0) return out;
  // Held tasks have their copies on the others (none when alone); a task
  // between owners has one copy more, below, which an instance left alone
  // (the other of two died) keeps too: it is the only copy there is.
  const size_t copies = std::min<size_t>(static_cast<size_t>(replicas), n - 1);
  for (const std::string& task : all_tasks) {
    size_t start;
    auto h = holder.find(task);
    if (h != holder.end()) {
      start = static_cast<size_t>(std::find(ring.begin(), ring.end(), h->second) - ring.begin());
    } else {
      // murmur2, as every instance computes it alike.
      start = static_cast<size_t>(PartitionForKey(task, static_cast<int32_t>(n)));
    }
    // Between owners (its holder died and left the directory, before the
    // group gives its task to another) nobody runs the task, so the
    // instance it hashes to keeps its copy too: dropping it would leave
    // fewer copies to answer for the task while it moves, and its next
    // owner (the group's choice, not this ring's) with no warm copy.
    const size_t first = h == holder.end() ? 0 : 1;
    for (size_t k = first; k <= copies; ++k) {
      const std::string& who = ring[(start + k) % n];
      if (who == self && (h == holder.end() || h->second != self)) out.insert(task);
    }
  }
  return out;
}

}  // namespace kcqrs::engine
