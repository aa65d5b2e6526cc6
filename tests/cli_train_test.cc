// `supercluster train` and `generate` as a user runs them, on a tiny model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/inference.h"
#include "model/safetensors.h"
#include "model/weights_io.h"
#include "serve/generator.h"
#include "run/checkpoint_store.h"
#include "checkpoint_test_util.h"
#include "test_util.h"
#include "train_cli_fixture.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

TEST_F(TrainCli, TrainsWritesMetricsPlotAndCheckpoints) {
  std::string output = train("run", "--steps 20");
  EXPECT_NE(output.find("trained to step 20"), std::string::npos) << output;
  EXPECT_NE(output.find("MFU"), std::string::npos);
  std::ifstream metrics(dir_->file("run/metrics.jsonl"));
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(metrics, line)) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 20u);
  EXPECT_EQ(lines.back()["step"], 20);
  EXPECT_TRUE(lines[4].contains("val_loss"));
  // Learning happened: the loss fell well below the untrained ln(400) = 5.99.
  EXPECT_NEAR(lines.front()["loss"].get<double>(), std::log(400.0), 0.3);
  EXPECT_LT(lines.back()["loss"].get<double>(), lines.front()["loss"].get<double>() - 0.4);
  const std::string svg = testing::read_text(dir_->file("run/loss.svg"));
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("validation"), std::string::npos);
  EXPECT_EQ(testing::read_text(dir_->file("run/checkpoints/latest")), "step_00000020\n");
  for (const char* f : {"model.safetensors", "optimizer-00000-of-00001.safetensors", "config.json", "tokenizer.model",
                        "trainer_state.json", "manifest.json"}) {
    EXPECT_TRUE(fs::exists(dir_->file(std::string("run/checkpoints/step_00000020/") + f))) << f;
  }
  EXPECT_FALSE(fs::exists(dir_->file("run/checkpoints/step_00000005")));  // keeps the last 3
  // Llama-subset Hugging Face names in the weights.
  auto weights = SafetensorsFile::open(dir_->file("run/checkpoints/step_00000020/model.safetensors"));
  ASSERT_TRUE(weights.ok());
  EXPECT_NE(weights->find("model.layers.1.self_attn.q_proj.weight"), nullptr);
  EXPECT_NE(weights->find("model.embed_tokens.weight"), nullptr);
  // A second run into the same directory without --resume refuses to clobber it.
  auto again = testing::run_supercluster(fmt::format("train --config {} --data {} --out {} --steps 20",
                                                     dir_->file("tiny.json"), dir_->file("data"), dir_->file("run")));
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("already holds a run (checkpoints step_00000020, step_00000015, step_00000010; "
                              "metrics.jsonl of 20 lines)"), std::string::npos) << again.output;
}

