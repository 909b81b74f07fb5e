// The task registry: one line per task (`task.name`); see trainer/task.h.
#include <yaml-cpp/yaml.h>

#include "common/config_access.h"
#include "tasks/classification/classification_task.h"
#include "tasks/lm/lm_task.h"
#include "trainer/task.h"

namespace attnlab {

Registry<TaskFactory>& task_registry() {
  static Registry<TaskFactory> registry(
      "task (task.name)", {{"lm", make_lm_task}, {"classification", make_classification_task}});
  return registry;
}

std::string task_name(const YAML::Node& config) {
  const std::string name = cfg::get_or<std::string>(config, "task.name", "lm");
  task_registry().get(name);  // an unknown name is a UserError listing the tasks
  return name;
}

}  // namespace attnlab
