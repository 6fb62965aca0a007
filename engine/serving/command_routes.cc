#include "engine/serving/command_routes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <vector>
#include <exception>
#include <random>
#include <set>
#include <utility>

#include "engine/codec/command_envelope.h"
#include "engine/codec/json_codec.h"
#include "engine/codec/partitioner.h"
#include "json/document.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

std::string NewCommandId() {
  static thread_local std::mt19937_64 gen(std::random_device{}());
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(gen()),
                static_cast<unsigned long long>(gen()));
  return buf;
}

}  // namespace

struct CommandRoutes::OutcomeWatch {
  http::Responder raw_respond;  // answers as is: a relayed answer names its holder
  std::shared_ptr<const CompiledTopology> topology;
  const CompiledAggregate* agg = nullptr;
  std::string id;                         // the aggregate id
  std::optional<std::string> key_query;   // ?key= as the client gave it
  std::string body;                       // the command, with its commandId
  std::optional<std::string> authorization;
  std::string task;     // the task deciding the command's partition
  std::string where;    // "partition 1 of tickets.commands"
  std::string command_id;
  std::chrono::milliseconds timeout{0};
  Clock::time_point deadline;
  // Set once the command is written (here, or by the instance it was
  // forwarded to).
  RecordPosition position;
  std::string token;
  std::string not_here;  // why it was not answered at once
  std::string skip;      // a holder that did not answer: not asked again
};

Status CommandRoutes::Start() {
  auto producer = NewProducer();
  if (!producer.ok()) return producer.status();
  producer_ = std::move(producer).value();
  // Delivery reports answer POST /commands; this thread serves them.
  poller_ = std::thread([this] {
    while (!stopping_) Producer()->Poll(std::chrono::milliseconds(20));
  });
  return Status::OK();
}

void CommandRoutes::Stop() {
  if (stopped_.exchange(true)) return;
  if (auto p = Producer()) (void)p->Flush(std::chrono::seconds(5));
  stopping_ = true;
  if (poller_.joinable()) poller_.join();
  std::lock_guard<std::mutex> lock(producer_mu_);
  producer_.reset();
}

void CommandRoutes::Register(RouteTable& routes) {
  routes.AddAsync("POST", "/commands/{aggregate}",
                  [this](const http::Request& req, http::Responder respond) {
                    PostCommand(req, std::move(respond));
                  });
}

