// /api/definitions: GET exports the same JSON as `warrenctl export_definitions`, POST imports
// such a file (administrators only). Unlike warrenctl's, these run in one event-loop turn (the
// import in one metadata-store batch, one fsync): fine for operator-sized definitions;
// chunking them like the control socket does is left to do.
#include "broker/definitions.h"
#include "http/api_call.h"
#include "store/metadata_store.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

void handle_definitions(ApiCall& c) {
  Response& r = c.r;
  if (c.seg().size() != 1) return not_found(r);
  if (!c.administrator) return not_administrator(r);
  if (c.method() == bhttp::verb::get) {
    broker::DefinitionsExport snapshot;
    json::object d = broker::export_head(c.broker, &snapshot);
    json::array queues, exchanges, bindings;
    broker::export_some(c.broker, snapshot, snapshot.size(), queues, exchanges, bindings);
    d["queues"] = std::move(queues);
    d["exchanges"] = std::move(exchanges);
    d["bindings"] = std::move(bindings);
    return reply_json(r, bhttp::status::ok, d);
  }
  if (c.method() != bhttp::verb::post) return method_not_allowed(r);
  auto defs = json_body(c.req, r);
  if (!defs) return;
  std::optional<store::MetadataStore::Batch> batch;
  if (store::MetadataStore* m = c.broker.metadata()) {
    auto b = m->begin();
    if (!b) return reply_error(r, bhttp::status::internal_server_error, "internal_error",
                               b.error().message);
    batch.emplace(std::move(*b));
  }
  std::optional<std::string> failure;
  for (int section = 0; section < broker::kDefinitionSectionCount && !failure; ++section) {
    const json::value* list = defs->if_contains(broker::kDefinitionSections[section]);
    if (list == nullptr || !list->is_array()) continue;
    for (const json::value& item : list->get_array()) {
      if (!item.is_object()) continue;
      if ((failure = broker::import_definition(c.broker, section, item.get_object()))) break;
    }
  }
  if (batch)
    if (store::Status s = batch->commit(); s && !failure) failure = s->message;
  if (failure) return reply_error(r, bhttp::status::bad_request, "bad_request", *failure);
  no_content(r);
}

}  // namespace warren::http
