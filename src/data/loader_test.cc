#include "data/loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "data/permutation.h"
#include "test_util.h"

namespace sc {
namespace {

constexpr uint32_t kVocab = 1000;

// Shards whose token at global position p is p % kVocab, so a window's first
// token tells which window it is.
void write_shards(const std::string& dir, const std::vector<size_t>& sizes, const std::string& split = "train") {
  size_t position = 0;
  for (size_t s = 0; s < sizes.size(); ++s) {
    auto writer = ShardWriter::open(fmt::format("{}/{}_{:04d}.bin", dir, split, s), kVocab, /*tokenizer_checksum=*/0);
    ASSERT_TRUE(writer.ok());
    std::vector<uint32_t> tokens(sizes[s]);
    for (auto& t : tokens) t = static_cast<uint32_t>(position++ % kVocab);
    ASSERT_TRUE(writer->append(tokens).ok());
    ASSERT_TRUE(writer->finish().ok());
  }
}

struct Batch {
  std::vector<uint32_t> inputs, targets;
  bool operator==(const Batch&) const = default;
};

Batch next(DataLoader& loader) {
  const auto& o = loader.options();
  Batch b{std::vector<uint32_t>(o.batch_size * o.seq_len), std::vector<uint32_t>(o.batch_size * o.seq_len)};
  loader.next_batch(b.inputs.data(), b.targets.data());
  return b;
}

// The train shards in `dir`, in order (write_shards' files).
std::vector<std::string> shard_paths(const std::string& dir) {
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::directory_iterator(dir)) paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  return paths;
}

DataLoader open_loader(const std::string& dir, LoaderOptions options) {
  auto loader = DataLoader::open_shards(shard_paths(dir), options);
  EXPECT_TRUE(loader.ok()) << loader.status().message();
  return std::move(loader).value();
}

TEST(IndexPermutation, IsABijection) {
  for (uint64_t n : {1ull, 2ull, 3ull, 17ull, 1000ull, 4097ull}) {
    IndexPermutation p(n, 42);
    std::set<uint64_t> images;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t y = p(i);
      ASSERT_LT(y, n);
      images.insert(y);
    }
    EXPECT_EQ(images.size(), n);
  }
  IndexPermutation a(1000, 1), b(1000, 2);
  int same = 0;
  for (uint64_t i = 0; i < 1000; ++i) same += a(i) == b(i);
  EXPECT_LT(same, 20) << "different keys should give different orders";
}

TEST(DataLoader, TargetsAreInputsShiftedByOneAcrossShardBoundaries) {
  testing::TempDir dir;
  write_shards(dir.path(), {37, 50, 13});
  DataLoader loader = open_loader(dir.path(), {.batch_size = 3, .seq_len = 8, .seed = 5});
  EXPECT_EQ(loader.total_tokens(), 100u);
  EXPECT_EQ(loader.total_windows(), 12u);  // (100 - 1) / 8
  for (int step = 0; step < 10; ++step) {
    Batch b = next(loader);
    for (size_t row = 0; row < 3; ++row) {
      uint32_t start = b.inputs[row * 8];
      EXPECT_EQ(start % 8, 0u);
      for (size_t t = 0; t < 8; ++t) {
        EXPECT_EQ(b.inputs[row * 8 + t], start + t);
        EXPECT_EQ(b.targets[row * 8 + t], start + t + 1);
      }
    }
  }
}

TEST(DataLoader, SameSeedAndCursorGiveSameBatches) {
  testing::TempDir dir;
  write_shards(dir.path(), {500, 300});
  LoaderOptions options{.batch_size = 4, .seq_len = 16, .seed = 7};
  DataLoader a = open_loader(dir.path(), options);
  DataLoader b = open_loader(dir.path(), options);
  for (int i = 0; i < 30; ++i) ASSERT_EQ(next(a), next(b)) << "batch " << i;  // crosses epochs (49 windows)
  options.seed = 8;
  DataLoader c = open_loader(dir.path(), options);
  DataLoader d = open_loader(dir.path(), {.batch_size = 4, .seq_len = 16, .seed = 7});
  EXPECT_NE(next(c), next(d));
}

