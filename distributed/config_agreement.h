// Ranks must train one config: a per-rank trainer.max_steps, say, would otherwise end in a raw
// MPI_ERR_TRUNCATE when one rank stops early. Every rank compares its composed config with rank
// 0's before anything is written.
#pragma once

#include "config/config_node.h"
#include "distributed/distributed.h"

namespace attnlab {

// A rank whose config differs from rank 0's throws a UserError naming the keys (run_guarded then
// aborts the job with that message); agreeing ranks wait until every rank has compared, so rank 0
// touches the run directory only after all agreed. run.dir and run.sweep_dir may hold per-rank
// timestamps: they are not compared (rank 0's are used). A no-op in a single process.
void check_ranks_agree_on_config(DistributedContext& dist, const ConfigNode& config);

}  // namespace attnlab
