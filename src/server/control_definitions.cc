// warrenctl export_definitions / import_definitions over the control socket, in chunks: the
// definitions themselves are broker/definitions.h.
//
// Export sends the head first, then queues/exchanges/bindings kExportChunk objects per loop
// turn; warrenctl assembles the file. Import applies kImportChunk objects per event-loop turn,
// each chunk in one metadata-store batch (one fsync): 10,000 durable queues take a few dozen
// fsyncs instead of 10,000, and AMQP traffic is served between chunks. A batch never spans
// turns, so no client's declare-ok is sent for a write that a later fsync has yet to make
// durable.
#include <memory>
#include <optional>
#include <string>

#include "broker/definitions.h"
#include "server/control_server.h"
#include "store/metadata_store.h"

namespace warren::server {

namespace json = boost::json;

namespace {

constexpr size_t kImportChunk = 500;  // a few ms per loop turn with its fsync
constexpr size_t kExportChunk = 500;

void export_chunk(ControlContext& ctx, std::shared_ptr<broker::DefinitionsExport> ex,
                  ControlReply& reply) {
  json::array queues, exchanges, bindings;
  broker::export_some(ctx.broker, *ex, kExportChunk, queues, exchanges, bindings);
  if (!queues.empty()) reply.rows.push_back(json::object{{"queues", std::move(queues)}});
  if (!exchanges.empty()) reply.rows.push_back(json::object{{"exchanges", std::move(exchanges)}});
  if (!bindings.empty()) reply.rows.push_back(json::object{{"bindings", std::move(bindings)}});
  if (ex->next < ex->size())
    reply.next = [&ctx, ex](ControlReply& r) { export_chunk(ctx, ex, r); };
}

void export_definitions(ControlContext& ctx, ControlReply& reply) {
  auto ex = std::make_shared<broker::DefinitionsExport>();
  reply.rows.push_back(json::object{{"head", broker::export_head(ctx.broker, ex.get())}});
  export_chunk(ctx, ex, reply);
}

// One import: the definitions and how far it got.
struct Import {
  json::object defs;
  int section = 0;
  size_t index = 0;
  size_t applied = 0;
};

void import_chunk(ControlContext& ctx, std::shared_ptr<Import> im, ControlReply& reply) {
  std::optional<store::MetadataStore::Batch> batch;
  if (store::MetadataStore* m = ctx.broker.metadata()) {
    auto b = m->begin();
    if (!b) return reply.error("cannot import: " + b.error().message, 70);
    batch.emplace(std::move(*b));
  }
  size_t done = 0;
  std::optional<std::string> failure;
  while (im->section < broker::kDefinitionSectionCount && done < kImportChunk && !failure) {
    auto it = im->defs.find(broker::kDefinitionSections[im->section]);
    const json::array* list = it != im->defs.end() && it->value().is_array()
                                  ? &it->value().get_array() : nullptr;
    if (list == nullptr || im->index >= list->size()) {
      ++im->section;
      im->index = 0;
      continue;
    }
    const json::value& item = (*list)[im->index++];
    if (item.is_object())
      failure = broker::import_definition(ctx.broker, im->section, item.as_object());
    ++done;
  }
  if (batch) {
    if (store::Status s = batch->commit())
      if (!failure) failure = "cannot save definitions: " + s->message;
  }
  if (failure) return reply.error(*failure, 65);
  im->applied += done;
  if (im->section < broker::kDefinitionSectionCount)
    reply.next = [&ctx, im](ControlReply& r) { import_chunk(ctx, im, r); };
  else
    reply.ok(std::to_string(im->applied));
}

}  // namespace

void run_definitions_verb(ControlContext& ctx, json::object& req, ControlReply& reply) {
  if (req.at("verb").as_string() == "export_definitions") return export_definitions(ctx, reply);
  auto it = req.find("definitions");
  if (it == req.end() || !it->value().is_object())
    return reply.error("definitions must be a JSON object", 65);
  auto im = std::make_shared<Import>();
  im->defs = std::move(it->value().get_object());
  import_chunk(ctx, im, reply);
}

}  // namespace warren::server
