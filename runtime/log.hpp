#pragma once
// One logger for the whole process (spdlog), so every component's lines share a
// format and a level. TESSERA_LOG_LEVEL (trace|debug|info|warn|error|off) sets
// the initial level; tools may change it with set_log_level().

#include <spdlog/spdlog.h>

#include <string_view>

namespace tessera {

spdlog::logger& log();
void set_log_level(std::string_view level);

}  // namespace tessera
