#include "run/metrics_log.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace sc {
namespace {

TEST(MetricsLog, ReadsStepsAndSkipsLinesThatAreNotSteps) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  testing::write_text(path,
                      "{\"step\": 1, \"loss\": 9.5, \"elapsed_s\": 0.5}\n"
                      "{\"step\": 2, \"loss\": 9.25, \"val_loss\": 9.3, \"elapsed_s\": 1.0}\n"
                      "not json\n"
                      "{\"step\": \"3\", \"loss\": 1}\n"
                      "{\"loss\": 8}\n"
                      "{\"step\": 3, \"loss\": null}\n"
                      "{\"step\": 5, \"loss\": " + std::string(100000, '[') + "}\n"
                      "{\"step\": 4, \"loss\": 8.7");  // torn by a crash
  const std::vector<MetricsRecord> records = read_metrics(path);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].step, 1);
  EXPECT_EQ(records[0].loss, 9.5);
  EXPECT_FALSE(records[0].val_loss);
  EXPECT_EQ(records[1].val_loss, 9.3);
  EXPECT_EQ(records[1].elapsed_s, 1.0);
  EXPECT_EQ(records[2].step, 3);
  EXPECT_FALSE(records[2].loss);  // a loss that is not a number is absent, not 0
  EXPECT_TRUE(read_metrics(dir.file("missing.jsonl")).empty());
}

TEST(MetricsLog, AResumedRunKeepsTheLinesUpToItsStepAndRewritesTheFile) {
  testing::TempDir dir;
  MetricsLog log(dir.file("metrics.jsonl"));
  ASSERT_TRUE(log.start_empty().ok());
  for (int step = 1; step <= 5; ++step) ASSERT_TRUE(log.append({{"step", step}, {"loss", 10.0 - step}}).ok());
  Status status;
  // A rank that only reads leaves the file alone.
  EXPECT_EQ(log.keep_through_step(3, /*rewrite=*/false, &status).size(), 3u);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(read_metrics(log.path()).size(), 5u);
  const std::vector<MetricsRecord> kept = log.keep_through_step(3, /*rewrite=*/true, &status);
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept.back().loss, 7.0);
  EXPECT_EQ(testing::read_text(log.path()),
            "{\"loss\":9.0,\"step\":1}\n{\"loss\":8.0,\"step\":2}\n{\"loss\":7.0,\"step\":3}\n");
  ASSERT_TRUE(log.append({{"step", 4}, {"loss", 6.5}}).ok());
  EXPECT_EQ(read_metrics(log.path()).back().loss, 6.5);
}

TEST(MetricsLog, AnUnwritableFileIsAnErrorNamingIt) {
  testing::TempDir dir;
  MetricsLog log(dir.file("no/such/dir/metrics.jsonl"));
  Status status = log.append({{"step", 1}});
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("no/such/dir/metrics.jsonl"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace sc