TEST_F(TrainCli, ResumedRunIsBitIdenticalToUninterrupted) {
  train("straight", "--steps 20");
  train("interrupted", "--steps 20 --stop-at-step 10");
  EXPECT_EQ(testing::read_text(dir_->file("interrupted/checkpoints/latest")), "step_00000010\n");
  auto r = testing::run_supercluster(fmt::format("train --resume --out {}", dir_->file("interrupted")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
  expect_identical_tensors(dir_->file("straight/checkpoints/step_00000020/model.safetensors"),
                           dir_->file("interrupted/checkpoints/step_00000020/model.safetensors"));
  expect_identical_tensors(dir_->file("straight/checkpoints/step_00000020/optimizer-00000-of-00001.safetensors"),
                           dir_->file("interrupted/checkpoints/step_00000020/optimizer-00000-of-00001.safetensors"));
  // The metrics of both runs agree line for line (timings aside).
  std::ifstream a(dir_->file("straight/metrics.jsonl")), b(dir_->file("interrupted/metrics.jsonl"));
  std::string la, lb;
  int lines = 0;
  while (std::getline(a, la) && std::getline(b, lb)) {
    auto ja = nlohmann::json::parse(la), jb = nlohmann::json::parse(lb);
    EXPECT_EQ(ja["loss"], jb["loss"]) << "step " << ja["step"];
    ++lines;
  }
  EXPECT_EQ(lines, 20);
}

TEST_F(TrainCli, ACheckpointInTheFormatBeforeShardingIsRefusedByName) {
  // Rewrite a checkpoint into the format before sharded optimizer state:
  // one optimizer.safetensors, no global_batch or world_size.
  train("old_format", "--steps 16 --stop-at-step 10");
  const std::string checkpoints = dir_->file("old_format/checkpoints");
  const std::string step10 = checkpoints + "/step_00000010";
  const std::string old_files = dir_->file("old_format_files");
  fs::create_directories(old_files);
  for (const char* f : {"model.safetensors", "config.json", "tokenizer.model"}) {
    fs::copy_file(step10 + "/" + f, old_files + "/" + f);
  }
  fs::copy_file(step10 + "/optimizer-00000-of-00001.safetensors", old_files + "/optimizer.safetensors");
  auto state = nlohmann::json::parse(testing::read_text(step10 + "/trainer_state.json"));
  state.erase("world_size");
  state["options"].erase("global_batch");
  testing::write_text(old_files + "/trainer_state.json", state.dump(2));
  // Committed again under the same step, with a manifest of the old files.
  ASSERT_TRUE(testing::write_checkpoint(checkpoints, 10, [&](const std::string& dir) -> Status {
    for (const auto& entry : fs::directory_iterator(old_files)) {
      fs::copy_file(entry.path(), fs::path(dir) / entry.path().filename());
    }
    return Status();
  }).ok());
  ASSERT_TRUE(fs::exists(step10 + "/optimizer.safetensors"));
  auto r = testing::run_supercluster(fmt::format("train --resume --out {}", dir_->file("old_format")));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step_00000010/trainer_state.json: written by an older supercluster, before optimizer "
                          "state was sharded"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(checkpoints + "/step_00000011"));  // nothing trained, nothing written

  // A checkpoint of a newer format than this build reads is skipped by
  // name, for the older one before it.
  const std::string manifest_path = step10 + "/manifest.json";
  auto manifest = nlohmann::json::parse(testing::read_text(manifest_path));
  manifest["format_version"] = kCheckpointFormatVersion + 1;
  testing::write_text(manifest_path, manifest.dump());
  r = testing::run_supercluster(fmt::format("train --resume --out {} --stop-at-step 6", dir_->file("old_format")));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step_00000010/manifest.json: checkpoint format 2 was written by a newer supercluster"),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resumed from " + checkpoints + "/step_00000005"), std::string::npos) << r.output;
}

TEST_F(TrainCli, TimeLimitStopsWithACheckpointAndGradAccumMatchesABiggerBatch) {
  // A limit of 0.001 minutes (60 ms) ends the run early, with a checkpoint of the step it reached.
  std::string output = train("timed", "--steps 100000 --time-limit 0.001");
  const std::string marker = "time limit of 0.001 min reached at step ";
  const size_t at = output.find(marker);
  ASSERT_NE(at, std::string::npos) << output;
  const int64_t stopped = std::stoll(output.substr(at + marker.size()));
  EXPECT_GT(stopped, 0);
  EXPECT_LT(stopped, 100000);
  EXPECT_EQ(testing::read_text(dir_->file("timed/checkpoints/latest")), fmt::format("step_{:08d}\n", stopped));

  // Two micro-batches of 2 give the same step as one batch of 4 (same windows).
  train("big_batch", "--steps 3 --batch-size 4 --grad-accum 1");
  train("accumulated", "--steps 3 --batch-size 2 --grad-accum 2");
  std::ifstream a(dir_->file("big_batch/metrics.jsonl")), b(dir_->file("accumulated/metrics.jsonl"));
  std::string la, lb;
  for (int step = 1; step <= 3; ++step) {
    ASSERT_TRUE(std::getline(a, la) && std::getline(b, lb));
    auto ja = nlohmann::json::parse(la), jb = nlohmann::json::parse(lb);
    EXPECT_NEAR(ja["loss"].get<double>(), jb["loss"].get<double>(), 1e-5) << "step " << step;
    EXPECT_NEAR(ja["grad_norm"].get<double>(), jb["grad_norm"].get<double>(), 1e-4 * ja["grad_norm"].get<double>());
  }
}

