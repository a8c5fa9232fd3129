#include "tls_test_server.h"

#include "dtx/internal/mutex.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <openssl/ssl.h>
#include <thread>

namespace dtx::testing {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

struct TlsTestServer::Impl {
  asio::io_context io{1};
  ssl::context ctx{ssl::context::tls_server};
  tcp::acceptor acceptor{io};
  std::thread thread;
  mutable internal::Mutex mu;
  std::vector<std::string> paths DTX_GUARDED_BY(mu);
  std::vector<std::string> sni DTX_GUARDED_BY(mu);
  std::size_t failed DTX_GUARDED_BY(mu) = 0;

  void Accept();
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(TlsTestServer::Impl& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket), server.ctx) {}

  void Start() {
    stream_.async_handshake(
        ssl::stream_base::server,
        [self = shared_from_this()](const ErrorCode& ec) {
          const char* name = SSL_get_servername(self->stream_.native_handle(),
                                                TLSEXT_NAMETYPE_host_name);
          {
            internal::MutexLock lock(&self->server_.mu);
            if (ec) {
              ++self->server_.failed;
              return;
            }
            self->server_.sni.push_back(name != nullptr ? name : "");
          }
          self->Read();
        });
  }

 private:
  void Read() {
    request_ = {};
    bhttp::async_read(
        stream_, buffer_, request_,
        [self = shared_from_this()](const ErrorCode& ec, std::size_t) {
          if (ec) return;
          self->Answer();
        });
  }

  void Answer() {
    {
      internal::MutexLock lock(&server_.mu);
      server_.paths.emplace_back(request_.target());
    }
    response_ = {};
    response_.result(200);
    response_.version(11);
    response_.set(bhttp::field::content_type, "application/json");
    response_.body() = R"({"dtm_result":"SUCCESS"})";
    response_.keep_alive(request_.keep_alive());
    response_.prepare_payload();
    bhttp::async_write(
        stream_, response_,
        [self = shared_from_this()](const ErrorCode& ec, std::size_t) {
          if (!ec) self->Read();
        });
  }

  TlsTestServer::Impl& server_;
  ssl::stream<tcp::socket> stream_;
  boost::beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> request_;
  bhttp::response<bhttp::string_body> response_;
};

}  // namespace

void TlsTestServer::Impl::Accept() {
  acceptor.async_accept([this](const ErrorCode& ec, tcp::socket socket) {
    if (ec) return;
    std::make_shared<Session>(*this, std::move(socket))->Start();
    Accept();
  });
}

Result<std::unique_ptr<TlsTestServer>> TlsTestServer::Start(
    const CertAndKey& cert, const std::string& client_ca_file) {
  auto impl = std::make_shared<Impl>();
  ErrorCode ec;
  impl->ctx.use_certificate_chain_file(cert.cert_file, ec);
  if (!ec) impl->ctx.use_private_key_file(cert.key_file, ssl::context::pem, ec);
  if (!ec && !client_ca_file.empty()) {
    impl->ctx.load_verify_file(client_ca_file, ec);
    impl->ctx.set_verify_mode(
        ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
  }
  if (ec) return InternalError("tls test server: " + ec.message());
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return UnavailableError("tls test server: " + ec.message());
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<TlsTestServer>(new TlsTestServer(std::move(impl)));
}

TlsTestServer::TlsTestServer(std::shared_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

TlsTestServer::~TlsTestServer() {
  impl_->io.stop();
  impl_->thread.join();
}

int TlsTestServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

std::vector<std::string> TlsTestServer::paths() const {
  internal::MutexLock lock(&impl_->mu);
  return impl_->paths;
}

std::vector<std::string> TlsTestServer::sni_names() const {
  internal::MutexLock lock(&impl_->mu);
  return impl_->sni;
}

std::size_t TlsTestServer::failed_handshakes() const {
  internal::MutexLock lock(&impl_->mu);
  return impl_->failed;
}

}  // namespace dtx::testing