void CommandRoutes::PostCommand(const http::Request& req, http::Responder raw_respond) {
  const Forwarder* forwarder = forwarder_;
  auto respond = [forwarder, raw_respond](http::Response r) {
    raw_respond(forwarder->ServedHere(std::move(r)));
  };
  http::Response bad;
  if (auto denied = Unauthorized(req, options_->command_token, "POST /commands")) {
    return respond(std::move(*denied));
  }
  auto topology = engine_->topology();
  if (!topology) {
    return respond(Unavailable("not-ready", "Not ready", "the engine is still starting"));
  }
  const std::string name = req.path_params.at("aggregate");
  const CompiledAggregate* agg = nullptr;
  for (const CompiledAggregate& a : topology->aggregates()) {
    if (a.spec.name == name) agg = &a;
  }
  if (agg == nullptr) {
    return respond(Problem(404, "unknown-aggregate", "Unknown aggregate",
                           "no aggregate named '" + name + "'"));
  }
  const AggregateSpec& spec = agg->spec;
  if (req.body.size() > options_->limits.max_bytes) {
    return respond(Problem(413, "too-large", "Command too large",
                           "the body is " + std::to_string(req.body.size()) +
                               " bytes, more than the limit of " +
                               std::to_string(options_->limits.max_bytes) +
                               " bytes (limits.max_document_bytes)"));
  }
  // Within the limits, so that nothing deeper is ever built, copied or
  // written (each of those recurses per level).
  auto parsed = ParseJson(req.body, options_->limits);
  if (!parsed.ok()) {
    const std::string why = parsed.status().message();
    return respond(Problem(400, "bad-command", "Bad command",
                           why.rfind("not valid JSON", 0) == 0
                               ? "the body must be a JSON object (the command); it is " + why
                               : "the body: " + why));
  }
  json command = std::move(parsed).value();
  if (!command.is_object()) {
    return respond(Problem(400, "bad-command", "Bad command",
                           "the body must be a JSON object (the command)"));
  }
  // The envelope is read as the command handler reads it (command_envelope.h),
  // so a command refused here is refused for the same reason there.
  auto type = ReadCommandType(command, spec);
  if (!type.ok()) {
    return respond(Problem(400, "bad-command", "Bad command", type.status().message()));
  }
  if (!agg->commands.count(*type)) {
    return respond(Problem(400, "bad-command", "Bad command",
                           UnknownCommandType(spec, *type, agg->command_types).message()));
  }
  const std::optional<std::string> key = req.Query("key");
  if (key) {
    if (auto why = NotUtf8("key", *key, "the aggregate id (the command's Kafka key)")) {
      return respond(Problem(400, "bad-parameter", "Bad parameter", *why));
    }
  }
  auto id_or = ReadAggregateId(command, spec, key);
  if (!id_or.ok()) {
    std::string why = id_or.status().message();
    if (spec.id_field.empty()) why += ": pass ?key=ID";
    return respond(Problem(400, "bad-command", "Bad command", why));
  }
  std::string id = std::move(id_or).value();
  const auto timeout_or =
      WaitTimeout(req, options_->default_wait, options_->max_wait, &bad);
  if (!timeout_or) return respond(std::move(bad));
  const std::chrono::milliseconds timeout = *timeout_or;
  const bool wait = req.Query("wait").value_or("false") == "true";
  // Set here, before the command may be forwarded: if the holder writes it
  // but its answer is lost and the command is written here too, the
  // aggregate decides it once.
  std::string command_id = ReadCommandId(command, spec);
  if (command_id.empty()) {
    command_id = NewCommandId();
    command[spec.command_id_field] = command_id;
  }
  // If-Match travels in the command itself, so that the aggregate checks it
  // when it decides (wherever that is), and a Kafka producer can say the same.
  auto expected = ReadExpectedVersion(command, spec);
  if (!expected.ok()) {
    return respond(Problem(400, "bad-command", "Bad command", expected.status().message()));
  }
  auto precondition = ExpectedVersionFromHeaders(req, &bad);
  if (!precondition) return respond(std::move(bad));
  if (*precondition) {
    if (*expected && **expected != **precondition) {
      return respond(Problem(
          400, "bad-precondition", "Bad precondition",
          "the precondition header expects version " + std::to_string(**precondition) +
              " but the command's '" + spec.expected_version_field + "' is " +
              std::to_string(**expected) + "; send one of them, or the same version"));
    }
    command[spec.expected_version_field] = **precondition;
  }

  kafka::OutgoingRecord record;
  record.topic = spec.command_topics.front();
  const int partitions = topology->partitions(record.topic);
  if (partitions > 0) record.partition = PartitionForKey(id, partitions);
  record.key = id;
  record.value = DumpJson(command);  // decimals as they came (decimal/)

  // Is the command's partition decided here? Its aggregate store's
  // partition is hosted exactly where its task runs.
  std::string not_here;
  StoreRegistry* registry = engine_->registry();
  const SubTopology* st = topology->SubTopologyOf(record.topic);
  std::vector<int32_t> missing;
  if (registry != nullptr) (void)registry->View(spec.store, &missing);
  const int32_t partition = record.partition == kafka::kAnyPartition ? 0 : record.partition;
  const bool hosted = registry != nullptr && std::find(missing.begin(), missing.end(),
                                                       partition) == missing.end();
  const std::string where = "partition " + std::to_string(partition) + " of " + record.topic;
  // A task of this instance that is still restoring decides it here soon:
  // that one waits as on a single instance.
  bool held_here = hosted;
  if (!held_here && st != nullptr && forwarder_->directory() != nullptr) {
    auto self = forwarder_->directory()->ActiveHolder(TaskIdOf(*st, partition));
    held_here = self && (self->self || self->id == forwarder_->SelfId());
  }
  if (auto outcome_at = req.Query("outcome_at")) {
    // Another instance wrote this command while nobody decided its
    // partition and asks its decider for the outcome: never written again.
    auto asked = DecodePositionToken(*outcome_at);
    if (!asked || asked->topic != record.topic || asked->partition != partition) {
      return respond(Problem(400, "bad-parameter", "Bad parameter",
                             "outcome_at: expected the position token of the command in " +
                                 where + ", found '" + *outcome_at + "'"));
    }
    if (!held_here) {
      return respond(ProblemWith(503, "partition-not-hosted", "Partition not hosted here",
                                 where + " is not decided by this instance; retry",
                                 {{"partition", partition}}));
    }
    auto shared_respond = std::make_shared<http::Responder>(respond);
    return AwaitDecision(shared_respond, *asked, *outcome_at, command_id, *agg, id, topology,
                         timeout);
  }
  std::shared_ptr<OutcomeWatch> watch;
  if (wait && st != nullptr && forwarder_->directory() != nullptr &&
      !Forwarder::WasForwarded(req)) {
    watch = std::make_shared<OutcomeWatch>();
    watch->raw_respond = raw_respond;
    watch->topology = topology;
    watch->agg = agg;
    watch->id = id;
    watch->key_query = key;
    watch->body = record.value.value_or("");
    watch->authorization = req.Header("authorization");
    watch->task = TaskIdOf(*st, partition);
    watch->where = where;
    watch->command_id = command_id;
    watch->timeout = timeout;
    watch->deadline = Clock::now() + timeout;
  }
  if (!held_here && st != nullptr && forwarder_->directory() != nullptr) {
    if (Forwarder::WasForwarded(req)) {
      not_here = "the command was forwarded here by " +
                 req.Header(kForwardedByHeader).value_or("") + ", but " + where +
                 " is not decided here (the directory is a moment behind a rebalance)";
    } else if (auto holder = forwarder_->OtherHolder(TaskIdOf(*st, partition))) {
      std::vector<std::pair<std::string, std::string>> headers = {
          {"Content-Type", "application/json"}};
      if (auto auth = req.Header("authorization")) headers.emplace_back("Authorization", *auth);
      std::string body = record.value.value_or("");
      forwarder_->Send(
          *holder, "POST", req.target, std::move(headers), std::move(body),
          (wait ? timeout : std::chrono::milliseconds(0)) + std::chrono::milliseconds(5000),
          [this, raw_respond, record = std::move(record), command_id, wait, timeout, topology,
           agg, id, holder = *holder, where, watch](Result<http::ClientResponse> answer) mutable {
            if (answer.ok()) {
              // The holder was no longer deciding it (a handover) and wrote
              // it: wait for its next decider instead of relaying "not
              // decided".
              if (watch && answer->status == 202) {
                json body = json::parse(answer->body, nullptr, false);
                auto position = body.is_object() && body.value("decided", true) == false
                                    ? DecodePositionToken(body.value("position", ""))
                                    : std::nullopt;
                if (position) {
                  watch->position = *position;
                  watch->token = body.value("position", "");
                  watch->not_here = "instance " + holder.id + ", to which it was forwarded, " +
                                    "did not decide " + where;
                  return WatchForHolder(watch, Clock::now());
                }
              }
              return raw_respond(Forwarder::Relay(*answer, holder));
            }
            if (watch) watch->skip = holder.id;
            Produce(std::move(record), command_id, wait, timeout, topology, agg, id,
                    "instance " + holder.id + ", which decides " + where +
                        ", did not answer (" + answer.status().message() + ")",
                    raw_respond, watch);
          });
      return;
    } else if (!held_here) {
      not_here = "no instance decides " + where + " now (between owners, or restoring)";
    }
  }
  Produce(std::move(record), std::move(command_id), wait, timeout, std::move(topology), agg,
          std::move(id), std::move(not_here), std::move(raw_respond),
          Forwarder::WasForwarded(req) ? nullptr : std::move(watch));
}

