// The objective registry: one line per objective (`objective.name`).
#include "trainer/objective.h"
#include "trainer/objectives/autoregressive.h"
#include "trainer/objectives/masked_diffusion.h"

namespace attnlab {

namespace {
template <typename Impl>
ObjectiveFactory factory() {
  return [](const YAML::Node& config) { return std::make_unique<Impl>(config); };
}
}  // namespace

Registry<ObjectiveFactory>& objective_registry() {
  static Registry<ObjectiveFactory> registry(
      "objective", {{"autoregressive", factory<AutoregressiveObjective>()},
                    {"masked_diffusion", factory<MaskedDiffusionObjective>()}});
  return registry;
}

}  // namespace attnlab
