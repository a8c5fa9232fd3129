// GrpcLimitedListener: dtx's own accept loop for a plaintext gRPC port with
// a connection limit (DtmServerOptions::max_connections). gRPC C++ 1.51 has
// no connection quota (it came later, as the resource quota's
// max_allowed_incoming_connections), so with a limit the server listens
// here and hands each connection it admits to gRPC with
// grpc::AddInsecureChannelFromFd.
//
//   accept ──(fewer than max open)──► waiting for the client's HTTP/2
//     │                               preface ──(24 bytes, or any bytes
//     │                               that are not it)──► handed to gRPC
//     │                                 └──(nothing within the handshake
//     │                                    timeout, or the client left)──►
//     │                                    closed
//     └──(max open)──► closed at once, and counted for a warning in the log
//                      (at most one line every 10 s, with the count)
//
// A gRPC client whose connection is closed before the HTTP/2 handshake
// fails its call UNAVAILABLE at once and backs off before it connects again
// (DtmServerLimitTest), instead of hanging at the descriptor limit. Tried
// and dropped: answering with SETTINGS and a GOAWAY that says why. gRPC
// 1.51's client shows the GOAWAY's text, but treats the connection as made
// and goes straight back to connecting, so a fail-fast call waited out its
// whole deadline (DEADLINE_EXCEEDED); a GOAWAY without SETTINGS is a
// protocol error that it reports as "Failed parsing HTTP/2", no clearer
// than a closed socket. The handshake timeout is applied here because gRPC
// applies GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS to its own listeners only.
//
// Open connections are those waiting for their preface and those handed
// over and not yet closed by gRPC: gRPC does not say when it closes a
// descriptor, so a handed-over one counts until fstat shows that its number
// no longer names the same socket (checked when the count reaches the
// limit).
//
// Plaintext only: gRPC 1.51 has no public way to hand an accepted
// descriptor to a server with TLS credentials.
//
// Thread safety: Start and Stop from one thread; the loop runs on its own.

#ifndef DTX_TRANSPORT_SRC_GRPC_LIMITED_LISTENER_H_
#define DTX_TRANSPORT_SRC_GRPC_LIMITED_LISTENER_H_

#include "dtx/logger.h"
#include "dtx/result.h"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

namespace grpc {
class Server;
}

namespace dtx::internal {

class GrpcLimitedListener {
 public:
  struct Options {
    std::string address;  // "host:port"; port 0 picks a free one
    std::size_t max_connections = 0;
    std::chrono::milliseconds handshake_timeout{10000};
    std::shared_ptr<Logger> logger;
  };

  // Binds and listens (kUnavailable naming the address when it cannot;
  // kInvalidArgument for an address that is not host:port).
  static Result<std::unique_ptr<GrpcLimitedListener>> Bind(Options options);
  ~GrpcLimitedListener();

  int port() const { return port_; }

  // Starts accepting for `server` (borrowed; must outlive Stop).
  void Start(grpc::Server* server);
  // Stops accepting and joins the loop; closes the connections not yet
  // handed over. Those gRPC has end with the server. Idempotent.
  void Stop();

 private:
  GrpcLimitedListener(Options options, int listen_fd, int port, int wake_read,
                      int wake_write);
  void Loop(grpc::Server* server);

  const Options options_;
  int listen_fd_;
  const int port_;
  int wake_read_;
  int wake_write_;
  std::thread thread_;
};

}  // namespace dtx::internal

#endif  // DTX_TRANSPORT_SRC_GRPC_LIMITED_LISTENER_H_
