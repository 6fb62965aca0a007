#include "engine/runtime/state_directory.h"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

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

Status CreateDirectory(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError("creating state_dir " + dir + ": " + ec.message());
  return Status::OK();
}

}  // namespace

StateDirectoryLock::~StateDirectoryLock() { ::close(fd_); }

Result<std::unique_ptr<StateDirectoryLock>> StateDirectory::Lock() {
  KCQRS_RETURN_IF_ERROR(CreateDirectory(dir_));
  const std::string path = dir_ + "/kcqrs.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError("opening " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char pid[32] = {0};
    (void)!::pread(fd, pid, sizeof pid - 1, 0);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      std::string holder(pid);
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) {
        holder.pop_back();
      }
      return Status::FailedPrecondition(
          "the state directory " + dir_ + " is in use by another kcqrs process" +
          (holder.empty() ? "" : " (pid " + holder + ")") +
          ": two processes on one state directory would fence each other's transactions "
          "forever; give each instance its own application.state_dir");
    }
    return Status::IoError("locking " + path + ": " + std::strerror(err));
  }
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, me.data(), me.size(), 0);
  return std::unique_ptr<StateDirectoryLock>(new StateDirectoryLock(fd));
}

Result<std::string> StateDirectory::InstanceId() {
  std::lock_guard<std::mutex> lock(mu_);
  KCQRS_RETURN_IF_ERROR(CreateDirectory(dir_));
  const std::string path = dir_ + "/kcqrs.instance";
  {
    std::ifstream in(path);
    std::string id;
    if (in >> id && !id.empty()) return id;
  }
  std::random_device rd;
  std::mt19937_64 gen(rd());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(gen()));
  std::ofstream out(path, std::ios::trunc);
  out << buf << "\n";
  if (!out) return Status::IoError("writing " + path);
  return std::string(buf);
}

std::string StateDirectory::Claim(const std::string& task, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  if (standby_.count(task)) {
    release_requested_.insert(task);
    if (!released_cv_.wait_for(lock, wait, [&] { return !standby_.count(task); })) {
      spdlog::warn("state directory: the standby of task {} did not let go within {} ms", task,
                   wait.count());
    }
  }
  // Also when the wait timed out: a request left behind would make a later
  // standby of the task let go at once.
  release_requested_.erase(task);
  claimed_.insert(task);
  released_.erase(task);
  return dir_ + "/" + task;
}

std::optional<std::string> StateDirectory::ClaimStandby(const std::string& task) {
  std::lock_guard<std::mutex> lock(mu_);
  // Nor while an active task waits for it: the standby that just let go
  // would otherwise take it back before the waiting Claim wakes, and let go
  // again, copy closed and reopened each round, until the Claim won.
  if (claimed_.count(task) || release_requested_.count(task)) return std::nullopt;
  claimed_.insert(task);
  standby_.insert(task);
  released_.erase(task);
  return dir_ + "/" + task;
}

bool StateDirectory::HeldByStandby(const std::string& task) const {
  std::lock_guard<std::mutex> lock(mu_);
  return standby_.count(task) != 0;
}

bool StateDirectory::ReleaseRequested(const std::string& task) const {
  std::lock_guard<std::mutex> lock(mu_);
  return release_requested_.count(task) != 0;
}

void StateDirectory::Release(const std::string& task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (claimed_.erase(task)) released_[task] = std::chrono::system_clock::now();
    standby_.erase(task);
  }
  released_cv_.notify_all();
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
