// A small blocking HTTP/1.1 client over loopback for tests: one request per
// connection, so a test sees exactly what a curl user would.
#ifndef KCQRS_TESTS_SUPPORT_HTTP_CLIENT_H_
#define KCQRS_TESTS_SUPPORT_HTTP_CLIENT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>

namespace kcqrs::testing {

struct HttpResult {
  int status = 0;  // 0: no answer
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// `address` is "127.0.0.1:PORT".
inline HttpResult HttpRequest(const std::string& address, const std::string& method,
                              const std::string& target, const std::string& body = "",
                              const std::map<std::string, std::string>& headers = {}) {
  HttpResult out;
  const size_t colon = address.rfind(':');
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return out;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n";
  }
  req += "\r\n" + body;
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = write(fd, req.data() + sent, req.size() - sent);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t head_end = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) return out;
  out.status = std::stoi(resp.substr(9, 3));
  size_t line = resp.find("\r\n") + 2;
  while (line < head_end) {
    size_t eol = resp.find("\r\n", line);
    std::string h = resp.substr(line, eol - line);
    size_t c = h.find(':');
    if (c != std::string::npos) {
      std::string name = h.substr(0, c);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char ch) { return std::tolower(ch); });
      size_t v = c + 1;
      while (v < h.size() && h[v] == ' ') ++v;
      out.headers[name] = h.substr(v);
    }
    line = eol + 2;
  }
  out.body = resp.substr(head_end + 4);
  return out;
}

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_SUPPORT_HTTP_CLIENT_H_
