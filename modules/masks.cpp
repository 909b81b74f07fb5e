// Mask construction for every mask kind; see masks.h. Brute-force-checked in tests/modules and
// tests/modules/masks (clean-context layout against the bd3lms definition).
#include "modules/masks.h"

#include <algorithm>

#include "common/error.h"

namespace attnlab {

MaskKind parse_mask_kind(const std::string& name) {
  if (name == "causal") return MaskKind::kCausal;
  if (name == "bidirectional") return MaskKind::kBidirectional;
  if (name == "block_causal") return MaskKind::kBlockCausal;
  throw UserError("model.mask: unknown mask kind '" + name +
                  "'; expected causal, bidirectional or block_causal");
}

std::string mask_kind_name(MaskKind kind) {
  switch (kind) {
    case MaskKind::kCausal:
      return "causal";
    case MaskKind::kBidirectional:
      return "bidirectional";
    case MaskKind::kBlockCausal:
      return "block_causal";
  }
  return "?";
}

torch::Tensor visibility_ids(const MaskSpec& spec, const torch::Tensor& positions) {
  switch (spec.kind) {
    case MaskKind::kCausal:
      return positions;
    case MaskKind::kBlockCausal:
      check_user(spec.block_size > 0, "model.block_size must be > 0 for block_causal masks");
      return positions.div(spec.block_size, "floor");
    case MaskKind::kBidirectional:
      break;
  }
  TORCH_CHECK(false, "visibility_ids: bidirectional masks have no visibility order");
  return {};
}

torch::Tensor positional_mask(const MaskSpec& spec, const torch::Tensor& query_positions,
                              const torch::Tensor& key_positions) {
  if (spec.kind == MaskKind::kBidirectional) {
    return torch::ones({query_positions.numel(), key_positions.numel()},
                       query_positions.options().dtype(torch::kBool));
  }
  return visibility_ids(spec, key_positions).view({1, -1}) <=
         visibility_ids(spec, query_positions).view({-1, 1});
}

torch::Tensor prefix_visible_counts(const MaskSpec& spec, const torch::Tensor& query_positions,
                                    const torch::Tensor& key_positions) {
  if (spec.kind == MaskKind::kBidirectional) {
    return torch::full({query_positions.numel()}, key_positions.numel(), torch::kLong);
  }
  auto key_ids = visibility_ids(spec, key_positions.to(torch::kLong)).to(torch::kCPU).contiguous();
  const int64_t* ids = key_ids.data_ptr<int64_t>();
  if (!std::is_sorted(ids, ids + key_ids.numel())) return {};
  auto row_ids = visibility_ids(spec, query_positions.to(torch::kLong)).to(torch::kCPU);
  // Keys with id <= the row's id: upper bound of the row's id among the ascending key ids.
  return torch::searchsorted(key_ids, row_ids, /*out_int32=*/false, /*right=*/true);
}

namespace {

// BD3-LM three-part mask over [x_t ; x_0]: queries/keys i < n are the noisy half.
torch::Tensor clean_context_mask(const MaskSpec& spec, const torch::Tensor& query_positions,
                                 const torch::Tensor& key_positions) {
  const int64_t total = query_positions.size(0);
  check_user(total % 2 == 0 && key_positions.size(0) == total,
             "clean_context attention needs a [x_t ; x_0] sequence of even length");
  check_user(spec.block_size > 0, "model.block_size must be > 0 for clean-context masks");
  const int64_t n = total / 2;
  // Blocks come from positions, so both halves must carry the same positions 0..n-1 (a default
  // 0..2n-1 numbering would silently give x_0 its own, wrong, blocks).
  TORCH_CHECK(torch::equal(query_positions.narrow(0, 0, n), query_positions.narrow(0, n, n)) &&
                  torch::equal(query_positions, key_positions),
              "clean_context mask: both halves of [x_t ; x_0] need the same positions");
  auto index = torch::arange(total, query_positions.options());
  auto q_noisy = (index < n).view({-1, 1});
  auto k_noisy = (index < n).view({1, -1});
  auto q_block = query_positions.div(spec.block_size, "floor").view({-1, 1});
  auto k_block = key_positions.div(spec.block_size, "floor").view({1, -1});
  auto block_diagonal = (q_block == k_block) & (q_noisy == k_noisy);                 // M_BD
  auto offset_block_causal = q_noisy & k_noisy.logical_not() & (k_block < q_block);  // M_OBC
  auto block_causal = q_noisy.logical_not() & k_noisy.logical_not() & (k_block <= q_block);  // M_BC
  return block_diagonal | offset_block_causal | block_causal;
}

}  // namespace

torch::Tensor build_attention_mask(const MaskSpec& spec, const torch::Tensor& query_positions,
                                   const torch::Tensor& key_positions) {
  torch::Tensor mask = spec.clean_context ? clean_context_mask(spec, query_positions, key_positions)
                                          : positional_mask(spec, query_positions, key_positions);
  if (spec.key_padding.defined()) {
    // [B, 1, 1, T_k] & [T_q, T_k] -> [B, 1, T_q, T_k]
    mask = mask.unsqueeze(0).unsqueeze(0) &
           spec.key_padding.to(torch::kBool).unsqueeze(1).unsqueeze(1);
  }
  return mask;
}

}  // namespace attnlab
