#pragma once
// zk://HOST:PORT[,HOST:PORT...]/PATH: where a ZooKeeper ensemble is and the
// path under it, as the --zk, --master and --registry flags take it.

#include "runtime/error.hpp"

#include <string>

namespace tessera {

struct ZkSpec {
  std::string hosts;  // "127.0.0.1:2181,127.0.0.1:2182"
  std::string path;   // "/tessera", no trailing slash
};

// Errc::invalid_argument naming flag and the text when it is not one.
expected<ZkSpec> parse_zk_spec(const std::string& text, const std::string& flag);

}  // namespace tessera
