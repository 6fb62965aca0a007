// Router: pattern validation at Add time, segment matching per request.
//
// Per request this costs one pass over the target to split it, a decode only
// of segments that hold '%', and a linear scan of the routes comparing
// segments. With the few dozen routes a kcqrs instance serves, that beats a
// trie on constant factors and keeps the precedence rule easy to state.

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/http/server.h"

namespace kcqrs::http {
namespace {

// Deeper paths than this match no route; patterns are held to it too, which
// lets a request's segments live on the stack.
constexpr std::size_t kMaxSegments = 32;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes (and '+' as space when plus_is_space, the form
// encoding used in queries). False on a truncated or non-hex escape.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

bool ParseQuery(std::string_view qs,
                std::multimap<std::string, std::string>* query) {
  std::string key;
  std::string value;
  while (!qs.empty()) {
    const std::size_t amp = qs.find('&');
    const std::string_view pair = qs.substr(0, amp);
    qs =
        amp == std::string_view::npos ? std::string_view() : qs.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2"
    const std::size_t eq = pair.find('=');
    const std::string_view raw_key = pair.substr(0, eq);
    const std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (!PercentDecode(raw_key, true, &key) ||
        !PercentDecode(raw_value, true, &value)) {
      return false;
    }
    query->emplace(std::move(key), std::move(value));
  }
  return true;
}

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsParamNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler) {
  AddRoute(std::move(method), std::move(pattern), std::move(handler), {});
}

void Router::AddAsync(std::string method, std::string pattern,
                      AsyncHandler handler) {
  AddRoute(std::move(method), std::move(pattern), {}, std::move(handler));
}

Status Router::status() const {
  if (first_error_.empty()) return Status::OK();
  return Status::InvalidArgument(first_error_);
}

void Router::AddRoute(std::string method, std::string pattern, Handler handler,
                      AsyncHandler async_handler) {
  for (char& c : method) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  const std::string where = "route " + method + " \"" + pattern + "\"";
  auto fail = [&](const std::string& why) {
    if (first_error_.empty()) first_error_ = where + ": " + why;
  };
  if (method.empty() ||
      !std::all_of(method.begin(), method.end(), IsTokenChar)) {
    return fail("expected an HTTP method such as GET or POST");
  }
  if (!handler && !async_handler) return fail("the handler is empty");
  if (pattern.empty() || pattern[0] != '/') {
    return fail("expected a pattern starting with '/', e.g. /stores/{store}");
  }

  Route route;
  route.method = std::move(method);
  route.handler = std::move(handler);
  route.async_handler = std::move(async_handler);
  // "/" is the one pattern with an empty segment; elsewhere "//" or a
  // trailing '/' is almost certainly a typo, so it is refused.
  std::string_view rest = std::string_view(pattern).substr(1);
  if (!rest.empty()) {
    while (true) {
      const std::size_t slash = rest.find('/');
      const std::string_view seg = rest.substr(0, slash);
      if (seg.empty()) return fail("empty segment (\"//\" or a trailing '/')");
      Segment s;
      if (seg.front() == '{' || seg.back() == '}') {
        const std::string_view name =
            seg.size() >= 2 && seg.front() == '{' && seg.back() == '}'
                ? seg.substr(1, seg.size() - 2)
                : std::string_view();
        if (name.empty() ||
            !std::all_of(name.begin(), name.end(), IsParamNameChar)) {
          return fail("segment \"" + std::string(seg) +
                      "\": expected a whole-segment parameter {name} with "
                      "letters, digits, '_' or '-'");
        }
        for (const Segment& other : route.segments) {
          if (other.is_param && other.text == name) {
            return fail("parameter {" + std::string(name) + "} appears twice");
          }
        }
        s.is_param = true;
        s.text = std::string(name);
      } else {
        if (seg.find_first_of("{}%?#") != std::string_view::npos) {
          return fail("segment \"" + std::string(seg) +
                      "\": a literal segment may not contain {, }, %, ? or #");
        }
        s.text = std::string(seg);
      }
      route.segments.push_back(std::move(s));
      if (route.segments.size() > kMaxSegments) {
        return fail("more than " + std::to_string(kMaxSegments) + " segments");
      }
      if (slash == std::string_view::npos) break;
      rest = rest.substr(slash + 1);
    }
  } else {
    route.segments.push_back(Segment{});  // "/": one empty literal segment
  }

  for (const Route& other : routes_) {
    if (other.method != route.method ||
        other.segments.size() != route.segments.size()) {
      continue;
    }
    bool same_shape = true;
    for (std::size_t i = 0; i < route.segments.size() && same_shape; ++i) {
      const Segment& a = other.segments[i];
      const Segment& b = route.segments[i];
      same_shape = a.is_param == b.is_param && (a.is_param || a.text == b.text);
    }
    if (same_shape) {
      return fail("matches the same paths as route " + other.method + " \"" +
                  other.pattern + "\"");
    }
  }
  route.pattern = std::move(pattern);
  routes_.push_back(std::move(route));
}

Router::Match Router::Resolve(Request* request) const {
  Match match;
  std::string_view target = request->target;

  // Absolute-form ("http://host/path"), which RFC 9112 says servers must
  // accept, is reduced to its path and query.
  std::string absolute_form_rest;
  if (StartsWithNoCase(target, "http://") ||
      StartsWithNoCase(target, "https://")) {
    const std::size_t authority = target.find("//") + 2;
    const std::size_t end = target.find_first_of("/?#", authority);
    if (end == std::string_view::npos) {
      target = "/";
    } else if (target[end] == '/') {
      target = target.substr(end);
    } else {
      // Appended rather than "/" + std::string(...): GCC 12 at -O3 warns
      // falsely (-Wrestrict, GCC bug 105329) about the latter.
      absolute_form_rest = "/";
      absolute_form_rest += target.substr(end);
      target = absolute_form_rest;
    }
  }
  target = target.substr(0, target.find('#'));
  if (target.empty() || target.front() != '/') {
    match.kind = Match::Kind::kBadRequest;
    match.error = "expected a request target starting with '/', got \"" +
                  std::string(target) + "\"";
    return match;
  }
  const std::size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query_string = question == std::string_view::npos
                                            ? std::string_view()
                                            : target.substr(question + 1);
  request->path = std::string(path);

  // Split the raw path, then decode each segment on its own, so that "%2F"
  // stays inside its segment. Segments without '%' are used in place.
  std::array<std::string_view, kMaxSegments> segments;
  std::array<std::string, kMaxSegments> decoded;
  std::size_t count = 0;
  {
    std::string_view rest = std::string_view(request->path).substr(1);
    while (true) {
      if (count == kMaxSegments) return match;  // deeper than any route
      const std::size_t slash = rest.find('/');
      const std::string_view seg = rest.substr(0, slash);
      if (seg.find('%') != std::string_view::npos) {
        if (!PercentDecode(seg, false, &decoded[count])) {
          match.kind = Match::Kind::kBadRequest;
          match.error = "malformed percent-encoding in path segment \"" +
                        std::string(seg) + "\"";
          return match;
        }
        segments[count] = decoded[count];
      } else {
        segments[count] = seg;
      }
      ++count;
      if (slash == std::string_view::npos) break;
      rest = rest.substr(slash + 1);
    }
  }

  auto matches = [&](const Route& route) {
    if (route.segments.size() != count) return false;
    for (std::size_t i = 0; i < count; ++i) {
      const Segment& s = route.segments[i];
      if (s.is_param ? segments[i].empty() : segments[i] != s.text) {
        return false;
      }
    }
    return true;
  };
  // True when a is more specific than b: at the first segment where one has
  // a literal and the other a parameter, a has the literal.
  auto more_specific = [&](const Route& a, const Route& b) {
    for (std::size_t i = 0; i < count; ++i) {
      if (a.segments[i].is_param != b.segments[i].is_param) {
        return !a.segments[i].is_param;
      }
    }
    return false;
  };

  const bool is_head = request->method == "HEAD";
  const Route* exact = nullptr;     // route for the request's method
  const Route* head_get = nullptr;  // GET route that can serve a HEAD
  bool path_matched = false;
  for (const Route& route : routes_) {
    if (!matches(route)) continue;
    path_matched = true;
    if (route.method == request->method) {
      if (exact == nullptr || more_specific(route, *exact)) exact = &route;
    } else if (is_head && route.method == "GET") {
      if (head_get == nullptr || more_specific(route, *head_get)) {
        head_get = &route;
      }
    }
  }
  if (!path_matched) return match;  // kNotFound

  const Route* chosen = exact != nullptr ? exact : head_get;
  if (chosen == nullptr) {
    std::vector<std::string_view> methods;
    for (const Route& route : routes_) {
      if (!matches(route)) continue;
      methods.push_back(route.method);
      if (route.method == "GET") methods.push_back("HEAD");
    }
    std::sort(methods.begin(), methods.end());
    methods.erase(std::unique(methods.begin(), methods.end()), methods.end());
    match.kind = Match::Kind::kMethodNotAllowed;
    for (std::string_view m : methods) {
      if (!match.allow.empty()) match.allow += ", ";
      match.allow += m;
    }
    return match;
  }

  if (!ParseQuery(query_string, &request->query)) {
    match.kind = Match::Kind::kBadRequest;
    match.error = "malformed percent-encoding in query \"" +
                  std::string(query_string) + "\"";
    return match;
  }
  for (std::size_t i = 0; i < count; ++i) {
    const Segment& s = chosen->segments[i];
    if (s.is_param) request->path_params[s.text] = std::string(segments[i]);
  }
  match.kind = Match::Kind::kFound;
  if (chosen->handler) {
    match.handler = &chosen->handler;
  } else {
    match.async_handler = &chosen->async_handler;
  }
  return match;
}

}  // namespace kcqrs::http
