// The few CUDA runtime facts the trainer needs (which GPUs exist, their names, bf16 support,
// pinning a process to its GPU, deterministic kernels), behind plain functions so no other trainer
// file includes a CUDA header. cuda_device.cpp is the trainer's CUDA-only source: it includes
// c10/cuda and ATen/cuda, so every build (CI's too, which compiles against the CUDA LibTorch
// wheel without a GPU) fails when it stops compiling.
//
// Device resolution is a pure function of the requested name, the number of visible GPUs and
// the launcher's local rank, so its rules (and its errors) are tested without a GPU.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace attnlab {

// The position of this process on its node, as launchers export it: Open MPI's
// OMPI_COMM_WORLD_LOCAL_RANK/_LOCAL_SIZE, Slurm's SLURM_LOCALID/SLURM_STEP_TASKS_PER_NODE,
// MPICH's MPI_LOCALRANKID/MPI_LOCALNRANKS, torchrun's LOCAL_RANK/LOCAL_WORLD_SIZE.
struct LocalRank {
  int rank = 0;
  int size = 1;
  std::string source;  // the variable the rank came from ("" = not launched)
};
LocalRank local_rank_from_env();

// `trainer.device`: cpu | cuda | cuda:N | auto. auto = cuda when a GPU is visible, else cpu.
// A plain `cuda` under a launcher takes the GPU of this process's local rank; more ranks per node
// than GPUs, an index out of range and cuda without a GPU are UserErrors naming trainer.device.
torch::Device resolve_device(const std::string& name, int64_t visible_gpus, const LocalRank& local);

// GPUs visible to this process (0 without a driver or GPU; never throws).
int64_t cuda_device_count();

struct CudaDeviceInfo {
  std::string name;            // e.g. "NVIDIA H200"
  int major = 0, minor = 0;    // compute capability
  bool supports_bf16 = false;  // compute capability >= 8.0
  double total_memory_gib = 0.0;
};
CudaDeviceInfo cuda_device_info(int64_t index);

// Makes `device` the current CUDA device (kernels, NCCL and `cuda` without an index use it).
// No-op for CPU devices.
void use_device(const torch::Device& device);

// `trainer.deterministic=true`: LibTorch's deterministic algorithms (an op without one is an
// error naming it), deterministic cuDNN without autotuning, and cuBLAS's fixed workspace
// (CUBLAS_WORKSPACE_CONFIG=:4096:8, set before the first cuBLAS handle exists unless the user
// set it), and no TF32. On the CPU this only sets the LibTorch flag.
void configure_determinism(bool deterministic);

}  // namespace attnlab
