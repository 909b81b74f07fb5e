// Benchmark: block-sparse (tiled) attention vs dense masked attention, T = 1024, block 64.
// Both paths run in the same process on the same inputs, interleaved, and the median of each
// (process CPU time and wall time) is reported with the ratio sparse/dense (target ≤ 0.6 for
// block_causal, forward and forward+backward). Also checks the two outputs agree. Usage:
//   bench_block_causal_attention [T=1024] [block=64] [batch=2] [heads=4] [head_dim=64] [reps=9]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "modules/attention_math.h"
#include "modules/block_sparse_attention.h"
#include "modules/masks.h"

using namespace attnlab;

namespace {

torch::Tensor dense_attention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, const torch::Tensor& pos,
                              const MaskSpec& spec, double scale) {
  // What mha did before block skipping: full mask, masked softmax over all T_k keys.
  auto mask = build_attention_mask(spec, pos, pos);
  return torch::matmul(masked_softmax_probs(q, k, mask, scale).to(q.scalar_type()), v);
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

// CPU time of the whole process (all intra-op threads): on a shared machine wall-clock time
// mostly measures the scheduler, CPU time measures the work; both are reported.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Timing {
  double wall, cpu;
};

template <typename F>
Timing seconds(F&& f) {
  auto start = std::chrono::steady_clock::now();
  const double cpu_start = cpu_seconds();
  f();
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
          cpu_seconds() - cpu_start};
}

void report(const std::string& label, const std::vector<Timing>& dense,
            const std::vector<Timing>& sparse) {
  auto pick = [](const std::vector<Timing>& xs, bool cpu) {
    std::vector<double> v;
    for (const auto& x : xs) v.push_back(cpu ? x.cpu : x.wall);
    return median(v);
  };
  std::printf(
      "%-30s cpu: dense %8.2f ms sparse %8.2f ms ratio %.3f | wall: dense %8.2f ms "
      "sparse %8.2f ms ratio %.3f\n",
      label.c_str(), 1e3 * pick(dense, true), 1e3 * pick(sparse, true),
      pick(sparse, true) / pick(dense, true), 1e3 * pick(dense, false), 1e3 * pick(sparse, false),
      pick(sparse, false) / pick(dense, false));
}

}  // namespace

int main(int argc, char** argv) {
  auto arg = [&](int i, int64_t fallback) { return argc > i ? std::atoll(argv[i]) : fallback; };
  const int64_t length = arg(1, 1024), block = arg(2, 64), batch = arg(3, 2), heads = arg(4, 4),
                head_dim = arg(5, 64), reps = arg(6, 9);
  torch::manual_seed(0);
  auto q = torch::randn({batch, heads, length, head_dim}).requires_grad_(true);
  auto k = torch::randn({batch, heads, length, head_dim}).requires_grad_(true);
  auto v = torch::randn({batch, heads, length, head_dim}).requires_grad_(true);
  auto grad_out = torch::randn({batch, heads, length, head_dim});
  auto pos = torch::arange(length);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  std::printf("T=%lld block=%lld batch=%lld heads=%lld head_dim=%lld threads=%d reps=%lld\n",
              (long long)length, (long long)block, (long long)batch, (long long)heads,
              (long long)head_dim, torch::get_num_threads(), (long long)reps);

  for (MaskKind kind : {MaskKind::kBlockCausal, MaskKind::kCausal}) {
    MaskSpec spec;
    spec.kind = kind;
    spec.block_size = block;
    BlockSparseOptions options;
    options.scale = scale;
    auto dense_fn = [&] { return dense_attention(q, k, v, pos, spec, scale); };
    auto sparse_fn = [&] { return block_sparse_attention(q, k, v, pos, pos, spec, options); };
    {
      torch::NoGradGuard no_grad;
      const double diff = (dense_fn() - sparse_fn()).abs().max().item<double>();
      std::printf("%-13s max |sparse - dense| = %.3g\n", mask_kind_name(kind).c_str(), diff);
    }
    std::vector<Timing> dense_fwd, sparse_fwd, dense_bwd, sparse_bwd;
    for (int64_t r = 0; r < reps + 1; ++r) {  // first round is warm-up
      Timing df, sf, db, sb;
      {
        torch::NoGradGuard no_grad;
        df = seconds(dense_fn);
        sf = seconds(sparse_fn);
      }
      db = seconds([&] { dense_fn().backward(grad_out); });
      sb = seconds([&] { sparse_fn().backward(grad_out); });
      if (r == 0) continue;
      dense_fwd.push_back(df);
      sparse_fwd.push_back(sf);
      dense_bwd.push_back(db);
      sparse_bwd.push_back(sb);
    }
    report(mask_kind_name(kind) + " forward", dense_fwd, sparse_fwd);
    report(mask_kind_name(kind) + " forward+backward", dense_bwd, sparse_bwd);
  }
  return 0;
}
