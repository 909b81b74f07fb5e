// The `lm` task (language modelling with model=gpt and an objective); see trainer/task.h.
#pragma once

#include <memory>

#include "trainer/task.h"

namespace attnlab {

std::unique_ptr<Task> make_lm_task(const TaskContext& context);

}  // namespace attnlab
