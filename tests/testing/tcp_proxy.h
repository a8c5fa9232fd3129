// TcpProxy: a TCP forwarder on 127.0.0.1 (ephemeral port) that a test puts
// between a process and a server (a coordinator and its PostgreSQL), and then
// cuts and restores to play a network partition.
//
//   auto proxy = TcpProxy::Start("127.0.0.1", pg->port());
//   // ... point the coordinator at 127.0.0.1:(*proxy)->port() ...
//   (*proxy)->Cut(TcpProxy::CutMode::kBlackhole);  // the partition
//   (*proxy)->Restore();                            // healed
//
// Two kinds of cut:
//   kReset      every connection is closed with a reset on both sides, and
//               new ones are reset as soon as they are accepted: a peer that
//               went away (a crashed host, a firewall that rejects).
//   kBlackhole  nothing is forwarded any more, in either direction, and
//               nothing is closed: bytes already read are held, the rest wait
//               in the kernel's buffers, and new connections are accepted but
//               get no answer. This is a real partition: both ends see
//               silence, not an error. Restore() delivers what was held, in
//               order, so writes sent during the partition arrive late, as
//               they do when a partition heals.
//
// Restore() forwards again (and, after kReset, accepts normally again).
//
// The proxy runs an asio io_context on a thread of its own; Cut and Restore
// wait until it has applied them.
//
// Thread safety: thread-safe.

#ifndef DTX_TESTS_TESTING_TCP_PROXY_H_
#define DTX_TESTS_TESTING_TCP_PROXY_H_

#include "dtx/result.h"

#include <cstddef>
#include <memory>
#include <string>

namespace dtx::testing {

class TcpProxy {
 public:
  enum class CutMode { kReset, kBlackhole };

  // Listens on 127.0.0.1:0 and forwards each connection to
  // target_host:target_port (connected when the client connects).
  // kUnavailable when it cannot listen.
  static Result<std::unique_ptr<TcpProxy>> Start(const std::string& target_host,
                                                 int target_port);
  // Closes every connection and stops the thread.
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const;

  void Cut(CutMode mode);
  void Restore();

  // Connections accepted so far, and those open now.
  std::size_t accepted() const;
  std::size_t open_connections() const;
  // Bytes held by a blackhole right now (read but not forwarded).
  std::size_t held_bytes() const;

 private:
  struct Impl;
  explicit TcpProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_TCP_PROXY_H_
