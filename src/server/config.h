// Server configuration: command-line flags, an optional config file (same keys, INI/TOML syntax)
// and environment variables for the first user.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "broker/broker.h"

namespace warren::server {

struct Config {
  std::string bind = "127.0.0.1";
  uint16_t amqp_port = 5672;
  uint16_t management_port = 15672;
  std::string data_dir = "./data";
  std::string log_level = "info";
  std::string default_user = "guest";
  std::string default_pass = "guest";
  double vm_memory_high_watermark = 0.4;  // fraction of physical memory, as RabbitMQ
  uint64_t vm_memory_high_watermark_absolute = 0;  // bytes; overrides the fraction when set
  uint32_t segment_size = 0;  // message journal segment size in bytes; 0 = the store's default
  broker::Limits limits;
};

// Parses argv (and the --config file it names). Returns nullopt after printing help or an error;
// *exit_code says how to exit then.
std::optional<Config> parse_config(int argc, char** argv, int* exit_code);

}  // namespace warren::server
