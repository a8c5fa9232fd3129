#include "dtx/server_metrics.h"

#include "dtx/internal/mutex.h"

#include <map>
#include <utility>

namespace dtx {

struct ServerMetrics::State {
  CounterFamily* process = nullptr;
  HistogramFamily* duration = nullptr;
  internal::Mutex mu;
  // By (type, api). Values are never moved, so pointers to them stay valid.
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Api>,
           std::less<>>
      apis DTX_GUARDED_BY(mu);
};

ServerMetrics::ServerMetrics(std::unique_ptr<State> state)
    : state_(std::move(state)) {}

ServerMetrics::~ServerMetrics() = default;

Result<std::unique_ptr<ServerMetrics>> ServerMetrics::Register(
    MetricsRegistry& registry, const Info& info) {
  auto state = std::make_unique<State>();
  DTX_ASSIGN_OR_RETURN(
      GaugeFamily * server_info,
      registry.AddGaugeFamily(
          "dtm_server_info",
          "The server's build: 1, with the gRPC library's version, dtx's "
          "version and gin_version=\"none\" (dtx has no gin).",
          {"gin_version", "grpc_version", "version"}));
  server_info->WithLabels({info.gin_version, info.grpc_version, info.version})
      ->Set(1);
  DTX_ASSIGN_OR_RETURN(
      state->process,
      registry.AddCounterFamily(
          "dtm_server_process_total",
          "Requests answered, by listener (grpc, http), api and status (ok, "
          "or fail: a gRPC error or an HTTP status of 400 and above).",
          {"type", "api", "status"}));
  DTX_ASSIGN_OR_RETURN(
      state->duration,
      registry.AddHistogramFamily(
          "dtm_server_response_duration",
          "Seconds from a request's arrival to its answer, by listener and "
          "api.",
          {"type", "api"}));
  return std::unique_ptr<ServerMetrics>(new ServerMetrics(std::move(state)));
}

const ServerMetrics::Api* ServerMetrics::ForApi(std::string_view type,
                                                std::string_view api) {
  State& s = *state_;
  internal::MutexLock lock(&s.mu);
  auto key = std::make_pair(std::string(type), std::string(api));
  auto it = s.apis.find(key);
  if (it != s.apis.end()) return it->second.get();
  std::unique_ptr<Api> series(
      new Api(s.process->WithLabels({key.first, key.second, "ok"}),
              s.process->WithLabels({key.first, key.second, "fail"}),
              s.duration->WithLabels({key.first, key.second})));
  const Api* out = series.get();
  s.apis.emplace(std::move(key), std::move(series));
  return out;
}

}  // namespace dtx