TEST_F(TrainCli, MixtureOfExpertsTrainsResumesAndUsesMixtralNames) {
  nlohmann::json moe = nlohmann::json::parse(kTinyConfig);
  moe.update({{"num_experts", 4}, {"num_experts_per_tok", 2}, {"intermediate_size", 32}});
  testing::write_text(dir_->file("tiny_moe.json"), moe.dump());
  auto run = [&](const std::string& out, const std::string& extra) {
    auto r = testing::run_supercluster(fmt::format("train --config {} --data {} --out {} {}", dir_->file("tiny_moe.json"),
                                                   dir_->file("data"), dir_->file(out), extra));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  };
  std::string output = run("moe", "--steps 12");
  EXPECT_NE(output.find("active per token, 4 experts top-2"), std::string::npos) << output;
  EXPECT_NE(output.find("balance"), std::string::npos) << output;
  std::ifstream metrics(dir_->file("moe/metrics.jsonl"));
  std::string line;
  std::getline(metrics, line);
  auto first = nlohmann::json::parse(line);
  ASSERT_TRUE(first.contains("expert_tokens")) << line;
  ASSERT_EQ(first["expert_tokens"].size(), 2u);  // both layers are MoE
  int64_t assignments = 0;
  for (const auto& count : first["expert_tokens"][0]) assignments += count.get<int64_t>();
  EXPECT_EQ(assignments, 4 * 32 * 2);  // B·T tokens, two experts each
  EXPECT_NEAR(first["aux_loss"].get<double>(), 1.0, 0.5);
  EXPECT_GE(first["expert_balance"].get<double>(), 1.0);
  auto weights = SafetensorsFile::open(dir_->file("moe/checkpoints/step_00000012/model.safetensors"));
  ASSERT_TRUE(weights.ok());
  EXPECT_NE(weights->find("model.layers.0.block_sparse_moe.gate.weight"), nullptr);
  EXPECT_NE(weights->find("model.layers.1.block_sparse_moe.experts.3.w2.weight"), nullptr);
  EXPECT_EQ(weights->find("model.layers.0.mlp.gate_proj.weight"), nullptr);

  // Generation from an MoE checkpoint; KV-cache decoding (the generator's
  // path) equals the batched forward.
  auto generator = Generator::load(dir_->file("moe"), 2);
  ASSERT_TRUE(generator.ok()) << generator.status().message();
  auto generated = (*generator)->generate("Der", SamplingOptions{.max_tokens = 4, .temperature = 0}, nullptr);
  ASSERT_TRUE(generated.ok()) << generated.status().message();
  auto config = ModelConfig::load(dir_->file("tiny_moe.json"));
  ThreadPool pool(2);
  auto model = Model::create(*config, 1, 8, pool);
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(load_weights(weights->path(), (*model)->layout(), (*model)->params()).ok());
  std::vector<uint32_t> tokens = {5, 17, 300, 2, 44, 9, 123, 399}, targets(8, 0);
  ASSERT_TRUE((*model)->forward(tokens.data(), targets.data()).ok());
  auto inference = Inference::create(*config, (*model)->params(), 8, 1, pool);
  ASSERT_TRUE(inference.ok()) << inference.status().message();
  auto cache = KvCache::create(*config, 1, 8);
  ASSERT_TRUE(cache.ok());
  double worst = 0;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const size_t slot = 0;
    auto decoded = (*inference)->decode(*cache, {&tokens[t], 1}, {&slot, 1}, {&t, 1});
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    const float* step_logits = *decoded;
    for (size_t v = 0; v < 400; ++v) {
      worst = std::max(worst, std::abs((*model)->logits()[t * 400 + v] * config->output_multiplier_scale - step_logits[v]));
    }
  }
  EXPECT_LT(worst, 1e-4) << "MoE decode differs from the batched forward";

  run("moe_interrupted", "--steps 12 --stop-at-step 5");
  auto r = testing::run_supercluster(fmt::format("train --resume --out {}", dir_->file("moe_interrupted")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_identical_tensors(dir_->file("moe/checkpoints/step_00000012/model.safetensors"),
                           dir_->file("moe_interrupted/checkpoints/step_00000012/model.safetensors"));
}

TEST_F(TrainCli, ANewRunNeverTruncatesOrPrunesAnotherRunUnlessToldToReplaceIt) {
  train("previous", "--steps 10 --checkpoint-every 5");
  const std::string checkpoints = dir_->file("previous/checkpoints");
  // Checkpoints that cannot be verified (no manifest) still belong to a run.
  fs::remove(checkpoints + "/step_00000010/manifest.json");
  fs::remove(checkpoints + "/step_00000005/manifest.json");
  const std::string metrics = testing::read_text(dir_->file("previous/metrics.jsonl"));
  const std::string fresh = fmt::format("train --config {} --data {} --out {} --steps 4 --keep-checkpoints 1",
                                        dir_->file("tiny.json"), dir_->file("data"), dir_->file("previous"));
  auto refused = testing::run_supercluster(fresh);
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("already holds a run (checkpoints step_00000010 (not valid: "), std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find("no manifest"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("metrics.jsonl of 10 lines): pass --resume to continue it, --overwrite to replace it"),
            std::string::npos) << refused.output;
  EXPECT_TRUE(fs::exists(checkpoints + "/step_00000005/model.safetensors"));
  EXPECT_TRUE(fs::exists(checkpoints + "/step_00000010/model.safetensors"));
  EXPECT_EQ(testing::read_text(dir_->file("previous/metrics.jsonl")), metrics);
  // Metrics alone (a run that died before its first checkpoint) count too.
  fs::remove_all(checkpoints);
  refused = testing::run_supercluster(fresh);
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("already holds a run (metrics.jsonl of 10 lines)"), std::string::npos) << refused.output;
  EXPECT_EQ(testing::read_text(dir_->file("previous/metrics.jsonl")), metrics);
  auto both = testing::run_supercluster(fresh + " --overwrite --resume");
  EXPECT_EQ(both.exit_code, 1) << both.output;
  EXPECT_NE(both.output.find("--resume and --overwrite exclude each other"), std::string::npos) << both.output;
  // Told to, it replaces the previous run.
  auto replaced = testing::run_supercluster(fresh + " --overwrite");
  ASSERT_EQ(replaced.exit_code, 0) << replaced.output;
  EXPECT_NE(replaced.output.find("--overwrite: removing the previous run"), std::string::npos) << replaced.output;
  EXPECT_EQ(testing::read_text(checkpoints + "/latest"), "step_00000004\n");
  size_t lines = 0;
  for (char c : testing::read_text(dir_->file("previous/metrics.jsonl"))) lines += c == '\n';
  EXPECT_EQ(lines, 4u);
}

