// HttpBranchClient: a branch call is BuildHttpBranchRequest (dtm's method,
// query and headers) -> HttpClient::Send -> ClassifyHttpAnswer. Registry
// URLs are resolved per call (the resolver's snapshot is cheap to get) and
// their instances taken round-robin.

#include "dtx/transport/http_branch_client.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <utility>

namespace dtx {

namespace {

constexpr std::size_t kMaxQuotedBody = 512;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string_view Trim(std::string_view s) {
  const auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
  };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// Whether `body` says `word`: it is exactly the word, or a JSON object whose
// "dtm_result" is the word.
bool Says(std::string_view body, std::string_view word) {
  const std::string_view t = Trim(body);
  if (t == word) return true;
  if (t.empty() || t.front() != '{' || t.find(word) == t.npos) return false;
  const nlohmann::json json =
      nlohmann::json::parse(t.begin(), t.end(), nullptr, false);
  if (!json.is_object()) return false;
  const auto it = json.find("dtm_result");
  return it != json.end() && it->is_string() &&
         it->get_ref<const std::string&>() == word;
}

std::string Quote(std::string_view body) {
  std::string out(body.substr(0, kMaxQuotedBody));
  if (body.size() > kMaxQuotedBody) out += "...";
  return out;
}

bool IsRegistryUrl(std::string_view url) {
  return StartsWith(url, "discovery://") || StartsWith(url, "etcd://");
}

BranchResult Failed(BranchOutcome outcome, Status status) {
  BranchResult r;
  r.outcome = outcome;
  r.status = std::move(status);
  return r;
}

}  // namespace

BranchOutcome ClassifyHttpAnswer(int status, std::string_view body) {
  if (status == 425 || Says(body, "ONGOING")) return BranchOutcome::kOngoing;
  if (status == 409 || Says(body, "FAILURE")) return BranchOutcome::kFailure;
  if (status == 200) return BranchOutcome::kSuccess;
  return BranchOutcome::kTransient;
}

HttpClientRequest BuildHttpBranchRequest(
    const BranchRequest& request, const std::string& url,
    std::chrono::milliseconds default_timeout) {
  HttpClientRequest out;
  const TransInfo& info = request.info;
  // A workflow's resume is a POST even with no input (dtm sends a GET then,
  // which a POST-only callback route refuses forever; docs/semantics.md).
  out.method = !request.payload.empty() || info.trans_type == TransType::kXa ||
                       info.trans_type == TransType::kWorkflow
                   ? "POST"
                   : "GET";
  // In the order Go's url.Values.Encode writes them (sorted by name).
  std::string query = "branch_id=" + EncodeQueryComponent(info.branch_id);
  if (!info.dtm.empty()) query += "&dtm=" + EncodeQueryComponent(info.dtm);
  query += "&gid=" + EncodeQueryComponent(info.gid);
  query += "&op=" + EncodeQueryComponent(OpOf(info));
  query += "&trans_type=" + EncodeQueryComponent(ToString(info.trans_type));
  const std::size_t q = url.find('?');
  if (q == std::string::npos) {
    out.url = url + "?" + query;
  } else if (q + 1 == url.size()) {
    out.url = url + query;
  } else {
    out.url = url + "&" + query;
  }
  // dtm's headers, then the branch headers: a branch header Content-Type
  // replaces dtm's (as resty's SetHeader would). Those that describe the
  // connection (Host, Expect, ...) are HttpClient's and it does not send
  // them.
  out.headers.emplace_back("Content-Type", "application/json");
  for (const auto& [key, value] : request.headers) {
    if (HttpNamesEqual(key, "content-type")) {
      out.headers.front().second = value;
    } else {
      out.headers.emplace_back(key, value);
    }
  }
  out.body = request.payload;
  out.timeout = request.timeout.count() > 0 ? request.timeout : default_timeout;
  return out;
}

Result<RegistryHttpUrl> ParseRegistryHttpUrl(std::string_view url) {
  const auto bad = [&](std::string_view why) {
    return InvalidArgumentError("branch url '" + std::string(url) +
                                "': " + std::string(why));
  };
  const std::size_t scheme_end = url.find("://");
  if (!IsRegistryUrl(url) || scheme_end == url.npos) {
    return bad("not a discovery:// or etcd:// URL");
  }
  const std::string_view rest = url.substr(scheme_end + 3);
  const std::size_t slash = rest.find('/');  // after the registry
  if (slash == rest.npos) {
    return bad("want discovery://[registry]/<service>/<path>");
  }
  const std::string_view after = rest.substr(slash + 1);
  const std::size_t end = after.find_first_of("/?");
  RegistryHttpUrl out;
  out.service = std::string(after.substr(0, end));
  if (out.service.empty()) return bad("no service name");
  out.path = end == after.npos ? "/" : std::string(after.substr(end));
  if (out.path.front() == '?') out.path.insert(0, "/");
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return bad("holds whitespace or control characters");
    }
  }
  return out;
}

struct HttpBranchClient::Impl {
  HttpBranchClientOptions options;
  std::shared_ptr<Logger> logger;
  std::unique_ptr<HttpClient> http;
  std::atomic<uint64_t> next{0};  // round-robin over registry instances

