// For the planner's tests: a model, a cluster and a layout resolved the way
// plan_run resolves them (validated, one GPU's dimensions, groups, pipeline
// shape, parameter share), so a test can call one part on real inputs.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "plan/cost_model.h"
#include "plan/gpu_share.h"
#include "plan/hardware.h"
#include "plan/pipeline.h"
#include "plan/plan_model.h"

namespace sc::plan::testing {

struct ResolvedLayout {
  PlanModel model;
  ClusterSpec cluster;
  Layout layout;
  RunSpec run{8192, 1 << 22, 1e12};
  MicroBatchDims dims;
  CommGroups groups;
  PipelineShape shape;
  ParameterShare params;
  int64_t micro_batches = 0;
};

// `model_name` and `cluster_name` are presets; the batch is 512 sequences of
// `seq_len` tokens. A layout that does not validate fails the test.
inline ResolvedLayout resolve_layout(const std::string& model_name, const std::string& cluster_name, int64_t gpus,
                                     Layout layout, int64_t seq_len = 8192) {
  ResolvedLayout s;
  s.model = *resolve_plan_model(model_name);
  s.cluster = *cluster_preset(cluster_name);
  s.cluster.num_gpus = gpus;
  s.run.seq_len = seq_len;
  s.run.global_batch_tokens = 512 * seq_len;
  const Status valid = validate_layout(s.model, s.cluster, s.run, &layout);
  EXPECT_TRUE(valid.ok()) << valid.message();
  s.layout = layout;
  s.dims = micro_batch_dims(s.model, layout, s.run);
  s.groups = comm_groups(s.cluster, layout);
  s.shape = pipeline_shape(s.model.config.num_hidden_layers, layout.pp, layout.vp, layout.balance_pipeline);
  s.params = parameter_share(count_parameters(s.model.config), s.dims, s.shape);
  s.micro_batches = micro_batches_per_step(layout, s.run);
  return s;
}

}  // namespace sc::plan::testing