TEST(DataLoader, SavedCursorResumesTheSameSequence) {
  testing::TempDir dir;
  write_shards(dir.path(), {900});
  LoaderOptions options{.batch_size = 2, .seq_len = 10, .seed = 3};
  DataLoader uninterrupted = open_loader(dir.path(), options);
  DataLoader first = open_loader(dir.path(), options);
  std::vector<Batch> expected;
  for (int i = 0; i < 100; ++i) expected.push_back(next(uninterrupted));
  for (int i = 0; i < 57; ++i) ASSERT_EQ(next(first), expected[i]);
  // Through JSON, as a checkpoint stores it.
  nlohmann::json saved = first.cursor().to_json();
  auto cursor = LoaderCursor::from_json(nlohmann::json::parse(saved.dump()));
  ASSERT_TRUE(cursor.ok());
  first.rewind();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(next(first), expected[i]) << "after rewind, batch " << i;
  DataLoader resumed = open_loader(dir.path(), options);
  ASSERT_TRUE(resumed.restore(*cursor).ok());
  for (int i = 57; i < 100; ++i) ASSERT_EQ(next(resumed), expected[i]) << "batch " << i;
}

TEST(DataLoader, CursorFromOtherDataOrShapeIsRejected) {
  testing::TempDir dir, other;
  write_shards(dir.path(), {900});
  write_shards(other.path(), {901});
  DataLoader a = open_loader(dir.path(), {.batch_size = 2, .seq_len = 10});
  DataLoader b = open_loader(other.path(), {.batch_size = 2, .seq_len = 10});
  Status s = b.restore(a.cursor());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("other data"), std::string::npos);
  DataLoader c = open_loader(dir.path(), {.batch_size = 2, .seq_len = 12});
  s = c.restore(a.cursor());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("seq_len 10"), std::string::npos) << s.message();
  EXPECT_FALSE(LoaderCursor::from_json(nlohmann::json{{"epoch", 1}}).ok());
}

TEST(DataLoader, CursorsOfThePerRankLoaderStillRestore) {
  testing::TempDir dir;
  write_shards(dir.path(), {641});  // 40 windows of 16
  DataLoader loader = open_loader(dir.path(), {.batch_size = 1, .seq_len = 16, .seed = 9});
  const uint64_t fingerprint = loader.cursor().data_fingerprint;
  // Every rank of 2 had served 5 windows of its slice: 10 of the epoch.
  auto old = LoaderCursor::from_json(nlohmann::json{
      {"epoch", 1u}, {"position", 5u}, {"data_fingerprint", fingerprint}, {"seq_len", 16u}, {"world_size", 2u}});
  ASSERT_TRUE(old.ok()) << old.status().message();
  ASSERT_TRUE(loader.restore(*old).ok());
  EXPECT_EQ(loader.cursor().epoch, 1u);
  EXPECT_EQ(loader.cursor().position, 10u);
  // The old loader saved the end of an epoch as position == its length.
  auto at_end = LoaderCursor::from_json(nlohmann::json{
      {"epoch", 0u}, {"position", 20u}, {"data_fingerprint", fingerprint}, {"seq_len", 16u}, {"world_size", 2u}});
  ASSERT_TRUE(at_end.ok());
  ASSERT_TRUE(loader.restore(*at_end).ok());
  EXPECT_EQ(loader.cursor().epoch, 1u);
  EXPECT_EQ(loader.cursor().position, 0u);
}

