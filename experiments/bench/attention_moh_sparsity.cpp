// bench_attention_moh_sparsity: MoH attention time relative to `mha` measured in the same run, at
// 50%, 75% and 90% active heads per token (h = 20 heads of dim 16, d_model = 320; active =
// (shared + K) / h). MoH computes attention only for its active (token, head) pairs, so its
// time should fall with the active fraction; target: <= 0.65x of mha at 50% active for T >= 512.
// Times the whole module (projections and routers included, which do not shrink) and reports
// the median of `runs` (inference forward, no grad) and of forward+backward in training mode.
// Usage: bench_attention_moh_sparsity [runs=5] [seq_lens=512,1024,2048]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/bench/bench_timing.h"
#include "modules/attention.h"

using namespace attnlab;

namespace {

using attnlab::bench::median_ms;

struct Timing {
  double forward_ms, train_ms;
};

Timing time_module(AttentionImpl& module, int64_t length, int runs) {
  const int64_t d_model = 320;
  auto x = torch::randn({1, length, d_model});
  AttentionContext context;
  context.positions = torch::arange(length);
  Timing t{};
  module.eval();
  t.forward_ms = median_ms(
      [&] {
        torch::NoGradGuard no_grad;
        module.forward(x, context);
      },
      runs);
  module.train();
  auto xg = x.clone().requires_grad_(true);
  t.train_ms = median_ms(
      [&] {
        AttentionOutput out = module.forward(xg, context);
        auto loss = out.y.sum();
        for (auto& [name, value] : out.aux_losses) loss = loss + value;
        loss.backward();
      },
      runs);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  std::vector<int64_t> lengths{512, 1024, 2048};
  if (argc > 2) {
    lengths.clear();
    std::stringstream list(argv[2]);
    for (std::string item; std::getline(list, item, ',');) lengths.push_back(std::stoll(item));
  }
  torch::manual_seed(0);
  AttentionOptions options;
  options.d_model = 320;
  options.n_heads = 20;
  struct Level {
    const char* label;
    int64_t shared, k;
  };
  const Level levels[] = {{"50%", 4, 6}, {"75%", 5, 10}, {"90%", 6, 12}};
  bool target_met = true, target_measured = false;
  std::printf("threads %d, h=20, head_dim=16, d_model=320, batch 1, causal, %d runs (median)\n",
              torch::get_num_threads(), runs);
  for (int64_t length : lengths) {
    auto mha = make_attention("mha", options);
    Timing base = time_module(*mha, length, runs);
    std::printf("T=%-5lld mha: forward %.2f ms, train fwd+bwd %.2f ms\n",
                static_cast<long long>(length), base.forward_ms, base.train_ms);
    for (const Level& level : levels) {
      YAML::Node params;
      params["shared_heads"] = level.shared;
      params["routed_k"] = level.k;
      options.params = params;
      auto moh = make_attention("moh", options);
      Timing t = time_module(*moh, length, runs);
      const double forward_ratio = t.forward_ms / base.forward_ms;
      std::printf(
          "  moh %s active (hs=%lld, K=%lld): forward %.2f ms (ratio %.3f), train %.2f ms "
          "(ratio %.3f)\n",
          level.label, static_cast<long long>(level.shared), static_cast<long long>(level.k),
          t.forward_ms, forward_ratio, t.train_ms, t.train_ms / base.train_ms);
      if (std::string(level.label) == "50%" && length >= 512) {
        target_measured = true;
        if (forward_ratio > 0.65) target_met = false;
      }
    }
    options.params = YAML::Node();
  }
  std::printf("target (forward ratio <= 0.65 at 50%% active, T >= 512): %s\n",
              !target_measured ? "not measured (no T >= 512)" : target_met ? "met" : "NOT met");
  return 0;
}
