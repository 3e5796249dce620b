// /api/definitions: GET exports the same JSON as `warrenctl export_definitions`, POST imports
// such a file (administrators only). Neither stalls the message path at 100,000 queues: the
// export writes kChunk objects per event-loop turn and serialises on the management worker;
// the import parses on the worker, then applies kChunk definitions per loop turn, each chunk in
// one metadata-store batch (one fsync), like warrenctl's import over the control socket. A
// failing definition stops the import with 400 and its text; the chunks before it stay applied
// (as RabbitMQ's import, which is not transactional either).
#include <memory>

#include <boost/asio/post.hpp>

#include "broker/definitions.h"
#include "http/api_call.h"
#include "store/metadata_store.h"

namespace warren::http {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

constexpr size_t kChunk = 500;  // a few ms per loop turn (with its fsync, for an import)

struct Export {
  broker::Broker& broker;
  asio::io_context& io;
  asio::thread_pool& worker;
  Finish finish;
  broker::DefinitionsExport snapshot;
  json::object defs;
  json::array queues, exchanges, bindings;
};

void export_chunk(std::unique_ptr<Export> ex) {
  broker::export_some(ex->broker, ex->snapshot, kChunk, ex->queues, ex->exchanges, ex->bindings);
  if (ex->snapshot.next < ex->snapshot.size()) {
    asio::io_context& io = ex->io;
    asio::post(io, [ex = std::move(ex)]() mutable { export_chunk(std::move(ex)); });
    return;
  }
  json::object defs = std::move(ex->defs);
  defs["queues"] = std::move(ex->queues);
  defs["exchanges"] = std::move(ex->exchanges);
  defs["bindings"] = std::move(ex->bindings);
  asio::io_context& io = ex->io;
  asio::thread_pool& worker = ex->worker;
  Finish finish = std::move(ex->finish);
  ex.reset();  // the snapshot's queue references are released on the loop
  asio::post(worker, [&io, defs = std::move(defs), finish = std::move(finish)]() mutable {
    Response r;
    reply_json(r, bhttp::status::ok, defs);
    asio::post(io, [finish = std::move(finish), r = std::move(r)]() mutable {
      finish(std::move(r));
    });
  });
}

struct Import {
  broker::Broker& broker;
  asio::io_context& io;
  Finish finish;
  json::object defs;
  int section = 0;
  size_t index = 0;
};

void finish_import(std::unique_ptr<Import> im, const std::optional<std::string>& failure) {
  Response r;
  if (failure)
    reply_error(r, bhttp::status::bad_request, "bad_request", *failure);
  else
    no_content(r);
  Finish finish = std::move(im->finish);
  im.reset();
  finish(std::move(r));
}

void import_chunk(std::unique_ptr<Import> im) {
  std::optional<store::MetadataStore::Batch> batch;
  if (store::MetadataStore* m = im->broker.metadata()) {
    auto b = m->begin();
    if (!b) return finish_import(std::move(im), "cannot import: " + b.error().message);
    batch.emplace(std::move(*b));
  }
  size_t done = 0;
  std::optional<std::string> failure;
  while (im->section < broker::kDefinitionSectionCount && done < kChunk && !failure) {
    const json::value* list = im->defs.if_contains(broker::kDefinitionSections[im->section]);
    if (list == nullptr || !list->is_array() || im->index >= list->get_array().size()) {
      ++im->section;
      im->index = 0;
      continue;
    }
    const json::value& item = list->get_array()[im->index++];
    if (item.is_object())
      failure = broker::import_definition(im->broker, im->section, item.get_object());
    ++done;
  }
  if (batch)
    if (store::Status s = batch->commit(); s && !failure)
      failure = "cannot save definitions: " + s->message;
  if (failure || im->section >= broker::kDefinitionSectionCount)
    return finish_import(std::move(im), failure);
  asio::io_context& io = im->io;
  asio::post(io, [im = std::move(im)]() mutable { import_chunk(std::move(im)); });
}

}  // namespace

void handle_definitions(ApiCall& c) {
  Response& r = c.r;
  if (c.seg().size() != 1) return not_found(r);
  if (!c.administrator) return not_administrator(r);
  if (c.method() == bhttp::verb::get) {
    auto ex = std::make_unique<Export>(
        Export{c.broker, c.loop.io, c.loop.worker, c.responder.later(), {}, {}, {}, {}, {}});
    ex->defs = broker::export_head(c.broker, &ex->snapshot);
    return export_chunk(std::move(ex));
  }
  if (c.method() != bhttp::verb::post) return method_not_allowed(r);
  // Tens of megabytes of JSON take a while to parse: on the worker (the request stays valid
  // until the response is finished).
  auto im = std::make_unique<Import>(Import{c.broker, c.loop.io, c.responder.later(), {}, 0, 0});
  asio::post(c.loop.worker, [&req = c.req, im = std::move(im)]() mutable {
    Response bad;
    std::optional<json::object> defs = json_body(req, bad);
    asio::io_context& io = im->io;
    asio::post(io, [im = std::move(im), defs = std::move(defs), bad = std::move(bad)]() mutable {
      if (!defs) {
        Finish finish = std::move(im->finish);
        im.reset();
        return finish(std::move(bad));
      }
      im->defs = std::move(*defs);
      import_chunk(std::move(im));
    });
  });
}

}  // namespace warren::http
