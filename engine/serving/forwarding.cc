#include "engine/serving/forwarding.h"

#include <algorithm>
#include <cctype>

namespace kcqrs::engine {
namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string TaskIdOf(const SubTopology& st, int32_t partition) {
  return std::to_string(st.id) + "_" + std::to_string(partition);
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string Forwarder::SelfId() const {
  if (const InstanceDirectory* d = directory()) return d->self_id();
  return fallback_id_;
}

http::Response Forwarder::ServedHere(http::Response r) const {
  const std::string self = SelfId();
  if (!self.empty()) r.headers.emplace_back(kServedByHeader, self);
  return r;
}

bool Forwarder::WasForwarded(const http::Request& req) {
  return req.Header(kForwardedByHeader).has_value();
}

std::optional<InstanceInfo> Forwarder::OtherHolder(const std::string& task) const {
  const InstanceDirectory* d = directory();
  if (d == nullptr) return std::nullopt;
  std::optional<InstanceInfo> holder = d->ActiveHolder(task);
  if (!holder || holder->self || holder->id == d->self_id() || holder->url.empty()) {
    return std::nullopt;
  }
  return holder;
}

void Forwarder::Send(const InstanceInfo& holder, std::string method, std::string target,
                     std::vector<std::pair<std::string, std::string>> headers, std::string body,
                     std::chrono::milliseconds timeout, http::ClientCallback done) const {
  http::ClientRequest req;
  req.method = std::move(method);
  req.url = holder.url;
  req.target = std::move(target);
  req.headers = std::move(headers);
  if (req.method == "GET" && !query_token_.empty() &&
      std::none_of(req.headers.begin(), req.headers.end(),
                   [](const auto& h) { return EqualsNoCase(h.first, "Authorization"); })) {
    req.headers.emplace_back("Authorization", "Bearer " + query_token_);
  }
  req.headers.emplace_back(kForwardedByHeader, SelfId().empty() ? "unknown" : SelfId());
  req.body = std::move(body);
  req.timeout = timeout;
  client_->Send(std::move(req), std::move(done));
}

http::Response Forwarder::Relay(const http::ClientResponse& answer, const InstanceInfo& holder) {
  http::Response r;
  // A status the server would refuse to write (1xx, nonsense) is the
  // holder's fault: say so rather than pass it on.
  if (answer.status < 200 || answer.status > 599) {
    return http::Response::Problem(502, "Bad Gateway",
                                   "instance " + holder.id + " (" + holder.url +
                                       ") answered with status " +
                                       std::to_string(answer.status));
  }
  r.status = answer.status;
  r.content_type = answer.content_type;
  r.body = answer.body;
  bool served_by = false;
  for (const auto& [name, value] : answer.headers) {
    if (EqualsNoCase(name, kServedByHeader)) served_by = true;
    if (EqualsNoCase(name, kServedByHeader) || EqualsNoCase(name, kStandbyHeader) ||
        EqualsNoCase(name, "Retry-After") || EqualsNoCase(name, "ETag") ||
        EqualsNoCase(name, "WWW-Authenticate") || EqualsNoCase(name, "Allow")) {
      r.headers.emplace_back(name, value);
    }
  }
  if (!served_by) r.headers.emplace_back(kServedByHeader, holder.id);
  return r;
}

}  // namespace kcqrs::engine
