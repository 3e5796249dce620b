// Broker: global runtime parameters (broker.h, global_parameters.h). As the access changes
// (broker_access.cc), each is written to the metadata store first, so a failed write changes
// nothing; the value is stored as JSON text and kept parsed in memory.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include "broker/broker.h"
#include "broker/stored.h"
#include "store/metadata_store.h"

namespace warren::broker {

Status Broker::set_global_parameter(const std::string& name, boost::json::value value) {
  value = canonical_json(std::move(value));
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->save_global_parameter({name, boost::json::serialize(value)})))
      return s;
  global_parameters_.put(name, std::move(value));
  return std::nullopt;
}

Status Broker::clear_global_parameter(const std::string& name) {
  if (global_parameters_.find(name) == nullptr)
    return make_error(ErrorCode::kNotFound, "Parameter does not exist");
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->delete_global_parameter(name))) return s;
  global_parameters_.erase(name);
  return std::nullopt;
}

Status Broker::restore_global_parameters() {
  if (metadata_ == nullptr) return std::nullopt;
  auto loaded = metadata_->load_global_parameters();
  if (!loaded) return stored(loaded.error());
  for (store::GlobalParameterRecord& p : *loaded) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(p.value, ec);
    if (ec) {
      spdlog::warn("global parameter '{}' ignored: its stored value is not JSON", p.name);
      continue;
    }
    global_parameters_.put(std::move(p.name), std::move(v));
  }
  if (!loaded->empty()) spdlog::info("restored {} global parameters", loaded->size());
  return std::nullopt;
}

}  // namespace warren::broker
