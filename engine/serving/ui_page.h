// The engine's web page, served at GET /: the topology graph with per-node
// rates, consumer lag, store sizes, readiness and a store key lookup.
//
// One self-contained HTML document, engine/serving/page/index.html (inline
// CSS and JavaScript; no external scripts, fonts or CDNs, so it works on
// closed networks), compiled into the binary at build time by
// page/embed.cmake: the binary needs no files at run time.
// It reads, with URLs relative to the page (so it also works behind a path
// prefix):
//   GET topology                 the Describe JSON (engine/graph/describe.h)
//   GET stats                    {"application", "ready", "threads",
//                                 "totals", "nodes", "lag", "stores"}
//   GET stores/{store}/keys/{key} a JSON value, or a problem+json detail
// and refreshes every 2 s; cumulative counters become per-second rates
// between refreshes. A failed or 503 answer shows "not ready" and keeps the
// last graph. Everything from the server is inserted as text (textContent),
// never as markup. `/?store=orders&key=o-1` fills in the lookup and runs it.
//
// Thread-safety: returns a view of a constant; call it from anywhere.
#ifndef KCQRS_ENGINE_SERVING_UI_PAGE_H_
#define KCQRS_ENGINE_SERVING_UI_PAGE_H_

#include <string_view>

namespace kcqrs::engine {

// The page, as text/html; charset=utf-8. Valid for the program's lifetime.
std::string_view UiPageHtml();

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_SERVING_UI_PAGE_H_