void CommandRoutes::WatchForHolder(std::shared_ptr<OutcomeWatch> watch,
                                   Clock::time_point not_before) {
  const Forwarder* forwarder = forwarder_;
  auto found = std::make_shared<std::optional<InstanceInfo>>();
  waiter_->Park(Waiter::Parked{
      [forwarder, watch, found, not_before] {
        if (Clock::now() < not_before) return PositionLog::Answer::kPending;
        const InstanceDirectory* d = forwarder->directory();
        if (d == nullptr) return PositionLog::Answer::kPending;
        std::optional<InstanceInfo> holder = d->ActiveHolder(watch->task);
        if (!holder) return PositionLog::Answer::kPending;
        const bool self = holder->self || holder->id == forwarder->SelfId();
        if (!self && (holder->url.empty() || holder->id == watch->skip)) {
          return PositionLog::Answer::kPending;
        }
        *found = std::move(holder);
        return PositionLog::Answer::kApplied;
      },
      [this, watch, found] { AskHolder(watch, **found); },
      [forwarder, watch](PositionLog::Answer) {
        watch->raw_respond(forwarder->ServedHere(http::Response::Json(
            202, json{{"commandId", watch->command_id},
                      {"position", watch->token},
                      {"decided", false},
                      {"detail", "the command is written and will be decided, but its "
                                 "outcome could not be had within " +
                                     std::to_string(watch->timeout.count()) +
                                     " ms: " + watch->not_here +
                                     ", and no instance took " + watch->where +
                                     " over in that time; query with its position to see "
                                     "its effects, or post it again with the same commandId "
                                     "for its outcome"}}
                .dump(-1, ' ', false, json::error_handler_t::replace))));
      },
      watch->deadline});
}

