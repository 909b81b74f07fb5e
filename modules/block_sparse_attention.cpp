// Tiled causal / block-causal softmax attention; see block_sparse_attention.h.
#include "modules/block_sparse_attention.h"

#include <algorithm>
#include <vector>

#include "common/error.h"
#include "modules/attention_math.h"
#include "modules/kernels/prefix_attention.h"
#include "modules/masks.h"

namespace attnlab {

namespace {

// The visibility ids (see masks.h) of `positions`, on the host: tiling decisions are scalar.
std::vector<int64_t> ids_on_host(const MaskSpec& spec, const torch::Tensor& positions) {
  auto host = visibility_ids(spec, positions.to(torch::kLong)).to(torch::kCPU).contiguous();
  const int64_t* data = host.data_ptr<int64_t>();
  return std::vector<int64_t>(data, data + host.numel());
}

// Prefixes x[:, :, :p] (dim 2) for the tiles' key lengths p. With autograd recording, narrow()
// would give every tile's backward a full-size zero-filled gradient that is then summed into x's;
// instead x is split once at the distinct prefix lengths (split's backward concatenates) and a
// prefix is the concatenation of its chunks, so the gradient work follows the visible keys.
// Without autograd, prefixes are plain views.
class PrefixSlices {
 public:
  PrefixSlices(const torch::Tensor& x, std::vector<int64_t> lengths)
      : x_(x), by_view_(!(torch::GradMode::is_enabled() && x.requires_grad())) {
    if (by_view_) return;
    lengths.push_back(x.size(2));
    std::sort(lengths.begin(), lengths.end());
    lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
    std::vector<int64_t> sizes;
    int64_t previous = 0;
    for (int64_t end : lengths) {
      if (end <= previous) continue;  // drops the empty prefix
      sizes.push_back(end - previous);
      ends_.push_back(end);
      previous = end;
    }
    chunks_ = x.split_with_sizes(sizes, 2);
  }

  torch::Tensor prefix(int64_t length) const {
    if (by_view_) return x_.narrow(2, 0, length);
    const auto last = std::lower_bound(ends_.begin(), ends_.end(), length) - ends_.begin();
    if (last == 0) return chunks_[0];
    return torch::cat(std::vector<torch::Tensor>(chunks_.begin(), chunks_.begin() + last + 1), 2);
  }

 private:
  torch::Tensor x_;
  bool by_view_;
  std::vector<int64_t> ends_;
  std::vector<torch::Tensor> chunks_;
};

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
  if (t_q == 0) return torch::zeros({q.size(0), q.size(1), 0, v.size(3)}, q.options());
  const bool dropout_active = options.dropout > 0.0 && options.training;
  if (options.fused && !spec.key_padding.defined() && !dropout_active &&
      prefix_attention_supported(q)) {
    // When every row sees a prefix of the (ascending) keys, the fused kernel computes exactly that.
    auto visible = prefix_visible_counts(spec, query_positions, key_positions);
    if (visible.defined()) return prefix_attention(q, k, v, visible, options.scale);
  }
  const std::vector<int64_t> q_ids = ids_on_host(spec, query_positions);
  const std::vector<int64_t> k_ids = ids_on_host(spec, key_positions);
  // With ascending keys the keys visible to a tile form a prefix; otherwise use all keys.
  const bool keys_sorted = std::is_sorted(k_ids.begin(), k_ids.end());
  const int64_t tile = options.tile > 0 ? options.tile : default_tile(spec);
  const torch::Tensor padding =
      spec.key_padding.defined() ? spec.key_padding.to(torch::kBool) : torch::Tensor();

  // Tile plan first: each tile's rows and the key prefix its latest row can see.
  struct Tile {
    int64_t start, rows, prefix, min_q;
  };
  std::vector<Tile> plan;
  std::vector<int64_t> prefixes;
  for (int64_t start = 0; start < t_q; start += tile) {
    const int64_t rows = std::min(tile, t_q - start);
    const auto first = q_ids.begin() + start;
    const int64_t max_q = *std::max_element(first, first + rows);
    int64_t prefix = t_k;
    if (keys_sorted) prefix = std::upper_bound(k_ids.begin(), k_ids.end(), max_q) - k_ids.begin();
    plan.push_back({start, rows, prefix, *std::min_element(first, first + rows)});
    prefixes.push_back(prefix);
  }
  const PrefixSlices k_prefixes(k, prefixes), v_prefixes(v, prefixes);
  const auto q_tiles = q.split(tile, 2);  // split's backward concatenates: no zero-filled grads

  std::vector<torch::Tensor> outputs;
  for (size_t i = 0; i < plan.size(); ++i) {
    const Tile& t = plan[i];
    if (t.prefix == 0) {  // no key visible to any row: zero output, like a fully masked row
      auto shape = v.sizes().vec();
      shape[2] = t.rows;
      outputs.push_back(torch::zeros(shape, v.options()).to(q.scalar_type()));
      continue;
    }
    // A positional mask is needed only when some prefix key is later than some row of the tile.
    const int64_t max_k =
        keys_sorted ? k_ids[t.prefix - 1] : *std::max_element(k_ids.begin(), k_ids.end());
    torch::Tensor mask;
    if (max_k > t.min_q) {
      MaskSpec tile_spec;
      tile_spec.kind = spec.kind;
      tile_spec.block_size = spec.block_size;
      mask = positional_mask(tile_spec, query_positions.narrow(0, t.start, t.rows),
                             key_positions.narrow(0, 0, t.prefix));
    }
    if (padding.defined()) {
      auto keep = padding.narrow(1, 0, t.prefix).unsqueeze(1).unsqueeze(1);  // [B, 1, 1, P]
      mask = mask.defined() ? mask.unsqueeze(0).unsqueeze(0) & keep : keep;
    }
    auto probs = masked_softmax_probs(q_tiles[i], k_prefixes.prefix(t.prefix), mask,
                                      options.scale);  // mask may be unset
    probs = torch::dropout(probs, options.dropout, options.training);
    outputs.push_back(torch::matmul(probs.to(q.scalar_type()), v_prefixes.prefix(t.prefix)));
  }
  return torch::cat(outputs, 2);
}

}  // namespace attnlab
