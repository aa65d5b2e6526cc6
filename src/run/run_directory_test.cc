#include "run/run_directory.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "checkpoint_test_util.h"
#include "core/file_util.h"
#include "test_util.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

TEST(RunDirectory, NamesWhatAPreviousRunLeftValidOrNotAndRemovesOnlyThat) {
  testing::TempDir dir;
  const RunPaths run(dir.file("run"));
  EXPECT_TRUE(find_existing_run(run).empty());
  for (int step = 1; step <= 6; ++step) {
    ASSERT_TRUE(testing::write_checkpoint(run.checkpoints(), step, [](const std::string& d) {
      return write_file_atomic(d + "/model.bin", "weights");
    }).ok());
  }
  fs::remove(run.checkpoints() + "/step_00000006/manifest.json");
  testing::write_text(run.metrics(), "{\"step\": 1}\n{\"step\": 2}\n");
  testing::write_text(run.root() + "/notes.txt", "mine");
  testing::write_text(run.events(), "{\"event\": \"failure\"}\n");
  const ExistingRun existing = find_existing_run(run);
  ASSERT_EQ(existing.checkpoints.size(), 6u);
  EXPECT_EQ(existing.metrics_lines, 2);
  const std::string text = existing.describe();
  EXPECT_EQ(text.find("checkpoints step_00000006 (not valid: "), 0u) << text;
  EXPECT_NE(text.find("no manifest"), std::string::npos) << text;
  EXPECT_NE(text.find(", step_00000005, step_00000004, step_00000003 and 2 more; metrics.jsonl of 2 lines"),
            std::string::npos) << text;
  ASSERT_TRUE(remove_run_outputs(run).ok());
  EXPECT_TRUE(find_existing_run(run).empty());
  EXPECT_EQ(testing::read_text(run.root() + "/notes.txt"), "mine");  // not a run output
  EXPECT_EQ(testing::read_text(run.events()), "{\"event\": \"failure\"}\n");  // the directory's history
}

}  // namespace
}  // namespace sc
