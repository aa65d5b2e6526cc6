#include "run/checkpoint_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "checkpoint_test_util.h"
#include "test_util.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

Status write_two_files(const std::string& dir, const std::string& payload) {
  SC_RETURN_IF_ERROR(write_file_atomic(dir + "/model.bin", payload));
  return write_file_atomic(dir + "/state.json", "{\"payload\": \"" + payload + "\"}");
}

TEST(CheckpointStore, CommitsKeepsLastAndPointsLatest) {
  testing::TempDir run;
  const std::string dir = run.file("checkpoints");
  for (int step : {10, 20, 30}) {
    ASSERT_TRUE(testing::write_checkpoint(dir, step, [&](const std::string& d) { return write_two_files(d, std::to_string(step)); }, 2).ok());
  }
  EXPECT_FALSE(fs::exists(dir + "/step_00000010"));
  EXPECT_TRUE(fs::exists(dir + "/step_00000020/manifest.json"));
  EXPECT_EQ(testing::read_text(dir + "/latest"), "step_00000030\n");
  std::vector<std::string> skipped;
  auto latest = find_latest_valid_checkpoint(dir, &skipped);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->step, 30);
  EXPECT_TRUE(skipped.empty());
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".")) << "left behind: " << e.path();
  }
}

TEST(CheckpointStore, ARankFileMissingFromItsSetIsNeverCommittedOrUsed) {
  testing::TempDir run;
  const std::string dir = run.file("checkpoints");
  auto two_of_two = [](const std::string& d) -> Status {
    SC_RETURN_IF_ERROR(write_file_atomic(d + "/optimizer-00000-of-00002.safetensors", "a"));
    return write_file_atomic(d + "/optimizer-00001-of-00002.safetensors", "b");
  };
  ASSERT_TRUE(testing::write_checkpoint(dir, 10, two_of_two, 0).ok());
  Status partial = testing::write_checkpoint(dir, 20, [](const std::string& d) {
    return write_file_atomic(d + "/optimizer-00000-of-00002.safetensors", "a");
  }, 0);
  ASSERT_FALSE(partial.ok());
  EXPECT_NE(partial.message().find("1 of the 2 files optimizer-*-of-00002 are present"), std::string::npos)
      << partial.message();
  EXPECT_FALSE(fs::exists(dir + "/step_00000020"));
  // A manifest that lists only part of a set (written by something else) is rejected too.
  ASSERT_TRUE(testing::write_checkpoint(dir, 30, two_of_two, 0).ok());
  fs::remove(dir + "/step_00000030/optimizer-00001-of-00002.safetensors");
  std::string manifest = testing::read_text(dir + "/step_00000030/manifest.json");
  const size_t at = manifest.find("\"optimizer-00001-of-00002.safetensors\"");
  ASSERT_NE(at, std::string::npos);
  manifest.replace(at, std::string("\"optimizer-00001-of-00002.safetensors\"").size(), "\"unrelated.bin\"");
  testing::write_text(dir + "/step_00000030/manifest.json", manifest);
  std::vector<std::string> skipped;
  auto latest = find_latest_valid_checkpoint(dir, &skipped);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->step, 10);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("a rank's part is missing"), std::string::npos) << skipped[0];
}

TEST(CheckpointStore, FailedWriteKeepsPreviousCheckpoint) {
  testing::TempDir run;
  const std::string dir = run.file("checkpoints");
  ASSERT_TRUE(testing::write_checkpoint(dir, 1, [&](const std::string& d) { return write_two_files(d, "one"); }, 0).ok());
  // A writer that fails half-way (disk full): nobody commits step 2.
  Status s = testing::write_checkpoint(dir, 2, [&](const std::string& d) {
    SC_RETURN_IF_ERROR(write_file_atomic(d + "/model.bin", "half"));
    return Status::io_error("disk full (injected)");
  }, 0);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("disk full"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir + "/step_00000002"));
  EXPECT_EQ(testing::read_text(dir + "/latest"), "step_00000001\n");
  auto latest = find_latest_valid_checkpoint(dir, nullptr);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->step, 1);
  // Its temporary directory is never read, and goes when the next run starts.
  EXPECT_TRUE(fs::exists(dir + "/.step_00000002.tmp"));
  remove_uncommitted_checkpoints(dir);
  EXPECT_FALSE(fs::exists(dir + "/.step_00000002.tmp"));
  EXPECT_TRUE(fs::exists(dir + "/step_00000001/manifest.json"));
}

