#include "engine/kafka/tcp_forwarder.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <string>
#include <vector>

namespace kcqrs::kafka {
namespace {

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK); }

// One direction of a relayed connection: what was read from `from` and not
// yet written to `to`.
struct Pipe {
  int from = -1;
  int to = -1;
  std::string pending;
  bool eof = false;  // `from` has no more to give
};

// A relayed connection: client -> broker and broker -> client.
struct Relay {
  int client = -1;
  int broker = -1;
  Pipe up, down;
  bool Done() const {
    return (up.eof && up.pending.empty()) && (down.eof && down.pending.empty());
  }
  ~Relay() {
    if (client >= 0) close(client);
    if (broker >= 0) close(broker);
  }
};

constexpr size_t kMaxPending = 1 << 20;  // stop reading a side the other does not drain

// Moves what it can; false when the connection is broken.
bool Pump(Pipe& p, short from_events) {
  if ((from_events & (POLLIN | POLLHUP | POLLERR)) && !p.eof && p.pending.size() < kMaxPending) {
    char buf[65536];
    ssize_t n = read(p.from, buf, sizeof buf);
    if (n > 0) {
      p.pending.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      p.eof = true;
    } else if (errno != EAGAIN && errno != EINTR) {
      return false;
    }
  }
  if (!p.pending.empty()) {  // non-blocking: writes what the socket takes
    ssize_t n = write(p.to, p.pending.data(), p.pending.size());
    if (n > 0) {
      p.pending.erase(0, static_cast<size_t>(n));
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return false;
    }
  }
  if (p.eof && p.pending.empty()) shutdown(p.to, SHUT_WR);
  return true;
}

}  // namespace

Result<std::unique_ptr<TcpForwarder>> TcpForwarder::Start(uint16_t port, uint16_t target_port) {
  const std::string where = "127.0.0.1:" + std::to_string(port);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IoError("socket for " + where + ": " + std::strerror(errno));
  // SO_REUSEADDR lets a restart bind the port while connections of the
  // previous run linger in TIME_WAIT; on Linux it never lets two sockets
  // listen on one port, so a port in use stays its owner's.
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in a = Loopback(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 64) != 0) {
    const int err = errno;
    close(fd);
    if (err == EADDRINUSE) return Status::AlreadyExists(where + " is in use");
    return Status::IoError("listening on " + where + ": " + std::strerror(err));
  }
  SetNonBlocking(fd);
  std::unique_ptr<TcpForwarder> f(new TcpForwarder());
  f->listen_fd_ = fd;
  if (pipe2(f->wake_fds_, O_CLOEXEC) != 0) {
    return Status::IoError(std::string("a pipe for the forwarder: ") + std::strerror(errno));
  }
  f->target_port_ = target_port;
  f->address_ = where;
  f->thread_ = std::thread([p = f.get()] { p->Run(); });
  return f;
}

TcpForwarder::~TcpForwarder() {
  if (thread_.joinable()) {
    (void)!write(wake_fds_[1], "x", 1);
    thread_.join();
  }
  for (int fd : {listen_fd_, wake_fds_[0], wake_fds_[1]}) {
    if (fd >= 0) close(fd);
  }
}

void TcpForwarder::Run() {
  std::list<Relay> relays;
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({wake_fds_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (Relay& r : relays) {
      short c = 0, b = 0;
      if (!r.up.eof && r.up.pending.size() < kMaxPending) c |= POLLIN;
      if (!r.down.pending.empty()) c |= POLLOUT;
      if (!r.down.eof && r.down.pending.size() < kMaxPending) b |= POLLIN;
      if (!r.up.pending.empty()) b |= POLLOUT;
      fds.push_back({r.client, c, 0});
      fds.push_back({r.broker, b, 0});
    }
    if (poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
    if (fds[0].revents) return;  // stopping
    size_t i = 2;
    for (auto it = relays.begin(); it != relays.end(); i += 2) {
      const short c = fds[i].revents, b = fds[i + 1].revents;
      bool ok = true;
      if (c || b) ok = Pump(it->up, c) && Pump(it->down, b);
      if (!ok || it->Done()) {
        it = relays.erase(it);
      } else {
        ++it;
      }
    }
    if (fds[1].revents & POLLIN) {
      for (;;) {
        int client = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client < 0) break;
        // The broker is on loopback: a blocking connect returns at once.
        int broker = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in to = Loopback(target_port_);
        if (broker < 0 || connect(broker, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
          close(client);
          if (broker >= 0) close(broker);
          continue;
        }
        SetNonBlocking(broker);
        Relay& r = relays.emplace_back();
        r.client = client;
        r.broker = broker;
        r.up = {client, broker, {}, false};
        r.down = {broker, client, {}, false};
      }
    }
  }
}

}  // namespace kcqrs::kafka