TEST(DataLoader, DataParallelStepsReadTheSameStreamOnAnyRankCount) {
  testing::TempDir dir;
  write_shards(dir.path(), {641});  // 40 windows of 16
  // One loader read serially: the global order of micro-batches.
  DataLoader serial = open_loader(dir.path(), {.batch_size = 2, .seq_len = 16, .seed = 9});
  std::vector<Batch> expected;
  for (int i = 0; i < 30; ++i) expected.push_back(next(serial));  // 60 windows: crosses into epoch 1
  std::multiset<uint32_t> first_epoch;
  for (int i = 0; i < 20; ++i) {
    for (int b = 0; b < 2; ++b) first_epoch.insert(expected[static_cast<size_t>(i)].inputs[static_cast<size_t>(b) * 16]);
  }
  EXPECT_EQ(std::set<uint32_t>(first_epoch.begin(), first_epoch.end()).size(), 40u) << "an epoch serves every window once";
  EXPECT_NE(expected[0], expected[20]) << "epoch 1 is shuffled differently";

  // Steps of G = 6 micro-batches on 1, 2 and 3 ranks: rank r takes global
  // micro-batches [r·G/world, (r+1)·G/world) by offset, then every rank
  // advances past the whole step.
  constexpr uint32_t kGlobal = 6;
  for (uint32_t world : {1u, 2u, 3u}) {
    std::vector<DataLoader> ranks;
    for (uint32_t r = 0; r < world; ++r) ranks.push_back(open_loader(dir.path(), {.batch_size = 2, .seq_len = 16, .seed = 9}));
    for (uint32_t step = 0; step < 5; ++step) {
      for (uint32_t r = 0; r < world; ++r) {
        for (uint32_t j = 0; j < kGlobal / world; ++j) {
          const uint32_t g = r * (kGlobal / world) + j;
          Batch batch{std::vector<uint32_t>(32), std::vector<uint32_t>(32)};
          ranks[r].read_batch_at(uint64_t{g} * 2, batch.inputs.data(), batch.targets.data());
          EXPECT_EQ(batch, expected[step * kGlobal + g]) << "world " << world << " step " << step << " micro " << g;
        }
      }
      for (DataLoader& loader : ranks) loader.advance(kGlobal * 2);
    }
    EXPECT_EQ(ranks[0].cursor(), serial.cursor()) << "world " << world;
  }
}

TEST(DataLoader, CursorFieldsAreTypedAndInRange) {
  const nlohmann::json good = {{"epoch", 1u}, {"position", 5u}, {"data_fingerprint", 7u}, {"seq_len", 16u}};
  ASSERT_TRUE(LoaderCursor::from_json(good).ok());
  auto error_with = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json j = good;
    j[key] = value;
    auto cursor = LoaderCursor::from_json(j);
    EXPECT_FALSE(cursor.ok()) << key;
    return cursor.ok() ? std::string() : cursor.status().message();
  };
  EXPECT_NE(error_with("epoch", "five").find("data cursor: 'epoch' must be"), std::string::npos);
  EXPECT_NE(error_with("seq_len", 1ull << 40).find("'seq_len'"), std::string::npos);
  EXPECT_NE(error_with("position", -3).find("'position'"), std::string::npos);
  EXPECT_NE(error_with("world_size", 0).find("'world_size'"), std::string::npos);
  nlohmann::json wraps = good;
  wraps["position"] = UINT64_MAX / 2;
  wraps["world_size"] = 3;
  EXPECT_FALSE(LoaderCursor::from_json(wraps).ok());
  EXPECT_FALSE(LoaderCursor::from_json(nlohmann::json::array()).ok());
}

TEST(DataLoader, ValidatesShardsAndShapes) {
  testing::TempDir dir;
  write_shards(dir.path(), {100});
  auto wrong_vocab = DataLoader::open_shards(shard_paths(dir.path()), {.batch_size = 1, .seq_len = 8, .expected_vocab_size = 8192});
  ASSERT_FALSE(wrong_vocab.ok());
  EXPECT_NE(wrong_vocab.status().message().find("vocab size 1000, expected 8192"), std::string::npos);
  auto too_long = DataLoader::open_shards(shard_paths(dir.path()), {.batch_size = 1, .seq_len = 200});
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("too few"), std::string::npos);
  EXPECT_FALSE(DataLoader::open_shards({}, {.batch_size = 1, .seq_len = 8}).ok());
  EXPECT_FALSE(DataLoader::open_shards(shard_paths(dir.path()), {.batch_size = 0, .seq_len = 8}).ok());
  std::filesystem::resize_file(dir.file("train_0000.bin"), 100);
  auto truncated = DataLoader::open_shards(shard_paths(dir.path()), {.batch_size = 1, .seq_len = 8});
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("train_0000.bin: truncated"), std::string::npos);
}

}  // namespace
}  // namespace sc
