// Headless Chromium (Debian's chromium package) for tests of the web page.
#ifndef KCQRS_TESTS_SUPPORT_CHROMIUM_H_
#define KCQRS_TESTS_SUPPORT_CHROMIUM_H_

#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace kcqrs::testing {

struct Browser {
  int exit_code = -1;
  std::string dom;  // stdout: the DOM after the page's scripts ran
  std::string log;  // stderr, for failure messages
};

// Runs headless Chromium on `url` with a fresh profile; `extra` adds flags.
// Virtual time lets the page's 2 s refresh run twice without a 5 s wait.
inline Browser RunChromium(const std::string& chromium, const std::string& url,
                           const std::string& extra) {
  Browser b;
  char profile[] = "/tmp/kcqrs-ui-chromium-XXXXXX";
  if (mkdtemp(profile) == nullptr) return b;
  const std::string log = std::string(profile) + ".log";
  std::string cmd =
      "timeout 90 " + chromium +
      " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
      " --disable-background-networking --disable-component-update "
      "--disable-sync"
      " --disable-dev-shm-usage --user-data-dir=" +
      std::string(profile) + " --virtual-time-budget=5000 " + extra + " '" +
      url + "' 2>" + log;
  FILE* p = popen(cmd.c_str(), "r");
  if (p != nullptr) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) b.dom.append(buf, n);
    int status = pclose(p);
    b.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  b.log = ss.str();
  std::error_code ec;
  std::filesystem::remove_all(profile, ec);
  std::filesystem::remove(log, ec);
  return b;
}

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_SUPPORT_CHROMIUM_H_
