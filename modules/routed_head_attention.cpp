// Gathered, tiled attention for MoH's active (token, head) pairs; see routed_head_attention.h.
#include "modules/routed_head_attention.h"

#include <algorithm>
#include <vector>

#include "common/error.h"
#include "modules/attention_math.h"
#include "modules/kernels/prefix_attention.h"
#include "modules/masks.h"

namespace attnlab {

namespace {

// Which keys a row can see: for positional masks, key j is visible to a row with visibility id
// r iff key_ids[j] <= r (masks.h); with ascending key ids that is a prefix of the keys.
struct KeyVisibility {
  bool positional = false;
  torch::Tensor key_ids;              // [T_k] on the keys' device
  std::vector<int64_t> key_ids_host;  // the same, for scalar tiling decisions
  bool sorted = false;
};

KeyVisibility key_visibility(const MaskSpec& spec, const torch::Tensor& key_positions) {
  KeyVisibility kv;
  kv.positional = spec.kind != MaskKind::kBidirectional;
  if (kv.positional) {
    kv.key_ids = visibility_ids(spec, key_positions.to(torch::kLong));
    auto host = kv.key_ids.to(torch::kCPU).contiguous();
    kv.key_ids_host.assign(host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + host.numel());
    kv.sorted = std::is_sorted(kv.key_ids_host.begin(), kv.key_ids_host.end());
  }
  return kv;
}

// Every head attends every row with the softmax kernel the backend selects (kAllRows).
torch::Tensor all_rows_attention(const torch::Tensor& q, const torch::Tensor& k,
                                 const torch::Tensor& v, const torch::Tensor& query_positions,
                                 const torch::Tensor& key_positions, const MaskSpec& spec,
                                 const RoutedAttentionOptions& options) {
  AttentionContext context;
  context.mask = spec;
  context.positions = query_positions;
  return softmax_attention(options.backend, q, k, v, key_positions, context,
                           {options.scale, options.dropout, options.training})
      .y;
}

}  // namespace

RoutedKernelRequest routed_kernel_request(const RoutedAttentionOptions& options) {
  RoutedKernelRequest request;
  request.rows_skippable = true;
  request.dropout = options.dropout;
  request.training = options.training;
  request.fused = options.fused;
  return request;
}

torch::Tensor routed_head_attention(const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v, const torch::Tensor& active,
                                    const torch::Tensor& query_positions,
                                    const torch::Tensor& key_positions, const MaskSpec& spec,
                                    const RoutedAttentionOptions& options) {
  TORCH_CHECK(!spec.clean_context, "routed_head_attention: clean_context layout not supported");
  return routed_head_attention(
      q, k, v, active, query_positions, key_positions, spec, options,
      select_routed_kernel(options.backend, q, v.size(3), query_positions, key_positions, spec,
                           /*need_probs=*/false, routed_kernel_request(options)));
}

torch::Tensor routed_head_attention(const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v, const torch::Tensor& active,
                                    const torch::Tensor& query_positions,
                                    const torch::Tensor& key_positions, const MaskSpec& spec,
                                    const RoutedAttentionOptions& options,
                                    const RoutedKernelChoice& choice) {
  TORCH_CHECK(!spec.clean_context, "routed_head_attention: clean_context layout not supported");
  TORCH_CHECK(spec.kind != MaskKind::kBlockCausal || spec.block_size > 0,
              "routed_head_attention: block_causal needs a positive block size");
  const int64_t batch = q.size(0), heads = q.size(1), length = q.size(2), dim = q.size(3);
  const int64_t key_length = k.size(2), value_dim = v.size(3);
  const torch::Tensor& visible = choice.visible;
  switch (choice.kernel) {
    case RoutedKernel::kRowMask:
      return prefix_attention(q, k, v, visible, options.scale, PrefixKernel::kAuto, active);
    case RoutedKernel::kAllRows: {
      auto rows_active = active.permute({0, 2, 1}).unsqueeze(-1);  // [B, E, T, 1]
      return all_rows_attention(q, k, v, query_positions, key_positions, spec, options) *
             rows_active.to(q.scalar_type());
    }
    case RoutedKernel::kGatheredPrefix:
    case RoutedKernel::kGatheredTiles:
      break;
  }
  const KeyVisibility kv = key_visibility(spec, key_positions);
  auto output_shape = std::vector<int64_t>{batch, heads, length, value_dim};
  auto rows_active = active.permute({0, 2, 1});  // [B, E, T]
  auto counts = rows_active.sum(-1);             // [B, E]
  const int64_t n_max = length == 0 ? 0 : counts.max().item<int64_t>();
  if (n_max == 0) return torch::zeros(output_shape, q.options());

  // Active rows first, in ascending row order: sort by (inactive, row). Each (b, e) gets a
  // permutation, so the n_max gathered indices are distinct and padding rows are inactive ones.
  auto long_options = torch::TensorOptions().dtype(torch::kLong).device(q.device());
  auto rows = torch::arange(length, long_options);
  auto sort_key = rows + rows_active.logical_not().to(torch::kLong) * length;
  auto index = std::get<1>(sort_key.sort(-1)).narrow(-1, 0, n_max);          // [B, E, n]
  auto valid = torch::arange(n_max, long_options).lt(counts.unsqueeze(-1));  // [B, E, n]
  auto q_rows = q.gather(2, index.unsqueeze(-1).expand({batch, heads, n_max, dim}));

  const bool positional = kv.positional, keys_sorted = kv.sorted;
  const torch::Tensor& key_ids = kv.key_ids;
  const std::vector<int64_t>& key_ids_host = kv.key_ids_host;
  torch::Tensor row_ids;
  if (positional) {
    const auto qpos = query_positions.to(torch::kLong);
    row_ids =
        visibility_ids(spec, qpos.index_select(0, index.reshape(-1))).view({batch, heads, n_max});
  }
  const torch::Tensor padding =
      spec.key_padding.defined() ? spec.key_padding.to(torch::kBool) : torch::Tensor();

  if (choice.kernel == RoutedKernel::kGatheredPrefix) {
    // Gathered rows through the BLAS tiles (float64, or head dims the row kernels do not take):
    // each keeps its position's visible count; padding rows see none and come out zero.
    auto gathered_visible =
        visible.index_select(0, index.reshape(-1).to(torch::kCPU)).view({batch, heads, n_max}) *
        valid.to(torch::kCPU, torch::kLong);
    auto gathered = prefix_attention(q_rows, k, v, gathered_visible, options.scale);
    return torch::zeros(output_shape, q.options())
        .scatter(2, index.unsqueeze(-1).expand({batch, heads, n_max, value_dim}), gathered);
  }

  const int64_t tile = std::max<int64_t>(1, options.tile);
  std::vector<torch::Tensor> tiles;
  for (int64_t start = 0; start < n_max; start += tile) {
    const int64_t size = std::min(tile, n_max - start);
    int64_t prefix = key_length;
    torch::Tensor ids, mask;
    bool every_row_sees_a_key = !padding.defined();
    if (positional) {
      ids = row_ids.narrow(2, start, size);
      if (keys_sorted) {
        // Only valid rows decide the prefix; padding rows' outputs are discarded below.
        const int64_t latest =
            ids.masked_select(valid.narrow(2, start, size)).max().item<int64_t>();
        prefix = std::upper_bound(key_ids_host.begin(), key_ids_host.end(), latest) -
                 key_ids_host.begin();
        // The earliest key is visible to a row iff the row's id is not below it.
        every_row_sees_a_key =
            every_row_sees_a_key && prefix > 0 && ids.min().item<int64_t>() >= key_ids_host.front();
      } else {
        every_row_sees_a_key = false;
      }
    }
    if (prefix == 0) {
      tiles.push_back(torch::zeros({batch, heads, size, value_dim}, q.options()));
      continue;
    }
    auto q_tile = q_rows.narrow(2, start, size);
    auto k_tile = k.narrow(2, 0, prefix);
    torch::Tensor probs;
    if (every_row_sees_a_key) {
      // Fast path: hide later keys with one comparison; no fully hidden row to fix.
      torch::Tensor later;
      if (positional) later = key_ids.narrow(0, 0, prefix).gt(ids.unsqueeze(-1));
      probs = softmax_probs_hiding(q_tile, k_tile, later, options.scale);
    } else {
      if (positional) mask = key_ids.narrow(0, 0, prefix).le(ids.unsqueeze(-1));  // [B, E, r, P]
      if (padding.defined()) {
        auto keep = padding.narrow(1, 0, prefix).unsqueeze(1).unsqueeze(1);  // [B, 1, 1, P]
        mask = mask.defined() ? mask & keep : keep;
      }
      probs = masked_softmax_probs(q_tile, k_tile, mask, options.scale);  // mask may be unset
    }
    probs = torch::dropout(probs, options.dropout, options.training);
    tiles.push_back(torch::matmul(probs.to(q.scalar_type()), v.narrow(2, 0, prefix)));
  }
  auto gathered = torch::cat(tiles, 2) * valid.unsqueeze(-1).to(q.scalar_type());
  return torch::zeros(output_shape, q.options())
      .scatter(2, index.unsqueeze(-1).expand({batch, heads, n_max, value_dim}), gathered);
}

torch::Tensor shared_and_routed_attention(const torch::Tensor& q, const torch::Tensor& k,
                                          const torch::Tensor& v, int64_t shared,
                                          const torch::Tensor& active,
                                          const torch::Tensor& query_positions,
                                          const torch::Tensor& key_positions, const MaskSpec& spec,
                                          const RoutedAttentionOptions& options) {
  return shared_and_routed_attention(
      q, k, v, shared, active, query_positions, key_positions, spec, options,
      select_routed_kernel(options.backend, q, v.size(3), query_positions, key_positions, spec,
                           /*need_probs=*/false, routed_kernel_request(options)));
}

torch::Tensor shared_and_routed_attention(const torch::Tensor& q, const torch::Tensor& k,
                                          const torch::Tensor& v, int64_t shared,
                                          const torch::Tensor& active,
                                          const torch::Tensor& query_positions,
                                          const torch::Tensor& key_positions, const MaskSpec& spec,
                                          const RoutedAttentionOptions& options,
                                          const RoutedKernelChoice& choice) {
  const int64_t heads = q.size(1), routed = heads - shared;
  TORCH_CHECK(shared >= 0 && routed >= 0 && active.size(2) == routed,
              "shared_and_routed_attention: active must be [B, T, heads - shared]");
  auto shared_rows = [&] {
    return torch::ones({active.size(0), active.size(1), shared}, active.options());
  };
  switch (choice.kernel) {
    case RoutedKernel::kRowMask:
      return prefix_attention(q, k, v, choice.visible, options.scale, PrefixKernel::kAuto,
                              torch::cat({shared_rows(), active.to(torch::kBool)}, 2));
    case RoutedKernel::kAllRows: {
      auto rows_active = torch::cat({shared_rows(), active}, 2).permute({0, 2, 1}).unsqueeze(-1);
      return all_rows_attention(q, k, v, query_positions, key_positions, spec, options) *
             rows_active.to(q.scalar_type());
    }
    case RoutedKernel::kGatheredPrefix:
    case RoutedKernel::kGatheredTiles:
      break;
  }
  std::vector<torch::Tensor> parts;
  if (shared > 0) {
    parts.push_back(all_rows_attention(q.narrow(1, 0, shared), k.narrow(1, 0, shared),
                                       v.narrow(1, 0, shared), query_positions, key_positions, spec,
                                       options));
  }
  if (routed > 0) {
    parts.push_back(routed_head_attention(q.narrow(1, shared, routed), k.narrow(1, shared, routed),
                                          v.narrow(1, shared, routed), active, query_positions,
                                          key_positions, spec, options, choice));
  }
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 1);
}

}  // namespace attnlab