TEST_F(TrainCli, AResumedRunKeepsItsModel) {
  train("keeps_model", "--steps 6 --stop-at-step 3");
  auto r = testing::run_supercluster(fmt::format("train --resume --out {} --config llama-mini",
                                                 dir_->file("keeps_model")));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--resume: 'config' is \"" + dir_->file("tiny.json") +
                          "\" in the checkpoint and \"llama-mini\" on the command line"), std::string::npos)
      << r.output;
  EXPECT_EQ(testing::read_text(dir_->file("keeps_model/checkpoints/latest")), "step_00000003\n");  // nothing trained
  // A trainer_state.json whose step is negative is refused, not a crash.
  const std::string checkpoints = dir_->file("keeps_model/checkpoints");
  auto state = nlohmann::json::parse(testing::read_text(checkpoints + "/step_00000003/trainer_state.json"));
  state["step"] = -5;
  ASSERT_TRUE(testing::write_checkpoint(checkpoints, 3, [&](const std::string& dir) -> Status {
    for (const auto& entry : fs::directory_iterator(checkpoints + "/step_00000003")) {
      if (entry.path().filename() != "manifest.json") fs::copy_file(entry.path(), fs::path(dir) / entry.path().filename());
    }
    return write_file_atomic(dir + "/trainer_state.json", state.dump());
  }).ok());
  r = testing::run_supercluster(fmt::format("train --resume --out {}", dir_->file("keeps_model")));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("trainer_state.json: 'step' must be a non-negative integer"), std::string::npos) << r.output;
}

