// Tiled causal / block-causal softmax attention; see block_sparse_attention.h.
#include "modules/block_sparse_attention.h"

#include <algorithm>
#include <vector>

#include "common/error.h"
#include "modules/attention_math.h"
#include "modules/masks.h"

namespace attnlab {

namespace {

// The visibility ids (see masks.h) of `positions`, on the host: tiling decisions are scalar.
std::vector<int64_t> ids_on_host(const MaskSpec& spec, const torch::Tensor& positions) {
  auto host = visibility_ids(spec, positions.to(torch::kLong)).to(torch::kCPU).contiguous();
  const int64_t* data = host.data_ptr<int64_t>();
  return std::vector<int64_t>(data, data + host.numel());
}

int64_t default_tile(const MaskSpec& spec) {
  if (spec.kind != MaskKind::kBlockCausal) return 64;
  // Tiles that are whole blocks never need a mask; tiny blocks are grouped to amortise overhead.
  const int64_t b = spec.block_size;
  return b >= 32 ? b : b * ((32 + b - 1) / b);
}

}  // namespace

bool block_sparse_supported(const MaskSpec& spec, bool need_probs) {
  if (need_probs || spec.clean_context) return false;
  if (spec.kind == MaskKind::kBlockCausal) return spec.block_size > 0;
  return spec.kind == MaskKind::kCausal;
}

torch::Tensor block_sparse_attention(const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v, const torch::Tensor& query_positions,
                                     const torch::Tensor& key_positions, const MaskSpec& spec,
                                     const BlockSparseOptions& options) {
  TORCH_CHECK(block_sparse_supported(spec, false),
              "block_sparse_attention: only causal / block_causal masks without clean_context");
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "block_sparse_attention: 4-D inputs");
  const int64_t t_q = q.size(2), t_k = k.size(2);
  TORCH_CHECK(query_positions.numel() == t_q && key_positions.numel() == t_k,
              "block_sparse_attention: positions must match the query/key lengths");
  const std::vector<int64_t> q_ids = ids_on_host(spec, query_positions);
  const std::vector<int64_t> k_ids = ids_on_host(spec, key_positions);
  // With ascending keys the keys visible to a tile form a prefix; otherwise use all keys.
  const bool keys_sorted = std::is_sorted(k_ids.begin(), k_ids.end());
  const int64_t tile = options.tile > 0 ? options.tile : default_tile(spec);
  const torch::Tensor padding =
      spec.key_padding.defined() ? spec.key_padding.to(torch::kBool) : torch::Tensor();

  std::vector<torch::Tensor> outputs;
  if (t_q == 0) return torch::zeros({q.size(0), q.size(1), 0, v.size(3)}, q.options());
  for (int64_t start = 0; start < t_q; start += tile) {
    const int64_t rows = std::min(tile, t_q - start);
    const auto first = q_ids.begin() + start;
    const int64_t max_q = *std::max_element(first, first + rows);
    const int64_t min_q = *std::min_element(first, first + rows);
    int64_t prefix = t_k;
    if (keys_sorted) prefix = std::upper_bound(k_ids.begin(), k_ids.end(), max_q) - k_ids.begin();
    auto q_tile = q.narrow(2, start, rows);
    if (prefix == 0) {  // no key visible to any row: zero output, like a fully masked row
      auto shape = v.sizes().vec();
      shape[2] = rows;
      outputs.push_back(torch::zeros(shape, v.options()).to(q.scalar_type()));
      continue;
    }
    auto k_tile = k.narrow(2, 0, prefix);
    auto v_tile = v.narrow(2, 0, prefix);
    // A positional mask is needed only when some prefix key is later than some row of the tile.
    const int64_t max_k =
        keys_sorted ? k_ids[prefix - 1] : *std::max_element(k_ids.begin(), k_ids.end());
    torch::Tensor mask;
    if (max_k > min_q) {
      MaskSpec tile_spec;
      tile_spec.kind = spec.kind;
      tile_spec.block_size = spec.block_size;
      mask = positional_mask(tile_spec, query_positions.narrow(0, start, rows),
                             key_positions.narrow(0, 0, prefix));
    }
    if (padding.defined()) {
      auto keep = padding.narrow(1, 0, prefix).unsqueeze(1).unsqueeze(1);  // [B, 1, 1, P]
      mask = mask.defined() ? mask.unsqueeze(0).unsqueeze(0) & keep : keep;
    }
    auto probs = masked_softmax_probs(q_tile, k_tile, mask, options.scale);  // mask may be unset
    probs = torch::dropout(probs, options.dropout, options.training);
    outputs.push_back(torch::matmul(probs.to(q.scalar_type()), v_tile));
  }
  return torch::cat(outputs, 2);
}

}  // namespace attnlab