  // The http(s):// URL to send `request` to. kInvalidArgument (permanent)
  // or kFailedPrecondition / kUnavailable (registry) on error.
  Result<std::string> Target(const BranchRequest& request) {
    const std::string& url = request.url;
    if (!IsRegistryUrl(url)) {
      DTX_RETURN_IF_ERROR(ParseHttpUrl(url).status().WithPrefix("branch call"));
      return url;
    }
    DTX_ASSIGN_OR_RETURN(RegistryHttpUrl parts, ParseRegistryHttpUrl(url));
    if (!options.resolver) {
      return FailedPreconditionError(
          "branch url '" + url +
          "': no service registry is configured for discovery:// URLs "
          "(MicroService.Target)");
    }
    DTX_ASSIGN_OR_RETURN(auto bases, options.resolver(parts.service));
    if (!bases || bases->empty()) {
      return UnavailableError("registry: service '" + parts.service +
                              "' has no instance with an http:// endpoint");
    }
    const std::string& base =
        (*bases)[next.fetch_add(1, std::memory_order_relaxed) % bases->size()];
    std::string base_trimmed = base;
    while (!base_trimmed.empty() && base_trimmed.back() == '/') {
      base_trimmed.pop_back();
    }
    return base_trimmed + parts.path;
  }

  // The HttpClient's answer as a branch result.
  static BranchResult ResultOf(Result<HttpClientResponse> answer) {
    if (!answer.ok()) {
      const bool permanent =
          answer.status().code() == StatusCode::kInvalidArgument;
      return Failed(
          permanent ? BranchOutcome::kFailure : BranchOutcome::kTransient,
          answer.status());
    }
    BranchResult r;
    r.outcome = ClassifyHttpAnswer(answer->status, answer->body);
    const std::string what =
        "HTTP " + std::to_string(answer->status) + ": " + Quote(answer->body);
    switch (r.outcome) {
      case BranchOutcome::kSuccess:
        r.reply = std::move(answer->body);
        break;
      case BranchOutcome::kFailure:
        r.status = AbortedError(what);
        break;
      case BranchOutcome::kOngoing:
        r.status = FailedPreconditionError(what);
        break;
      case BranchOutcome::kTransient:
        r.status = UnavailableError(what);
        break;
    }
    return r;
  }

  // The request to send, or the result to report without sending.
  Result<HttpClientRequest> Prepare(const BranchRequest& request) {
    DTX_ASSIGN_OR_RETURN(std::string url, Target(request));
    return BuildHttpBranchRequest(request, url, options.default_timeout);
  }

  static BranchResult PrepareFailed(const Status& s) {
    const bool permanent = s.code() == StatusCode::kInvalidArgument;
    return Failed(
        permanent ? BranchOutcome::kFailure : BranchOutcome::kTransient, s);
  }
};

HttpBranchClient::HttpBranchClient(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

HttpBranchClient::~HttpBranchClient() { Shutdown(); }

Result<std::unique_ptr<HttpBranchClient>> HttpBranchClient::Create(
    HttpBranchClientOptions options) {
  if (options.default_timeout.count() <= 0) {
    return InvalidArgumentError(
        "http branch client: default_timeout must be positive");
  }
  auto impl = std::make_unique<Impl>();
  impl->logger = options.logger ? options.logger : NewNullLogger();
  if (!options.http.logger) options.http.logger = options.logger;
  options.http.default_timeout = options.default_timeout;
  DTX_ASSIGN_OR_RETURN(impl->http, HttpClient::Create(options.http));
  impl->options = std::move(options);
  return std::unique_ptr<HttpBranchClient>(
      new HttpBranchClient(std::move(impl)));
}

void HttpBranchClient::Call(BranchRequest request, Executor executor,
                            Callback done) {
  auto prepared = impl_->Prepare(request);
  if (!prepared.ok()) {
    BranchResult r = Impl::PrepareFailed(prepared.status());
    if (executor) {
      executor([done = std::move(done), r = std::move(r)]() mutable {
        done(std::move(r));
      });
    } else {
      done(std::move(r));
    }
    return;
  }
  // The HttpClient hands the answer to `executor`; the classification runs
  // there, not on the io thread.
  impl_->http->Send(std::move(prepared).value(), std::move(executor),
                    [done = std::move(done)](Result<HttpClientResponse> a) {
                      done(Impl::ResultOf(std::move(a)));
                    });
}

BranchResult HttpBranchClient::CallBlocking(BranchRequest request) {
  auto prepared = impl_->Prepare(request);
  if (!prepared.ok()) return Impl::PrepareFailed(prepared.status());
  return Impl::ResultOf(impl_->http->SendBlocking(std::move(prepared).value()));
}

Status HttpBranchClient::ValidateUrl(std::string_view url,
                                     std::string_view protocol) {
  if (StartsWith(url, "http://") || StartsWith(url, "https://")) {
    return ParseHttpUrl(url).status();
  }
  if (protocol == kProtocolHttp && IsRegistryUrl(url)) {
    DTX_RETURN_IF_ERROR(ParseRegistryHttpUrl(url).status());
    if (!impl_->options.resolver) {
      return FailedPreconditionError(
          "branch url '" + std::string(url) +
          "': no service registry is configured for discovery:// URLs "
          "(MicroService.Target)");
    }
    return Status::Ok();
  }
  return InvalidArgumentError(
      "branch url '" + std::string(url) +
      "': a transaction of protocol http calls http://, https://, "
      "discovery:// or etcd:// URLs (gRPC URLs need protocol grpc)");
}

void HttpBranchClient::Shutdown() { impl_->http->Shutdown(); }

HttpClient::Stats HttpBranchClient::stats() const {
  return impl_->http->stats();
}

}  // namespace dtx
