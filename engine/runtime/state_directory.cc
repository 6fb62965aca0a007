#include "engine/runtime/state_directory.h"

#include <spdlog/spdlog.h>

#include <filesystem>

namespace kcqrs::engine {
namespace {

namespace fs = std::filesystem;

// "<digits>_<digits>": the directories tasks own, and nothing else.
bool IsTaskName(const std::string& name) {
  const size_t u = name.find('_');
  if (u == 0 || u == std::string::npos || u + 1 == name.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (i != u && (name[i] < '0' || name[i] > '9')) return false;
  }
  return true;
}

}  // namespace

std::string StateDirectory::Claim(const std::string& task) {
  std::lock_guard<std::mutex> lock(mu_);
  claimed_.insert(task);
  released_.erase(task);
  return dir_ + "/" + task;
}

void StateDirectory::Release(const std::string& task) {
  std::lock_guard<std::mutex> lock(mu_);
  if (claimed_.erase(task)) released_[task] = std::chrono::system_clock::now();
}

std::vector<std::string> StateDirectory::CleanUp(std::chrono::milliseconds delay) {
  std::vector<std::string> removed;
  std::lock_guard<std::mutex> lock(mu_);
  std::error_code ec;
  const auto now = std::chrono::system_clock::now();
  for (const fs::directory_entry& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (!IsTaskName(name) || claimed_.count(name) || !e.is_directory(ec)) continue;
    auto released = released_.find(name);
    std::chrono::system_clock::time_point since;
    if (released != released_.end()) {
      since = released->second;
    } else {
      // Left by an earlier run: its last write is when it was last used.
      const auto mtime = fs::last_write_time(e.path(), ec);
      if (ec) continue;
      since = fs::file_time_type::clock::to_sys(mtime);
    }
    if (now - since < delay) continue;
    fs::remove_all(e.path(), ec);
    if (ec) {
      spdlog::warn("state directory: removing {}: {}", e.path().string(), ec.message());
      continue;
    }
    released_.erase(name);
    removed.push_back(name);
    spdlog::info("state directory: removed {} (unused for {} ms or more)", e.path().string(),
                 delay.count());
  }
  return removed;
}

}  // namespace kcqrs::engine
