#include "services/election/zk_spec.hpp"

namespace tessera {

expected<ZkSpec> parse_zk_spec(const std::string& text, const std::string& flag) {
  const std::string scheme = "zk://";
  auto bad = [&] {
    return make_error(Errc::invalid_argument,
                      flag + " '" + text + "': expected zk://HOST:PORT[,HOST:PORT...]/PATH");
  };
  if (text.rfind(scheme, 0) != 0)
    return bad();
  auto rest = text.substr(scheme.size());
  auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= rest.size())
    return bad();
  ZkSpec spec{rest.substr(0, slash), rest.substr(slash)};
  while (spec.path.size() > 1 && spec.path.back() == '/')
    spec.path.pop_back();
  return spec;
}

}  // namespace tessera
