// Benchmark: causal attention forward+backward by the fused prefix-attention kernels (row kernels
// and BLAS tiles, modules/kernels/prefix_attention.h) and by LibTorch's
// at::scaled_dot_product_attention (CPU flash kernel), against the composed LibTorch ops
// (block_sparse_attention with fused=false: the same tiles as matmul/softmax ops), on the same
// inputs in the same run, for several head dims. Prints medians and ratios to the composed path;
// this is how kRowsMaxDim and kSdpaMinDim (which head dims use which implementation) were chosen.
//   bench_prefix_attention [T=256] [batch=16] [d_model=384] [runs=7] [head_dims=16,32,64,128]
#include "modules/kernels/prefix_attention.h"

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/bench/bench_timing.h"
#include "modules/block_sparse_attention.h"

using namespace attnlab;

int main(int argc, char** argv) {
  auto arg = [&](int i, int64_t fallback) { return argc > i ? std::atoll(argv[i]) : fallback; };
  const int64_t length = arg(1, 256), batch = arg(2, 16), d_model = arg(3, 384);
  const int runs = static_cast<int>(arg(4, 7));
  std::vector<int64_t> head_dims{16, 32, 64, 128};
  if (argc > 5) {
    head_dims.clear();
    std::stringstream list(argv[5]);
    for (std::string item; std::getline(list, item, ',');) head_dims.push_back(std::stoll(item));
  }
  std::printf("T=%lld batch=%lld d_model=%lld threads=%d, causal, fwd+bwd, median of %d (%s)\n",
              static_cast<long long>(length), static_cast<long long>(batch),
              static_cast<long long>(d_model), torch::get_num_threads(), runs, bench::clock_name());
  torch::manual_seed(0);
  auto positions = torch::arange(length);
  auto visible = positions + 1;
  for (int64_t dim : head_dims) {
    const int64_t heads = d_model / dim;
    auto q = torch::randn({batch, heads, length, dim}).requires_grad_(true);
    auto k = torch::randn({batch, heads, length, dim}).requires_grad_(true);
    auto v = torch::randn({batch, heads, length, dim}).requires_grad_(true);
    const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
    auto step = [&](const std::function<torch::Tensor()>& attention) {
      return bench::median_ms([&] { attention().sum().backward(); }, runs);
    };
    BlockSparseOptions composed_options;
    composed_options.scale = scale;
    composed_options.fused = false;
    const double composed = step([&] {
      return block_sparse_attention(q, k, v, positions, positions, MaskSpec{}, composed_options);
    });
    const double tiles =
        step([&] { return prefix_attention(q, k, v, visible, scale, PrefixKernel::kBlasTiles); });
    const double rows =
        step([&] { return prefix_attention(q, k, v, visible, scale, PrefixKernel::kRows); });
    const double sdpa =
        step([&] { return prefix_attention(q, k, v, visible, scale, PrefixKernel::kSdpa); });
    const char* chosen = dim >= kSdpaMinDim ? "SDPA" : dim <= kRowsMaxDim ? "rows" : "BLAS tiles";
    std::printf(
        "head_dim %4lld (%2lld heads): composed %8.2f ms | BLAS tiles %8.2f ms (%.2fx) | rows "
        "%8.2f ms (%.2fx) | SDPA %8.2f ms (%.2fx) | auto uses %s\n",
        static_cast<long long>(dim), static_cast<long long>(heads), composed, tiles,
        tiles / composed, rows, rows / composed, sdpa, sdpa / composed, chosen);
  }
  return 0;
}
