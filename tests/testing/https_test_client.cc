#include "https_test_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <optional>

namespace dtx::testing {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace bhttp = boost::beast::http;
using ErrorCode = boost::system::error_code;

struct HttpsTestClient::Impl {
  explicit Impl(std::chrono::milliseconds d) : deadline(d) {}

  // Runs the pending operation; an error when it does not end in time.
  Status Run(const char* step) {
    io.restart();
    io.run_for(deadline);
    if (!io.stopped()) {
      return DeadlineExceededError(std::string("https: ") + step +
                                   ": timed out");
    }
    return Status::Ok();
  }

  std::chrono::milliseconds deadline;
  asio::io_context io;
  ssl::context context{ssl::context::tls_client};
  std::optional<ssl::stream<asio::ip::tcp::socket>> stream;
  boost::beast::flat_buffer buffer;
};

HttpsTestClient::HttpsTestClient(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
HttpsTestClient::~HttpsTestClient() = default;

Result<std::unique_ptr<HttpsTestClient>> HttpsTestClient::Connect(
    int port, const std::string& ca_file, const std::string& cert_file,
    const std::string& key_file, const std::string& host,
    std::chrono::milliseconds deadline) {
  auto impl = std::make_unique<Impl>(deadline);
  ErrorCode ec;
  impl->context.load_verify_file(ca_file, ec);
  if (!ec && !cert_file.empty()) {
    impl->context.use_certificate_chain_file(cert_file, ec);
    if (!ec) {
      impl->context.use_private_key_file(key_file, ssl::context::pem, ec);
    }
  }
  if (ec) return InternalError("https: client setup: " + ec.message());
  impl->stream.emplace(impl->io, impl->context);
  impl->stream->set_verify_mode(ssl::verify_peer);
  impl->stream->set_verify_callback(ssl::host_name_verification(host));
  const asio::ip::tcp::endpoint server(asio::ip::make_address("127.0.0.1"),
                                       static_cast<unsigned short>(port));
  impl->stream->next_layer().connect(server, ec);
  if (ec) return UnavailableError("https: connect: " + ec.message());
  impl->stream->async_handshake(ssl::stream_base::client,
                                [&ec](ErrorCode e) { ec = e; });
  DTX_RETURN_IF_ERROR(impl->Run("handshake"));
  if (ec) return UnavailableError("https: handshake: " + ec.message());
  return std::unique_ptr<HttpsTestClient>(new HttpsTestClient(std::move(impl)));
}

Result<HttpsTestAnswer> HttpsTestClient::Request(
    const std::string& method, const std::string& target,
    const std::vector<std::pair<std::string, std::string>>& headers,
    const std::string& body) {
  Impl& c = *impl_;
  bhttp::request<bhttp::string_body> request;
  request.method_string(method);
  request.target(target);
  request.version(11);
  request.set(bhttp::field::host, "localhost");
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = body;
  request.prepare_payload();
  ErrorCode ec;
  bhttp::async_write(*c.stream, request,
                     [&ec](ErrorCode e, std::size_t) { ec = e; });
  DTX_RETURN_IF_ERROR(c.Run("write"));
  if (ec) return UnavailableError("https: write: " + ec.message());
  bhttp::response<bhttp::string_body> response;
  bhttp::async_read(*c.stream, c.buffer, response,
                    [&ec](ErrorCode e, std::size_t) { ec = e; });
  DTX_RETURN_IF_ERROR(c.Run("read"));
  if (ec) return UnavailableError("https: read: " + ec.message());
  return HttpsTestAnswer{static_cast<int>(response.result_int()),
                         response.body()};
}

}  // namespace dtx::testing
