// The composed config as headers outside config/ name it: a function that receives the config
// tree to pass along or to bind (its .cpp reads it with config/options.h or common/config_access.h)
// declares a `const ConfigNode&` parameter. Declared here without yaml-cpp, so that those headers,
// and everything that includes them, stay free of it.
#pragma once

namespace YAML {
class Node;
}  // namespace YAML

namespace attnlab {

using ConfigNode = YAML::Node;

}  // namespace attnlab
