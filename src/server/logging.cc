#include "server/logging.h"

#include <memory>
#include <vector>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace warren::server {

bool set_up_logging(const Config& config, std::string* error) {
  auto level = spdlog::level::from_str(config.log_level);
  std::vector<spdlog::sink_ptr> sinks;
  if (config.log_console) {
    auto console = std::make_shared<spdlog::sinks::stdout_color_sink_mt>();
    console->set_level(config.console_level.empty()
                           ? level
                           : spdlog::level::from_str(config.console_level));
    sinks.push_back(std::move(console));
  }
  if (!config.log_file.empty()) {
    try {  // spdlog reports an unwritable file only by throwing (start-up only)
      auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(config.log_file);
      file->set_level(level);
      sinks.push_back(std::move(file));
    } catch (const spdlog::spdlog_ex& e) {
      *error = "cannot open log file " + config.log_file + ": " + e.what();
      return false;
    }
  }
  auto logger = std::make_shared<spdlog::logger>("warren", sinks.begin(), sinks.end());
  // The logger passes everything its sinks may want; each sink filters at its own level.
  spdlog::level::level_enum lowest = level;
  for (const auto& s : sinks) lowest = std::min(lowest, s->level());
  logger->set_level(lowest);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e [%l] %v");
  return true;
}

}  // namespace warren::server
