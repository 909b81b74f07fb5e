// `dist.backend=mpi`: the collectives of collectives.h as non-blocking MPI calls on
// MPI_COMM_WORLD. Open MPI progresses non-blocking collectives only inside MPI calls, so
// PendingOp::test() is MPI_Test (callers poll it while they wait).
#include <mpi.h>

#include <cstdlib>

#include "distributed/collectives.h"
#include "distributed/mpi_types.h"

namespace attnlab {

namespace {

bool mpi_is_running() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

class MpiOp : public PendingOp {
 public:
  MPI_Request request = MPI_REQUEST_NULL;
  // An op dropped unfinished (its owner is unwinding) still has to complete before its buffer
  // goes away.
  ~MpiOp() override {
    if (request != MPI_REQUEST_NULL && mpi_is_running()) MPI_Wait(&request, MPI_STATUS_IGNORE);
  }
  bool test() override {
    int done = 0;
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    return done != 0;
  }
};

class MpiCollectives : public Collectives {
 public:
  MpiCollectives() {
    int provided = 0;
    if (!mpi_is_running()) {
      // MULTIPLE lets autograd hooks on any thread start all-reduces; we work with less too.
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
      owns_mpi_ = true;
    } else {
      MPI_Query_thread(&provided);
    }
    any_thread_ = provided == MPI_THREAD_MULTIPLE;
    // Errors inside MPI abort the job rather than returning codes nobody checks.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size_);
  }
  ~MpiCollectives() override {
    if (owns_mpi_ && mpi_is_running()) MPI_Finalize();
  }

  std::string name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  bool any_thread() const override { return any_thread_; }

  std::unique_ptr<PendingOp> allreduce(torch::Tensor& tensor, ReduceOp op) override {
    auto pending = std::make_unique<MpiOp>();
    MPI_Iallreduce(MPI_IN_PLACE, tensor.data_ptr(), mpi_count(tensor.numel()),
                   mpi_datatype(tensor.scalar_type()), op == ReduceOp::kSum ? MPI_SUM : MPI_MAX,
                   MPI_COMM_WORLD, &pending->request);
    return pending;
  }
  std::unique_ptr<PendingOp> broadcast(torch::Tensor& tensor, int root) override {
    auto pending = std::make_unique<MpiOp>();
    MPI_Ibcast(tensor.data_ptr(), mpi_count(tensor.numel()), mpi_datatype(tensor.scalar_type()),
               root, MPI_COMM_WORLD, &pending->request);
    return pending;
  }
  std::unique_ptr<PendingOp> barrier() override {
    auto pending = std::make_unique<MpiOp>();
    MPI_Ibarrier(MPI_COMM_WORLD, &pending->request);
    return pending;
  }
  [[noreturn]] void abort(int exit_code) override {
    if (mpi_is_running()) MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::exit(exit_code);
  }

 private:
  int rank_ = 0;
  int world_size_ = 1;
  bool owns_mpi_ = false;
  bool any_thread_ = false;
};

}  // namespace

std::unique_ptr<Collectives> make_mpi_collectives() { return std::make_unique<MpiCollectives>(); }

}  // namespace attnlab
