#pragma once
// The secrets' files (keys, certificates, credentials): read whole, and
// replaced atomically and durably with the mode they must have whatever the
// umask, so a crash leaves the old file or the new one, never half of one.

#include "runtime/error.hpp"

#include <sys/types.h>

#include <filesystem>
#include <string>

namespace tessera::security {

// Errc::invalid_argument "cannot read PATH: reason".
expected<std::string> read_file(const std::filesystem::path& path);

// Writes PATH.tmp with mode, fsyncs it and renames it over path.
// Errc::os_error naming the file and the reason.
expected<void> write_file_atomically(const std::filesystem::path& path, const std::string& bytes,
                                     mode_t mode);

}  // namespace tessera::security