void CommandRoutes::AskHolder(std::shared_ptr<OutcomeWatch> watch, const InstanceInfo& holder) {
  const auto left = std::max(std::chrono::milliseconds(0),
                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                 watch->deadline - Clock::now()));
  if (holder.self || holder.id == forwarder_->SelfId()) {
    // This instance took the partition over (its task restored or is
    // restoring): its own store answers, as on a single instance.
    const Forwarder* forwarder = forwarder_;
    auto respond = std::make_shared<http::Responder>(
        [forwarder, raw = watch->raw_respond](http::Response r) {
          raw(forwarder->ServedHere(std::move(r)));
        });
    return AwaitDecision(respond, watch->position, watch->token, watch->command_id,
                         *watch->agg, watch->id, watch->topology, left);
  }
  std::string target = "/commands/" + UrlEncode(watch->agg->spec.name) +
                       "?wait=true&timeout_ms=" + std::to_string(left.count()) +
                       "&outcome_at=" + UrlEncode(watch->token);
  if (watch->key_query) target += "&key=" + UrlEncode(*watch->key_query);
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", "application/json"}};
  if (watch->authorization) headers.emplace_back("Authorization", *watch->authorization);
  forwarder_->Send(
      holder, "POST", std::move(target), std::move(headers), watch->body,
      left + std::chrono::milliseconds(5000),
      [this, watch, holder](Result<http::ClientResponse> answer) {
        if (!answer.ok()) {
          watch->skip = holder.id;
          return WatchForHolder(watch, Clock::now() + std::chrono::milliseconds(100));
        }
        // Not (yet) deciding it: the directory named it a moment early, or
        // it gave up at the deadline. Look again, until ours.
        if (answer->status == 503) {
          return WatchForHolder(watch, Clock::now() + std::chrono::milliseconds(100));
        }
        watch->raw_respond(Forwarder::Relay(*answer, holder));
      });
}

void CommandRoutes::Produce(kafka::OutgoingRecord record, std::string command_id, bool wait,
                            std::chrono::milliseconds timeout,
                            std::shared_ptr<const CompiledTopology> topology,
                            const CompiledAggregate* agg, std::string id, std::string not_here,
                            http::Responder raw_respond,
                            std::shared_ptr<OutcomeWatch> watch) {
  const Forwarder* forwarder = forwarder_;
  auto shared_respond = std::make_shared<http::Responder>(
      [forwarder, raw_respond = std::move(raw_respond)](http::Response r) {
        raw_respond(forwarder->ServedHere(std::move(r)));
      });
  std::shared_ptr<kafka::Producer> producer = Producer();
  if (!producer) {
    return (*shared_respond)(ProblemWith(503, "kafka-unavailable", "Command not written",
                                         "the command producer is stopped; retry with the "
                                         "same commandId",
                                         {{"commandId", command_id}}));
  }
  Status sent = producer->Send(
      record, [this, shared_respond, command_id, wait, timeout, topology, agg, id, not_here, watch,
               topic = record.topic, producer_of_record = producer.get()](
                  const Status& s, int32_t partition, int64_t offset) {
        // Runs on the producer's poll thread, inside librdkafka: nothing
        // may escape. A failure drops the responder, which answers 500.
        try {
          if (s.IsFenced()) ReplaceProducer(producer_of_record);
          if (!s.ok()) {
            // With the commandId, the client can retry safely: the same
            // id is decided once.
            return (*shared_respond)(
                ProblemWith(503, "kafka-unavailable", "Command not written",
                            "writing the command to " + topic + " failed: " + s.message() +
                                "; retry with the same commandId",
                            {{"commandId", command_id}}));
          }
          RecordPosition position{topic, partition, offset};
          const std::string token = EncodePositionToken(position);
          if (!not_here.empty() && watch) {
            // Written once; its outcome is its next decider's to give.
            watch->position = position;
            watch->token = token;
            watch->not_here = not_here;
            return WatchForHolder(watch, Clock::now());
          }
          if (!not_here.empty()) {
            // Its decision is made, and remembered, by another instance:
            // waiting here would only time out.
            return (*shared_respond)(http::Response::Json(
                202, json{{"commandId", command_id},
                          {"position", token},
                          {"decided", false},
                          {"detail", "the command is written and will be decided, but not "
                                     "answered from here: " +
                                         not_here +
                                         "; query with its position to see its effects, or "
                                         "post it again with the same commandId for its "
                                         "outcome"}}
                         .dump(-1, ' ', false, json::error_handler_t::replace)));
          }
          if (!wait) {
            return (*shared_respond)(http::Response::Json(
                202, json{{"commandId", command_id}, {"position", token}}.dump()));
          }
          AwaitDecision(shared_respond, position, token, command_id, *agg, id, topology,
                        timeout);
        } catch (const std::exception& e) {
          spdlog::error("http: POST /commands: answering command {} failed: {}", command_id,
                        e.what());
        }
      });
  if (!sent.ok()) {
    if (sent.IsFenced()) ReplaceProducer(producer.get());
    (*shared_respond)(ProblemWith(503, "kafka-unavailable", "Command not written",
                                  sent.message() + "; retry with the same commandId",
                                  {{"commandId", command_id}}));
  }
}

