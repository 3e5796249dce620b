#include "server/config.h"

#include <unistd.h>

#include <cstdlib>

#include <CLI/CLI.hpp>

namespace warren::server {

std::optional<Config> parse_config(int argc, char** argv, int* exit_code) {
  Config c;
  // Environment first so flags override it (RabbitMQ's Docker image variables are honoured too).
  for (const char* var : {"RABBITMQ_DEFAULT_USER", "WARREN_DEFAULT_USER"})
    if (const char* v = std::getenv(var)) c.default_user = v;
  for (const char* var : {"RABBITMQ_DEFAULT_PASS", "WARREN_DEFAULT_PASS"})
    if (const char* v = std::getenv(var)) c.default_pass = v;
  if (const char* v = std::getenv("WARREN_DATA_DIR")) c.data_dir = v;

  CLI::App app{"Warren: an AMQP 0-9-1 message broker compatible with RabbitMQ clients",
               "warren-server"};
  app.set_config("--config", "", "Read options from this file (key = value, same names as flags)");
  app.add_option("--amqp-port", c.amqp_port, "AMQP listener port (0 = any free port)")
      ->capture_default_str();
  app.add_option("--bind", c.bind, "Address to listen on")->capture_default_str();
  app.add_option("--management-port", c.management_port,
                 "Management HTTP port (0 = any free port); the HTTP API is not served yet")
      ->capture_default_str();
  app.add_option("--data-dir", c.data_dir, "Data directory (env WARREN_DATA_DIR)")
      ->capture_default_str();
  app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  app.add_option("--default-user", c.default_user,
                 "First user (env WARREN_DEFAULT_USER / RABBITMQ_DEFAULT_USER)")
      ->capture_default_str();
  app.add_option("--default-pass", c.default_pass,
                 "Its password (env WARREN_DEFAULT_PASS / RABBITMQ_DEFAULT_PASS)");
  app.add_option("--frame-max", c.limits.frame_max, "Largest frame offered in connection.tune")
      ->capture_default_str()
      ->check(CLI::Range(4096u, 16u << 20));
  app.add_option("--channel-max", c.limits.channel_max, "Most channels per connection")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  app.add_option("--heartbeat", c.limits.heartbeat,
                 "Heartbeat interval in seconds offered in connection.tune (0 = off)")
      ->capture_default_str();
  app.add_option("--max-message-size", c.limits.max_message_size, "Largest message body in bytes")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{512} << 20));
  app.add_option("--vm-memory-high-watermark", c.vm_memory_high_watermark,
                 "Block publishers while messages use more than this fraction of RAM")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--vm-memory-high-watermark-absolute", c.vm_memory_high_watermark_absolute,
                 "The same as a number of bytes (overrides the fraction)");
  app.add_option("--disk-free-limit", c.limits.disk_free_limit,
                 "Block publishers while the data directory's disk has less free space than this "
                 "many bytes (0 = off)")
      ->capture_default_str();
  app.add_option("--segment-size", c.segment_size,
                 "Message journal segment file size in bytes (default 64 MiB)")
      ->check(CLI::Range(uint32_t{4096}, uint32_t{1} << 30));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return std::nullopt;
  }
  if (c.vm_memory_high_watermark_absolute > 0) {
    c.limits.memory_high_watermark = c.vm_memory_high_watermark_absolute;
  } else {
    double ram = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGE_SIZE));
    c.limits.memory_high_watermark = static_cast<uint64_t>(ram * c.vm_memory_high_watermark);
  }
  return c;
}

}  // namespace warren::server
