#include "broker/broker.h"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace warren::broker {

Broker::Broker(boost::asio::io_context& io, Limits limits, auth::UserStore users,
               store::MetadataStore* metadata)
    : io_(io), limits_(limits), users_(std::move(users)), metadata_(metadata), alarm_timer_(io) {
  add_vhost("/");
}

Broker::~Broker() = default;

VHost* Broker::find_vhost(std::string_view name) {
  auto it = vhosts_.find(name);
  return it == vhosts_.end() ? nullptr : it->second.get();
}

VHost& Broker::add_vhost(std::string name) {
  auto& slot = vhosts_[name];
  if (!slot) slot = std::make_unique<VHost>(name, this, metadata_);
  return *slot;
}

void Broker::close_all_connections(std::string_view reason) {
  std::vector<std::shared_ptr<ClientConnection>> all;
  for (auto& [key, c] : connections_) all.push_back(c);
  for (auto& c : all) c->force_close(reason);
}

bool Broker::check_memory_alarm() {
  if (!memory_alarm_ && Message::live_bytes() > limits_.memory_high_watermark) {
    memory_alarm_ = true;
    spdlog::warn("memory alarm set: messages use {} bytes, watermark {}; blocking publishers",
                 Message::live_bytes(), limits_.memory_high_watermark);
    watch_memory_alarm();
  }
  return memory_alarm_;
}

void Broker::watch_memory_alarm() {
  alarm_timer_.expires_after(std::chrono::milliseconds(50));
  alarm_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    if (Message::live_bytes() > limits_.memory_high_watermark) return watch_memory_alarm();
    memory_alarm_ = false;
    spdlog::info("memory alarm cleared: messages use {} bytes", Message::live_bytes());
    std::vector<std::shared_ptr<ClientConnection>> all;
    for (auto& [key, c] : connections_) all.push_back(c);
    for (auto& c : all) c->memory_alarm_cleared();
  });
}

void Broker::schedule_dispatch(Queue& q) {
  q.dispatch_scheduled = true;
  dirty_queues_.emplace_back(&q);
  schedule_drain();
}

void Broker::schedule_flush(std::shared_ptr<OutputFlusher> f) {
  if (f->flush_scheduled) return;
  f->flush_scheduled = true;
  dirty_flushers_.push_back(std::move(f));
  schedule_drain();
}

void Broker::schedule_drain() {
  if (drain_scheduled_) return;
  drain_scheduled_ = true;
  boost::asio::post(io_, [this] { drain(); });
}

void Broker::drain() {
  drain_scheduled_ = false;
  dispatching_.swap(dirty_queues_);
  for (QueueRef& q : dispatching_) {
    q->dispatch_scheduled = false;
    if (!q->deleted()) q->dispatch();
  }
  dispatching_.clear();
  flushing_.swap(dirty_flushers_);
  for (auto& f : flushing_) {
    f->flush_scheduled = false;
    f->flush_output();
  }
  flushing_.clear();
}

}  // namespace warren::broker