// Answers once the aggregate's task has committed past the command: with
// its events (200) or its rejection (409), as the deciding commit told the
// PositionLog, else from the pointer the aggregate keeps with its id.
void CommandRoutes::AwaitDecision(std::shared_ptr<http::Responder> respond,
                                  RecordPosition position, std::string token,
                                  std::string command_id, const CompiledAggregate& agg,
                                  std::string id,
                                  std::shared_ptr<const CompiledTopology> topology,
                                  std::chrono::milliseconds timeout) {
  const PositionLog* log = &engine_->positions();
  StoreRegistry* registry = engine_->registry();
  const std::set<std::string> sources = {position.topic};
  const std::string store = agg.spec.store;
  const int window = agg.spec.dedup_window;
  waiter_->Park(Waiter::Parked{
      [log, position, sources] { return log->Applied(position, sources, sources); },
      [respond, registry, store, id, command_id, token, window, topology, log, position] {
        auto rejected = [&](const std::string& code, const std::string& reason,
                            std::optional<int64_t> current) {
          // The aggregate moved past the version the client decided on:
          // its precondition failed (RFC 9110), and the current version
          // tells it what to read again.
          if (code == "conflict") {
            json extra = {{"code", code}, {"commandId", command_id}, {"position", token}};
            if (current) extra["currentVersion"] = *current;
            http::Response r = ProblemWith(412, "conflict", "Precondition failed: the "
                                           "aggregate has moved on", reason, std::move(extra));
            if (current) r.headers.emplace_back("ETag", VersionETag(*current));
            return (*respond)(std::move(r));
          }
          (*respond)(ProblemWith(409, "rejected", "Command rejected", reason,
                                 {{"code", code}, {"commandId", command_id}, {"position", token}}));
        };
        auto accepted = [&](json events, std::optional<int64_t> version) {
          json body = {{"commandId", command_id}, {"position", token}, {"events", std::move(events)}};
          if (version) body["version"] = *version;
          http::Response r = http::Response::Json(200, DumpJson(body));
          if (version) r.headers.emplace_back("ETag", VersionETag(*version));
          (*respond)(std::move(r));
        };
        // What this process decided: the whole outcome.
        if (auto o = log->DecidedOutcome(command_id)) {
          if (o->rejected) return rejected(o->code, o->reason, o->version);
          json events = ParseJson(o->events);
          return accepted(events.is_array() ? std::move(events) : json::array(), o->version);
        }
        // Decided by an earlier run (or another instance): the aggregate's
        // store remembers the command's id and a pointer to its outcome.
        auto view = registry->View(store);
        auto v = view ? view->Get(id) : Result<std::optional<std::string>>(
                                            Status::Unavailable("store not hosted"));
        if (!v.ok()) {
          // The command is written and decided, but its aggregate's
          // partition has left this instance (a rebalance) before the
          // outcome could be read here: say so, with what a retry needs.
          http::Response r = ProblemWith(
              503, "store-unavailable", "Store unavailable",
              "the command is written and decided, but its outcome cannot be read here: " +
                  v.status().message() +
                  "; post it again with the same commandId for its outcome",
              {{"commandId", command_id}, {"position", token}});
          r.headers.emplace_back("Retry-After", "1");
          return (*respond)(std::move(r));
        }
        json aggregate = v->has_value() ? ParseJson(**v) : json();
        if (aggregate.is_object()) {
          for (const json& c : aggregate.value("commands", json::array())) {
            if (!c.is_object() || c.value("id", "") != command_id) continue;
            auto r = c.find("rejected");
            // The aggregate's version now: for a conflict, what to read again.
            std::optional<int64_t> current;
            if (auto ver = aggregate.find("version");
                ver != aggregate.end() && ver->is_number_integer()) {
              current = ver->get<int64_t>();
            }
            if (r != c.end() && r->is_string()) {
              return rejected(r->get<std::string>(),
                              "the command was rejected with code '" + r->get<std::string>() +
                                  "' (its reason is no longer remembered here)",
                              current);
            }
            if (r != c.end() && r->is_object()) {  // the older form: the outcome kept whole
              return rejected(r->value("code", ""), r->value("reason", ""), current);
            }
            if (c.contains("events")) return accepted(c["events"], std::nullopt);
            // Accepted: its events are those of the aggregate up to version
            // `v` (header kcqrs.version on the event topic).
            http::Response resp = http::Response::Json(
                200, json{{"commandId", command_id},
                          {"position", token},
                          {"decided", true},
                          {"outcome", "accepted"},
                          {"version", c.value("v", int64_t{0})},
                          {"detail", "the command was accepted; its events are no longer "
                                     "remembered here: read them on the event topic, up to "
                                     "this aggregate version (header kcqrs.version)"}}
                         .dump());
            return (*respond)(std::move(resp));
          }
        }
        if (auto reason = log->DeadLetterReason(position)) {
          return (*respond)(ProblemWith(
              422, "dead-lettered", "Command dead-lettered",
              "the command went to the dead-letter topic: " + *reason,
              {{"reason", *reason}, {"commandId", command_id}, {"position", token}}));
        }
        if (window == 0) {
          return (*respond)(http::Response::Json(
              200, json{{"commandId", command_id}, {"position", token}, {"decided", true}}
                       .dump()));
        }
        // Decided here, not dead-lettered by a commit this process
        // remembers: its id has left the aggregate's window of the last
        // `dedup_window` command ids since (or it was dead-lettered by an
        // earlier run of the application).
        http::Response r = http::Response::Json(
            200, json{{"commandId", command_id},
                      {"position", token},
                      {"decided", true},
                      {"outcome", "unknown"},
                      {"detail", "the command was decided, but its outcome is no longer "
                                 "remembered: the aggregate keeps the ids of its last " +
                                     std::to_string(window) +
                                     " commands (dedup_window); read the event and "
                                     "rejection topics for it"}}
                     .dump());
        (*respond)(std::move(r));
      },
      [respond, token, timeout, command_id](PositionLog::Answer) {
        (*respond)(ProblemWith(503, "not-decided-in-time", "Command not decided in time",
                               "the command is written but was not decided within " +
                                   std::to_string(timeout.count()) +
                                   " ms; query with its position to see its effects, or "
                                   "post it again with the same commandId for its outcome",
                               {{"commandId", command_id}, {"position", token}}));
      },
      Clock::now() + timeout});
}

Result<std::unique_ptr<kafka::Producer>> CommandRoutes::NewProducer() const {
  kafka::Properties p = options_->kafka_properties;
  p["bootstrap.servers"] = options_->bootstrap_servers;
  p["client.id"] = options_->application_id + "-http-commands";
  p["enable.idempotence"] = "true";
  p["acks"] = "all";
  p["linger.ms"] = "1";
  auto producer = kafka::Producer::Create(p);
  if (!producer.ok()) return producer.status().WithContext("the command producer");
  return producer;
}
std::shared_ptr<kafka::Producer> CommandRoutes::Producer() const {
  std::lock_guard<std::mutex> lock(producer_mu_);
  return producer_;
}
void CommandRoutes::ReplaceProducer(const kafka::Producer* failed) {
  std::lock_guard<std::mutex> lock(producer_mu_);
  if (producer_.get() != failed || stopping_) return;
  auto fresh = NewProducer();
  if (!fresh.ok()) {
    spdlog::error("http: replacing the command producer: {}", fresh.status().ToString());
    return;
  }
  spdlog::warn("http: the command producer failed for good; replaced it");
  producer_ = std::move(fresh).value();
}

}  // namespace kcqrs::engine