TEST(CheckpointStore, AFailedCommitRemovesItsTemporaryDirectory) {
  testing::TempDir run;
  const std::string dir = run.file("checkpoints");
  ASSERT_TRUE(testing::write_checkpoint(dir, 1, [&](const std::string& d) { return write_two_files(d, "one"); }).ok());
  Status s = testing::write_checkpoint(dir, 2, [](const std::string& d) {
    return write_file_atomic(d + "/optimizer-00001-of-00002.safetensors", "b");
  });
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("step_00000002"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(dir + "/.step_00000002.tmp"));
  EXPECT_EQ(testing::read_text(dir + "/latest"), "step_00000001\n");
}

TEST(CheckpointStore, ANewerFormatIsRefusedByName) {
  testing::TempDir run;
  const std::string dir = run.file("checkpoints");
  ASSERT_TRUE(testing::write_checkpoint(dir, 3, [&](const std::string& d) { return write_two_files(d, "x"); }).ok());
  const std::string manifest_path = dir + "/step_00000003/manifest.json";
  auto manifest = nlohmann::json::parse(testing::read_text(manifest_path));
  EXPECT_EQ(manifest["format_version"], kCheckpointFormatVersion);
  manifest["format_version"] = kCheckpointFormatVersion + 1;
  testing::write_text(manifest_path, manifest.dump());
  Status s = verify_checkpoint(dir + "/step_00000003");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("manifest.json: checkpoint format 2 was written by a newer supercluster"),
            std::string::npos) << s.message();
  manifest.erase("format_version");
  testing::write_text(manifest_path, manifest.dump());
  s = verify_checkpoint(dir + "/step_00000003");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("manifest.json: 'format_version' is required"), std::string::npos) << s.message();
}

// Issue 15 item 4: a manifest of the wrong types aborted resume and generate
// with nlohmann::type_error instead of skipping to the previous checkpoint.
TEST(CheckpointStore, AManifestOfTheWrongShapeIsSkippedByNameNeverACrash) {
  const std::vector<std::pair<std::string, std::string>> manifests = {
      {R"({"format_version": 1, "files": {"model.bin": {"bytes": "1234", "xxh3": "0"}}})",
       "'model.bin': 'bytes' must be an integer"},
      {R"({"format_version": 1, "files": {"model.bin": {"bytes": 7, "xxh3": 5}}})",
       "'model.bin': 'xxh3' must be a string of at most 16 bytes"},
      {R"({"format_version": "1", "files": {}})", "'format_version' must be an integer"},
      {R"({"format_version": 1, "files": []})", "'files' must be an object"},
      {R"({"format_version": 1, "files": {"../state.json": {"bytes": 1, "xxh3": "0"}}})",
       "lists '../state.json', which is not a file name"},
      {"[" + std::string(100000, '[') + std::string(100001, ']'), "nested more than 64 levels"},
      {"{\"format_version\": 1, \"files\": {", "not valid JSON"},
  };
  for (const auto& [text, expected] : manifests) {
    testing::TempDir run;
    const std::string dir = run.file("checkpoints");
    ASSERT_TRUE(testing::write_checkpoint(dir, 5, [&](const std::string& d) { return write_two_files(d, "five"); }).ok());
    ASSERT_TRUE(testing::write_checkpoint(dir, 6, [&](const std::string& d) { return write_two_files(d, "six!"); }).ok());
    testing::write_text(dir + "/step_00000006/manifest.json", text);
    std::vector<std::string> skipped;
    auto latest = find_latest_valid_checkpoint(dir, &skipped);
    ASSERT_TRUE(latest.ok()) << expected;
    EXPECT_EQ(latest->step, 5) << expected;
    ASSERT_EQ(skipped.size(), 1u) << expected;
    EXPECT_NE(skipped[0].find(expected), std::string::npos) << skipped[0];
    EXPECT_NE(skipped[0].find("step_00000006/manifest.json"), std::string::npos) << skipped[0];
  }
}

