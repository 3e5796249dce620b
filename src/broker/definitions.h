// Definitions in RabbitMQ's JSON format (the file `rabbitmqctl export_definitions` writes and
// GET /api/definitions returns): users (RabbitMQ SHA-256 password hashes), vhosts, permissions,
// topic permissions, global parameters, vhost limits (parameters of component "vhost-limits"),
// policies, exchanges, queues and
// bindings of every vhost. Shared by warrenctl's control socket and the management API; both
// decide how much to do per event-loop turn.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "broker/broker.h"

namespace warren::broker {

// A snapshot of the objects to export: the queues (references: no allocation per queue), then
// the exchanges' names, each with the index of its vhost's name (looked up again when written:
// it may be deleted meanwhile).
struct DefinitionsExport {
  // A snapshot: the queues (references: no allocation per queue), then the exchanges' names,
  // each with the index of its vhost's name (the vhost is looked up again per chunk: it may be
  // deleted meanwhile).
  std::vector<std::string> vhosts;
  std::vector<std::pair<size_t, broker::QueueRef>> queues;
  std::vector<std::pair<size_t, std::string>> exchanges;
  size_t next = 0;  // index into queues, then queues.size() + index into exchanges
  size_t size() const { return queues.size() + exchanges.size(); }
};

// Everything but queues, exchanges and bindings (present as empty arrays), and the snapshot of
// those, to be written by export_some().
boost::json::object export_head(Broker& broker, DefinitionsExport* snapshot);
// Appends up to `max` objects of the snapshot (their bindings included) to the arrays.
void export_some(Broker& broker, DefinitionsExport& snapshot, size_t max,
                 boost::json::array& queues, boost::json::array& exchanges,
                 boost::json::array& bindings);

// Import sections, in RabbitMQ's order (rabbit_definitions).
enum DefinitionSection {
  kDefUsers, kDefVHosts, kDefPermissions, kDefTopicPermissions, kDefGlobalParameters,
  kDefParameters, kDefPolicies, kDefExchanges, kDefQueues, kDefBindings, kDefinitionSectionCount
};
extern const char* const kDefinitionSections[kDefinitionSectionCount];

// Applies one definition of a section; an error text on failure. Users: an existing user's hash
// and tags are replaced; only rabbit_password_hashing_sha256 hashes are accepted. Parameters
// other than vhost-limits are skipped with a warning in the log.
std::optional<std::string> import_definition(Broker& broker, int section,
                                             const boost::json::object& o);

}  // namespace warren::broker
