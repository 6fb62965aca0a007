// Certificates made for a test run with the openssl command line (P-256
// keys: milliseconds each), and the real curl binary to talk to a server
// with them, as an operator would.
//
//   ca.crt/ca.key          the CA every certificate below chains to
//   server.crt/server.key  for 127.0.0.1 and localhost; serverAuth and
//                          clientAuth, so an instance can present it to
//                          another as its client certificate too
//   client.crt/client.key  a client certificate (clientAuth only)
//   other.crt/other.key    signed by the CA, but for other.example only
//   rogue.crt/rogue.key    self-signed, chaining to no CA of ours
#ifndef KCQRS_TESTS_SUPPORT_TEST_CERTS_H_
#define KCQRS_TESTS_SUPPORT_TEST_CERTS_H_

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace kcqrs::testing {

// Runs `command` with /bin/sh; its exit code (-1 when it did not exit) and
// its standard output.
inline std::pair<int, std::string> RunCommand(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, out};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class TestCerts {
 public:
  // Makes the files in a fresh directory under the system's temp dir;
  // throws std::runtime_error when openssl fails.
  TestCerts() {
    dir_ = std::filesystem::temp_directory_path() /
           ("kcqrs-certs-" + std::to_string(::getpid()) + "-" + std::to_string(++Counter()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    Run("openssl req -x509" + key + " -keyout ca.key -out ca.crt -days 2 -subj /CN=kcqrs-test-ca");
    Write("server.ext",
          "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
          "extendedKeyUsage=serverAuth,clientAuth\n");
    Write("client.ext", "extendedKeyUsage=clientAuth\n");
    Write("other.ext", "subjectAltName=DNS:other.example\nextendedKeyUsage=serverAuth\n");
    for (const char* name : {"server", "client", "other"}) {
      const std::string n = name;
      Run("openssl req" + key + " -keyout " + n + ".key -out " + n + ".csr -subj /CN=" + n);
      Run("openssl x509 -req -in " + n + ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
          " -out " + n + ".crt -extfile " + n + ".ext");
    }
    Run("openssl req -x509" + key +
        " -keyout rogue.key -out rogue.crt -days 2 -subj /CN=rogue"
        " -addext subjectAltName=IP:127.0.0.1");
  }
  ~TestCerts() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  // "<dir>/<name>": File("ca.crt").
  std::string File(const std::string& name) const { return (dir_ / name).string(); }
  std::string dir() const { return dir_.string(); }

  // Writes `text` to a file in the directory; returns its path.
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name) << text;
    return File(name);
  }

 private:
  static int& Counter() {
    static int counter = 0;
    return counter;
  }
  void Run(const std::string& command) const {
    auto [code, out] = RunCommand("cd '" + dir_.string() + "' && " + command + " 2>&1");
    if (code != 0) throw std::runtime_error(command + " failed: " + out);
  }

  std::filesystem::path dir_;
};

struct CurlResult {
  int exit_code = -1;  // curl's: 0 ok, 35 TLS handshake, 52 empty reply, 60 untrusted...
  int status = 0;      // the HTTP status, 0 when none
  std::string body;
};

// Runs curl with `args` (already shell-quoted where needed) and a 5 s cap;
// the body and the status come back.
inline CurlResult Curl(const std::string& args) {
  auto [code, out] =
      RunCommand("curl -sS --max-time 5 -w '\\n%{http_code}' " + args + " 2>/dev/null");
  CurlResult r;
  r.exit_code = code;
  const size_t nl = out.rfind('\n');
  if (nl != std::string::npos) {
    r.body = out.substr(0, nl);
    r.status = std::atoi(out.c_str() + nl + 1);
  }
  return r;
}

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_SUPPORT_TEST_CERTS_H_
