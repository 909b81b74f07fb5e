// Mapping from LibTorch dtypes to MPI datatypes for the MPI backend (mpi_collectives.cpp).
// Half/bfloat16 have no standard MPI type; callers reduce those in float32 buffers instead.
#pragma once

#include <mpi.h>
#include <torch/torch.h>

#include <climits>

#include "common/error.h"

namespace attnlab {

inline MPI_Datatype mpi_datatype(c10::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return MPI_FLOAT;
    case torch::kFloat64:
      return MPI_DOUBLE;
    case torch::kInt32:
      return MPI_INT32_T;
    case torch::kInt64:
      return MPI_INT64_T;
    case torch::kInt16:
      return MPI_INT16_T;
    case torch::kInt8:
      return MPI_INT8_T;
    case torch::kUInt8:
      return MPI_UINT8_T;
    case torch::kBool:
      return MPI_C_BOOL;
    default:
      throw std::invalid_argument(std::string("no MPI datatype for tensor dtype ") +
                                  c10::toString(type));
  }
}

// MPI counts are int; tensors this project communicates stay far below that.
inline int mpi_count(int64_t numel) {
  if (numel > INT_MAX) throw std::invalid_argument("tensor too large for one MPI call");
  return static_cast<int>(numel);
}

}  // namespace attnlab