TEST(CheckpointStore, ResolvesACheckpointItsDirectoryOrItsRun) {
  testing::TempDir run;
  const std::string dir = run.file("run/checkpoints");
  for (int step : {4, 8}) {
    ASSERT_TRUE(testing::write_checkpoint(dir, step, [&](const std::string& d) { return write_two_files(d, "payload"); }).ok());
  }
  for (const std::string& path : {run.file("run"), dir, dir + "/"}) {
    auto found = resolve_checkpoint(path);
    ASSERT_TRUE(found.ok()) << path << ": " << found.status().message();
    EXPECT_EQ(found->step, 8) << path;
    EXPECT_EQ(found->path, dir + "/step_00000008") << path;
  }
  auto one = resolve_checkpoint(dir + "/step_00000004/");
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(one->step, 4);
  fs::resize_file(dir + "/step_00000004/model.bin", 1);
  EXPECT_FALSE(resolve_checkpoint(dir + "/step_00000004").ok());  // one damaged checkpoint is not replaced by another
  auto missing = resolve_checkpoint(run.file("nowhere"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nowhere: checkpoint directory does not exist"), std::string::npos);
  EXPECT_FALSE(resolve_checkpoint(run.file("run/metrics")).ok());
}

// Each kind of damage to the newest checkpoint: detected, skipped with a
// message naming the file, and the previous one used.
TEST(CheckpointStore, DamagedNewestIsSkipped) {
  const std::vector<std::pair<std::string, std::function<void(const std::string&)>>> damages = {
      {"checksum mismatch", [](const std::string& d) {
         std::fstream f(d + "/model.bin", std::ios::in | std::ios::out | std::ios::binary);
         f.seekp(1);
         f.put('X');
       }},
      {"bytes, manifest says", [](const std::string& d) { fs::resize_file(d + "/model.bin", 2); }},
      {"listed in the manifest but missing", [](const std::string& d) { fs::remove(d + "/state.json"); }},
      {"no manifest", [](const std::string& d) { fs::remove(d + "/manifest.json"); }},
  };
  for (const auto& [expected, damage] : damages) {
    testing::TempDir run;
    const std::string dir = run.file("checkpoints");
    ASSERT_TRUE(testing::write_checkpoint(dir, 5, [&](const std::string& d) { return write_two_files(d, "five-five"); }, 0).ok());
    ASSERT_TRUE(testing::write_checkpoint(dir, 6, [&](const std::string& d) { return write_two_files(d, "six-six-six"); }, 0).ok());
    damage(dir + "/step_00000006");
    std::vector<std::string> skipped;
    auto latest = find_latest_valid_checkpoint(dir, &skipped);
    ASSERT_TRUE(latest.ok()) << expected;
    EXPECT_EQ(latest->step, 5) << expected;
    ASSERT_EQ(skipped.size(), 1u) << expected;
    EXPECT_NE(skipped[0].find(expected), std::string::npos) << skipped[0];
    EXPECT_NE(skipped[0].find("step_00000006"), std::string::npos) << skipped[0];
  }
}

TEST(CheckpointStore, NoCheckpointIsNotFound) {
  testing::TempDir run;
  auto latest = find_latest_valid_checkpoint(run.file("checkpoints"), nullptr);
  ASSERT_FALSE(latest.ok());
  EXPECT_EQ(latest.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace sc
