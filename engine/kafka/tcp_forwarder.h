// TcpForwarder: a loopback port whose connections are relayed, byte for
// byte, to another loopback port.
//
// It gives the embedded broker (MockCluster) a fixed bootstrap address.
// librdkafka 2.0.2's mock brokers always bind a port the kernel picks, and
// its API has no way to choose one, so the port printed by `make demo` (and
// in every kcat line it suggests) changed at every start. A client
// bootstraps through the fixed port; the metadata it receives there names
// the brokers at their own ports, which it then connects to directly, so
// only bootstrap connections pass through here.
//
// Ownership: the creator owns it; it owns one thread and every socket of
// the relay. Destruction closes them all and joins the thread.
// Thread-safety: nothing to call after Start but the destructor.
#ifndef KCQRS_ENGINE_KAFKA_TCP_FORWARDER_H_
#define KCQRS_ENGINE_KAFKA_TCP_FORWARDER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "kcqrs/status.h"

namespace kcqrs::kafka {

class TcpForwarder {
 public:
  // Listens on 127.0.0.1:`port` and relays each connection to
  // 127.0.0.1:`target_port`. AlreadyExists when the port is taken (by
  // anything: the caller decides what to do instead); IoError otherwise.
  static Result<std::unique_ptr<TcpForwarder>> Start(uint16_t port, uint16_t target_port);

  TcpForwarder(const TcpForwarder&) = delete;
  TcpForwarder& operator=(const TcpForwarder&) = delete;
  ~TcpForwarder();

  // "127.0.0.1:port".
  const std::string& address() const { return address_; }

 private:
  TcpForwarder() = default;
  void Run();

  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};  // a pipe: writing to [1] ends Run()
  uint16_t target_port_ = 0;
  std::string address_;
  std::thread thread_;
};

}  // namespace kcqrs::kafka

#endif  // KCQRS_ENGINE_KAFKA_TCP_FORWARDER_H_
