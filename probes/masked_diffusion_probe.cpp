// The `masked_diffusion_loss` probe target; see masked_diffusion_probe.h.
#include "probes/masked_diffusion_probe.h"

#include <yaml-cpp/yaml.h>

#include "common/config_access.h"
#include "data/tokenizers/tokenizer.h"
#include "probes/loss_probe.h"
#include "tasks/lm/objectives/masked_diffusion.h"
#include "trainer/run_setup.h"

namespace attnlab {

StateDict probe_masked_diffusion_loss(const YAML::Node& config) {
  auto tokenizer = load_tokenizer(config);
  const int64_t mask = tokenizer->mask(), vocab = tokenizer->vocab_size();
  check_user(mask >= 0, "probe.target=masked_diffusion_loss: tokenizer '" +
                            cfg::get<std::string>(config, "tokenizer.name") +
                            "' has no [MASK] token");
  const ProbeOptions probe = probe_options(config);
  const torch::ScalarType dtype = probe_dtype(probe);
  const int64_t batch_size = probe.batch();
  const int64_t length = probe.seq_len();
  check_user(batch_size > 0 && length > 0, "probe.batch and probe.seq_len must be positive");

  Gpt model = build_model(config, vocab);  // seeds torch's generator with `seed`
  model->to(dtype);
  model->train(probe.training());
  // Clean tokens: uniform over the vocabulary without [MASK] (ids >= mask shift up by one).
  Batch batch;
  batch.input = torch::randint(0, vocab - 1, {batch_size, length}, torch::kLong);
  batch.input = batch.input + (batch.input >= mask).to(torch::kLong);
  batch.target = batch.input;  // no token shift

  ObjectiveContext context;
  context.mask_token = mask;
  context.bos_token = tokenizer->bos();
  context.generator = at::detail::createCPUGenerator(cfg::get<int64_t>(config, "seed"));
  auto dump = masked_diffusion_probe(*model, batch, config, context);
  dump["token_count"] = torch::tensor(static_cast<double>(batch_size * length), torch::kDouble);
  return dump;
}

}  // namespace attnlab
