// bench_attention_step: forward+backward step time of each attention module relative to `mha`,
// measured in the same run at matched model.d_model / model.n_heads (so parameter counts match
// up to the modules' extras, listed). Usage: bench_attention_step [runs=10] [seq_len=256]
// [d_model=256] [n_heads=8] [batch=4] [names=mha,moh,diff,gda,...]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/bench/bench_timing.h"
#include "modules/attention.h"

using namespace attnlab;

int main(int argc, char** argv) {
  auto arg = [&](int i, int64_t fallback) { return argc > i ? std::stoll(argv[i]) : fallback; };
  const int runs = static_cast<int>(std::max<int64_t>(1, arg(1, 10)));
  const int64_t length = arg(2, 256), d_model = arg(3, 256), heads = arg(4, 8), batch = arg(5, 4);
  std::vector<std::string> names{"mha", "moh", "diff", "gda"};
  if (argc > 6) {
    names.clear();
    std::stringstream list(argv[6]);
    for (std::string item; std::getline(list, item, ',');) names.push_back(item);
  }
  torch::manual_seed(0);
  auto x = torch::randn({batch, length, d_model}).requires_grad_(true);
  AttentionContext context;
  context.positions = torch::arange(length);
  std::printf("B=%lld T=%lld d_model=%lld n_heads=%lld, %d runs (median), threads %d\n",
              static_cast<long long>(batch), static_cast<long long>(length),
              static_cast<long long>(d_model), static_cast<long long>(heads), runs,
              torch::get_num_threads());
  double baseline = 0.0;
  for (const std::string& name : names) {
    AttentionOptions options;
    options.d_model = d_model;
    options.n_heads = heads;
    options.module_options.reset();  // each module's defaults (configs/attention/<name>.yaml)
    std::shared_ptr<AttentionImpl> module;
    try {
      module = make_attention(name, options);
    } catch (const std::exception& e) {
      std::printf("%-6s skipped: %s\n", name.c_str(), e.what());
      continue;
    }
    module->train();
    int64_t params = 0;
    for (const auto& p : module->parameters()) params += p.numel();
    auto step = [&] {
      AttentionOutput out = module->forward(x, context);
      auto loss = out.y.sum();
      for (auto& [key, value] : out.aux_losses) loss = loss + value;
      loss.backward();
    };
    const double ms = attnlab::bench::median_ms(step, runs);
    if (name == "mha") baseline = ms;
    std::printf("%-6s params %8lld  step %8.2f ms  ratio to mha %s\n", name.c_str(),
                static_cast<long long>(params), ms,
                baseline > 0 ? std::to_string(ms / baseline).c_str() : "n/a");
  }
  return 0;
}