TEST_F(TrainCli, ResumeSkipsACorruptedNewestCheckpoint) {
  train("corrupt", "--steps 10");
  std::fstream f(dir_->file("corrupt/checkpoints/step_00000010/model.safetensors"),
                 std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(200);
  f.put('\x7f');
  f.close();
  auto r = testing::run_supercluster(fmt::format("train --resume --out {} --steps 12", dir_->file("corrupt")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step_00000010/model.safetensors: checksum mismatch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resumed from " + dir_->file("corrupt/checkpoints/step_00000005")), std::string::npos)
      << r.output;
}

TEST_F(TrainCli, GeneratorMatchesTheTrainingForward) {
  train("gen", "--steps 10");
  auto generator = Generator::load(dir_->file("gen"), 2);
  ASSERT_TRUE(generator.ok()) << generator.status().message();
  // Greedy is deterministic, and sampling with one seed gives one text.
  SamplingOptions greedy{.max_tokens = 12, .temperature = 0};
  auto a = (*generator)->generate("Der schnelle", greedy, nullptr);
  ASSERT_TRUE(a.ok());
  SamplingOptions sampled{.max_tokens = 12, .temperature = 1.0, .seed = 5};
  auto s1 = (*generator)->generate("La volpe", sampled, nullptr);
  auto s2 = (*generator)->generate("La volpe", sampled, nullptr);
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ(*s1, *s2);

  // On the checkpoint's weights, KV-cache decoding (the generator's path)
  // gives the logits of the batched training forward.
  auto config = ModelConfig::load(dir_->file("tiny.json"));
  ASSERT_TRUE(config.ok());
  ThreadPool pool(2);
  auto model = Model::create(*config, 1, 16, pool);
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(load_weights((*generator)->checkpoint() + "/model.safetensors", (*model)->layout(), (*model)->params()).ok());
  std::vector<uint32_t> tokens(16), targets(16, 0);
  for (size_t i = 0; i < 16; ++i) tokens[i] = static_cast<uint32_t>((i * 37 + 5) % 400);
  ASSERT_TRUE((*model)->forward(tokens.data(), targets.data()).ok());
  auto inference = Inference::create(*config, (*model)->params(), 16, 1, pool);
  ASSERT_TRUE(inference.ok()) << inference.status().message();
  auto cache = KvCache::create(*config, 1, 16);
  ASSERT_TRUE(cache.ok());
  double worst = 0;
  for (size_t t = 0; t < 16; ++t) {
    const size_t slot = 0;
    auto decoded = (*inference)->decode(*cache, {&tokens[t], 1}, {&slot, 1}, {&t, 1});
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    const float* step_logits = *decoded;
    for (size_t v = 0; v < 400; ++v) {
      const double batched = (*model)->logits()[t * 400 + v] * config->output_multiplier_scale;
      worst = std::max(worst, std::abs(batched - step_logits[v]));
    }
  }
  std::printf("KV-cache decode vs batched forward: worst logit difference %.2e\n", worst);
  EXPECT_LT(worst, 1e-4);
}

TEST_F(TrainCli, BadInputsAreClearErrors) {
  auto run = [&](const std::string& args) { return testing::run_supercluster(args); };
  auto expect_error = [](const testing::CommandResult& r, const std::string& expected) {
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(expected), std::string::npos) << "expected '" << expected << "' in:\n" << r.output;
  };
  testing::write_text(dir_->file("typo.json"), R"({"vocab_size": 400, "hiden_size": 32})");
  expect_error(run(fmt::format("train --config {} --data {} --out {}", dir_->file("typo.json"), dir_->file("data"),
                               dir_->file("x"))),
               "unknown key 'hiden_size'");
  nlohmann::json bad_heads = nlohmann::json::parse(kTinyConfig);
  bad_heads["num_key_value_heads"] = 3;
  testing::write_text(dir_->file("heads.json"), bad_heads.dump());
  expect_error(run(fmt::format("train --config {} --data {} --out {}", dir_->file("heads.json"), dir_->file("data"),
                               dir_->file("x"))),
               "num_key_value_heads");
  expect_error(run(fmt::format("train --config grok-mini --data {} --out {}", dir_->file("data"), dir_->file("x"))),
               "vocab size 400, expected 8192");
  expect_error(run(fmt::format("train --config no-such-preset --data {} --out {}", dir_->file("data"), dir_->file("x"))),
               "no-such-preset");
  expect_error(run(fmt::format("train --resume --out {}", dir_->file("nothing-here"))), "no checkpoints directory");
  expect_error(run(fmt::format("train --config {} --data {} --out {} --seq-len 100", dir_->file("tiny.json"),
                               dir_->file("data"), dir_->file("x"))),
               "max_position_embeddings");
  train("short", "--steps 2");
  expect_error(run(fmt::format("generate --checkpoint {} --prompt '{}'", dir_->file("short"), std::string(300, 'x') + " y z")),
               "the model's context is 64");
  expect_error(run(fmt::format("generate --checkpoint {} --prompt hi", dir_->file("missing-run"))),
               "checkpoint directory does not exist");
}

}  // namespace
}  // namespace sc
