#include <gtest/gtest.h>

#include <mutex>
#include <set>

#include <atomic>
#include <filesystem>
#include <numeric>
#include <vector>

#include "core/arena.h"
#include "core/checksum.h"
#include "core/file_util.h"
#include "core/thread_pool.h"
#include "core/utf8.h"
#include "test_util.h"

namespace sc {
namespace {

TEST(Status, CarriesMessageAndContext) {
  Status s = Status::invalid("field '{}' must be positive", "hidden_size");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.with_context("config.json").message(), "config.json: field 'hidden_size' must be positive");
  EXPECT_TRUE(Status().ok());
}

TEST(Arena, AlignsAndRefusesToGrow) {
  auto arena = Arena::create(1 << 20, "test");
  ASSERT_TRUE(arena.ok()) << arena.status().message();
  auto a = arena->allocate<float>(3);
  auto b = arena->allocate<float>(5);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(*a) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(*b) % 64, 0u);
  EXPECT_NE(*a, *b);
  auto too_big = arena->allocate<char>(arena->capacity_bytes());
  EXPECT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("test"), std::string::npos);
  arena->reset();
  EXPECT_EQ(arena->used_bytes(), 0u);
}

// Issue 15, item 2: sizes from a config reach the arenas; one larger than
// the machine is a clear error before anything is mapped, and a size that
// overflows 64 bits is not wrapped into a small buffer.
TEST(Arena, MoreThanTheMachineOrThan64BitsIsAClearError) {
  const size_t memory = physical_memory_bytes();
  ASSERT_GT(memory, 0u);
  auto huge = Arena::create(memory + (size_t{1} << 30), "kv-cache");
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("kv-cache: needs "), std::string::npos) << huge.status().message();
  EXPECT_NE(huge.status().message().find(fmt::format("({} bytes), more than this machine's", memory + (size_t{1} << 30))),
            std::string::npos) << huge.status().message();
  float* a = nullptr;
  float* b = nullptr;
  ArenaPlan plan;
  plan.add(&a, 16);
  plan.add(&b, SIZE_MAX / 2);
  auto wrapped = plan.allocate("activations");
  ASSERT_FALSE(wrapped.ok());
  EXPECT_EQ(wrapped.status().message(), "activations: needs more than 2^64 bytes of memory");
  EXPECT_EQ(b, nullptr);
  auto small = Arena::create(1 << 20, "small");
  ASSERT_TRUE(small.ok());
  EXPECT_FALSE(small->allocate<float>(SIZE_MAX / 2).ok());
}

TEST(ThreadPool, CoversRangeOnceAndSplitsDeterministically) {
  for (size_t threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (size_t count : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(count);
      std::mutex mutex;
      std::set<std::pair<size_t, size_t>> parts;
      auto record = [&](std::set<std::pair<size_t, size_t>>* into) {
        return [&, into](size_t begin, size_t end, size_t thread) {
          EXPECT_LT(thread, threads);
          for (size_t i = begin; i < end; ++i) hits[i]++;
          std::lock_guard<std::mutex> lock(mutex);
          into->insert({begin, end});
        };
      };
      pool.parallel_for(count, record(&parts));
      for (size_t i = 0; i < count; ++i) EXPECT_EQ(hits[i].load(), 1) << "threads " << threads << " i " << i;
      EXPECT_EQ(parts.size(), std::min(count, threads)) << "one part per thread";
      // Same count and thread count: the same parts every time (whichever
      // thread happens to run each).
      std::set<std::pair<size_t, size_t>> parts_again;
      pool.parallel_for(count, record(&parts_again));
      EXPECT_EQ(parts, parts_again);
    }
  }
}

TEST(ThreadPool, ManyShortLoopsBackToBack) {
  ThreadPool pool(2);
  std::atomic<long> sum{0};
  for (int iter = 0; iter < 2000; ++iter) {
    pool.parallel_for(4, [&](size_t begin, size_t end, size_t) { sum += static_cast<long>(end - begin); });
  }
  EXPECT_EQ(sum.load(), 8000);
}

TEST(Checksum, StreamingMatchesOneShot) {
  std::vector<uint8_t> bytes(10000);
  std::iota(bytes.begin(), bytes.end(), 0);
  StreamingChecksum streaming;
  streaming.update(bytes.data(), 1234);
  streaming.update(bytes.data() + 1234, bytes.size() - 1234);
  EXPECT_EQ(streaming.digest(), checksum64(bytes.data(), bytes.size()));
  bytes[5000] ^= 1;
  EXPECT_NE(streaming.digest(), checksum64(bytes.data(), bytes.size()));
}

TEST(AtomicFileWriter, UncommittedWriteLeavesOldFile) {
  testing::TempDir dir;
  const std::string path = dir.file("data.txt");
  ASSERT_TRUE(write_file_atomic(path, "good").ok());
  {
    auto writer = AtomicFileWriter::open(path);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->write("partial").ok());
    // dropped without commit: a crash in the middle of a write
  }
  EXPECT_EQ(testing::read_text(path), "good");
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1u) << "temporary file left behind";
  ASSERT_TRUE(write_file_atomic(path, "better").ok());
  EXPECT_EQ(testing::read_text(path), "better");
}

TEST(AtomicFileWriter, UnwritableDirectoryIsAnError) {
  testing::TempDir dir;
  testing::write_text(dir.file("plain_file"), "x");
  Status s = ensure_writable_directory(dir.file("plain_file/sub"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("plain_file"), std::string::npos) << s.message();
}

TEST(Utf8, FindsFirstInvalidByte) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("Grüße नमस्ते 😀"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8(std::string_view("ab\xff", 3)), 2u);
  EXPECT_EQ(find_invalid_utf8(std::string_view("a\xc3", 2)), 1u);             // truncated sequence
  EXPECT_EQ(find_invalid_utf8(std::string_view("\xc0\xaf", 2)), 0u);          // overlong '/'
  EXPECT_EQ(find_invalid_utf8(std::string_view("x\xed\xa0\x80", 4)), 1u);     // surrogate
  EXPECT_EQ(find_invalid_utf8(std::string_view("\xe9t\xe9", 3)), 0u);         // Latin-1 'été'
}

}  // namespace
}  // namespace sc
