// ServerMetrics: dtm's request metrics of a server that fronts a
// coordinator, in a MetricsRegistry (docs/operations.md):
//
//   dtm_server_info{gin_version,grpc_version,version}   gauge, 1
//   dtm_server_process_total{type,api,status}           counter
//   dtm_server_response_duration{type,api}              histogram, seconds
//
// `type` is the listener ("grpc", "http"), `api` the request's name as dtm
// spells it (the method or the path's last segment, lower-cased: "submit",
// "registerbranch", "metrics"), `status` "ok" or "fail". One ServerMetrics
// serves every listener of a process, since a family is registered once:
// dtx-server hands the same one to its gRPC server (DtmServerOptions) and its
// HTTP router (HttpRouter::set_metrics).
//
// A listener looks up the series of each api it serves once, at startup
// (ForApi), and keeps the pointer; recording a request is then a few relaxed
// atomic operations, with no lock and no allocation. The api names come from
// the listener's own table of methods or routes, never from a request, so
// the series are bounded by construction.
//
//   DTX_ASSIGN_OR_RETURN(auto server_metrics,
//                        dtx::ServerMetrics::Register(registry, info));
//   const dtx::ServerMetrics::Api* submit =
//       server_metrics->ForApi("grpc", "submit");
//   ...
//   submit->Record(status.ok(), steady_clock::now() - arrived);  // per call
//
// Thread safety: thread-safe.

#ifndef DTX_SERVER_METRICS_H_
#define DTX_SERVER_METRICS_H_

#include "dtx/core_export.h"
#include "dtx/metrics.h"
#include "dtx/result.h"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace dtx {

class DTX_CORE_EXPORT ServerMetrics {
 public:
  // The labels of dtm_server_info.
  struct Info {
    // dtx's version (DTX_VERSION_STRING); a label of dtx's own.
    std::string version;
    // The gRPC library's version (dtx::GrpcVersion() in
    // dtx/transport/dtm_server.h).
    std::string grpc_version;
    // dtm reports its HTTP framework's version here. dtx has no gin; the
    // label stays, so that queries written for dtm still match, with this
    // value.
    std::string gin_version = "none";
  };

  // The series of one api of one listener.
  class DTX_CORE_EXPORT Api {
   public:
    // One request answered: `ok` says whether it succeeded (gRPC: an OK
    // status; HTTP: a status below 400), `elapsed` is from its arrival to its
    // answer.
    void Record(bool ok, std::chrono::nanoseconds elapsed) const {
      (ok ? ok_ : fail_)->Increment();
      duration_->ObserveDuration(elapsed);
    }

   private:
    friend class ServerMetrics;
    Api(Counter* ok, Counter* fail, Histogram* duration)
        : ok_(ok), fail_(fail), duration_(duration) {}
    Counter* ok_;
    Counter* fail_;
    Histogram* duration_;
  };

  // Registers the three families in `registry` (borrowed; must outlive the
  // result) and sets dtm_server_info to 1 with `info`'s labels. The
  // registry's errors (kAlreadyExists when registered twice in it).
  static Result<std::unique_ptr<ServerMetrics>> Register(
      MetricsRegistry& registry, const Info& info);

  ~ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // The series of `api` on listener `type`: created (ok and fail counters,
  // and the histogram, all at 0) on the first call, the same pointer after.
  // Takes a lock and allocates: call it at startup and keep the result, which
  // lives as long as this object. Never null.
  const Api* ForApi(std::string_view type, std::string_view api);

 private:
  struct State;
  explicit ServerMetrics(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace dtx

#endif  // DTX_SERVER_METRICS_H_
