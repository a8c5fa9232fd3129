#include "console.h"

#include <string>
#include <utility>

namespace dtx::server {
namespace {

constexpr std::string_view kPrefix = "/console/";

// The page talks to this origin only: no CDN, no inline script or style, no
// framing by other sites.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const ConsoleFile* FindFile(std::string_view name) {
  for (const ConsoleFile& file : ConsoleFiles()) {
    if (file.name == name) return &file;
  }
  return nullptr;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

// If-None-Match holds "*" or a comma-separated list of entity tags, possibly
// weak (W/"..."); weak comparison applies to GET (RFC 9110, 13.1.2).
bool EtagMatches(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    const std::size_t comma = if_none_match.find(',');
    std::string_view tag = Trim(if_none_match.substr(0, comma));
    if (tag == "*") return true;
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == etag) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

HttpResponse FileResponse(const ConsoleFile& file, const HttpRequest& request) {
  HttpResponse response;
  response.headers.emplace_back("ETag", std::string(file.etag));
  response.headers.emplace_back("Cache-Control", "no-cache");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  const std::string_view type = ConsoleContentType(file.name);
  if (type.substr(0, 9) == "text/html") {
    response.headers.emplace_back("Content-Security-Policy",
                                  std::string(kContentSecurityPolicy));
  }
  const auto if_none_match = request.Header("If-None-Match");
  if (if_none_match && EtagMatches(*if_none_match, file.etag)) {
    response.status = 304;
    response.content_type.clear();
    return response;
  }
  response.content_type = std::string(type);
  response.body = std::string(file.content);
  return response;
}

}  // namespace

std::string_view ConsoleContentType(std::string_view name) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
  };
  for (const auto& [extension, type] : kTypes) {
    if (name.size() > extension.size() &&
        name.substr(name.size() - extension.size()) == extension) {
      return type;
    }
  }
  return "application/octet-stream";
}

Status AddConsoleRoutes(HttpRouter& router) {
  const ConsoleFile* index = FindFile("index.html");
  if (index == nullptr) {
    return InternalError("console: index.html is not among the embedded files");
  }
  router.Handle("GET", "/",
                [index](const HttpRequest& request, const HttpResponder& r) {
                  r.Respond(FileResponse(*index, request));
                });
  router.HandlePrefix(
      "GET", kPrefix, [](const HttpRequest& request, const HttpResponder& r) {
        const std::string_view name =
            std::string_view(request.path).substr(kPrefix.size());
        const ConsoleFile* file = FindFile(name);
        if (file == nullptr) {
          r.Respond(HttpResponse::Error(
              404,
              "console: no file '" + std::string(name.substr(0, 200)) + "'"));
          return;
        }
        r.Respond(FileResponse(*file, request));
      });
  return Status::Ok();
}

}  // namespace dtx::server
