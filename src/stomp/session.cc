#include "stomp/session.h"

#include <charconv>

#include <spdlog/spdlog.h>

#include "auth/access_control.h"
#include "broker/vhost.h"
#include "stomp/connection.h"
#include "stomp/message_mapping.h"
#include "stomp/names.h"

namespace warren::stomp {

namespace {

using auth::Permission;

constexpr std::string_view kSupportedVersions = "1.0,1.1,1.2";
constexpr std::string_view kServer = "Warren/0.1.0";
constexpr std::string_view kInternalTagPrefix = "T_";  // a subscription with an id
constexpr std::string_view kQueueTagPrefix = "Q_";     // a 1.0 subscription without one
constexpr std::string_view kTempQueuePrefix = "/temp-queue/";

// Erlang's ~p of a string, as RabbitMQ's texts quote commands and ids.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// STOMP 1.0 frames get their header values' leading spaces stripped (rabbit_stomp_util:
// trim_headers).
void trim_values(Frame& f) {
  for (Header& h : f.headers) {
    size_t n = h.second.find_first_not_of(' ');
    h.second.erase(0, n == std::string::npos ? h.second.size() : n);
  }
}

bool version_newer(std::string_view a, std::string_view b) {
  // "1.2" > "1.10" is not a concern: the versions offered are 1.0, 1.1 and 1.2.
  return a > b;
}

// rabbit_stomp_util:negotiate_version: the highest version both sides know.
std::optional<std::string> negotiate_version(std::string_view accepted) {
  std::optional<std::string> best;
  size_t start = 0;
  while (start <= accepted.size()) {
    size_t comma = accepted.find(',', start);
    std::string_view v = accepted.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (v == "1.0" || v == "1.1" || v == "1.2")
      if (!best || version_newer(v, *best)) best = std::string(v);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return best;
}

// A non-negative decimal (RabbitMQ's list_to_integer; a failure is its "Processing error").
template <class T>
bool parse_integer(std::string_view text, T* out) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && ec == std::errc() && p == text.data() + text.size();
}

// The heart-beat seconds of rabbit_stomp_processor: 0 stays 0, below a second rounds up to one.
uint32_t heartbeat_seconds(int64_t ms) {
  if (ms <= 0) return 0;
  if (ms < 1000) return 1;
  return static_cast<uint32_t>(std::min<int64_t>(ms / 1000, 1 << 20));
}

bool has_durable_header(const Frame& f) {
  return f.boolean("durable").value_or(false) || f.boolean("persistent").value_or(false);
}

// Queue arguments given as headers (rabbit_stomp_util:build_arguments).
std::optional<FieldTable> queue_arguments(const Frame& f) {
  FieldTable args;
  for (const Header& h : f.headers) {
    const std::string& k = h.first;
    if (k == "x-dead-letter-exchange" || k == "x-dead-letter-routing-key" ||
        k == "x-queue-type") {
      std::string v = h.second;
      size_t b = v.find_first_not_of(' '), e = v.find_last_not_of(' ');
      args.set(k, b == std::string::npos ? std::string() : v.substr(b, e - b + 1));
    } else if (k == "x-expires" || k == "x-max-length" || k == "x-max-length-bytes" ||
               k == "x-max-priority" || k == "x-message-ttl") {
      int64_t n = 0;
      if (!parse_integer(h.second, &n) &&
          !(h.second.starts_with('-') && parse_integer(std::string_view(h.second).substr(1), &n)))
        return std::nullopt;
      if (h.second.find('-') != std::string::npos) n = -n;
      args.set(k, n);
    }
  }
  return args;
}

// The queue.declare flags a destination gets (rabbit_stomp_util:build_params merged with
// rabbit_routing_util's defaults): /queue/ is durable by default; /topic/ and /exchange/
// subscriptions are auto-delete and not exclusive; a non-durable queue is exclusive and
// auto-delete unless the headers say otherwise. nullopt for a durable/auto-delete/exclusive
// header that is not a boolean (RabbitMQ fails on it).
struct DeclareFlags {
  bool durable = false, auto_delete = false, exclusive = false;
};
std::optional<DeclareFlags> declare_flags(DestinationKind kind, const Frame& f) {
  std::optional<bool> durable, auto_delete, exclusive;
  for (const Header& h : f.headers) {
    const std::string& k = h.first;
    std::optional<bool> b = f.boolean(k);
    if (k == "durable" || k == "persistent") {
      // The first of the two in the frame decides; a value that is not a boolean makes
      // RabbitMQ's declare fail.
      if (!b && !durable) return std::nullopt;
      if (!durable) durable = b;
    } else if (k == "auto-delete") {
      if (!auto_delete) auto_delete = b;  // a non-boolean leaves the default
    } else if (k == "exclusive") {
      if (!exclusive) exclusive = b;
    }
  }
  bool subscription = kind == DestinationKind::kTopic || kind == DestinationKind::kExchange;
  if (!durable) durable = kind == DestinationKind::kQueue;
  if (subscription) {
    if (!exclusive) exclusive = false;
    if (!auto_delete) auto_delete = true;
  }
  DeclareFlags out;
  out.durable = *durable;
  if (!out.durable) out.auto_delete = out.exclusive = true;
  if (exclusive) out.exclusive = *exclusive;
  if (auto_delete) out.auto_delete = *auto_delete;
  return out;
}

}  // namespace

Session::Session(Connection& conn, const Settings& settings) : conn_(conn), settings_(settings) {}

Session::~Session() {
  shutdown();
  conn_.broker().stop_waiting_for_journal(this);
}

// ---- output ----

void Session::write(std::string_view command, const std::vector<Header>& headers,
                    std::string_view body) {
  write_frame(conn_.out(), command, headers, body);
  conn_.output_added();
}

void Session::write_error(const StompError& e, const std::vector<Header>& extra) {
  spdlog::info("STOMP connection {}: ERROR {}: {}", conn_.id(), e.message, e.detail);
  std::vector<Header> headers = {{"message", e.message},
                                 {"content-type", "text/plain"},
                                 {"version", std::string(kSupportedVersions)}};
  headers.insert(headers.end(), extra.begin(), extra.end());
  write("ERROR", headers, e.detail);
}

void Session::write_receipt(const std::string& id) { write("RECEIPT", {{"receipt-id", id}}); }

// ---- frames ----

AfterFrame Session::handle(Frame& frame) {
  const std::string command = frame.command;
  if (command == "CONNECT" || command == "STOMP") return connect(frame);
  if (!logged_in() && settings_.implicit_connect) {
    // As rabbitmq_stomp: a login from an empty CONNECT; if it fails, its ERROR goes out and
    // the connection closes.
    Frame empty;
    connect(empty, true);
    if (!logged_in()) return AfterFrame::kCloseAfterFlush;
  }
  if (!logged_in()) {
    write_error(protocol_error("Illegal command", "You must log in using CONNECT first"));
    return AfterFrame::kContinue;
  }
  if (version_ == "1.0") trim_values(frame);
  AfterFrame after = AfterFrame::kContinue;
  StompStatus st = dispatch(command, frame, &after);
  if (st) {
    write_error(*st);
    return st->fatal ? AfterFrame::kCloseAfterFlush : AfterFrame::kContinue;
  }
  // A SEND's receipt waits for its confirm (publish()); every other frame's goes out now.
  if (command != "SEND")
    if (const std::string* r = frame.header("receipt")) write_receipt(*r);
  return after;
}

AfterFrame Session::connect(Frame& frame, bool implicit) {
  // A second CONNECT crashes RabbitMQ's processor, which drops the connection.
  if (logged_in()) return AfterFrame::kCloseNow;
  const std::string* accept = frame.header("accept-version");
  auto version = negotiate_version(accept != nullptr ? *accept : "1.0");
  if (!version) {
    write_error(protocol_error("Version mismatch",
                               fmt::format("Supported versions are {}\n", kSupportedVersions)));
    return AfterFrame::kContinue;
  }
  if (*version == "1.0") trim_values(frame);
  const std::string* login = frame.header("login");
  const std::string* passcode = frame.header("passcode");
  std::string name = login != nullptr ? *login : settings_.default_login;
  std::string password = passcode != nullptr ? *passcode : settings_.default_passcode;
  const std::string* host = frame.header("host");
  std::string vhost_name = host != nullptr ? *host : settings_.default_vhost;
  const std::string* beat = frame.header("heart-beat");
  std::string_view beats = beat != nullptr ? std::string_view(*beat) : "0,0";
  size_t comma = beats.find(',');
  int64_t cx = 0, cy = 0;
  if (comma == std::string_view::npos || beats.find(',', comma + 1) != std::string_view::npos ||
      !parse_integer(beats.substr(0, comma), &cx) || !parse_integer(beats.substr(comma + 1), &cy)) {
    write_error(processing_error());
    return AfterFrame::kContinue;
  }
  broker::Broker& b = conn_.broker();
  const auth::User* user = b.users().authenticate(name, password);
  if (user == nullptr) {
    spdlog::warn("STOMP login failed for user '{}': authentication failed", name);
    write_error(protocol_error("Bad CONNECT", fmt::format("Access refused for user '{}'\n", name)));
    return AfterFrame::kContinue;
  }
  broker::VHost* vhost = b.find_vhost(vhost_name);
  if (vhost == nullptr || !b.access_control().has_vhost_access(user->name, vhost->name()) ||
      (vhost->max_connections >= 0 &&
       vhost->open_connections >= static_cast<size_t>(vhost->max_connections))) {
    spdlog::warn("STOMP login failed for user '{}': virtual host access not allowed", name);
    write_error(protocol_error("Bad CONNECT",
                               fmt::format("Virtual host '{}' access denied", vhost_name)));
    return AfterFrame::kContinue;
  }
  if (!conn_.peer_is_loopback() && b.users().loopback_only(user->name)) {
    spdlog::warn("STOMP login failed for user '{}': this user's access is restricted to "
                 "localhost", name);
    write_error(protocol_error("Bad CONNECT", "non-loopback access denied"));
    return AfterFrame::kContinue;
  }
  user_ = user->name;
  connection_name_ = conn_.connection_name();
  identity_ = broker::ClientIdentity{user_, connection_name_, 1};
  vhost_ = vhost;
  ++vhost_->open_connections;
  version_ = *version;
  session_id_ = new_session_id();
  // We send as often as the client wants to receive, and expect what it offers to send.
  uint32_t send_s = heartbeat_seconds(cy), receive_s = heartbeat_seconds(cx);
  send_heartbeat_ms_ = send_s * 1000;
  receive_heartbeat_ms_ = receive_s * 1000;
  if (!implicit)
    write("CONNECTED", {{"server", std::string(kServer)},
                        {"session", session_id_},
                        {"heart-beat", fmt::format("{},{}", send_heartbeat_ms_, receive_heartbeat_ms_)},
                        {"version", version_}});
  spdlog::debug("STOMP connection {}: user '{}' connected to vhost '{}' (STOMP {})", conn_.id(),
                user_, vhost_->name(), version_);
  return AfterFrame::kContinue;
}

StompStatus Session::dispatch(const std::string& command, Frame& f, AfterFrame* after) {
  if (command == "SUBSCRIBE" || command == "UNSUBSCRIBE") {
    if ((f.header("durable") && *f.header("durable") == "true") ||
        (f.header("persistent") && *f.header("persistent") == "true"))
      if (!f.has("id"))
        return protocol_error("Missing Header",
                              "Header 'id' is required for durable subscriptions");
    return command == "SUBSCRIBE" ? subscribe(f) : unsubscribe(f);
  }
  if (command == "SEND") return send(f);
  if (command == "ACK") return ack(f, true);
  if (command == "NACK") return ack(f, false);
  if (command == "BEGIN" || command == "COMMIT" || command == "ABORT")
    return transaction_command(f, command);
  if (command == "DISCONNECT") {
    shutdown();
    *after = AfterFrame::kCloseAfterFlush;
    return std::nullopt;
  }
  return protocol_error("Bad command",
                        fmt::format("Could not interpret command {}\n", quoted(command)));
}

StompStatus Session::require(Permission what, std::string_view kind, std::string_view name) {
  if (broker::Status s = conn_.broker().check_access(user_, vhost_->name(), what, kind, name))
    return broker_error(*s);
  return std::nullopt;
}

// Write (SEND) or read (binding) on the routing key of a topic exchange, as the AMQP channel
// behind a RabbitMQ STOMP connection checks it.
StompStatus Session::require_topic(Permission what, std::string_view exchange,
                                   std::string_view routing_key) {
  broker::Broker& b = conn_.broker();
  if (!b.topic_checks_apply(user_, vhost_->name())) return std::nullopt;
  if (broker::Status s = b.check_topic_access_on(vhost_->find_exchange(exchange), user_,
                                                 vhost_->name(), what, routing_key))
    return broker_error(*s);
  return std::nullopt;
}

namespace {
// with_destination's errors for a missing or unusable destination header.
Result<Destination, StompError> destination_of(const Frame& f, std::string_view command) {
  const std::string* header = f.header("destination");
  if (header == nullptr)
    return protocol_error("Missing destination",
                          fmt::format("{} must include a 'destination' header\n", quoted(command)));
  auto d = parse_destination(*header);
  if (!d) return protocol_error(d.error().message, d.error().detail);
  if (d->kind == DestinationKind::kTempQueue)
    return protocol_error("Invalid destination",
                          fmt::format("'{}' is not a valid destination for '{}'\n", *header,
                                      command));
  return std::move(*d);
}
}  // namespace

// ---- SUBSCRIBE / UNSUBSCRIBE ----

StompStatus Session::subscribe(const Frame& f) {
  auto d = destination_of(f, "SUBSCRIBE");
  if (!d) return d.error();
  // rabbit_stomp_processor:check_subscription_access: a /topic/ subscription needs read on its
  // binding key, whatever the exchange's type, before anything is declared. The refusal is an
  // access_refused ERROR whose body is the bare reason (no "ACCESS_REFUSED - ").
  if (d->kind == DestinationKind::kTopic)
    if (broker::Status s = conn_.broker().check_topic_access(
            user_, vhost_->name(), d->exchange(), Permission::kRead, d->routing_key()))
      return StompError{"access_refused", s->text, true};
  std::optional<uint32_t> prefetch;
  if (const std::string* p = f.header("prefetch-count")) {
    uint32_t n = 0;
    if (!parse_integer(*p, &n)) return processing_error();
    prefetch = n;
  }
  const std::string* ack_header = f.header("ack");
  std::string_view ack_mode = ack_header != nullptr ? std::string_view(*ack_header) : "auto";
  if (ack_mode != "auto" && ack_mode != "client" && ack_mode != "client-individual")
    return processing_error();
  auto queue = subscription_queue(*d, f);
  if (!queue) return queue.error();
  const std::string* id = f.header("id");
  if (id != nullptr && id->starts_with(kTempQueuePrefix)) return processing_error();
  std::string tag = id != nullptr ? std::string(kInternalTagPrefix) + *id
                                  : std::string(kQueueTagPrefix) + *f.header("destination");
  if (prefetch) deliveries_.set_prefetch(*prefetch, false);
  if (subscriptions_.count(tag)) {
    StompError e = protocol_error("Duplicated subscription identifier",
                                  fmt::format("A subscription identified by '{}' already exists.",
                                              tag));
    e.fatal = true;
    return e;
  }
  Subscription sub;
  sub.destination = *f.header("destination");
  sub.client_ack = ack_mode != "auto";
  sub.multi_ack = ack_mode == "client";
  sub.description = id != nullptr ? "id='" + *id + "'" : "destination='" + sub.destination + "'";
  if (StompStatus s = consume(*queue, tag, !sub.client_ack, std::move(sub))) return s;
  // Then the binding of a topic or exchange subscription's queue (RabbitMQ binds after the
  // consume and deletes the queue it made if the binding fails).
  if (d->kind == DestinationKind::kTopic || d->kind == DestinationKind::kExchange) {
    StompStatus bound = require(Permission::kWrite, "queue", *queue);
    if (!bound) bound = require(Permission::kRead, "exchange", d->exchange());
    if (!bound) bound = require_topic(Permission::kRead, d->exchange(), d->routing_key());
    if (!bound)
      if (broker::Status s = vhost_->bind_queue(*queue, d->exchange(), d->routing_key(), {},
                                                conn_.id()))
        bound = broker_error(*s);
    if (bound) {
      remove_subscription(tag);
      if (vhost_->find_queue(*queue) != nullptr)
        (void)vhost_->delete_queue(*queue, false, false, conn_.id());
      return bound;
    }
  }
  return std::nullopt;
}

Result<std::string, StompError> Session::subscription_queue(const Destination& d,
                                                            const Frame& f) {
  switch (d.kind) {
    case DestinationKind::kQueue:
      if (StompStatus s = declare_destination_queue(d, f)) return *s;
      return d.name;
    case DestinationKind::kAmqQueue:
    case DestinationKind::kReplyQueue:
      return d.name;
    case DestinationKind::kTopic:
    case DestinationKind::kExchange: {
      auto flags = declare_flags(d.kind, f);
      auto args = queue_arguments(f);
      if (!flags || !args) return processing_error();
      std::string name;
      if (const std::string* given = f.header("x-queue-name")) {
        name = *given;
      } else if (has_durable_header(f)) {
        name = durable_subscription_queue(d.routing_key(), *f.header("id"));
      } else {
        name = random_subscription_queue();
      }
      if (StompStatus s = require(Permission::kConfigure, "queue", name)) return *s;
      broker::QueueDeclare decl{name, false, flags->durable, flags->exclusive, flags->auto_delete,
                                std::move(*args)};
      auto ok = vhost_->declare_queue(decl, conn_.id());
      if (!ok) return broker_error(ok.error());
      return ok->name;
    }
    case DestinationKind::kTempQueue:
      break;
  }
  return processing_error();
}

StompStatus Session::declare_destination_queue(const Destination& d, const Frame& f) {
  if (d.kind != DestinationKind::kQueue || declared_queues_.count(d.name)) return std::nullopt;
  auto flags = declare_flags(d.kind, f);
  auto args = queue_arguments(f);
  if (!flags || !args) return processing_error();
  if (!d.name.starts_with("amq."))
    if (StompStatus s = require(Permission::kConfigure, "queue", d.name)) return s;
  broker::QueueDeclare decl{d.name, false, flags->durable, flags->exclusive, flags->auto_delete,
                            std::move(*args)};
  auto ok = vhost_->declare_queue(decl, conn_.id());
  if (!ok) return broker_error(ok.error());
  declared_queues_.insert(d.name);
  return std::nullopt;
}

StompStatus Session::consume(const std::string& queue, const std::string& tag, bool no_ack,
                             Subscription sub) {
  if (StompStatus s = require(Permission::kRead, "queue", queue)) return s;
  auto q = vhost_->usable_queue(queue, conn_.id());
  if (!q) return broker_error(q.error());
  broker::Queue* target = *q;
  if (target->has_exclusive_consumer())
    return broker_error(broker::make_error(broker::ErrorCode::kAccessRefused,
                                           "queue '{}' in vhost '{}' in exclusive use",
                                           target->name(), target->vhost()));
  auto c = std::make_unique<broker::Consumer>();
  c->tag = tag;
  c->sink = this;
  c->queue = broker::QueueRef(target);
  c->connection_id = conn_.id();
  c->no_ack = no_ack;
  c->prefetch = deliveries_.consumer_prefetch();
  broker::Consumer* raw = c.get();
  sub.consumer = std::move(c);
  subscriptions_.emplace(tag, std::move(sub));
  target->add_consumer(raw);
  return std::nullopt;
}

void Session::remove_subscription(const std::string& tag) {
  auto it = subscriptions_.find(tag);
  if (it == subscriptions_.end()) return;
  std::unique_ptr<broker::Consumer> c = std::move(it->second.consumer);
  subscriptions_.erase(it);
  deliveries_.consumer_gone(c.get());
  broker::Queue* q = c->queue.get();
  // The last consumer of an auto-delete queue takes the queue with it.
  if (q != nullptr && !q->deleted() && q->remove_consumer(c.get())) vhost_->remove_queue(q);
}

StompStatus Session::unsubscribe(const Frame& f) {
  std::string tag, description;
  if (const std::string* id = f.header("id")) {
    if (id->starts_with(kTempQueuePrefix))
      return protocol_error("Invalid id",
                            fmt::format("UNSUBSCRIBE 'id' may not start with {}\n",
                                        kTempQueuePrefix));
    tag = std::string(kInternalTagPrefix) + *id;
    description = "id='" + *id + "'";
  } else if (const std::string* dest = f.header("destination")) {
    tag = std::string(kQueueTagPrefix) + *dest;
    description = "destination='" + *dest + "'";
  } else {
    return protocol_error("Missing destination or id",
                          "UNSUBSCRIBE must include a 'destination' or 'id' header");
  }
  auto it = subscriptions_.find(tag);
  if (it == subscriptions_.end())
    return protocol_error("No subscription found",
                          fmt::format("UNSUBSCRIBE must refer to an existing subscription.\n"
                                      "Subscription to {} not found.\n",
                                      quoted(description)));
  std::string destination = it->second.destination;
  remove_subscription(tag);
  // A durable topic subscription is deleted by an UNSUBSCRIBE that says durable again.
  auto d = parse_destination(destination);
  if (d && d->kind == DestinationKind::kTopic && has_durable_header(f) && f.has("id")) {
    std::string name = f.header("x-queue-name") != nullptr
                           ? *f.header("x-queue-name")
                           : durable_subscription_queue(d->routing_key(), *f.header("id"));
    if (StompStatus s = require(Permission::kConfigure, "queue", name)) return s;
    auto deleted = vhost_->delete_queue(name, false, false, conn_.id());
    if (!deleted) return broker_error(deleted.error());
  }
  return std::nullopt;
}

// ---- SEND ----

StompStatus Session::send(const Frame& f) {
  if (f.has("message-id"))
    return protocol_error("Invalid header", "'message-id' is not allowed on 'SEND'.\n");
  auto d = destination_of(f, "SEND");
  if (!d) return d.error();
  if (StompStatus s = declare_destination_queue(*d, f)) return s;
  std::optional<std::string> reply_queue;
  if (const std::string* reply_to = f.header("reply-to")) {
    auto r = parse_destination(*reply_to);
    if (!r) return processing_error();  // RabbitMQ fails to match an unparsable reply-to
    if (r->kind == DestinationKind::kTempQueue) {
      auto q = temp_reply_queue(r->name);
      if (!q) return q.error();
      reply_queue = std::move(*q);
    }
  }
  auto props = publish_properties(f, reply_queue ? &*reply_queue : nullptr);
  if (!props) return processing_error();
  if (props->user_id && *props->user_id != user_)
    return broker_error(broker::make_error(
        broker::ErrorCode::kPreconditionFailed,
        "user_id property set to '{}' but authenticated user was '{}'", *props->user_id, user_));
  int64_t expiration_ms = -1;
  if (props->expiration) {
    std::string reason;
    if (!broker::parse_expiration(*props->expiration, &expiration_ms, &reason))
      return broker_error(broker::make_error(broker::ErrorCode::kPreconditionFailed,
                                             "invalid expiration '{}': {}", *props->expiration,
                                             reason));
  }
  if (f.body.size() > conn_.broker().limits().max_message_size)
    return broker_error(broker::make_error(broker::ErrorCode::kPreconditionFailed,
                                           "message size {} is larger than configured max size {}",
                                           f.body.size(),
                                           conn_.broker().limits().max_message_size));
  std::string exchange = d->exchange(), key = d->routing_key();
  broker::MessageRef msg = broker::Message::create(exchange, key, props->raw, f.body.size());
  msg->append_body(f.body);
  msg->delivery_mode = props->delivery_mode;
  msg->priority = props->priority;
  msg->expiration_ms = expiration_ms;
  std::optional<std::string> receipt;
  if (const std::string* r = f.header("receipt")) receipt = *r;
  if (const std::string* tx = f.header("transaction")) {
    auto it = transactions_.find(*tx);
    if (it == transactions_.end())
      return protocol_error("Bad transaction",
                            fmt::format("Invalid transaction identifier: {}\n", quoted(*tx)));
    it->second.push_back(PendingPublish{std::move(msg), std::move(receipt)});
    return std::nullopt;
  }
  return publish(std::move(msg), receipt);
}

StompStatus Session::publish(broker::MessageRef msg, const std::optional<std::string>& receipt) {
  broker::Broker& b = conn_.broker();
  std::string exchange(msg->exchange());
  if (StompStatus s = require(Permission::kWrite, "exchange", exchange)) return s;
  if (!exchange.empty()) {
    auto x = vhost_->publishable_exchange(exchange);
    if (!x) return broker_error(x.error());
    if (StompStatus s = require_topic(Permission::kWrite, exchange, msg->routing_key())) return s;
  }
  if (receipt && !confirm_mode_) confirm_mode_ = true;
  if (confirm_mode_) {
    ++publish_seq_;
    if (receipt) pending_receipts_.emplace(publish_seq_, *receipt);
    conn_.confirm_pending();
  }
  broker::PublishRequest request{std::move(msg), false, &conn_.flow()};
  request.publisher = &identity_;
  broker::PublishOutcome outcome = vhost_->publish(request);
  b.count_publish(*vhost_, outcome, &deliveries_.stats());
  if (confirm_mode_) {
    confirms_.published(publish_seq_, outcome);
    if (outcome.must_wait_for_disk()) b.wait_for_journal(this);
  }
  if (b.publishing_blocked()) conn_.block_for_alarm();
  return std::nullopt;
}

void Session::write_receipts() {
  if (!confirm_mode_) return;
  uint64_t before = confirms_.confirmed();
  confirms_.take_due(
      publish_seq_,
      [&](uint64_t through, bool) {
        while (!pending_receipts_.empty() && pending_receipts_.begin()->first <= through) {
          write_receipt(pending_receipts_.begin()->second);
          pending_receipts_.erase(pending_receipts_.begin());
        }
      },
      [&](uint64_t tag) {
        // A refused publish (reject-publish, a failed disk write) gets no receipt.
        if (auto it = pending_receipts_.find(tag); it != pending_receipts_.end()) {
          spdlog::warn("STOMP connection {}: publish with receipt '{}' was refused", conn_.id(),
                       it->second);
          pending_receipts_.erase(it);
        }
      });
  if (uint64_t n = confirms_.confirmed() - before; n != 0 && vhost_ != nullptr)
    conn_.broker().count_confirms(*vhost_, n, &deliveries_.stats());
}

bool Session::journal_synced(const store::Completion& c) {
  if (confirms_.journal_synced(c)) conn_.confirm_pending();
  return confirms_.waits_beyond(c.last_seq);
}

Result<std::string, StompError> Session::temp_reply_queue(const std::string& id) {
  if (auto it = reply_queues_.find(id); it != reply_queues_.end()) return it->second;
  std::string name = vhost_->generate_queue_name();
  if (StompStatus s = require(Permission::kConfigure, "queue", name)) return *s;
  broker::QueueDeclare decl{name, false, false, true, true, {}};
  decl.server_named = true;
  auto ok = vhost_->declare_queue(decl, conn_.id());
  if (!ok) return broker_error(ok.error());
  Subscription sub;
  sub.destination = ok->name;
  std::string tag = std::string(kInternalTagPrefix) + std::string(kTempQueuePrefix) + id;
  sub.description = "id='" + std::string(kTempQueuePrefix) + id + "'";
  if (StompStatus s = consume(ok->name, tag, true, std::move(sub))) return *s;
  reply_queues_.emplace(id, ok->name);
  return ok->name;
}

// ---- ACK / NACK ----

StompStatus Session::ack(const Frame& f, bool positive) {
  std::string_view command = positive ? "ACK" : "NACK";
  std::string_view header_name = version_ == "1.2" ? "id" : "message-id";
  const std::string* value = f.header(header_name);
  if (value == nullptr)
    return protocol_error("Missing header", fmt::format("{} must include the {} header\n",
                                                        quoted(command), quoted(header_name)));
  auto parsed = parse_message_id(*value);
  if (!parsed)
    return protocol_error("Invalid header", fmt::format("{} must include a valid {} header\n",
                                                        quoted(command), quoted(header_name)));
  if (!parsed->delivery_tag) return processing_error();
  auto it = subscriptions_.find(parsed->consumer_tag);
  if (it == subscriptions_.end())
    return protocol_error("Subscription not found",
                          fmt::format("Message with id {} has no subscription", quoted(*value)));
  bool requeue = f.boolean("requeue").value_or(settings_.default_nack_requeue);
  broker::Settlement how = positive ? broker::Settlement::kAck
                           : requeue ? broker::Settlement::kRequeue
                                     : broker::Settlement::kReject;
  PendingSettlement s{*parsed->delivery_tag, it->second.multi_ack, how};
  if (const std::string* tx = f.header("transaction")) {
    auto t = transactions_.find(*tx);
    if (t == transactions_.end())
      return protocol_error("Bad transaction",
                            fmt::format("Invalid transaction identifier: {}\n", quoted(*tx)));
    t->second.emplace_back(std::in_place_type<PendingSettlement>, s);
    return std::nullopt;
  }
  return settle(s.tag, s.multiple, s.how);
}

StompStatus Session::settle(uint64_t tag, bool multiple, broker::Settlement how) {
  if (broker::Status st = deliveries_.settle(tag, multiple, how)) return broker_error(*st);
  if (deliveries_.has_channel_prefetch()) request_dispatch_all();
  return std::nullopt;
}

// ---- transactions ----

StompStatus Session::transaction_command(const Frame& f, const std::string& command) {
  const std::string* tx = f.header("transaction");
  if (tx == nullptr)
    return protocol_error("Missing transaction",
                          fmt::format("{} must include a 'transaction' header\n", quoted(command)));
  if (command == "BEGIN") {
    transactions_[*tx].clear();
    return std::nullopt;
  }
  auto it = transactions_.find(*tx);
  if (it == transactions_.end())
    return protocol_error("Bad transaction",
                          fmt::format("Invalid transaction identifier: {}\n", quoted(*tx)));
  std::vector<TransactionAction> actions = std::move(it->second);
  transactions_.erase(it);
  if (command == "ABORT") return std::nullopt;
  for (TransactionAction& a : actions) {
    StompStatus s;
    if (auto* p = std::get_if<PendingPublish>(&a)) {
      s = publish(std::move(p->message), p->receipt);
    } else {
      const auto& st = std::get<PendingSettlement>(a);
      s = settle(st.tag, st.multiple, st.how);
    }
    if (s) return s;
  }
  return std::nullopt;
}

// ---- deliveries ----

bool Session::can_deliver(const broker::Consumer& c) const {
  if (conn_.output_blocked()) return false;
  return deliveries_.can_deliver(c);
}

void Session::deliver(broker::Consumer& c, broker::Queue* q, broker::QueuedMessage&& m) {
  broker::MessageRef msg = m.msg;
  bool redelivered = m.redelivered;
  uint64_t tag = deliveries_.delivered(&c, q, std::move(m), c.no_ack);
  auto it = subscriptions_.find(c.tag);
  std::vector<Header> headers;
  headers.reserve(8);
  if (c.tag.starts_with(kInternalTagPrefix))
    headers.emplace_back("subscription", c.tag.substr(kInternalTagPrefix.size()));
  headers.emplace_back("destination", format_destination(msg->exchange(), msg->routing_key()));
  std::string id = message_id(c.tag, session_id_, tag);
  headers.emplace_back("message-id", id);
  headers.emplace_back("redelivered", redelivered ? "true" : "false");
  if (it != subscriptions_.end() && it->second.client_ack && version_ == "1.2")
    headers.emplace_back("ack", std::move(id));
  append_message_headers(msg->raw_properties(), headers);
  write("MESSAGE", headers, msg->body());
}

void Session::cancelled_by_broker(broker::Consumer& c) {
  auto it = subscriptions_.find(c.tag);
  if (it == subscriptions_.end()) return;
  std::string id = c.tag.starts_with(kInternalTagPrefix)
                       ? c.tag.substr(kInternalTagPrefix.size())
                       : c.tag.substr(kQueueTagPrefix.size());
  write_error(protocol_error("Server cancelled subscription",
                             fmt::format("The server has canceled a subscription.\n"
                                         "No more messages will be delivered for {}.\n",
                                         quoted(it->second.description))),
              {{"subscription", id}});
  // The queue already dropped the consumer.
  std::unique_ptr<broker::Consumer> owned = std::move(it->second.consumer);
  subscriptions_.erase(it);
  deliveries_.consumer_gone(owned.get());
}

void Session::request_dispatch_all() {
  for (auto& [tag, sub] : subscriptions_)
    if (sub.consumer && sub.consumer->queue) sub.consumer->queue->request_dispatch();
}

// ---- lifecycle ----

void Session::shutdown() {
  std::vector<std::string> tags;
  for (auto& [tag, sub] : subscriptions_) tags.push_back(tag);
  for (const std::string& tag : tags) remove_subscription(tag);
  deliveries_.requeue_all();
  transactions_.clear();
  if (vhost_ != nullptr) {
    --vhost_->open_connections;
    vhost_->connection_closed(conn_.id());
    vhost_ = nullptr;
  }
}

broker::ChannelInfo Session::info() const {
  broker::ChannelInfo i;
  i.number = 1;
  i.consumer_count = subscriptions_.size();
  i.messages_unacknowledged = deliveries_.outstanding();
  i.prefetch_count = deliveries_.consumer_prefetch();
  i.confirm = confirm_mode_;
  i.sink = this;
  i.stats = &deliveries_.stats();
  return i;
}

}  // namespace warren::stomp
